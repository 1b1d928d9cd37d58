"""session.json of a run a ``Recorder`` wrote: the counts it adds up as events are written, the session
block built from the recorder's state at close, its ``data_governance`` (what the capture redactor found
in this run) and the file's bytes, written once, atomically."""

from __future__ import annotations

import logging
import operator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from tracebridge.capture.blocks import escape_surrogates, nonfinite_as_strings
from tracebridge.capture.problems import json_problem
from tracebridge.capture.writer import write_atomic
from tracebridge.schema.session import CaptureStats, DataGovernance, RedactionPass, Session, Summary

if TYPE_CHECKING:
    from tracebridge.capture.recorder import Recorder

log = logging.getLogger(__name__)


def write_session(rec: Recorder, success: bool | None, failure_class: str | None) -> None:
    """Write ``rec``'s session.json, adding the floats JSON cannot hold that it writes as strings to its
    ``capture.nonfinite_values``.

    Raises:
        Exception: whatever building or writing it raised (the recorder counts it, fail-open).
    """
    labels = session_labels(rec)  # before the counts are taken: a label left out is one of the errors
    steps = run_steps(rec.step, rec._last_step) if rec._lineage.seq else 0
    summary = Summary(success=success, steps=steps, tokens=rec._tokens, cost_usd=round(rec._cost, 6),
                      failure_class=failure_class)
    session = Session(run_id=rec.run_id, goal=rec.goal, started_at=rec._started_at or rec._now(),
                      finished_at=rec._now(), model_stack=rec.model_stack, runtime_config=rec.runtime_config,
                      hashes=rec.hashes, data_governance=capture_governance(rec.redactor, rec.run_id),
                      summary=summary, source=rec.source, capture=CaptureStats(**asdict(rec.stats)), labels=labels)
    data, nonfinite = session_json(session, rec.redactor)
    rec.stats.nonfinite_values += nonfinite
    write_atomic(rec.run_dir / "session.json", data)


def count_written(rec: Recorder, record: dict[str, Any], nonfinite: int) -> None:
    """Add an event ``rec`` wrote to the counts its session.json reports: events, non-finite floats, tokens
    and cost, toolsets recorded, and the outcome of ``episode_end`` (called with the recorder's lock held)."""
    rec.stats.events_written += 1
    rec._last_step = record["step"]
    if nonfinite:
        rec.stats.nonfinite_values += nonfinite
    llm = record.get("llm")
    if llm is not None:
        if llm.get("tools"):
            rec._toolsets.add(str(llm.get("toolset_hash")))
        usage = llm.get("usage") or {}
        rec._tokens += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        rec._cost += float(usage.get("cost_usd", 0.0))
    if record["event_type"] == "episode_end":
        rec._end = record["payload"]


def session_labels(rec: Recorder) -> dict[str, Any]:
    """``rec.labels`` as session.json can hold them. They were checked at construction, but the agent may set
    one later (``run.labels["judge"] = obj``): one JSON cannot hold, or under a key that is not a str, is left
    out, counted in ``capture.errors`` and logged naming its key, so that session.json is still written."""
    labels = rec.labels
    if not isinstance(labels, dict):
        rec.stats.errors += 1
        log.warning("run %s: session.json leaves out its labels: %s %.60r is not a dict", rec.run_dir,
                    type(labels).__name__, labels)
        return {}
    kept = {}
    for key, value in labels.items():
        why = (f"key {type(key).__name__} {key!r:.40} is not a str" if not isinstance(key, str)
               else json_problem(value, f"labels.{key}"))
        if why is None:
            kept[key] = value
        else:
            rec.stats.errors += 1
            log.warning("run %s: session.json leaves out label %.60r: %s", rec.run_dir, key, why)
    return kept


def session_json(session: BaseModel, redactor: Any) -> tuple[bytes, int]:
    """session.json's bytes (surrogates escaped, redacted by ``redactor`` when one is given) and the count of
    floats JSON cannot hold that it writes as strings (a NaN in ``model_stack`` params, ``labels``). With a
    redactor, ``data_governance`` is built after the session is redacted: what it found there (PII only in the
    goal) is part of the run's findings."""
    data, n = nonfinite_as_strings(to_jsonable_python(session.model_dump(), inf_nan_mode="constants"))
    data = escape_surrogates(data)  # small: escaped whole, always
    data["capture"]["nonfinite_values"] += n
    if redactor is not None:
        data = redactor.redact(data)
        data["data_governance"] = capture_governance(redactor, str(data["run_id"])).model_dump(mode="json")
    return orjson.dumps(data, option=orjson.OPT_INDENT_2), n


def capture_governance(redactor: Any, run_id: str) -> DataGovernance:
    """session.json's ``data_governance`` for run ``run_id`` recorded with ``redactor`` (a ``RedactionHook``, or
    None: nothing scanned at capture): its findings in this run, not in the run it saw last (one redactor may
    serve several recorders)."""
    if redactor is None:
        return DataGovernance()
    try:
        found = redactor.findings(scope=run_id)
    except TypeError:  # a hook whose findings() takes no scope: it serves one run
        found = redactor.findings()
    return DataGovernance(redaction_policy=redactor.policy, pii_scan="findings" if any(found.values()) else "clean",
                          passes=[RedactionPass(stage="capture", policy=redactor.policy, findings=found)])


def run_steps(step: Any, written: Any) -> int:
    """session.json's ``summary.steps``: the step the agent reached, plus one. When the agent left ``Recorder.step``
    a value no event can hold (``"3"``, ``-1``: its events were refused), the step of the last event written."""
    for s in (step, written):
        try:
            n = -1 if isinstance(s, bool) else operator.index(s)
        except TypeError:
            continue
        if n >= 0:
            return n + 1
    return 1
