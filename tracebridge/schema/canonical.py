"""Canonical JSON, content hashes and the schema's timestamp format.

Hashes are sha256 over canonical JSON (sorted keys, no whitespace, UTF-8), so the same
content hashes the same on every machine and Python version.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import math
import os
import time
from typing import Any

import orjson

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


BYTES_B64 = "$bytes_b64:"  # the prefix of binary data that is no UTF-8 text, base64 after it (RFC 4648)
_INT64 = 2**63


def decimal_value(d: decimal.Decimal) -> int | float | str:
    """A ``Decimal`` as JSON holds it without loss: an int when written without a fractional part and within
    64 bits; a float when finite and the float reads back as the same number (``12.30`` is written ``12.3``);
    else its text (``"0.1000000000000000055511151231257827"``, ``"1E+400"``, ``"NaN"``, ``"Infinity"``), which
    ``decimal.Decimal(text)`` reads back exactly."""
    if d.is_finite():
        exp = d.as_tuple().exponent
        if isinstance(exp, int) and exp >= 0 and -_INT64 <= d < _INT64:
            return int(d)
        f = float(d)
        if math.isfinite(f) and decimal.Decimal(repr(f)) == d:
            return f
    return str(d)


def binary_value(data: bytes | bytearray | memoryview) -> str:
    """Binary data as JSON text: the text itself when it is UTF-8, else ``BYTES_B64`` + its base64 (a string, so a
    field the schema types as text still takes it; the bytes are ``base64.b64decode(s[len(BYTES_B64):])``)."""
    raw = bytes(data)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BYTES_B64 + base64.b64encode(raw).decode("ascii")


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_none=False)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, (bytes, bytearray, memoryview)):  # bytearray, memoryview (psycopg's bytea) were refused
        return binary_value(obj)
    if isinstance(obj, decimal.Decimal):  # SQL drivers' NUMERIC: was refused, and the event with it
        return decimal_value(obj)
    if isinstance(obj, os.PathLike):  # a tool's file (pathlib.Path): was refused, and the event with it
        path = os.fspath(obj)  # its text; lone surrogates (undecodable bytes) escaped, as the recorder escapes a str's
        return binary_value(path) if isinstance(path, bytes) else path.encode("utf-8", "backslashreplace").decode()
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
