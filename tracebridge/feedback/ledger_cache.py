"""What a harvest checks its updates against in the reaction ledger, and a cache of it that reads only the
bytes appended since it last read.

A harvest needs of the ledger: the dedupe keys of its rows (``known``, as their bots write them now, and
``file_keys``, as the file holds them, which ``ledger.append_locked`` dedupes by), the bots its rows name
(``bots.check_tally``), the salts its users were hashed under, and, of the harvest's bot, the user reactions held
per update id, the net anonymous counts and the newest count update per message. Each is a set, a sum or a
maximum over the rows, so the state of a file is that of its first bytes plus the rows appended after them, in any
order (``LedgerState.add``). A fresh harvest folds every row it reads (``LedgerState.of_rows``).

``LedgerCache`` keeps the state of one ledger between harvests (the webhook receiver, one update a request: it
read and parsed the whole ledger twice per update, 2.8 s at 60k rows). Under the ledger's lock it reads only the
bytes appended since the offset it read up to, whoever appended them (itself, a ``feedback harvest`` beside it).
It reads the file again in full when it is not the file read (another inode: ``feedback migrate`` replaced it),
shrank, changed size-for-size (same size, other mtime), or the bytes before the offset differ; and when the salt,
bot or legacy bot differ from those it read under. A last line with no newline (a writer killed mid-append) is
read as a fresh read reads it, and the file must then go on with a newline (``append_locked`` ends such a line
before it appends), else it is read again in full. The receiver keeps the quarantine's keys the same way
(``keys_only``, ``append_keyed``): a bad update read every key the quarantine held (20k items: 190 ms).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import MAX_LINE_BYTES, read_lines, skip_rest
from tracebridge.feedback.bots import canonical_key, is_user_key, row_bot
from tracebridge.feedback.ledger import LedgerRow, append_locked, check_row, file_lock, line_key
from tracebridge.feedback.telegram import note_count

TAIL_BYTES = 256  # the bytes before the offset compared on each look: a file rewritten in place is read again
BOM = b"\xef\xbb\xbf"


@dataclass
class LedgerState:
    """What a harvest of ``bot`` checks updates against, of the ledger's usable rows so far (``add``)."""

    bot: str
    legacy: str
    known: set[Any] = field(default_factory=set)  # the rows' dedupe keys as their bots write them now
    file_keys: set[str] | None = None  # the keys ``append_locked`` dedupes by; None: not kept (it reads the file)
    named: set[str] = field(default_factory=set)  # bots named by rows (``bots.check_tally``)
    unnamed: int = 0  # rows of no bot with an update id
    salt_ids: set[str] = field(default_factory=set)
    held: dict[int, set[tuple[Any, ...]]] = field(default_factory=dict)  # the bot's user reactions per update id
    anonymous: dict[tuple[Any, int], dict[str, int]] = field(default_factory=dict)  # ``telegram.anonymous_counts``
    newest: dict[tuple[Any, int], Any] = field(default_factory=dict)  # ``telegram.newest_count_ids``
    rows: list[LedgerRow] | None = None  # kept by a full read (``harvest.resume_offsets`` reads them)

    @classmethod
    def of_rows(cls, rows: list[LedgerRow], bot: str, legacy: str) -> LedgerState:
        """The state of ``rows`` (``read_ledger``'s), which it keeps."""
        state = cls(bot, legacy, rows=rows)
        for r in rows:
            state.add(r)
        return state

    def add(self, r: LedgerRow) -> None:
        """Add one usable row."""
        raw = r.raw
        if r.key:
            self.known.add(canonical_key(raw, self.legacy))
        if raw.get("bot_id"):
            self.named.add(str(raw["bot_id"]))
        elif raw.get("update_id") is not None:
            self.unnamed += 1
        if isinstance(raw.get("salt_id"), str):
            self.salt_ids.add(raw["salt_id"])
        if row_bot(raw, self.legacy) != self.bot:  # update ids and counts are per bot
            return
        uid, key = raw.get("update_id"), canonical_key(raw, self.legacy)
        if isinstance(uid, int) and is_user_key(key):
            self.held.setdefault(uid, set()).add((key, r.time, str(r.chat), r.message_id))
        # a fresh read's rows went through ``resolve_users`` first; it never makes a user "anonymous" or one
        # "anonymous" another (its aliases and their targets are salted hashes), so the counts are the same
        note_count(r, anonymous=self.anonymous, newest=self.newest)


