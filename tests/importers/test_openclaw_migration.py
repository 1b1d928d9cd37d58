"""A transcript OpenClaw migrated in place (v1 or v2 → v3) is continued, not reported as changed.

The migration here is written after the one in pi-coding-agent's ``SessionManager``
(``migrateToCurrentVersion``, used by OpenClaw): each entry gets an 8-hex ``id`` and, for a v1
file, the entry before it as ``parentId``; a compaction's ``firstKeptEntryIndex`` becomes
``firstKeptEntryId``; the role ``hookMessage`` becomes ``custom``; the header's ``version`` becomes 3;
unparsable and blank lines are dropped and every line is written again (here with other spacing).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.importers.test_openclaw_upstream import USAGE, T, _asst, _write
from tracebridge.cli import app
from tracebridge.importers.openclaw import import_openclaw


def _v1_rows() -> list[dict[str, Any]]:
    """A v1 session: header without version, entries without id or parentId."""
    return [
        {"type": "session", "id": "mig-1", "timestamp": T(0), "cwd": "/w"},
        {"type": "message", "timestamp": T(1), "message": {"role": "user", "content": "list files",
                                                           "timestamp": 1772359200000}},
        {"type": "message", "timestamp": T(2), "message": _asst(
            [{"type": "toolCall", "id": "c1", "name": "bash", "arguments": {"command": "ls"}}], "toolUse")},
        {"type": "message", "timestamp": T(3), "message": {"role": "toolResult", "toolCallId": "c1", "toolName": "bash",
                                                           "content": [{"type": "text", "text": "a.txt"}],
                                                           "isError": False, "timestamp": 1772359200000}},
        {"type": "message", "timestamp": T(4), "message": {"role": "hookMessage", "customType": "note",
                                                           "content": "lint passed", "display": True,
                                                           "timestamp": 1772359200000}},
        {"type": "compaction", "timestamp": T(5), "summary": "listed files", "firstKeptEntryIndex": 3,
         "tokensBefore": 900},
        {"type": "message", "timestamp": T(6), "message": _asst([{"type": "text", "text": "One file: a.txt"}])},
    ]


def _v2_rows() -> list[dict[str, Any]]:
    """The same session as v2: ids and parentIds already there, ``hookMessage`` still."""
    return _migrate(_v1_rows(), to=2)


def _migrate(rows: list[dict[str, Any]], to: int = 3) -> list[dict[str, Any]]:
    """What OpenClaw's migration does to the entries of a v1 or v2 transcript (a copy)."""
    rows = copy.deepcopy(rows)
    version = rows[0].get("version", 1)
    if version < 2:
        prev = None
        for i, row in enumerate(rows[1:], 1):
            row["id"], row["parentId"] = f"{i:04x}beef", prev
            prev = row["id"]
            if "firstKeptEntryIndex" in row:
                row["firstKeptEntryId"] = rows[row.pop("firstKeptEntryIndex")]["id"]
    if to >= 3:
        for row in rows[1:]:
            if row.get("message", {}).get("role") == "hookMessage":
                row["message"]["role"] = "custom"
    rows[0]["version"] = to
    return rows


