"""``ScanMemo``: what the scan found in values it has seen, for inputs that repeat them.

A bundle's conversation rows repeat their context: each ``worker_sft`` row holds every earlier
message of its run, so scanning a file row by row (``tracebridge push`` checks every row before it
leaves the host) scans the same messages again and again, quadratic in a run's length. The walk
(``tracebridge.curate.redact.Walker``) keeps here, by their exact bytes (no digest: a collision
could hide a value), whether a serialised dict fired the triggers, and ``Scanner`` the spans
``Detectors.find`` returned for a string; both are pure functions of their input. Only values of
``min_bytes`` or more are kept (a small one is cheaper to check than to look up), and the memo
forgets everything when it holds more than ``max_bytes`` of keys (rows of one run lie together in a
file, so what repeats is recent). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ScanMemo:
    """Results by key, bounded by the bytes of the keys held (``max_bytes``)."""

    def __init__(self, max_bytes: int = 64 << 20, min_bytes: int = 256) -> None:
        self.max_bytes, self.min_bytes = max_bytes, min_bytes
        self._held: dict[Any, Any] = {}
        self._bytes = 0
        self.hits = self.misses = 0

    def get(self, key: Any) -> Any:
        """The result kept for ``key``, or None."""
        out = self._held.get(key)
        if out is None:
            self.misses += 1
        else:
            self.hits += 1
        return out

    def of(self, key: Any, size: int, compute: Callable[[], Any]) -> Any:
        """The result kept for ``key``, else ``compute()``'s, kept (``size`` bytes)."""
        out = self.get(key)
        return self.put(key, size, compute()) if out is None else out

    def put(self, key: Any, size: int, result: Any) -> Any:
        """Keep ``result`` for ``key`` (``size`` bytes); returns ``result``."""
        if self._bytes + size > self.max_bytes:
            self._held.clear()
            self._bytes = 0
        self._held[key] = result
        self._bytes += size
        return result
