"""Human corrections joined at export (``corrections.file``): labels reach the views, pairs and
rewards; a person's outcome replaces the trace's; every line is accounted for; the traces are
never edited; the bundle is the same for any number of workers and with the run cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.export.conftest import PII, all_bytes, record_pii_run
from tracebridge.cli.app import app
from tracebridge.corrections.records import CorrectionsError
from tracebridge.curate.redact import capture_redactor
from tracebridge.export.bundle import sha256_file, verify_bundle
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.schema import roles

TIME = "2026-11-27T10:00:00Z"


def _events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.startswith("{\"")]


def _runs(root: Path) -> dict[str, dict[str, Any]]:
    """Each complete run's goal, source kind and events by type (first of each)."""
    out = {}
    for d in sorted(p for p in root.iterdir() if (p / "session.json").is_file()):
        s = json.loads((d / "session.json").read_text())
        evs = _events(d)
        out[d.name] = {"goal": s["goal"]["text"], "source": s["source"]["kind"],
                       "first": {e["event_type"]: e for e in reversed(evs)}}
    return out


def _pick(root: Path, goal: str) -> tuple[str, dict[str, dict[str, Any]]]:
    (rid, run), *_ = [(k, v) for k, v in _runs(root).items() if v["goal"].startswith(goal)]
    return rid, run["first"]


def _line(run_id: str, event_id: str | None, reviewer: str = "alice", **labels: Any) -> dict[str, Any]:
    return {"run_id": run_id, "event_id": event_id, "labels": labels, "reviewer": reviewer, "time": TIME}


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _export(root: Path, out: Path, corrections: Path | None, **kw: Any) -> ExportResult:
    cfg = ExportConfig()
    cfg.corrections.file = str(corrections) if corrections else None
    return export_traces(root, out, cfg, **kw)


def _rows(res: ExportResult, view: str, run_id: str) -> list[dict[str, Any]]:
    folder = res.path / ("agentlightning/triplets" if view == "triplets" else f"views/{view}")
    rows = [json.loads(x) for p in sorted(folder.glob("*.jsonl")) for x in p.read_text().splitlines()]
    return [r for r in rows if (r.get("meta") or r.get("metadata"))["run_id"] == run_id]


def test_verdict_correction_changes_the_ex_post_verdict_and_its_pair(mixed_traces: Path, tmp_path: Path) -> None:
    rid, ev = _pick(mixed_traces, "count words")  # a successful run whose verifier said "end"
    vo = ev["verifier_output"]["event_id"]
    before = _export(mixed_traces, tmp_path / "plain", None)
    (row,) = _rows(before, "verifier_sft", rid)
    (pair,) = _rows(before, "verifier_pref_pairs", rid)
    assert row["meta"]["labels"]["expected_verdict"] == "end" and pair["meta"]["labels"]["pair_source"] == "observed_correct"
    # append-only history: the last line of the same (run, event, label) wins
    corr = _write(tmp_path / "c.jsonl", [_line(rid, vo, expected_verdict="replan"),
                                         _line(rid, vo, "bob", expected_verdict="continue")])
    res = _export(mixed_traces, tmp_path / "b", corr)
    (row,) = _rows(res, "verifier_sft", rid)
    labels = row["meta"]["labels"]
    assert (labels["verdict"], labels["expected_verdict"], labels["corrected_by"]) == ("end", "continue", "bob")
    (pair,) = _rows(res, "verifier_pref_pairs", rid)
    assert pair["meta"]["labels"]["pair_source"] == "observed_wrong" and pair["meta"]["labels"]["corrected_by"] == "bob"
    chosen, rejected = (roles.parse_verifier_reply(pair[k][0]["content"]).verdict for k in ("chosen", "rejected"))
    assert (chosen, rejected) == ("continue", "end")
    (verifier_triplet,) = [t for t in _rows(res, "triplets", rid) if t["metadata"]["role"] == "verifier"]
    assert verifier_triplet["metadata"]["reward_components"]["step"] == 0.0  # the verdict given was wrong
    sec = res.report["corrections"]
    assert (sec["lines_read"], sec["applied"], sec["superseded_labels"], sec["labels"]) == (
        2, 2, 1, {"expected_verdict": 1})
    # the rows of the other runs are the same
    def others(r: ExportResult) -> list[str]:
        return sorted(x for p in (r.path / "views/verifier_sft").glob("*.jsonl")
                      for x in p.read_text().splitlines() if rid not in x)
    assert others(res) == others(before) and others(res)