def _new_turns(last_id: str) -> list[dict[str, Any]]:
    return [
        {"type": "message", "id": "n1", "parentId": last_id, "timestamp": T(10),
         "message": {"role": "user", "content": "and the size?", "timestamp": 1772359200000}},
        {"type": "message", "id": "n2", "parentId": "n1", "timestamp": T(11),
         "message": _asst([{"type": "text", "text": "5 bytes"}], usage=USAGE)},
    ]


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write every line anew, as OpenClaw's rewrite does (its spacing differs from the original's)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "oc-mig-1" / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("old_rows", [_v1_rows, _v2_rows], ids=["v1", "v2"])
def test_a_transcript_migrated_in_place_is_continued_with_only_its_new_turns(tmp_path, old_rows):
    """Before: the re-import said 'content changed since it was imported' and skipped the file, so
    the turns written after the migration were never imported."""
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = old_rows()
    _write(src, rows)
    with src.open("a") as fh:
        fh.write("\n")  # a blank line: the migration drops it
    first = import_openclaw([src], out)
    before = (out / "oc-mig-1" / "events.jsonl").read_bytes()
    migrated = _migrate(rows)
    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([src], out)

    assert rep.skipped == [] and rep.files_migrated == 1 and rep.files_appended == 1
    after = (out / "oc-mig-1" / "events.jsonl").read_bytes()
    assert after.startswith(before)  # what was imported keeps its ids and bytes
    new = _events(out)[len(_events(out)) - rep.events_written:]
    assert [e["event_id"] for e in new] == ["oc-mig-1:n1", "oc-mig-1:n2", "oc-mig-1:n2.1"]
    assert new[0]["parent_event_id"] == _events(out)[first.events_written - 1]["event_id"]
    assert rep.lines_read == rep.lines_accepted == 2 and rep.reconciles
    assert rep.lines_replayed == len(migrated)
    session = json.loads((out / "oc-mig-1" / "session.json").read_text())
    assert session["runtime_config"]["extra"]["transcript_version"] == 3
    assert session["capture"]["events_written"] == len(_events(out))

    again = import_openclaw([src], out)
    assert again.files_unchanged == 1 and again.events_written == 0 and again.skipped == []


def _import_then_rewrite(tmp_path: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path, bytes]:
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    _write(src, _v1_rows())
    import_openclaw([src], out)
    before = (out / "oc-mig-1" / "events.jsonl").read_bytes()
    _rewrite(src, rows)
    return src, out, before


def test_a_migrated_transcript_whose_history_was_edited_is_still_reported(tmp_path):
    migrated = _migrate(_v1_rows())
    migrated[6]["message"]["content"][0]["text"] = "Two files"  # history changed, not only migrated
    src, out, before = _import_then_rewrite(tmp_path, migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([src], out)

    assert rep.files_migrated == 0 and rep.events_written == 0 and len(rep.skipped) == 1
    assert "content changed since it was imported" in rep.skipped[0]
    assert "no in-place migration by OpenClaw either: line 7 does not give the events imported" in rep.skipped[0]
    assert (out / "oc-mig-1" / "events.jsonl").read_bytes() == before


def test_a_rewritten_transcript_whose_version_did_not_go_up_is_still_reported(tmp_path):
    same = _v1_rows()
    same[1]["message"]["content"] = "list  files"
    src, out, before = _import_then_rewrite(tmp_path, same + [{"type": "message", "timestamp": T(9),
                                                              "message": _asst([{"type": "text", "text": "x"}])}])

    rep = import_openclaw([src], out)

    assert rep.files_migrated == 0 and rep.events_written == 0
    assert "no session header of a version above 1 (no migration)" in rep.skipped[0]
    assert (out / "oc-mig-1" / "events.jsonl").read_bytes() == before


def test_a_migrated_transcript_missing_imported_rows_is_still_reported(tmp_path):
    migrated = _migrate(_v1_rows())[:4]  # shorter than what was imported
    src, out, before = _import_then_rewrite(tmp_path, migrated)

    rep = import_openclaw([src], out)

    assert rep.files_migrated == 0 and len(rep.skipped) == 1
    assert "it holds fewer rows than were imported" in rep.skipped[0]
    assert (out / "oc-mig-1" / "events.jsonl").read_bytes() == before


def _cli_import_after_migration(tmp_path: Path, *flags: str) -> Any:
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    _write(src, _v1_rows())
    assert CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(out), "--json"]).exit_code == 0
    migrated = _migrate(_v1_rows())
    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))
    return CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(out), *flags])


def test_the_command_reports_a_migrated_transcript_and_its_runs_validate(tmp_path):
    r = _cli_import_after_migration(tmp_path / "a", "--validate", "--json")

    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["files_migrated"] == 1 and doc["files_skipped"] == 0 and doc["events_written"] == 3
    assert doc["reconciles"] is True
    table = _cli_import_after_migration(tmp_path / "b")
    assert table.exit_code == 0 and "files OpenClaw migrated in place (continued)" in table.output


