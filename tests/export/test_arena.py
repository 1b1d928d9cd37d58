"""Export workers hand a run's rows over in shared memory (``tracebridge.export.arena``): a forked child's
writes are what the parent reads, and the bundle is the same bytes whether every run's rows came
through the arena, some through the pipe (too large for a slot) or the export had no workers."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tracebridge.export import arena
from tracebridge.export.arena import RowArena
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import ExportResult, export_traces


def _put(a: RowArena, slot: int, data: bytes) -> None:
    assert a.put(slot, data)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="workers are forked only where fork exists")
def test_a_forked_child_writes_what_the_parent_reads() -> None:
    a = RowArena(2, size=16)
    child = multiprocessing.get_context("fork").Process(target=_put, args=(a, 1, b"row from child\n"))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert bytes(a.get(1, 15)) == b"row from child\n"
    assert bytes(a.get(0, 4)) == b"\0" * 4  # the other slot untouched
    assert not a.put(1, b"x" * 17)  # larger than a slot: refused, nothing copied
    assert bytes(a.get(1, 15)) == b"row from child\n"


def _row_bytes_by_run(res: ExportResult) -> Counter[str]:
    """Bytes of rows each run added to the bundle: its share of the arena (every view row names its run)."""
    out: Counter[str] = Counter()
    for path in (res.path / "views").rglob("*.jsonl"):
        for line in path.read_bytes().splitlines(keepends=True):
            out[orjson.loads(line)["meta"]["run_id"]] += len(line)
    return out


def test_same_bundle_through_the_arena_the_pipe_or_one_process(sim_traces: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ExportConfig()
    cfg.views.agentlightning = False  # triplet rows do not name their run: without them the sizes are exact
    one = export_traces(sim_traces, tmp_path / "one", cfg)
    sizes = sorted(_row_bytes_by_run(one).values())
    assert len(sizes) > 4 and sizes[0] < sizes[-1]  # more runs than the 4 slots of 2 workers: slots are reused
    # every run through the arena; the runs larger than the median through the pipe; every run through the pipe
    for name, slot_bytes in (("arena", None), ("mixed", sizes[len(sizes) // 2]), ("pipe", 0)):
        if slot_bytes is not None:
            monkeypatch.setattr(arena, "SLOT_BYTES", slot_bytes)
        two = export_traces(sim_traces, tmp_path / name, cfg, workers=2)
        assert two.manifest.bundle_id == one.manifest.bundle_id, name
        assert two.report == one.report, name
