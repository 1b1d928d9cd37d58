"""The webhook receiver's ledger cache: an update reads only the ledger's bytes appended since the last one, and
the ledger, quarantine, harvest log and replies are those of a receiver that reads the whole ledger for each
update (as before the cache), also when another process appends to the ledger, replaces it (``feedback migrate``),
cuts it short or leaves a torn last line between two updates."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.feedback.conftest import DATE, reaction
from tests.feedback.test_private_chats import ANN, SALT, _old_row
from tests.feedback.test_webhook import SECRET, _post
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.join import net_reactions
from tracebridge.feedback.ledger import read_ledger
from tracebridge.feedback.migrate import migrate_private_chats
from tracebridge.feedback.webhook import WebhookServer

CHANNEL = -1001234567890


def counts(uid: int, mid: int, n: int, *, at: int = 0) -> dict[str, Any]:
    return {"update_id": uid, "message_reaction_count": {
        "chat": {"id": CHANNEL, "type": "channel"}, "message_id": mid, "date": DATE + at,
        "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": n}] if n else []}}


UPDATES = [
    reaction(1, 10, [], ["👍"]),
    reaction(2, 10, ["👍"], ["👎"], at=1),
    reaction(3, 10, ["👎"], [], at=2),  # 👍 → 👎 → removed: nets to nothing
    reaction(1, 10, [], ["👍"]),  # a re-delivery: deduped
    reaction(2, 11, [], ["❤"]),  # update id 2 again, other content: quarantined
    counts(4, 20, 3),
    counts(5, 20, 1, at=5),
    counts(4, 20, 3),  # a re-delivered old count: stale
    {"update_id": 6, "message": {"message_id": 1, "text": "hi"}},  # no reaction: ignored
    {"update_id": 7, "message_reaction": {"chat": {}}},  # unreadable: quarantined
    reaction(8, 12, [], ["❤"], user=9, chat=-100777),
    reaction(9, 13, [], ["👎"], user=9, chat=-100777),  # its key is on an unusable line: not written again
]


@pytest.fixture(autouse=True)
def _salt(monkeypatch):
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", SALT)


def _files(cfg, name: str):
    d = Path(cfg.ledger).parent.parent / name
    return dataclasses.replace(cfg, webhook_port=0, **{k: str(d / Path(getattr(cfg, k)).name) for k in (
        "ledger", "mapping", "registry", "harvest_log", "quarantine", "audit_dir")})


def _lines(path: str, drop: str) -> list[Any]:
    """The lines of a JSONL file, each as its object less ``drop``, or its bytes when it is none."""
    out: list[Any] = []
    for x in Path(path).read_bytes().splitlines() if Path(path).is_file() else []:
        try:
            obj = orjson.loads(x)
        except orjson.JSONDecodeError:
            out.append(x)
            continue
        out.append({k: v for k, v in obj.items() if k != drop} if isinstance(obj, dict) else obj)
    return out


def _state(cfg) -> tuple[Any, ...]:
    """The files as a fresh read sees them, less the harvest's clock."""
    return (_lines(cfg.ledger, "harvested_at"), _lines(cfg.quarantine, "time"), _lines(cfg.harvest_log, "time"),
            [s.removeprefix(cfg.ledger) for s in read_ledger(cfg.ledger, SALT).skipped])


def _run(cfg, cached: bool, steps: list[dict[str, Any] | Callable[[Any], None]],
         start: list[dict[str, Any]] | None = None) -> tuple[list[Any], tuple[Any, ...], WebhookServer]:
    """POST each update of ``steps`` to a receiver on ``cfg``'s files (``start``: the ledger's rows before), calling
    each callable of ``steps`` with ``cfg`` instead (another process's work between two updates)."""
    Path(cfg.ledger).parent.mkdir(parents=True, exist_ok=True)
    if start:
        Path(cfg.ledger).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in start))
    srv = WebhookServer(cfg, SECRET, cache_ledger=cached)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    replies = []
    try:
        for step in steps:
            if callable(step):
                step(cfg)
            else:
                replies.append(_post(srv.url, step, SECRET))
    finally:
        srv.shutdown()
        srv.server_close()
    return replies, _state(cfg), srv


def _both(cfg, steps, start=None) -> tuple[list[Any], tuple[Any, ...], WebhookServer]:
    """``_run`` with and without the cache on two copies of the files; both must end the same."""
    fresh = _run(_files(cfg, "fresh"), False, steps, start)
    cached = _run(_files(cfg, "cached"), True, steps, start)
    assert cached[0] == fresh[0]  # the replies
    assert cached[1] == fresh[1]  # ledger, quarantine, harvest log, unusable lines
    return cached


