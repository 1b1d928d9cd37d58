"""``gc_paused``: the cyclic garbage collector off around work that builds many acyclic objects.

Rows, events and records parsed from JSON hold no reference cycles: reference counting frees
them. Building millions of them still makes the collector run again and again, each full
collection rescanning everything alive (a 2000-session bundle's worker views, 1.3 GB: read in
7.8 s with the collector on, 3.0 s off; their TRL records 9.1 s and 1.8 s). Whatever cycles the
paused block does leave are collected once the collector is back on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic GC off for the block; back as it was afterwards, whatever happens."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
