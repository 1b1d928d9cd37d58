"""The OpenClaw importer end to end on the fixtures: reconcile, quarantine, validate, reproduce,
increment."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from tests.importers.conftest import HOME, tree_bytes
from tracebridge.capture.reader import iter_runs
from tracebridge.importers.config import ImportConfig
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.discover import (
    agent_of,
    archive_kind,
    discover,
    is_transcript_name,
)
from tracebridge.importers.openclaw.session import run_id_for
from tracebridge.schema.session import Session
from tracebridge.schema.validate import validate_root

S1 = "5f0c2d1e-6b7a-4c3d-9e8f-0a1b2c3d4e5f"


def test_fixtures_import_reconcile_quarantine_and_validate(tmp_path):
    out = tmp_path / "traces"
    rep = import_openclaw([HOME], out)
    assert rep.reconciles and rep.lines_read == 49 and rep.lines_quarantined == 6
    assert rep.files_new == 5 and rep.files_skipped == 1  # the .bak is an older copy of a live session
    q = [orjson.loads(x) for x in (out / ".import" / "openclaw-quarantine.jsonl").read_bytes().splitlines()]
    assert len(q) == 6 and all(r["file"] and r["line"] and r["reason"] and r["raw"] is not None for r in q)
    assert {r["field"] for r in q} == {"<line>", "type", "message"}
    assert any(r["reason"].startswith("truncated line") for r in q)  # the archived file's torn tail
    assert all(s.split(": ", 1)[0].rsplit(":", 1)[1].isdigit() for s in rep.quarantine_samples)  # file:line: ...
    v = validate_root(out)
    assert v.passed and v.schema_valid_pct == 100.0 and v.lineage_valid_pct >= 98.0, v.problems
    for run in iter_runs(out):
        Session.model_validate(run.read_session())
    for key in ("session:second_header", "session:header_not_first", "row_type=<legacy message>"):
        assert rep.drift[key] >= 1, key
    assert "message.assistant.responseId" not in rep.drift  # kept in the turn's llm.params (response_id)
    # entry types and roles of the upstream writer are no drift (tests/importers/test_openclaw_upstream.py)
    assert rep.counts["branch_summaries"] == 1 and rep.counts["bash_executions"] == 1
    assert not [k for k in rep.drift if "branch_summary" in k or "bashExecution" in k]
    assert rep.counts["lineage_repaired"] == 1 and rep.counts["orphan_tool_results"] == 1


def test_run_ids_sessions_and_index(tmp_path):
    out = tmp_path / "traces"
    import_openclaw([HOME], out)
    runs = {r.run_id: r.read_session() for r in iter_runs(out)}
    assert set(runs) == {f"oc-{S1}", "oc-7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", "oc-9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
                         run_id_for("agent:main:cron:nightly"), "oc-legacy-1"}
    s = runs[f"oc-{S1}"]
    assert s["source"] == {"kind": "openclaw", "ref": f"openclaw:main/{S1}"}
    assert s["runtime_config"]["extra"]["session_key"] == "agent:main:telegram:direct:4242"
    assert s["goal"]["text"] == "please check the deploy logs" and s["goal"]["family"] == "openclaw/telegram"
    assert s["started_at"] == "2026-03-01T10:00:00.000Z" and s["finished_at"] == "2026-03-01T10:00:32.000Z"
    assert s["summary"]["failure_class"] is None and s["summary"]["tokens"] > 0  # it recovered
    assert runs["oc-9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"]["goal"]["family"] == "openclaw/heartbeat"
    assert runs[run_id_for("agent:main:cron:nightly")]["goal"]["family"] == "openclaw/cron"
    events = [orjson.loads(x) for x in (out / f"oc-{S1}" / "events.jsonl").read_bytes().splitlines()]
    assert events[0]["timestamp"] == "2026-03-01T10:00:00.000Z"  # source timestamps are kept
    assert all(e["event_id"].startswith(f"oc-{S1}:") for e in events)


def test_reimport_is_byte_identical_and_adds_nothing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    import_openclaw([HOME], a)
    import_openclaw([HOME], b)
    assert tree_bytes(a) == tree_bytes(b)
    again = import_openclaw([HOME], a)
    assert again.events_written == 0 and again.files_unchanged == 5 and again.lines_read == 0
    assert tree_bytes(a) == tree_bytes(b)
    shutil.rmtree(a / ".import")  # state and quarantine lost: the runs on disk are recognised
    lost = import_openclaw([HOME], a)
    assert lost.events_written == 0 and lost.events_already_present > 0 and lost.files_unchanged == 5
    assert tree_bytes(a) == tree_bytes(b)


def test_incremental_import_reads_only_new_lines_and_matches_one_shot(tmp_path):
    src = HOME / ".openclaw/agents/main/sessions" / f"{S1}.jsonl"
    lines = src.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live" / "agents" / "main" / "sessions" / f"{S1}.jsonl"
    live.parent.mkdir(parents=True)
    live.write_bytes(b"".join(lines[:9]) + lines[9][:40])  # a half-written line at the end
    out = tmp_path / "traces"
    first = import_openclaw([live.parent], out)
    assert first.lines_read == 9 and first.lines_pending == 1 and first.lines_quarantined == 0
    live.write_bytes(b"".join(lines[:20]))
    second = import_openclaw([live.parent], out)
    assert second.lines_replayed == 9 and second.lines_read == 11 and second.files_appended == 1
    live.write_bytes(b"".join(lines))
    import_openclaw([live.parent], out)
    one_shot = tmp_path / "one"
    import_openclaw([src], one_shot)
    assert (out / f"oc-{S1}" / "events.jsonl").read_bytes() == (one_shot / f"oc-{S1}" / "events.jsonl").read_bytes()
    sess = lambda root: orjson.loads((root / f"oc-{S1}" / "session.json").read_bytes())
    assert {k: v for k, v in sess(out).items() if k not in ("runtime_config", "hashes")} == \
        {k: v for k, v in sess(one_shot).items() if k not in ("runtime_config", "hashes")}


def test_archived_rename_continues_the_same_run_and_rewrites_are_refused(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    live = folder / f"{S1}.jsonl"
    shutil.copy(HOME / ".openclaw/agents/main/sessions" / f"{S1}.jsonl", live)
    out = tmp_path / "traces"
    import_openclaw([folder], out)
    before = tree_bytes(out)
    archived = live.rename(folder / f"{S1}.jsonl.reset.2026-03-02T00-00-00.000Z")
    rep = import_openclaw([folder], out)
    assert rep.files_unchanged == 1 and rep.events_written == 0 and tree_bytes(out) == before
    archived.write_bytes(archived.read_bytes().replace(b"deploy", b"DEPLOY") + b"\n")
    rep = import_openclaw([folder], out, ImportConfig(final=True))
    assert rep.files_skipped == 1 and "content changed" in rep.skipped[0] and tree_bytes(out) == before


def test_a_second_import_into_the_same_root_fails_fast(tmp_path):
    from filelock import FileLock, Timeout

    out = tmp_path / "traces"
    (out / ".import").mkdir(parents=True)
    with FileLock(str(out / ".import" / "openclaw.lock")), pytest.raises(Timeout):
        import_openclaw([HOME], out)


def test_discovery_names_agents_and_index():
    problems: list[str] = []
    found = discover([HOME], problems)
    names = [t.path.name for t in found]
    assert not any(n.endswith(".lock") for n in names) and "sessions.json" not in names
    assert "agent:main:cron:nightly.jsonl" in names and len(found) == 6 and problems == []
    by_name = {t.path.name: t for t in found}
    assert by_name[f"{S1}.jsonl"].index_entry["key"] == "agent:main:telegram:direct:4242"
    assert by_name["legacy-1.jsonl"].agent == "ops"
    assert archive_kind("x.jsonl.reset.2026") == "reset" and archive_kind("x.jsonl.deleted.1") == "deleted"
    assert archive_kind("x.jsonl.bak") == "bak" and archive_kind("x.jsonl") is None
    assert is_transcript_name("a:b:c.jsonl") and not is_transcript_name("x.jsonl.lock")
    assert agent_of(Path("/h/.openclaw/agents/work/sessions/x.jsonl")) == "work"
    assert discover(["/nonexistent/path"], problems) == [] and problems


def test_configs_yaml_loads():
    from tracebridge.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(ImportConfig, root / "configs/import/openclaw.yaml", ["final=true"])
    assert cfg.final is True and cfg.validate() == []
    from tracebridge.config import ConfigError

    with pytest.raises(ConfigError, match="header_scan_bytes"):
        load_config(ImportConfig, None, ["header_scan_bytes=10"])


def test_a_transcript_without_importable_rows_makes_no_run_until_it_has_some(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    f = folder / "s1.jsonl"
    f.write_text("\nnot json\n")
    out = tmp_path / "traces"
    rep = import_openclaw([folder], out)
    assert rep.lines_read == 1 and rep.lines_quarantined == 1 and rep.lines_blank == 1
    assert "no importable rows" in rep.skipped[0] and not (out / "oc-s1").exists()
    assert import_openclaw([folder], out).lines_read == 0  # not read again
    with f.open("a") as fh:
        fh.write('{"type":"message","id":"m1","timestamp":"2026-03-01T00:00:00.000Z",'
                 '"message":{"role":"user","content":"hi"}}\n')
    rep = import_openclaw([folder], out)
    assert rep.lines_read == 1 and rep.files_new == 1 and validate_root(out).passed


def test_a_bom_in_front_of_a_transcript_is_no_bad_line(tmp_path):
    """Found by scripts/chaos_fuzz.py --kinds openclaw: the BOM made the header a bad line (and the
    run id fall back to the file name). Now the file imports as without it, and re-imports as unchanged."""
    from tests.importers.conftest import MAIN

    plain, bom = tmp_path / "plain" / MAIN.name, tmp_path / "bom" / MAIN.name
    for p, data in ((plain, MAIN.read_bytes()), (bom, b"\xef\xbb\xbf" + MAIN.read_bytes())):
        p.parent.mkdir()
        p.write_bytes(data)
    a, b = import_openclaw([plain], tmp_path / "a"), import_openclaw([bom], tmp_path / "b")
    assert (b.lines_read, b.lines_accepted, b.lines_quarantined) == (a.lines_read, a.lines_accepted,
                                                                     a.lines_quarantined)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")  # same run id, same events
    bom.write_bytes(bom.read_bytes() + MAIN.read_bytes().splitlines(keepends=True)[-1])
    grown = import_openclaw([bom], tmp_path / "b")
    assert grown.files_appended == 1 and grown.lines_read == 1 and grown.lines_replayed > 0
    assert import_openclaw([bom], tmp_path / "b").files_unchanged == 1


def test_too_deep_values_and_absurd_token_counts_import_without_crashing(tmp_path):
    """Found by scripts/chaos_fuzz.py --kinds openclaw: a value nested 300 deep (orjson reads it but
    cannot write it) and token counts past int64 crashed the whole import."""
    from tests.importers.conftest import MAIN
    from tracebridge.importers.openclaw.runs import TOO_DEEP

    head = MAIN.read_bytes().splitlines()[0]
    deep = b'{"type":"custom","id":"d1","parentId":null,"customType":"x","data":' + b"[" * 300 + b"1" + b"]" * 300 + b"}"
    huge = orjson.dumps({"type": "message", "id": "d2", "parentId": "d1", "message": {
        "role": "assistant", "content": [{"type": "text", "text": "hi"}], "stopReason": "stop",
        "usage": {"input": 2**64 - 1, "output": 1e308, "cacheRead": 2**63, "cost": {"total": 1.5}}}})
    src = tmp_path / "in" / "s.jsonl"
    src.parent.mkdir()
    src.write_bytes(b"\n".join([head, deep, huge, deep]) + b"\n")
    rep = import_openclaw([src], tmp_path / "out")
    assert (rep.lines_read, rep.lines_accepted, rep.lines_quarantined) == (4, 4, 0)
    events = [orjson.loads(x) for p in (tmp_path / "out").glob("*/events.jsonl") for x in p.read_bytes().splitlines()]
    cut = [e for e in events if e["payload"].get("source") == "openclaw.custom:x"]
    assert len(cut) == 2 and TOO_DEEP in orjson.dumps(cut[0]).decode()
    usage = next(e["llm"]["usage"] for e in events if e.get("llm"))
    assert (usage["input_tokens"], usage["output_tokens"]) == (0, 0)  # corrupt counts, not int64 overflow
    assert validate_root(tmp_path / "out").runs_total == 1


def test_sync_filesystem_flushes_the_trace_roots_file_system_and_reports_a_missing_root(tmp_path):
    from tracebridge.importers.openclaw.runs import sync_filesystem

    (tmp_path / "run").mkdir()
    sync_filesystem(tmp_path / "run")
    with pytest.raises(FileNotFoundError):
        sync_filesystem(tmp_path / "missing")


def test_a_null_line_is_quarantined_not_counted_as_blank(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "s.jsonl").write_bytes(
        b'{"type":"session","version":3,"id":"s","timestamp":"2026-01-01T00:00:00.000Z"}\nnull\n\n'
        b'{"type":"message","id":"u","parentId":null,"timestamp":"2026-01-01T00:00:01.000Z",'
        b'"message":{"role":"user","content":"hi"}}\n')
    rep = import_openclaw([src], tmp_path / "out")
    assert (rep.lines_read, rep.lines_accepted, rep.lines_quarantined, rep.lines_blank) == (3, 2, 1, 1)
    assert rep.reconciles
    assert rep.quarantine_samples == [f"{src / 's.jsonl'}:2: <line>: row is a JSON null, not an object"]