def test_plan_correction_on_a_real_run_gives_a_planner_pair_only_with_evidence(mixed_traces: Path,
                                                                               tmp_path: Path) -> None:
    rid, ev = _pick(mixed_traces, "send the report")  # source runtime, unredacted: pass 1 runs at export
    assert _runs(mixed_traces)[rid]["source"] == "runtime"
    po = ev["planner_output"]["event_id"]
    plan = [{"description": "look the address up", "tool": "contacts", "args": {"name": "Jane"}},
            {"description": "mail it", "tool": "mail", "args": {"to": PII["email"]}}]
    only_plan = _export(mixed_traces, tmp_path / "a", _write(tmp_path / "a.jsonl", [_line(rid, po, expected_plan=plan)]))
    (row,) = _rows(only_plan, "planner_sft", rid)
    assert row["meta"]["labels"]["plan_matches_reference"] is False and row["meta"]["labels"]["corrected_by"] == "alice"
    assert not _rows(only_plan, "planner_pref_pairs", rid)  # the run ended well: no evidence the plan was bad

    corr = _write(tmp_path / "b.jsonl", [_line(rid, po, expected_plan=plan), _line(rid, None, "bob", success=False)])
    res = _export(mixed_traces, tmp_path / "b", corr)
    (pair,) = _rows(res, "planner_pref_pairs", rid)
    labels = pair["meta"]["labels"]
    assert pair["meta"]["source"] == "runtime"
    assert (labels["pair_source"], labels["pair_reason"], labels["corrected_by"]) == ("expected_plan", "run_failed", "alice")
    assert (labels["outcome_source"], labels["outcome_corrected_by"], labels["trace_success"]) == ("correction", "bob", True)
    chosen, rejected = (roles.parse_planner_reply(pair[k][0]["content"]).plan for k in ("chosen", "rejected"))
    assert [s.tool for s in chosen] == ["contacts", "mail"] and [s.tool for s in rejected] == ["mail"]
    # what the reviewer wrote went through pass 1 with the run: the same placeholder, no address
    assert chosen[1].args == rejected[0].args == {"to": "<EMAIL_1>"}
    assert PII["email"].encode() not in all_bytes(res.path) and res.manifest.governance["pii_scan"] == "clean"


def test_what_reviewers_wrote_is_redacted_in_runs_redacted_at_capture(tmp_path: Path) -> None:
    root = tmp_path / "traces"
    rid = record_pii_run(root, redactor=capture_redactor())
    po = _pick(root, "send the report")[1]["planner_output"]["event_id"]
    plan = [{"description": f"mail {PII['phone']}", "tool": "mail", "args": {"to": PII["email"]}}]
    res = _export(root, tmp_path / "b", _write(tmp_path / "c.jsonl", [_line(rid, po, f"rev {PII['email']}",
                                                                            expected_plan=plan)]))
    assert res.report["runs"]["exported"] == 1 and res.report["redaction"]["passes"][2]["runs_blocked"] == 0
    (row,) = _rows(res, "planner_sft", rid)
    lab = row["meta"]["labels"]
    assert json.loads(lab["expected_plan"])[0]["args"] == {"to": "<EMAIL_1>"} and lab["corrected_by"] == "rev <EMAIL_1>"
    assert not [v for v in PII.values() if v.encode() in all_bytes(res.path)]
    assert res.report["redaction"]["passes"][1]["findings"]["EMAIL"]  # counted as curation pass 1


def test_run_level_success_sets_the_outcome_of_every_row_and_reward(mixed_traces: Path, tmp_path: Path) -> None:
    rid, _ = _pick(mixed_traces, "count words")
    plain = _export(mixed_traces, tmp_path / "plain", None)
    assert {t["metadata"]["reward_components"]["outcome"] for t in _rows(plain, "triplets", rid)} == {1.0}
    res = _export(mixed_traces, tmp_path / "b", _write(tmp_path / "c.jsonl", [_line(rid, None, "bob", success=False)]))
    triplets = _rows(res, "triplets", rid)
    assert triplets and {t["metadata"]["reward_components"]["outcome"] for t in triplets} == {0.0}
    assert all(t["reward"] < 1.0 for t in triplets)
    for view in ("planner_sft", "worker_sft", "verifier_sft"):
        for r in _rows(res, view, rid):
            lab = r["meta"]["labels"]
            assert (lab["run_success"], lab["trace_success"], lab["outcome_source"]) == (False, True, "correction")
            assert "corrected_by" not in lab  # no event of the run was corrected
    # the last verdict of a run judged failed is no longer known to be right: no pair from it
    assert not _rows(res, "verifier_pref_pairs", rid) and _rows(plain, "verifier_pref_pairs", rid)
    cb, cb0 = res.report["class_balance"]["outcomes"], plain.report["class_balance"]["outcomes"]
    assert (cb["failure"], cb["success"]) == (cb0.get("failure", 0) + 1, cb0["success"] - 1)
    assert res.report["corrections"]["outcomes"] == {"runs": 1, "changed": 1}


