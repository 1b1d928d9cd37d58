"""Corrections joined to one run, in memory: matched to its events, folded, merged into copies.

``match_run`` checks a run's corrections against its events (the event exists; its type fits
each label) and folds the good ones, the last line winning per (event, label). ``apply_corrections``
returns copies of the run's events and session with the folded labels merged (event ``labels``
plus ``corrected_by``; run level in the session's ``labels``), so the views read them as they read
any recorded label, and the redaction passes cover what reviewers wrote. ``overlay`` then gives
the labels of each corrected event (and the run's outcome) as a feedback mapping
(``tracebridge.export.labels.RunFeedback``), so every row built from a corrected event carries
them, whichever of its events the row's builder reads labels from. Nothing here touches a file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tracebridge.corrections.records import EVENT_LABELS, Correction

Redact = Callable[[dict[str, Any]], dict[str, Any]]
RUN_KEYS = ("corrected_success", "outcome_corrected_by")  # session labels of a run-level correction
OUTCOME_SOURCE = "correction"


def _group(label: str) -> str:
    """Labels corrected together: a call's tool and arguments are one correction."""
    return "expected_tool" if label == "expected_args" else label


@dataclass
class RunOutcome:
    """What became of one run's corrections (what the export report needs; small, picklable)."""

    run_id: str
    applied: list[int] = field(default_factory=list)  # line numbers
    unmatched: list[tuple[int, dict[str, str | None]]] = field(default_factory=list)  # (line, {where, run_id, event_id})
    quarantined: list[tuple[int, str]] = field(default_factory=list)  # (line, "file:line: field: reason")
    superseded: int = 0  # labels a later line of the same (event, label) replaced
    labels: Counter[str] = field(default_factory=Counter)  # labels in effect, by name
    trace_success: bool | None = None
    success: bool | None = None  # the outcome a person set (None: not corrected)

    @property
    def read(self) -> int:
        """Lines read for this run: applied + unmatched + quarantined."""
        return len(self.applied) + len(self.unmatched) + len(self.quarantined)


@dataclass
class Fold:
    """The corrections in effect for one run: per event, each label with its line and reviewer."""

    events: dict[str, dict[str, tuple[Any, Correction]]] = field(default_factory=dict)
    success: tuple[bool, Correction] | None = None

    def __bool__(self) -> bool:
        return bool(self.events) or self.success is not None


def recorded_success(events: list[dict[str, Any]], session: dict[str, Any] | None) -> bool | None:
    """The run's success as the trace records it: its ``episode_end``, else its session summary."""
    end = next((e.get("payload") for e in reversed(events) if e.get("event_type") == "episode_end"), None)
    if not isinstance(end, dict):
        end = (session or {}).get("summary")
    value = end.get("success") if isinstance(end, dict) else None
    return value if isinstance(value, bool) else None


def match_run(corrections: Iterable[Correction], events: list[dict[str, Any]], run_id: str = "",
              session: dict[str, Any] | None = None) -> tuple[RunOutcome, Fold]:
    """Check ``corrections`` (one run's, in file order) against the run's events and fold them.

    Args:
        corrections: the run's checked lines, in file order.
        events: the run's events.
        run_id: the run.
        session: its session.json (for the outcome the trace records, when no episode_end does).

    Returns:
        What became of each line (applied, unmatched event id, quarantined for an event type the
        label does not fit) and the labels in effect.
    """
    types = {ev["event_id"]: str(ev.get("event_type")) for ev in events
             if isinstance(ev, dict) and isinstance(ev.get("event_id"), str)}
    out, fold = RunOutcome(run_id, trace_success=recorded_success(events, session)), Fold()
    for c in corrections:
        if c.event_id is not None and c.event_id not in types:
            out.unmatched.append((c.line, {"where": c.where, "run_id": c.run_id, "event_id": c.event_id}))
            continue
        if c.event_id is None:
            out.superseded += fold.success is not None
            fold.success = (bool(c.labels["success"]), c)
            out.applied.append(c.line)
            continue
        et = types[c.event_id]
        wrong = [f"labels.{k}: event {c.event_id} is a {et}; {k} goes on a {' or '.join(EVENT_LABELS[k])}"
                 for k in c.labels if et not in EVENT_LABELS[k]]
        if wrong:
            out.quarantined.append((c.line, f"{c.where}: " + "; ".join(wrong)))
            continue
        have = fold.events.setdefault(c.event_id, {})
        for group in dict.fromkeys(_group(k) for k in c.labels):
            out.superseded += group in have
            if group == "expected_tool":
                have[group] = ({"expected_tool": c.labels["expected_tool"],
                                "expected_args": c.labels.get("expected_args")}, c)
            else:
                have[group] = (c.labels[group], c)
        out.applied.append(c.line)
    for labels in fold.events.values():
        out.labels.update(labels.keys())
    if fold.success is not None:
        out.labels["success"] += 1
        out.success = fold.success[0]
    return out, fold


