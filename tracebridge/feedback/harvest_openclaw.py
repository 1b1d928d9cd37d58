"""Telegram reactions from OpenClaw transcripts: the system-event lines OpenClaw writes into a
session when a user reacts (``Telegram reaction added: 👍 by Ann on msg 42``), harvested from
transcript files and agent databases into the same ledger as the Bot API harvest
(``tracebridge.feedback.harvest``), with the same report, quarantine and per-bot stamping.

The rows are ``bot_id``'s, or, on a host whose OpenClaw runs several Telegram accounts (one bot each,
``channels.telegram.accounts.<id>``), the bot that ``openclaw_accounts`` gives the session's account
(``account_of``: OpenClaw names it in the session key only with ``dmScope`` =
``per-account-channel-peer``, else in the session entry's delivery context). OpenClaw's account ids are
names from its config ("default" for a channel without named accounts), not bot ids, so they are mapped,
never guessed; a session of an account the mapping does not list has its reactions quarantined with
that account named, and the report counts each account's lines (``accounts``).

A line names its reactor by @username, else by display name, while the Bot API names them by id; in a direct
chat (the session key's peer is the user's id) the reactor is that user, so the row is their id's pseudonym and
carries the line's as ``user_alias`` (@username) or ``name_alias`` (``ledger.resolve_users``); elsewhere the row
is the line's pseudonym, one person with the id's once an update links the two.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import HEAD_BYTES, MAX_LINE_BYTES, overlong, read_lines, skip_rest
from tracebridge.feedback.bots import bot_of
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import (
    HarvestReport,
    _check_salt,
    _finish,
    _quarantine,
    _salt,
    _stamp,
    preflight,
)
from tracebridge.feedback.ledger import hash_user, parse_time, private_chat, read_ledger
from tracebridge.feedback.mapping import load_mapping
from tracebridge.feedback.privacy import pseudonymous_key
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


DEFAULT_ACCOUNT = "default"  # OpenClaw's account of a channel configured without named accounts (account-id.ts)
_ACCOUNT_FIELDS = (("deliveryContext", ("channel",)), ("origin", ("provider", "surface")))


def account_of(index_entry: dict[str, Any] | None) -> str | None:
    """The OpenClaw Telegram account a session names, lowercased as OpenClaw keeps account ids: the
    ``<account>`` of its key ``agent:<a>:telegram:<account>:<kind>:<peer>`` (``dmScope`` =
    ``per-account-channel-peer``; other keys name none), else the ``accountId`` of its entry's
    ``deliveryContext`` or ``origin`` of channel telegram, else its ``lastAccountId`` when its
    ``lastChannel`` is telegram; None when it names none."""
    e = index_entry or {}
    parts = str(e.get("key") or "").split(":")
    rest = parts[parts.index("telegram") + 1:] if "telegram" in parts else []
    if len(rest) >= 3 and rest[1] in _PEER_KINDS and rest[0] not in _PEER_KINDS and rest[0]:
        return rest[0].lower()
    places = [(e.get(name), fields, "accountId") for name, fields in _ACCOUNT_FIELDS]
    places.append((e, ("lastChannel",), "lastAccountId"))
    for where, fields, field in places:
        account = where.get(field) if isinstance(where, dict) else None
        if isinstance(account, str) and account.strip() and any(where.get(f) == "telegram" for f in fields):
            return account.strip().lower()
    return None


def _reaction_rows(row: dict[str, Any], lineno: int, s: _Session, h: _Harvest) -> list[dict[str, Any]]:
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
            # the reason goes to reports and the harvest log: words after the emoji other than "on msg <id>"
            # may name the user
            head, rest = " ".join(ev["text"].split(" ")[:4]), " ".join(ev["text"].split(" ")[4:])
            shown = f"{head} {rest}" if re.fullmatch(r"(on msg \d+)?", rest) else \
                f"{head} <the rest withheld: it may name the user>"
            raise ValueError(f"message.content: system event {shown[:200]!r} is not 'Telegram reaction "
                             "added|removed: <emoji> by <name> on msg <id>'")
        when = event_time(ev.get("time") or "", to_timestamp(row.get("timestamp")))
        t = parse_time(when)
        why = "no time in the system event or its row" if t is None else impossible_time(t, h.now)
        if why:
            raise ValueError(f"time: {why}")
        key = "oc:" + hashlib.sha256(f"{s.sid}|{row.get('id') or lineno}|{i}|{ev['text']}".encode()).hexdigest()[:24]
        out.append({"time": when, "chat": s.chat, "message_id": r["message_id"], **_who(r, s, h.salt), "emoji": r["emoji"],
                    "change": r["action"], "count": 1, "score": h.mapping.score(r["emoji"]),
                    "mapping_version": h.mapping.version, "source": "openclaw", "update_id": None, "key": key,
                    "harvested_at": h.now, **({"openclaw_account": s.account} if s.account is not None else {})})
    return out


def _who(r: dict[str, Any], s: _Session, salt: str) -> dict[str, Any]:
    """The reactor of an OpenClaw line: the pseudonym of its @username, else of its display name; in a direct
    chat the chat's user (``s.peer``, whose id the session key holds), linked to those (``ledger.resolve_users``)."""
    named = hash_user(r.get("username") or r.get("who"), salt)
    if s.peer is None:
        return {"user": named}
    return {"user": hash_user(s.peer, salt), "user_alias" if r.get("username") else "name_alias": named}


