"""Malformed-input generators: mutate valid JSONL lines into the ways real files go wrong.

Each mutation takes a valid line (bytes) and a ``random.Random`` and returns bad bytes: truncated
JSON, wrong types, unknown types, huge strings, deep nesting, invalid UTF-8, BOMs, CRLF, duplicated
ids, parent cycles, out-of-order timestamps. Used by tests (small samples) and chaos scripts
(tens of thousands of cases).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson


def as_object(line: bytes) -> dict:
    """The line parsed as a JSON object; {} if it is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def truncate(line: bytes, rng: random.Random) -> bytes:
    """The line cut at a random point (torn JSON)."""
    return line[: rng.randint(1, max(1, len(line) - 1))]


def wrong_type(line: bytes, rng: random.Random) -> bytes:
    """One top-level field of the object set to a random-typed value (``[]`` for a non-object)."""
    obj = as_object(line)
    if not obj:
        return b"[]"
    key = rng.choice(sorted(obj))
    obj[key] = rng.choice([None, 12345, "text", [1, 2], {"nested": True}, 1.5, False])
    return orjson.dumps(obj)


def unknown_type(line: bytes, rng: random.Random) -> bytes:
    """The object with ``event_type``/``type`` set to an unknown value, plus an unknown field."""
    obj = as_object(line)
    for key in ("event_type", "type"):
        if key in obj:
            obj[key] = rng.choice(["brand_new_type", "", "EPISODE_END", 7])
    obj[f"x_unknown_{rng.randint(0, 99)}"] = "drift"
    return orjson.dumps(obj)


def huge_string(line: bytes, rng: random.Random) -> bytes:
    """The object with one field replaced by a string of 100,000 to 2,000,000 characters."""
    obj = as_object(line)
    obj[rng.choice(sorted(obj) or ["k"])] = "A" * rng.randint(100_000, 2_000_000)
    return orjson.dumps(obj)


def deep_nesting(line: bytes, rng: random.Random) -> bytes:
    """A ``payload`` nested 200 to 5000 objects deep (the line itself is not used)."""
    depth = rng.randint(200, 5000)
    return b'{"payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def invalid_utf8(line: bytes, rng: random.Random) -> bytes:
    """The line with an invalid UTF-8 sequence inserted at a random position."""
    pos = rng.randint(0, max(0, len(line) - 1))
    return line[:pos] + rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]) + line[pos:]


def bom(line: bytes, rng: random.Random) -> bytes:
    """The line with a UTF-8 byte-order mark in front."""
    return b"\xef\xbb\xbf" + line


def crlf(line: bytes, rng: random.Random) -> bytes:
    """The line with a trailing carriage return (a CRLF file's line)."""
    return line + b"\r"


def not_json(line: bytes, rng: random.Random) -> bytes:
    """A line that is not a JSON object: text, HTML, a JSON scalar or control bytes."""
    return rng.choice([b"hello world", b"<html>", b"}{", b"null", b"42", b'"str"', b"\x00\x01\x02"])


def duplicate_id(line: bytes, rng: random.Random) -> bytes:
    """The object with its ``event_id``/``id`` set to ``dup-0``."""
    obj = as_object(line)
    for key in ("event_id", "id"):
        if key in obj:
            obj[key] = "dup-0"
    return orjson.dumps(obj)


def parent_cycle(line: bytes, rng: random.Random) -> bytes:
    """The object with its ``parent_event_id``/``parentId`` set to its own id."""
    obj = as_object(line)
    for key in ("parent_event_id", "parentId"):
        if key in obj:
            obj[key] = obj.get("event_id", obj.get("id", "self"))
    return orjson.dumps(obj)


def timestamp_back(line: bytes, rng: random.Random) -> bytes:
    """The object with its ``timestamp`` set to a past, impossible or unparseable value."""
    obj = as_object(line)
    if "timestamp" in obj:
        obj["timestamp"] = rng.choice(["1999-01-01T00:00:00.000Z", "2026-13-45T99:99:99.000Z", "yesterday", 0])
    return orjson.dumps(obj)


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    f.__name__: f for f in (truncate, wrong_type, unknown_type, huge_string, deep_nesting, invalid_utf8,
                            bom, crlf, not_json, duplicate_id, parent_cycle, timestamp_back)
}


def mutate_lines(lines: list[bytes], rng: random.Random, n_bad: int,
                 mutations: dict[str, Callable[[bytes, random.Random], bytes]] = MUTATIONS,
                 ) -> tuple[list[bytes], set[int]]:
    """Insert ``n_bad`` mutated copies of random lines at random positions.

    Args:
        mutations: the table to draw from (a kind adds its own to ``MUTATIONS``).

    Returns the new line list and the 0-based indices of the mutated lines.
    """
    out = list(lines)
    bad_idx: list[int] = []
    for _ in range(n_bad):
        name = rng.choice(sorted(mutations))
        bad = mutations[name](rng.choice(lines), rng)
        pos = rng.randint(0, len(out))
        out.insert(pos, bad)
        bad_idx = [i + 1 if i >= pos else i for i in bad_idx] + [pos]
    return out, set(bad_idx)


def edit_event(run: Path, event_type: str, fn: Callable[[dict[str, Any]], Any]) -> int:
    """Hand-edit a run: apply ``fn`` to the first event of ``event_type`` in ``run/events.jsonl`` and
    write the file back; returns that event's line number."""
    path = run / "events.jsonl"
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if json.loads(line)["event_type"] == event_type)
    ev = json.loads(lines[i])
    fn(ev)
    lines[i] = json.dumps(ev)
    path.write_text("\n".join(lines) + "\n")
    return i + 1
