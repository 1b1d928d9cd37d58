"""Stored Agent Lightning records: which lines are what, grouped by rollout, and the import state.

Agent Lightning (0.2/0.3) persists spans as its ``Span`` model serialised with pydantic
(``Span.model_dump(mode="json")``): the in-memory and MongoDB stores keep that document, the store
server's REST API (``/v1/agl/spans``) sends and returns it, and ``store.query_spans()`` gives the
objects. A span file here is JSONL, one record a line: a ``Span``, or optionally a ``Rollout`` /
``AttemptedRollout`` (``store.query_rollouts()``: the task input and the rollout's status) or an
``Attempt`` (``store.query_attempts()``: which attempt is the latest). Each line is checked with
Agent Lightning's pydantic model, as copied in ``records`` (without importing ``agentlightning``); a line that is not JSON, not an object or not one of those
records is quarantined with the model's first error.

``SpanIndex`` keeps only where each record is (file, line, byte range), its rollout, attempt and
start time, and a digest of its bytes, so memory grows with the number of records, never with
their size; the importer reads one rollout's spans back at a time.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import xxhash
from pydantic import ValidationError

from tracebridge.capture.writer import write_atomic
from tracebridge.importers.agentlightning import records
from tracebridge.importers.openclaw.discover import not_there, not_utf8
from tracebridge.importers.openclaw.state import StateError, load_state

STATE_VERSION = 1
# Agent Lightning 1.0 stores events, not spans (its ``schemas.py``: ``Event``, and a ``Rollout`` whose
# ``status`` is an object with a ``state``): another format, named as such when a line is one.
V1_READS = ("is an Agent Lightning 1.0 {what}; this importer reads the span stores of Agent Lightning "
            "0.2/0.3 (Span, Rollout and Attempt records), not 1.0's event store")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})  # rollout statuses that end a rollout
FAILED_ATTEMPT = frozenset({"failed", "timeout", "unresponsive"})
_SKIP = re.compile(r"\.lock$|\.lock\.|\.tmp$|^\.")
_SKIP_DIRS = frozenset({".git", ".import", "node_modules", "__pycache__"})
_PREFIX_CHUNK = 1 << 20


def discover_span_files(paths: list[str | os.PathLike[str]], problems: list[str]) -> list[str]:
    """Absolute paths of the span files under ``paths``, sorted, each once: a named file whatever its
    name, and every ``*.jsonl`` file under a named folder (hidden, lock and temp files skipped). A
    path whose name is not UTF-8 is a problem, not read: the state and quarantine lines name files."""
    found: set[str] = set()
    for p in paths:
        root = Path(p).expanduser()
        if bad := not_utf8(str(root)):
            problems.append(bad)
        elif root.is_file():
            found.add(os.path.abspath(root))
        elif root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                files = [os.path.join(dirpath, n) for n in filenames if n.endswith(".jsonl") and not _SKIP.search(n)]
                dirs = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
                why = {n: not_utf8(n) for n in (*files, *(os.path.join(dirpath, d) for d in dirs))}  # checked once
                problems += [w for w in why.values() if w]
                dirnames[:] = [d for d in dirs if not why[os.path.join(dirpath, d)]]
                found.update(os.path.abspath(f) for f in files if not why[f])
        else:
            problems.append(f"{root}: {not_there(root)}")
    return sorted(found)


@dataclass(frozen=True)
class Ref:
    """Where one record is: file, line number, byte offset and length, and a digest of its bytes."""

    file: str
    line: int
    offset: int
    length: int
    digest: int

    def to_list(self) -> list[Any]:
        """``[file, line, offset, length, digest]``, as stored in the state file."""
        return [self.file, self.line, self.offset, self.length, self.digest]


@dataclass
class RolloutEntry:
    """Everything read about one rollout: its span refs per attempt, its records, their statuses."""

    attempts: dict[str, list[tuple[float, int, Ref]]] = field(default_factory=dict)  # (start, sequence_id, ref)
    record: Ref | None = None  # the last Rollout record read
    status: str | None = None
    mode: str | None = None
    attempt_seq: dict[str, int] = field(default_factory=dict)
    attempt_status: dict[str, str] = field(default_factory=dict)
    refs: list[Ref] = field(default_factory=list)  # every line, in read order

    def line_digests(self) -> str:
        """The digests of the rollout's records as one hex string (16 digits each, sorted, each once):
        what the state keeps of an imported rollout, so a copy or a new dump of the same records,
        in any order or file, is recognised and a record it did not have is not."""
        return "".join(f"{d:016x}" for d in sorted({r.digest for r in self.refs}))

    def new_records(self, imported: str) -> list[Ref]:
        """The records whose digest is not among ``imported`` (``line_digests`` of an earlier import)."""
        known = {int(imported[i:i + 16], 16) for i in range(0, len(imported), 16)}
        return [r for r in self.refs if r.digest not in known]

    def latest_attempt(self) -> str | None:
        """The attempt Agent Lightning trains on (``attempt_id="latest"``): the highest attempt
        ``sequence_id`` when every attempt with spans has a known one, else the one whose first
        span the store numbered last (span ``sequence_id``s rise across a rollout's attempts; the
        clock, which differs between the runners' hosts, only breaks a tie); None when the rollout
        has no spans."""
        if not self.attempts:
            return None
        if all(a in self.attempt_seq for a in self.attempts):
            return max(self.attempts, key=lambda a: (self.attempt_seq[a], a))
        return max(self.attempts, key=lambda a: (min(q for _, q, _ in self.attempts[a]),
                                                 min(s for s, _, _ in self.attempts[a]), a))

    def failure(self, attempt: str) -> str | None:
        """Why the rollout failed, by its recorded statuses (None: it did not, or nothing says so)."""
        if self.status in ("failed", "cancelled"):
            return f"rollout {self.status}"
        status = self.attempt_status.get(attempt)
        return f"attempt {status}" if status in FAILED_ATTEMPT else None


class RecordError(ValueError):
    """A line that is no Agent Lightning record: ``field`` and ``reason`` for the quarantine."""

    def __init__(self, field_: str, reason: str) -> None:
        super().__init__(f"{field_}: {reason}")
        self.field, self.reason = field_, reason


def _first_error(exc: Any) -> RecordError:
    errs = exc.errors()
    e = errs[0]
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    return RecordError(".".join(map(str, e["loc"])) or "<record>", f"{e['msg']}{more}")


def _refuse_v1(obj: dict[str, Any]) -> None:
    """Raise ``RecordError`` if ``obj`` is an Agent Lightning 1.0 record (an event, or a rollout with
    a ``status`` object); return otherwise."""
    if "event_type" in obj and "data" in obj:
        raise RecordError("event_type", V1_READS.format(what=f"event ({obj['event_type']!r})"))
    status = obj.get("status")
    if isinstance(status, dict) and "state" in status:
        raise RecordError("status", V1_READS.format(what="rollout (status.state)"))


class SpanIndex:
    """The records of one import, by rollout (``add`` checks a line and files it).

    Lines are checked with ``records``, copies of Agent Lightning's models: importing
    ``agentlightning`` itself costs seconds and ~330 MB, and reading stored records needs none of it.
    """

    def __init__(self) -> None:
        self.rollouts: dict[str, RolloutEntry] = {}
        self._filed: set[tuple[str, int]] = set()  # (file, offset): a line read twice is filed once

    def add(self, ref: Ref, obj: Any) -> str:
        """File one parsed line; return its kind (span, rollout, attempt).

        Raises:
            RecordError: not a JSON object, or not a valid Span / Rollout / Attempt.
        """
        if not isinstance(obj, dict):
            raise RecordError("<line>", f"not a JSON object ({type(obj).__name__})")
        if "span_id" in obj:
            kind, model = "span", records.Span
        elif "event_type" in obj and "data" in obj:
            _refuse_v1(obj)
        elif "input" in obj and "rollout_id" in obj:
            kind, model = "rollout", (records.AttemptedRollout if "attempt" in obj else records.Rollout)
        elif "attempt_id" in obj and "sequence_id" in obj:
            kind, model = "attempt", records.Attempt
        else:
            raise RecordError("<record>", "not an Agent Lightning Span (span_id), Rollout (rollout_id, input) or "
                                          "Attempt (attempt_id, sequence_id) record")
        if kind != "span":
            _refuse_v1(obj)
        try:
            rec = model.model_validate(obj)
        except ValidationError as exc:
            raise _first_error(exc) from None
        if (ref.file, ref.offset) in self._filed:  # a waiting rollout's line, read again after a crash
            return kind
        self._filed.add((ref.file, ref.offset))
        e = self.rollouts.setdefault(rec.rollout_id, RolloutEntry())
        e.refs.append(ref)
        if kind == "span":
            start = rec.start_time if rec.start_time is not None else 0.0
            e.attempts.setdefault(rec.attempt_id, []).append((start, rec.sequence_id, ref))
        elif kind == "rollout":
            e.record, e.status, e.mode = ref, rec.status, rec.mode
            attempt = getattr(rec, "attempt", None)
            if attempt is not None:
                self._attempt(e, attempt)
        else:
            self._attempt(e, rec)
        return kind

    @staticmethod
    def _attempt(e: RolloutEntry, a: Any) -> None:
        e.attempt_seq[a.attempt_id] = a.sequence_id
        e.attempt_status[a.attempt_id] = a.status


@dataclass
class FileState:
    """What was read of one span file: bytes (whole lines), their xxh3-128 digest, lines, and the
    file's modification time then (a file of the same size and time is not opened again)."""

    offset: int
    digest: str
    lines: int
    mtime_ns: int = 0


class SpanImportState:
    """The importer's state file: ``files`` (path → FileState), ``rollouts`` (rollout id → run id,
    records, events bytes, record digests) and ``pending`` (rollout id → refs of a rollout still waiting)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, FileState] = {}
        self.rollouts: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, list[Ref]] = {}
        if path.is_file():
            raw = load_state(path, STATE_VERSION)
            try:
                self.files = {k: FileState(**v) for k, v in raw.get("files", {}).items()}
                self.rollouts = dict(raw.get("rollouts", {}))
                self.pending = {k: [Ref(*r) for r in v] for k, v in raw.get("pending", {}).items()}
            except (AttributeError, TypeError, ValueError) as exc:
                raise StateError(path, str(exc)) from None

    def save(self) -> None:
        """Write the state file atomically (keys sorted), creating its folder if needed."""
        data = {"version": STATE_VERSION, "files": dict(sorted(self.files.items())),
                "rollouts": dict(sorted(self.rollouts.items())),
                "pending": {k: [r.to_list() for r in v] for k, v in sorted(self.pending.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def prefix_digest(path: str, fs: FileState) -> Any:
    """The xxh3-128 state after the first ``fs.offset`` bytes of ``path`` if they are the bytes an
    earlier import read (reading on continues it), else None."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        left = fs.offset
        while left:
            chunk = fh.read(min(_PREFIX_CHUNK, left))
            if not chunk:
                return None
            digest.update(chunk)
            left -= len(chunk)
    return digest if digest.hexdigest() == fs.digest else None


class RecordReader:
    """Reads records back by ``Ref``, a few files open at a time."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self.open: OrderedDict[str, BinaryIO] = OrderedDict()

    def read(self, ref: Ref) -> bytes:
        fh = self.open.pop(ref.file, None) or open(ref.file, "rb")  # noqa: SIM115 - closed in close()
        self.open[ref.file] = fh
        if len(self.open) > self.limit:
            self.open.popitem(last=False)[1].close()
        fh.seek(ref.offset)
        raw = fh.read(ref.length)
        if xxhash.xxh3_64_intdigest(raw.rstrip(b"\r\n")) != ref.digest:
            raise ValueError(f"{ref.file}:{ref.line}: changed since it was read")
        return raw

    def close(self) -> None:
        for fh in self.open.values():
            fh.close()
        self.open.clear()
