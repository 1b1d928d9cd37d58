"""The corrections file: one human correction of a trajectory per JSONL line, checked line by line.

A line::

    {"run_id": "...", "event_id": "..." | null, "labels": {...}, "reviewer": "alice",
     "time": "2026-11-27T10:00:00Z", "note": "optional, never exported"}

Labels (``EVENT_LABELS``: the event types each may go on; ``RUN_LABELS``: ``event_id`` null):

* ``expected_verdict`` — continue | replan | end, on a ``verifier_output``;
* ``expected_tool`` (+ optional ``expected_args``, a JSON object) — on a ``worker_action`` or
  ``worker_tool_call``; the two are one correction: a line with ``expected_tool`` and no
  ``expected_args`` clears arguments the trace recorded;
* ``expected_plan`` — a non-empty list of steps ``{description, tool, args}`` (``index`` optional,
  renumbered), on a ``planner_output``;
* ``goal_met`` — bool, on a ``worker_action``, ``worker_output`` or ``verifier_output``;
* ``success`` — bool, the run's outcome as a person judged it (run level).

``read_corrections`` checks what a line alone can show (types, keys, values); the event type a
label needs is checked when the run is read (``tracebridge.corrections.apply.match_run``). A bad
line is quarantined as ``file:line: field: reason``, never dropped. The file is append-only
history: for the same (run, event, label) the last line wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.schema.roles import VERDICTS

DEFAULT_FILE = "memory/corrections/corrections.jsonl"
EVENT_LABELS: dict[str, tuple[str, ...]] = {
    "expected_verdict": ("verifier_output",),
    "expected_tool": ("worker_action", "worker_tool_call"),
    "expected_args": ("worker_action", "worker_tool_call"),
    "expected_plan": ("planner_output",),
    "goal_met": ("worker_action", "worker_output", "verifier_output"),
}
RUN_LABELS = ("success",)
LINE_KEYS = ("run_id", "event_id", "labels", "reviewer", "time", "note")
STEP_KEYS = ("index", "description", "tool", "args")


class CorrectionsError(ValueError):
    """The corrections file cannot be read at all (missing, a folder, unreadable)."""


@dataclass(frozen=True)
class Correction:
    """One checked line: where it is, what it corrects and who said so."""

    where: str  # file:line
    line: int
    run_id: str
    event_id: str | None  # None: a run-level correction
    labels: dict[str, Any]  # normalised values
    reviewer: str
    time: str

    def key_bytes(self) -> bytes:
        """A canonical serialisation (the export's run cache keys a run by its corrections)."""
        return orjson.dumps([self.where, self.event_id, self.labels, self.reviewer, self.time],
                            option=orjson.OPT_SORT_KEYS)


@dataclass
class CorrectionsFile:
    """A read corrections file: valid lines by run, and the bad ones (read = valid + bad)."""

    path: str
    sha256: str
    read: int = 0
    by_run: dict[str, list[Correction]] = field(default_factory=dict)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, "file:line: field: reason")

    @property
    def valid(self) -> int:
        """How many valid lines, over all runs."""
        return sum(len(v) for v in self.by_run.values())


