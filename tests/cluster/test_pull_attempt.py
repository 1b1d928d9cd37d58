"""A report manifest names the submission (sweep id + attempt) that wrote it, and a pull for one attempt
refuses another attempt's report: all attempts of a sweep push to the same ``reports/<sweep id>``, so a
failed ``-a2`` that pushed nothing leaves ``-a1``'s report there (before: pulled for ``-a2`` and called
verified). Manifests written before the field are still accepted, with a note. On report folders; the
Ray side (a real job stamping its id, ``pull <submission id>`` and ``pull <sweep id>``) is in
test_pull_matches_job.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.report.test_report import trials as fake_trials
from tracebridge.cluster.submit import pull_report
from tracebridge.report import verify_report, write_report

SWEEP, BUNDLE = "smoke-0123456789ab", "b" * 64


def report(tmp: Path, name: str, submission_id: str | None, sweep: str = SWEEP) -> Path:
    """A verified report folder of ``sweep`` stamped with ``submission_id``."""
    out = tmp / name
    write_report(fake_trials(tmp / f"{name}-trials", uplift=20), out, config={"sweep_id": sweep}, wall_s=1.0,
                 bundle_id=BUNDLE, n_boot=50, sweep_id=sweep, submission_id=submission_id)
    return out


def expect(submission_id: str) -> dict[str, str]:
    return {"sweep_id": SWEEP, "bundle_id": BUNDLE, "submission_id": submission_id}


def test_pull_for_an_attempt_refuses_the_report_another_attempt_wrote(tmp_path):
    src = report(tmp_path, "a1", f"{SWEEP}-a1")
    assert json.loads((src / "manifest.json").read_text())["submission_id"] == f"{SWEEP}-a1"

    res = pull_report(str(src), tmp_path / "out" / SWEEP, expect=expect(f"{SWEEP}-a2"))
    assert res["report_html"] is None and not (tmp_path / "out" / SWEEP).exists(), res
    (problem,) = res["problems"]
    assert problem.startswith(f"{src}/manifest.json:submission_id: written by {SWEEP}-a1, not by {SWEEP}-a2")
    assert f"tracebridge pull {SWEEP}-a1" in problem

    ok = pull_report(str(src), tmp_path / "out" / SWEEP, expect=expect(f"{SWEEP}-a1"))
    assert ok["problems"] == [] and ok["written_by"] == f"{SWEEP}-a1" and ok["notes"] == [], ok
    # by sweep id (no attempt expected): whichever attempt wrote the report, named
    latest = pull_report(str(src), tmp_path / "out2" / SWEEP, expect={"sweep_id": SWEEP, "bundle_id": BUNDLE})
    assert latest["problems"] == [] and latest["written_by"] == f"{SWEEP}-a1"


def test_the_submission_id_is_part_of_the_report_id(tmp_path):
    """Editing the stamp to pass a report off as another attempt's breaks the manifest's own id."""
    src = report(tmp_path, "a1", f"{SWEEP}-a1")
    man = json.loads((src / "manifest.json").read_text())
    (src / "manifest.json").write_text(json.dumps({**man, "submission_id": f"{SWEEP}-a2"}))
    assert any(":report_id: does not match" in p for p in verify_report(src))
    res = pull_report(str(src), tmp_path / "out" / SWEEP, expect=expect(f"{SWEEP}-a2"))
    assert res["report_html"] is None and any(":report_id:" in p for p in res["problems"]), res


def test_a_manifest_from_before_the_field_is_pulled_with_a_note(tmp_path):
    """What the earlier code wrote: no submission_id key, report_id over files, config hash and bundle."""
    src = report(tmp_path, "old", None)
    man = json.loads((src / "manifest.json").read_text())
    del man["submission_id"]
    (src / "manifest.json").write_text(json.dumps(man))
    assert verify_report(src) == []

    res = pull_report(str(src), tmp_path / "out" / SWEEP, expect=expect(f"{SWEEP}-a2"))
    assert res["problems"] == [] and res["report_html"] and res["written_by"] is None, res
    (note,) = res["notes"]
    assert "records no submission_id" in note and "not checked" in note
