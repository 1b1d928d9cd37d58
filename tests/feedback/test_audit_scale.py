"""The daily audit of a busy day: time that grows with the day's reactions, not with their square."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import orjson

from tests.feedback.conftest import DATE, reaction
from tracebridge.feedback.audit import audit_day
from tracebridge.feedback.harvest import harvest_dumps

GROUP = -1001234567890


def test_a_day_of_thousands_of_joined_reactions_is_audited_in_linear_time(cfg, tmp_path):
    """For each joined reaction the audit looked for its row among all the day's rows (to tell a late one): 2000
    reactions took 4 s, 8000 took 59 s, a shadow cycle's feedback step with them longer still."""
    n = 6000
    Path(cfg.registry).parent.mkdir(parents=True)
    Path(cfg.registry).write_bytes(b"".join(orjson.dumps(
        {"batch_id": f"b{m}", "chat": GROUP, "message_id": m, "chunk_index": 0, "chunk_count": 1, "run_id": f"r{m % 50}",
         "event_id": f"r{m % 50}:e", "time": "2026-02-24T00:00:00.000Z", "key": f"{GROUP}:{m}"}) + b"\n"
        for m in range(1, n + 1)))
    dump = tmp_path / "updates.json"
    dump.write_bytes(orjson.dumps([reaction(i, i, [], ["👍"], chat=GROUP, user=i % 100, at=i % 3600)
                                   for i in range(1, n + 1)]))
    assert harvest_dumps(cfg, [dump]).added == n
    t = time.monotonic()
    doc = audit_day(cfg, dt.datetime.fromtimestamp(DATE, dt.UTC).date())
    took = time.monotonic() - t
    assert doc["added"] == n and len(doc["runs_labeled"]) == 50 and len(doc["late"]) == n  # sent a day before
    assert took < 15, f"{took:.1f} s"
