"""Messy schema-v2 trace roots through ``validate``, ``redact`` and ``export``: every bad input is a
located problem or a quarantined run (read = accepted + quarantined), never a traceback."""

from __future__ import annotations

import json
import os
import pathlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.conftest import record_sample_run
from tracebridge.capture.reader import iter_lines
from tracebridge.cli.app import app
from tracebridge.curate.config import QUALITY_RULES
from tracebridge.curate.redact import Redactor
from tracebridge.curate.redact_files import redact_file
from tracebridge.export import bundle
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.schema.validate import validate_root
from tracebridge.testing.mutate import edit_event

runner = CliRunner()


def _root(tmp_path: Path) -> tuple[Path, Path]:
    """A trace root of two complete runs (different goals: no dedup); returns (root, first run)."""
    root = tmp_path / "traces"
    first = record_sample_run(root, goal="count lines in a.txt")
    record_sample_run(root, goal="count lines in b.txt")
    return root, root / first


def _deep(depth: int) -> Any:
    v: Any = "x"
    for _ in range(depth):
        v = [v]
    return v


def _quarantine(res: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (res.path / "quarantine.jsonl").read_text().splitlines()]


def _counts(res: Any) -> dict[str, int]:
    c = res.report["runs"]
    assert c["read"] == c["accepted"] + c["quarantined"]
    return c


