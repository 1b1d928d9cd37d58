"""Telegram Bot API reaction updates → ledger rows (pure), and reading getUpdates dumps.

``message_reaction`` (a user changed their reactions): every emoji in ``new_reaction`` and not
in ``old_reaction`` is a row ``added``, every one only in ``old_reaction`` a row ``removed``.
``message_reaction_count`` (anonymous reactions in channels, absolute totals): compared with
the net anonymous count the ledger already holds for that message, each difference becomes an
``added`` or ``removed`` row with ``count``. Custom emojis are ``custom:<id>``, paid reactions
``paid``. A private chat's id (the user's own) is kept as the user's pseudonym
(``ledger.private_chat``). Dedupe keys come from the bot and update id (and, for counts, the message), so harvesting the
same update twice adds nothing; a count update no newer than the last one applied to its message
is stale (counts are absolute totals). A reaction of a type this module does not know, and a
``date`` before Telegram existed or after the harvest, make the update an ``UpdateError``: it is
quarantined, never dropped in silence.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

import orjson

from tracebridge.capture.reader import HEAD_BYTES, MAX_LINE_BYTES, overlong, read_lines, skip_rest
from tracebridge.feedback.bots import tagged
from tracebridge.feedback.ledger import LedgerRow, hash_user, parse_time, private_chat
from tracebridge.feedback.mapping import VS16, Mapping, norm_emoji
from tracebridge.importers.jsonl import json_error
from tracebridge.schema.canonical import format_ts

# Telegram launched in August 2013, so no reaction is older than 2013; a time after the harvest
# (beyond a day of clock skew between Telegram's servers and this host) cannot be real either.
EARLIEST = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(days=1)


class ReadError(str):
    """A part of a dump that could not be read (the reason), where an update was expected;
    ``raw`` is its text, for the quarantine."""

    raw: str = ""

    @classmethod
    def of(cls, reason: str, raw: bytes) -> ReadError:
        """A ``ReadError`` for ``reason`` that carries ``raw`` (decoded, bad bytes replaced)."""
        err = cls(reason)
        err.raw = raw.decode("utf-8", "replace")
        return err


class UpdateError(ValueError):
    """An update that carries a reaction but cannot be read: ``field`` names the problem."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def reaction_key(r: Any) -> str | None:
    """``👍`` / ``custom:<id>`` / ``paid`` for a ReactionType object, None if unreadable."""
    if not isinstance(r, dict):
        return None
    kind = r.get("type")
    if kind == "emoji" and isinstance(r.get("emoji"), str):
        return r["emoji"]
    if kind == "custom_emoji" and r.get("custom_emoji_id") is not None:
        return f"custom:{r['custom_emoji_id']}"
    if kind == "paid":
        return "paid"
    return None


def impossible_time(when: dt.datetime, harvested_at: str) -> str | None:
    """Why a reaction time cannot be real (before 2013, or more than a day after ``harvested_at``,
    the wall clock when that is no time), or None when it can."""
    now = parse_time(harvested_at) or dt.datetime.now(dt.UTC)
    if when < EARLIEST:
        return f"{format_ts(when)} is before Telegram existed (2013)"
    if when > now + FUTURE_SLACK:
        return f"{format_ts(when)} is after the harvest ({format_ts(now)})"
    return None


def _show(value: Any) -> str:
    """A short JSON text of a bad value for a reason (``repr`` fails on deep nesting)."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return "<nested too deep to show>"
    return text if len(text) <= 200 else text[:200] + "…"


def _reactions(body: dict[str, Any], key: str) -> list[str]:
    """The reaction keys of ``body[key]``; an entry of an unknown shape is an error, not skipped
    (dropping it would also turn a kept reaction into a false ``added`` or ``removed``)."""
    out = []
    for i, r in enumerate(_list(body, key)):
        k = reaction_key(r)
        if k is None:
            raise UpdateError(f"{key}[{i}]", f"unknown ReactionType {_show(r)}")
        out.append(k)
    return out


def _row(*, when: dt.datetime, chat: Any, mid: int, user: str | None, emoji: str, change: str, count: int,
         mapping: Mapping, source: str, update_id: Any, key: str, harvested_at: str, bot: str) -> dict[str, Any]:
    row = {"time": format_ts(when), "chat": chat, "message_id": mid, "user": user, "emoji": emoji, "change": change,
           "count": count, "score": mapping.score(emoji), "mapping_version": mapping.version, "source": source,
           "update_id": update_id, "key": key, "harvested_at": harvested_at}
    if bot:
        row["bot_id"] = bot
    return row


def _common(body: dict[str, Any], harvested_at: str) -> tuple[Any, int, dt.datetime]:
    chat = body.get("chat")
    if not isinstance(chat, dict) or "id" not in chat:
        raise UpdateError("chat.id", "missing")
    if isinstance(chat["id"], bool) or not isinstance(chat["id"], (int, str)):
        raise UpdateError("chat.id", "not an integer or @username")
    mid = body.get("message_id")
    if isinstance(mid, bool) or not isinstance(mid, int):
        raise UpdateError("message_id", "missing or not an integer")
    date = body.get("date")
    if isinstance(date, bool) or not isinstance(date, (int, float)):
        raise UpdateError("date", "missing or not a unix time")
    try:
        when = dt.datetime.fromtimestamp(date, dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise UpdateError("date", f"not a representable unix time ({exc})") from None
    why = impossible_time(when, harvested_at)
    if why:
        raise UpdateError("date", f"{date!r}: {why}")
    return chat["id"], mid, when


def _list(body: dict[str, Any], key: str) -> list[Any]:
    """``body[key]`` as a list ([] when absent or null)."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise UpdateError(key, f"expected a list, got {type(value).__name__}")
    return value


