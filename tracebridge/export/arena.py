"""``RowArena``: memory shared by an export and its forked workers, where a worker leaves a run's rows.

A run's serialised rows are about ten times its events (1-8 MB a run for OpenClaw sessions). Sent
back through the process pool's pipe with the rest of the built run, they crossed in 64 KiB pieces
and were copied three more times in the main process (pipe, receive buffer, unpickling), on its
serial path: with two workers that took ~0.3 of the main process's ~0.8 CPU seconds for 200
sessions. Here a worker copies them into a slot of an anonymous shared mapping made before the
workers were forked, and the main process hashes and writes them straight from there: no copy on
its side, and the slots' pages, touched once, serve every later run.

One slot per run in flight. The caller gives run ``i`` the slot ``i % slots`` and sends it only
after the run that had that slot before was written (``export_traces`` keeps ``slots`` runs in
flight and takes them in order), so a slot is never written while it is read. A run whose rows do
not fit its slot sends them through the pipe as before; the bundle is the same either way.
"""

from __future__ import annotations

import mmap

SLOT_BYTES = 32 << 20  # a slot's size: address space only, memory is used as runs fill it


class RowArena:
    """``slots`` slots of ``size`` bytes in one shared anonymous mapping (inherited by forked children).

    Args:
        slots: runs in flight at most.
        size: bytes a slot holds (None: ``SLOT_BYTES``); a run with more rows does not use the arena.

    Raises:
        OSError: the mapping cannot be made (the caller sends rows through the pipe instead).
    """

    def __init__(self, slots: int, size: int | None = None) -> None:
        self.size = SLOT_BYTES if size is None else size
        self.mem = mmap.mmap(-1, slots * self.size)  # MAP_SHARED | MAP_ANONYMOUS: a forked child writes the same pages

    def put(self, slot: int, data: bytes | list[bytes]) -> bool:
        """Copy ``data`` (a buffer, or lines one after the other) into ``slot``; False (nothing copied)
        when it does not fit."""
        parts = data if isinstance(data, list) else (data,)
        if sum(map(len, parts)) > self.size:
            return False
        at = slot * self.size
        for part in parts:
            self.mem[at:at + len(part)] = part
            at += len(part)
        return True

    def get(self, slot: int, n: int) -> memoryview:
        """The first ``n`` bytes of ``slot``: a view, not a copy, valid until the slot is given out again."""
        at = slot * self.size
        return memoryview(self.mem)[at:at + n]
