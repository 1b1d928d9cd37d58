"""Import state and quarantine of the OpenClaw importer, both under ``<out>/.import/``.

The state file records, per run, which transcript it came from, how many bytes of it were
imported (always a whole number of lines), an xxh3-128 digest of those bytes and the size of the run's
``events.jsonl`` afterwards, so the next import reads only new sessions and new lines, notices a
transcript that was renamed (archived) or rewritten, and never duplicates events.

The quarantine is an append-only JSONL file of every line that could not be imported, with
``file``, ``line``, ``field``, ``reason``, the ``sha256`` of its bytes and the raw line, deduplicated
across imports. A line that is not UTF-8 keeps its bytes: each invalid byte is written as ``\\udcXX``
(capture's ``escape_surrogates``) and the row says ``raw_escaped: true``; ``raw_bytes`` gives the bytes back.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.blocks import escape_surrogates
from tracebridge.capture.reader import iter_lines
from tracebridge.capture.writer import EventWriter, write_atomic
from tracebridge.importers.openclaw.runs import cut_torn_tail, sync_filesystem

STATE_VERSION = 1
_ESCAPED_BYTE = re.compile(r"\\udc([89a-f][0-9a-f])")  # an invalid byte as ``escape_surrogates`` writes it


def raw_text(raw: bytes) -> dict[str, Any]:
    """The quarantine fields of a line's bytes: ``raw`` (its text, each byte that is not UTF-8 escaped as
    ``\\udcXX`` the way capture escapes undecodable bytes, with ``raw_escaped: true``; a line that also held
    such text itself keeps its bytes in ``raw_base64`` as well, so no reading is ambiguous)."""
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
    out: dict[str, Any] = {"raw": escape_surrogates(text), "raw_escaped": True}
    if _ESCAPED_BYTE.search(text):
        out["raw_base64"] = base64.b64encode(raw).decode()
    return out


def raw_bytes(row: dict[str, Any]) -> bytes:
    """The original bytes of a quarantine row's line (``raw_text`` undone)."""
    if "raw_base64" in row:
        return base64.b64decode(row["raw_base64"])
    if not row.get("raw_escaped"):
        return str(row["raw"]).encode("utf-8")
    text = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m[1], 16)), row["raw"])
    return text.encode("utf-8", "surrogateescape")