def test_nesting_deeper_than_orjson_writes_quarantines_the_run_not_the_export(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    line = edit_event(run, "worker_tool_call", lambda ev: ev["payload"]["args"].update(deep=_deep(300)))
    res = export_traces(root, tmp_path / "b", ExportConfig())
    c = _counts(res)
    assert c["quarantined"] == 1 and c["exported"] == 1
    (q,) = _quarantine(res)
    assert q["rules"] == ["build_error"]
    assert q["reasons"][0]["where"] == f"{run.name}/events.jsonl:{line}:<line>"
    assert "254 levels" in q["reasons"][0]["message"]
    assert res.manifest.governance["pii_scan"] == "clean"  # the quarantined run left no pass-2 count behind


def test_a_session_field_nesting_too_deep_is_named_in_session_json(tmp_path: Path) -> None:
    """The run's quarantine reason named ``events.jsonl:-:<run>`` when the field too deep was the session's."""
    root, run = _root(tmp_path)
    sess = json.loads((run / "session.json").read_text())
    sess["zz"] = _deep(300)
    (run / "session.json").write_text(json.dumps(sess))
    cfg = ExportConfig()
    cfg.quality.allow = [*cfg.quality.allow, "schema_drift"]  # the unknown field alone does not quarantine it
    res = export_traces(root, tmp_path / "b", cfg)
    assert _counts(res)["quarantined"] == 1
    (q,) = _quarantine(res)
    assert q["rules"][0] == "build_error" and q["reasons"][0]["where"] == f"{run.name}/session.json:-:zz"
    assert "254 levels" in q["reasons"][0]["message"]


@pytest.mark.parametrize("where, damage", [
    ("events.jsonl:2:payload.plan",
     lambda run: edit_event(run, "planner_output", lambda ev: ev["payload"].update(plan={"a": 1}))),
    ("session.json:-:goal", lambda run: (run / "session.json").write_text(json.dumps(
        {**json.loads((run / "session.json").read_text()), "goal": "count lines"}))),
])
def test_an_allowed_schema_problem_a_step_cannot_read_quarantines_the_run(tmp_path: Path, where: str,
                                                                          damage: Any) -> None:
    root, run = _root(tmp_path)
    damage(run)
    cfg = ExportConfig()
    cfg.quality.allow = ["schema_invalid"]
    res = export_traces(root, tmp_path / "b", cfg)
    assert _counts(res)["quarantined"] == 1 and res.report["runs"]["exported"] == 1
    (q,) = _quarantine(res)
    assert q["rules"] == ["build_error", "schema_invalid"]
    assert any(r["where"] == f"{run.name}/{where}" for r in q["reasons"])  # the allowed problem, located
    assert res.manifest.governance["pii_scan"] == "clean"


def test_a_missing_or_unreadable_events_file_is_a_failing_run(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    (run / "events.jsonl").unlink()
    rep = validate_root(root)
    assert not rep.passed and rep.runs_schema_valid == 1
    assert any("events.jsonl:-: <file>: missing events file" in p for p in rep.problems)
    (run / "events.jsonl").mkdir()  # open() fails as it does on a chmod 000 file
    rep = validate_root(root)
    assert not rep.passed and rep.runs_total == 2
    assert any("events.jsonl:-: <file>: unreadable:" in p for p in rep.problems)
    res = export_traces(root, tmp_path / "b", ExportConfig())
    assert _counts(res)["quarantined"] == 1


def test_a_run_folder_that_cannot_be_searched_is_counted_not_a_crash(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, run = _root(tmp_path)
    (run / "events.jsonl").unlink()
    (run / "events.jsonl").mkdir()
    exists, is_file = pathlib.Path.exists, pathlib.Path.is_file

    def denied(orig: Any) -> Any:  # what stat() does inside a chmod 000 folder (root bypasses chmod)
        def f(self: Path) -> bool:
            if self.parent == run:
                raise PermissionError(13, "Permission denied", str(self))
            return orig(self)
        return f

    monkeypatch.setattr(pathlib.Path, "exists", denied(exists))
    monkeypatch.setattr(pathlib.Path, "is_file", denied(is_file))
    rep = validate_root(root)
    assert rep.runs_total == 2 and not rep.passed
    res = export_traces(root, tmp_path / "b", ExportConfig())
    assert _counts(res)["read"] == 2 and res.report["runs"]["quarantined"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files")
def test_chmod_000_events_file(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    os.chmod(run / "events.jsonl", 0)
    try:
        rep = validate_root(root)
        assert not rep.passed and any("unreadable" in p for p in rep.problems)
    finally:
        os.chmod(run / "events.jsonl", 0o644)


def test_an_invalid_utf8_line_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "caf\xff"}\n')
    bad = [ln for ln in iter_lines(path) if ln.error]
    assert [(ln.lineno, ln.error) for ln in bad] == [
        (2, "invalid UTF-8: byte 0xff at byte offset 10 (not a UTF-8 text line)")]


@pytest.mark.parametrize("argv", [["validate", "{f}"], ["export", "{f}", "--out", "{d}/b"],
                                  ["export", "{root}", "--out", "{f}"], ["export", "{root}", "--out", "{f}/sub"],
                                  ["redact", "{f}", "--out", "{f}"]])
def test_a_file_where_a_folder_belongs_is_an_error_not_a_traceback(tmp_path: Path, argv: list[str]) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text('{"a": "x"}\n')
    (tmp_path / "root").mkdir()
    res = runner.invoke(app, [a.format(f=f, d=tmp_path, root=tmp_path / "root") for a in argv])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.exception
    assert "not a trace root" in res.output or "is a file, not a folder" in res.output


def test_redact_file_keeps_bad_bytes_and_redacts_deep_json_as_text(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    deep = json.dumps({"deep": _deep(300), "to": "jane.doe@example.org"})
    src.write_bytes(deep.encode() + b'\n{"note": "caf\xff"}\n')
    res = redact_file(src, tmp_path / "out.jsonl", Redactor())
    out = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert res.lines == 2 and res.changed_lines == 1 and sum(res.findings.values()) == 1
    assert b"jane.doe" not in out[0] and b"<EMAIL_1>" in out[0]
    assert out[1] == b'{"note": "caf\xff"}'  # not replaced by U+FFFD


def test_an_invalid_utf8_byte_in_session_json_is_named_and_located(tmp_path: Path) -> None:
    """orjson's "str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)" pointed at
    the file's first character, wherever the byte was."""
    root, run = _root(tmp_path)
    path = run / "session.json"
    text = path.read_text()
    at = text.index('"family"')
    path.write_bytes(text[:at].encode() + b'"\xff' + text[at + 1:].encode())
    line, column = text[:at].count("\n") + 1, at + 1 - text.rfind("\n", 0, at)  # of the bad byte, 1-based
    res = export_traces(root, tmp_path / "b", ExportConfig())
    (q,) = _quarantine(res)
    assert q["rules"] == ["bad_json"] and _counts(res)["quarantined"] == 1
    assert q["reasons"][0]["where"] == f"{run.name}/session.json:{line}:<file>"
    assert q["reasons"][0]["message"] == f"not JSON: invalid UTF-8: byte 0xff at byte offset {at + 1} (column {column})"


def test_session_json_a_bom_is_read_past_and_a_nan_is_located(tmp_path: Path) -> None:
    """A byte order mark is read past, as at the head of events.jsonl (the run was quarantined as
    "unreadable: UTF-8 byte order mark (BOM) is not supported"); a value JSON does not allow (NaN) is
    "not JSON" at its line and column, not "unreadable"."""
    root, run = _root(tmp_path)
    other = next(r for r in root.iterdir() if r != run)
    path = run / "session.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    text = (other / "session.json").read_text()
    at = text.index('"run_id"')
    (other / "session.json").write_text(text[:at] + '"x": NaN, ' + text[at:])
    line, column = text[:at].count("\n") + 1, at + 5 - text.rfind("\n", 0, at)  # of the N, 1-based
    rep = validate_root(root)
    assert rep.problems == [(f"{other}/session.json:{line}: <file>: not JSON: unexpected character, "
                             f"expected a JSON value (column {column})")]
    res = export_traces(root, tmp_path / "b", ExportConfig())
    assert _counts(res)["exported"] == 1 and [q["run_id"] for q in _quarantine(res)] == [other.name]


def test_a_complete_run_without_events_fails_validate_as_the_export_quarantines_it(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    (run / "events.jsonl").write_text("\n")  # complete (session.json written), but no event
    rep = validate_root(root)
    assert not rep.passed and rep.runs_complete == 2 and rep.runs_schema_valid == 1
    assert f"{run}/events.jsonl:-: <file>: run has no events" in rep.problems
    assert rep.failures() == ["schema-valid 50.00% < 100.0%"]
    assert runner.invoke(app, ["validate", str(root)]).exit_code == 1
    res = export_traces(root, tmp_path / "b", ExportConfig())
    (q,) = _quarantine(res)
    assert q["rules"] == ["no_events"]  # the same problem, under the rule it always had
    assert q["reasons"] == [{"rule": "no_events", "where": f"{run.name}/events.jsonl:-:<file>",
                             "message": "run has no events"}]


def test_a_session_json_that_is_a_folder_is_not_a_file_not_missing(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    (run / "session.json").unlink()
    (run / "session.json").mkdir()
    rep = validate_root(root)
    assert rep.runs_complete == 2 and rep.runs_schema_valid == 1 and not rep.passed
    assert f"{run}/session.json:-: <file>: not a file (a folder)" in rep.problems
    assert not any("missing" in p for p in rep.problems)
    res = export_traces(root, tmp_path / "b", ExportConfig())
    (q,) = _quarantine(res)
    assert q["rules"] == ["bad_json"] and q["reasons"][0]["where"] == f"{run.name}/session.json:-:<file>"


def test_build_error_is_listed_in_the_dataset_report_like_every_rule(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    edit_event(run, "worker_tool_call", lambda ev: ev["payload"]["args"].update(deep=_deep(300)))
    res = export_traces(root, tmp_path / "b", ExportConfig())
    report = json.loads((res.path / "report.json").read_text())
    assert report["quarantine"]["by_rule"] == {"build_error": 1}
    assert "| build_error | 1 |" in (res.path / "report.md").read_text().splitlines()
    runs = [json.loads(line) for line in (res.path / "runs.jsonl").read_text().splitlines()]
    assert {"run_id": run.name, "status": "quarantined", "rules": ["build_error"]} in runs


def test_every_quarantine_rule_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for rule in (*QUALITY_RULES, "redaction_pass2", "unredacted", "build_error", "changed_during_export"):
        assert f"`{rule}`" in readme, rule


def test_plain_validate_output_escapes_terminal_control_codes(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    edit_event(run, "planner_input", lambda ev: ev.update(event_type="\x1b[2J\x1b[H"))
    edit_event(run, "planner_output", lambda ev: ev["payload"].update({"\x1b]0;pwned\x07": 1}))
    res = runner.invoke(app, ["validate", str(root)], color=True)  # color=True: click strips no ANSI
    assert res.exit_code == 1
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "payload.\\x1b]0;pwned\\x07: unknown field (schema drift)" in res.output
    assert "event_type=\\x1b[2J\\x1b[H" in res.output.replace("\n", "")  # the drift row of the table
    out = runner.invoke(app, ["validate", str(root), "--json"]).stdout  # JSON escapes them: the exact key
    assert "\x1b" not in out and "planner_output.payload.\x1b]0;pwned\x07" in json.loads(out)["drift"]


def test_a_damaged_bundle_with_the_same_id_is_replaced_by_the_fresh_one(tmp_path: Path) -> None:
    root, _ = _root(tmp_path)
    first = export_traces(root, tmp_path / "b", ExportConfig())
    view = next((first.path / "views").rglob("*.jsonl"))
    good = view.read_bytes()
    view.write_bytes(good[:-10])
    (first.path / "views" / "stray.jsonl").write_text("{}\n")
    res = runner.invoke(app, ["export", str(root), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert bundle.verify_bundle(first.path).bundle_id == first.manifest.bundle_id
    assert view.read_bytes() == good and not (first.path / "views" / "stray.jsonl").exists()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [first.path.name]  # no temp folder left


def test_a_run_completed_during_the_export_is_quarantined_for_the_next_not_put_in_train(tmp_path: Path) -> None:
    """The split is decided over the runs complete at the export's first pass; a run that completes
    between that pass and its build has a family with no split: it waits for the next export (as an
    incomplete run would) instead of going to train unannounced."""
    root = tmp_path / "traces"
    record_sample_run(root, goal={"text": "count lines in a.txt", "family": "files"}, run_id="run-a")
    record_sample_run(root, goal={"text": "sum the orders", "family": "sql"}, run_id="run-b")
    session = root / "run-b" / "session.json"
    held = session.read_bytes()
    session.unlink()  # run-b is still being written at the first pass

    def progress(done: int, total: int) -> None:
        if not session.exists():  # it finishes while run-a is built
            session.write_bytes(held)

    cfg = ExportConfig()
    cfg.quality.allow = []
    res = export_traces(root, tmp_path / "b", cfg, progress=progress)
    assert _counts(res) == {**res.report["runs"], "read": 2, "accepted": 1, "quarantined": 1}
    (q,) = _quarantine(res)
    assert q["run_id"] == "run-b" and q["rules"] == ["changed_during_export"]
    assert "sql" in q["reasons"][0]["message"] and "next export" in q["reasons"][0]["message"]
    assert "sql" not in json.loads((res.path / "manifest.json").read_text())["split"]["assignment"]
    again = export_traces(root, tmp_path / "b2", cfg)  # the next export takes it
    assert _counts(again)["accepted"] == 2


def test_a_string_for_a_boolean_quarantines_the_run_where_it_is(tmp_path: Path) -> None:
    """A hand-edited ``"ok": "false"`` was taken as valid, then read as true by the views (the run's
    recovery rows were gone without a word); it is now a located schema problem in validate and export."""
    root, run = _root(tmp_path)
    line = edit_event(run, "worker_tool_result", lambda ev: ev["payload"].update(ok="false"))
    res = export_traces(root, tmp_path / "b", ExportConfig())
    assert _counts(res)["quarantined"] == 1 and res.report["runs"]["exported"] == 1
    (q,) = _quarantine(res)
    assert q["rules"] == ["schema_invalid"]
    assert q["reasons"][0]["where"] == f"{run.name}/events.jsonl:{line}:payload.ok"
    out = runner.invoke(app, ["validate", str(root), "--json"])
    rep = json.loads(out.stdout)
    assert out.exit_code == 1 and not rep["passed"] and rep["runs_schema_valid"] == 1
    assert rep["problems"] == [f"{run}/events.jsonl:{line}: payload.ok: Input should be a valid boolean"]


def test_a_session_json_that_is_a_symlink_loop_is_unreadable_not_missing(tmp_path: Path) -> None:
    """``Path.exists`` is False for a symlink loop: the run was "missing: run is incomplete" (which passes
    validate by default) instead of a session.json that cannot be read; a folder whose only file is such
    a link was no run at all."""
    root, run = _root(tmp_path)
    (run / "session.json").unlink()
    (run / "session.json").symlink_to("session.json")
    looped = root / "looped-run"
    looped.mkdir()
    (looped / "events.jsonl").symlink_to("events.jsonl")
    rep = validate_root(root)
    assert not rep.passed and rep.runs_total == 3 and rep.runs_incomplete == 1
    assert f"{run}/session.json:-: <file>: unreadable: Too many levels of symbolic links" in rep.problems
    res = export_traces(root, tmp_path / "b", ExportConfig())
    assert _counts(res)["quarantined"] == 2
    assert {q["run_id"]: q["rules"] for q in _quarantine(res)}[run.name] == ["bad_json"]


def test_a_folder_entry_that_is_a_symlink_loop_is_passed_over(tmp_path: Path) -> None:
    """A symlink loop right under the root (``ln -s looprun looprun``) raised ELOOP out of ``validate`` and
    ``export`` (a traceback); like a symlink to a deleted folder it holds no data and is no run."""
    root, _ = _root(tmp_path)
    (root / "looprun").symlink_to("looprun")
    (root / "gone").symlink_to(tmp_path / "deleted")
    out = runner.invoke(app, ["validate", str(root), "--json"])
    rep = json.loads(out.stdout)
    assert out.exit_code == 0 and rep["runs_total"] == 2 and rep["nested_runs_not_read"] == 0, out.output
    out = runner.invoke(app, ["export", str(root), "--out", str(tmp_path / "b"), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["counts"]["read"] == 2, out.output


def test_a_session_that_finishes_before_it_starts_is_quarantined(tmp_path: Path) -> None:
    root, run = _root(tmp_path)
    sess = json.loads((run / "session.json").read_text())
    sess["finished_at"] = "2001-01-01T00:00:00.000Z"
    (run / "session.json").write_text(json.dumps(sess))
    rep = validate_root(root)
    want = f"{run}/session.json:-: finished_at: 2001-01-01T00:00:00.000Z is earlier than started_at ({sess['started_at']})"
    assert rep.problems == [want]
    res = export_traces(root, tmp_path / "b", ExportConfig())
    assert _counts(res)["quarantined"] == 1
    (q,) = _quarantine(res)
    assert (q["rules"], q["reasons"][0]["where"]) == (["non_monotonic_timestamp"], f"{run.name}/session.json:-:finished_at")
