"""Canonical JSON, content hashes and the schema's timestamp format.

Hashes are sha256 over canonical JSON (sorted keys, no whitespace, UTF-8), so the same
content hashes the same on every machine and Python version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

import orjson

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_none=False)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")  # bytes that are not UTF-8 kept as \\xNN escapes, not lost to U+FFFD
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` to canonical JSON bytes (sorted keys, compact)."""
    return orjson.dumps(obj, option=_OPTS, default=_default)


def canonical_line(obj: Any) -> bytes:
    """``canonical_json(obj)`` and a newline, in one serialisation (no copy of the line to add it)."""
    return orjson.dumps(obj, option=_OPTS | orjson.OPT_APPEND_NEWLINE, default=_default)


def sha256_json(obj: Any) -> str:
    """sha256 hex digest of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def sha256_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def library_versions(names: tuple[str, ...]) -> bytes:
    """Canonical JSON of ``{distribution: installed version or "-"}``, for cache keys that must
    change when a library that shapes the output does."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return canonical_json(out)


def format_ts(t: dt.datetime) -> str:
    """Format an aware or naive-UTC datetime as the schema's ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_SECOND: tuple[int, str] = (-1, "")  # the last whole second utc_now formatted, and its text up to the '.'
_MILLI: tuple[int, str] = (-1, "")  # the last millisecond utc_now formatted, and its whole text


def utc_now() -> str:
    """Now, in the schema's timestamp format (``format_ts`` of the UTC clock). The recorder stamps every
    event with it: the text up to the second is formatted once a second (``strftime`` costs ~3 µs, a
    sixth of an event's capture budget), the whole text once a millisecond (a busy recorder writes
    dozens of events in one; formatting them cost ~0.4 µs each)."""
    global _SECOND, _MILLI
    ms = time.time_ns() // 1_000_000  # whole milliseconds, floored as format_ts floors microseconds
    last = _MILLI
    if last[0] == ms:
        return last[1]
    sec, frac = divmod(ms, 1000)
    prefix = _SECOND
    if prefix[0] != sec:
        prefix = _SECOND = (sec, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)))
    text = f"{prefix[1]}{frac:03d}Z"
    _MILLI = (ms, text)
    return text


def ts_from_epoch_ms(ms: float) -> str:
    """Epoch milliseconds in the schema's timestamp format (UTC)."""
    return format_ts(dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC))
