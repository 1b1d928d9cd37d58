"""Content hashes ignore ids, timestamps and latencies, and see every other change."""

from __future__ import annotations

import json
import shutil

from tests.sim.conftest import HARD, NOVICE, spec
from tracebridge.sim.episode import run_episode
from tracebridge.sim.hashing import (
    content_hash,
    normalized_events,
    root_content_hash,
    root_content_hashes,
)


def _rewrite(run_dir, fn):
    path = run_dir / "events.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(fn(e)) + "\n" for e in lines))


def test_content_hash_ignores_volatile_fields_only(tmp_path):
    r = run_episode(spec("sql", 3, NOVICE, HARD), tmp_path / "a")
    run = tmp_path / "a" / r.run_id
    h = content_hash(run)
    copy = tmp_path / "b" / "other-run-id"
    shutil.copytree(run, copy)

    def volatile(e):
        new_id = lambda x: None if x is None else x.replace(r.run_id, "other-run-id")
        e = {**e, "run_id": "other-run-id", "event_id": new_id(e["event_id"]),
             "parent_event_id": new_id(e["parent_event_id"]), "timestamp": "2030-01-01T00:00:00.000Z"}
        if "latency_ms" in e["payload"]:
            e["payload"]["latency_ms"] = 123.0
        return e

    _rewrite(copy, volatile)
    sess = json.loads((copy / "session.json").read_text())
    sess.update(run_id="other-run-id", started_at="2030-01-01T00:00:00.000Z")
    (copy / "session.json").write_text(json.dumps(sess))
    assert content_hash(copy) == h

    def change_payload(e):
        if e["event_type"] == "verifier_output":
            e["payload"]["feedback"] += "!"
        return e

    _rewrite(copy, change_payload)
    assert content_hash(copy) != h


def test_lineage_is_part_of_the_content(tmp_path):
    r = run_episode(spec("calc", 1), tmp_path)
    run = tmp_path / r.run_id
    h = content_hash(run)
    events = normalized_events(run)
    assert events[0]["parent"] is None and all(isinstance(e["parent"], int) for e in events[1:])

    def reparent(e):
        if e["event_type"] == "episode_end":
            e["parent_event_id"] = f"{r.run_id}:000001"
        return e

    _rewrite(run, reparent)
    assert content_hash(run) != h


def test_root_hash_is_keyed_by_source_ref(tmp_path):
    for root in ("x", "y"):
        for s in (0, 1):
            run_episode(spec("docs", s), tmp_path / root)
    assert set(root_content_hashes(tmp_path / "x")) == {"sim/docs/m/f/0", "sim/docs/m/f/1"}
    assert root_content_hash(tmp_path / "x") == root_content_hash(tmp_path / "y")
