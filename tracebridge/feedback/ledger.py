"""The reaction ledger: append-only JSONL, file-locked for concurrent writers, idempotent.

One row per reaction change: ``time`` (UTC ISO, when the reaction changed), ``chat`` (a private chat's
id is its user's, so it is kept as the user's pseudonym, ``private_chat``), ``message_id``, ``user``
(salted hash, ``anonymous`` for channel counts), ``emoji``, ``change`` (added | removed), ``count``
(1, or the size of an anonymous count change), ``score`` and
``mapping_version`` (the mapping when harvested; joins re-score with the current mapping),
``source`` (getUpdates | webhook | openclaw), ``update_id``, ``key`` (the dedupe key),
``harvested_at``, with several bots ``bot_id`` and, from an OpenClaw host that maps its Telegram accounts
(``openclaw_accounts``), ``openclaw_account``, and, on rows of a hashed user, ``salt_id`` (a fingerprint of the salt: a harvest
refuses to mix pseudonyms of two salts in one ledger), and ``user_alias`` / ``name_alias`` (``resolve_users``).
Appends hold the ledger's lock while they read the known keys and write, so
two harvesters never write the same change twice, and each row is one ``write`` on an
``O_APPEND`` descriptor, so rows never interleave.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from tracebridge.capture.reader import iter_lines
from tracebridge.capture.writer import EventWriter
from tracebridge.feedback.salt import configured_salt, no_salt

DEFAULT_SALT = "tracebridge-feedback"  # public: a harvest takes it only with allow_default_salt=true, never by default
CHANGES = ("added", "removed")
EDGE_BYTES = 1 << 16  # how much of a file's head and tail ``edge_problem`` reads


def _salt_of(salt: str | None) -> str:
    """``salt``, else the host's (``salt.configured_salt``: the variable, else the salt file). It fell back to the
    built-in salt, which is public: a caller that passed none (``record_batch`` in the bot's runtime) wrote
    pseudonyms anyone could reverse by hashing a list of Telegram user ids.

    Raises:
        ValueError: no salt given or configured, or a salt file that cannot be used.
    """
    if got := salt or configured_salt():
        return got
    raise ValueError(f"no salt for the feedback pseudonyms: {no_salt()}")


def hash_user(user_id: Any, salt: str | None = None) -> str:
    """A stable pseudonym for a Telegram user: ``u:<16 hex>`` of sha256(salt, id); ``salt`` None: the host's
    (``_salt_of``; ValueError when there is none)."""
    return "u:" + hashlib.sha256(f"{_salt_of(salt)}|{user_id}".encode()).hexdigest()[:16]


def private_chat(chat: Any, salt: str | None = None) -> Any:
    """A chat id as the feedback files keep it. In a private chat the chat id is the user's Telegram id (user
    ids are positive, group and channel ids negative), so a positive id is kept as the user's pseudonym
    (``hash_user``: the reactor's own); other chats, and a chat already pseudonymised, as they are. Files
    written before kept such ids in the clear: their readers pass them through here, so old and new rows of
    one chat join. With no salt given or configured such an id is left as it is (read as the file holds it)."""
    if not in_clear(chat):
        return chat
    salt = salt or configured_salt()
    return hash_user(int(chat), salt) if salt else chat


def in_clear(chat: Any) -> bool:
    """Whether ``chat`` is a private chat's id in the clear (a positive integer, or its digits)."""
    if isinstance(chat, bool):
        return False
    if isinstance(chat, int):
        return chat > 0
    return isinstance(chat, str) and chat.isascii() and chat.isdigit() and int(chat) > 0


def salt_id(salt: str | None = None) -> str:
    """A short fingerprint of the salt ``hash_user`` uses, never the salt itself: rows whose users were
    hashed under two salts name one person twice, so a changed reaction no longer replaces the old one."""
    return "s:" + hashlib.sha256(f"salt-id|{_salt_of(salt)}".encode()).hexdigest()[:12]


def parse_time(value: Any) -> dt.datetime | None:
    """A ledger time (ISO string or epoch seconds) as an aware UTC datetime, or None (also for a
    time outside the years 1-9999 in UTC: one such row must not stop a join or an audit)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            t = dt.datetime.fromisoformat(value)  # reads a trailing Z as UTC (Python 3.11+)
            return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


@dataclass
class LedgerRow:
    """One checked ledger row."""

    time: dt.datetime
    chat: Any
    message_id: int
    user: str | None
    emoji: str
    change: str
    count: int
    source: str
    key: str | None
    harvested_at: dt.datetime | None
    raw: dict[str, Any] = field(default_factory=dict)


def check_row(row: Any, salt: str | None = None) -> LedgerRow | str:
    """A ``LedgerRow``, or the ``field: problem`` that makes the row unusable; a private chat's id written in
    the clear (a ledger of an older version) is read as its pseudonym under ``salt`` (``private_chat``)."""
    if not isinstance(row, dict):
        return "<row>: not a JSON object"
    t = parse_time(row.get("time", row.get("ts", row.get("timestamp"))))
    if t is None:
        return "time: missing or not ISO/epoch"
    change = row.get("change", row.get("action"))
    if change not in CHANGES:
        return f"change: expected added|removed, got {change!r}"
    emoji = row.get("emoji")
    if not isinstance(emoji, str) or not emoji:
        return "emoji: missing"
    mid = row.get("message_id")
    if isinstance(mid, bool) or not isinstance(mid, int):
        return "message_id: missing or not an integer"
    count = row.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return f"count: must be a positive integer, got {count!r}"
    key = row.get("key")
    if key is not None and not isinstance(key, str):  # a list or object raised TypeError out of every harvest
        return f"key: expected a string (the dedupe key), got {type(key).__name__}"
    return LedgerRow(t, private_chat(row.get("chat"), salt), mid, row.get("user"), emoji, change, count, str(row.get("source") or ""),
                     row.get("key"), parse_time(row.get("harvested_at")), row)


def resolve_users(rows: list[LedgerRow]) -> list[LedgerRow]:
    """``rows`` with each person under one pseudonym, that of their Telegram id.

    OpenClaw's reaction lines name a user by @username (else by display name), the Bot API by id, so one
    person had two pseudonyms and their changes did not replace each other. A row that knows both says so:
    ``user_alias``, the pseudonym of the @username of its user (a Bot API update's ``user`` carries both; an
    OpenClaw line in a direct chat is by the chat's user, whose id the session key holds), and ``name_alias``,
    that of the display name, which only holds within that row's chat (names are not unique). Every row whose
    user is such an alias is read under the id's pseudonym, earlier rows too; an alias found with two ids (a
    username that passed to another account) links neither. Where only one is known (an @username no update
    paired with an id, a name outside a direct chat), the rows keep their own pseudonym. Rows are not rewritten.
    """
    links: dict[tuple[Any, str], set[str]] = {}
    for r in rows:
        for scope, alias in ((None, r.raw.get("user_alias")), (str(r.chat), r.raw.get("name_alias"))):
            if isinstance(alias, str) and isinstance(r.user, str) and alias != r.user:
                links.setdefault((scope, alias), set()).add(r.user)
    if not links:
        return rows
    for r in rows:
        to = links.get((None, r.user)) or links.get((str(r.chat), r.user))
        if to is not None and len(to) == 1:
            r.user = next(iter(to))
    return rows


@dataclass
class LedgerScan:
    rows: list[LedgerRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    read: int = 0


def read_ledger(path: str | os.PathLike[str], salt: str | None = None) -> LedgerScan:
    """Every usable row of the ledger; unusable ones as ``file:line:field: problem`` (read = rows + skipped).
    ``salt``: the harvest's, to read private chat ids an older version kept in the clear (``check_row``);
    None = the host's (``salt.configured_salt``), looked up once, at the first such id."""
    out = LedgerScan()
    p = Path(path)
    if not p.is_file():
        return out
    for ln in iter_lines(p):
        out.read += 1
        if salt is None and isinstance(ln.obj, dict) and in_clear(ln.obj.get("chat")):
            salt = configured_salt() or ""  # once a read, not once a row (a salt file read each time: 3.5x slower)
        got = check_row(ln.obj, salt or None) if ln.error is None else f"<line>: {ln.error}"
        if isinstance(got, str):
            out.skipped.append(f"{p}:{ln.lineno}:{got}")
        else:
            out.rows.append(got)
    resolve_users(out.rows)
    return out


def ledger_row_problem(obj: Any) -> str | None:
    """Why a parsed line is no ledger row (``check_row``'s ``field: problem``), or None for a row."""
    got = check_row(obj)
    return got if isinstance(got, str) else None


def edge_problem(path: str | os.PathLike[str], problem: Callable[[Any], str | None]) -> str | None:
    """``file:line: problem`` when the first or the last line of the JSONL file ``path`` is not one of its
    rows (``problem`` of the parsed line says why), else None (also for no file, an empty one, or a line
    longer than ``EDGE_BYTES``). Only the file's head and tail are read, so a large ledger costs nothing; a
    line that starts like an object but does not parse is taken as a row cut short by a killed writer
    (the readers quarantine it), not as a sign of another kind of file."""
    p = Path(path)
    if not p.is_file():
        return None
    with open(p, "rb") as fh:
        head = fh.read(EDGE_BYTES)
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - EDGE_BYTES))
        tail = fh.read(EDGE_BYTES)
    head = head.removeprefix(b"\xef\xbb\xbf")
    tail = head if size <= EDGE_BYTES else tail
    lines = head.split(b"\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    whole = first is not None and (first < len(lines) - 1 or size <= EDGE_BYTES)  # not cut off by the head's end
    if whole and (why := _line_problem(lines[first], problem)):
        return f"{p}:{first + 1}: {why}"
    body = tail.rstrip()
    whole = bool(body) and (b"\n" in body or size <= EDGE_BYTES)  # no line at all: an empty ledger
    if whole and (why := _line_problem(body.rsplit(b"\n", 1)[-1], problem)):
        return f"{p}:{_line_count(p, len(tail) - len(body))}: {why}"
    return None


def _line_problem(line: bytes, problem: Callable[[Any], str | None]) -> str | None:
    line = line.strip()
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None if line.startswith(b"{") else f"not JSON ({line[:40].decode('utf-8', 'replace')!r})"
    return problem(obj)


def _line_count(path: Path, trailing: int) -> int:
    """The number of the file's last non-blank line (counted only to name a line being refused)."""
    end, lines = path.stat().st_size - trailing, 1
    with open(path, "rb") as fh:
        while (at := fh.tell()) < end:
            lines += fh.read(min(1 << 20, end - at)).count(b"\n")
    return lines


def _keys(path: Path) -> Iterator[str]:
    if path.is_file():
        for ln in iter_lines(path):
            if (key := line_key(ln.obj)) is not None:
                yield key


def line_key(obj: Any) -> str | None:
    """The dedupe key of a parsed line as ``append_locked`` reads it (a string ``key`` of an object), or None."""
    return obj["key"] if isinstance(obj, dict) and isinstance(obj.get("key"), str) else None


def _end_torn_tail(path: Path) -> None:
    """End an unterminated last line (a writer killed mid-row) with a newline, so the next row is
    not glued onto it: the reader then quarantines the fragment alone and the new row stays whole."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
    except OSError:  # no file, or an empty one
        return
    if last != b"\n":
        with open(path, "ab") as fh:
            fh.write(b"\n")


def file_lock(path: str | os.PathLike[str], timeout_s: float = 30.0) -> FileLock:
    """The lock of a JSONL file (``<path>.lock``, its folder created), to use as ``with``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(p) + ".lock", timeout=timeout_s)


