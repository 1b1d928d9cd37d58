"""What a recorder writes besides the events' own payloads: the goal block of session.json, run
ids, the ``llm`` block of a model call, and an exception's message as an ``episode_error`` holds it; the
checks of a ``Recorder``'s arguments (root, run id, labels and the session blocks) and its errors.
Pure functions: ``Recorder`` adds the locking and the fail-open counting around them."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from tracebridge.capture.problems import json_problem, validation_text
from tracebridge.schema.canonical import canonical_json, canonical_line, sha256_json
from tracebridge.schema.events import PAYLOADS, Usage
from tracebridge.schema.session import (
    Goal,
    Hashes,
    ModelStack,
    RuntimeConfig,
    Source,
)


def make_goal(text: str, family: str = "unknown") -> Goal:
    """Build a ``Goal`` whose hash ignores case and whitespace differences."""
    return Goal(text=text, family=family, goal_hash=goal_hash(text, family))


def goal_hash(text: str, family: str = "unknown") -> str:
    """A goal's ``goal_hash``: sha256 of its family and its text lower-cased, whitespace runs as
    one space. Apart from ``make_goal`` for importers that write the goal block as a dict (a
    ``Goal`` model per imported session cost the OpenClaw import ~1% of its time)."""
    # str.split() splits on the runs a ``\s+`` regex matches (both are Py_UNICODE_ISSPACE) and drops
    # the ends: the text re.sub(r"\s+", " ", text.strip().lower()) gave (checked for every code
    # point), ~5x faster.
    return sha256_json({"family": family, "text": " ".join(text.lower().split())})


def new_run_id() -> str:
    """Time-sortable, unique run id: ``YYYYmmddTHHMMSS-<16 hex>`` (64 random bits after the second).

    Ids made before had 8 hex digits (32 bits): runs a fleet starts in one second collided with even odds
    at ~77k of them (the birthday bound), and a collision puts two runs in one folder. Those ids are still
    read and validated: a run id is any name ``run_id_argument`` accepts, never parsed."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(8)


def run_id_argument(run_id: Any) -> str:
    """A ``Recorder``'s run id: ``run_id``, or a new one (``new_run_id``) when it is None or empty.

    Raises:
        RecorderArgumentError: ``run_id`` is not a str (the folder's name, and every event id is made of it),
            or not one folder name the readers list: a path separator, ``.``/``..``, a leading dot (readers
            skip hidden folders), a control character, lone surrogates, or more than 255 bytes.
    """
    if run_id is None or run_id == "":
        return new_run_id()
    if not isinstance(run_id, str):
        raise RecorderArgumentError(f"Recorder(run_id=...): {type(run_id).__name__} {run_id!r:.60} is not a str; "
                                    f"expected a str such as {new_run_id()!r}, or None for a new one")
    why = _run_id_problem(run_id)
    if why:
        raise RecorderArgumentError(f"Recorder(run_id={run_id!r:.80}): {why}; the run is the folder <root>/<run_id>: "
                                    f"expected one folder name such as {new_run_id()!r}, or None for a new one")
    return run_id