class StateError(ValueError):
    """An import state file that cannot be read: the import stops before it writes anything."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: unreadable import state ({reason}); move it aside to import again "
                         "from scratch (runs already imported are recognised, not duplicated)")


def load_state(path: Path, version: int) -> dict[str, Any]:
    """The JSON object of a state file of ``version``.

    Raises:
        StateError: not JSON, not an object, or another version.
    """
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise StateError(path, str(exc)) from None
    if not isinstance(raw, dict):
        raise StateError(path, f"a JSON {type(raw).__name__}, not an object")
    if raw.get("version") != version:
        raise StateError(path, f"version {raw.get('version')!r}, expected {version}")
    return raw


@dataclass
class RunState:
    """What was imported into one run."""

    file: str
    offset: int
    prefix_digest: str
    lines: int
    events_bytes: int


class ImportState:
    """The importer's state file (``runs``: run id → ``RunState``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs: dict[str, RunState] = {}
        if path.is_file():
            raw = load_state(path, STATE_VERSION)
            try:
                self.runs = {k: RunState(**v) for k, v in raw.get("runs", {}).items()}
            except (AttributeError, TypeError) as exc:
                raise StateError(path, f"runs: {exc}") from None

    def save(self) -> None:
        """Write the state file atomically (runs sorted by id), creating its folder if needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # orjson writes a dataclass as its fields in order (as ``asdict`` would, ~20x faster): the
        # state is saved every ``checkpoint_every`` files, so this cost grows with the run count.
        data = {"version": STATE_VERSION, "runs": dict(sorted(self.runs.items()))}
        write_atomic(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


class Quarantine:
    """Append-only file of rejected lines (deduplicated by file, line and content).

    Args:
        path: the quarantine file (rows already in it are not added again).
        write_to: append new rows here instead (a worker's part, which the parent appends to ``path``).
        problems: where to say that a torn last row of ``path`` was cut (``cut_torn_quarantine``: done
            here when rows go to ``path`` itself).
    """

    def __init__(self, path: Path, write_to: Path | None = None, problems: list[str] | None = None) -> None:
        if write_to is None:
            cut_torn_quarantine(path, problems if problems is not None else [])
        self.path = path
        self.write_to = write_to or path
        self.size = 0  # bytes appended by this object: a worker's rows of one file are a byte range
        self._seen: set[tuple[str, int, str]] = set()
        self._writer: EventWriter | None = None
        if path.is_file():
            for ln in iter_lines(path):
                line = ln.obj.get("line") if isinstance(ln.obj, dict) else None
                if type(line) is int:  # a hand-edited row without a line number dedupes nothing
                    self._seen.add((str(ln.obj.get("file")), line, str(ln.obj.get("sha256"))))

    def add(self, file: str, line: int, field: str, reason: str, raw: bytes) -> bool:
        """Record one rejected line; False if it was already quarantined by an earlier import."""
        digest = hashlib.sha256(raw).hexdigest()
        key = (file, line, digest)
        if key in self._seen:
            return False
        self._seen.add(key)
        if self._writer is None:
            self.write_to.parent.mkdir(parents=True, exist_ok=True)
            self._writer = EventWriter(self.write_to, fsync_interval_s=None)
        row: dict[str, Any] = {"file": file, "line": line, "field": field, "reason": reason, "sha256": digest,
                               **raw_text(raw)}
        data = orjson.dumps(row)
        self._writer.write_line(data)
        self.size += len(data) + 1
        return True

    def quarantined_lines(self, file: str, lines: int) -> dict[int, str]:
        """The raw text of each of ``file``'s first ``lines`` lines that earlier imports quarantined,
        by line number (the last copy of a line)."""
        found: dict[int, str] = {}
        if self.path.is_file():
            for ln in iter_lines(self.path):
                obj = ln.obj if isinstance(ln.obj, dict) else {}
                line, raw = obj.get("line"), obj.get("raw")
                if obj.get("file") == file and type(line) is int and line <= lines and isinstance(raw, str):
                    # as OpenClaw reads a line that is not UTF-8 (replacement characters), as before
                    found[line] = raw_bytes(obj).decode("utf-8", "replace") if obj.get("raw_escaped") else raw
        return found

    def rejected_rows(self, file: str, lines: int) -> list[Any]:
        """The rows of ``file``'s first ``lines`` lines that earlier imports quarantined though they
        were JSON (a row that could not be mapped), parsed, in line order (the last copy of a line)."""
        out = []
        for _, raw in sorted(self.quarantined_lines(file, lines).items()):
            try:
                out.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue  # not JSON: OpenClaw's migration drops such lines
        return out

    def close(self) -> None:
        """Close the quarantine writer if one was opened; safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def checkpoint(root: Path, state: ImportState, runs_written: int) -> None:
    """Make every run written so far durable (when any was), then record it in the state file."""
    if runs_written:
        sync_filesystem(root)
    state.save()


def newline_since(digest: Any, raw: bytes, start: int, st: RunState) -> bool:
    """Whether the line ``raw``, read from byte ``start`` on, is the last row an import took before its
    newline was written (a live transcript read mid-append: the row's JSON was whole, so it was
    imported): the imported bytes end where ``raw`` does but for its newline, and ``digest`` (of the
    bytes before ``start``) with the row's bytes is the imported prefix's digest."""
    body = raw.rstrip(b"\r\n")
    if len(body) == len(raw) or start + len(body) != st.offset:
        return False
    whole = digest.copy()
    whole.update(body)
    return bool(whole.hexdigest() == st.prefix_digest)


def cut_torn_quarantine(path: Path, problems: list[str]) -> None:
    """Cut a torn last row from the quarantine file before this import appends to it, and say so in
    ``problems``. An import stopped mid-write (killed while the parallel import copied its workers' rows in,
    a power loss) leaves one; the next row appended was glued onto it and both were lost (neither parses).
    The state never names the lines of a torn row (it is saved after the rows are), so the import that
    reads them again quarantines the row again, whole."""
    if path.is_file() and (cut := cut_torn_tail(str(path), 0)):
        problems.append(f"{path}: a torn last row ({cut} bytes: an earlier import stopped mid-write) was cut; "
                        "its line is quarantined again as the transcript is read again")
