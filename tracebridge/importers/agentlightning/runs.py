"""Writing one rollout's mapped events as a schema-v2 run: shared by the runtime hook (``hook``)
and the importer of stored spans (``importer``), so both write the same records for the same spans.

``write_events`` validates each event against schema v2 and drops the ones that fail, re-parenting
their children so lineage stays intact, and writes each toolset's schemas (``llm.tools``) once: on the
first call written that offered it (a later call holds its ``toolset_hash`` only). ``session_record``
builds the run's ``session.json`` from the mapping's state (ids, times and hashes from the spans,
nothing from the clock).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from tracebridge.capture.recorder import make_goal
from tracebridge.importers.agentlightning.spans import SpanRun
from tracebridge.importers.openclaw.runs import RunWriter
from tracebridge.schema.canonical import sha256_json
from tracebridge.schema.events import validate_event
from tracebridge.schema.session import Session

log = logging.getLogger(__name__)


def write_events(writer: RunWriter, run: SpanRun) -> int:
    """Write ``run``'s events through ``writer``; return how many failed validation and were dropped."""
    dropped = 0
    kept: dict[str, str | None] = {}
    toolsets: set[str] = set()  # written with their schemas
    for ev in run.events:
        parent = ev["parent_event_id"]
        while parent in kept:  # keep lineage intact around dropped events
            parent = kept[parent]
        ev["parent_event_id"] = parent
        llm = ev.get("llm")
        if isinstance(llm, dict) and "tools" in llm and llm.get("toolset_hash") in toolsets:
            llm = ev["llm"] = {k: v for k, v in llm.items() if k != "tools"}
        try:
            validate_event(ev)
            writer.write(ev)  # serialises first: a value JSON cannot hold (a lone surrogate) writes nothing
            if isinstance(llm, dict) and "tools" in llm:  # a call dropped here leaves them to the next one
                toolsets.add(llm.get("toolset_hash"))
        except (ValidationError, TypeError) as exc:
            kept[ev["event_id"]] = parent
            dropped += 1
            log.warning("dropped %s %s: %s", ev["event_type"], ev["event_id"],
                        exc.errors()[0] if isinstance(exc, ValidationError) else exc)
            continue
    return dropped


def session_record(run: SpanRun, run_id: str, *, goal_family: str, spans: int, dropped: int, ref: str,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``session.json`` of a run mapped from one rollout's spans.

    Args:
        run: the mapping's result (``spans_to_events``).
        run_id: the run.
        goal_family: recorded goal family (the export splits by family).
        spans: spans the run was mapped from.
        dropped: events that failed validation (``write_events``).
        ref: the rollout id (``source.ref``).
        extra: more ``runtime_config.extra`` fields (the importer's attempt and rollout status).
    """
    first = run.events[0]
    end = run.events[-1]["payload"]
    role = {"model": run.model or "unknown", "params": {}}
    stack = {"planner": role, "worker": role, "verifier": {"model": "none", "params": {}}}
    runtime = {"max_steps": 1, "prompt_sources": ["agentlightning"], "tool_mode": "real",
               "extra": {"span_kinds": dict(sorted(run.kinds.items())), "spans": spans, **(extra or {})}}
    data = {
        "run_id": run_id,
        "goal": make_goal(first["payload"]["goal"], family=goal_family).model_dump(mode="json"),
        "started_at": first["timestamp"], "finished_at": run.events[-1]["timestamp"],
        "model_stack": stack, "runtime_config": runtime,
        "hashes": {"config_hash": sha256_json({"model_stack": stack, "runtime_config": runtime}),
                   "prompt_hash": sha256_json({}), "toolset_hash": sha256_json(sorted(run.tools))},
        "summary": {"success": end.get("success"), "steps": 1, "tokens": run.tokens, "cost_usd": round(run.cost, 6),
                    "failure_class": end.get("failure_class")},
        "source": {"kind": "agentlightning", "ref": ref},
        "capture": {"events_written": len(run.events) - dropped, "events_dropped": dropped, "errors": dropped},
        "labels": {"reward": run.final_reward} if run.final_reward is not None else {},
    }
    return Session.model_validate(data).model_dump(mode="json")
