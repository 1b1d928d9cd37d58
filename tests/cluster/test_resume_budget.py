"""A resumed sweep runs under the budget of the submit that resumes it, not the one its first attempt
pickled into Tune's experiment state (``Tuner.restore`` brings back the first TuneConfig), and trials
the time budget stopped are named, with the budget as the reason. Its trial limit (``budget.max_concurrent``,
or cluster GPUs / GPUs per trial) is the resuming attempt's too: Tune's grid generator restored its first
attempt's ``max_concurrent`` with the rest of its saved state. So are its retries (``max_failures``): Tune
restored the first attempt's FailureConfig, and each trial with the max_failures it was created with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.test_submit import cli, sweep_args

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    from tests.cluster.test_submit import ROOT

    monkeypatch.chdir(ROOT)


def grid_limit(tmp: Path, sweep_id: str) -> int:
    """The trial limit Tune's grid generator saved last in the sweep's run on storage (what it would resume with).

    Newest by name (Tune stamps each driver session's files with its start time), not by mtime: the end of a
    run uploads the driver's whole experiment folder again, so every attempt's files get about the same mtime."""
    from ray import cloudpickle

    newest = max((tmp / "storage" / sweep_id).glob("basic-variant-state-*.json"), key=lambda p: p.name)
    return cloudpickle.loads(newest.read_bytes())["max_concurrent"]


def trial_retries(tmp: Path, sweep_id: str) -> dict[str, int]:
    """Each trial's ``max_failures`` in the newest experiment state Tune saved of the sweep's run on storage."""
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    newest = max((tmp / "storage" / sweep_id).glob("experiment_state-*.json"), key=lambda p: p.name)
    trials = [_loads_with_cloudpickle(t) for t, _meta in _loads_with_cloudpickle(newest.read_bytes())["trial_data"]]
    return {t["config"]["spec"]["trial_id"]: t["max_failures"] for t in trials}


def test_resume_takes_the_new_budget_and_budget_stops_are_named(ray_head, tmp_path):
    y = ray_head["yaml"]
    args = sweep_args(tmp_path, "variants=[baseline,optimized]")
    # 0.36 s of Tune time: no trial worker even finishes importing torch before the budget stops it
    code, first = cli("submit", *args, "budget.max_hours=0.0001", "max_failures=0", "--cluster", y, "--keep", "--wait",
                      "--out", str(tmp_path / "r"))
    assert code == 1 and first["status"] == "FAILED", first
    # before: two '?' trials with "no checkpoint reported" plus the same two again as "not run"
    assert sorted(f["trial_id"] for f in first["failures"]) == ["verifier-baseline-s0", "verifier-optimized-s0"]
    assert all("budget.max_hours=0.0001" in f["error"] and "--resume" in f["error"] for f in first["failures"]), first["failures"]
    assert grid_limit(tmp_path, first["sweep_id"]) == 0  # no cap: CPU trials, budget.max_concurrent=0
    assert set(trial_retries(tmp_path, first["sweep_id"]).values()) == {0}

    # the budget raised (0 = none) on the resume: before, the restored run stopped at the old 0.36 s again;
    # and one trial at a time now: before, the restored generator kept the first attempt's 0 (no cap)
    # and 3 retries per trial: before, the restored trials kept the first attempt's max_failures=0
    code, res = cli("submit", *args, "budget.max_hours=0", "budget.max_concurrent=1", "max_failures=3", "--cluster", y,
                    "--keep", "--resume", "--wait", "--out", str(tmp_path / "r"))
    assert code == 0 and res["status"] == "SUCCEEDED" and res["submission_id"].endswith("-a2"), res
    assert res["sweep_id"] == first["sweep_id"] and res["report_problems"] == []
    # no trial had failed before the resume: 3 retries each (a trial's earlier failures add to it)
    assert trial_retries(tmp_path, first["sweep_id"]) == {"verifier-baseline-s0": 3, "verifier-optimized-s0": 3}
    assert grid_limit(tmp_path, first["sweep_id"]) == 1