def rows_from_update(update: Any, mapping: Mapping, *, source: str, harvested_at: str,
                     anonymous: MutableMapping[tuple[Any, int], dict[str, int]] | None = None,
                     salt: str | None = None, newest: MutableMapping[tuple[Any, int], tuple[dt.datetime, int]] | None = None,
                     bot: str = "") -> list[dict[str, Any]]:
    """Ledger rows of one Bot API update ([] for updates that are not about reactions).

    Args:
        bot: the bot that delivered the update ("" = the unnamed single bot): its rows carry ``bot_id``
            and their keys name it (``tg@<bot>:``), since every bot numbers its updates on its own.
        anonymous: net anonymous counts per (chat, message id), emoji → count, so far; a message's entry is replaced,
            never changed in place (a ``ChainMap`` over a cache's counts leaves them as they are).
        newest: the newest count update applied per (chat, message id), as (date, update id); updated in
            place. A count update that is not newer is stale (counts are absolute totals) and adds nothing,
            so harvesting a dump again, or a re-delivered update id, never moves the counts back.

    Raises:
        UpdateError: a reaction update with a missing or malformed field.
    """
    if not isinstance(update, dict):
        raise UpdateError("<update>", "not a JSON object")
    uid = update.get("update_id")
    if ("message_reaction" in update or "message_reaction_count" in update) and (
            isinstance(uid, bool) or not isinstance(uid, int)):
        raise UpdateError("update_id", "missing or not an integer")  # it makes the dedupe keys
    if "message_reaction" in update:
        body = update["message_reaction"]
        if not isinstance(body, dict):
            raise UpdateError("message_reaction", "not an object")
        chat, mid, when = _common(body, harvested_at)
        chat = private_chat(chat, salt)  # a private chat's id is the user's: kept as their pseudonym
        actor = body.get("user") or body.get("actor_chat")
        who = actor.get("id") if isinstance(actor, dict) else None
        if isinstance(who, bool) or not isinstance(who, int):  # was stored as user null: a count, not a person
            got = "neither" if actor is None else f"an id of type {type(who).__name__}"  # never the value: a person's
            raise UpdateError("user", f"{got}: a message_reaction names who reacted in user or (an anonymous admin) "
                                      "actor_chat, each with an integer id")
        user = hash_user(who, salt)
        name = actor.get("username") if isinstance(actor, dict) and actor is body.get("user") else None
        # OpenClaw names the same user by @username: the link makes them one (``ledger.resolve_users``)
        alias = {"user_alias": hash_user(name, salt)} if user and isinstance(name, str) and name else {}
        old, new = _reactions(body, "old_reaction"), _reactions(body, "new_reaction")
        # keys keep the skin tone (as they were written before skin tones were one reaction): a re-delivered
        # update makes the keys the ledger holds, and is deduped, not refused as another update of its id
        old_n, new_n = {norm_emoji(k) for k in old}, {norm_emoji(k) for k in new}
        changes = [("added", k) for k in new if norm_emoji(k) not in old_n]
        changes += [("removed", k) for k in old if norm_emoji(k) not in new_n]
        return [_row(when=when, chat=chat, mid=mid, user=user, emoji=e, change=c, count=1, mapping=mapping,
                     source=source, update_id=uid, key=f"{tagged('tg', bot)}:{uid}:{c}:{e.replace(VS16, '')}",
                     harvested_at=harvested_at, bot=bot) | alias
                for c, e in changes]
    if "message_reaction_count" in update:
        body = update["message_reaction_count"]
        if not isinstance(body, dict):
            raise UpdateError("message_reaction_count", "not an object")
        chat, mid, when = _common(body, harvested_at)
        chat = private_chat(chat, salt)  # counts come from channels and groups (negative ids): as they are
        totals: Counter[str] = Counter()
        for i, r in enumerate(_list(body, "reactions")):
            k = reaction_key(r.get("type")) if isinstance(r, dict) else None
            n = r.get("total_count") if isinstance(r, dict) else None
            if k is None or isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise UpdateError(f"reactions[{i}]", f"bad ReactionCount {_show(r)}")
            totals[norm_emoji(k)] += n
        if newest is not None:  # by date first: after a week with no update Telegram numbers updates anew, at random
            if (prev := newest.get((chat, mid))) is not None and (when, uid) <= prev:
                return []
            newest[(chat, mid)] = (when, uid)
        state = anonymous if anonymous is not None else {}
        held = state.get((chat, mid), {})  # the message's counts: every emoji of every message was scanned (20k: 72 s)
        now, out = dict(held), []
        for e in sorted(set(totals) | set(held)):
            delta = totals[e] - held.get(e, 0)
            if delta:
                now[e] = totals[e]
                change = "added" if delta > 0 else "removed"
                out.append(_row(when=when, chat=chat, mid=mid, user="anonymous", emoji=e, change=change,
                                count=abs(delta), mapping=mapping, source=source, update_id=uid,
                                key=f"{tagged('tgc', bot)}:{uid}:{chat}:{mid}:{e}", harvested_at=harvested_at,
                                bot=bot))
        if out:
            state[(chat, mid)] = now
        return out
    return []


