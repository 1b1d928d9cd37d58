"""The ledger: two processes appending at once lose and interleave nothing; appends are idempotent."""

from __future__ import annotations

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