def test_call_corrections_reach_the_worker_row_of_the_call(mixed_traces: Path, tmp_path: Path) -> None:
    rid, ev = _pick(mixed_traces, "count words")
    call = ev["worker_tool_call"]["event_id"]  # a child of the worker_action the row is built from
    res = _export(mixed_traces, tmp_path / "b", _write(tmp_path / "c.jsonl", [
        _line(rid, call, "carol", expected_tool="count", expected_args={"path": "words.txt"})]))
    (row,) = _rows(res, "worker_sft", rid)
    lab = row["meta"]["labels"]
    assert (lab["expected_tool"], json.loads(lab["expected_args"]), lab["corrected_by"]) == (
        "count", {"path": "words.txt"}, "carol")


def test_bad_and_unmatched_lines_are_reported_and_reconcile(mixed_traces: Path, tmp_path: Path) -> None:
    rid, ev = _pick(mixed_traces, "count words")
    broken, _ = _pick(mixed_traces, "a broken one")
    before = {p: p.read_bytes() for p in mixed_traces.rglob("*") if p.is_file()}
    corr = _write(tmp_path / "c.jsonl", [
        _line(rid, ev["verifier_output"]["event_id"], expected_verdict="replan"),   # 1 applied
        "{not json",                                                                 # 2 bad
        _line(rid, ev["planner_output"]["event_id"], expected_verdict="end"),       # 3 wrong event type
        _line("no-such-run", None, success=True),                                    # 4 unmatched run
        _line(rid, f"{rid}:999999", goal_met=True),                                  # 5 unmatched event
        _line(rid, None, expected_verdict="end"),                                    # 6 event label, no event
        {**_line(rid, None, success="yes"), "reviewer": ""},                         # 7 two problems
        _line(rid, ev["worker_action"]["event_id"], expected_args={"path": "x"}),   # 8 args without tool
        _line(broken, None, success=False),                                          # 9 applied, run quarantined
    ])
    res = _export(mixed_traces, tmp_path / "b", corr, workers=2)
    sec = res.report["corrections"]
    assert (sec["lines_read"], sec["applied"], sec["unmatched"], sec["quarantined"]) == (9, 2, 2, 5)
    assert sec["lines_read"] == sec["applied"] + sec["unmatched"] + sec["quarantined"] and sec["reconciled"]
    where = [q.split(": ", 1)[0] for q in sec["quarantined_lines"]]
    assert where == [f"{corr}:{n}" for n in (2, 3, 6, 7, 8)]
    q = dict(zip(where, sec["quarantined_lines"], strict=True))
    assert "<line>: invalid JSON" in q[f"{corr}:2"]
    assert "labels.expected_verdict: event" in q[f"{corr}:3"] and "is a planner_output" in q[f"{corr}:3"]
    assert "labels.expected_verdict: an event-level label" in q[f"{corr}:6"]
    assert "labels.success: must be true or false" in q[f"{corr}:7"] and "reviewer: missing" in q[f"{corr}:7"]
    assert "labels.expected_args: needs expected_tool" in q[f"{corr}:8"]
    assert sec["unmatched_runs"] == [{"where": f"{corr}:4", "run_id": "no-such-run", "event_id": None}]
    assert sec["unmatched_events"] == [{"where": f"{corr}:5", "run_id": rid, "event_id": f"{rid}:999999"}]
    assert sec["not_exported"] == [{"run_id": broken, "status": "quarantined", "lines": 1}]
    assert res.passed  # corrections that do not apply are reported, not fatal
    man = verify_bundle(res.path)
    assert man["corrections"]["sha256"] == sha256_file(corr) and man["corrections"]["lines_read"] == 9
    assert "## Corrections" in (res.path / "report.md").read_text()
    assert res.summary()["corrections"]["unmatched"] == 2
    # raw traces are append-only: nothing under the root changed
    assert {p: p.read_bytes() for p in mixed_traces.rglob("*") if p.is_file()} == before


