"""Parent pointers that cannot be followed: a parent that names no entry, or pointers that form a loop. The
import keeps every sound entry, attaches such an entry to the event before it, and lists it as a problem with
file, line and field (they were counted in silence, or not at all); a loop never hangs the import."""

from __future__ import annotations

import orjson

from tracebridge.importers.agentlightning.span_graph import unsound_parents
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.schema.validate import validate_root


def _row(rid: str, parent: str | None, text: str = "hi") -> bytes:
    return orjson.dumps({"type": "message", "id": rid, "parentId": parent, "timestamp": "2026-01-01T00:00:00.000Z",
                         "message": {"role": "user", "content": text}}) + b"\n"


def test_openclaw_rows_whose_parent_is_missing_itself_or_later_are_listed_with_file_and_line(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(_row("a", None) + _row("b", "gone") + _row("c", "c") + _row("d", "e") + _row("e", "d")
                    + _row("f", "a"))
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.reconciles and (rep.lines_read, rep.lines_accepted) == (6, 6)
    assert rep.counts["lineage_repaired"] == 3
    tail = "; the row is attached to the event before it"
    later = "names no earlier row of the session (missing, quarantined, or later in the file: a loop)"
    assert rep.problems == [f"{src}:2: parentId: 'gone' {later}{tail}",
                            f"{src}:3: parentId: names the row itself (a loop){tail}",
                            f"{src}:4: parentId: 'e' {later}{tail}"]
    v = validate_root(tmp_path / "t")
    assert v.lineage_valid_pct == 100.0, v.problems


def test_openclaw_rows_of_the_imported_prefix_are_not_listed_again(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(_row("a", None) + _row("b", "gone"))
    assert len(import_openclaw([src], tmp_path / "t").problems) == 1
    with open(src, "ab") as fh:
        fh.write(_row("c", "b") + _row("d", "lost"))
    again = import_openclaw([src], tmp_path / "t")
    assert [p.split(": ")[0] for p in again.problems] == [f"{src}:4"]


def test_span_loops_and_lost_parents_are_found_in_one_pass_over_long_chains():
    n = 20000
    loop = [{"span_id": f"s{i}", "parent_id": f"s{(i + 1) % n}"} for i in range(n)]  # one loop through all
    chain = [{"span_id": f"c{i}", "parent_id": f"c{i - 1}" if i else None} for i in range(n)]  # sound
    into = [{"span_id": "x", "parent_id": "s5"}, {"span_id": "y", "parent_id": "nowhere"}]
    found = unsound_parents(loop + chain + into)
    assert set(found) == {f"s{i}" for i in range(n)} | {"y"}
    assert found["s0"].startswith("parent pointers form a loop (s0 -> s1 -> s2 -> s3 -> s4 -> s5 -> s6 -> s7 -> ... -> s0)")
    assert found["y"] == "'nowhere' names no span of this rollout: attached to the event before it"


def test_an_openclaw_row_id_used_twice_is_listed_and_its_parents_mean_the_first(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(_row("a", None) + _row("a", "a", "again") + _row("b", "a"))
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.reconciles and rep.lines_accepted == 3 and rep.drift["row:duplicate_id"] == 1
    assert rep.problems == [(f"{src}:2: id: 'a' is the id of an earlier row: imported as 'a~L2' (a parentId 'a' "
                            "means the first)")]
    run = next((tmp_path / "t").glob("oc-*"))
    events = [orjson.loads(x) for x in (run / "events.jsonl").read_bytes().splitlines()]
    assert [e["event_id"].split(":", 1)[1] for e in events] == ["a", "a~L2", "b"]
    assert events[2]["parent_event_id"] == events[0]["event_id"]


def test_an_empty_transcript_is_named_empty_not_quarantined(tmp_path):
    """It was skipped as "the lines read are quarantined or blank", though there was no line at all."""
    src = tmp_path / "s.jsonl"
    src.write_bytes(b"")
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.reconciles and (rep.lines_read, rep.runs_written) == (0, 0)
    assert rep.skipped == [f"{src}: no importable rows yet (no line: an empty file)"]
