"""The registry of sent reply chunks (``memory/feedback/sent-chunks.jsonl``).

When the agent sends one reply split over several Telegram messages, the runtime records the
batch: one row per chunk with ``batch_id``, ``chat``, ``message_id``, ``chunk_index`` (0-based),
``chunk_count``, ``run_id``, ``event_id`` and ``time``. Appends are file-locked; recording the
same batch twice adds nothing (the key is chat + message id).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import iter_lines
from tracebridge.feedback.ledger import append_locked, file_lock, parse_time
from tracebridge.schema.canonical import utc_now


@dataclass(frozen=True)
class Chunk:
    batch_id: str
    chat: Any
    message_id: int
    chunk_index: int
    chunk_count: int
    run_id: str
    event_id: str
    time: str | None = None

    @property
    def is_last(self) -> bool:
        """Whether this is the batch's final chunk."""
        return self.chunk_index == self.chunk_count - 1


def record_batch(path: str | os.PathLike[str], chat: Any, message_ids: list[int], run_id: str,
                 event_ids: str | list[str], batch_id: str | None = None, time: str | None = None) -> str:
    """Register one reply sent as ``message_ids`` (in order); return the batch id.

    Args:
        event_ids: the event the reply came from, or one event per chunk.

    Raises:
        ValueError: no message ids, an event count that does not match, or a message of ``chat`` that the
            registry holds for another reply (another batch or run): the labels of one would go to the other.
    """
    if not message_ids:
        raise ValueError("message_ids: a batch has at least one message")
    events = [event_ids] * len(message_ids) if isinstance(event_ids, str) else list(event_ids)
    if len(events) != len(message_ids):
        raise ValueError(f"event_ids: {len(events)} given for {len(message_ids)} messages")
    batch = batch_id or "b:" + hashlib.sha256(f"{chat}|{message_ids[0]}|{run_id}".encode()).hexdigest()[:16]
    when = time or utc_now()
    rows = [{"batch_id": batch, "chat": chat, "message_id": int(m), "chunk_index": i, "chunk_count": len(message_ids),
             "run_id": run_id, "event_id": e, "time": when, "key": f"{chat}:{m}"}
            for i, (m, e) in enumerate(zip(message_ids, events))]
    with file_lock(path):  # read and append under one lock: a batch recorded meanwhile is checked too
        reg = read_registry(path)
        for r in rows:
            held = reg.find(chat, r["message_id"])
            if held is not None and (held.batch_id, held.run_id) != (batch, run_id):
                raise ValueError(f"{path}: chat {chat} message {r['message_id']} is already registered for run "
                                 f"{held.run_id} (batch {held.batch_id}), so its reactions would label that run; "
                                 "two bots see one private chat under the same id (the user's) with message ids "
                                 "of their own: give each bot its own feedback files (ledger and registry)")
        append_locked(path, rows, held=True)
    return batch


@dataclass
class Registry:
    by_message: dict[tuple[str, int], Chunk] = field(default_factory=dict)
    batches: dict[str, list[Chunk]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    read: int = 0  # lines read: read = usable chunk lines + skipped

    def find(self, chat: Any, message_id: int) -> Chunk | None:
        """The chunk sent as ``message_id`` in ``chat``, or None if it is not registered."""
        return self.by_message.get((str(chat), message_id))


def read_registry(path: str | os.PathLike[str]) -> Registry:
    """Load the registry; unusable lines as ``file:line:field: problem`` (``read`` counts every line)."""
    reg = Registry()
    p = Path(path)
    if not p.is_file():
        return reg
    for ln in iter_lines(p):
        reg.read += 1
        r = ln.obj
        where = f"{p}:{ln.lineno}"
        if ln.error or not isinstance(r, dict):
            reg.skipped.append(f"{where}:<line>: {ln.error or 'not an object'}")
            continue
        try:
            c = Chunk(str(r["batch_id"]), r.get("chat"), int(r["message_id"]), int(r["chunk_index"]),
                      int(r["chunk_count"]), str(r["run_id"]), str(r["event_id"]), r.get("time"))
        except (KeyError, TypeError, ValueError) as exc:
            reg.skipped.append(f"{where}:{exc.args[0] if isinstance(exc, KeyError) else 'row'}: missing or invalid")
            continue
        if not 0 <= c.chunk_index < c.chunk_count:
            reg.skipped.append(f"{where}:chunk_index: {c.chunk_index} not in 0..{c.chunk_count - 1}")
            continue
        reg.by_message.setdefault((str(c.chat), c.message_id), c)
        reg.batches.setdefault(c.batch_id, []).append(c)
    for chunks in reg.batches.values():
        chunks.sort(key=lambda c: c.chunk_index)
    return reg


def sent_time(chunk: Chunk) -> Any:
    """When the chunk was sent (aware UTC datetime; None if its time is missing or invalid)."""
    return parse_time(chunk.time)