def _event_labels(winning: dict[str, tuple[Any, Correction]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, (value, _) in winning.items():
        if group == "expected_tool":
            out.update(value)  # expected_args None: the trace's arguments are cleared too
        else:
            out[group] = value
    out["corrected_by"] = ", ".join(dict.fromkeys(c.reviewer for _, c in winning.values()))
    return out


def apply_corrections(events: list[dict[str, Any]], session: dict[str, Any], fold: Fold,
                      redact: Redact | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Copies of a run's events and session with ``fold`` merged into their ``labels``.

    Args:
        events: the run's events (not modified).
        session: its session.json (not modified).
        fold: the corrections in effect (``match_run``).
        redact: pass 1 over what reviewers wrote (a record ``{"event_type", "labels"}`` in, its
            redacted copy out), applied before the merge; None when redaction is off.
    """
    if not fold:
        return events, session
    out = []
    for ev in events:
        winning = fold.events.get(ev.get("event_id")) if isinstance(ev.get("event_id"), str) else None
        if not winning:
            out.append(ev)
            continue
        new = _event_labels(winning)
        if redact is not None:
            new = redact({"event_type": ev.get("event_type"), "labels": new})["labels"]
        old = ev.get("labels") if isinstance(ev.get("labels"), dict) else {}
        merged = {k: v for k, v in {**old, **new}.items() if v is not None}
        out.append({**ev, "labels": merged})
    if fold.success is not None:
        value, c = fold.success
        run = {"corrected_success": value, "outcome_corrected_by": c.reviewer}
        if redact is not None:
            run = redact({"labels": run})["labels"]
        old = session.get("labels") if isinstance(session.get("labels"), dict) else {}
        session = {**session, "labels": {**old, **run}}
    return out, session


def overlay(events: list[dict[str, Any]], session: dict[str, Any], fold: Fold,
            trace_success: bool | None) -> dict[str, Any]:
    """The corrected labels as a feedback mapping ``{"run": {...}, "events": {id: {...}}}``, read
    from the (redacted) records ``apply_corrections`` returned."""
    out: dict[str, Any] = {"run": {}, "events": {}}
    for ev in events:
        eid = ev.get("event_id")
        if isinstance(eid, str) and eid in fold.events:
            labels = ev.get("labels") or {}
            keys = [*(k for g in fold.events[eid] for k in ((g, "expected_args") if g == "expected_tool" else (g,))),
                    "corrected_by"]
            out["events"][eid] = {k: labels.get(k) for k in keys}
    if fold.success is not None:
        labels = session.get("labels") or {}
        out["run"] = {"outcome_source": OUTCOME_SOURCE, "outcome_corrected_by": labels.get("outcome_corrected_by"),
                      "trace_success": trace_success}
    return out


def combine(feedback: dict[str, Any] | None, extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two feedback mappings as one (``extra`` on top, run level and per event)."""
    if not extra:
        return feedback
    if not feedback:
        return extra
    events = dict(feedback.get("events") or {})
    for eid, labels in (extra.get("events") or {}).items():
        events[eid] = {**(events.get(eid) or {}), **labels}
    return {"run": {**(feedback.get("run") or {}), **(extra.get("run") or {})}, "events": events}
