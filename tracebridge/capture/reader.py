"""Streaming reader of a trace root: run directories one at a time, events line by line.

Memory stays constant in the size of the root: runs are listed by name (sorted, so every
consumer sees the same order) and each file is read line by line. A last line without its
newline that does not parse is a *torn tail* (a writer killed mid-write): reported, not fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

EVENTS_FILE = "events.jsonl"
SESSION_FILE = "session.json"


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
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    for name in names:
        path = root / name
        if _holds_run(path):
            yield RunDir(path)


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


def iter_lines(path: str | os.PathLike[str], keep_raw: bool = False) -> Iterator[Line]:
    """Yield every line of a JSONL file, parsed; blank lines are skipped.

    Lines that do not parse come back with ``error`` set; a final unterminated line that does
    not parse is flagged ``torn``.
    """
    with open(path, "rb") as fh:
        yield from parse_lines(fh, keep_raw)


def parse_lines(raws: Iterable[bytes], keep_raw: bool = False) -> Iterator[Line]:
    """``iter_lines`` over lines already being read (each with its line end, as a binary file yields
    them): a caller that must also hash the exact bytes it parsed reads the file once."""
    lineno = 0
    for raw in raws:
        lineno += 1
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