def _run_id_problem(run_id: str) -> str | None:
    """Why ``run_id`` cannot name a run's folder, or None."""
    if any(sep in run_id for sep in ("/", "\\", os.sep, os.altsep or "/")):
        return "holds a path separator (the run would be written outside its trace root, or under a folder no reader lists)"
    if run_id in (".", ".."):
        return "names the trace root or its parent, not a folder of its own"
    if run_id.startswith("."):
        return "starts with '.': readers skip hidden folders, so the run would never be read"
    if any(ord(c) < 32 or ord(c) == 127 for c in run_id):
        return "holds a control character"
    try:
        size = len(run_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "holds lone surrogates (undecodable bytes), which JSON cannot hold"
    return f"is {size} bytes long; a folder name holds at most 255" if size > 255 else None


def root_argument(root: Any) -> Path:
    """A ``Recorder``'s trace root as a ``Path``.

    Raises:
        RecorderArgumentError: ``root`` is not a path (a str or ``os.PathLike``), or is empty.
    """
    if not isinstance(root, (str, os.PathLike)) or root == "":
        raise RecorderArgumentError(f"Recorder(root=...): {type(root).__name__} {root!r:.60} is not a path; expected "
                                    f"the trace root folder as a str or Path, e.g. 'traces'")
    return Path(root)


def labels_argument(labels: Any) -> dict[str, Any]:
    """A ``Recorder``'s run labels as a new dict, checked here so that session.json can always be written.

    Raises:
        RecorderArgumentError: ``labels`` is not a dict with str keys, or holds a value JSON cannot hold.
    """
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise RecorderArgumentError(f"Recorder(labels=...): {type(labels).__name__} {labels!r:.60} is not a dict; "
                                    f"expected {_SHAPES['labels']}")
    bad = next((f"labels: key {type(k).__name__} {k!r:.40} is not a str" for k in labels if not isinstance(k, str)),
               None) or json_problem(labels, "labels")
    if bad:
        raise RecorderArgumentError(f"Recorder(labels=...): {bad}; expected {_SHAPES['labels']}")
    return dict(labels)


def llm_block(model: str, prompt: Any, *, params: dict[str, Any] | None = None, tools: Any = None,
              response: str | None = None, usage: Usage | dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``llm`` block of one model call, with prompt/config/toolset hashes.

    Raises:
        TypeError, ValueError: an argument JSON cannot hold, ``params`` or ``usage`` not a mapping.
    """
    rendered = prompt if isinstance(prompt, str) else canonical_json(prompt).decode()
    params = dict(params or {})
    return {
        "model": model,
        "rendered_prompt": rendered,
        "prompt_hash": sha256_json(prompt),
        "config_hash": sha256_json({"model": model, "params": params}),
        "toolset_hash": sha256_json(tools) if tools is not None else None,
        "params": params,
        "response": response,
        "usage": usage.model_dump() if isinstance(usage, BaseModel) else dict(usage or {}),
    }


_OPENAI_USAGE = {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"}
_OPENAI_ONLY = ("total_tokens", "prompt_tokens_details", "completion_tokens_details")  # sums and breakdowns


def usage_argument(usage: Any) -> Any:
    """``Recorder.llm_call``'s ``usage``, checked as the schema's ``Usage`` (strict, as a file is read) with
    OpenAI's keys mapped to ours (``prompt_tokens`` → ``input_tokens``, ``completion_tokens`` →
    ``output_tokens``; ``total_tokens`` and the ``*_details`` breakdowns left out). A valid dict is returned
    as given (or mapped), a ``Usage`` as is, an OpenAI usage model as its mapped dump.

    Raises:
        TypeError, ValueError: ``usage`` is not a mapping, or holds a value ``Usage`` refuses.
    """
    if usage is None or isinstance(usage, Usage):
        return usage
    if isinstance(usage, BaseModel):  # openai's CompletionUsage
        usage = usage.model_dump()
    if not isinstance(usage, dict):
        raise TypeError(f"llm_call(usage=...): {type(usage).__name__} is not a mapping")
    if any(k in usage for k in (*_OPENAI_USAGE, *_OPENAI_ONLY)):
        mapped = {_OPENAI_USAGE.get(k, k): v for k, v in usage.items() if k not in _OPENAI_ONLY}
        if len(mapped) + sum(k in usage for k in _OPENAI_ONLY) < len(usage):
            raise ValueError(f"llm_call(usage=...): both OpenAI's and our names for one count: {sorted(usage)}")
        usage = mapped
    Usage.model_validate(usage, strict=True)
    return usage


def escape_surrogates(obj: Any) -> Any:
    """``obj`` with lone surrogates in its strings (and keys) escaped as ``\\udcff``: what Python
    decodes with ``surrogateescape`` (``os.listdir``, a subprocess's output, undecodable file names),
    which JSON cannot hold. Dicts, lists and tuples are rebuilt; sets, dataclasses and pydantic models
    as the lists and dicts ``canonical_json`` writes for them (a set of file names dropped the event);
    any other value is returned as is."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode()
    if isinstance(obj, dict):
        return {escape_surrogates(k): escape_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [escape_surrogates(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [escape_surrogates(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, BaseModel):
        return escape_surrogates(obj.model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return escape_surrogates({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    return obj


def exception_message(exc: BaseException) -> str:
    """``str(exc)``, cut to the schema's size, or a stand-in when the exception cannot say. Lone
    surrogates (undecodable bytes in an OSError's path) are escaped: JSON cannot hold them."""
    try:
        return str(exc)[:2000].encode("utf-8", "backslashreplace").decode()
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the agent's exception
        return f"<{type(exc).__name__}: message unavailable>"


def payload_types() -> list[str]:
    """The event types a recorder accepts."""
    return list(PAYLOADS)


def as_model(cls: type[BaseModel], value: Any) -> Any:
    """``value`` as a ``cls`` (validated from a dict unless it is one already)."""
    return value if isinstance(value, cls) else cls.model_validate(value)


@dataclass(slots=True)
class CaptureCounts:
    """The recorder's running ``capture`` counts (``CaptureStats`` fields): plain attributes, because a
    pydantic model's ``+=`` costs ~0.4 µs (its ``__setattr__``) and emit counts on every event."""

    events_written: int = 0
    events_dropped: int = 0
    errors: int = 0
    nonfinite_values: int = 0


def json_line(record: dict[str, Any], newline: bool = False) -> bytes:
    """The record's JSON line (ending in a newline when ``newline``); strings with lone surrogates
    (undecodable bytes a tool passed on) are written escaped rather than losing the event."""
    dump = canonical_line if newline else canonical_json
    try:
        return dump(record)
    except orjson.JSONEncodeError as exc:
        if "surrogates" not in str(exc):
            raise
        return dump(escape_surrogates(record))


def nonfinite_as_strings(obj: Any) -> tuple[Any, int]:
    """``obj`` with every float JSON cannot hold (NaN, +-inf, numpy's too) as the string ``"NaN"``,
    ``"Infinity"`` or ``"-Infinity"`` (what ``float()`` reads back), and how many there were. JSON writers
    put ``null`` in their place, losing the value without a trace. Dicts, lists, tuples, sets, numpy
    arrays, pydantic models and dataclasses holding one are rebuilt (sets as lists, in ``canonical_json``'s
    order; models and dataclasses as the dicts ``canonical_json`` writes for them); anything else is
    returned as is."""
    if isinstance(obj, float):  # numpy's float64 too (a float subclass, whose repr is 'np.float64(nan)')
        if math.isfinite(obj):
            return obj, 0
        return ("NaN" if math.isnan(obj) else "Infinity" if obj > 0 else "-Infinity"), 1
    if isinstance(obj, dict):
        items = [(k, *nonfinite_as_strings(v)) for k, v in obj.items()]
        n = sum(m for _, _, m in items)
        return ({k: v for k, v, _ in items}, n) if n else (obj, 0)
    if isinstance(obj, (list, tuple, set, frozenset)):
        seq = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        pairs = [nonfinite_as_strings(v) for v in seq]
        n = sum(m for _, m in pairs)
        return ([v for v, _ in pairs], n) if n else (obj, 0)
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):  # a numpy scalar or array: orjson nulls them too
        out, n = nonfinite_as_strings(obj.tolist())
    elif isinstance(obj, BaseModel):  # canonical_json dumps it in JSON mode, which writes null
        out, n = nonfinite_as_strings(to_jsonable_python(obj, inf_nan_mode="constants"))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # orjson writes its fields, NaN as null
        out, n = nonfinite_as_strings({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    else:
        return obj, 0
    return (out, n) if n else (obj, 0)


def plain(value: Any) -> Any:
    """A payload or ``llm`` block as plain data: a pydantic model dumped with its NaN and infinite floats
    kept (its own JSON dump writes them as null), other values as they are."""
    if type(value) is dict:  # the common case, ~0.1 µs before isinstance's ABC check
        return value
    if isinstance(value, BaseModel):
        return to_jsonable_python(value.model_dump(), inf_nan_mode="constants")
    return value


_NULL = re.compile(rb"null").search  # ~1.7x faster here than ``b"null" in line``


def event_line(record: dict[str, Any]) -> tuple[bytes, int]:
    """``json_line(record, newline=True)`` with the floats JSON cannot hold written as strings
    (``nonfinite_as_strings``), and their count. Only a line with a ``null`` in it is searched: where
    one stood, the writer put it."""
    line = json_line(record, newline=True)
    if _NULL(line) is None:
        return line, 0
    fixed, n = nonfinite_as_strings(record)
    return (json_line(fixed, newline=True), n) if n else (line, 0)


def redacted(redactor: Any, record: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``record`` redacted by ``redactor`` (a ``RedactionHook``), and how many NaN/infinite floats were made strings
    on the way (``event_line`` then no longer sees them as floats: the caller adds them to its count)."""
    try:
        return redactor.redact(record), 0
    except TypeError:  # a value only canonical_json knows (set, bytes, numpy, a model), a lone surrogate: its
        fixed, n = nonfinite_as_strings(record)  # JSON form, NaN kept as "NaN" (a JSON round trip nulls it)
        return redactor.redact(orjson.loads(json_line(fixed))), n


def run_goal(goal: Goal | dict[str, Any] | str) -> Goal:
    """The run's goal; a text or a ``{text, family}`` dict gets its ``goal_hash`` from ``make_goal``."""
    goal = escape_surrogates(goal)  # a goal from argv or a file name: JSON (and the hash) cannot hold surrogates
    if isinstance(goal, str):
        return make_goal(goal)
    if isinstance(goal, dict) and "goal_hash" not in goal and isinstance(goal.get("text"), str):
        goal = {**goal, "goal_hash": make_goal(goal["text"], goal.get("family") or "unknown").goal_hash}
    return as_model(Goal, goal)


def call_block(model: str, prompt: Any, *, params: dict[str, Any] | None, tools: Any, response: str | None,
               usage: Usage | dict[str, Any] | None, recorded: set[str]) -> dict[str, Any]:
    """``llm_block`` for ``Recorder.llm_call``: a prompt, response, params or tools holding undecodable bytes are
    escaped (the call is kept; params or tools holding them lost the whole block), and the tool schemas themselves
    go in (``tools``) unless a block already written in the run holds that toolset (``recorded``: its toolset hashes)."""
    try:
        block = llm_block(model, prompt, params=params, tools=tools, response=response, usage=usage)
    except orjson.JSONEncodeError as exc:
        if "surrogates" not in str(exc):
            raise
        prompt, params, tools, response = map(escape_surrogates, (prompt, params, tools, response))
        block = llm_block(model, prompt, params=params, tools=tools, response=response, usage=usage)
    if isinstance(tools, list) and tools and all(isinstance(t, dict) for t in tools) and \
            block["toolset_hash"] not in recorded:
        block["tools"] = tools
    return block


class RecorderArgumentError(ValueError):
    """A ``Recorder`` argument no valid session.json can hold (a ``model_stack`` without a role, a value JSON
    cannot hold). Raised at construction, before the agent runs: capture fails open only once the run is
    set up, and a run set up from such an argument could only end as a run the export quarantines."""


class RedactionHook(Protocol):
    """Applied to every record before it is written (pass 1 of the two redaction passes)."""

    policy: str

    def redact(self, record: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``record`` (the record itself when nothing was found)."""

    def findings(self, scope: str | None = None) -> dict[str, int]:
        """Counts of what was redacted in run ``scope`` (records are scoped by their ``run_id``), by placeholder
        type (the session's ``findings``). A hook without ``scope`` serves one run."""


class CaptureError(RuntimeError):
    """Raised by a strict-mode recorder when capture fails (its message names the field and value)."""


_SHAPES = {"model_stack": '{"planner": {"model": str, "params": {...}}, "worker": {...}, "verifier": {...}} '
                          '(all three roles; an agent without one names it, e.g. {"model": "none"})',
           "runtime_config": '{"max_steps": int >= 1, ...}', "source": '{"kind": "runtime", "ref": ...}',
           "goal": 'a text, {"text": str, "family": str} or a Goal', "tools": "JSON-able tool schemas",
           "prompts": "JSON-able prompt templates or sources",
           "labels": 'a dict of str keys to JSON-able values, e.g. {"dataset": "csv-v2"}'}


def _argument(name: str, value: Any, build: Any) -> Any:
    """``build(value)``, checked: every field it refuses, or a value JSON cannot hold, as one
    ``RecorderArgumentError`` that names the argument, the field and the shape expected."""
    try:
        model = build(value)
        canonical_json(model)
        return model
    except ValidationError as exc:
        where = validation_text(exc, name)
    except (TypeError, PydanticSerializationError):
        where = json_problem(value.model_dump() if isinstance(value, BaseModel) else value, name) or f"{name}: not JSON"
    raise RecorderArgumentError(f"Recorder({name}=...): {where}; expected {_SHAPES[name]}")


def recorder_arguments(goal: Any, model_stack: Any, runtime_config: Any, source: Any, tools: Any,
                       prompts: Any) -> tuple[Goal, ModelStack, RuntimeConfig, Source, Hashes]:
    """A ``Recorder``'s session blocks from its arguments, with the config, prompt and toolset hashes.

    Raises:
        RecorderArgumentError: an argument a valid session.json cannot hold (every problem of it, by field).
    """
    stack = _argument("model_stack", model_stack, lambda v: as_model(ModelStack, v))
    config = _argument("runtime_config", runtime_config, lambda v: as_model(RuntimeConfig, v))
    hashes = Hashes(config_hash=sha256_json({"model_stack": stack, "runtime_config": config}),
                    prompt_hash=_argument("prompts", prompts if prompts is not None else {}, sha256_json),
                    toolset_hash=_argument("tools", tools if tools is not None else [], sha256_json))
    return (_argument("goal", goal, run_goal), stack, config,
            _argument("source", source or {"kind": "runtime"}, lambda v: as_model(Source, v)), hashes)
