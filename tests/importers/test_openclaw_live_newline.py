"""A live transcript read while OpenClaw was appending a row, after the row's JSON and before its newline:
the row parses, so the import takes it (its bytes end without a newline). Before, the next import found
those bytes followed by the newline, read the imported prefix as changed ("content changed since it
was imported ... first N bytes differ") and skipped the session for good: none of its later rows was
ever imported. Now the newline is recognised as the end of the row already imported."""

from __future__ import annotations

from tests.importers.conftest import HOME
from tests.importers.test_openclaw_import import S1
from tests.importers.test_openclaw_parallel import all_bytes
from tracebridge.importers.openclaw import import_openclaw


def test_a_row_imported_before_its_newline_was_written_is_continued(tmp_path):
    lines = (
        (HOME / ".openclaw/agents/main/sessions" / f"{S1}.jsonl")
        .read_bytes()
        .splitlines(keepends=True)
    )
    live = tmp_path / "live" / f"{S1}.jsonl"
    live.parent.mkdir()
    out = tmp_path / "traces"
    for cut in (5, 9):  # twice: once after the first import, once after an import that continued
        live.write_bytes(
            b"".join(lines[:cut]).rstrip(b"\n")
        )  # row `cut` written, its newline not yet
        rep = import_openclaw([live.parent], out)
        assert rep.files_skipped == 0 and rep.lines_pending == 0 and rep.reconciles, rep.skipped
    live.write_bytes(b"".join(lines))
    rep = import_openclaw([live.parent], out)
    assert rep.files_skipped == 0 and rep.files_appended == 1 and rep.reconciles, rep.skipped
    assert rep.lines_read == len(lines) - 9 - sum(not x.strip() for x in lines[9:]), rep.to_dict()
    one = tmp_path / "one"
    import_openclaw([live.parent], one)
    runs = {k: v for k, v in all_bytes(out).items() if not k.startswith(".import")}
    assert runs == {k: v for k, v in all_bytes(one).items() if not k.startswith(".import")}
    again = import_openclaw([live.parent], out)
    assert again.files_unchanged == 1 and again.events_written == 0
