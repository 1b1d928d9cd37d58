"""Several ``push`` runs of one bundle to one local folder at the same moment: each publishes or finds the
bundle there whole (none fails, none finds a torn copy to repair), and the result verifies."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path
from typing import Any

import pytest

from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import fetch_bundle

PUSHES, ROUNDS = 6, 8


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


def _push(src: Path, uri: str, start: Any, results: Any) -> None:
    start.wait(timeout=60)  # all at once: their transfers overlap
    try:
        results.put(push_bundle(src, uri)["status"])
    except Exception as exc:  # noqa: BLE001 - the test reports what a push ended with
        results.put(f"{type(exc).__name__}: {exc}")


def test_pushes_of_one_bundle_at_once_never_show_a_torn_copy(
    bundle: ExportResult, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("fork")
    store = tmp_path / "store"
    for rnd in range(
        ROUNDS
    ):  # the overlap is a race: a few rounds make it all but certain to be met
        shutil.rmtree(store, ignore_errors=True)
        start, results = ctx.Barrier(PUSHES), ctx.Queue()
        procs = [
            ctx.Process(target=_push, args=(bundle.path, str(store), start, results))
            for _ in range(PUSHES)
        ]
        for p in procs:
            p.start()
        got = sorted(results.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        # before: a push found another's copy in the middle of its writing (0 bytes under a published
        # manifest) and "repaired" it, or failed on the temp manifest another push had renamed
        assert set(got) <= {"published", "exists"} and "published" in got, (rnd, got)
        _path, man = fetch_bundle(str(store), tmp_path / "pulled" / str(rnd))
        assert man.bundle_id == bundle.manifest.bundle_id
        assert not [
            p.name for p in (store / man.bundle_id).rglob("*.part")
        ]  # no copy in the making left
