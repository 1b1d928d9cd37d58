"""Row labels (``meta.labels``): typed so Arrow loads every view, and the feedback seam.

``datasets.load_dataset("json")`` infers one Arrow type per column across rows, and refuses a
column that is a string in one row and a list in another. Labels therefore follow
``LABEL_TYPES``: known keys keep their declared type (``list``: a list of strings); a known key
with another type moves to ``<key>_json``; every other key is stored as a canonical JSON string.
Consumers read the known keys directly (``expected_verdict``, ``tool_mask``, ``recovery``,
``feedback_score``, ``failed_tool_calls``...). A key declared here after bundles were exported was
a JSON string in them: its consumers read both (``eval.metrics.failed_tool_calls``).

Feedback seam: ``LabelsForRun`` is the one function the export calls per run to get weak
labels (Telegram reactions joined to runs/events by ``tracebridge.feedback``). It returns
``{"run": {...}, "events": {event_id: {...}}}`` or None; ``merge_feedback`` folds that into a
row's labels (run level, then each of the row's events; a conversational run's reactions only per
event, ``turn_scoped``). ``feedback_source`` builds it from the export config's ``feedback`` section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from tracebridge.export.config import FeedbackConfig

LABEL_TYPES: dict[str, type | tuple[type, ...]] = {
    "expected_verdict": str, "verdict": str, "chosen_verdict": str, "rejected_verdict": str, "pair_source": str, "pair_reason": str,
    "fault": str, "expected_tool": str, "failure_class": str, "feedback_label": str, "tool_source": str,
    "goal_met": bool, "plan_matches_reference": bool, "recovery": bool, "tool_ok": bool, "run_success": bool, "misled": bool,
    "feedback_score": float, "confidence": float, "feedback_count": int, "failed_attempts": int,
    "context_messages": int, "context_dropped": int, "target_turns": int, "events_dropped": int,
    "cycle_verdict": str, "tool_mask": list, "risk_flags": list, "cycle_verdicts": list,
    "corrected_by": str, "outcome_source": str, "outcome_corrected_by": str, "trace_success": bool,
    "failed_tool_calls": list, "abandoned_path": bool, "failed_event_ids": list,
}
RunFeedback = Mapping[str, Any]
LabelsForRun = Callable[[str], RunFeedback | None]


class FeedbackUnavailable(RuntimeError):
    """``feedback.ledger`` is set but the feedback package offers no label source yet."""


def _json(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode()


def _typed(key: str, v: Any) -> tuple[str, Any]:
    want = LABEL_TYPES.get(key)
    if want is None:
        return key, v if isinstance(v, str) or v is None else _json(v)
    if want is float and isinstance(v, (int, float)) and not isinstance(v, bool):
        return key, float(v)
    if want is int and isinstance(v, int) and not isinstance(v, bool):
        return key, v
    if want is bool and isinstance(v, bool):
        return key, v
    if want is str and isinstance(v, str):
        return key, v
    if want is list and isinstance(v, list) and all(isinstance(x, str) for x in v):
        return key, v
    return f"{key}_json", _json(v)


def safe_labels(labels: Mapping[str, Any]) -> dict[str, Any]:
    """Labels with Arrow-stable types (see the module docstring); None values are dropped."""
    out: dict[str, Any] = {}
    for k, v in labels.items():
        if v is None:
            continue
        want = LABEL_TYPES.get(k)
        if type(v) is str and (want is None or want is str):  # the common case, no conversion
            out[k] = v
        else:
            key, val = _typed(str(k), v)
            out[key] = val
    return out


def merge_feedback(labels: dict[str, Any], fb: RunFeedback | None, event_ids: Sequence[str]) -> dict[str, Any]:
    """``labels`` with the run's feedback labels, then those of each of ``event_ids``, on top."""
    if not fb:
        return labels
    out = dict(labels)
    out.update(fb.get("run") or {})
    events = fb.get("events") or {}
    for eid in event_ids:
        out.update(events.get(eid) or {})
    return out


def turn_scoped(fb: RunFeedback) -> RunFeedback:
    """The reaction labels of a conversation of many user turns (``views.conversational_sources``: an
    OpenClaw session is one run): each reaction labels the rows that hold the events it was on, the
    reply it judged, and not the run. On the run level, one 👎 on one reply gave every row of the
    session a negative score, and the optimized variant (``data.feedback_weight``) dropped them all."""
    return {"run": {}, "events": fb.get("events") or {}}


def feedback_source(cfg: FeedbackConfig) -> LabelsForRun | None:
    """The label source for ``cfg`` (None when no ledger is configured).

    Wiring point: ``tracebridge.feedback`` provides ``labels_for_run_factory(ledger, mapping,
    registry, other_chunks, legacy_bot_id) -> LabelsForRun``; ``other_chunks`` is the chunk policy's rule 3.

    Raises:
        FeedbackUnavailable: a ledger is configured but the feedback package has no factory.
        ValueError: the configured ledger does not exist (a typo'd path exported every run unlabelled,
            exit 0; the shadow cycle and the weekly job set it only once the ledger exists).
    """
    if not cfg.ledger:
        return None
    if not Path(cfg.ledger).expanduser().is_file():
        raise ValueError(f"feedback.ledger={cfg.ledger}: no such file (the reaction ledger `tracebridge feedback "
                         "harvest` writes); leave feedback.ledger unset to export without reaction labels")
    try:
        from tracebridge.feedback import labels_for_run_factory  # type: ignore[attr-defined]
    except ImportError as exc:
        raise FeedbackUnavailable("feedback.ledger is set, but tracebridge.feedback provides no "
                                  "labels_for_run_factory(ledger, mapping, registry) yet") from exc
    return labels_for_run_factory(cfg.ledger, cfg.mapping, cfg.registry,  # type: ignore[no-any-return]
                                  cfg.other_chunks, cfg.legacy_bot_id)
