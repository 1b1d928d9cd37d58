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


@pytest.mark.cluster
def test_submit_resume_asks_the_storage_and_the_jobs_once(ray_head, counting_fs, monkeypatch, tmp_path):
    """The command on a real local head: the storage's folders are listed once each and the head's jobs
    once (they were listed for the sweep's id and again for its next attempt)."""
    from typer.testing import CliRunner

    from tracebridge.cli import app
    from tracebridge.cluster import submit as submit_module
    from tracebridge.cluster.client import connect

    job_listings = []

    def counting_connect(*args, **kwargs):
        client = connect(*args, **kwargs)
        real = client.list_jobs
        client.list_jobs = lambda *a, **k: (job_listings.append(1), real(*a, **k))[1]
        return client

    monkeypatch.setattr(submit_module, "connect", counting_connect)
    storage = tmp_path / "storage"
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={storage}",
                                   f"work_dir={tmp_path}/work", "variants=[baseline]", "--cluster", ray_head["yaml"],
                                   "--keep", "--resume", "--json"])
    # The head is shared with other tests: where one of them left a sweep of the same bundle with another
    # config, --resume refuses to start this one afresh (exit 2, naming them) after the same listings.
    doc = json.loads(res.stdout)
    try:
        if res.exit_code == 2:
            assert "other sweep(s) of bundle" in doc["error"], res.output
        else:
            assert res.exit_code == 0, res.output
            assert doc["status"] == "SUBMITTED" and doc["attempt"] == 1, doc
    finally:  # the sweep is not what is tested: stop it (its Tune run saves its state into tmp_path)
        if res.exit_code == 0:
            connect(ray_head["info"].address, ray_head["token"]).stop_job(json.loads(res.stdout)["submission_id"])
    assert len(job_listings) == 1
    folders = [str(storage), str(storage / "reports"), str(storage / "sweeps")]
    assert {f: counting_fs[f] for f in folders} == {f: 1 for f in folders}
