"""Append-only, crash-safe writers for a run directory.

``EventWriter`` appends one JSON line per ``os.write`` on an ``O_APPEND`` descriptor: each line
reaches the kernel whole (no user-space buffer to lose), lines from one writer are never
interleaved, and nothing already written is ever rewritten. It fsyncs on a configurable interval
and at close; a failed interval sync does not fail the write that reached the kernel (it is kept in
``sync_error`` for the caller to report, and retried after a back-off). A caller that writes under a
lock of its own can take the interval sync out of it (``write_lines(defer_sync=True)``, then ``sync``).
``write_atomic`` writes a file once: temp file, fsync, rename, fsync of the folder.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path


class EventWriter:
    """Appends lines to ``events.jsonl``.

    Args:
        path: the events file; created if missing, appended to if present. Kept as given (a
            ``str`` stays one: the importer opens a writer per run, and building a ``Path`` and
            its string again cost it ~10 us a run).
        fsync_interval_s: fsync at most this often while writing (0 = after every line,
            None = only at close).
        fsync_on_close: fsync at close (False only for writers whose caller makes a whole batch
            durable at once, e.g. the importer, which syncs before saving its state).
    """

    def __init__(self, path: str | os.PathLike[str], fsync_interval_s: float | None = 1.0,
                 fsync_on_close: bool = True) -> None:
        self.path = path
        self.fsync_interval_s = fsync_interval_s
        self.fsync_on_close = fsync_on_close
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._last_sync = time.monotonic()
        self._sync_wait = fsync_interval_s  # the interval, or the back-off after a failed sync
        self.sync_error: OSError | None = None  # the last interval sync that failed, until the caller takes it
        self.lines = 0

    def write_line(self, line: bytes) -> None:
        """Append ``line`` (without newline) as one write; raise OSError on failure."""
        self.write_lines(line + b"\n", 1)

    def write_lines(self, data: bytes, lines: int, defer_sync: bool = False) -> int | None:
        """Append ``data``, ``lines`` whole lines each ending in a newline, as one write; raise
        OSError on failure. For callers that serialise with the newline already in place
        (``orjson.OPT_APPEND_NEWLINE``): no copy of a large batch just to add one byte. The interval
        fsync after a whole write never raises: its error goes to ``sync_error`` (the data is written,
        only its durability is in doubt), and the next try waits 1 s, doubling up to 60 s.

        With ``defer_sync`` an interval fsync that is due is not run here: a duplicate of the file's
        descriptor is returned, which the caller hands to ``sync`` once it has released its own lock (the
        recorder's: other threads' writes need not wait for the disk). None: no sync is due."""
        if self._fd is None:
            raise OSError(f"{self.path}: writer is closed")
        written = os.write(self._fd, data)
        if written != len(data):  # short write: only on a full disk, a file size limit or a signal
            self._write_rest(data, written)
        self.lines += lines
        if self._sync_wait is not None:
            now = time.monotonic()
            if now - self._last_sync >= self._sync_wait:
                self._last_sync = now
                if defer_sync:
                    try:  # its own descriptor: a close() meanwhile leaves the file open for this sync
                        return os.dup(self._fd)
                    except OSError:  # out of descriptors: synced here, as before
                        pass
                self.sync()
        return None

    def sync(self, fd: int | None = None) -> None:
        """fsync the file: through ``fd`` (a duplicate ``write_lines(defer_sync=True)`` returned, closed
        here), else through the writer's own descriptor. Never raises: an error goes to ``sync_error``
        and the next interval sync waits 1 s, doubling up to 60 s."""
        target = self._fd if fd is None else fd
        try:
            if target is not None:
                os.fsync(target)
        except OSError as exc:
            self.sync_error = exc
            self._sync_wait = min(max(2 * (self._sync_wait or 0.0), 1.0), 60.0)
        else:
            self._sync_wait = self.fsync_interval_s
        finally:
            if fd is not None:
                os.close(fd)

    def _write_rest(self, data: bytes, written: int) -> None:
        """Finish a short write (a signal cut it: the rest goes in), or cut its fragment and raise why the
        rest cannot be written (the disk is full: ``[Errno 28] No space left on device``, naming the file;
        before, the error said only "short write (59 of 299 bytes)", not why nor what to free)."""
        assert self._fd is not None
        view = memoryview(data)[written:]
        try:
            while view:
                n = os.write(self._fd, view)
                if n == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += n
                view = view[n:]
        except OSError as exc:
            self._undo_tail(written)
            raise OSError(exc.errno, f"{exc.strerror or exc} (a line cut after {written} of {len(data)} bytes, "
                                     "and the cut part removed)", os.fspath(self.path)) from exc

    def _undo_tail(self, written: int) -> None:
        """Cut the fragment a short write left, so a later (smaller) line that still fits on the
        disk does not glue onto it. One writer owns a file, so the fragment is the file's tail."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, max(os.fstat(self._fd).st_size - written, 0))
        except OSError:  # the reader reports a torn line instead
            pass

    def ends_with(self, data: bytes) -> bool:
        """Whether the file ends with ``data`` (False when it cannot be read): for a caller that an exception
        (a Ctrl-C that landed while ``os.write`` ran, raised right after it returned) cut off from a write's result."""
        try:
            with open(self.path, "rb") as fh:
                if fh.seek(0, os.SEEK_END) < len(data):
                    return False
                fh.seek(-len(data), os.SEEK_END)
                return fh.read() == data
        except OSError:
            return False

    def close(self) -> None:
        """Close the file, fsyncing first if ``fsync_on_close``; a second call does nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self.fsync_on_close:
                os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old state or the whole file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # a full disk must not keep a partial file, and its space, behind
        if exc.filename is None:  # a failed write names no file: name the one that could not be written
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
