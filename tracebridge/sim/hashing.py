"""Content hashes of runs that ignore what differs between two runs of the same seed and config:
run and event ids (replaced by the event's position, so lineage still counts), timestamps,
measured latencies and the capture's own bookkeeping. Two runs with equal content hashes wrote
the same events with the same payloads, labels, model calls and session content.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import EVENTS_FILE, SESSION_FILE, iter_lines, iter_runs
from tracebridge.schema.canonical import canonical_json, sha256_json

VOLATILE_SESSION = ("run_id", "started_at", "finished_at")


def _strip_latency(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_latency(v) for k, v in obj.items() if k != "latency_ms"}
    if isinstance(obj, list):
        return [_strip_latency(v) for v in obj]
    return obj


def normalized_events(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The run's events with ids replaced by positions and volatile fields removed."""
    pos: dict[str, int] = {}
    out = []
    for ln in iter_lines(Path(run_dir) / EVENTS_FILE):
        ev = ln.obj if isinstance(ln.obj, dict) else {"<unparsed line>": ln.lineno}
        pos[str(ev.get("event_id"))] = len(pos)
        norm = {k: v for k, v in ev.items() if k not in ("run_id", "event_id", "timestamp", "parent_event_id")}
        parent = ev.get("parent_event_id")
        norm["parent"] = None if parent is None else pos.get(str(parent), "<unknown>")
        out.append(_strip_latency(norm))
    return out


def normalized_session(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """session.json without ids and times (None for an incomplete run)."""
    path = Path(run_dir) / SESSION_FILE
    if not path.is_file():
        return None
    data = orjson.loads(path.read_bytes())
    return {k: v for k, v in data.items() if k not in VOLATILE_SESSION}


def content_hash(run_dir: str | os.PathLike[str]) -> str:
    """sha256 of a run's content, excluding ids, timestamps and latencies."""
    return sha256_json({"events": normalized_events(run_dir), "session": normalized_session(run_dir)})


def root_content_hashes(root: str | os.PathLike[str]) -> dict[str, str]:
    """``source.ref`` (or run id when absent) → content hash, for every run under ``root``."""
    out = {}
    for run in iter_runs(root):
        sess = normalized_session(run.path) or {}
        ref = (sess.get("source") or {}).get("ref") or run.run_id
        out[ref] = content_hash(run.path)
    return out


def root_content_hash(root: str | os.PathLike[str]) -> str:
    """One hash over every run's content hash, keyed by ``source.ref`` (order-independent)."""
    return hashlib.sha256(canonical_json(sorted(root_content_hashes(root).items()))).hexdigest()