@dataclass(frozen=True)
class _Session:
    sid: str
    chat: Any
    account: str | None  # None: openclaw_accounts is not set
    bot: str
    why: str = ""  # why its reactions are quarantined (an unlisted account)
    peer: int | None = None  # a direct chat's user id (the session key's peer): the one who reacts there


class _Harvest:
    """What one OpenClaw harvest shares across sessions: config, report, mapping, salt, the ledger's keys
    and the bots of the Telegram accounts (``openclaw_accounts``, ids lowercased as OpenClaw keeps them)."""

    def __init__(self, cfg: FeedbackConfig, rep: HarvestReport) -> None:
        self.cfg, self.rep, self.now = cfg, rep, utc_now()
        self.mapping, self.salt = load_mapping(cfg.mapping), _salt(cfg)
        self.accounts = {str(k).lower(): str(v) for k, v in cfg.openclaw_accounts.items()}
        ledger = read_ledger(cfg.ledger, self.salt).rows
        self.salted, self.known = _check_salt(cfg, ledger), {r.key for r in ledger if r.key}

    def session(self, entry: dict[str, Any] | None, sid: str) -> _Session:
        """The session's chat and bot: ``bot_id`` without ``openclaw_accounts``, else its account's bot, or
        why it has none (an account the config does not list: its reactions are quarantined)."""
        peer = chat_of(entry, sid)
        chat = private_chat(peer, self.salt)  # a direct chat's id is its user's
        direct = {"direct", "dm"} & set(str((entry or {}).get("key") or "").split(":"))
        peer = peer if direct and isinstance(peer, int) and peer > 0 else None  # a group's members are many
        if not self.accounts:
            return _Session(sid, chat, None, self.rep.bot_id, peer=peer)
        account = account_of(entry) or DEFAULT_ACCOUNT
        bot = self.accounts.get(account, "")
        why = "" if bot else (
            f"session {sid!r} (key {pseudonymous_key((entry or {}).get('key'), self.salt)!r}) is of OpenClaw "
            f"Telegram account {account!r}"
            f"{'' if account_of(entry) else ' (it names none: the default one)'}, which openclaw_accounts does "
            f"not list ({', '.join(sorted(self.accounts))}); add openclaw_accounts.{account}=<that bot's id>")
        return _Session(sid, chat, account, bot, why, peer)


@dataclass(frozen=True)
class Listing:
    """What one walk of the ``--openclaw`` paths found: transcripts, agent databases, problems, and
    the given paths under which it found none of them (``empty``: most likely a wrong folder)."""

    transcripts: list[Any]
    stores: list[Path]
    problems: list[str]
    empty: list[str]


def list_openclaw(paths: list[str | os.PathLike[str]] | None) -> Listing:
    """Walk ``paths`` once (default: the OpenClaw homes) for what a harvest reads; the CLI checks
    ``empty`` and hands the same listing to ``harvest_openclaw``, so the folder it checked is the
    folder it harvests (a second walk could see other files)."""
    problems: list[str] = []
    stores: list[Path] = []
    empty: list[str] = []
    transcripts = discover(paths, problems, stores, empty=empty)
    return Listing(transcripts, list(dict.fromkeys(stores)), list(dict.fromkeys(problems)), empty)


def harvest_openclaw(cfg: FeedbackConfig, paths: list[str | os.PathLike[str]] | None,
                     listing: Listing | None = None) -> HarvestReport:
    """Harvest Telegram reactions from OpenClaw transcripts' system-event lines: transcript files and
    the sessions of agent databases (``openclaw-agent.sqlite``, read where they are, never copied); each
    session's reactions are its account's bot's (``openclaw_accounts``), else ``bot_id``'s. ``listing``:
    ``list_openclaw(paths)`` already walked (else walked here)."""
    from tracebridge.importers.openclaw.session import session_id_from_name

    preflight(cfg)
    got = listing if listing is not None else list_openclaw(paths)
    transcripts, stores, problems = got.transcripts, got.stores, list(got.problems)
    rep = HarvestReport("openclaw", [str(t.path) for t in transcripts] + [str(db) for db in stores], bot_id=bot_of(cfg))
    h = _Harvest(cfg, rep)
    rows: list[dict[str, Any]] = []
    for db in stores:  # first: a session also left as a .jsonl keeps the database's chat id
        try:
            for sid, entry, events in read_sessions(db, problems):
                lines = ((n, seq, raw) for n, (seq, raw) in enumerate(events, 1))
                rows += _harvest_session(h, h.session(entry, sid), lines, f"{db} session {sid!r} seq {{}}".format)
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
            where = f"{t.path}:{{}}".format
            rows += _harvest_session(h, h.session(t.index_entry, sid), _file_lines(h, fh, where), where)
    for p in problems:  # read and quarantined, like an unreadable dump, so the counts reconcile
        rep.read += 1
        _quarantine(cfg, rep, p, "not harvested", "")
    return _finish(cfg, rep, rows)


