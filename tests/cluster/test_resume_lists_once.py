"""`submit --resume` on a local head lists the storage once: planning (``pin_stored``, looking for this
sweep under an earlier version's id) and ``--resume`` (``choose_sweep``, once the head is up) share one
listing, counted here on a real local filesystem whose listings are tallied by folder."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import ClassVar

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
BID = json.loads((BUNDLE / "manifest.json").read_text())["bundle_id"]


class CountingLocalFS(LocalFileSystem):
    """The real local filesystem, tallying each folder it lists."""

    listed: ClassVar[Counter[str]] = Counter()

    def ls(self, path, detail=False, **kwargs):
        CountingLocalFS.listed[str(path).rstrip("/")] += 1
        return super().ls(path, detail=detail, **kwargs)


@pytest.fixture
def counting_fs(monkeypatch):
    monkeypatch.chdir(ROOT)
    CountingLocalFS.listed = Counter()
    saved = {p: fsspec.registry.get(p) for p in ("file", "local")}
    for proto in saved:
        fsspec.register_implementation(proto, CountingLocalFS, clobber=True)
    yield CountingLocalFS.listed
    for proto, cls in saved.items():
        fsspec.register_implementation(proto, cls or LocalFileSystem, clobber=True)


def test_submit_resume_on_a_local_head_lists_the_storage_once(counting_fs, tmp_path):
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.resume import choose_sweep
    from tracebridge.cluster.submit import plan_sweep

    storage = tmp_path / "storage"
    (storage / "reports").mkdir(parents=True)
    (storage / "sweeps").mkdir()
    args = [f"bundle={BUNDLE}", f"storage={storage}", f"work_dir={tmp_path}/work", "variants=[baseline]"]
    # what the submit command does with --resume on a local head: plan (which looks for an earlier id)...
    plan = plan_sweep(Path("configs/sweep/smoke.yaml"), args, ClusterConfig(), ROOT)
    assert len(plan.candidates) >= 2  # planning looked at the storage for an earlier version's id
    # ...then, the head up and its jobs asked, choose the sweep --resume continues
    assert choose_sweep(plan, set()) == plan.sweep_id
    folders = [str(storage), str(storage / "reports"), str(storage / "sweeps")]
    assert {f: counting_fs[f] for f in folders} == {f: 1 for f in folders}
