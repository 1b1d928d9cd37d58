"""What a sweep job that ended left behind, read back by ``submit --wait`` and ``window``: the failed trials
and the early-stop error its summary line gives (``jobs/sweep.py`` ends its log with one JSON line), and the
report it pushed, pulled and verified. A sweep some of whose trials failed ends FAILED but still pushes the
report of the trials that finished (with the failed ones listed in it): that report is pulled too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracebridge.cluster.client import ClusterError, job_summary, logs


def failed_job(client: Any, submission_id: str) -> dict[str, Any]:
    """What a failed sweep job's summary line says: ``failures`` (the failed trials, ``trial_id`` and
    ``error``), and for a job that stopped before any trial ran, its ``error`` (``jobs``' ``job_error``);
    ``failures`` None when the job printed no summary or its log cannot be read. ``report_pushed`` says
    whether the job pushed a report (the summary names its ``report_uri``)."""
    try:
        found = job_summary(logs(client, submission_id))
    except ClusterError:
        found = None
    if not found:
        return {"failures": None, "report_pushed": False}
    return {
        "failures": list(found.get("failures") or []),
        "report_pushed": bool(found.get("report_uri")),
        **({"error": found["error"]} if found.get("ok") is False and found.get("error") else {}),
    }


def pull_job_report(plan: Any, submission_id: str, out: Path) -> dict[str, Any]:
    """Pull and verify the report the job ``submission_id`` of ``plan`` (a ``submit.SweepPlan``) pushed into
    ``out`` (``<out>/<sweep id>``): ``{"report", "report_problems"}`` plus ``"storage_unreachable": True`` when
    the storage did not answer, ``"report_changing": True`` when every read of it differed (another attempt
    pushing over it; ``submit.pull_report``); ``report`` is None unless it verified."""
    from tracebridge.cluster.submit import pull_report

    pulled = pull_report(
        plan.report_uri, Path(out) / plan.sweep_id, plan.cfg.storage_io, plan.expect(submission_id)
    )
    res: dict[str, Any] = {"report": pulled["report_html"], "report_problems": pulled["problems"]}
    if pulled.get("unreachable"):
        res["storage_unreachable"] = True
    if pulled.get("changing"):  # another attempt pushing over it while it was read: try again later
        res["report_changing"] = True
    return res


def failed_outcome(client: Any, plan: Any, info: dict[str, Any], out: Path) -> dict[str, Any]:
    """Why the job of ``info`` (``client.wait``'s answer) did not succeed: its ``message``, ``failures`` and
    early-stop ``error`` (``failed_job``), and, when it pushed a report (some trials finished), that report
    pulled into ``out`` (``report``, ``report_problems``; a storage that does not answer is one more problem
    here: the job failed whatever the pull gives)."""
    found = failed_job(client, info["submission_id"])
    pushed = found.pop("report_pushed")
    res = {"message": info.get("message"), **found}
    if pushed:
        pulled = pull_job_report(plan, info["submission_id"], out)
        pulled.pop("storage_unreachable", None)
        pulled.pop("report_changing", None)
        res.update(pulled)
    return res
