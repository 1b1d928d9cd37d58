"""Export throughput and memory: MB/s of traces → bundle on one core (CPU time, pinned to one
core, best of 3), against a plain
read + ``json.loads`` + ``json.dumps`` + write loop over the same files in the same run, and the
peak RSS of an export at 1× and 10× the input (each measured in a fresh subprocess).

    python scripts/bench_export.py [--seeds 25] [--scale 10] [--smoke]

Input: simulator traces (``configs/collect/smoke.yaml``, 16 episodes per seed; the 10× input is
ten times the seeds, so no run is a duplicate). The export runs
with the default config: quality checks, pass 1 + pass 2 redaction, dedup, split, leakage,
views, report and manifest. Prints the ratio (export MB/s / plain-loop MB/s) last.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def one_core() -> None:
    """Pin this process to one core (the figure is per core)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def collect(out: Path, seeds: int) -> Path:
    from tracebridge.config import load_config
    from tracebridge.sim.collect import collect as run_collect
    from tracebridge.sim.config import CollectConfig

    cfg = load_config(CollectConfig, ROOT / "configs/collect/smoke.yaml",
                      ["workers=1", f"seeds.fixed=[{','.join(map(str, range(seeds)))}]"])
    run_collect(cfg, str(out))
    return out


def trace_files(root: Path) -> list[Path]:
    return sorted(p for d in root.iterdir() for p in (d / "events.jsonl", d / "session.json") if p.is_file())


def clock() -> float:
    """CPU seconds of this process: on a shared machine, wall time measures the neighbours too."""
    return time.process_time()


def plain_loop(files: list[Path], out: Path) -> float:
    """CPU seconds to read, parse and write back every record of ``files``."""
    t0 = clock()
    with open(out, "w") as sink:
        for f in files:
            if f.suffix == ".json":
                sink.write(json.dumps(json.loads(f.read_text())) + "\n")
                continue
            with open(f) as fh:
                sink.writelines(json.dumps(json.loads(line)) + "\n" for line in fh)
    return clock() - t0


def export_once(root: Path, out: Path) -> float:
    from tracebridge.export.pipeline import export_traces

    t0 = clock()
    res = export_traces(root, out)
    dt = clock() - t0
    if res.report["runs"]["read"] != res.report["runs"]["accepted"] + res.report["runs"]["quarantined"]:
        raise SystemExit("counts do not reconcile")
    return dt


def rss_child(root: Path) -> None:
    """Subprocess entry: export ``root`` and print the peak RSS in MB."""
    one_core()
    with tempfile.TemporaryDirectory() as tmp:
        export_once(root, Path(tmp))
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def peak_rss(root: Path) -> float:
    res = subprocess.run([sys.executable, __file__, "--rss-child", str(root)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=25, help="seeds of the smoke matrix (16 episodes each) at 1x")
    ap.add_argument("--scale", type=int, default=10, help="input multiple for the second RSS figure")
    ap.add_argument("--smoke", action="store_true", help="tiny input, for the test suite")
    ap.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    one_core()
    seeds, scale = (2, 2) if args.smoke else (args.seeds, args.scale)
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        base = collect(tmp / "traces", seeds)
        files = trace_files(base)
        mb = sum(f.stat().st_size for f in files) / 1e6
        runs = len([p for p in base.iterdir() if p.is_dir()])
        export_once(base, tmp / "warm")  # imports and lazy tables, paid once as by any long-lived process
        plain_loop(files, tmp / "warm.jsonl")
        plain = min(plain_loop(files, tmp / f"plain{i}.jsonl") for i in range(3))
        exp = min(export_once(base, tmp / f"bundles{i}") for i in range(3))
        rss1 = peak_rss(base)
        big = collect(tmp / "traces_big", seeds * scale)  # fresh episodes: no duplicates to drop
        rss10 = peak_rss(big)
        print(f"input: {runs} runs, {mb:.2f} MB of traces (events.jsonl + session.json)")
        print(f"plain read+json.loads+json.dumps+write: {mb / plain:.2f} MB/s ({plain:.2f} CPU s, best of 3)")
        print(f"tracebridge export (curate + views + bundle): {mb / exp:.2f} MB/s ({exp:.2f} CPU s, best of 3)")
        mb10 = sum(f.stat().st_size for f in trace_files(big)) / 1e6
        print(f"peak RSS export: {rss1:.0f} MB at 1x ({mb:.1f} MB), {rss10:.0f} MB at {scale}x ({mb10:.1f} MB)")
        print(f"ratio export/plain (MB/s): {plain / exp:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
