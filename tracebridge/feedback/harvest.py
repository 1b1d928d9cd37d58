"""Harvesting reactions into the ledger: from getUpdates dumps, from single updates (the webhook)
and from OpenClaw transcripts' system-event lines (``Telegram reaction added: 👍 by Name (@user)
on msg 123``; those in ``tracebridge.feedback.harvest_openclaw``). Every harvest appends one row to the harvest log (what the daily audit checks),
is idempotent (dedupe keys) and quarantines what it cannot read with ``file:line: reason``.
Every report reconciles: each update, reaction line, unreadable file and discovery problem is
read once and then either accepted or quarantined (read = accepted + quarantined), and each accepted
one either applied (it brought reaction changes the ledger did not hold) or ignored with its reason
(``ignored``: an update of another kind, a re-delivery, a stale count...), so accepted = applied +
the ignored counts. A harvest is of one bot (``bot_id``; see ``tracebridge.feedback.bots``): update ids
are checked against that bot's rows only, and its report and harvest log row carry ``bot_id``,
``max_update_id`` (the largest update id it read) and ``next_offset`` (the getUpdates ``offset`` that
bot resumes from, ``resume_offsets``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from collections import ChainMap
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import iter_lines
from tracebridge.feedback.bots import (
    bot_of,
    check_tally,
    is_user_key,
    label,
    row_bot,
)
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.ledger import (
    DEFAULT_SALT,
    LedgerRow,
    append_locked,
    edge_problem,
    file_lock,
    ledger_row_problem,
    parse_time,
    read_ledger,
    salt_id,
)
from tracebridge.feedback.ledger_cache import LedgerCache, LedgerState, append_keyed
from tracebridge.feedback.mapping import load_mapping
from tracebridge.feedback.privacy import pseudonymised
from tracebridge.feedback.salt import read_salt_file, salt_file
from tracebridge.feedback.telegram import (
    DUMP_SHAPES,
    ReadError,
    UpdateError,
    dump_check,
    rows_from_update,
)
from tracebridge.schema.canonical import utc_now


@dataclass
class HarvestReport:
    source: str
    inputs: list[str] = field(default_factory=list)
    read: int = 0
    accepted: int = 0
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_samples: list[str] = field(default_factory=list)
    time: str = field(default_factory=utc_now)
    applied: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    bot_id: str = ""
    max_update_id: int | None = None
    next_offset: int | None = None
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # OpenClaw accounts (openclaw_accounts)

    def __post_init__(self) -> None:
        self.pending: list[dict[str, Any]] = []  # quarantine entries, appended at the end in one write (no field)
        self.salt: str | None = None  # the harvest's salt, found once (``_salt``)

    def saw(self, upd: Any) -> None:
        """Count one input read, noting its update id (the resume offset of this bot comes after it)."""
        self.read += 1
        uid = _update_id(upd)
        if uid is not None and (self.max_update_id is None or uid > self.max_update_id):
            self.max_update_id = uid

    def accept(self, rows: list[dict[str, Any]], known: set[str], why_empty: str,
               held: set[Any] | frozenset[Any] = frozenset()) -> None:
        """Count one accepted input with its ``rows``: applied when one of them is new (its key neither in
        ``known``, which it joins, nor in ``held``, the ledger's, left as it is), else ignored as a repeat, or for
        ``why_empty`` when it has none."""
        self.accepted += 1
        keys = {r["key"] for r in rows}
        if keys - known - held:
            self.applied += 1
            known |= keys
            return
        why = "already harvested (a repeated delivery)" if rows else why_empty
        self.ignored[why] = self.ignored.get(why, 0) + 1

    def bad(self, where: str, reason: str) -> None:
        """Count one quarantined input, keeping the first 50 as ``where: reason`` samples."""
        self.quarantined += 1
        if len(self.quarantine_samples) < 50:
            self.quarantine_samples.append(f"{where}: {reason}")

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict."""
        return asdict(self)


def _salt(cfg: FeedbackConfig) -> str:
    """The salt user ids are hashed with: ``user_salt_env``'s value, else the host's salt file
    (``salt.read_salt_file``), else (``allow_default_salt``) the built-in one.

    Raises:
        ValueError: ``user_salt_env`` is unset or empty, there is no salt file and ``allow_default_salt`` is
            false; or the salt file cannot be used (a folder, unreadable, empty, open to other users).
    """
    if salt := os.environ.get(cfg.user_salt_env) or read_salt_file():
        return salt
    if cfg.allow_default_salt:
        return DEFAULT_SALT
    held = Path(cfg.ledger).is_file() and Path(cfg.ledger).stat().st_size > 0
    raise ValueError(
        f"{cfg.user_salt_env} is not set: set it to a secret salt of this host (e.g. `export {cfg.user_salt_env}="
        f"$(openssl rand -hex 16)`, kept with the host's secrets), or keep that salt in {salt_file()} (mode 600), "
        "before harvesting; nothing harvested. Hashed under "
        "the built-in salt, which is public, the users' pseudonyms could be reversed by trying Telegram user ids"
        + (f". {cfg.ledger} holds rows already: set {cfg.user_salt_env} to the salt they were hashed under (their "
           f"salt_id fingerprints it); if they were hashed under the built-in salt (salt_id {salt_id(DEFAULT_SALT)}), "
           "start a new ledger under a salt, or go on with allow_default_salt=true" if held else
           "; for tests and demos, allow_default_salt=true harvests under the built-in salt"))


def preflight(cfg: FeedbackConfig) -> None:
    """Check, before anything is locked or written, that a harvest into ``cfg.ledger`` may start.

    Raises:
        ValueError: no salt (``_salt``), or a ledger whose first or last line is no ledger row (another
            file given as the ledger: the harvest would append reactions to it).
    """
    _salt(cfg)
    if why := edge_problem(cfg.ledger, ledger_row_problem):
        raise ValueError(f"not a reaction ledger: {why}; nothing harvested: give the ledger `feedback harvest` "
                         "writes (JSONL, one reaction change a line), or a path that does not exist yet to start one")


def _check_salt(cfg: FeedbackConfig, ledger: list[LedgerRow]) -> str:
    """This harvest's salt fingerprint, after checking the ledger's users were hashed with the same salt.

    Raises:
        ValueError: no salt (``_salt``), or rows of the ledger were hashed under another salt (``salt_id``).
    """
    return _check_salt_ids(cfg, {r.raw["salt_id"] for r in ledger if isinstance(r.raw.get("salt_id"), str)})


def _check_salt_ids(cfg: FeedbackConfig, held: set[str]) -> str:
    """``_check_salt`` of the salt fingerprints the ledger's rows carry."""
    sid = salt_id(_salt(cfg))
    other = sorted(held - {sid})
    if other:
        unset = "" if os.environ.get(cfg.user_salt_env) or read_salt_file() else \
            f", the built-in salt: {cfg.user_salt_env} is not set (allow_default_salt=true)"
        raise ValueError(f"{cfg.ledger}: its users were pseudonymised under another salt ({', '.join(other)}; this "
                         f"harvest's is {sid}{unset}), so a user's changed or removed reaction would not replace "
                         f"their earlier one; set {cfg.user_salt_env} to the ledger's salt, or start a new ledger")
    return sid


def _stamp(rows: list[dict[str, Any]], sid: str, bot: str) -> list[dict[str, Any]]:
    """``rows`` with the salt fingerprint on those whose user is a salted hash, and the bot on each."""
    for r in rows:
        if str(r.get("user")).startswith("u:"):
            r["salt_id"] = sid
        if bot:
            r["bot_id"] = bot
    return rows


def _quarantine(cfg: FeedbackConfig, rep: HarvestReport, where: str, reason: str, raw: Any) -> None:
    """Quarantine one input with its reason, its users pseudonymised as in the ledger (``privacy``): before, a
    bad update left the user's Telegram id, names and @username in the quarantine in the clear."""
    rep.bad(where, reason)
    rep.salt = rep.salt or _salt(cfg)  # the variable, else the salt file: read once, not once an input
    raw = pseudonymised(raw, rep.salt)
    try:
        text = raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode()
    except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes: keep the reason, not the value
        text = f"<not writable: {exc}>"
    key = "q:" + hashlib.sha256(f"{where}|{text}".encode()).hexdigest()[:24]
    rep.pending.append({"where": where, "reason": reason, "raw": text, "key": key, "time": utc_now()})


def _finish(cfg: FeedbackConfig, rep: HarvestReport, rows: list[dict[str, Any]], held: bool = False,
            known: set[Any] | None = None, keys: set[str] | None = None,
            quarantined: LedgerCache | None = None) -> HarvestReport:
    """Append the quarantined inputs, then the rows whose keys are not in ``known`` (the ledger's keys as their bots
    write them now: a row of no bot keeps its old key in the file), and log the harvest. The quarantine is written
    once: appended one input at a time, each append read every key the quarantine held (2000 bad updates: 21 s).
    ``keys``: the ledger's keys as ``append_locked`` reads them, read by the caller under the held lock;
    ``quarantined``: the quarantine's keys kept between harvests (``ledger_cache.append_keyed``)."""
    if rep.pending:
        append_keyed(cfg.quarantine, rep.pending, quarantined)
        rep.pending = []
    fresh = [r for r in rows if r["key"] not in known] if known else rows
    rep.rows = len(rows)
    rep.added, rep.duplicates = append_locked(cfg.ledger, fresh, held=held, keys=keys)
    Path(cfg.ledger).touch()  # a harvest that found nothing yet still leaves the ledger: audit and labels read it
    rep.duplicates += len(rows) - len(fresh)
    append_locked(cfg.harvest_log, [{**rep.to_dict(), "quarantine_samples": rep.quarantine_samples[:5]}],
                  dedupe=False)
    return rep


def _not_applied(upd: Any) -> str:
    """Why an accepted update brought no reaction change."""
    if isinstance(upd, dict) and "message_reaction_count" in upd:
        return "reaction counts unchanged, or not newer than counts already applied"
    if isinstance(upd, dict) and "message_reaction" in upd:
        return "no reaction changed (old_reaction = new_reaction)"
    kinds = sorted(k for k in upd if k != "update_id") if isinstance(upd, dict) else []
    return f"not a reaction update ({kinds[0] if kinds else 'no content'})"


def _update_id(upd: Any) -> int | None:
    uid = upd.get("update_id") if isinstance(upd, dict) else None
    return None if isinstance(uid, bool) or not isinstance(uid, int) else uid


def _canonical(upd: Any) -> bytes | None:
    try:
        return orjson.dumps(upd, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: compared as "not writable"
        return None


_HELD = "the ledger already holds other reactions for this id (an earlier harvest); the first is kept"


class _UpdateIds:
    """Telegram's update ids are unique per bot: the first update of an id is kept and a different
    update with the same id is a conflict (an identical repeat is a re-delivery, deduped by its
    keys). Earlier harvests are seen through the user reaction rows the ledger holds per id, of the
    harvest's bot only (``held``: ``LedgerState.held``, read, never changed)."""

    def __init__(self, held: dict[int, set[tuple[Any, ...]]]) -> None:
        self.first: dict[int, tuple[str, bytes | None]] = {}
        self.held = held

    def check(self, upd: Any) -> None:
        """Raise ``UpdateError`` if an update accepted earlier in this harvest had this id and other
        content, or the ledger holds user reactions for it and this is no user reaction update."""
        uid = _update_id(upd)
        if uid is None:
            return
        first = self.first.get(uid)
        if first is not None and first[1] != _canonical(upd):
            raise UpdateError("update_id", f"{uid} is already the id of a different update ({first[0]}); "
                                           "the first is kept")
        if uid in self.held and "message_reaction" not in upd:
            raise UpdateError("update_id", f"{uid}: {_HELD}")

    def check_rows(self, upd: Any, rows: list[dict[str, Any]]) -> None:
        """Raise ``UpdateError`` if the ledger holds other user reactions for this update id."""
        uid = _update_id(upd)
        held = self.held.get(uid) if uid is not None else None
        got = {(r["key"], parse_time(r["time"]), str(r["chat"]), r["message_id"]) for r in rows
               if is_user_key(r["key"])}
        if held and not held <= got:  # a subset: a harvest killed mid-append wrote part of the rows
            raise UpdateError("update_id", f"{uid}: {_HELD}")

    def claim(self, where: str, upd: Any) -> None:
        """Record an accepted update as the first of its id."""
        uid = _update_id(upd)
        if uid is not None and uid not in self.first:
            self.first[uid] = (where, _canonical(upd))


def harvest_updates(cfg: FeedbackConfig, updates: Iterable[tuple[str, Any]], source: str,
                    inputs: list[str], *, cache: LedgerCache | None = None) -> HarvestReport:
    """Harvest (location, update) pairs of one bot (``bot_id``) into the ledger; a second, different
    update with an update id this bot already used (here or in the ledger) is quarantined as a
    conflict. Another bot's rows with the same update ids are no conflict: each bot numbers its own.

    The ledger's lock is held from reading it to appending: another harvest (a ``serve`` and a
    ``harvest`` side by side) must not accept a different update of the same id in between.

    Args:
        cache: the ledger's state kept between harvests (``ledger_cache``; the webhook's): only the bytes
            appended since it last read are read; None reads the whole ledger. The result is the same.

    Raises:
        ValueError: the ledger's users were hashed under another salt, or its rows cannot be told
            apart from this bot's (``bots.check_files``), no salt, or the ledger is no ledger (``preflight``);
            nothing is harvested.
    """
    preflight(cfg)  # before the lock: a refused file keeps no <file>.lock beside it
    with file_lock(cfg.ledger):
        mapping, (bot, legacy), salt = load_mapping(cfg.mapping), (bot_of(cfg), cfg.legacy_bot_id), _salt(cfg)
        if cache is None:  # private chats of older rows read as the new rows write them
            state = LedgerState.of_rows(read_ledger(cfg.ledger, salt).rows, bot, legacy)
        else:
            state = cache.state_for(salt, bot, legacy)
        try:
            rep = _harvest_updates(cfg, updates, source, inputs, state, mapping, cache and cache.quarantine)
        except BaseException:
            if cache is not None:  # its keys may name rows that were not written
                cache.forget()
            raise
        if cache is not None:  # the rows just appended, and the file's new mtime
            cache.state_for(salt, bot, legacy, ours=True)
        return rep


def _harvest_updates(cfg: FeedbackConfig, updates: Iterable[tuple[str, Any]], source: str,
                     inputs: list[str], state: LedgerState, mapping: Any,
                     quarantined: LedgerCache | None = None) -> HarvestReport:
    bot, legacy = state.bot, state.legacy
    check_tally(cfg.ledger, state.named, state.unnamed, bot, legacy)
    salted = _check_salt_ids(cfg, state.salt_ids)
    # the harvest changes the counts as it goes: into maps over the state's, which stays that of the file
    anonymous, newest, ids = ChainMap({}, state.anonymous), ChainMap({}, state.newest), _UpdateIds(state.held)
    rep, rows, now = HarvestReport(source, inputs, bot_id=bot), [], utc_now()
    rep.salt = _salt(cfg)
    known: set[Any] = set()  # the keys this harvest's rows bring; the ledger's are state.known
    for where, upd in updates:
        rep.saw(upd)
        if isinstance(upd, ReadError):  # a line or document read_updates could not parse
            _quarantine(cfg, rep, where, upd, upd.raw)
            continue
        try:
            ids.check(upd)  # before the mapping: a count update changes the anonymous counts
            got = rows_from_update(upd, mapping, source=source, harvested_at=now, anonymous=anonymous,
                                   salt=rep.salt, newest=newest, bot=bot)
            ids.check_rows(upd, got)
        except UpdateError as exc:
            _quarantine(cfg, rep, f"{where}:{exc.field}", exc.reason, upd)
            continue
        ids.claim(where, upd)
        rows += _stamp(got, salted, bot)
        rep.accept(got, known, _not_applied(upd), state.known)
    if source != "webhook":  # a bot with a webhook gets no getUpdates: no offset to resume from
        top = max(resume_offsets(cfg, state.rows).get(label(bot), 0), (rep.max_update_id or -1) + 1)
        rep.next_offset = top or None
    return _finish(cfg, rep, rows, held=True, known=state.known, keys=state.file_keys, quarantined=quarantined)


RENUMBERED_AFTER = dt.timedelta(days=6)  # a week, less a day for a late fetch


def resume_offsets(cfg: FeedbackConfig, ledger: list[LedgerRow] | None = None) -> dict[str, int]:
    """Per bot (``(none)`` for the unnamed one), the getUpdates ``offset`` to fetch from next: one more than
    the largest update id its harvests read (the harvest log's ``max_update_id``) or its ledger rows hold, of the
    last ``RENUMBERED_AFTER`` (a harvest's time, a reaction's): after a week without updates Telegram numbers a
    bot's next updates anew from a random id, and an offset above them confirms (drops) each as it comes. It was
    the largest id ever seen, so one such week made every later fetch drop the bot's updates; a bot with no id in
    that window has no offset (getUpdates without one returns from the earliest unconfirmed update; a repeat is
    deduped). Update ids are per bot, so one bot's offset says nothing about another's."""
    legacy, top = cfg.legacy_bot_id, {}
    since = dt.datetime.now(dt.UTC) - RENUMBERED_AFTER

    def see(bot: str, uid: Any, when: dt.datetime | None) -> None:
        if isinstance(uid, int) and not isinstance(uid, bool) and uid >= top.get(bot, uid) and when and when >= since:
            top[bot] = uid

    for r in read_ledger(cfg.ledger).rows if ledger is None else ledger:
        see(row_bot(r.raw, legacy), r.raw.get("update_id"), r.time)
    log = Path(cfg.harvest_log)
    for ln in iter_lines(log) if log.is_file() else ():
        if isinstance(ln.obj, dict):
            see(row_bot(ln.obj, legacy), ln.obj.get("max_update_id"), parse_time(ln.obj.get("time")))
    return {label(b): u + 1 for b, u in sorted(top.items())}


def harvest_dumps(cfg: FeedbackConfig, files: list[str | os.PathLike[str]]) -> HarvestReport:
    """Harvest getUpdates JSON dumps (response objects, update lists or JSONL), each read as harvested, in
    memory bounded by ``max_line_bytes`` (``telegram.read_dump``).

    Raises:
        ValueError: a file holds no update at all (``telegram.dump_check``: empty, an error response, other
            JSON or text), each such file named with what it is; nothing is harvested or logged.
    """
    checked = [(f, *dump_check(f, cfg.max_line_bytes)) for f in files]  # a small file read once, for both
    if wrong := [f"{f}: {why}" for f, _, why in checked if why]:
        raise ValueError(f"not a getUpdates dump: {'; '.join(wrong)}; expected {DUMP_SHAPES}")
    updates = itertools.chain.from_iterable(items for _, items, _ in checked)
    return harvest_updates(cfg, updates, "getUpdates", [str(f) for f in files])
