"""The fuzz driver: runs any fuzz kind case by case under a per-case time limit, plus the
mutations and case plumbing the kinds share (``tracebridge.testing.fuzz_inputs`` holds the
OpenClaw and Telegram kinds, ``scripts/chaos_fuzz.py`` the reader and config ones).

A kind builds a valid base once, then per case ``make`` mutates it (outside the time limit),
``feed`` calls the public entry point (inside it: an exception is a crash, running past the
limit a hang) and ``verify`` returns the broken promises as counts: ``unreconciled`` (read !=
accepted + quarantined), ``unlocated`` (a quarantined item without file:line:field) and
``lost`` (an item of the valid base, untouched by the mutation, that was not accepted) and,
for kinds that write runs, ``bad_lineage`` (a parent missing or later than its child, not one root).
Mutated lines are inserted as copies, so every base line stays in the file untouched.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import signal
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
OPENCLAW_BASE = (ROOT / "tests" / "data" / "openclaw" / "home" / ".openclaw" / "agents" / "main" / "sessions"
                 / "5f0c2d1e-6b7a-4c3d-9e8f-0a1b2c3d4e5f.jsonl")
BOM = b"\xef\xbb\xbf"
PROMISES = ("crashes", "hangs", "lost", "unreconciled", "unlocated", "bad_lineage")
LOCATED = re.compile(r"^.+:(\d+|-): [^:]+: .+")  # file:line: field: reason


class FuzzKind(Protocol):
    """One input kind: a valid base, its mutations and the checks of the promise."""

    def make(self, rng: random.Random) -> Any:
        """A new case: the valid base with mutated lines inserted (run outside the time limit)."""

    def feed(self, case: Any) -> Any:
        """Run the public entry point on the case and return its report (inside the time limit)."""

    def verify(self, case: Any, result: Any) -> dict[str, int]:
        """The broken promises of the case's result, as counts (``lost``, ``unlocated``, ...)."""


class CaseTimeout(Exception):
    """A case ran past its time limit (a hang)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``CaseTimeout`` in the main thread after ``seconds`` (SIGALRM)."""
    def _alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"over {seconds}s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_case(kind: FuzzKind, rng: random.Random, limit_s: float = 10.0) -> Counter[str]:
    """Make, feed and verify one case; the counts of the promises it broke."""
    case = kind.make(rng)
    try:
        with time_limit(limit_s):
            result = kind.feed(case)
    except CaseTimeout:
        return Counter(hangs=1)
    except Exception:  # noqa: BLE001 - an escaping exception is what this counts
        log.error("crash on %.300r:\n%s", getattr(case, "data", case), traceback.format_exc())
        return Counter(crashes=1)
    return Counter(kind.verify(case, result))


def run_cases(kind: FuzzKind, rng: random.Random, cases: int, limit_s: float = 10.0) -> dict[str, int]:
    """``cases`` cases of one kind: every promise's count (all 0 when the promise holds)."""
    stats: Counter[str] = Counter({k: 0 for k in PROMISES})
    for _ in range(cases):
        stats["cases"] += 1
        stats.update(run_case(kind, rng, limit_s))
    return dict(stats)


# ---------------------------------------------------------------------------- shared mutations


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key/index path inside a parsed row (containers and leaves)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from _paths(v, (*prefix, k))


def _set_deep(line: bytes, rng: random.Random, values: Callable[[random.Random], Any]) -> bytes:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    paths = list(_paths(obj))
    if not paths:
        return line
    *head, last = rng.choice(paths)
    target = obj
    for k in head:
        target = target[k]
    value = values(rng)
    if not isinstance(value, bytes):
        target[last] = value
        return orjson.dumps(obj)
    target[last] = "\x00raw\x00"  # raw JSON deeper than orjson writes: spliced in as bytes
    return orjson.dumps(obj).replace(b'"\\u0000raw\\u0000"', value, 1)


def nested_wrong_type(line: bytes, rng: random.Random) -> bytes:
    """A wrong type anywhere inside the row (not only at the top level)."""
    return _set_deep(line, rng, lambda r: r.choice([None, -1, 2**63 - 1, "x", [], {}, [1, "a"], {"k": [None]},
                                                    1e308, True, "\u202e\u0000"]))


def nested_huge_or_deep(line: bytes, rng: random.Random) -> bytes:
    """A huge string or a deeply nested value anywhere inside the row."""
    def value(r: random.Random) -> Any:
        if r.random() < 0.5:
            return "B" * r.randint(50_000, 500_000)
        depth = r.randint(50, 600)  # orjson reads 1024 levels but writes at most 254
        opens = [r.choice([b"[", b'{"d":']) for _ in range(depth)]
        return b"".join(opens) + b"1" + b"".join(b"]" if o == b"[" else b"}" for o in reversed(opens))
    return _set_deep(line, rng, value)


def _file_bytes(lines: list[bytes], rng: random.Random) -> bytes:
    """Join lines; sometimes a BOM in front, CRLF endings or no final newline."""
    sep = b"\r\n" if rng.random() < 0.1 else b"\n"
    data = sep.join(lines) + (sep if rng.random() < 0.9 else b"")
    return BOM + data if rng.random() < 0.1 else data


def _line_numbers(data: bytes) -> int:
    """Lines as a reader iterating the file sees them (split on LF only)."""
    return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def _row_number(lines: list[bytes], index: int) -> int:
    """1-based line number of ``lines[index]`` in the joined file (a line may hold no LF)."""
    return sum(ln.count(b"\n") for ln in lines[:index]) + index + 1


@dataclass
class Case:
    """One generated input file and what the mutation touched."""

    path: Path
    data: bytes
    lines: list[bytes]
    bad: set[int]

    def untouched_lines(self) -> list[int]:
        """1-based line numbers of the base lines (never mutated)."""
        return [_row_number(self.lines, i) for i in range(len(self.lines)) if i not in self.bad]


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