def append_locked(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]], *, dedupe: bool = True,
                  timeout_s: float = 30.0, held: bool = False, keys: set[str] | None = None) -> tuple[int, int]:
    """Append rows to a JSONL file under its lock; rows whose ``key`` is already there are skipped.

    Args:
        held: the caller holds ``file_lock(path)`` already (it read the file and decided what to
            append under the same lock); taking it again from this process would wait on itself.
        keys: with ``held``, the keys the file holds (``_keys``: of every line that is an object with a string
            ``key``), as the caller read them under that lock (``ledger_cache``): the file is not read again. The
            keys written are added to it.

    Returns:
        (rows written, duplicates skipped).
    """
    p = Path(path)
    rows = list(rows)
    with contextlib.nullcontext() if held else file_lock(p, timeout_s):
        _end_torn_tail(p)
        seen = (keys if held and keys is not None else set(_keys(p))) if dedupe else set()
        writer: EventWriter | None = None
        written = dup = 0
        try:
            for row in rows:
                key = row.get("key")
                if dedupe and key is not None and key in seen:
                    dup += 1
                    continue
                if key is not None:
                    seen.add(key)
                if writer is None:
                    writer = EventWriter(p, fsync_interval_s=None)
                writer.write_line(orjson.dumps(row))
                written += 1
        finally:
            if writer is not None:
                writer.close()
    return written, dup
