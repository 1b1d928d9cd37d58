"""A transcript OpenClaw's session manager repaired in place (its header moved first) and imported again.

Before: once OpenClaw had repaired a transcript whose first row was no session header, every
re-import skipped it as "older or truncated copy" / "content changed", and the turns written
after the repair were never imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.importers.openclaw_sessions import SessionBuilder
from tracebridge.importers.openclaw import import_openclaw

SID = "rep-1"


def _corrupt(kind: str) -> tuple[SessionBuilder, list[str]]:
    """A session and the lines of its transcript as imported: the header after the first message,
    with a torn line (``bad_line``) or a second header (``second_header``) among them, or neither."""
    b = SessionBuilder(SID)
    b.user("check the logs")
    b.call("c1", "read", {"path": "/var/log/app.log"})
    b.result("c1", "read", "ok")
    b.say("all fine")
    lines = [b.lines[1], b.lines[0], *b.lines[2:]]
    if kind == "bad_line":
        lines.insert(3, '{"type":"message","id":"torn"')
    elif kind == "second_header":
        lines.insert(4, json.dumps({"type": "session", "version": 3, "id": "other", "cwd": "/tmp",
                                    "timestamp": "2026-03-01T10:00:03.000Z"}))
    return b, lines


def _repair(lines: list[str]) -> list[str]:
    """What OpenClaw's ``recoverCorruptSessionEntries`` writes: the first header first, then the other
    rows in order, without lines that are no JSON and without other headers, each serialised anew
    (``JSON.stringify``: no spaces, so the bytes and the size change)."""
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    header = next(r for r in rows if r.get("type") == "session")
    return [json.dumps(r, separators=(",", ":")) for r in [header] + [r for r in rows if r.get("type") != "session"]]


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def _events(out: Path) -> list[dict]:
    return [orjson.loads(x) for x in (out / f"oc-{SID}" / "events.jsonl").read_bytes().splitlines()]


@pytest.mark.parametrize("kind", ["plain", "bad_line", "second_header"])
def test_a_repaired_transcript_is_unchanged_then_continued_with_its_new_turns(tmp_path, kind):
    src, out = tmp_path / "sessions" / f"{SID}.jsonl", tmp_path / "out"
    b, lines = _corrupt(kind)
    _write(src, lines)
    first = import_openclaw([src.parent], out)
    assert first.files_new == 1 and first.drift["session:header_not_first"] == 1
    before = (out / f"oc-{SID}" / "events.jsonl").read_bytes()
    backup = src.with_name(f"{SID}.jsonl.corrupt-2026-03-01T10-09-00-000Z-0a1b2c3d.jsonl")
    backup.write_bytes(src.read_bytes())  # OpenClaw keeps the file it repaired beside it
    _write(src, _repair(lines))

    rep = import_openclaw([src.parent], out)
    assert rep.skipped == [] and rep.files_unchanged == 1 and rep.files_repaired == 1
    assert rep.files_appended == rep.runs_written == rep.events_written == rep.lines_quarantined == 0
    assert (out / f"oc-{SID}" / "events.jsonl").read_bytes() == before

    again = import_openclaw([src.parent], out)  # the repaired bytes were recorded: no replay
    assert again.files_unchanged == 1 and again.files_repaired == 0 and again.lines_replayed == 0

    b.user("and now?")
    b.say("still fine")
    _write(src, _repair(lines) + b.lines[-2:])
    grown = import_openclaw([src.parent], out)
    assert grown.skipped == [] and grown.files_appended == 1 and grown.files_repaired == 0  # an ordinary append
    evs = _events(out)
    assert (out / f"oc-{SID}" / "events.jsonl").read_bytes().startswith(before)
    new = evs[len(evs) - grown.events_written:]
    assert [e["event_id"] for e in new][:2] == [f"oc-{SID}:e5", f"oc-{SID}:e6"]
    assert new[0]["parent_event_id"] == evs[first.events_written - 1]["event_id"]  # the lineage goes on
    assert grown.lines_read == grown.lines_accepted == 2 and grown.reconciles
    assert import_openclaw([src.parent], out).files_unchanged == 1


def test_a_repaired_transcript_that_grew_at_its_old_size_is_continued(tmp_path):
    """A repair that keeps every byte (OpenClaw's own lines, only reordered) leaves the size as it was:
    the file is taken as unchanged unread, and recognised when it grows."""
    src, out = tmp_path / "sessions" / f"{SID}.jsonl", tmp_path / "out"
    b, lines = _corrupt("plain")
    _write(src, lines)
    import_openclaw([src.parent], out)
    b.user("more")
    _write(src, b.lines)
    rep = import_openclaw([src.parent], out)
    assert rep.skipped == [] and rep.files_repaired == 1 and rep.files_appended == 1 and rep.events_written == 1


@pytest.mark.parametrize("edit", ["text", "dropped_row", "no_repair"])
def test_a_real_edit_of_a_repaired_transcript_is_still_reported_changed(tmp_path, edit):
    src, out = tmp_path / "sessions" / f"{SID}.jsonl", tmp_path / "out"
    _, lines = _corrupt("bad_line")
    _write(src, lines)
    import_openclaw([src.parent], out)
    before = (out / f"oc-{SID}" / "events.jsonl").read_bytes()
    repaired = _repair(lines)
    why = {"text": "line 5 does not give the events imported from line 6",
           "dropped_row": "line 3 does not give the events imported from line 3",
           "no_repair": "its first row is not the session header the import read at line 2"}[edit]
    if edit == "text":
        repaired[-1] = repaired[-1].replace("all fine", "all broken")
    elif edit == "dropped_row":
        del repaired[2]
    else:  # the same rows, header still second: rewritten, but not by OpenClaw's repair
        repaired = [repaired[1], repaired[0], *repaired[2:]]
    _write(src, repaired + ['{"type":"message","id":"x9","parentId":null,"message":{"role":"user","content":"hi"}}'])

    rep = import_openclaw([src.parent], out)
    assert rep.files_skipped == 1 and rep.files_repaired == 0 and rep.events_written == 0
    assert "no in-place migration by OpenClaw either" in rep.skipped[0]
    assert f"nor its repair of a transcript without a header first: {why}" in rep.skipped[0]
    assert (out / f"oc-{SID}" / "events.jsonl").read_bytes() == before
