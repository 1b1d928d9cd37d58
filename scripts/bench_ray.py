"""Ray overhead: a 12-trial tiny sweep (3 roles × 2 variants × 2 learning rates, the tiny model
on CPU) run through the product path (a Ray job on a local head running jobs/sweep.py: Tune with
actor reuse, checkpoints, storage) against the same 12 trial functions run directly, one after
the other, in a fresh Python process (what a user would run instead of Tune), once before and
once after the job: the baseline is their mean, so load drifting over the minute the job takes
weighs on both sides alike. Each side pays the torch/transformers/trl imports once (Tune in its
reused trial actor, the direct side in its process). Both sides run serially (Tune:
budget.max_concurrent=1), so the ratio is Tune's overhead, not parallelism. Also measures
submit → RUNNING latency of the job, and (for reference, not in the ratio) the direct trials once
more in a process that has already imported everything.

    python scripts/bench_ray.py [--smoke] [--cluster configs/cluster/local.yaml] [key=value ...]

``--smoke``: 2 trials and 2 optimizer steps (seconds; the test runs it). ``--cluster``: a
configs/cluster YAML of a local head to reuse (else one is started and stopped). The last line
is ``ratio tune/direct = X.XX``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tracebridge.cluster.config import DEFAULT_ENV

for _k in ("OMP_NUM_THREADS", "TOKENIZERS_PARALLELISM", "LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE"):
    os.environ.setdefault(_k, DEFAULT_ENV[_k])

BUNDLE = ROOT / "tests" / "data" / "train_views"
FULL = ["roles=[planner,worker,verifier]", "ablations.train.lr=[0.001,0.003]", "overrides.train.max_steps=8",
        "overrides.dpo.max_steps=4"]
SMOKE = ["roles=[verifier]", "overrides.train.max_steps=2", "overrides.dpo.max_steps=2",
         "overrides.train.save_steps=0"]


def run_direct(cfg, recipes, specs, work: Path) -> tuple[float, float]:
    """The trial functions one after the other in this process (no Ray, no Tune)."""
    from tracebridge.sweep.trainable import TrialContext, run_one

    ctx = TrialContext(sweep_id="direct", bundle_uri=str(BUNDLE), bundle_id="", work_root=str(work),
                       recipes=recipes, keep_models=cfg.keep_models)

    class _Dir:
        @staticmethod
        def from_directory(path: str) -> str:
            return path

    t0, inside = time.perf_counter(), 0.0
    for s in specs:
        inside += run_one(s, ctx, lambda m, checkpoint=None: None, _Dir, None)["wall_s"]
    return time.perf_counter() - t0, inside


def direct_in_fresh_process(overrides: list[str], work: Path, warm: bool = False) -> dict[str, float]:
    """``run_direct`` in a new interpreter (cold imports, as a user's own script would have);
    ``warm``: then once more in that process (``warm_s``)."""
    out = work.with_suffix(".json")
    subprocess.run([sys.executable, __file__, "--direct-only", str(out), *(["--warm"] if warm else []), *overrides],
                   check=True)
    return json.loads(out.read_text())


def run_tune_job(overrides: list[str], cluster_yaml: str | None) -> dict:
    """Submit jobs/sweep.py to a local head; time submit → RUNNING and read the job's summary."""
    from tracebridge.cluster.client import TERMINAL, job_info, job_summary, logs
    from tracebridge.cluster.config import cluster_from_spec
    from tracebridge.cluster.submit import close_cluster, open_cluster, plan_sweep, submit_sweep

    ccfg = cluster_from_spec(cluster_yaml or "local")
    target = open_cluster(ccfg, start=True)
    try:
        plan = plan_sweep(ROOT / "configs" / "sweep" / "smoke.yaml", overrides, ccfg, ROOT)
        t0 = time.perf_counter()
        sub = submit_sweep(target, plan, 1, ROOT)
        running = None
        while True:
            st = job_info(target.client, sub["submission_id"])["status"]
            if running is None and st != "PENDING":
                running = time.perf_counter() - t0
            if st in TERMINAL:
                break
            time.sleep(0.05)
        found = job_summary(logs(target.client, sub["submission_id"])) or {}
        return {"status": st, "submit_to_running_s": running, "job_s": time.perf_counter() - t0,
                "failures": ["no summary"], **found}
    finally:
        close_cluster(target, keep=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="2 trials, 2 steps")
    ap.add_argument("--cluster", default=None, help="configs/cluster YAML of a local head to reuse")
    ap.add_argument("--direct-only", default=None, metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*", help="key=value overrides of configs/sweep/smoke.yaml")
    a = ap.parse_args()

    from tracebridge.sweep import grid
    from tracebridge.sweep.config import load_sweep_config

    if a.direct_only:  # the child process of direct_in_fresh_process: overrides are already complete
        cfg = load_sweep_config(str(ROOT / "configs" / "sweep" / "smoke.yaml"), a.overrides)
        out = Path(a.direct_only)
        recipes, specs = grid.resolve_recipes(cfg), grid.expand_grid(cfg)
        total, inside = run_direct(cfg, recipes, specs, out.with_suffix(""))
        res = {"total_s": total, "inside_s": inside}
        if a.warm:
            res["warm_s"] = run_direct(cfg, recipes, specs, out.with_suffix(".warm"))[0]
        out.write_text(json.dumps(res))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        ov = [f"bundle={BUNDLE}", f"storage={tmp}/storage", f"work_dir={tmp}/work", "budget.max_concurrent=1",
              "keep_models=false", *(SMOKE if a.smoke else FULL), *a.overrides]
        cfg = load_sweep_config(str(ROOT / "configs" / "sweep" / "smoke.yaml"), ov)
        recipes, specs = grid.resolve_recipes(cfg), grid.expand_grid(cfg)
        print(f"{len(specs)} trials: {', '.join(s['trial_id'] for s in specs)}", flush=True)
        d1 = direct_in_fresh_process(ov, Path(tmp) / "direct")
        direct, direct_in = d1["total_s"], d1["inside_s"]
        print(f"direct: {direct:.1f} s ({direct / len(specs):.2f} s/trial, fresh process, cold imports included; "
              f"inside run_trial {direct_in:.1f} s)", flush=True)
        job = run_tune_job(ov, a.cluster)
        if job["status"] != "SUCCEEDED" or job["failures"]:
            print(f"tune job {job['status']}: {job.get('failures')}")
            return 1
        tune = job["tune_wall_s"]
        trials = json.loads((Path(job["report_uri"]) / "results.json").read_text())["trials"]
        print(f"tune:   {tune:.1f} s fit+collect ({tune / len(specs):.2f} s/trial; inside run_trial "
              f"{sum(t['wall_s'] for t in trials):.1f} s); whole job {job['job_s']:.1f} s")
        print(f"submit -> running: {job['submit_to_running_s']:.2f} s", flush=True)
        d2 = direct_in_fresh_process(ov, Path(tmp) / "direct2", warm=True)
        direct2 = d2["total_s"]
        print(f"direct again: {direct2:.1f} s (fresh process; inside run_trial {d2['inside_s']:.1f} s)")
        print(f"for reference, not in the ratio: the direct trials once more in that process, everything "
              f"imported: {d2['warm_s']:.1f} s (tune/warm = {tune / d2['warm_s']:.2f})")
        print(f"ratio tune/direct = {tune / ((direct + direct2) / 2):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