def test_cached_updates_end_as_fresh_reads_of_the_ledger(cfg):
    old = [_old_row(90, 5, "added", "👍"),  # an older harvest's row, its private chat in the clear
           {"key": "tg:9:added:👎", "time": "yesterday"},  # a line the readers skip, its key kept by the appends
           {**_old_row(91, 5, "added", "❤"), "chat": -100888}]
    replies, (ledger, quarantine, log, skipped), srv = _both(cfg, UPDATES, old)
    assert [r[1]["added"] for r in replies] == [1, 2, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0]
    assert [r[1]["quarantined"] for r in replies] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    assert [r[1]["duplicates"] for r in replies] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert len(ledger) == 10 and len(quarantine) == 2 and skipped == [":2:time: missing or not ISO/epoch"]
    assert "is already the id of a different update" in quarantine[0]["reason"] or "holds other" in quarantine[0]["reason"]
    assert all(r["read"] == r["accepted"] + r["quarantined"] for r in log) and len(log) == len(UPDATES)
    assert sum(sum(r["ignored"].values()) for r in log) == 3  # the re-delivery, the stale count, the message
    net = net_reactions(read_ledger(_files(cfg, "cached").ledger, SALT).rows)
    assert sorted((k[3], n) for k, (n, _) in net.items()) == [("❤", 1), ("❤", 1), ("👍", 1), ("👍", 1)]  # 👍→👎→removed: none
    assert (srv.ledger_cache.full_reads, srv.ledger_cache.appended_reads) == (1, 6)  # read once; then the rows added


def test_rows_another_harvest_appends_between_two_updates_are_seen(cfg):
    def cli_harvest(c):  # `feedback harvest` of a getUpdates dump beside the receiver
        harvest_updates(c, [("dump:1", reaction(20, 30, [], ["👍"], user=5)), ("dump:2", counts(21, 40, 2))],
                        "getUpdates", ["dump"])

    steps = [reaction(1, 10, [], ["👍"]), cli_harvest,
             reaction(20, 31, [], ["👎"], user=5),  # its update id, other content: a conflict only the new rows show
             reaction(20, 30, [], ["👍"], user=5),  # the same update: a re-delivery
             counts(22, 40, 1, at=3)]  # counts from the dump's 2, not from 0
    replies, (ledger, *_), srv = _both(cfg, steps)
    assert [r[1]["quarantined"] for r in replies] == [0, 1, 0, 0] and replies[2][1]["duplicates"] == 1
    assert ledger[-1]["change"] == "removed" and ledger[-1]["count"] == 1
    assert srv.ledger_cache.full_reads == 1


def test_a_ledger_replaced_or_cut_short_between_two_updates_is_read_again(cfg):
    def replace_without_last_row(c):  # rewritten whole by another process (a new file renamed over it)
        p = Path(c.ledger)
        tmp = p.with_name("ledger.tmp")
        tmp.write_bytes(b"".join(line + b"\n" for line in p.read_bytes().splitlines()[:-1]))
        os.replace(tmp, p)

    def cut_in_place(c):  # the same file, its last row cut off
        p = Path(c.ledger)
        with open(p, "r+b") as fh:
            fh.truncate(len(p.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[0]) + 1)

    steps = [reaction(1, 10, [], ["👍"]), reaction(2, 11, [], ["👍"]), replace_without_last_row,
             reaction(2, 11, [], ["👍"]),  # its row was removed: added again, not a duplicate
             reaction(3, 12, [], ["❤"]), cut_in_place, reaction(3, 12, [], ["❤"])]
    replies, (ledger, *_), srv = _both(cfg, steps)
    assert [r[1]["added"] for r in replies] == [1, 1, 1, 1, 1]
    assert [r["update_id"] for r in ledger] == [1, 2, 3]
    assert srv.ledger_cache.full_reads == 3


def test_a_ledger_migrate_rewrites_between_two_updates_is_read_again(cfg):
    old = [_old_row(90, 5, "added", "👍")]  # private chat ANN in the clear, as an older version wrote it

    def migrate(c):
        assert next(f for f in migrate_private_chats(c)["files"] if f["kind"] == "ledger")["changed"] == 1

    steps = [reaction(1, 10, [], ["👍"], chat=ANN, user=ANN), migrate,
             {**reaction(90, 6, [], ["👎"], chat=ANN, user=ANN)},  # the old row's update id: a conflict
             reaction(2, 10, ["👍"], [], chat=ANN, user=ANN, at=3)]
    replies, (ledger, quarantine, *_), srv = _both(cfg, steps, old)
    assert [r[1]["quarantined"] for r in replies] == [0, 1, 0] and len(quarantine) == 1
    assert {r["chat"] for r in ledger} == {ledger[-1]["chat"]} and str(ledger[-1]["chat"]).startswith("u:")
    assert srv.ledger_cache.full_reads == 2  # the file migrate put in its place