def _nonempty(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _time(v: Any) -> str | None:
    """An ISO 8601 time as UTC ``...Z`` (a time without zone is taken as UTC), or None."""
    if not isinstance(v, str):
        return None
    try:
        t = dt.datetime.fromisoformat(v.strip())  # "Z" included (Python >= 3.11)
    except ValueError:
        return None
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    try:
        return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:  # year 1 or 9999 with an offset: no UTC time exists
        return None


def _plan(v: Any, probs: list[str]) -> list[dict[str, Any]] | None:
    if not isinstance(v, list) or not v:
        probs.append("labels.expected_plan: must be a non-empty list of steps {description, tool, args}")
        return None
    out = []
    for i, st in enumerate(v):
        where = f"labels.expected_plan[{i}]"
        if not isinstance(st, dict):
            probs.append(f"{where}: must be an object {{description, tool, args}}")
            continue
        extra = sorted(set(st) - set(STEP_KEYS))
        if extra:
            probs.append(f"{where}: unknown key(s) {', '.join(extra)}; use {', '.join(STEP_KEYS)}")
        if not _nonempty(st.get("description")):
            probs.append(f"{where}.description: missing or empty")
        if st.get("tool") is not None and not _nonempty(st.get("tool")):
            probs.append(f"{where}.tool: must be a tool name or null")
        if st.get("args") is not None and not isinstance(st.get("args"), dict):
            probs.append(f"{where}.args: must be an object or null")
        out.append({"index": i, "description": st.get("description"), "tool": st.get("tool"), "args": st.get("args")})
    return out


def _labels(v: Any, event_id: str | None, probs: list[str]) -> dict[str, Any]:
    if not isinstance(v, dict) or not v:
        probs.append("labels: must be a non-empty object")
        return {}
    out: dict[str, Any] = {}
    for k, x in v.items():
        where = f"labels.{k}"
        if k in RUN_LABELS:
            if event_id is not None:
                probs.append(f"{where}: a run-level label; set event_id to null")
            elif not isinstance(x, bool):
                probs.append(f"{where}: must be true or false, got {x!r}")
            else:
                out[k] = x
            continue
        if k not in EVENT_LABELS:
            probs.append(f"{where}: unknown label; use {', '.join([*EVENT_LABELS, *RUN_LABELS])}")
            continue
        if event_id is None:
            probs.append(f"{where}: an event-level label; name the event (event_id)")
            continue
        if k == "expected_verdict" and x not in VERDICTS:
            probs.append(f"{where}: must be one of {'|'.join(VERDICTS)}, got {x!r}")
        elif k == "expected_tool" and not _nonempty(x):
            probs.append(f"{where}: must be a tool name")
        elif k == "expected_args" and not isinstance(x, dict):
            probs.append(f"{where}: must be an object")
        elif k == "expected_args" and "expected_tool" not in v:
            probs.append(f"{where}: needs expected_tool in the same line (the call is corrected whole)")
        elif k == "goal_met" and not isinstance(x, bool):
            probs.append(f"{where}: must be true or false, got {x!r}")
        elif k == "expected_plan":
            plan = _plan(x, probs)
            if plan is not None:
                out[k] = plan
        else:
            out[k] = x.strip() if k == "expected_tool" else x
    return out


def check_line(obj: Any, where: str, line: int) -> Correction | list[str]:
    """A ``Correction``, or every ``field: reason`` that makes the line unusable."""
    if not isinstance(obj, dict):
        return ["<line>: not a JSON object"]
    probs: list[str] = []
    extra = sorted(set(obj) - set(LINE_KEYS))
    if extra:
        probs.append(f"{', '.join(extra)}: unknown key(s); use {', '.join(LINE_KEYS)}")
    run_id, event_id = obj.get("run_id"), obj.get("event_id")
    if not _nonempty(run_id):
        probs.append("run_id: missing or empty")
    if event_id is not None and not _nonempty(event_id):
        probs.append("event_id: must be an event id or null (a run-level correction)")
        event_id = ""
    labels = _labels(obj.get("labels"), event_id, probs)
    if not _nonempty(obj.get("reviewer")):
        probs.append("reviewer: missing or empty (who made the correction)")
    time = _time(obj.get("time"))
    if time is None:
        probs.append(f"time: missing or not an ISO 8601 time, got {obj.get('time')!r}")
    if obj.get("note") is not None and not isinstance(obj.get("note"), str):
        probs.append("note: must be a string")
    if probs:
        return probs
    return Correction(where, line, str(run_id).strip(), event_id.strip() if event_id else None, labels,
                      str(obj["reviewer"]).strip(), str(time))


def read_corrections(path: str | os.PathLike[str]) -> CorrectionsFile:
    """Check every line of a corrections file.

    Returns:
        The valid lines by run id (in file order) and the bad ones, each as
        ``file:line: field: reason``; ``read`` counts non-blank lines (read = valid + bad).

    Raises:
        CorrectionsError: the file does not exist or cannot be read.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CorrectionsError(f"corrections file {p}: {exc.strerror or exc}") from exc
    out = CorrectionsFile(str(path), hashlib.sha256(data).hexdigest())
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.removeprefix(b"\xef\xbb\xbf") if lineno == 1 else raw
        if not raw.strip():
            continue
        out.read += 1
        where = f"{path}:{lineno}"
        try:
            got: Correction | list[str] = check_line(orjson.loads(raw), where, lineno)
        except orjson.JSONDecodeError as exc:
            got = [f"<line>: invalid JSON: {exc}"]
        if isinstance(got, Correction):
            out.by_run.setdefault(got.run_id, []).append(got)
        else:
            out.bad.append((lineno, f"{where}: " + "; ".join(got)))
    return out
