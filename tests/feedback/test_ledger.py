"""The ledger: two processes appending at once lose and interleave nothing; appends are idempotent."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import orjson

from tracebridge.feedback.ledger import append_locked, check_row, hash_user, read_ledger

WRITER = """
import sys
from tracebridge.feedback.ledger import append_locked
path, who = sys.argv[1], sys.argv[2]
for i in range(150):
    row = {"time": "2026-03-01T10:00:00Z", "chat": 1, "message_id": i, "user": who, "emoji": "👍",
           "change": "added", "count": 1, "key": f"{who}:{i}", "pad": "x" * 3000}
    append_locked(path, [row, {**row, "key": f"{who}:{i}:b"}])
"""


def test_two_processes_appending_at_once_lose_and_interleave_nothing(tmp_path):
    path = tmp_path / "ledger.jsonl"
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who], cwd=root) for who in ("p1", "p2")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = path.read_bytes().splitlines()
    rows = [orjson.loads(x) for x in lines]  # every line parses: nothing interleaved or torn
    assert len(rows) == 600 and len({r["key"] for r in rows}) == 600
    for who in ("p1", "p2"):
        mine = [r["message_id"] for r in rows if r["user"] == who]
        assert sorted(mine) == sorted(list(range(150)) * 2) and mine == sorted(mine)  # each writer's order kept


def test_append_is_idempotent_by_key(tmp_path):
    path = tmp_path / "l.jsonl"
    row = {"time": "2026-03-01T10:00:00Z", "chat": 1, "message_id": 1, "emoji": "👍", "change": "added", "key": "k"}
    assert append_locked(path, [row, row]) == (1, 1)
    assert append_locked(path, [row]) == (0, 1)
    assert append_locked(path, [row], dedupe=False) == (1, 0)


def test_rows_are_checked_with_the_field_named(tmp_path):
    assert check_row({"time": "x"}) == "time: missing or not ISO/epoch"
    assert check_row({"time": 1, "change": "maybe"}).startswith("change:")
    assert check_row({"time": 1, "change": "added", "emoji": "👍"}).startswith("message_id:")
    ok = check_row({"ts": 1772000000, "action": "removed", "emoji": "👍", "message_id": 3})
    assert not isinstance(ok, str) and ok.change == "removed" and ok.count == 1
    path = tmp_path / "l.jsonl"
    path.write_text('{"time": 1, "change": "added", "emoji": "x", "message_id": 1}\nnot json\n[1]\n')
    scan = read_ledger(path)
    assert scan.read == 3 and len(scan.rows) == 1 and len(scan.skipped) == 2
    assert scan.skipped[0].startswith(f"{path}:2:<line>: invalid JSON")
    assert hash_user(7, "s") == hash_user(7, "s") != hash_user(7, "t") and hash_user(7, "s").startswith("u:")


def test_times_outside_years_1_to_9999_are_skipped_rows_not_a_crash(tmp_path, cfg):
    """An epoch of 1e20 or -1e15, or an ISO time whose UTC leaves years 1-9999, raised OverflowError
    (a traceback from ``feedback labels``/``audit``) or stopped the whole join with ``year ... is out of
    range``; now the row is skipped as ``file:line:time: ...`` and the other rows still join."""
    import datetime as dt

    from tracebridge.feedback.audit import audit_day
    from tracebridge.feedback.join import labels_for_runs

    base = '"chat": 42, "message_id": 1, "user": "u:1", "emoji": "👍", "change": "added"'
    bad = ["1e20", "-1e15", '"0001-01-01T00:00:00+05:00"', '"9999-12-31T23:59:59-05:00"']
    Path(cfg.ledger).parent.mkdir(parents=True)
    Path(cfg.ledger).write_text("".join(f'{{"time": {t}, {base}}}\n' for t in bad)
                                + f'{{"time": "2026-02-25T06:13:20Z", {base}}}\n')
    scan = read_ledger(cfg.ledger)
    assert (scan.read, len(scan.rows)) == (5, 1)
    assert scan.skipped == [f"{cfg.ledger}:{i}:time: missing or not ISO/epoch" for i in range(1, 5)]
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry) == {}  # no registry: an orphan, no crash
    assert audit_day(cfg, dt.date(2026, 2, 25))["ledger"]["usable"] == 1


def test_a_row_whose_key_is_no_string_is_a_skipped_row_not_a_crash(cfg):
    """A row whose dedupe key is a list or an object (a hand edit, another tool) raised ``TypeError: unhashable
    type: 'list'`` out of every harvest, and made the webhook answer 500 to every update (Telegram retries them)."""
    from tests.feedback.conftest import reaction
    from tracebridge.feedback.harvest import harvest_updates

    row = {"time": "2026-02-25T06:13:20Z", "chat": -5, "message_id": 1, "user": "anonymous", "emoji": "👍",
           "change": "added", "count": 1}
    Path(cfg.ledger).parent.mkdir(parents=True)
    Path(cfg.ledger).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in (
        {**row, "key": "a"}, {**row, "key": ["x"]}, {**row, "key": {"k": 1}}, {**row, "key": "d"})))
    scan = read_ledger(cfg.ledger)
    assert scan.skipped == [f"{cfg.ledger}:2:key: expected a string (the dedupe key), got list",
                            f"{cfg.ledger}:3:key: expected a string (the dedupe key), got dict"]
    cfg = dataclasses.replace(cfg, allow_default_salt=True)
    assert harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["👍"]))], "getUpdates", ["t"]).added == 1
