"""``import_openclaw(..., workers=N)``: sessions imported by N processes, merged into one result.

Every transcript of one run (the live file, its ``.bak`` and reset/deleted archives, renamed
copies: all that share a session id) goes to the same worker, in the order one process would
take them, so each run is written by exactly one process and sees the state one process would.
Workers are balanced by bytes. Each worker imports its transcripts with the one-process code,
keeping a report per transcript and writing its quarantined lines to a part file; the parent
then merges everything in the global transcript order: the report (counters, lists and capped
samples as one process builds them), the quarantine (each transcript's byte range copied from
its worker's part) and the state of every run. So runs, state, quarantine and report are the
same bytes for any number of workers (tests/importers/test_openclaw_parallel.py).

Workers save no state of their own: the parent makes the runs durable and saves the state once
all workers are done. An import interrupted before that leaves runs the state does not name; the
next import compares them with what it produces and appends nothing twice (see ``runs.py``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tracebridge.importers.config import ImportConfig
from tracebridge.importers.openclaw.discover import Transcript
from tracebridge.importers.openclaw.importer import import_file
from tracebridge.importers.openclaw.report import ImportReport
from tracebridge.importers.openclaw.session import read_session_id, run_id_for, session_id_from_name
from tracebridge.importers.openclaw.state import (
    ImportState,
    Quarantine,
    RunState,
    cut_torn_quarantine,
)
from tracebridge.pool_workers import end_with_parent

_COPY_CHUNK = 1 << 20


@dataclass
class _Part:
    """What one worker returns: per transcript (global index) its report and quarantine byte
    range in the worker's part file, and the state of every run it owns."""

    reports: list[tuple[int, ImportReport, int, int]]
    runs: dict[str, RunState]


def run_of(t: Transcript, cfg: ImportConfig) -> str:
    """The run a transcript imports into (as ``_FileImport`` finds it; by name if unreadable)."""
    try:
        with open(t.path, "rb") as fh:
            return run_id_for(read_session_id(fh, t.path.name, cfg.header_scan_bytes)[0])
    except OSError:
        return run_id_for(session_id_from_name(t.path.name))


def split_by_run(transcripts: list[Transcript], cfg: ImportConfig, workers: int) -> list[list[int]]:
    """Indexes of ``transcripts`` per worker: all of a run's transcripts in one worker, in order;
    runs dealt largest first to the worker with the fewest bytes so far."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(transcripts):
        groups[run_of(t, cfg)].append(i)

    def size(i: int) -> int:
        try:
            return os.stat(transcripts[i].path).st_size
        except OSError:
            return 0

    loads = [0] * workers
    parts: list[list[int]] = [[] for _ in range(workers)]
    for idx in sorted(groups.values(), key=lambda g: (-sum(map(size, g)), g[0])):
        k = loads.index(min(loads))
        loads[k] += sum(map(size, idx))
        parts[k] += idx
    return [sorted(p) for p in parts if p]


def _import_part(transcripts: list[Transcript], idx: list[int], root: Path, cfg: ImportConfig,
                 part: Path) -> _Part:
    """Worker: import ``transcripts[i]`` for ``i`` in ``idx`` (one report per transcript)."""
    meta = root / ".import"
    state = ImportState(meta / cfg.state_file)
    before = dict(state.runs)
    q = Quarantine(meta / cfg.quarantine_file, write_to=part)
    reports = []
    try:
        for i in idx:
            rep, start = ImportReport(max_listed=cfg.max_listed), q.size
            import_file(transcripts[i], root, cfg, state, q, rep)
            reports.append((i, rep, start, q.size))
    finally:
        q.close()
    return _Part(reports, {k: v for k, v in state.runs.items() if before.get(k) != v})


def _append_ranges(dst: Path, ranges: list[tuple[Path, int, int]]) -> None:
    """Append the byte ranges of the part files to ``dst``, in order."""
    ranges = [r for r in ranges if r[2] > r[1]]
    if not ranges:
        return
    handles: dict[Path, BinaryIO] = {}
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for src, start, end in ranges:
            if src not in handles:
                handles[src] = open(src, "rb")  # noqa: SIM115 - closed below
            fh = handles[src]
            fh.seek(start)
            while start < end:
                chunk = fh.read(min(_COPY_CHUNK, end - start))
                os.write(fd, chunk)
                start += len(chunk)
    finally:
        os.close(fd)
        for fh in handles.values():
            fh.close()


def import_parallel(transcripts: list[Transcript], root: Path, cfg: ImportConfig, state: ImportState,
                    rep: ImportReport, workers: int, progress: Callable[[int, int], None] | None = None) -> None:
    """Import ``transcripts`` with ``workers`` processes; merge into ``rep``, ``state`` and the
    quarantine file (the caller holds the import lock and saves the state afterwards)."""
    meta = root / ".import"
    for stale in meta.glob(f"{cfg.quarantine_file}.part-*"):  # left by an interrupted import
        stale.unlink()
    cut_torn_quarantine(meta / cfg.quarantine_file, rep.problems)  # before the workers read it and rows go after it
    parts = split_by_run(transcripts, cfg, workers)
    paths = [meta / f"{cfg.quarantine_file}.part-{k}" for k in range(len(parts))]
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    try:
        # workers end with this process: killed, it must not leave them writing runs beside the next import
        with ProcessPoolExecutor(len(parts), mp_context=ctx, initializer=end_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_import_part, transcripts, idx, root, cfg, path) for idx, path in zip(parts, paths)]
            done = 0
            for f in as_completed(futures):  # progress as each share ends; results in share order below
                done += len(parts[futures.index(f)])
                if progress is not None:
                    progress(done, len(transcripts))
            results = [f.result() for f in futures]
        merged: list[tuple[int, ImportReport, Path, int, int]] = []
        for res, path in zip(results, paths):
            merged += [(i, r, path, start, end) for i, r, start, end in res.reports]
            state.runs.update(res.runs)
        merged.sort(key=lambda m: m[0])
        for _, r, _, _, _ in merged:
            rep.merge(r)
        _append_ranges(meta / cfg.quarantine_file, [(path, start, end) for _, _, path, start, end in merged])
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
