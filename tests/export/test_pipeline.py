"""End to end on small trace roots: reconciled counts, quarantine, both redaction passes, dedup,
determinism of the bundle id, feedback labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson

from tests.export.conftest import PII, all_bytes, record_pii_run
from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.redact import capture_redactor
from tracebridge.export.bundle import verify_bundle
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_mixed_root_reconciles_and_leaks_nothing(mixed_traces: Path, tmp_path: Path) -> None:
    res = export_traces(mixed_traces, tmp_path / "bundles")
    runs = res.report["runs"]
    assert runs["read"] == 5 == runs["accepted"] + runs["quarantined"]
    assert (runs["quarantined"], runs["duplicates"], runs["exported"]) == (1, 1, 3)
    (q,) = _jsonl(res.path / "quarantine.jsonl")
    assert q["rules"] == ["bad_json"] and q["reasons"][0]["where"].endswith("/events.jsonl:16:<line>")
    statuses = sorted(r["status"] for r in _jsonl(res.path / "runs.jsonl"))
    assert statuses == ["duplicate", "exported", "exported", "exported", "quarantined"]
    blob = all_bytes(res.path)
    assert not [v for v in PII.values() if v.encode() in blob]  # pass 1 at export redacted the raw run
    assert b"<EMAIL_1>" in blob
    gov = res.manifest.governance
    assert gov["pii_scan"] == "clean" and gov["passed_both"] is True
    p1, p2 = gov["passes"][1], gov["passes"][2]
    assert p1["runs"] == 4 and p1["findings"]["EMAIL"] and p2["runs_blocked"] == 0
    assert res.report["dedup"]["clusters"][0]["removed_runs"] == 1
    assert res.report["dedup"]["clusters"][0]["removed_rows_total"] > 0
    assert res.passed and verify_bundle(res.path).bundle_id == res.manifest.bundle_id


def test_pass2_blocks_a_run_the_capture_pass_missed(tmp_path: Path) -> None:
    root = tmp_path / "traces"
    clean = record_pii_run(root, redactor=capture_redactor())
    leaky = record_pii_run(root, redactor=capture_redactor(), goal="ping Bob Marley", text="ask Bob Marley")
    cfg = ExportConfig(redaction=RedactionConfig(terms={"NAME": ["Bob Marley"]}))
    res = export_traces(root, tmp_path / "b", cfg)
    assert res.report["runs"]["accepted"] == 1 and res.report["quarantine"]["by_rule"] == {"redaction_pass2": 1}
    (q,) = _jsonl(res.path / "quarantine.jsonl")
    assert q["run_id"] == leaky and "NAME×" in q["reasons"][0]["message"]
    assert b"Bob Marley" not in all_bytes(res.path)  # not in reasons, not in the written config
    assert "<NAME_term_1>" in (res.path / "export_config.yaml").read_text()
    gov = res.manifest.governance
    assert gov["passes"][0]["runs"] == 2 and gov["passes"][2]["runs_blocked"] == 1
    assert gov["pii_scan"] == "clean"  # every accepted run passed both passes
    assert {r["run_id"]: r["status"] for r in _jsonl(res.path / "runs.jsonl")}[clean] == "exported"


def test_unredacted_runs_can_be_refused_and_redaction_disabled(tmp_path: Path) -> None:
    root = tmp_path / "traces"
    record_pii_run(root)
    cfg = ExportConfig(redaction=RedactionConfig(redact_unredacted_runs=False))
    res = export_traces(root, tmp_path / "a", cfg)
    assert res.report["quarantine"]["by_rule"] == {"unredacted": 1} and not res.passed
    off = export_traces(root, tmp_path / "b", ExportConfig(redaction=RedactionConfig(enabled=False)))
    assert off.manifest.governance["pii_scan"] == "not_run" and not off.manifest.governance["passed_both"]
    assert PII["email"].encode() in all_bytes(off.path)


def test_same_input_same_bundle_id_anywhere(mixed_traces: Path, tmp_path: Path) -> None:
    a = export_traces(mixed_traces, tmp_path / "a")
    moved = tmp_path / "elsewhere" / "traces"
    shutil.copytree(mixed_traces, moved)
    b = export_traces(moved, tmp_path / "b")
    assert a.manifest.bundle_id == b.manifest.bundle_id
    again = export_traces(mixed_traces, tmp_path / "a")  # same out folder: the bundle is kept
    assert again.path == a.path and len(list((tmp_path / "a").iterdir())) == 1
    other = export_traces(mixed_traces, tmp_path / "c", ExportConfig(views=ExportConfig().views.__class__(
        include_reasoning=True)))
    assert other.manifest.bundle_id != a.manifest.bundle_id  # the config is part of the content


def test_feedback_seam_labels_rows(mixed_traces: Path, tmp_path: Path) -> None:
    seen: list[str] = []

    def labels_for_run(run_id: str) -> dict:
        seen.append(run_id)
        return {"run": {"feedback_score": 1.0, "feedback_label": "thumbs_up"}}

    res = export_traces(mixed_traces, tmp_path / "b", labels_for_run=labels_for_run)
    rows = _jsonl(next((res.path / "views" / "planner_sft").glob("*.jsonl")))
    assert all(r["meta"]["labels"]["feedback_score"] == 1.0 for r in rows)
    # every run asked once: accepted ones when built (duplicates too: they are built, then counted), the
    # quarantined one when counted (report.json feedback.runs_labelled_not_exported)
    assert len(seen) == 5 and len(set(seen)) == 5
    # worker processes build the rows (views included): the seam reaches them, the bundle is the same
    two = export_traces(mixed_traces, tmp_path / "two", labels_for_run=labels_for_run, workers=2)
    # (the workers' calls land in their own copies of ``seen``; the quarantined run is asked here)
    assert two.manifest.bundle_id == res.manifest.bundle_id and len(seen) == 6


def test_too_many_quarantined_fails_the_export(mixed_traces: Path, tmp_path: Path) -> None:
    cfg = ExportConfig()
    cfg.quality.max_quarantined_pct = 10.0
    res = export_traces(mixed_traces, tmp_path / "b", cfg)
    assert not res.passed and "quality.max_quarantined_pct" in res.report["failures"][0]
    man = orjson.loads((res.path / "manifest.json").read_bytes())
    assert man["report"]["passed"] is False and man["source"]["runs"] == 5


def test_worker_processes_give_the_same_bundle(mixed_traces: Path, tmp_path: Path) -> None:
    # quarantine, an allowed rule, capture and export-time redaction, a duplicate: every tally
    # crosses the process boundary and must add up to what one process counts
    record_pii_run(mixed_traces, redactor=capture_redactor(), goal="mail Bob", text="ask bob@example.org")
    for allow in ([], ["bad_json"]):
        cfg = ExportConfig()
        cfg.quality.allow = allow
        one = export_traces(mixed_traces, tmp_path / f"one{len(allow)}", cfg)
        two = export_traces(mixed_traces, tmp_path / f"two{len(allow)}", cfg, workers=2)
        assert two.manifest.bundle_id == one.manifest.bundle_id and two.report == one.report
        capture, pass1 = two.report["redaction"]["passes"][:2]
        assert capture["runs"] == 1 and sum(capture["policies"].values()) == 1 and pass1["findings"]["EMAIL"]
        assert two.report["runs"]["read"] == 6 and two.report["runs"]["duplicates"] == 1
        assert two.report["quarantine"]["allowed_by_rule"] == ({"bad_json": 1} if allow else {})


def test_the_report_says_how_far_the_feedback_join_reached(mixed_traces: Path, tmp_path: Path) -> None:
    """A join that matched nothing used to look like no join at all: the report counts its reach."""
    plain = export_traces(mixed_traces, tmp_path / "plain")
    assert "feedback" not in plain.report and "feedback" not in plain.summary()
    labelled = next(r["run_id"] for r in _jsonl(plain.path / "runs.jsonl") if r["status"] == "exported")

    def labels_for_run(run_id: str) -> dict | None:
        if run_id != labelled:
            return None
        return {"run": {"feedback_score": 1.0}, "events": {f"{run_id}:000001": {"feedback_score": 2.0},
                                                           f"{run_id}:000002": {"feedback_score": -1.0},
                                                           "no-such-event": {"feedback_score": 1.0}}}

    res = export_traces(mixed_traces, tmp_path / "b", labels_for_run=labels_for_run)
    fb = res.report["feedback"]
    assert fb == {"runs_exported": res.report["runs"]["exported"], "runs_labelled": 1, "events_labelled": 2,
                  "runs_labelled_not_exported": {"quarantined": 0, "duplicates": 0}}
    assert res.summary()["feedback"] == fb
    assert "1 of" in (res.path / "report.md").read_text().split("## Feedback (reaction labels)")[1]
    nothing = export_traces(mixed_traces, tmp_path / "none", labels_for_run=lambda run_id: None)
    assert nothing.report["feedback"]["runs_labelled"] == 0  # joined, matched nothing: said, not silent
    two = export_traces(mixed_traces, tmp_path / "two", labels_for_run=labels_for_run, workers=2)
    assert two.report["feedback"] == fb and two.manifest.bundle_id == res.manifest.bundle_id


def test_the_report_counts_labelled_runs_that_were_quarantined_or_duplicates(mixed_traces: Path, tmp_path: Path) -> None:
    """A reaction on a run that was quarantined or dropped as a duplicate labelled no row, and nothing said so."""
    def labels_for_run(run_id: str) -> dict:
        return {"run": {"feedback_score": 1.0}, "events": {}}

    res = export_traces(mixed_traces, tmp_path / "b", labels_for_run=labels_for_run)
    runs, fb = res.report["runs"], res.report["feedback"]
    assert runs["quarantined"] >= 1 and runs["duplicates"] >= 1
    assert fb["runs_labelled"] == runs["exported"]
    assert fb["runs_labelled_not_exported"] == {"quarantined": runs["quarantined"], "duplicates": runs["duplicates"]}
    assert "Labelled but not exported" in (res.path / "report.md").read_text()
    two = export_traces(mixed_traces, tmp_path / "two", labels_for_run=labels_for_run, workers=2)
    assert two.report["feedback"] == fb


def test_a_quarantine_reason_naming_a_dict_key_holds_no_personal_data(tmp_path: Path) -> None:
    # schema drift names the unknown field: a key holding an e-mail address was written into the
    # bundle's quarantine.jsonl as it was, and push then refused the whole bundle for it
    from tests.conftest import record_sample_run
    from tracebridge.export.rowscan import row_findings

    root = tmp_path / "traces"
    record_sample_run(root)
    run = root / record_sample_run(root, goal="count words in words.txt", fail_tool=False)
    lines = (run / "events.jsonl").read_text().splitlines()
    rec = json.loads(lines[3])
    rec["payload"]["cc jane.doe@example.org"] = "x"
    lines[3] = json.dumps(rec)
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    res = export_traces(root, tmp_path / "b")
    (q,) = _jsonl(res.path / "quarantine.jsonl")
    assert q["rules"] == ["schema_drift"] and q["reasons"][0]["where"].endswith("events.jsonl:4:payload.cc <EMAIL_1>")
    assert b"jane.doe" not in all_bytes(res.path)
    assert row_findings(res.path, res.manifest) == []  # what push checks
