"""The jobs' argument and config handling, without Ray: --help, usage errors, a bundle, work_dir
or storage they cannot use and eval overrides that do not load each end the job with one error
line and exit 2 before Ray starts (``init_ray`` is replaced by a function that fails the test)."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
SMOKE = str(ROOT / "configs" / "sweep" / "smoke.yaml")
JOBS = ("sweep", "train_role", "eval")


def load_job(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_job_{name}", ROOT / "jobs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def no_ray(monkeypatch):
    from tracebridge.sweep import publish

    def refuse(*_a, **_k):
        raise AssertionError("Ray was started although the job should have stopped before")

    monkeypatch.setattr(publish, "init_ray", refuse)


@pytest.mark.parametrize("job", JOBS)
def test_help_exits_0_and_usage_errors_exit_2(job):
    run = [sys.executable, f"jobs/{job}.py"]
    res = subprocess.run([*run, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0 and "Run directly" in res.stdout  # was exit 1, the "trials failed" code
    for bad in ([], ["--smoke-test"]):
        res = subprocess.run([*run, *bad], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert res.returncode == 2 and "Run directly" in res.stderr, bad


def test_sweep_refuses_storage_it_cannot_write_before_ray(tmp_path, no_ray, caplog):
    (tmp_path / "file").write_text("")
    rc = load_job("sweep").main(SMOKE, [f"bundle={BUNDLE}", f"storage={tmp_path}/file/storage",
                                        f"work_dir={tmp_path}/work"])
    assert rc == 2 and "cannot write there" in caplog.text and "storage=" in caplog.text
    assert not any(tmp_path.glob("file/**/.write-probe-*"))


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_jobs_refuse_a_work_dir_they_cannot_create(tmp_path, no_ray, caplog, capsys):
    """Each job also prints why as its last stdout line (the summary ``submit`` reads from the log):
    before, a job stopping early printed nothing there and ``submit --json`` knew only Ray's exit code."""
    (tmp_path / "file").write_text("")
    args = [f"bundle={BUNDLE}", f"storage={tmp_path}/storage", f"work_dir={tmp_path}/file/work"]
    runs = {"sweep": lambda job: job.main(SMOKE, args),  # was a NotADirectoryError traceback
            "train_role": lambda job: job.main(SMOKE, None, args),
            "eval": lambda job: job.main(SMOKE, args, ["eval.n_boot=300"])}
    for name, run in runs.items():
        assert run(load_job(name)) == 2, name
        line = last_json_line(capsys.readouterr().out)
        assert line["ok"] is False and line["exit_code"] == 2 and "sweep_id" in line, (name, line)
        assert line["error"].startswith(f"work_dir={tmp_path}/file/work: "), (name, line)
    assert caplog.text.count(f"work_dir={tmp_path}/file/work") == 3


def test_the_job_summary_of_an_early_stop_is_what_submit_reads(tmp_path, no_ray, capsys):
    from tracebridge.cluster.client import job_summary

    assert load_job("sweep").main(SMOKE, [f"bundle={tmp_path}/nothing", f"storage={tmp_path}/storage"]) == 2
    out = capsys.readouterr().out
    found = job_summary("2026-11-28 INFO some log line\n" + out)
    assert found == last_json_line(out) and found["sweep_id"] is None  # no bundle: no sweep id yet
    assert found["error"].startswith(f"bundle {tmp_path}/nothing: "), found


def test_eval_checks_bundle_and_overrides_on_the_driver(tmp_path, no_ray, caplog):
    job = load_job("eval")
    args = [f"bundle={BUNDLE}", f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work"]
    assert job.main(SMOKE, args, ["eval.n_boot_typo=300"]) == 2  # was found in every Ray task
    assert "eval.n_boot_typo: unknown key" in caplog.text
    assert job.main(SMOKE, args, ["data.eval_split=tset"]) == 2
    assert "data.eval_split=tset: use train, validation or test" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        missing = [f"bundle={tmp_path}/nothing", *args[1:]]
        assert job.main(SMOKE, missing, ["eval.n_boot=300"]) == 2  # was a BundleError traceback, exit 1
    assert f"bundle {tmp_path}/nothing" in caplog.text


def reexport(bundle: Path) -> str:
    """Another valid bundle in the same folder (one verifier row fewer, manifest rewritten): what a
    re-export into that folder, or a LATEST pointer moved by a nightly push, looks like to a job."""
    import json

    from tracebridge.export.bundle import compute_bundle_id, sha256_file, verify_bundle

    f = bundle / "verifier_sft.jsonl"
    rows = f.read_text().splitlines(keepends=True)
    f.write_text("".join(rows[1:]))
    man = json.loads((bundle / "manifest.json").read_text())
    for e in man["files"]:
        if e["path"] == f.name:
            e.update(sha256=sha256_file(f), rows=len(rows) - 1, bytes=f.stat().st_size)
    man["bundle_id"] = compute_bundle_id([e["sha256"] for e in man["files"]])
    (bundle / "manifest.json").write_text(json.dumps(man))
    return verify_bundle(bundle).bundle_id


def test_sweep_job_refuses_a_bundle_changed_after_submit(tmp_path, no_ray, caplog, monkeypatch):
    """submit checked bundle A and named the sweep and its report after it; the job, started later, finds
    bundle B at the same path. Before: it trained B under another sweep id and pushed the report where
    submit does not look (submit then pulled nothing, or an earlier report of A)."""
    import shutil

    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep

    monkeypatch.chdir(ROOT)
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    plan = plan_sweep(Path(SMOKE), [f"bundle={bundle}", f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work"],
                      ClusterConfig(), ROOT)
    new_id = reexport(bundle)
    assert new_id != plan.bundle_id
    with caplog.at_level(logging.ERROR):
        assert load_job("sweep").main(plan.config_path, plan.overrides) == 2  # before Ray starts (no_ray)
    assert f"{new_id} is not the submitted bundle {plan.bundle_id}" in caplog.text
    assert not (tmp_path / "storage").exists()
    # a bundle_id set by hand that is not the bundle's is refused by submit's own check
    from tracebridge.config import ConfigError

    with pytest.raises(ConfigError, match=f"bundle_id={plan.bundle_id}: the bundle at {bundle} is {new_id}"):
        plan_sweep(Path(SMOKE), [f"bundle={bundle}", f"bundle_id={plan.bundle_id}"], ClusterConfig(), ROOT)