def test_worker_processes_continue_a_migrated_transcript_as_one_process_does(tmp_path):
    results = []
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        src, other, out = root / "s" / "mig-1.jsonl", root / "s" / "other.jsonl", root / "out"
        _write(src, _v1_rows())
        _write(other, [{**_v1_rows()[0], "id": "other", "version": 3}])
        import_openclaw([root / "s"], out, workers=workers)
        migrated = _migrate(_v1_rows())
        _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))
        rep = import_openclaw([root / "s"], out, workers=workers)
        assert rep.files_migrated == 1 and rep.skipped == [] and rep.events_written == 3
        results.append((out / "oc-mig-1" / "events.jsonl").read_bytes())
    assert results[0] == results[1]


def test_a_migrated_transcript_archived_before_the_next_import_is_continued(tmp_path):
    """OpenClaw may migrate a transcript, append to it and archive it (``/new``: renamed to
    ``<id>.jsonl.reset.<time>``) before the next import: still the same session, continued."""
    sessions, out = tmp_path / "sessions", tmp_path / "out"
    _write(sessions / "mig-1.jsonl", _v1_rows())
    import_openclaw([sessions], out)
    migrated = _migrate(_v1_rows())
    (sessions / "mig-1.jsonl").unlink()
    _rewrite(sessions / "mig-1.jsonl.reset.2026-03-01T11-00-00.000Z", migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([sessions], out)

    assert rep.files_migrated == 1 and rep.skipped == [] and rep.events_written == 3


def _with_rejected_row(at: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _v1_rows()
    rows.insert(at, row)
    return rows


REJECTED = {"no type": {"timestamp": T(2), "note": "written by a plugin"},
            "no role": {"type": "message", "timestamp": T(2), "message": {"content": "no role"}}}


@pytest.mark.parametrize("at", [3, 8], ids=["inside", "last"])
@pytest.mark.parametrize("bad", sorted(REJECTED))
def test_a_migrated_transcript_with_rows_the_import_quarantined_is_continued(tmp_path, bad, at):
    """Before: a valid-JSON row the first import quarantined (no type, a message without role) is
    kept by OpenClaw's migration, with an id: the replay failed on it ('line 4: type: missing or not
    a string') and the session was reported as edited, its new turns never imported."""
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = _with_rejected_row(at, REJECTED[bad])
    _write(src, rows)
    first = import_openclaw([src], out)
    assert first.lines_quarantined == 1 and first.reconciles
    before = (out / "oc-mig-1" / "events.jsonl").read_bytes()
    migrated = _migrate(rows)
    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([src], out)

    assert rep.skipped == [] and rep.files_migrated == 1 and rep.lines_quarantined == 0
    assert rep.lines_read == rep.lines_accepted == 2 and rep.reconciles
    assert (out / "oc-mig-1" / "events.jsonl").read_bytes().startswith(before)
    assert [e["event_id"] for e in _events(out)[-3:]] == ["oc-mig-1:n1", "oc-mig-1:n2", "oc-mig-1:n2.1"]
    quarantine = (out / ".import" / "openclaw-quarantine.jsonl").read_text().splitlines()
    assert len(quarantine) == 1  # the row is not quarantined a second time in its migrated form


def test_a_migrated_transcript_whose_quarantined_row_was_edited_is_still_reported(tmp_path):
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = _with_rejected_row(3, REJECTED["no type"])
    _write(src, rows)
    import_openclaw([src], out)
    migrated = _migrate(rows)
    migrated[3]["note"] = "written by someone else"
    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([src], out)

    assert rep.files_migrated == 0 and rep.events_written == 0 and len(rep.skipped) == 1
    assert "line 4: type: missing or not a string (nor is it the next row the earlier import quarantined)" \
        in rep.skipped[0]


def test_a_migrated_transcript_that_lost_a_quarantined_row_is_still_reported(tmp_path):
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = _with_rejected_row(8, REJECTED["no type"])
    _write(src, rows)
    import_openclaw([src], out)
    migrated = _migrate(rows)[:-1]  # the quarantined last row is gone: an edit, not a migration

    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))
    rep = import_openclaw([src], out)

    assert rep.files_migrated == 0 and rep.events_written == 0
    assert "line 8: it holds more rows than were imported (nor is it the next row" in rep.skipped[0]