def newest_count_ids(rows: list[LedgerRow]) -> dict[tuple[Any, int], tuple[dt.datetime, int]]:
    """The newest anonymous count update per (chat, message id) in the ledger, as (date, update id): the date first,
    as Telegram numbers a bot's updates anew, from a random id, after a week without any (by id alone, a count after
    such a week was stale whenever its id fell below the last one applied, and was ignored)."""
    out: dict[tuple[Any, int], tuple[dt.datetime, int]] = {}
    for r in rows:
        note_count(r, newest=out)
    return out


def anonymous_counts(rows: list[LedgerRow]) -> dict[tuple[Any, int], dict[str, int]]:
    """Net anonymous count per (chat, message id), emoji → count, in the ledger."""
    out: dict[tuple[Any, int], dict[str, int]] = {}
    for r in rows:  # a sum: the rows' order does not matter
        note_count(r, anonymous=out)
    return out


def note_count(r: LedgerRow, *, anonymous: dict[tuple[Any, int], dict[str, int]] | None = None,
               newest: dict[tuple[Any, int], tuple[dt.datetime, int]] | None = None) -> None:
    """Add one ledger row to ``anonymous_counts`` and ``newest_count_ids`` results (a sum and a maximum, so rows
    appended later are added one by one: ``ledger_cache``)."""
    if r.user != "anonymous":
        return
    if anonymous is not None:
        held, e = anonymous.setdefault((r.chat, r.message_id), {}), norm_emoji(r.emoji)
        held[e] = held.get(e, 0) + (r.count if r.change == "added" else -r.count)
    uid = r.raw.get("update_id")
    if newest is not None and isinstance(uid, int) and not isinstance(uid, bool):
        k2 = (r.chat, r.message_id)
        if k2 not in newest or (r.time, uid) > newest[k2]:
            newest[k2] = (r.time, uid)


DUMP_SHAPES = ('a getUpdates response {"ok": true, "result": [...]}, a JSON list of updates or JSONL of updates '
               '(objects with an update_id)')


def dump_problem(data: bytes, items: list[tuple[str, Any]]) -> str | None:
    """Why a file (its bytes, and what ``read_updates`` made of them) is no getUpdates dump at all, or None.

    A dump may hold lines that cannot be read (they are quarantined one by one), but a file in which
    nothing is an update or a torn line of one (an empty file, Telegram's error response, any other JSON or
    text) is the wrong file: harvested, its lines were quarantined and the harvest logged as one that ran.
    """
    body = data.removeprefix(b"\xef\xbb\xbf").strip()
    if not body:
        return "empty"
    if any(_update_like(u) for _, u in items):
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("ok") is False:
        return f"a getUpdates error response ({doc.get('error_code')}: {doc.get('description')})"
    if isinstance(doc, (dict, list)) and not items:  # {"ok": true, "result": []} or []: a dump of no updates
        return None
    if isinstance(doc, dict) and not isinstance(doc.get("result"), list):
        return "a JSON object with neither a result list nor an update_id"
    first = next((f"{w}: {u}" for w, u in items if isinstance(u, ReadError)), None)
    return f"none of its {len(items)} items is an update" + (f" (first: {first})" if first else "")


