"""A large getUpdates dump: every update is accounted for (read = accepted + quarantined) in time that grows
with the dump, not with its square, when many of its updates are quarantined."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from tests.feedback.conftest import DATE, reaction
from tracebridge.feedback.harvest import harvest_dumps


def test_a_dump_of_thousands_of_bad_updates_is_quarantined_in_one_write(cfg, tmp_path):
    """Each quarantined input was appended on its own, and each append read every key the quarantine held:
    2000 updates of a reaction type this version does not know took 21 s, 3000 about 47 s."""
    bad = [{"update_id": 10_000 + i, "message_reaction": {
        "chat": {"id": -1001234567890, "type": "supergroup"}, "message_id": 3, "user": {"id": 7}, "date": DATE,
        "old_reaction": [], "new_reaction": [{"type": "sticker", "n": i}]}} for i in range(3000)]
    good = [reaction(i, 10, [], ["👍"], chat=-1001234567890, user=i) for i in range(1, 1001)]
    dump = tmp_path / "updates.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": good + bad}))
    t = time.monotonic()
    rep = harvest_dumps(cfg, [dump])
    took = time.monotonic() - t
    assert (rep.read, rep.accepted, rep.applied, rep.quarantined, rep.added) == (4000, 1000, 1000, 3000, 1000)
    assert took < 15, f"{took:.1f} s"
    lines = Path(cfg.quarantine).read_bytes().splitlines()
    assert len(lines) == 3000 and orjson.loads(lines[0])["where"].startswith(f"{dump}:")
    again = harvest_dumps(cfg, [dump])  # the same dump again: the same inputs are quarantined, none twice
    assert again.quarantined == 3000 and len(Path(cfg.quarantine).read_bytes().splitlines()) == 3000


def test_a_dump_of_thousands_of_channel_counts_takes_time_that_grows_with_it(cfg, tmp_path):
    """Each count update looked for its message's emojis among the counts of every message: 10000 count updates
    on as many channel posts took 23 s, 20000 took 72 s (a busy channel's day)."""
    def counts(uid: int, mid: int, n: int, at: int = 0) -> dict:
        return {"update_id": uid, "message_reaction_count": {
            "chat": {"id": -1001234567890, "type": "channel"}, "message_id": mid, "date": DATE + at,
            "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": n}] if n else []}}

    ups = [counts(i, i, 2) for i in range(1, 12001)] + [counts(20_000 + i, i, i % 3, at=1) for i in range(1, 101)]
    dump = tmp_path / "updates.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": ups}))
    t = time.monotonic()
    rep = harvest_dumps(cfg, [dump])
    took = time.monotonic() - t
    assert (rep.read, rep.accepted, rep.applied, rep.added) == (12100, 12100, 12067, 12067), rep
    assert took < 10, f"{took:.1f} s"
    rows = [orjson.loads(x) for x in Path(cfg.ledger).read_bytes().splitlines()]
    assert [(r["change"], r["count"]) for r in rows[12000:12003]] == [("removed", 1), ("removed", 2), ("removed", 1)]
    again = harvest_dumps(cfg, [dump])  # every count is stale now: nothing moves back
    assert again.added == 0 and sum(again.ignored.values()) == 12100
