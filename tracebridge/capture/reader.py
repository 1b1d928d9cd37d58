"""Streaming reader of a trace root: run directories one at a time, events line by line.

Memory stays constant in the size of the root: runs are listed by name (sorted, so every
consumer sees the same order) and each file is read line by line. A last line without its
newline that does not parse is a *torn tail* (a writer killed mid-write): reported, not fatal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

EVENTS_FILE = "events.jsonl"
SESSION_FILE = "session.json"
# The longest line any reader of line-delimited input takes in, its line end not counted (the importers'
# ``max_line_bytes``): a longer line is skipped in bounded chunks, never held whole in memory.
MAX_LINE_BYTES = 16 << 20
HEAD_BYTES = 1024  # what is kept of an over-long line for the quarantine and the report
_SKIP_CHUNK = 1 << 20


@dataclass(frozen=True)
class RunDir:
    """One run directory of a trace root."""

    path: Path

    @property
    def run_id(self) -> str:
        """The run id: the directory's name."""
        return self.path.name

    @property
    def events_path(self) -> Path:
        """This run's ``events.jsonl``."""
        return self.path / EVENTS_FILE

    @property
    def session_path(self) -> Path:
        """This run's ``session.json``."""
        return self.path / SESSION_FILE

    @property
    def complete(self) -> bool:
        """A run is complete once its session.json exists. One that is not a file (a folder), or in a
        folder that cannot be searched, counts as there: reading it then reports why, where calling the
        run incomplete would say "missing" and raising here would stop the whole root."""
        try:
            return _there(self.session_path)
        except OSError:
            return True

    def read_session(self) -> dict[str, Any]:
        """Parse session.json. Raises OSError or orjson.JSONDecodeError; an invalid UTF-8 byte is named
        and located (orjson says "surrogates not allowed" at char 0, wherever the byte is)."""
        raw = self.session_path.read_bytes()
        if raw.startswith(b"\xef\xbb\xbf"):  # a byte order mark, as an editor may save it: read past, as in events.jsonl
            raw = raw[3:]
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                head = raw[:bad.start].decode("utf-8")
                raise orjson.JSONDecodeError(f"invalid UTF-8: byte 0x{raw[bad.start]:02x} at byte offset "
                                             f"{bad.start}", head, len(head)) from exc
            raise


@dataclass(frozen=True)
class Line:
    """One line of an events file: its number, parsed object or the parse error."""

    lineno: int
    obj: Any = None
    error: str | None = None
    torn: bool = False
    raw: bytes = b""


def iter_runs(root: str | os.PathLike[str]) -> Iterator[RunDir]:
    """Yield the run directories under ``root`` in name order.

    A directory counts as a run when it holds events.jsonl or session.json. ``root`` may
    itself be a single run directory.
    """
    root = Path(root)
    if _there(root / EVENTS_FILE) or _there(root / SESSION_FILE):
        yield RunDir(root)
        return
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a trace root or run directory")
    for path in _run_folders(root):
        yield RunDir(path)


def nested_roots(root: str | os.PathLike[str]) -> list[tuple[Path, int]]:
    """The folders right under ``root`` that ``iter_runs`` passes over (they hold no run's files) but
    that hold run folders themselves, with how many: a parent of several trace roots (one a day, one a
    host) given where a trace root belongs. Those runs are in no count, so the caller says so. Empty for
    a run folder, a missing root and a root of runs; a folder that cannot be searched is not looked into."""
    root = Path(root)
    if not root.is_dir() or _holds_run(root):
        return []
    out = []
    for folder in _folders(root):
        if _holds_run(folder):
            continue
        try:
            runs = len(_run_folders(folder))
        except OSError:
            continue
        if runs:
            out.append((folder, runs))
    return out