def _update_like(u: Any) -> bool:
    """An update, or a torn line of one (quarantined: the harvest keeps its text)."""
    return isinstance(u, dict) and "update_id" in u or isinstance(u, ReadError) and '"update_id"' in u.raw


def dump_check(path: str | os.PathLike[str], max_line_bytes: int = MAX_LINE_BYTES
               ) -> tuple[Iterable[tuple[str, Any]], str | None]:
    """The updates of a dump file as the harvest takes them, and ``dump_problem`` of it (None for a dump). A
    file up to ``max_line_bytes`` is read and parsed once, for both; a larger one is checked up to its first
    update (the first line, in a dump) and its updates come from ``read_dump``, line by line. A file that
    cannot be read is no problem here: ``read_dump`` gives it to the harvest to quarantine."""
    try:
        if os.path.getsize(path) <= max_line_bytes:
            with open(path, "rb") as fh:
                data = fh.read()
            items = read_updates(data, str(path))
            return items, dump_problem(data, items)
    except OSError:
        return read_dump(path, max_line_bytes), None
    n, whole = 0, None
    for _, u in read_dump(path, max_line_bytes):
        if n == 0 and isinstance(u, ReadError) and u.startswith("line of "):  # the first line over the limit
            whole = u
        elif _update_like(u):
            return read_dump(path, max_line_bytes), None
        n += 1
    if whole is not None and n == 1:  # its updates were one quarantined item, and the harvest exited 0
        size = os.path.getsize(path)
        return [], (f"one JSON document of {size} bytes, over max_line_bytes={max_line_bytes}, so none of its updates "
                    f"can be read: give max_line_bytes={size} or more, or write it as JSONL, one update or getUpdates "
                    "response a line (e.g. `jq -c '.result[]? // .[]'`)")
    return [], f"none of its {n} items is an update"


def read_updates(data: bytes, where: str) -> list[tuple[str, Any]]:
    """The updates in a getUpdates dump: ``{"ok", "result": [...]}``, a JSON list, or JSONL of
    updates / responses. Returns (location, update-or-error) pairs; errors are ``ReadError``. A UTF-8
    BOM in front of the file (Windows editors) is dropped."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if doc is not None:
        items = doc.get("result") if isinstance(doc, dict) and "result" in doc else doc
        if isinstance(items, list):
            return [(f"{where}:result[{i}]", u) for i, u in enumerate(items)]
        if isinstance(doc, dict) and "update_id" in doc:
            return [(f"{where}:1", doc)]
        return [(f"{where}:1:<document>", ReadError.of("not a getUpdates response, update list or JSONL of updates", data))]
    out: list[tuple[str, Any]] = []
    for lineno, line in enumerate(data.splitlines(), 1):
        out += _line_updates(line, where, lineno)
    return out


def _line_updates(line: bytes, where: str, lineno: int) -> list[tuple[str, Any]]:
    """The updates of one JSONL line of a dump (an update or a getUpdates response); none if blank."""
    if not line.strip():
        return []
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [(f"{where}:{lineno}:<line>", ReadError.of(f"invalid JSON: {json_error(line)}", line))]
    if isinstance(obj, dict) and isinstance(obj.get("result"), list):
        return [(f"{where}:{lineno}:result[{i}]", u) for i, u in enumerate(obj["result"])]
    return [(f"{where}:{lineno}", obj)]


def read_dump(path: str | os.PathLike[str], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[str, Any]]:
    """``read_updates`` of a dump file, in memory bounded by ``max_line_bytes``: a file no larger is read
    whole (a response or an update list is one JSON document), a larger one line by line as JSONL, a
    line longer than the limit being a ``ReadError`` with its size, read past in chunks."""
    where = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:  # a folder, no permission: quarantined like an unreadable document
        yield f"{where}:<file>", ReadError.of(f"unreadable: {exc}", b"")
        return
    with fh:
        if os.fstat(fh.fileno()).st_size <= max_line_bytes:
            yield from read_updates(fh.read(), where)
            return
        for lineno, raw in enumerate(read_lines(fh, max_line_bytes), 1):
            if raw[-1] != 10 and len(raw) > max_line_bytes:
                why = overlong(skip_rest(fh, raw), max_line_bytes)
                yield f"{where}:{lineno}:<line>", ReadError.of(why, raw[:HEAD_BYTES])
                continue
            yield from _line_updates(raw.removeprefix(b"\xef\xbb\xbf") if lineno == 1 else raw, where, lineno)
