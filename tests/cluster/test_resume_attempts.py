"""Which attempt ``submit --resume`` sends, from the cluster's jobs as ``list_jobs`` gives them (attempts as
integers): the running one, one past the last, or none when the latest attempt SUCCEEDED; a job of the sweep
whose metadata holds no whole-number attempt (written by hand or another tool) counts as none instead of
stopping ``--resume`` with a ValueError traceback."""

from __future__ import annotations

from tracebridge.cluster.client import typed_metadata
from tracebridge.cluster.resume import succeeded_job
from tracebridge.cluster.submit import next_attempt


def job(attempt, status: str, t: int, sweep: str = "sw") -> dict:
    return {"submission_id": f"{sweep}-a{attempt}", "sweep_id": sweep, "status": status, "start_time": t,
            "attempt": typed_metadata({"attempt": attempt})["attempt"]}


def test_metadata_numbers_are_integers_and_other_values_stay() -> None:
    assert typed_metadata({"attempt": "2", "trials": "12", "sweep_id": "7"}) == {"attempt": 2, "trials": 12,
                                                                                  "sweep_id": "7"}
    assert typed_metadata({"attempt": "first"}) == {"attempt": "first"} and typed_metadata(None) == {}


def test_resume_sends_the_next_attempt_unless_the_latest_succeeded() -> None:
    failed_then_ok = [job("1", "FAILED", 1), job("2", "SUCCEEDED", 2)]
    assert succeeded_job(failed_then_ok, "sw")["submission_id"] == "sw-a2"
    ok_then_failed = [job("1", "SUCCEEDED", 1), job("2", "FAILED", 2)]
    assert succeeded_job(ok_then_failed, "sw") is None and next_attempt(ok_then_failed, "sw") == (3, None)
    running = [job("1", "SUCCEEDED", 1), job("2", "RUNNING", 2)]
    assert succeeded_job(running, "sw") is None and next_attempt(running, "sw")[0] == 2
    assert succeeded_job([job("1", "SUCCEEDED", 1, "other")], "sw") is None


def test_a_job_without_a_whole_number_attempt_counts_as_none() -> None:
    jobs = [job("first", "STOPPED", 1), job("1", "FAILED", 2)]
    assert next_attempt(jobs, "sw") == (2, None)
    assert next_attempt([job("x", "RUNNING", 1)], "sw")[0] == 1
