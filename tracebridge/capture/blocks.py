"""What a recorder writes besides the events' own payloads: the goal block of session.json, run
ids, the ``llm`` block of a model call, and an exception's message as an ``episode_error`` holds it.
Pure functions: ``Recorder`` adds the locking and the fail-open counting around them."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from pydantic import BaseModel

from tracebridge.schema.canonical import canonical_json, sha256_json
from tracebridge.schema.events import PAYLOADS, Usage
from tracebridge.schema.session import DataGovernance, Goal, RedactionPass


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
    """Time-sortable, unique run id: ``YYYYmmddTHHMMSS-<8 hex>``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


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


def escape_surrogates(obj: Any) -> Any:
    """``obj`` with lone surrogates in its strings (and keys) escaped as ``\\udcff``: what Python
    decodes with ``surrogateescape`` (``os.listdir``, a subprocess's output, undecodable file names),
    which JSON cannot hold. Dicts, lists and tuples are rebuilt; any other value is returned as is."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode()
    if isinstance(obj, dict):
        return {escape_surrogates(k): escape_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [escape_surrogates(v) for v in obj]
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


def json_line(record: dict[str, Any]) -> bytes:
    """The record's JSON line; strings with lone surrogates (undecodable bytes a tool passed on) are
    written escaped rather than losing the event."""
    try:
        return canonical_json(record)
    except orjson.JSONEncodeError as exc:
        if "surrogates" not in str(exc):
            raise
        return canonical_json(escape_surrogates(record))


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
    """``llm_block`` for ``Recorder.llm_call``: a prompt or response holding undecodable bytes is escaped
    (the call is kept), and the tool schemas themselves go in (``tools``) unless a block already written
    in the run holds that toolset (``recorded``: its toolset hashes)."""
    try:
        block = llm_block(model, prompt, params=params, tools=tools, response=response, usage=usage)
    except orjson.JSONEncodeError as exc:
        if "surrogates" not in str(exc):
            raise
        block = llm_block(model, escape_surrogates(prompt), params=params, tools=tools,
                          response=escape_surrogates(response), usage=usage)
    if isinstance(tools, list) and tools and all(isinstance(t, dict) for t in tools) and \
            block["toolset_hash"] not in recorded:
        block["tools"] = tools
    return block


def capture_governance(redactor: Any) -> DataGovernance:
    """session.json's ``data_governance`` for a run recorded with ``redactor`` (a ``RedactionHook``, or None:
    nothing scanned at capture)."""
    if redactor is None:
        return DataGovernance()
    found = redactor.findings()
    return DataGovernance(redaction_policy=redactor.policy, pii_scan="findings" if any(found.values()) else "clean",
                          passes=[RedactionPass(stage="capture", policy=redactor.policy, findings=found)])
