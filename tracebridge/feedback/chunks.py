"""The registry of sent reply chunks (``memory/feedback/sent-chunks.jsonl``).

When the agent sends one reply split over several Telegram messages, the runtime records the
batch: one row per chunk with ``batch_id``, ``chat``, ``message_id``, ``chunk_index`` (0-based),
``chunk_count``, ``run_id``, ``event_id``, ``time`` and, when several bots share the registry, ``bot_id``. A private
chat's id is its user's Telegram id, so it is kept as the user's salted pseudonym, as the ledger keeps it (rows
carry the salt's ``salt_id``); rows an older version wrote with the id in the clear are read the same way
(each bot numbers its messages on its own, and a private chat's id is the user's for every bot, so
a message is bot + chat + message id). Appends are file-locked; recording the same batch twice adds
nothing (the key is [bot@]chat:message id). Rows of no bot belong to ``legacy_bot_id`` ("" = the
unnamed single bot; see ``tracebridge.feedback.bots``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import iter_lines
from tracebridge.feedback.bots import check_files, row_bot
from tracebridge.feedback.ledger import (
    DEFAULT_SALT,
    append_locked,
    edge_problem,
    file_lock,
    in_clear,
    parse_time,
    private_chat,
    salt_id,
)
from tracebridge.feedback.salt import configured_salt, host_salt
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
    bot_id: str = ""

    @property
    def is_last(self) -> bool:
        """Whether this is the batch's final chunk."""
        return self.chunk_index == self.chunk_count - 1


def record_batch(path: str | os.PathLike[str], chat: Any, message_ids: list[int], run_id: str,
                 event_ids: str | list[str], batch_id: str | None = None, time: str | None = None, *,
                 bot_id: str = "", legacy_bot_id: str = "", salt: str | None = None) -> str:
    """Register one reply sent as ``message_ids`` (in order); return the batch id.

    Args:
        event_ids: the event the reply came from, or one event per chunk.
        bot_id: the bot that sent it ("" = the unnamed single bot).
        legacy_bot_id: the bot of the registry's rows that name none.
        salt: the harvest's salt, under which a private chat's id (the user's) is kept as the user's
            pseudonym (None: the host's, ``salt.host_salt``: ``TRACEBRIDGE_FEEDBACK_SALT``, else the salt file,
            made once with a random secret where neither is set; never a built-in salt).

    Raises:
        ValueError: no message ids, one given twice or not positive, an empty chat, run or event id, an
            event count that does not match (``_batch_problems``, all listed), a message of ``chat`` that the
            registry holds for another reply (another batch or run) of the same bot: the labels of one would
            go to the other; registry rows that cannot be told from this bot's (``bots.check_files``); rows
            whose private chats were pseudonymised under another salt; a salt file that cannot be read or
            made (``salt.host_salt``); or a file whose first or last line is no registry row (another file
            given as the registry).
    """
    events = [event_ids] * len(message_ids) if isinstance(event_ids, str) else list(event_ids)
    if problems := _batch_problems(chat, message_ids, run_id, events):
        raise ValueError("; ".join(problems))
    clear = int(chat)  # "-100123" as text matched no reaction: their chat ids are integers
    if in_clear(clear):  # was the built-in, public salt when none was given or set: reversible pseudonyms
        salt = salt or host_salt()
    chat = private_chat(clear, salt)  # a private chat's id is the user's: kept as their pseudonym
    at = f"{bot_id}@" if bot_id else ""
    batch = batch_id or _batch_id(at, chat, message_ids[0], run_id)
    # a batch the legacy bot recorded before it had a bot_id has the id of no bot, and one recorded before private
    # chats were pseudonymised the id of the chat in the clear: recording it again is no conflict
    same = {batch, _batch_id(at, clear, message_ids[0], run_id)}
    if at and bot_id == legacy_bot_id:
        same |= {_batch_id("", chat, message_ids[0], run_id), _batch_id("", clear, message_ids[0], run_id)}
    when = time or utc_now()
    hashed = {"salt_id": salt_id(salt)} if chat != clear else {}
    rows = [{"batch_id": batch, "chat": chat, "message_id": int(m), "chunk_index": i, "chunk_count": len(message_ids),
             "run_id": run_id, "event_id": e, "time": when, "key": f"{at}{chat}:{m}", **hashed,
             **({"bot_id": bot_id} if at else {})}
            for i, (m, e) in enumerate(zip(message_ids, events))]
    if why := edge_problem(path, _registry_problem):  # before the lock: a refused file keeps no <file>.lock
        raise ValueError(f"not a chunk registry: {why}; nothing recorded: give the registry `feedback chunks "
                         "record` writes (JSONL, one chunk a line), or a path that does not exist yet to start one")
    with file_lock(path):  # read and append under one lock: a batch recorded meanwhile is checked too
        reg = read_registry(path, legacy_bot_id, salt)
        check_files(str(path), reg.raws, bot_id, legacy_bot_id)
        if hashed and (other := sorted({str(r["salt_id"]) for r in reg.raws if r.get("salt_id")} - {hashed["salt_id"]})):
            public = (f"; {salt_id(DEFAULT_SALT)} is the public built-in salt, which record_batch took when given none "
                      "and the variable was unset: its pseudonyms can be reversed, so start a new registry (and ledger) "
                      "under the host's salt") if salt_id(DEFAULT_SALT) in other else ""
            raise ValueError(f"{path}: its private chats were pseudonymised under another salt ({', '.join(other)}; "
                             f"this one's is {hashed['salt_id']}), so this reply's reactions would join none of "
                             f"them; set TRACEBRIDGE_FEEDBACK_SALT to the harvest's salt{public}; nothing recorded")
        held = [reg.find(chat, r["message_id"], bot_id) for r in rows]
        for r, h in zip(rows, held):
            if h is not None and (h.batch_id not in same or h.run_id != run_id):
                raise ValueError(f"{path}: chat {clear} message {r['message_id']}{f' of bot {bot_id}' if at else ''} "
                                 f"is already registered for run {h.run_id} (batch {h.batch_id}), so its "
                                 "reactions would label that run; if two bots share these files, two bots see one "
                                 "private chat under the same id (the user's) with message ids of their own: set "
                                 "bot_id for each bot (or give each bot its own feedback files)")
        append_locked(path, [r for r, h in zip(rows, held) if h is None], held=True)
    return held[0].batch_id if held[0] is not None else batch


