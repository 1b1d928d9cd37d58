"""Writing imported runs with the capture writers, idempotently.

A new run is written into ``<out>/.tmp-<run_id>/`` (events through ``EventWriter``, then
``session.json``) and the folder is renamed into place, so a crash never leaves a half-imported
run visible (the rename is what makes the run appear, so ``session.json`` needs no temp file of
its own there). Writers do not fsync each run: the importer makes each batch durable with one
``sync_filesystem`` (``syncfs`` of the trace root's file system) before it saves its state (the
state never names bytes that might be lost). An existing run is only ever appended to: the
events the import produces are first compared with the bytes already in ``events.jsonl`` (after
what the state file says was imported) and skipped while they match, so a re-import after a
lost state file or a crash between append and state save writes nothing twice. A mismatch is a
conflict and nothing is written.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tracebridge.capture.writer import EventWriter, write_atomic

_FLUSH_BYTES = 1 << 16  # a write per 64 KiB of lines: a smaller working set (see importer._BATCH_EVENTS)
# Events are serialised with their newline (orjson appends it in its own buffer) and a batch is
# joined with b"": joining with b"\n" and adding the last newline copied every batch twice.
_LINE = orjson.OPT_APPEND_NEWLINE
MAX_DEPTH = 200  # orjson writes at most 254 levels (and reads 1024); an event adds a few above the row's values
TOO_DEEP = "<nested deeper than 200 levels: cut by the importer>"


def _clamp(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        return {k: _clamp(v, depth - 1) for k, v in value.items()} if depth else TOO_DEEP
    if isinstance(value, list):
        return [_clamp(v, depth - 1) for v in value] if depth else TOO_DEEP
    return value


def dumps_event(event: dict[str, Any]) -> bytes:
    """``orjson.dumps(event)`` and a newline; values nested deeper than ``MAX_DEPTH`` become
    ``TOO_DEEP`` (a transcript may hold JSON that orjson reads but cannot write)."""
    try:
        return orjson.dumps(event, option=_LINE)
    except orjson.JSONEncodeError:
        return orjson.dumps(_clamp(event, MAX_DEPTH), option=_LINE)


def cut_torn_tail(path: str, keep: int) -> int:
    """Cut a last line without its newline from ``path`` (an append a crash or a full disk stopped midway:
    the import writes it again from the source) and return the bytes cut. Never below ``keep`` (the
    bytes the import state vouches for, whole lines): where those do not end in a newline the file is left
    as it is, for the comparison to report."""
    size = os.path.getsize(path)
    if size <= keep:
        return 0
    with open(path, "rb") as fh:  # the common case reads one byte (and needs no write access)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
    try:
        return _cut(path, size, keep)
    except OSError:  # not ours to change (read-only): the comparison reports the run
        return 0


def _cut(path: str, size: int, keep: int) -> int:
    """``cut_torn_tail`` of a file of ``size`` bytes whose last byte is no newline."""
    with open(path, "r+b") as fh:
        end = size
        while end > keep:  # back to the last newline, a chunk at a time (the torn line may be long)
            start = max(keep, end - (1 << 20))
            fh.seek(start)
            at = fh.read(end - start).rfind(b"\n")
            if at >= 0:
                fh.truncate(start + at + 1)
                return size - (start + at + 1)
            end = start
        if keep and (fh.seek(keep - 1), fh.read(1))[1] != b"\n":
            return 0
        fh.truncate(keep)  # the torn line is the first after what the state vouches for
        return size - keep


class RunConflict(RuntimeError):
    """The run on disk holds events that this source does not produce."""


class RunWriter:
    """Writes (or appends to) one run directory.

    Args:
        out: trace root.
        run_id: the run.
        known_bytes: bytes of ``events.jsonl`` already accounted for by the import state.
        durable: fsync each file as it is closed (the runtime hook: one run at a time); the
            importer leaves this off and syncs a whole batch at once.
    """

    def __init__(self, out: Path | str, run_id: str, known_bytes: int = 0, durable: bool = False) -> None:
        # Plain ``os`` calls on str paths: ``pathlib`` costs ~50 us a run here, a tenth of a small run's import.
        self.durable = durable
        out = os.fspath(out)
        self.final = os.path.join(out, run_id)
        self.existing = os.path.isdir(self.final)
        self.dir = self.final if self.existing else os.path.join(out, f".tmp-{run_id}")
        self.events_path = os.path.join(self.dir, "events.jsonl")
        self._cmp: BinaryIO | None = None
        self._writer: EventWriter | None = None
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._bytes_out = 0  # bytes this writer appended to events.jsonl
        self.written = 0
        self.already_present = 0
        self.torn_cut = 0  # bytes of a torn last line (a crashed append's) cut before this import appends
        if self.existing:
            if os.path.exists(self.events_path):
                self.torn_cut = cut_torn_tail(self.events_path, known_bytes)
            if os.path.exists(self.events_path) and os.stat(self.events_path).st_size > known_bytes:
                self._cmp = open(self.events_path, "rb")  # noqa: SIM115 - closed in close()/abort()
                self._cmp.seek(known_bytes)
        else:  # try the common case first: one mkdir, no stat calls
            try:
                os.mkdir(self.dir)
            except FileExistsError:  # left over by a crashed import
                shutil.rmtree(self.dir)
                os.mkdir(self.dir)
            except FileNotFoundError:  # a new trace root
                os.makedirs(self.dir)

    def write(self, event: dict[str, Any]) -> None:
        """Serialise one event and append it (or skip it if already on disk)."""
        line = dumps_event(event)
        if self._cmp is not None:
            have = self._cmp.read(len(line))
            if have == line:
                self.already_present += 1
                return
            if have:
                raise RunConflict(f"{self.events_path}: event {event.get('event_id')!r} differs from the run on "
                                  "disk (source changed since it was imported)")
            self._cmp.close()
            self._cmp = None
        self._buf.append(line)
        self._buf_bytes += len(line)
        self.written += 1
        if self._buf_bytes >= _FLUSH_BYTES:
            self._flush()

    def write_many(self, events: list[dict[str, Any]]) -> None:
        """``write`` each event (the fast path of a new run: serialise into the batch)."""
        if self._cmp is not None:
            for ev in events:
                self.write(ev)
            return
        dumps = orjson.dumps
        try:
            lines = [dumps(ev, option=_LINE) for ev in events]
        except orjson.JSONEncodeError:  # too deep for orjson: the slow path cuts it
            lines = [dumps_event(ev) for ev in events]
        self._buf += lines
        self.written += len(lines)
        self._buf_bytes += sum(map(len, lines))
        if self._buf_bytes >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        if self._writer is None:
            self._writer = EventWriter(self.events_path, fsync_interval_s=None, fsync_on_close=self.durable)
        self._writer.write_lines(b"".join(self._buf), len(self._buf))  # one write per batch of whole lines
        self._bytes_out += self._buf_bytes
        self._buf, self._buf_bytes = [], 0

    def close(self, session: dict[str, Any]) -> int:
        """Flush, write ``session.json``, move a new run into place; return events.jsonl size.

        Raises:
            RunConflict: the run on disk has more events than this source produced.
        """
        if self._cmp is not None:
            rest = self._cmp.read(1)
            self._cmp.close()
            self._cmp = None
            if rest:
                self.abort()
                raise RunConflict(f"{self.events_path}: the run on disk has events this source does not produce")
        self._flush()
        if self._writer is not None:
            self._writer.close()
        elif not os.path.exists(self.events_path):
            os.close(os.open(self.events_path, os.O_WRONLY | os.O_CREAT, 0o644))
        data = orjson.dumps(session, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        spath = os.path.join(self.dir, "session.json")
        if not self.existing:
            if self.durable:
                write_atomic(Path(spath), data)
            else:
                fd = os.open(spath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # no buffered-file object
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                except OSError as exc:  # a full disk: name the file (the run's folder is dropped by abort)
                    raise OSError(exc.errno, exc.strerror or str(exc), spath) from exc
                finally:
                    os.close(fd)
            os.rename(self.dir, self.final)
            return self._bytes_out  # a new run holds what this writer wrote: no stat needed
        if not (os.path.exists(spath) and Path(spath).read_bytes() == data):
            write_atomic(Path(spath), data)
        for name in os.listdir(self.dir):  # an import killed mid-rewrite left its temp copy (the lock excludes a live one)
            if name.startswith(".session.json.tmp."):
                os.unlink(os.path.join(self.dir, name))
        return os.stat(self.events_path).st_size

    def abort(self) -> None:
        """Drop what a new run wrote; an existing run is left as it was (nothing was appended)."""
        if self._cmp is not None:
            self._cmp.close()
            self._cmp = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self.existing and os.path.exists(self.dir):
            shutil.rmtree(self.dir)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def sync_filesystem(root: Path) -> None:
    """Flush the file system that holds ``root``: ``syncfs(2)`` where there is one, else ``os.sync()``.

    ``os.sync()`` flushes every file system of the host: on a shared machine that is other
    processes' dirty data too, and it took 2-20 ms a call here while others wrote; ``syncfs``
    flushes only the file system the runs and the state file are on.
    """
    syncfs = getattr(_LIBC, "syncfs", None)
    if syncfs is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()