def holding_nothing(paths: list[str | os.PathLike[str]]) -> list[str]:
    """The ``paths`` under which discovery finds no transcript, no agent database and no problem (a
    compressed archive, an unreadable index): inputs with nothing to harvest, most likely a wrong folder.
    Harvested, each was logged as a harvest that ran, which the daily audit takes as evidence that
    harvesting works. (A caller that goes on to harvest uses ``list_openclaw`` and walks once.)"""
    return list_openclaw(paths).empty if paths else []


def not_transcripts(listing: Listing, paths: list[str | os.PathLike[str]],
                    max_line_bytes: int = MAX_LINE_BYTES) -> list[str]:
    """The files named in ``paths`` (taken as transcripts whatever their name) that hold text but no line of
    a transcript (a JSON object with a ``type``, as every OpenClaw session event has): a getUpdates dump or
    notes given to ``--openclaw``. Harvested, such a file read nothing and was logged as a harvest that ran."""
    taken = {str(t.path) for t in listing.transcripts}
    named = [p for p in paths if str(Path(p).expanduser()) in taken]
    return [str(p) for p in named if not _has_event_line(Path(p).expanduser(), max_line_bytes)]


def _has_event_line(path: Path, max_line_bytes: int) -> bool:
    """Whether ``path`` is blank (a session just opened) or has a line that is an object with a ``type``
    (read until the first one: a transcript's first line is its header); an unreadable file is the
    harvest's to quarantine, and a line over ``max_line_bytes`` is read past, as the harvest quarantines it."""
    try:
        with path.open("rb") as fh:
            blank = True
            for raw in read_lines(fh, max_line_bytes):
                if raw[-1] != 10 and len(raw) > max_line_bytes:
                    skip_rest(fh, raw)
                    blank = False
                    continue
                blank = blank and not raw.strip()
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("type"), str):
                    return True
            return blank
    except OSError:
        return True


def _file_lines(h: _Harvest, fh: Any, where: Callable[[int], str]) -> Iterator[tuple[int, int, bytes]]:
    """A transcript's (line number, place, line); a line longer than ``max_line_bytes`` is read past in
    chunks and quarantined with its size (it cannot be searched for a reaction without reading it whole)."""
    limit = h.cfg.max_line_bytes
    for n, raw in enumerate(read_lines(fh, limit), 1):
        if raw[-1] != 10 and len(raw) > limit:
            h.rep.read += 1
            why = f"{overlong(skip_rest(fh, raw), limit)}; not searched for a reaction"
            _quarantine(h.cfg, h.rep, where(n), why, raw[:HEAD_BYTES].decode("utf-8", "replace"))
            continue
        yield n, n, raw


_ACCOUNT_COUNTS = ("read", "accepted", "applied", "quarantined")


def _harvest_session(h: _Harvest, s: _Session, lines: Iterable[tuple[int, int, bytes]],
                     where: Callable[[int], str]) -> list[dict[str, Any]]:
    """``_harvest_lines`` of one session, its counts added to its account's in the report (``accounts``:
    per account its bot and read = accepted + quarantined, when ``openclaw_accounts`` is set)."""
    before = [getattr(h.rep, k) for k in _ACCOUNT_COUNTS]
    rows = _harvest_lines(h, s, lines, where)
    if s.account is not None and h.rep.read > before[0]:
        a = h.rep.accounts.setdefault(s.account, {"bot_id": s.bot or None, **dict.fromkeys(_ACCOUNT_COUNTS, 0)})
        for k, b in zip(_ACCOUNT_COUNTS, before, strict=True):
            a[k] += getattr(h.rep, k) - b
    return rows


def _harvest_lines(h: _Harvest, s: _Session, lines: Iterable[tuple[int, int, bytes]],
                   where: Callable[[int], str]) -> list[dict[str, Any]]:
    """The reaction rows of one transcript's (line number, place, line), stamped with the session's bot:
    the place is what ``where`` names in a quarantine line (a file's line number, a database row's seq);
    unreadable reaction lines, and those of a session of an unlisted account, are quarantined."""
    rows: list[dict[str, Any]] = []
    for lineno, place, raw in lines:
        if b"Telegram reaction" not in raw:
            continue
        h.rep.read += 1
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            _quarantine(h.cfg, h.rep, where(place), f"invalid JSON: {json_error(raw)}", raw.decode("utf-8", "replace"))
            continue
        got: list[dict[str, Any]] = []
        try:
            if isinstance(row, dict) and isinstance(row.get("message"), dict) and \
                    row["message"].get("role") == "user":
                got = _reaction_rows(row, lineno, s, h)
        except ValueError as exc:
            _quarantine(h.cfg, h.rep, where(place), str(exc), row)
            continue
        if got and s.why:
            _quarantine(h.cfg, h.rep, where(place), f"account: {s.why}", row)
            continue
        rows += _stamp(got, h.salted, s.bot)
        h.rep.accept(got, h.known, "no reaction event in a user message (the words appear elsewhere)")
    return rows
