"""Runs after steps 1-3 of the export (check, redact, views: ``tracebridge.export.runwork``), in run
order: from the run cache, built in this process, or built by forked worker processes that leave each
run's rows in shared memory (``tracebridge.export.arena``) for the main process to hash and write."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from tracebridge.capture.reader import RunDir, iter_runs
from tracebridge.export.arena import RowArena
from tracebridge.export.runcache import RunCache
from tracebridge.export.runwork import Built, RunWork, joined
from tracebridge.pool_workers import end_with_parent

log = logging.getLogger(__name__)

_WORKER: RunWork | None = None
_ARENA: RowArena | None = None


def _init_worker(work: RunWork, arena: RowArena | None, parent: int) -> None:
    end_with_parent(parent)  # an export killed midway leaves no worker behind
    global _WORKER, _ARENA
    _WORKER, _ARENA = work, arena


def _build_in_worker(run: RunDir, slot: int) -> Built:
    """Steps 1-3 of ``run`` in a worker; its rows go to ``slot`` of the arena when they fit."""
    assert _WORKER is not None
    b = _WORKER.build(run)
    if b.rows and _ARENA is not None and _ARENA.put(slot, b.rows):
        b.rows, b.slot = b"", slot
    elif isinstance(b.rows, list):  # through the pipe as one buffer: a pickled list of lines costs more
        b.rows = joined(b.rows)
    return b


def _arena(slots: int, fork: bool) -> RowArena | None:
    """The arena of ``slots`` runs in flight; None (rows through the pipe) where workers are not
    forked (they would not share it) or the mapping cannot be made."""
    if not fork:
        return None
    try:
        return RowArena(slots)
    except OSError as exc:
        log.info("export workers send rows through the pipe: no shared memory (%s)", exc)
        return None


def built_runs(root: Path, work: RunWork, workers: int, cache: RunCache | None) -> Iterator[tuple[RunDir, Built]]:
    """Every run of ``root`` after steps 1-3 (``work.build``), in run order: from ``cache``, built here, or built by
    ``workers`` processes with at most two runs per worker in flight (memory stays bounded by a few
    runs). A run built here or by a worker is stored in ``cache``."""
    def cached(run: RunDir) -> tuple[str | None, Built | None]:
        key = cache.key(run) if cache is not None else None
        return key, (cache.get(key) if cache is not None and key is not None else None)

    def stored(key: str | None, b: Built) -> Built:
        if cache is not None and key is not None:
            cache.put(key, dataclasses.replace(b, rows=joined(b.rows)))  # a copy of rows still in the arena
        return b

    if workers <= 1:
        for run in iter_runs(root):
            key, hit = cached(run)
            yield run, hit if hit is not None else stored(key, work.build(run))
        return
    fork = "fork" in multiprocessing.get_all_start_methods()
    slots = 2 * workers
    arena = _arena(slots, fork)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork" if fork else None),
                             initializer=_init_worker, initargs=(work, arena, os.getpid())) as pool:
        pending: deque[tuple[RunDir, str | None, Built | Future[Built]]] = deque()

        def first() -> tuple[RunDir, Built]:
            run, key, b = pending.popleft()
            if isinstance(b, Built):
                return run, b
            b = b.result()
            if arena is not None and b.slot >= 0:  # a view of the slot: taken before the slot is reused
                b.rows, b.slot = arena.get(b.slot, sum(size for _, size, _ in b.files)), -1
            return run, stored(key, b)

        for i, run in enumerate(iter_runs(root)):
            key, hit = cached(run)
            # run i gets slot i % slots: the run that had it (i - slots) was taken before this loop came back
            pending.append((run, key, hit if hit is not None else pool.submit(_build_in_worker, run, i % slots)))
            if len(pending) >= slots:
                yield first()
        while pending:
            yield first()