def test_a_migrated_transcript_with_a_duplicate_id_is_continued(tmp_path):
    """Before: a v2 entry reusing an earlier entry's id (imported as ``<id>~L<line>``) made the
    replay take the id for the duplicate, so a later entry naming it as parent got another parent
    than at the import: 'line 5 does not give the events imported from row 0004beef'."""
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = _v2_rows()
    rows[3]["id"] = rows[2]["id"]  # the tool result reuses the call's id
    rows[4]["parentId"] = rows[2]["id"]
    _write(src, rows)
    first = import_openclaw([src], out)
    assert first.drift["row:duplicate_id"] == 1
    before = (out / "oc-mig-1" / "events.jsonl").read_bytes()
    migrated = _migrate(rows)
    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([src], out)

    assert rep.skipped == [] and rep.files_migrated == 1 and rep.events_written == 3
    assert (out / "oc-mig-1" / "events.jsonl").read_bytes().startswith(before)
    assert _events(out)[-3]["parent_event_id"] == _events(out)[first.events_written - 1]["event_id"]


def test_a_migrated_transcript_with_a_duplicate_id_and_other_content_is_still_reported(tmp_path):
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = _v2_rows()
    rows[3]["id"] = rows[2]["id"]
    _write(src, rows)
    import_openclaw([src], out)
    migrated = _migrate(rows)
    migrated[3]["message"]["content"][0]["text"] = "b.txt"

    _rewrite(src, migrated)
    rep = import_openclaw([src], out)

    assert rep.files_migrated == 0 and "line 4 does not give the events imported from row 0002beef~L4" \
        in rep.skipped[0]


@pytest.mark.parametrize("old_rows", [_v1_rows, _v2_rows], ids=["v1", "v2"])
def test_a_transcript_repaired_and_migrated_in_one_rewrite_is_continued(tmp_path, old_rows):
    """OpenClaw repairs a transcript whose header is not first (the header moved to the top) and
    migrates it in the same rewrite. Before: skipped as 'content changed' (neither the migration nor
    the repair alone matched), and the turns written after it were never imported."""
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = old_rows()
    _write(src, [rows[1], rows[0], *rows[2:]])  # the header after the first message
    first = import_openclaw([src], out)
    assert first.drift["session:header_not_first"] == 1
    before = (out / "oc-mig-1" / "events.jsonl").read_bytes()
    migrated = _migrate(rows)  # the repair puts the header first, then the migration runs
    _rewrite(src, migrated + _new_turns(migrated[-1]["id"]))

    rep = import_openclaw([src], out)

    assert rep.skipped == [] and rep.files_repaired == 1 and rep.files_appended == 1
    assert (out / "oc-mig-1" / "events.jsonl").read_bytes().startswith(before)
    new = _events(out)[len(_events(out)) - rep.events_written:]
    assert [e["event_id"] for e in new] == ["oc-mig-1:n1", "oc-mig-1:n2", "oc-mig-1:n2.1"]
    assert new[0]["parent_event_id"] == _events(out)[first.events_written - 1]["event_id"]
    assert rep.lines_read == rep.lines_accepted == 2 and rep.reconciles
    again = import_openclaw([src], out)
    assert again.files_unchanged == 1 and again.events_written == 0 and again.skipped == []


def test_a_repaired_and_migrated_transcript_whose_history_was_edited_says_why(tmp_path):
    """A rewrite that is neither a migration nor a repair, nor both at once, is still skipped, and the
    skip names the row that the combined replay could not match."""
    src, out = tmp_path / "sessions" / "mig-1.jsonl", tmp_path / "out"
    rows = _v2_rows()
    _write(src, [rows[1], rows[0], *rows[2:]])
    import_openclaw([src], out)
    migrated = _migrate(rows)
    migrated[2]["message"]["content"][0]["arguments"] = {"command": "rm -rf /"}
    _rewrite(src, migrated)

    rep = import_openclaw([src], out)

    assert rep.files_repaired == rep.files_migrated == 0 and len(rep.skipped) == 1
    assert "line 3 does not give the events imported from line 3" in rep.skipped[0]
