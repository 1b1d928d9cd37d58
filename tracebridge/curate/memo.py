"""``ScanMemo``: what the scan found in values it has seen, for inputs that repeat them.

A bundle's conversation rows repeat their context: each ``worker_sft`` row holds every earlier
message of its run, so scanning a file row by row (``tracebridge push`` checks every row before it
leaves the host) scans the same messages again and again, quadratic in a run's length. The walk
(``tracebridge.curate.walk.Walker``) keeps here, by their exact bytes (no digest: a collision
could hide a value), whether a serialised dict fired the triggers and, in a counting scan, what it
found below it, and ``Scanner`` the spans ``Detectors.find`` returned for a string; all are pure
functions of their input. Only values of ``min_bytes`` or more are kept: the 32-byte default keeps
the ids a row's ``meta`` repeats (a run's event ids, in every row of it; one whose hash is all digits
trips the digit trigger, and the phone check, ~130 µs), which a 256-byte one checked again in each
row. The memo forgets everything when it holds more than ``max_bytes`` (rows of one run lie
together, so what repeats is recent): 16 MB by default. ``push``'s scan of a 2000-session bundle's
rows (3 GB): 83.6 s and a peak RSS of 711 MB with 256 bytes and 64 MB; 43.0 s and 172 MB now
(with the rows read run by run, ``rowscan.rows_run_by_run``). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ENTRY_BYTES = 200  # what an entry holds besides its key's bytes (dict slot, key tuple, str header, result)


class ScanMemo:
    """Results by key, bounded by the bytes held (``max_bytes``: the keys' bytes and ``ENTRY_BYTES`` each)."""

    def __init__(self, max_bytes: int = 16 << 20, min_bytes: int = 32) -> None:
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
        size += ENTRY_BYTES
        if self._bytes + size > self.max_bytes:
            self._held.clear()
            self._bytes = 0
        self._held[key] = result
        self._bytes += size
        return result