def test_same_bundle_for_any_number_of_workers(mixed_traces: Path, tmp_path: Path) -> None:
    runs = _runs(mixed_traces)
    lines = [_line(rid, r["first"]["verifier_output"]["event_id"], expected_verdict="replan") for rid, r in runs.items()]
    lines += [_line(rid, None, "bob", success=False) for rid in runs]
    corr = _write(tmp_path / "c.jsonl", lines)
    one = _export(mixed_traces, tmp_path / "one", corr)
    two = _export(mixed_traces, tmp_path / "two", corr, workers=2)
    assert two.manifest.bundle_id == one.manifest.bundle_id and two.report == one.report
    assert one.report["corrections"]["applied"] == len(lines)
    plain = _export(mixed_traces, tmp_path / "plain", None)
    assert plain.manifest.bundle_id != one.manifest.bundle_id and "corrections" not in plain.report


def test_an_edited_correction_rebuilds_its_run_from_the_cache(mixed_traces: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rid, ev = _pick(mixed_traces, "count words")
    vo = ev["verifier_output"]["event_id"]
    corr = _write(tmp_path / "c.jsonl", [_line(rid, vo, expected_verdict="replan")])
    first = _export(mixed_traces, tmp_path / "a", corr, cache_dir=cache)
    warm = _export(mixed_traces, tmp_path / "a2", corr, cache_dir=cache)
    assert warm.cache is not None and (warm.cache["hits"], warm.cache["misses"]) == (5, 0)
    assert warm.manifest.bundle_id == first.manifest.bundle_id
    _write(corr, [_line(rid, vo, expected_verdict="continue")])  # the reviewer changed their mind
    edited = _export(mixed_traces, tmp_path / "b", corr, cache_dir=cache)
    assert edited.cache is not None and (edited.cache["hits"], edited.cache["misses"]) == (4, 1)
    plain = _export(mixed_traces, tmp_path / "b_plain", corr)
    assert edited.manifest.bundle_id == plain.manifest.bundle_id and edited.report == plain.report
    (row,) = _rows(edited, "verifier_sft", rid)
    assert row["meta"]["labels"]["expected_verdict"] == "continue"
    assert edited.manifest["corrections"]["sha256"] != first.manifest["corrections"]["sha256"]


def test_sim_ground_truth_yields_to_a_person_next_to_real_runs(sim_traces: Path, tmp_path: Path) -> None:
    root = tmp_path / "traces"
    for d in sorted(p for p in sim_traces.iterdir() if p.is_dir())[:6]:
        shutil.copytree(d, root / d.name)
    real = record_pii_run(root, goal="mail the summary", text="summary attached")
    sim = next(rid for rid, r in _runs(root).items() if r["source"] == "sim"
               and r["first"].get("verifier_output", {}).get("labels", {}).get("expected_verdict"))
    vo = _runs(root)[sim]["first"]["verifier_output"]
    truth = vo["labels"]["expected_verdict"]
    other = next(v for v in roles.VERDICTS if v != truth)
    corr = _write(tmp_path / "c.jsonl", [_line(sim, vo["event_id"], expected_verdict=other),
                                         _line(real, None, success=False)])
    res = _export(root, tmp_path / "b", corr)
    (row,) = [r for r in _rows(res, "verifier_sft", sim) if vo["event_id"] in r["meta"]["event_ids"]]
    assert row["meta"]["labels"]["expected_verdict"] == other and row["meta"]["labels"]["corrected_by"] == "alice"
    assert {r["meta"]["labels"]["run_success"] for r in _rows(res, "planner_sft", real)} == {False}
    assert res.report["corrections"]["applied"] == 2 and res.report["runs"]["exported"] == 7


def test_a_missing_corrections_file_is_an_error(mixed_traces: Path, tmp_path: Path) -> None:
    with pytest.raises(CorrectionsError, match="no-such.jsonl"):
        _export(mixed_traces, tmp_path / "b", tmp_path / "no-such.jsonl")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    res = CliRunner().invoke(app, ["export", str(mixed_traces), f"corrections.file={tmp_path / 'no-such.jsonl'}",
                                   "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "corrections file" in res.output
    corr = _write(tmp_path / "ok.jsonl", [_line(_pick(mixed_traces, "count words")[0], None, success=False)])
    res = CliRunner().invoke(app, ["export", str(mixed_traces), f"corrections.file={corr}",
                                   "--out", str(tmp_path / "d"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["corrections"]["applied"] == 1
    text = CliRunner().invoke(app, ["export", str(mixed_traces), f"corrections.file={corr}", "--out", str(tmp_path / "d")])
    assert text.exit_code == 0 and "corrections: 1 lines = 1 applied + 0 unmatched + 0 quarantined" in text.output
