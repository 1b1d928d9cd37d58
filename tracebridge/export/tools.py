"""Tool JSON schemas for worker rows' ``tools``.

Traces record the toolset only as ``hashes.toolset_hash`` (sha256 of the canonical JSON of the
schemas offered). ``ToolRegistry.for_run`` finds the schemas in this order:

1. a configured schemas file (``tools.schemas_file``) whose list hashes to the run's toolset_hash;
2. for sim runs (``tools.from_sim``), the goal family's tools, again only on a hash match;
3. the schemas the run's model calls recorded (``llm.tools``, what ``Recorder.llm_call(tools=...)``
   writes) when a recorded list hashes to the run's toolset_hash (source ``recorded``);
4. per tool name: the configured schema of that name, else the recorded one, else one inferred from
   the arguments the run actually passed (types of the values; successful calls preferred). The
   source is ``schemas_file`` when the file held every name, ``recorded`` when the file and the
   recorded lists held every name, else ``inferred``.

Schemas are in the OpenAI/transformers function format ``{"type": "function", "function": {...}}``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tracebridge.export.config import ToolsConfig
from tracebridge.schema.canonical import sha256_json

log = logging.getLogger(__name__)
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"))


def _name(schema: dict[str, Any]) -> str | None:
    f = schema.get("function", schema)
    return f.get("name") if isinstance(f, dict) else None


def _json_type(v: Any) -> str:
    for t, name in _JSON_TYPES:
        if isinstance(v, t):
            return name
    return "string"


def infer_schema(name: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """A function schema from observed argument objects (keys present in every call are required)."""
    props: dict[str, dict[str, str]] = {}
    keys = [set(c) for c in calls]
    for c in calls:
        for k, v in c.items():
            props.setdefault(k, {"type": _json_type(v)})
    required = sorted(set.intersection(*keys)) if keys else []
    return {"type": "function", "function": {"name": name, "description": f"{name} (schema inferred from traces)",
                                             "parameters": {"type": "object", "properties": props,
                                                            "required": required}}}


def run_tool_names(events: list[dict[str, Any]]) -> list[str]:
    """Tools offered in a run: planner tool masks and worker allowed tools, in first-seen order."""
    seen: dict[str, None] = {}
    for e in events:
        p = e.get("payload") if isinstance(e.get("payload"), dict) else {}
        for key in ("tool_mask", "allowed_tools"):
            for t in p.get(key) or []:
                if isinstance(t, str):
                    seen.setdefault(t, None)
    return list(seen)


def _observed_args(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    ok_calls: set[str] = set()
    for e in events:
        p = e.get("payload") or {}
        if e.get("event_type") == "worker_tool_result" and isinstance(p, dict) and p.get("ok"):
            ok_calls.add(str(p.get("call_id")))
    good: dict[str, list[dict[str, Any]]] = {}
    anyc: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        p = e.get("payload") or {}
        if e.get("event_type") == "worker_tool_call" and isinstance(p, dict) and isinstance(p.get("args"), dict):
            anyc.setdefault(str(p.get("tool")), []).append(p["args"])
            if str(p.get("call_id")) in ok_calls:
                good.setdefault(str(p.get("tool")), []).append(p["args"])
    return {t: good.get(t) or calls for t, calls in anyc.items()}


class ToolRegistry:
    """Finds the tool schemas of a run (see the module docstring for the order)."""

    def __init__(self, cfg: ToolsConfig | None = None) -> None:
        self.cfg = cfg or ToolsConfig()
        self._by_hash: dict[str, list[dict[str, Any]]] = {}
        self._by_name: dict[str, dict[str, Any]] = {}
        self._sim_tried: set[str] = set()
        if self.cfg.schemas_file:
            self._load(Path(self.cfg.schemas_file))

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"tools.schemas_file={path}: cannot read a JSON list of tool schemas: {exc}") from exc
        lists = data if isinstance(data, list) and data and isinstance(data[0], list) else [data]
        for k, schemas in enumerate(lists):  # a dict or a list of names ended the export with a KeyError
            where = f"[{k}]" if lists is data else ""
            if not isinstance(schemas, list):
                why = (f"tools.schemas_file={path}{where}: a {type(schemas).__name__}, not a JSON list of tool schemas "
                       '([{"type": "function", "function": {"name": ..., "parameters": ...}}])')
                raise ValueError(why)  # noqa: TRY004 - bad input: the CLI's config error (exit 2)
            bad = next((j for j, x in enumerate(schemas) if not isinstance(x, dict)), None)
            if bad is not None:
                raise ValueError(f"tools.schemas_file={path}{where}[{bad}]: {json.dumps(schemas[bad])[:80]} is no tool "
                                 'schema; expected an object {"type": "function", "function": {"name": ..., ...}}')
            self._by_hash[sha256_json(schemas)] = schemas
            for s in schemas:
                if _name(s):
                    self._by_name[str(_name(s))] = s

    def _sim_family(self, family: str, toolset_hash: str) -> None:
        if family in self._sim_tried:
            return
        self._sim_tried.add(family)
        try:
            from tracebridge.sim.families import get_family

            schemas = [t.schema() for t in get_family(family).tools()]
        except (ImportError, KeyError) as exc:
            log.info("no sim tool schemas for family %s: %s", family, exc)
            return
        h = sha256_json(schemas)
        self._by_hash.setdefault(h, schemas)
        if h != toolset_hash:
            log.info("sim family %s tools hash %s != run toolset_hash %s", family, h[:12], toolset_hash[:12])

    def for_run(self, session: dict[str, Any], events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """The run's tool schemas and where they came from: ``toolset_hash`` (a list that hashes to the
        run's), ``schemas_file`` (each tool's schema by name from ``tools.schemas_file``) or ``inferred``
        (at least one made up from the arguments)."""
        h = str(((session.get("hashes") or {}).get("toolset_hash")) or "")
        if h not in self._by_hash and self.cfg.from_sim and (session.get("source") or {}).get("kind") == "sim":
            self._sim_family(str((session.get("goal") or {}).get("family")), h)
        if h in self._by_hash:
            return self._by_hash[h], "toolset_hash"
        recorded = _recorded_toolsets(events)
        if h in recorded:
            return recorded[h], "recorded"
        by_name = {str(_name(s)): s for schemas in recorded.values() for s in schemas if _name(s)}
        by_name.update(self._by_name)  # the configured file wins over what a call recorded
        observed = _observed_args(events)
        names = run_tool_names(events) or sorted(observed)
        source = "schemas_file" if names and all(n in self._by_name for n in names) else \
            "recorded" if names and all(n in by_name for n in names) else "inferred"
        return [by_name.get(n) or infer_schema(n, observed.get(n, [])) for n in names], source


def _recorded_toolsets(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tool schemas a run's model calls recorded (``llm.tools``), by the hash of each list."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        tools = (e.get("llm") or {}).get("tools") if isinstance(e.get("llm"), dict) else None
        if isinstance(tools, list) and tools and all(isinstance(t, dict) for t in tools):
            out.setdefault(sha256_json(tools), tools)
    return out
