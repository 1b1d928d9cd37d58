"""Telegram reactions from OpenClaw transcripts: the system-event lines OpenClaw writes into a
session when a user reacts (``Telegram reaction added: 👍 by Ann on msg 42``), harvested from
transcript files and agent databases into the same ledger as the Bot API harvest
(``tracebridge.feedback.harvest``), with the same report, quarantine and per-bot stamping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from tracebridge.feedback.bots import bot_of
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import (
    HarvestReport,
    _check_salt,
    _finish,
    _quarantine,
    _salt,
    _stamp,
)
from tracebridge.feedback.ledger import hash_user, parse_time, read_ledger
from tracebridge.feedback.mapping import Mapping, load_mapping
from tracebridge.feedback.telegram import impossible_time
from tracebridge.importers.jsonl import json_error
from tracebridge.importers.openclaw.discover import discover
from tracebridge.importers.openclaw.sqlite_store import StoreError, read_sessions
from tracebridge.importers.openclaw.text import split_user_text, to_timestamp
from tracebridge.schema.canonical import format_ts, utc_now

_WHEN = re.compile(r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\s*(?:UTC|GMT|Z)?\s*(?:([+-])(\d{1,2})(?::?(\d{2}))?)?)?")


def event_time(text: str, fallback: str | None) -> str | None:
    """``2026-03-22 04:55:25 GMT+8`` (or UTC / no zone = UTC) in the schema's format.

    Raises:
        ValueError: a time of that shape that is no real time (the line is quarantined).
    """
    m = _WHEN.search(text)
    if m is None:
        return fallback
    try:
        t = dt.datetime.fromisoformat(m.group(1).replace(" ", "T"))
        offset = 0
        if m.group(2):
            offset = (int(m.group(3)) * 60 + int(m.group(4) or 0)) * (1 if m.group(2) == "+" else -1)
        return format_ts(t.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset))))
    except (ValueError, OverflowError) as exc:  # month 13, GMT+99, a time past year 9999 in UTC
        raise ValueError(f"system event time {m.group(0).strip()!r}: {exc}") from None


_PEER_KINDS = ("direct", "dm", "group", "channel")


def chat_of(index_entry: dict[str, Any] | None, session_id: str) -> Any:
    """Chat id from a session key ``agent:<a>:telegram:[<account>:]<kind>:<id>[:topic|thread:<n>]``
    (the id after the peer kind: a forum topic's or thread's number is no chat), else ``session:<id>``."""
    key = (index_entry or {}).get("key") or ""
    parts = str(key).split(":")
    if "telegram" in parts:
        rest = parts[parts.index("telegram") + 1:]
        for kind, peer in itertools.pairwise(rest):
            if kind in _PEER_KINDS and peer.lstrip("-").isdigit():
                return int(peer)
    return f"session:{session_id}"


def _reaction_rows(row: dict[str, Any], lineno: int, sid: str, chat: Any, mapping: Mapping, salt: str | None,
                   now: str) -> list[dict[str, Any]]:
    msg = row.get("message") or {}
    content = msg.get("content")
    blocks = content if isinstance(content, list) else []  # any other shape holds no system events
    text = content if isinstance(content, str) else "\n".join(
        b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    out = []
    for i, ev in enumerate(split_user_text(text).system_events):
        if ev["kind"] != "telegram_reaction":
            continue
        r = ev.get("reaction")
        if not r:  # a shape this harvest does not know: quarantined, not dropped
            raise ValueError(f"message.content: system event {ev['text'][:200]!r} is not 'Telegram reaction "
                             "added|removed: <emoji> by <name> on msg <id>'")
        when = event_time(ev.get("time") or "", to_timestamp(row.get("timestamp")))
        t = parse_time(when)
        why = "no time in the system event or its row" if t is None else impossible_time(t, now)
        if why:
            raise ValueError(f"time: {why}")
        key = "oc:" + hashlib.sha256(f"{sid}|{row.get('id') or lineno}|{i}|{ev['text']}".encode()).hexdigest()[:24]
        out.append({"time": when, "chat": chat, "message_id": r["message_id"],
                    "user": hash_user(r.get("username") or r.get("who"), salt), "emoji": r["emoji"],
                    "change": r["action"], "count": 1, "score": mapping.score(r["emoji"]),
                    "mapping_version": mapping.version, "source": "openclaw", "update_id": None, "key": key,
                    "harvested_at": now})
    return out


def harvest_openclaw(cfg: FeedbackConfig, paths: list[str | os.PathLike[str]] | None) -> HarvestReport:
    """Harvest Telegram reactions from OpenClaw transcripts' system-event lines: transcript files and
    the sessions of agent databases (``openclaw-agent.sqlite``, read where they are, never copied)."""
    from tracebridge.importers.openclaw.session import session_id_from_name

    mapping, salt, now, bot = load_mapping(cfg.mapping), _salt(cfg), utc_now(), bot_of(cfg)
    problems: list[str] = []
    stores: list[Path] = []
    transcripts = discover(paths, problems, stores)
    rep = HarvestReport("openclaw", [str(t.path) for t in transcripts] + [str(db) for db in stores], bot_id=bot)
    rows: list[dict[str, Any]] = []
    ledger = read_ledger(cfg.ledger).rows
    salted, known = _check_salt(cfg, ledger), {r.key for r in ledger if r.key}
    for db in stores:  # first: a session also left as a .jsonl keeps the database's chat id
        try:
            for sid, entry, events in read_sessions(db, problems):
                lines = ((n, seq, raw) for n, (seq, raw) in enumerate(events, 1))
                rows += _harvest_lines(cfg, rep, lines, f"{db} session {sid!r} seq {{}}".format, sid,
                                       chat_of(entry, sid), mapping, salt, now, known)
        except StoreError as exc:  # the sessions read before it are harvested
            problems.append(str(exc))
    for t in transcripts:
        sid = (t.index_entry or {}).get("sessionId") or session_id_from_name(t.path.name)
        try:
            fh = open(t.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:  # a symlink loop, no permission: the other transcripts are still harvested
            rep.read += 1
            _quarantine(cfg, rep, str(t.path), f"unreadable: {exc}", "")
            continue
        with fh:
            lines = ((n, n, raw) for n, raw in enumerate(fh, 1))
            rows += _harvest_lines(cfg, rep, lines, f"{t.path}:{{}}".format, sid, chat_of(t.index_entry, sid),
                                   mapping, salt, now, known)
    for p in problems:  # read and quarantined, like an unreadable dump, so the counts reconcile
        rep.read += 1
        _quarantine(cfg, rep, p, "not harvested", "")
    return _finish(cfg, rep, _stamp(rows, salted, bot))


def _harvest_lines(cfg: FeedbackConfig, rep: HarvestReport, lines: Iterable[tuple[int, int, bytes]],
                   where: Callable[[int], str], sid: str, chat: Any, mapping: Mapping, salt: str | None,
                   now: str, known: set[str]) -> list[dict[str, Any]]:
    """The reaction rows of one transcript's (line number, place, line): the place is what ``where``
    names in a quarantine line (a file's line number, a database row's seq); unreadable reaction
    lines are quarantined."""
    rows: list[dict[str, Any]] = []
    for lineno, place, raw in lines:
        if b"Telegram reaction" not in raw:
            continue
        rep.read += 1
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            _quarantine(cfg, rep, where(place), f"invalid JSON: {json_error(raw)}", raw.decode("utf-8", "replace"))
            continue
        got: list[dict[str, Any]] = []
        try:
            if isinstance(row, dict) and isinstance(row.get("message"), dict) and \
                    row["message"].get("role") == "user":
                got = _reaction_rows(row, lineno, sid, chat, mapping, salt, now)
        except ValueError as exc:
            _quarantine(cfg, rep, where(place), str(exc), row)
            continue
        rows += got
        rep.accept(got, known, "no reaction event in a user message (the words appear elsewhere)")
    return rows