def id_problem(value: Any) -> str | None:
    """Why ``value`` is no Telegram id (a chat's or a message's): an int (not a bool), or text of a whole
    number in ASCII digits (maybe negative), within 64 bits (the registry's JSON writer stopped on a
    larger one with a traceback); None if it is one."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"not an integer (a {type(value).__name__})"
    text = str(value).strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return "not an integer"
    return None if abs(int(text)) < 2**63 else "out of range (Telegram ids fit in 64 bits)"


def _batch_problems(chat: Any, message_ids: list[int], run_id: str, events: list[str]) -> list[str]:
    """What makes a batch unrecordable. A message id given twice was registered once (rows are keyed by
    chat and message) under a ``chunk_count`` that counted it twice, so the batch never had its last
    chunk; an empty chat, run or event id makes rows that no reaction or run can ever join."""
    if not message_ids:
        return ["message_ids: a batch has at least one message"]
    problems = []
    if str(chat).strip() == "":
        problems.append("chat: empty; the Telegram chat id the reply was sent to")
    elif why := id_problem(chat):
        problems.append(f"chat: {chat!r}: {why}; Telegram chat ids are integers (negative for groups and channels)")
    twice = sorted({m for m in message_ids if message_ids.count(m) > 1})
    if twice:
        problems.append(f"message_ids: {', '.join(map(str, twice))} given more than once; each chunk is its own message")
    if any(not isinstance(m, int) or m <= 0 for m in message_ids):
        problems.append(f"message_ids: {', '.join(str(m) for m in message_ids if not isinstance(m, int) or m <= 0)}: "
                        "Telegram message ids are positive integers")
    if not str(run_id).strip():
        problems.append("run_id: empty; the run the reply came from")
    if len(events) != len(message_ids):
        problems.append(f"event_ids: {len(events)} given for {len(message_ids)} messages")
    elif any(not str(e).strip() for e in events):
        problems.append("event_id: empty; the event the reply came from")
    return problems


def _batch_id(at: str, chat: Any, first: int, run_id: str) -> str:
    """The id of a batch recorded without one: of its bot (``<bot>@``, "" for none), chat, first message and run."""
    return "b:" + hashlib.sha256(f"{at}{chat}|{first}|{run_id}".encode()).hexdigest()[:16]


@dataclass
class Registry:
    by_message: dict[tuple[str, str, int], Chunk] = field(default_factory=dict)
    by_chat_message: dict[tuple[str, int], Chunk] = field(default_factory=dict)  # of any bot, the first registered
    batches: dict[str, list[Chunk]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    read: int = 0  # lines read: read = usable chunk lines + skipped
    raws: list[dict[str, Any]] = field(default_factory=list)  # the usable lines as written
    salt: str | None = None  # the salt private chats are read under (``private_chat``)

    def find(self, chat: Any, message_id: int, bot_id: str = "") -> Chunk | None:
        """The chunk ``bot_id`` sent as ``message_id`` in ``chat`` (its id, or its pseudonym for a private
        chat), or None if it is not registered."""
        return self.by_message.get((bot_id, str(private_chat(chat, self.salt)), message_id))

    def find_any(self, chat: Any, message_id: int) -> Chunk | None:
        """The chunk any bot sent as ``message_id`` in ``chat`` (the first registered), or None."""
        return self.by_chat_message.get((str(private_chat(chat, self.salt)), message_id))


def read_registry(path: str | os.PathLike[str], legacy_bot_id: str = "", salt: str | None = None) -> Registry:
    """Load the registry; unusable lines as ``file:line:field: problem`` (``read`` counts every line).
    A row of no bot is ``legacy_bot_id``'s ("" = the unnamed single bot). No file is an empty registry.
    A private chat's id an older version wrote in the clear is read as its pseudonym under ``salt`` (None:
    ``TRACEBRIDGE_FEEDBACK_SALT``'s), as the ledger's rows of that chat are.

    Raises:
        ValueError: a folder there (read as no registry, a mistyped path made every reaction an orphan).
    """
    reg = Registry(salt=salt)
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: a folder; give the chunk registry's file (e.g. {p / 'sent-chunks.jsonl'})")
    if not p.is_file():
        return reg
    for ln in iter_lines(p):
        reg.read += 1
        r = ln.obj
        where = f"{p}:{ln.lineno}"
        if ln.error or not isinstance(r, dict):
            reg.skipped.append(f"{where}:<line>: {ln.error or 'not an object'}")
            continue
        if problem := _row_problem(r):  # named by its field: it was "row: missing or invalid" for a bad number
            reg.skipped.append(f"{where}:{problem}")
            continue
        if salt is None and in_clear(r.get("chat")):
            salt = reg.salt = configured_salt() or ""  # once a read, not once a row
        c = Chunk(str(r["batch_id"]), private_chat(r.get("chat"), salt or None), int(r["message_id"]), int(r["chunk_index"]),
                  int(r["chunk_count"]), str(r["run_id"]), str(r["event_id"]), r.get("time"), row_bot(r, legacy_bot_id))
        if not 0 <= c.chunk_index < c.chunk_count:
            reg.skipped.append(f"{where}:chunk_index: {c.chunk_index} not in 0..{c.chunk_count - 1}")
            continue
        reg.raws.append(r)
        reg.by_message.setdefault((c.bot_id, str(c.chat), c.message_id), c)
        reg.by_chat_message.setdefault((str(c.chat), c.message_id), c)
        reg.batches.setdefault(c.batch_id, []).append(c)
    for chunks in reg.batches.values():
        chunks.sort(key=lambda c: c.chunk_index)
    return reg


def _row_problem(r: dict[str, Any]) -> str | None:
    """``field: problem`` for the first field of a registry row that is missing, or a number field that
    is not an integer; None for a usable row."""
    for k in ("batch_id", "message_id", "chunk_index", "chunk_count", "run_id", "event_id"):
        if k not in r:
            return f"{k}: missing"
    for k in ("message_id", "chunk_index", "chunk_count"):
        v = r[k]
        try:  # a digit string is read as its number, as before; true, 5.7 and "x" are no message or index
            whole = not isinstance(v, bool) and int(v) == (v if isinstance(v, (int, float)) else int(v))
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            return f"{k}: {v!r} is not an integer"
    return None


def _registry_problem(obj: Any) -> str | None:
    """Why a parsed line is no registry row (``_row_problem``), or None for a row."""
    return _row_problem(obj) if isinstance(obj, dict) else "<row>: not a JSON object"


def sent_time(chunk: Chunk) -> Any:
    """When the chunk was sent (aware UTC datetime; None if its time is missing or invalid)."""
    return parse_time(chunk.time)
