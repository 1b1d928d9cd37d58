"""check_emitted: the typed-dict mirror of the event schema accepts and refuses exactly what the check of a
file (``tracebridge validate``, strict) does in every field the recorder does not make itself, and a refused
event is reported in the file check's words."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import MODEL_STACK, record_sample_run
from tracebridge.capture.check import FAST_EVENT_VALIDATOR, RECORDER_MADE, check_emitted
from tracebridge.capture.problems import validation_text
from tracebridge.capture.recorder import Recorder
from tracebridge.schema.events import EVENT_ADAPTER, PlanStep
from tracebridge.schema.strict import validate_file_event

# Values put in place of each field: every JSON type, the edges of the schema's bounds, and none.
_SUBSTITUTES = [None, True, 0, -1, 2, 0.5, -0.5, float("nan"), "", "x", "2026-01-31T12:00:00.000Z", [], ["x"],
                {}, {"x": 1}, "continue", "planner", "not_found"]
_GONE = object()


def _accepts(validator: Any, record: dict[str, Any]) -> bool:
    try:
        validator.validate_python(record)
    except ValidationError:
        return False
    return True


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key and list index under ``obj``, as paths from the top."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    out = []
    for k, v in items:
        out.append((*prefix, k))
        out.extend(_paths(v, (*prefix, k)))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _variant(record: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    holder = _get(out, path[:-1])
    if value is _GONE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return out


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> list[dict[str, Any]]:
    root = tmp_path_factory.mktemp("runs")
    run_id = record_sample_run(root)
    return [json.loads(line) for line in (root / run_id / "events.jsonl").read_text().splitlines()]


def test_the_mirror_covers_the_whole_schema():
    """None would mean a model the mirror cannot copy (a validator, an alias): capture would still be
    right, at the old cost. Decide then whether the mirror should learn it."""
    assert FAST_EVENT_VALIDATOR is not None


def _reader_accepts(record: dict[str, Any]) -> bool:
    """What ``tracebridge validate`` says of the line written for ``record``."""
    try:
        validate_file_event(json.loads(json.dumps(record)))
    except ValidationError:
        return False
    return True


def test_mirror_accepts_and_refuses_exactly_what_the_reader_does(events):
    verdicts = {True: 0, False: 0}
    for event in events:
        variants = [event]
        for path in (p for p in _paths(event) if p[0] not in RECORDER_MADE):
            variants.append(_variant(event, path, _GONE))
            variants.extend(_variant(event, path, v) for v in _SUBSTITUTES)
            variants.append(_variant(event, (*path, "unknown_field"), 1) if isinstance(_get(event, path), dict)
                            else event)
        for v in variants:
            fast = _accepts(FAST_EVENT_VALIDATOR, v)
            assert fast == _reader_accepts(v), v
            verdicts[fast] += 1
    assert verdicts[True] > 100 and verdicts[False] > 100  # both kinds seen, many times


def test_refused_event_is_reported_by_the_schema_naming_the_field(events):
    call = next(e for e in events if e["event_type"] == "worker_tool_call")
    with pytest.raises(ValidationError) as err:
        check_emitted({**call, "payload": {**call["payload"], "args": ["not", "a", "dict"]}})
    assert "worker_tool_call.payload.args" in str(err.value)
    assert validation_text(err.value) == "worker_tool_call.payload.args: Input should be a valid dictionary (got ['not', 'a', 'dict'])"


def test_model_instance_inside_a_dict_payload_is_still_accepted(events):
    """The schema's validator accepts a block given as its model; the mirror (plain dicts) does not, so
    such an event is passed on to the schema and written as before."""
    plan = next(e for e in events if e["event_type"] == "planner_output")
    record = {**plan, "payload": {**plan["payload"], "plan": [PlanStep(index=0, description="read")]}}
    assert not _accepts(FAST_EVENT_VALIDATOR, record)
    check_emitted(record)


def test_fields_the_recorder_makes_are_valid_and_the_step_is_still_checked(tmp_path, events):
    """What the mirror leaves out is what every recorded event holds valid (the schema's validator
    accepts the whole run); the step, a public attribute an agent may set, is checked."""
    assert all(_accepts(EVENT_ADAPTER, e) for e in events) and {"run_id", "step", "timestamp"} <= events[0].keys()
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.step = -1
        run.emit("planner_input", role="planner", payload={"goal": "g"})
    assert run.stats.events_written == 1 and run.stats.events_dropped == 1
