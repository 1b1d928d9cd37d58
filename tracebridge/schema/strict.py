"""The schema's check of what a trace file holds: the same models, with strict types.

The models (``events.py``, ``session.py``) are lax where Python code builds records (the recorder,
the importers): ``"false"`` becomes ``False``, ``"3"`` becomes ``3``, ``1.0`` becomes ``1``. A file is
read as it is, though: the views read the parsed JSON, not the model, so a hand-edited
``"ok": "false"`` passed the lax check and then counted as a success (a non-empty string is true),
and the run's recovery rows were gone without a word. A file is therefore checked with every model
strict: a string is no boolean, number or list, a float no integer. Enums (``error.kind``) still take
their values as strings, which is all JSON can hold.

The strict check runs the models' core schema with each model as a typed dict of the same fields
(``capture.check.plain_schema``): pydantic reuses a model's own (lax) validator wherever its class
appears in a schema, whatever config the schema gives it. Should the schema ever hold what that form
cannot mirror, the lax models check files (``tests/schema/test_strict.py`` fails, so it is seen).
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import SchemaValidator

from tracebridge.capture.check import Unsupported, plain_schema, strict_schema
from tracebridge.schema.events import EVENT_ADAPTER
from tracebridge.schema.session import Session


def _validator(core_schema: Any, lax: Callable[[Any], Any]) -> Callable[[Any], Any]:
    try:
        return SchemaValidator(strict_schema(plain_schema(core_schema))).validate_python
    except Unsupported:
        return lax


validate_file_event = _validator(EVENT_ADAPTER.core_schema, EVENT_ADAPTER.validate_python)
validate_file_session = _validator(Session.__pydantic_core_schema__, Session.model_validate)
