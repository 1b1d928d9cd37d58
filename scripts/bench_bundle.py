"""Helpers of ``scripts/bench_export.py``: the CPU clock, a block on all CPUs, and measurements of a bundle
(its bytes by folder, its bytes floor: hashing and writing its rows with nothing else to do, and
``push``'s row check of it)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path


def clock() -> float:
    """CPU seconds of this process: on a shared machine, wall time measures the neighbours too."""
    return time.process_time()


@contextlib.contextmanager
def all_cpus(cpus: set[int] | None) -> Iterator[None]:
    """This process on ``cpus`` (all it had before ``one_core``) for the block; the pin restored after."""
    pinned = os.sched_getaffinity(0) if cpus else None
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        yield
    finally:
        if pinned:
            os.sched_setaffinity(0, pinned)


def push_check(bundle: Path, workers: int, cpus: set[int] | None) -> tuple[float, float]:
    """Wall seconds of ``push``'s row check of ``bundle`` (``rowscan.row_findings``) in 1 and ``workers`` processes."""
    from tracebridge.export.bundle import verify_bundle
    from tracebridge.export.rowscan import row_findings

    man = verify_bundle(bundle, rehash=False)
    spent = []
    with all_cpus(cpus):
        for n in (1, workers):
            t0 = time.perf_counter()
            if row_findings(bundle, man, workers=n):
                raise SystemExit(f"push would refuse the bundle (--workers {n}): its rows hold findings")
            spent.append(time.perf_counter() - t0)
    return spent[0], spent[1]


def bundle_sizes(bundle: Path) -> dict[str, int]:
    """Bytes of a bundle by its top-level folder (``views``, ``agentlightning``) and its other files
    (manifest, report, ...) together, largest first."""
    sizes: dict[str, int] = {}
    for f in bundle.rglob("*"):
        if f.is_file():
            parts = f.relative_to(bundle).parts
            top = parts[0] if len(parts) > 1 else "other files"
            sizes[top] = sizes.get(top, 0) + f.stat().st_size
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def bytes_floor(bundle: Path, scratch: Path, block: int = 256 << 10) -> tuple[float, int]:
    """CPU seconds that ``bundle``'s rows cost with nothing else to do, and their bytes: the bytes of
    its JSONL files, read beforehand (not timed), hashed (sha256, which the bundle's id needs) and
    written to ``scratch``'s file system in ``block``-sized shares, as the export writes a run's share.
    An exporter writing this bundle (the same rows) spends at least this, however cheaply it curates
    and serialises."""
    spent, size, sink = 0.0, 0, scratch / "floor.jsonl"
    for path in sorted(bundle.rglob("*.jsonl")):
        sha = hashlib.sha256()
        with open(path, "rb") as src, open(sink, "wb", buffering=0) as out:
            while data := src.read(block):
                t0 = clock()
                sha.update(data)
                out.write(data)
                spent += clock() - t0
                size += len(data)
        sink.unlink()
    return spent, size
