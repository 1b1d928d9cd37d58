"""An import stopped mid-append (killed, the host lost power, the disk filled) leaves the run's events.jsonl
with a torn last line after the bytes its state vouches for. The next import cuts it and writes those events
again from the transcript (before: every later import refused the run, "event ... differs from the run on
disk (source changed since it was imported)", and validate failed it for good)."""

from __future__ import annotations

import os

from tests.importers.conftest import HOME
from tests.importers.test_openclaw_import import S1
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.runs import cut_torn_tail
from tracebridge.schema.validate import validate_root


def test_a_torn_append_is_cut_and_written_again_from_the_transcript(tmp_path):
    src = HOME / ".openclaw/agents/main/sessions" / f"{S1}.jsonl"
    lines = src.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live" / "agents" / "main" / "sessions" / f"{S1}.jsonl"
    live.parent.mkdir(parents=True)
    live.write_bytes(b"".join(lines[:9]))
    out = tmp_path / "traces"
    import_openclaw([live.parent], out)
    events = out / f"oc-{S1}" / "events.jsonl"
    whole = events.read_bytes()
    with open(events, "ab") as fh:  # the next append, stopped midway through its first line
        fh.write(b'{"run_id": "oc-' + S1.encode() + b'", "step": 3, "ev')
    assert not validate_root(out).passed  # a closed run with a torn last line (the export's torn_tail)
    live.write_bytes(b"".join(lines))
    rep = import_openclaw([live.parent], out)
    assert rep.torn_tails_cut == 1 and rep.files_appended == 1 and rep.files_skipped == 0, rep.skipped
    assert any(str(events) in p and "torn last line" in p for p in rep.problems), rep.problems
    one_shot = tmp_path / "one"
    import_openclaw([src], one_shot)
    assert events.read_bytes() == (one_shot / f"oc-{S1}" / "events.jsonl").read_bytes()
    assert events.read_bytes().startswith(whole) and validate_root(out).passed
    again = import_openclaw([live.parent], out)  # nothing torn any more: nothing cut, nothing written
    assert again.torn_tails_cut == 0 and again.events_written == 0 and again.files_unchanged == 1


def test_cut_torn_tail_keeps_whole_lines_and_what_the_state_vouches_for(tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"a\nb\n")
    assert cut_torn_tail(str(f), 0) == 0 and f.read_bytes() == b"a\nb\n"  # ends in a newline: nothing to cut
    long = b"x" * (3 << 20)  # a torn line longer than the chunks it is searched back in
    f.write_bytes(b"a\nb\n" + long)
    assert cut_torn_tail(str(f), 2) == len(long) and f.read_bytes() == b"a\nb\n"
    f.write_bytes(b"a\nb\n" + long)
    assert cut_torn_tail(str(f), 4) == len(long) and f.read_bytes() == b"a\nb\n"  # torn right after the state
    f.write_bytes(b"a\nbc")
    assert cut_torn_tail(str(f), 3) == 0 and f.read_bytes() == b"a\nbc"  # the state's bytes end mid-line: left
    f.write_bytes(b"torn")
    assert cut_torn_tail(str(f), 0) == 4 and os.path.getsize(f) == 0
    assert cut_torn_tail(str(f), 0) == 0


def test_the_session_temp_copy_of_an_import_killed_mid_rewrite_is_removed(tmp_path):
    """An import killed between writing the new session.json of an appended run and renaming it left
    ``.session.json.tmp.<pid>`` in the run folder for good (seen in a growing-transcript chaos run)."""
    src = HOME / ".openclaw/agents/main/sessions" / f"{S1}.jsonl"
    lines = src.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live" / f"{S1}.jsonl"
    live.parent.mkdir()
    live.write_bytes(b"".join(lines[:9]))
    out = tmp_path / "traces"
    import_openclaw([live.parent], out)
    stale = out / f"oc-{S1}" / ".session.json.tmp.999999"
    stale.write_bytes(b'{"run_id": "oc-')  # the killed import's half copy
    live.write_bytes(b"".join(lines))
    rep = import_openclaw([live.parent], out)
    assert rep.files_appended == 1 and not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == ["events.jsonl", "session.json"]
