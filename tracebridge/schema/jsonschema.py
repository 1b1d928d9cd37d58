"""JSON Schema export of the schema-v2 models (``tracebridge schema export``).

The exported files are committed under ``tracebridge/schema/json/`` so tools in other
languages can validate traces; a test checks they match the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracebridge.schema.events import EVENT_ADAPTER
from tracebridge.schema.session import Session

SCHEMA_DIR = Path(__file__).parent / "json"


def build_schemas() -> dict[str, dict[str, Any]]:
    """Return ``{filename: json_schema}`` for session.json and one events.jsonl line."""
    session = Session.model_json_schema()
    session["$id"] = "https://tracebridge.dev/schema/v2/session.schema.json"
    event = EVENT_ADAPTER.json_schema()
    event["$id"] = "https://tracebridge.dev/schema/v2/event.schema.json"
    event["title"] = "Event"
    return {"session.schema.json": session, "event.schema.json": event}


def render(schema: dict[str, Any]) -> str:
    """A schema as the committed file's text: indented JSON, sorted keys, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(out_dir: Path = SCHEMA_DIR) -> list[Path]:
    """Write the JSON Schema files into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in build_schemas().items():
        path = out_dir / name
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


def stale_schemas(out_dir: Path = SCHEMA_DIR) -> list[str]:
    """Names of files in ``out_dir`` that differ from the models (missing counts as stale)."""
    stale = []
    for name, schema in build_schemas().items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != render(schema):
            stale.append(name)
    return stale
