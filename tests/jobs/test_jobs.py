"""The jobs end to end on CPU: the plain `ray job submit --working-dir . -- python jobs/sweep.py`
against the token-protected local head (its trials through the Ray Train path: TorchTrainer +
ScalingConfig with one CPU worker, the multi-GPU code path), jobs/eval.py re-evaluating its
checkpoints on another split, and jobs/train_role.py running one grid cell in-process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tracebridge.report import verify_report

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
RAY = str(Path(sys.executable).parent / "ray")


def ray_env(head) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": head["info"].token_file}


def submit(head, sub_id: str, *entry: str) -> subprocess.CompletedProcess:
    return subprocess.run([RAY, "job", "submit", "--address", head["info"].address, "--working-dir", ".",
                           "--submission-id", sub_id, "--", "python", *entry], cwd=ROOT, env=ray_env(head),
                          capture_output=True, text=True, timeout=480, check=False)


def summary(text: str) -> dict:
    return json.loads(next(line for line in reversed(text.splitlines()) if line.startswith('{"sweep_id"')))


@pytest.fixture(scope="module")
def plain_job(ray_head, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plain")
    args = ["configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp}/storage", f"work_dir={tmp}/work",
            "seeds=[1]", "resources.use_train=true", "overrides.train.save_steps=0",
            f"overrides.data.prepared_cache={tmp}/prepared"]
    res = submit(ray_head, f"plain-{tmp.name}", "jobs/sweep.py", *args)
    return {"res": res, "args": args, "tmp": tmp}


def test_plain_ray_job_submit_runs_the_sweep(plain_job):
    res = plain_job["res"]
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert "succeeded" in (res.stdout + res.stderr).lower()
    s = summary(res.stdout)
    assert s["trials"] == s["grid"] == 2 and s["failures"] == []
    train_runs = plain_job["tmp"] / "storage" / s["sweep_id"] / "_train"
    assert sorted(p.name for p in train_runs.iterdir()) == ["verifier-baseline-s1", "verifier-optimized-s1"]
    report = Path(s["report_uri"])
    assert report.is_relative_to(plain_job["tmp"]) and verify_report(report) == []
    # data.prepared_cache reaches the trials: each variant's rows differ, so each stored its own set
    trials = json.loads((report / "results.json").read_text())["trials"]
    assert sorted(t.get("sft/prepared") for t in trials) == ["stored", "stored"]
    assert [t.get("dpo/prepared") for t in trials if t["variant"] == "optimized"] == ["stored"]
    assert len([p for p in (plain_job["tmp"] / "prepared").iterdir() if p.is_dir()]) == 3
    # Ray Train trials record their rank-0 node and every worker's GPUs; here one CPU worker each
    assert all(t["resources"]["source"] == "ray" and t["resources"]["workers"] == 1 for t in trials)
    man = json.loads((report / "manifest.json").read_text())
    assert man["sweep_id"] == s["sweep_id"] and man["gpu_hours"] == 0.0 and man["cost_estimate"]["usd"] == 0.0
    assert man["cluster"]["nodes"][socket.gethostname()]["trials"] == 2
    out = subprocess.run([sys.executable, "-m", "tracebridge.cli.__main__", "pull", str(report), "--out",
                          str(plain_job["tmp"] / "pulled"), "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and json.loads(out.stdout)["problems"] == []


def test_eval_job_reevaluates_checkpoints(plain_job, ray_head):
    assert plain_job["res"].returncode == 0
    res = submit(ray_head, f"eval-{plain_job['tmp'].name}", "jobs/eval.py", *plain_job["args"], "--",
                 "eval.n_boot=300", "data.eval_split=validation")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    s = summary(res.stdout)
    assert s["trials"] == 2 and s["failures"] == [] and "-eval-" in s["report_uri"]
    report = Path(s["report_uri"])
    assert verify_report(report) == []
    trials = json.loads((report / "results.json").read_text())["trials"]
    assert {t["variant"] for t in trials} == {"baseline", "optimized"}
    assert all(t["verifier/eval_rows"] == 8 for t in trials)  # the validation split, not test (16)


def test_eval_job_refuses_retraining_overrides(plain_job):
    res = subprocess.run([sys.executable, "jobs/eval.py", *plain_job["args"], "--", "train.lr=0.1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2 and "only eval.*" in res.stderr


def test_train_role_runs_one_cell(tmp_path):
    res = subprocess.run([sys.executable, "jobs/train_role.py", "configs/sweep/smoke.yaml", "verifier-baseline-s0",
                          f"bundle={BUNDLE}", f"work_dir={tmp_path}", "overrides.train.max_steps=2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["role"] == "verifier" and out["variant"] == "baseline" and out["sft/steps"] == 2
    bad = subprocess.run([sys.executable, "jobs/train_role.py", "configs/sweep/smoke.yaml", "planner-x",
                          f"bundle={BUNDLE}"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "verifier-optimized-s0" in bad.stderr


def test_train_role_exits_2_on_a_config_problem_the_trial_finds(tmp_path):
    """The trial's own checks (data.prepared_cache, model.path) raised ConfigError through main: a
    traceback and exit 1, where the docstring promises 2 for a bad config."""
    (tmp_path / "cache").write_text("x")
    res = subprocess.run([sys.executable, "jobs/train_role.py", "configs/sweep/smoke.yaml", "verifier-baseline-s0",
                          f"bundle={BUNDLE}", f"work_dir={tmp_path}/work",
                          f"overrides.data.prepared_cache={tmp_path}/cache"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and f"{tmp_path}/cache is a file, not a folder" in res.stderr


def test_tampered_bundle_is_refused_before_any_training(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    rows = (bundle / "verifier_sft.jsonl").read_text().splitlines()
    (bundle / "verifier_sft.jsonl").write_text("\n".join([rows[1], rows[0], *rows[2:]]) + "\n")  # same bytes, reordered
    res = subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", f"bundle={bundle}",
                          f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2, res.stderr[-3000:]
    assert f"bundle {bundle}" in res.stderr and "verifier_sft.jsonl" in res.stderr and "sha256" in res.stderr
    assert "cluster resources" not in res.stderr  # refused before Ray was even started
    assert not (tmp_path / "storage").exists() and not list((tmp_path / "work").glob("*/trials"))


def test_trial_refuses_a_bundle_tampered_after_submit(tmp_path):
    """A trial re-verifies the bundle on its node: a file changed after the driver's check is
    refused before run_trial, and nothing is reported to Tune."""
    from tracebridge.sweep import grid
    from tracebridge.sweep.trainable import TrialContext, run_one
    from tracebridge.train.data import BundleError

    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    _, recipes, specs = grid.load_checked("configs/sweep/smoke.yaml", [f"bundle={bundle}"])
    bid = json.loads((bundle / "manifest.json").read_text())["bundle_id"]
    ctx = TrialContext(sweep_id="t", bundle_uri=str(bundle), bundle_id=bid, work_root=str(tmp_path / "work"),
                       recipes=recipes)
    with (bundle / "verifier_pref_pairs.jsonl").open("a") as fh:
        fh.write('{"prompt": "x", "chosen": "y", "rejected": "z"}\n')
    reported = []
    with pytest.raises(BundleError, match=r"verifier_pref_pairs.jsonl.*(sha256|size)"):
        run_one(specs[0], ctx, lambda *a, **k: reported.append(a), None, None)
    assert reported == []
    work = tmp_path / "work" / "trials" / specs[0]["trial_id"]
    assert sorted(p.name for p in work.iterdir()) == ["attempts.jsonl"]  # no recipe written, no checkpoint