class LedgerCache:
    """The ``LedgerState`` of the ledger ``path``, kept up to date by reading what was appended since.

    Call ``state_for`` only while holding ``ledger.file_lock(path)``, and ``forget`` when a harvest that used
    the state failed (its keys may name rows that were never written). ``keys_only``: of another JSONL file whose
    rows ``append_locked`` dedupes (the quarantine): only ``file_keys`` is kept. ``quarantine``: the quarantine's
    path, kept so (``self.quarantine``) for ``append_keyed``.
    """

    def __init__(self, path: str | os.PathLike[str], *, keys_only: bool = False,
                 quarantine: str | os.PathLike[str] | None = None) -> None:
        self.path, self.keys_only = Path(path), keys_only
        self.quarantine = LedgerCache(quarantine, keys_only=True) if quarantine else None
        self.state: LedgerState | None = None
        self.offset = 0  # the bytes read
        self.full_reads = self.appended_reads = 0  # how often it read the whole file, and only appended bytes
        self._of: tuple[str, str, str] | None = None  # (salt, bot, legacy) of the state
        self._at: tuple[int, int, int] | None = None  # (st_dev, st_ino, st_mtime_ns) when read; None: no file
        self._tail = b""  # the TAIL_BYTES before the offset

    def forget(self) -> None:
        """Drop the state: the next ``state_for`` reads the file in full."""
        self.state, self.offset, self._at, self._tail = None, 0, None, b""

    def state_for(self, salt: str, bot: str, legacy: str, *, ours: bool = False) -> LedgerState:
        """The state of the ledger as it is now, for a harvest of ``bot`` under ``salt``.

        Args:
            ours: the caller held the lock since the last call and only appended to the file and touched it (a
                harvest's own writes): a new mtime alone does not make it read the file in full.
        """
        try:
            return self._state_for(salt, bot, legacy, ours)
        except BaseException:  # a read cut short (an I/O error) left rows added past the offset: read again in full
            self.forget()
            raise

    def _state_for(self, salt: str, bot: str, legacy: str, ours: bool) -> LedgerState:
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self.state is None or self._of != (salt, bot, legacy) or not self._continues(st, ours):
            self.state, self._of = LedgerState(bot, legacy, file_keys=set()), (salt, bot, legacy)
            self.offset, self._tail = 0, b""
            self.full_reads += 1
            self._read()
        elif st is not None and st.st_size > self.offset:
            self.appended_reads += 1
            self._read()
        elif st is not None and self._at is not None:  # nothing appended (a harvest of ours touched it)
            self._at = (st.st_dev, st.st_ino, st.st_mtime_ns)
        return self.state

    def _continues(self, st: os.stat_result | None, ours: bool) -> bool:
        """Whether the file is still the one read up to ``offset``, with bytes appended after it at most."""
        if self._at is None:  # there was no file: what is there now came after it, from byte 0
            return self.offset == 0
        if st is None:  # removed: the state was of a file that is gone
            return False
        if (st.st_dev, st.st_ino) != self._at[:2] or st.st_size < self.offset:
            return False
        if st.st_size == self.offset and st.st_mtime_ns != self._at[2] and not ours:
            return False  # rewritten to the same size, or touched by another harvest: cannot tell which
        n = len(self._tail)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset - n)
                got = fh.read(n + 1)
        except OSError:
            return False
        if got[:n] != self._tail:
            return False
        torn = n > 0 and self._tail[-1:] != b"\n"  # the last line read had no newline yet
        return not (torn and got[n:] not in (b"", b"\n"))  # then only its newline may follow: else it grew

    def _read(self) -> None:
        """Add the rows from ``offset`` to the end of the file, as ``read_ledger`` and ``append_locked`` read
        them (a blank line, one that does not parse or is longer than ``MAX_LINE_BYTES`` adds nothing; only
        the file's first line loses a byte order mark)."""
        assert self.state is not None and self.state.file_keys is not None and self._of is not None
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            self._at = None
            return
        salt = self._of[0] or None
        with fh:
            st = os.fstat(fh.fileno())
            at = fh.seek(self.offset)
            for raw in read_lines(fh, MAX_LINE_BYTES):
                start, at = at, at + len(raw)
                if raw[-1] != 10 and len(raw) > MAX_LINE_BYTES:
                    at = start + skip_rest(fh, raw)
                    continue
                if start == 0 and raw.startswith(BOM):
                    raw = raw[3:]
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if (key := line_key(obj)) is not None:
                    self.state.file_keys.add(key)
                if self.keys_only:
                    continue
                got = check_row(obj, salt)
                if not isinstance(got, str):
                    self.state.add(got)
            self.offset = at
            n = min(at, TAIL_BYTES)
            fh.seek(at - n)
            self._tail = fh.read(n)
        self._at = (st.st_dev, st.st_ino, st.st_mtime_ns)


def append_keyed(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]], cache: LedgerCache | None) -> None:
    """``append_locked(path, rows)``, the file's keys from ``cache`` (``keys_only``, of ``path``) when there is one."""
    if cache is None:
        append_locked(path, rows)
        return
    with file_lock(path):
        try:
            append_locked(path, rows, held=True, keys=cache.state_for("", "", "").file_keys)
        except BaseException:  # the keys may name rows that were not written
            cache.forget()
            raise
        cache.state_for("", "", "", ours=True)
