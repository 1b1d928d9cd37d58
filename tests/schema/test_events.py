"""Schema v2 models: round trips, rejection with field paths, drift, JSON Schema files."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tracebridge.schema.events import EVENT_TYPES, ErrorKind, validate_event
from tracebridge.schema.jsonschema import SCHEMA_DIR, build_schemas, render, stale_schemas

BASE = {"run_id": "r1", "step": 0, "timestamp": "2026-01-01T00:00:00.000Z", "parent_event_id": "r1:000001"}
PAYLOADS = {
    "planner_input": {"goal": "g", "observation": {"x": 1}, "history": ["h"], "tool_mask": ["t"]},
    "planner_output": {"plan": [{"index": 0, "description": "d", "tool": "t", "args": {"a": 1}}],
                       "rationale": "r", "confidence": 0.5},
    "worker_input": {"plan_step": {"index": 0, "description": "d"}, "state": {}, "allowed_tools": ["t"],
                     "prior_failures": [{"kind": "timeout"}]},
    "worker_action": {"action": "tool_call", "reasoning_summary": "s", "tool": "t", "args": {}},
    "worker_tool_call": {"call_id": "c", "tool": "t", "args": {"p": "x"}},
    "worker_tool_result": {"call_id": "c", "ok": False, "error": {"kind": "timeout", "message": "slow"},
                           "retry_of": "b", "latency_ms": 3.5},
    "worker_output": {"result": "ok", "status": "done"},
    "verifier_input": {"plan_progress": {"completed": 1}, "evidence": ["e"]},
    "verifier_output": {"verdict": "replan", "feedback": "f", "risk_flags": ["r"], "confidence": 1.0},
    "orchestrator_transition": {"from_state": "a", "to_state": "b", "reason": "why"},
    "env_observation": {"observation": "o", "source": "fs"},
    "episode_error": {"kind": "runtime_error", "message": "m", "recoverable": False},
    "episode_end": {"success": False, "outcome": "o", "failure_class": "timeout"},
}


def test_every_event_type_has_a_sample():
    assert set(PAYLOADS) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_round_trip(event_type):
    obj = {**BASE, "event_id": f"r1:{event_type}", "event_type": event_type, "role": "worker",
           "payload": PAYLOADS[event_type],
           "llm": {"model": "m", "rendered_prompt": "p", "prompt_hash": "a", "config_hash": "b",
                   "usage": {"input_tokens": 3, "output_tokens": 2, "cost_usd": 0.1, "latency_ms": 5}}}
    ev = validate_event(obj)
    assert ev.event_type == event_type
    dumped = json.loads(ev.model_dump_json())
    assert validate_event(dumped).model_dump() == ev.model_dump()
    assert _contains(PAYLOADS[event_type], dumped["payload"])


def _contains(small, big) -> bool:
    """Every key/value of ``small`` is in ``big`` (defaults may add more keys)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(map(_contains, small, big))
    return small == big


@pytest.mark.parametrize("event_type,payload,field", [
    ("verifier_output", {"verdict": "maybe"}, "payload.verdict"),
    ("worker_tool_result", {"call_id": "c", "ok": False, "error": {"kind": "oops", "message": "m"}},
     "payload.error.kind"),
    ("planner_output", {"plan": [{"index": -1, "description": "d"}]}, "payload.plan.0.index"),
    ("worker_tool_call", {"tool": "t"}, "payload.call_id"),
    ("verifier_output", {"verdict": "end", "confidence": 2}, "payload.confidence"),
])
def test_invalid_payload_rejected_with_field_path(event_type, payload, field):
    obj = {**BASE, "event_id": "x", "event_type": event_type, "role": "verifier", "payload": payload}
    with pytest.raises(ValidationError) as ei:
        validate_event(obj)
    paths = [".".join(str(p) for p in e["loc"][1:]) for e in ei.value.errors()]
    assert field in paths


def test_bad_timestamp_rejected():
    obj = {**BASE, "timestamp": "2026-01-01 00:00", "event_id": "x", "event_type": "episode_end",
           "role": "orchestrator", "payload": {"success": True}}
    with pytest.raises(ValidationError):
        validate_event(obj)


def test_unknown_fields_are_drift_not_accepted():
    obj = {**BASE, "event_id": "x", "event_type": "episode_end", "role": "orchestrator",
           "payload": {"success": True, "new_field": 1}, "extra_top": 2}
    with pytest.raises(ValidationError) as ei:
        validate_event(obj)
    assert {e["type"] for e in ei.value.errors()} == {"extra_forbidden"}


def test_error_taxonomy_is_fixed():
    assert {k.value for k in ErrorKind} == {"bad_args", "not_found", "timeout", "permission",
                                            "runtime_error", "unknown_tool", "invalid_output"}
    assert ErrorKind.BAD_ARGS.is_agent_fault and not ErrorKind.TIMEOUT.is_agent_fault


def test_committed_json_schema_matches_models():
    assert stale_schemas() == [], "run `tracebridge schema export` and commit the result"
    for name, schema in build_schemas().items():
        assert (SCHEMA_DIR / name).read_text() == render(schema)


def test_json_schema_validates_what_models_accept(tmp_path, sample_run):
    jsonschema = pytest.importorskip("jsonschema")
    schemas = build_schemas()
    run_id = sample_run(tmp_path)
    for line in (tmp_path / run_id / "events.jsonl").read_text().splitlines():
        jsonschema.validate(json.loads(line), schemas["event.schema.json"])
    jsonschema.validate(json.loads((tmp_path / run_id / "session.json").read_text()),
                        schemas["session.schema.json"])
