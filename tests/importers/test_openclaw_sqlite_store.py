"""OpenClaw agent databases as a real home presents them: written while we read, locked, corrupt,
bad rows, odd session ids, two databases, the same session also as a file, rows deleted or
rewritten. Real sqlite3 files and a real writer thread; every import must reconcile."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from tests.importers.test_openclaw_upstream import AGENT_DB_SCHEMA, HEADER, _asst, _rows
from tracebridge.importers.config import ImportConfig
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.sqlite_store import event_line

# no NOT NULL: older or hand-made stores, where a row can hold anything
LOOSE_SCHEMA = "CREATE TABLE transcript_events (session_id, seq INTEGER, event_json, created_at INTEGER);"


def _db(root: Path, agent: str = "main", schema: str = AGENT_DB_SCHEMA) -> Path:
    path = root / "home" / ".openclaw" / "agents" / agent / "agent" / "openclaw-agent.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.executescript(schema)
    return path


def _session(sid: str, turns: int) -> list[dict]:
    msgs = []
    for i in range(turns):
        msgs += [{"type": "message", "message": {"role": "user", "content": f"q{i}", "timestamp": i}},
                 {"type": "message", "message": _asst([{"type": "text", "text": f"a{i}"}])}]
    return [{**HEADER, "id": sid}] + _rows(*msgs)


def _insert(db: sqlite3.Connection, sid: str, rows: list, first_seq: int = 0) -> None:
    db.executemany("INSERT INTO transcript_events VALUES (?, ?, ?, 0)",
                   [(sid, first_seq + i, r if isinstance(r, (str, bytes)) or r is None else orjson.dumps(r).decode())
                    for i, r in enumerate(rows)])


def _events(out: Path, run: str) -> bytes:
    return (out / run / "events.jsonl").read_bytes()


def test_a_wal_database_written_while_importing_gives_snapshots_that_grow_to_the_whole_session(tmp_path):
    """OpenClaw keeps its database open in WAL mode and appends a row per entry while we import:
    each import reads one consistent snapshot, and the next one appends what came after."""
    db_path = _db(tmp_path)
    rows = _session("live", 2000)
    writer = sqlite3.connect(db_path, check_same_thread=False)
    assert writer.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    _insert(writer, "live", rows[:1])
    writer.commit()
    stop, written = threading.Event(), [1]

    def write() -> None:  # one transaction per entry, as OpenClaw appends them, until told to stop
        for seq in range(1, len(rows)):
            if stop.is_set():
                return
            _insert(writer, "live", [rows[seq]], seq)
            writer.commit()
            written[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    out = tmp_path / "traces"
    reports = [import_openclaw([tmp_path / "home"], out) for _ in range(3)]
    stop.set()
    thread.join()
    reports.append(import_openclaw([tmp_path / "home"], out))
    writer.close()

    assert all(r.reconciles and r.problems == [] and r.files_skipped == 0 for r in reports)
    assert sum(r.lines_accepted for r in reports) == written[0]
    one_shot = tmp_path / "one_shot"
    import_openclaw([tmp_path / "home"], one_shot)
    assert _events(out, "oc-live") == _events(one_shot, "oc-live")


def test_a_locked_database_is_a_bounded_problem_naming_it_and_the_next_import_reads_it(tmp_path):
    """A writer holding an exclusive lock (rollback journal): the read waits ``db_busy_timeout_s``,
    then the database is a problem line, nothing is half-imported, and the next import reads it."""
    db_path = _db(tmp_path)
    with sqlite3.connect(db_path) as db:
        _insert(db, "s1", _session("s1", 1))
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    _insert(writer, "s1", [{"type": "message", "message": {"role": "user", "content": "more"}}], 3)
    out, cfg = tmp_path / "traces", ImportConfig(db_busy_timeout_s=0.05)

    locked = import_openclaw([tmp_path / "home"], out, cfg)
    assert locked.runs_written == 0 and locked.lines_read == 0
    assert len(locked.problems) == 1 and locked.problems[0].startswith(f"{db_path}: unreadable OpenClaw agent database")
    assert "database is locked" in locked.problems[0]
    writer.execute("COMMIT")
    writer.close()
    after = import_openclaw([tmp_path / "home"], out, cfg)
    assert after.reconciles and after.problems == [] and after.lines_accepted == 4


def test_empty_corrupt_and_foreign_files_with_the_database_name_are_problems(tmp_path):
    empty = _db(tmp_path / "a", schema="")
    foreign = _db(tmp_path / "b", schema="CREATE TABLE other (x);")
    corrupt = _db(tmp_path / "c")
    with sqlite3.connect(corrupt) as db:
        _insert(db, "s1", _session("s1", 200))
    data = bytearray(corrupt.read_bytes())
    data[4096:len(data) - 4096] = b"\xff" * (len(data) - 8192)  # pages past the schema page destroyed
    corrupt.write_bytes(bytes(data))
    empty.write_bytes(b"")

    rep = import_openclaw([tmp_path], tmp_path / "traces")
    assert rep.runs_written == 0 and rep.reconciles
    by_db = {p.split(": ")[0]: p for p in rep.problems}
    assert set(by_db) == {str(empty), str(foreign), str(corrupt)}
    assert "no transcript_events table" in by_db[str(empty)] and "no transcript_events table" in by_db[str(foreign)]
    assert "unreadable OpenClaw agent database" in by_db[str(corrupt)]


def test_rows_that_are_no_json_object_are_quarantined_once_with_their_database_and_session(tmp_path):
    db_path = _db(tmp_path, schema=LOOSE_SCHEMA)
    good = _session("s1", 1)
    pretty = orjson.dumps({"type": "message", "message": {"role": "user", "content": "multi\nline"}},
                          option=orjson.OPT_INDENT_2).decode()
    bad = [None, "not json", "[1, 2]", "", 5, b"\xff\xfe", "{\n broken"]
    with sqlite3.connect(db_path) as db:
        _insert(db, "s1", good + [pretty, orjson.dumps(good[1])] + bad)  # bytes: valid JSON as a BLOB
        # TEXT that is no UTF-8 made the whole database unreadable: every session after it was lost
        db.execute("INSERT INTO transcript_events VALUES ('s1', 99, CAST(x'7b22ff227d' AS TEXT), 0)")
        db.execute("INSERT INTO transcript_events VALUES (NULL, 0, '{}', 0)")
        _insert(db, "s2", _session("s2", 1))
    out = tmp_path / "traces"

    rep = import_openclaw([tmp_path / "home"], out)
    assert rep.reconciles and rep.lines_read == 2 * len(good) + 2 + len(bad) + 1
    assert rep.lines_accepted == 2 * len(good) + 2 and rep.lines_quarantined == len(bad) + 1
    assert rep.runs_written == 2 and "not UTF-8" in rep.quarantine_samples[-1]
    assert all(f"({db_path} session 's1', its row" in q for q in rep.quarantine_samples)
    assert rep.quarantine_samples[0].startswith(f"{out}/.import/openclaw-sqlite/main-")
    assert rep.problems[0] == f"{db_path}: 1 transcript_events rows with no session_id, not imported"
    assert len(rep.problems) == 2 and "is the id of an earlier row: imported as" in rep.problems[1]  # good[1] again
    again = import_openclaw([tmp_path / "home"], out)  # quarantined rows are read once, like a file's lines
    assert again.lines_read == 0 and again.lines_quarantined == 0 and again.files_unchanged == 2


def test_event_line_is_one_line_for_every_value():
    for value in (None, "", " ", 5, 1.5, "a\nb", b"\xff\n", '{"a":\n1}', b'{"a": 1}'):
        line = event_line(value)
        assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.strip()
    assert event_line('{"a":\n 1}') == b'{"a":1}\n' and event_line(b'{"a": 1}') == b'{"a": 1}\n'


def test_session_ids_with_path_characters_stay_in_the_cache_and_get_safe_runs(tmp_path):
    db_path = _db(tmp_path)
    ids = ["../../escape", "a/b", "x" * 500, "."]
    with sqlite3.connect(db_path) as db:
        for sid in ids:
            _insert(db, sid, _session(sid, 1))
    out = tmp_path / "traces"
    rep = import_openclaw([tmp_path / "home"], out)
    assert rep.reconciles and rep.runs_written == len(ids) and rep.problems == []
    cache = out / ".import" / "openclaw-sqlite"
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) == len(ids) and all(len(p.name) < 200 for p in files)
    assert {p.parent for p in files} == {next(cache.iterdir())}  # one folder, nothing outside it
    runs = [d for d in out.iterdir() if d.name.startswith("oc-")]
    sessions = {orjson.loads((d / "session.json").read_bytes())["runtime_config"]["extra"]["session_id"]
                for d in runs}
    assert len(runs) == len(ids) and sessions == set(ids)


def test_two_databases_of_agents_with_one_name_keep_their_sessions_apart(tmp_path):
    """Two homes, each with an agent ``main``: their session files must not overwrite each other;
    the same session id in both is one run, and the other copy is reported, not merged."""
    one, two = _db(tmp_path / "h1"), _db(tmp_path / "h2")
    with sqlite3.connect(one) as db:
        _insert(db, "only1", _session("only1", 1))
        _insert(db, "both", _session("both", 2))
    with sqlite3.connect(two) as db:
        _insert(db, "only2", _session("only2", 1))
        _insert(db, "both", _session("both", 1)[:2] + [{"type": "message", "message": {"role": "user", "content": "x"}}])
    rep = import_openclaw([tmp_path / "h1" / "home", tmp_path / "h2" / "home"], tmp_path / "traces")
    assert rep.reconciles and rep.runs_written == 3 and rep.files_seen == 4
    assert len(rep.skipped) == 1 and f"({two} session 'both')" in rep.skipped[0]
    assert "oc-both" in rep.skipped[0] or "session both" in rep.skipped[0]


def test_a_session_in_the_database_and_as_a_file_is_one_run(tmp_path):
    """A home converted to the database keeps its old ``sessions/<id>.jsonl``: both hold the same
    session, which is one run (the run id is the session's); the second copy adds nothing."""
    db_path = _db(tmp_path)
    rows = _session("s1", 2)
    with sqlite3.connect(db_path) as db:
        _insert(db, "s1", rows)
    legacy = db_path.parent.parent / "sessions" / "s1.jsonl"
    legacy.parent.mkdir()
    legacy.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    rep = import_openclaw([tmp_path / "home"], tmp_path / "traces")
    assert rep.reconciles and rep.runs_written == 1 and rep.files_seen == 2 and rep.files_unchanged == 1
    assert [d.name for d in (tmp_path / "traces").iterdir() if d.name.startswith("oc-")] == ["oc-s1"]


def test_rows_deleted_or_rewritten_after_the_import_are_reported_and_the_run_kept(tmp_path):
    db_path = _db(tmp_path)
    rows = _session("s1", 2)
    with sqlite3.connect(db_path) as db:
        _insert(db, "s1", rows)
    out = tmp_path / "traces"
    import_openclaw([tmp_path / "home"], out)
    before = _events(out, "oc-s1")

    with sqlite3.connect(db_path) as db:  # the last row deleted: a shorter session
        db.execute("DELETE FROM transcript_events WHERE seq = ?", (len(rows) - 1,))
    shorter = import_openclaw([tmp_path / "home"], out)
    assert shorter.files_skipped == 1 and f"({db_path} session 's1')" in shorter.skipped[0]
    assert "truncated" in shorter.skipped[0] and _events(out, "oc-s1") == before

    with sqlite3.connect(db_path) as db:  # a middle row rewritten, the session as long as before
        _insert(db, "s1", rows[-1:], len(rows) - 1)
        db.execute("UPDATE transcript_events SET event_json = ? WHERE seq = 1",
                   (orjson.dumps({**rows[1], "message": {**rows[1]["message"], "content": "Q0"}}).decode(),))
    rewritten = import_openclaw([tmp_path / "home"], out)
    assert rewritten.files_skipped == 1 and "content changed" in rewritten.skipped[0]
    assert f"({db_path} session 's1')" in rewritten.skipped[0] and _events(out, "oc-s1") == before

    with sqlite3.connect(db_path) as db:  # a gap in seq: rows are read in seq order, gaps are no rows
        db.execute("UPDATE transcript_events SET event_json = ? WHERE seq = 1", (orjson.dumps(rows[1]).decode(),))
        _insert(db, "s1", [{"type": "message", "message": {"role": "user", "content": "later"}}], 100)
    grown = import_openclaw([tmp_path / "home"], out)
    assert grown.reconciles and grown.files_appended == 1 and grown.lines_accepted == 1


def test_a_trace_root_inside_the_imported_folder_is_not_read_as_transcripts(tmp_path):
    """``import openclaw ~ --out ~/traces`` (and any other trace root under the home): our own runs,
    state, quarantine and materialised database sessions are no OpenClaw transcripts; the second
    import finds nothing new, adds no run and quarantines nothing."""
    db_path = _db(tmp_path)
    with sqlite3.connect(db_path) as db:
        _insert(db, "s1", _session("s1", 2))
    live = db_path.parent.parent / "sessions" / "s2.jsonl"
    live.parent.mkdir()
    live.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in _session("s2", 2)))
    home = tmp_path / "home"
    first = import_openclaw([home], home / "traces")
    old = import_openclaw([home], home / "traces")
    again = import_openclaw([home], home / "archive" / "traces")  # home/traces is now another trace root
    assert (first.runs_written, first.files_seen, first.lines_quarantined) == (2, 2, 0)
    assert (old.files_seen, old.files_unchanged, old.runs_written, old.lines_read) == (2, 2, 0, 0)
    assert (again.files_seen, again.runs_written, again.lines_quarantined) == (2, 2, 0)
    assert old.problems == again.problems == [] and old.skipped == again.skipped == []
    assert sorted(p.name for p in (home / "traces").iterdir()) == [".import", "oc-s1", "oc-s2"]
