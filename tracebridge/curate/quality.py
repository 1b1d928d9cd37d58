"""Quality rules of a run, on top of ``tracebridge.schema.validate.check_run``.

``check_run`` already finds bad JSON, torn tails, schema errors and drift, broken lineage,
duplicate ids, out-of-order timestamps, unmatched tool results, steps that go back, a role's events under
another role, missing ``session.json`` and runs without events;
``run_reasons`` maps its problems onto named rules and adds what it does not check: empty payloads,
runs that never reached ``episode_end``, and events the recorder dropped at capture (``events_dropped``:
``session.json`` counts them in ``capture.events_dropped``; ``validate_root`` lists the same count as a
``capture`` problem and ``tracebridge validate`` fails on any by default, so the export quarantines such a
run by default too; ``quality.allow=[...,events_dropped]`` exports it, its rows flagged). A run with any reason not in ``quality.allow`` is
quarantined with its reasons (``Reason``: rule, ``file:line:field``, message).

Locations are made relative to the trace root (``<run_id>/events.jsonl:12:payload.plan``), so a
bundle does not depend on where the traces were stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracebridge.schema.consistency import CONSISTENCY_RULES
from tracebridge.schema.validate import Problem, RunCheck, _capture_count

# Payload fields that must not be empty for the event to carry any training signal.
REQUIRED_CONTENT = {
    "planner_input": "goal", "planner_output": "plan", "worker_tool_call": "tool", "verifier_output": "verdict",
}


@dataclass(frozen=True)
class Reason:
    """Why a run is quarantined."""

    rule: str
    where: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """``{rule, where, message}``."""
        return {"rule": self.rule, "where": self.where, "message": self.message}


def problem_rule(p: Problem) -> str:
    """The quality rule a ``check_run`` problem belongs to."""
    if p.kind == "json":
        return "bad_json"
    if p.kind == "torn":
        return "torn_tail"
    if p.kind == "drift":
        return "schema_drift"
    if p.kind == "order":
        return "non_monotonic_timestamp"
    if p.kind == "incomplete":
        return "incomplete_run"
    if p.kind == "empty":
        return "no_events"
    if p.kind in CONSISTENCY_RULES:
        return p.kind
    if p.kind == "lineage":
        return "duplicate_id" if "duplicate id" in p.message else "broken_lineage"
    return "missing_key" if p.message.lower().startswith("field required") else "schema_invalid"


def _where(run_dir: Path, file: str, line: int | None, fld: str) -> str:
    name = Path(file).name if Path(file) != run_dir else ""
    rel = f"{run_dir.name}/{name}" if name else run_dir.name
    return f"{rel}:{line if line is not None else '-'}:{fld}"


def extra_reasons(run_dir: Path, events: Iterable[tuple[int, dict[str, Any]]], n_events: int,
                  complete: bool, open_ended: bool = False) -> list[Reason]:
    """Rules ``check_run`` does not cover: empty payloads, no ``episode_end`` (no events is its
    problem, so ``validate`` and the export agree).

    Args:
        run_dir: the run directory (for locations).
        events: ``(line number, event)`` of the lines that parsed.
        n_events: events counted by ``check_run``.
        complete: the run has its ``session.json``.
        open_ended: the run's source records no ``episode_end`` (``quality.open_ended_sources``).
    """
    out: list[Reason] = []
    ended = False
    for lineno, ev in events:
        et = ev.get("event_type")
        ended = ended or et == "episode_end"
        payload = ev.get("payload")
        if "payload" in ev and not payload:
            out.append(Reason("empty_payload", _where(run_dir, "events.jsonl", lineno, "payload"),
                              f"{et} has an empty payload"))
        elif isinstance(payload, dict) and et in REQUIRED_CONTENT:
            key = REQUIRED_CONTENT[et]
            if key in payload and payload[key] in ("", [], {}, None):
                out.append(Reason("empty_payload", _where(run_dir, "events.jsonl", lineno, f"payload.{key}"),
                                  f"{et}.{key} is empty"))
    if n_events and complete and not ended and not open_ended:
        out.append(Reason("incomplete_run", _where(run_dir, "events.jsonl", None, "episode_end"),
                          "run never reached episode_end"))
    return out


def events_dropped(session: dict[str, Any]) -> int:
    """Events the run's recorder could not write, as ``session.json`` counts them (0: none, or not counted)."""
    return _capture_count(session, "events_dropped")


def capture_reasons(run_dir: Path, session: dict[str, Any] | None) -> list[Reason]:
    """The run's capture gaps: ``events_dropped`` when its ``session.json`` counts dropped events, located
    and worded as ``validate`` lists them."""
    n = events_dropped(session or {})
    if not n:
        return []
    return [Reason("events_dropped", _where(run_dir, str(run_dir / "session.json"), None, "capture.events_dropped"),
                   f"{n} event(s) dropped at capture (fail-open; the recorder logged why): the run has gaps")]


def run_reasons(chk: RunCheck, run_dir: Path, events: Iterable[tuple[int, dict[str, Any]]],
                allow: Iterable[str] = (), open_ended: bool = False,
                session: dict[str, Any] | None = None) -> tuple[list[Reason], list[Reason]]:
    """All reasons of one run, split into (blocking, allowed).

    Args:
        chk: ``check_run``'s result for the run.
        run_dir: the run directory.
        events: ``(line number, event)`` of the lines that parsed.
        allow: rules that are reported but do not quarantine.
        open_ended: the run's source records no ``episode_end``; its session.json makes it complete.
        session: the run's ``session.json`` as read (its ``capture`` counts), if any.
    """
    reasons = [Reason(problem_rule(p), _where(run_dir, p.file, p.line, p.field), p.message) for p in chk.problems]
    reasons += extra_reasons(run_dir, events, chk.events, chk.complete, open_ended)
    reasons += capture_reasons(run_dir, session)
    allowed = set(allow)
    return [r for r in reasons if r.rule not in allowed], [r for r in reasons if r.rule in allowed]