@pytest.mark.parametrize("torn", [b'{"time": "2026-02-25T06:1', b"ROW"], ids=["fragment", "row-without-newline"])
def test_a_torn_last_line_between_two_updates_is_read_as_a_fresh_read_reads_it(cfg, torn):
    """A writer killed mid-append leaves a last line without its newline: a fragment (unusable, kept as it is),
    or a whole row whose newline was not written (a row). The next append ends it with a newline first."""
    row = orjson.dumps({**_old_row(30, 9, "added", "👍"), "chat": -100555, "key": "tg:30:added:👍"})

    def kill_mid_append(c):
        with open(c.ledger, "ab") as fh:
            fh.write(row if torn == b"ROW" else torn)

    steps = [reaction(1, 10, [], ["👍"]), kill_mid_append, reaction(2, 11, [], ["👍"]),
             reaction(30, 9, [], ["👎"], chat=-100555, user=ANN),  # update 30: a conflict if the torn row is a row
             reaction(3, 12, [], ["❤"])]
    replies, (ledger, quarantine, _, skipped), srv = _both(cfg, steps)
    as_row = torn == b"ROW"
    assert [r[1]["added"] for r in replies] == [1, 1, 0 if as_row else 1, 1]
    assert len(skipped) == (0 if as_row else 1) and len(quarantine) == (1 if as_row else 0)
    assert len(ledger) == (4 if as_row else 5)  # the fragment stays, a line of its own
    assert srv.ledger_cache.full_reads == 1


def test_a_row_glued_onto_a_torn_line_is_no_row(cfg):
    """A writer that does not end a torn line first (an older tool) glues its row onto the fragment: one
    unusable line for a fresh read, and so for the cache, which read the file up to before the fragment."""
    def torn_then_glued(c):
        with open(c.ledger, "ab") as fh:
            fh.write(b'{"time": "2026-02')
        with open(c.ledger, "ab") as fh:
            fh.write(orjson.dumps({**_old_row(30, 9, "added", "👍"), "chat": -100555}) + b"\n")

    steps = [reaction(1, 10, [], ["👍"]), torn_then_glued,
             reaction(30, 9, [], ["👎"], chat=-100555, user=ANN)]  # update 30 is in no usable row: added
    replies, (*_, skipped), _srv = _both(cfg, steps)
    assert replies[-1][1]["added"] == 1 and len(skipped) == 1


def test_a_ledger_removed_between_two_updates_starts_again(cfg):
    steps = [reaction(1, 10, [], ["👍"]), reaction(2, 11, [], ["👍"]), lambda c: os.remove(c.ledger),
             reaction(1, 10, [], ["👍"]), reaction(3, 12, [], ["❤"])]
    replies, (ledger, *_), srv = _both(cfg, steps)
    assert [r[1]["added"] for r in replies] == [1, 1, 1, 1] and [r["update_id"] for r in ledger] == [1, 3]
    assert srv.ledger_cache.full_reads == 2


def test_the_quarantine_keys_are_kept_and_another_harvests_are_seen(cfg):
    """A bad update read every key the quarantine held; the receiver keeps them as it keeps the ledger's."""
    bad = {"update_id": 7, "message_reaction": {"chat": {}}}

    def beside(c):  # another harvest quarantines what the receiver's second update will be, under the same name
        harvest_updates(c, [("webhook:2", bad)], "webhook", ["webhook"])

    steps = [{"update_id": 6, "message_reaction": {"chat": {}}}, beside, bad, reaction(1, 10, [], ["👍"]),
             {**bad, "update_id": 8}]
    replies, (_, quarantine, *_), srv = _both(cfg, steps)
    assert [r[1]["quarantined"] for r in replies] == [1, 1, 0, 1]
    assert [q["where"] for q in quarantine] == ["webhook:1:chat.id", "webhook:2:chat.id", "webhook:4:chat.id"]
    assert (srv.ledger_cache.quarantine.full_reads, srv.ledger_cache.quarantine.appended_reads) == (1, 3)
