"""Why the recorder could not record something, in words that name the field and its value.

Only the recorder's failure path calls these (an event or argument already refused), so they may walk
a whole record: ``json_problem`` finds the value JSON cannot hold and its path
(``env_observation.payload.observation.when``), ``validation_text`` turns a pydantic error into one line per
bad field, ``overlong_text`` says which field made a line too long for the reader. Pure; no I/O.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from tracebridge.schema.canonical import canonical_json
from tracebridge.schema.events import EVENT_TYPES


class LineTooLong(ValueError):
    """An event's line is longer than the reader takes (``event_problem`` says which field made it so)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"event line of {size} bytes is longer than {limit}")
        self.size, self.limit = size, limit


_DEPTH = 254  # orjson refuses to nest deeper ("Recursion limit reached")


def _leaf_problem(value: Any) -> str | None:
    """Why JSON cannot hold ``value`` itself (its items aside), or None. A str always can: the recorder
    escapes the lone surrogates JSON cannot hold."""
    if isinstance(value, str):
        return None
    try:
        canonical_json(value)
    except (TypeError, PydanticSerializationError) as exc:
        if isinstance(value, int):
            return f"int {value} is outside JSON's 64-bit integer range (write it as a str)"
        if isinstance(value, BaseModel):
            return f"{type(value).__name__} (a pydantic model) cannot be dumped: {exc}"
        return f"{type(value).__name__} is not JSON: {_show(value)} (convert it to a str, number, list or dict)"
    return None


def json_problem(value: Any, path: str, _seen: frozenset[int] = frozenset()) -> str | None:
    """The first value under ``value`` that JSON cannot hold, as ``path.to.it: why``, or None.

    Dict keys, sets (in the order ``canonical_json`` writes them), a value that contains itself and nesting
    deeper than JSON writers go are named too.
    """
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if id(value) in _seen:
            return f"{path}: {type(value).__name__} contains itself (a cycle JSON cannot hold)"
        if len(_seen) >= _DEPTH:
            where = path if len(path) <= 120 else f"{path[:80]}...{path[-30:]}"
            return f"{where}: nested deeper than {_DEPTH} levels (JSON writers stop there)"
        seen = _seen | {id(value)}
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str) and _leaf_problem({k: None}) is not None:
                    return f"{path}: key {type(k).__name__} {_show(k)} is not a str, int, float or bool"
                if (p := json_problem(v, f"{path}.{k}", seen)) is not None:
                    return p
            return None
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return next((p for i, v in enumerate(items) if (p := json_problem(v, f"{path}[{i}]", seen))), None)
    why = _leaf_problem(value)
    return None if why is None else f"{path}: {why}"


def validation_text(exc: ValidationError, name: str = "") -> str:
    """Every field ``exc`` refuses, ``name.path: message (got value)``, joined by ``"; "``. A tagged union's
    tag (an event's type) is named as the ``event_type`` field, as ``tracebridge validate`` names it."""
    out = []
    for e in exc.errors():
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            tag = (e.get("ctx") or {}).get("tag")
            got = e["input"].get("event_type", tag) if isinstance(e["input"], dict) else tag
            out.append(f"event_type: {type(got).__name__} {_show(got)} is not an event type; expected one of "
                       f"{', '.join(EVENT_TYPES)}")
            continue
        where = ".".join([name, *map(str, e["loc"])] if name else map(str, e["loc"]))
        out.append(f"{where}: {e['msg']} (got {_show(e['input'])})")
    return "; ".join(out)


def overlong_text(record: dict[str, Any], size: int, limit: int) -> str:
    """Why an event whose line is ``size`` bytes is not written: the reader skips lines over ``limit``."""
    sizes = []
    for block in ("payload", "llm", "labels"):
        value = record.get(block)
        for k, v in (value.items() if isinstance(value, dict) else ()):
            try:
                sizes.append((len(canonical_json(v)), f"{block}.{k}"))
            except (TypeError, orjson.JSONEncodeError):
                continue
    big = f"; largest field {max(sizes)[1]} ({max(sizes)[0]} bytes)" if sizes else ""
    return (f"event line of {size} bytes is longer than the reader's MAX_LINE_BYTES={limit} "
            f"(tracebridge.capture.reader: it would skip the line){big}; store large content in a file and "
            f"record its path")


def event_problem(exc: BaseException, record: dict[str, Any] | None) -> str:
    """Why an event (``record``, None when it failed before it was built) was not written: the fields the schema
    refuses (``exc`` a ``ValidationError``), the value JSON cannot hold (a ``TypeError``), the field that made
    its line too long (``LineTooLong``), or ``exc`` itself."""
    if isinstance(exc, LineTooLong) and record is not None:
        return overlong_text(record, exc.size, exc.limit)
    if isinstance(exc, ValidationError):
        return validation_text(exc)
    if isinstance(exc, TypeError) and isinstance(record, dict):
        found = (json_problem(record.get(block), f"{record.get('event_type')}.{block}")
                 for block in ("payload", "llm", "labels", "step", "role", "event_type"))
        return next((p for p in found if p), None) or f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def open_problem(exc: OSError, run_dir: Path) -> str:
    """Why a run's folder could not be made, with what to do about it."""
    if exc.errno == errno.EEXIST:
        return (f"run folder {run_dir} exists already: another recorder has (or had) run_id {run_dir.name!r}, and a run "
                f"is never shared or reopened; use a new run_id (None makes one)")
    if exc.errno == errno.ENOTDIR:
        return f"cannot create the run folder {run_dir}: a path above it is a file, not a folder (trace root {run_dir.parent})"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot create the run folder {run_dir}: the trace root {run_dir.parent} is not writable ({exc.strerror})"
    return f"cannot create the run folder {run_dir}: {exc}"


def _show(value: Any) -> str:
    """``repr(value)`` cut to 80 characters (a payload may be megabytes)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the problem
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."
