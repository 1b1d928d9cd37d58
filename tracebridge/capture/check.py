"""The recorder's schema check of an event before it is written: what ``tracebridge validate`` will say of
its line, at half the cost of the schema's own check.

``EVENT_ADAPTER.validate_python`` builds a model instance for the event, its payload and every nested
block (a plan's steps, an ``llm`` block's usage), which the recorder throws away: of the ~4 µs it
costs per event, ~1.5 µs is building them. ``check_emitted`` runs the same core schema with each model
turned into a typed dict of the same fields, defaults and ``extra="forbid"``: the same constraints,
checked by the same validators, with plain dicts built instead. It leaves out what the recorder
makes itself (``RECORDER_MADE``, ~0.9 µs more): those fields are valid by construction, and the
record it builds has no other top-level keys. A record it refuses goes to ``EVENT_ADAPTER``, whose
verdict and message (every bad field by its path, ``worker_tool_call.payload.args``) stand: it also
accepts a model instance where a block is expected (``{"plan": [PlanStep(...)]}``), which a typed
dict does not. Pure; no I/O.

The check is *strict*, as the check of a file is (``tracebridge.schema.strict``): the lax models took a
``step`` of ``"3"`` or ``True``, a plan ``index`` of ``"0"``, a ``confidence`` of ``"0.5"``, and the recorder wrote
them as given, lines every reader of the run then refused as schema-invalid. A record the strict mirror
refuses is judged as the reader will see it: its JSON line (``event_line``: a tuple or set as a list, a model
instance as its fields, numpy as numbers), parsed and checked by the file check, whose verdict stands.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator

from tracebridge.schema.events import EVENT_ADAPTER

# What a model's core schema may hold for the typed-dict form to check exactly what it checks. Anything
# else (a field validator, a root model, a custom __init__, aliases) and ``check_event`` uses
# ``EVENT_ADAPTER`` alone (tests/capture/test_check.py fails, so the case is seen).
_MODEL_KEYS = {"type", "cls", "config", "custom_init", "metadata", "ref", "root_model", "schema"}
_FIELDS_KEYS = {"type", "computed_fields", "fields", "model_name"}
_FIELD_KEYS = {"type", "metadata", "schema"}
_UNSUPPORTED = ("function-before", "function-after", "function-wrap", "function-plain")
# Event fields ``Recorder`` makes itself, valid by construction: ids from ``Lineage`` (of a run id that
# ``Recorder`` checks is a non-empty str), the timestamp from ``utc_now``, ``root`` only as True. The step
# is a public attribute an agent may set: it is checked, with the event type, role, payload, llm and labels.
RECORDER_MADE = frozenset({"run_id", "event_id", "timestamp", "parent_event_id", "root"})


class Unsupported(Exception):
    """A core schema holds what its typed-dict form cannot mirror (``plain_schema``)."""


def _as_typed_dict(model: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` core schema as the ``typed-dict`` schema of its fields."""
    inner = model["schema"]
    if model.keys() - _MODEL_KEYS or model.get("custom_init") or model.get("root_model") \
            or inner.get("type") != "model-fields" or inner.keys() - _FIELDS_KEYS:
        raise Unsupported(model.get("ref"))
    fields = {}
    for name, f in inner["fields"].items():
        if f.keys() - _FIELD_KEYS:
            raise Unsupported(name)
        fields[name] = {"type": "typed-dict-field", "schema": plain_schema(f["schema"]),
                        "required": f["schema"]["type"] != "default"}  # a field with a default may be absent
    config = model.get("config") or {}
    out = {"type": "typed-dict", "fields": fields, "config": config,
           "extra_behavior": config.get("extra_fields_behavior", "ignore")}
    return out | ({"ref": model["ref"]} if "ref" in model else {})


def plain_schema(schema: Any) -> Any:
    """``schema`` with every model in it as a typed dict (``_as_typed_dict``)."""
    if isinstance(schema, list):
        return [plain_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") in _UNSUPPORTED:
        raise Unsupported(schema["type"])
    if schema.get("type") == "model":
        return _as_typed_dict(schema)
    return {k: plain_schema(v) for k, v in schema.items()}


def strict_schema(schema: Any) -> Any:
    """``schema`` (a core schema of typed dicts) with every type strict but enums (a union that says
    ``strict: False``, as the events' tagged union does, would make its choices lax again)."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if out.get("type") == "typed-dict":
        out["config"] = {**(out.get("config") or {}), "strict": True}
    if out.get("type") == "enum":
        out["strict"] = False  # an enum's value, not an instance: JSON holds no enum instances
    elif "strict" in out:
        out["strict"] = True
    return out


def _without_made(schema: dict[str, Any]) -> dict[str, Any]:
    """The events' union with ``RECORDER_MADE`` left out of each event type, and unknown top-level
    keys let through (the recorder's record has none)."""
    if schema.get("type") != "tagged-union":
        raise Unsupported(schema.get("type"))
    choices = {name: {**event, "extra_behavior": "ignore",
                      "fields": {k: f for k, f in event["fields"].items() if k not in RECORDER_MADE}}
               for name, event in schema["choices"].items()}
    return {**schema, "choices": choices}


def _fast_validator() -> SchemaValidator | None:
    """The strict typed-dict validator of emitted events, or None when the schema holds what it cannot mirror."""
    try:
        return SchemaValidator(strict_schema(_without_made(plain_schema(EVENT_ADAPTER.core_schema))))
    except Unsupported:
        return None


FAST_EVENT_VALIDATOR = _fast_validator()


def check_emitted(record: dict[str, Any]) -> None:
    """Check an event record ``Recorder`` built against the event schema as a file is checked (strict; see
    ``RECORDER_MADE``).

    Raises:
        pydantic.ValidationError: the file check's, naming every bad field by its path.
        TypeError: (``orjson.JSONEncodeError``) a value JSON cannot hold, where the strict mirror refused the record.
    """
    if FAST_EVENT_VALIDATOR is not None:
        try:
            FAST_EVENT_VALIDATOR.validate_python(record)
            return
        except ValidationError:
            pass  # judged below as the reader will read it
    # The failure path only: blocks imports the schema's models, strict builds its validator from this module.
    from tracebridge.capture.blocks import event_line
    from tracebridge.schema.strict import validate_file_event

    validate_file_event(orjson.loads(event_line(record)[0]))