def _folders(path: Path) -> list[Path]:
    """The folders right under ``path`` that are not hidden, in name order."""
    return [path / n for n in sorted(e.name for e in os.scandir(path) if not e.name.startswith(".") and _is_dir(e))]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """``entry.is_dir()``, False for a symlink that cannot be followed: a loop raised (ELOOP) out of
    ``validate`` and ``export``, where a symlink to a deleted folder is passed over; neither holds data."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _run_folders(path: Path) -> list[Path]:
    """The run folders right under ``path`` (``iter_runs``' rule), in name order."""
    return [f for f in _folders(path) if _holds_run(f)]


def _holds_run(path: Path) -> bool:
    """Whether ``path`` holds a run's files. A folder that cannot be searched (chmod 000) counts:
    its checks then report it unreadable, where skipping it would lose the run from every count."""
    try:
        return _there(path / EVENTS_FILE) or _there(path / SESSION_FILE)
    except PermissionError:
        return True


def _there(path: Path) -> bool:
    """Whether ``path`` exists, a symlink that leads nowhere (a loop, a deleted target) included:
    ``Path.exists`` says False for those, and a run whose session.json is one was reported "missing:
    run is incomplete" instead of a session.json that cannot be read."""
    return path.exists() or path.is_symlink()


def read_lines(fh: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of a binary file, each with its line end, as iterating the file gives them, except
    that a line longer than ``max_line_bytes`` (its line end not counted) comes back cut to
    ``max_line_bytes + 1`` bytes without a newline: the caller sees ``raw[-1] != 10 and len(raw) >
    max_line_bytes`` (so a whole line costs no ``len``) and reads past the rest with ``skip_rest``."""
    return iter(partial(fh.readline, max_line_bytes + 1), b"")


def skip_rest(fh: IO[bytes], head: bytes, update: Callable[[bytes], Any] | None = None) -> int:
    """Read past the rest of a line that ``read_lines`` cut, a chunk at a time (``update`` sees each
    chunk, ``head`` included); returns the line's size in bytes, line end included."""
    size, chunk = len(head), head
    if update is not None:
        update(head)
    while chunk[-1:] != b"\n":
        chunk = fh.readline(_SKIP_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if update is not None:
            update(chunk)
    return size


def pass_overlong(fh: IO[bytes], head: bytes, update: Callable[[bytes], Any], final: bool) -> int | None:
    """Read past an over-long line (``head``: what ``read_lines`` gave of it), ``update`` seeing all of
    its bytes; returns its size, or None, leaving the file at the line's start, when the line has no
    line end yet and the file may still grow (``final`` False: a live file's line being written)."""
    start = fh.tell() - len(head)
    size = skip_rest(fh, head)
    fh.seek(start + size - 1)
    ended = fh.read(1) == b"\n"
    fh.seek(start)
    if not ended and not final:
        return None
    skip_rest(fh, fh.read(len(head)), update)  # again, hashed: only once it is known to be taken
    return size


def overlong(size: int, max_line_bytes: int, key: str = "max_line_bytes") -> str:
    """Why an over-long line was not read."""
    return (f"line of {size} bytes, longer than {key}={max_line_bytes}: skipped without reading it "
            f"(raise {key} to read it)")


def iter_lines(path: str | os.PathLike[str], keep_raw: bool = False,
               max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield every line of a JSONL file, parsed; blank lines are skipped.

    Lines that do not parse come back with ``error`` set; a final unterminated line that does
    not parse is flagged ``torn``. A line longer than ``max_line_bytes`` is an error line too, read
    past in bounded chunks (``raw`` then holds its first ``HEAD_BYTES``).
    """
    with open(path, "rb") as fh:
        yield from parse_lines(read_lines(fh, max_line_bytes), keep_raw, fh, max_line_bytes)


def parse_lines(raws: Iterable[bytes], keep_raw: bool = False, fh: IO[bytes] | None = None,
                max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """``iter_lines`` over lines already being read (each with its line end, as a binary file yields
    them): a caller that must also hash the exact bytes it parsed reads the file once. With ``fh``,
    ``raws`` comes from ``read_lines(fh, max_line_bytes)`` and an over-long line is read past."""
    lineno = 0
    for raw in raws:
        lineno += 1
        if fh is not None and raw[-1] != 10 and len(raw) > max_line_bytes:
            size = skip_rest(fh, raw)
            yield Line(lineno, error=overlong(size, max_line_bytes), raw=raw[:HEAD_BYTES] if keep_raw else b"")
            continue
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.isspace() or not raw:
            continue
        try:
            obj = orjson.loads(raw)  # JSON allows the line end around a value: no copy without it
        except orjson.JSONDecodeError as exc:
            yield Line(lineno, error=_json_error(raw, exc), torn=not raw.endswith(b"\n"),
                       raw=raw.rstrip(b"\r\n") if keep_raw else b"")
            continue
        yield Line(lineno, obj=obj, raw=raw.rstrip(b"\r\n") if keep_raw else b"")


def _json_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    """Why a line does not parse. orjson reports any invalid UTF-8 byte as "surrogates not allowed"
    at column 1: name the byte and its offset instead (only lines that failed pay for the check)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8: byte 0x{raw[bad.start]:02x} at byte offset {bad.start} (not a UTF-8 text line)"
    return f"invalid JSON: {exc}"
