"""``submit`` hands the job the absolute local paths of bundle, storage and work_dir in place of the
overrides that gave them: before, the entrypoint (what ``status --json`` shows) carried both,
``bundle=file:///x storage=./s ... bundle=/x storage=/abs/s``, the job taking the later one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_local_path_is_passed_once_and_absolute(monkeypatch, tmp_path: Path) -> None:
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep

    monkeypatch.chdir(ROOT)
    args = [(ROOT / "tests" / "data" / "train_views").as_uri().replace("file://", "bundle=file://"),
            f"storage={tmp_path}/storage", "seeds=[0]", "variants=[baseline]"]
    plan = plan_sweep(Path("configs/sweep/smoke.yaml"), args, ClusterConfig(), ROOT)
    keys = [o.split("=", 1)[0] for o in plan.overrides]
    assert sorted(k for k in keys if k in ("bundle", "storage")) == ["bundle", "storage"], plan.overrides
    assert f"bundle={ROOT / 'tests' / 'data' / 'train_views'}" in plan.overrides
    assert f"storage={tmp_path}/storage" in plan.overrides
    assert "seeds=[0]" in plan.overrides and "variants=[baseline]" in plan.overrides  # the others are kept


def test_the_plan_counts_the_trials_trained_beside_the_grid_cells(monkeypatch, tmp_path: Path) -> None:
    """Cells that train the same model train once (``sweep.shared``): the plan's metadata said ``trials`` (the grid's
    cells) only, and ``budget.max_trials`` counted cells, refusing a grid that trains within the cap."""
    from tracebridge.cluster.client import typed_metadata
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep

    monkeypatch.chdir(ROOT)
    args = [f"bundle={ROOT / 'tests' / 'data' / 'train_views'}", f"storage={tmp_path}/storage",
            "ablations.dpo.beta=[0.1,0.3]", "budget.max_trials=3"]
    plan = plan_sweep(Path("configs/sweep/smoke.yaml"), args, ClusterConfig(), ROOT)
    assert (plan.trials, plan.trained_trials) == (4, 3)  # one baseline trains for both beta cells
    meta = plan.metadata(1)
    assert meta["trials"] == "4" and meta["trained_trials"] == "3"  # the old key kept, the new one beside it
    assert typed_metadata(meta)["trained_trials"] == 3
