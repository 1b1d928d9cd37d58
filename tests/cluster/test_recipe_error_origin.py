"""A recipe problem the sweep's ``overrides`` or ``variant_overrides`` caused names the key that set it: the
error is reported against the recipe YAML (configs/train/cpu_tiny.yaml), where the user found no such value.
Before, ``submit ... overrides.train.lr=-1`` said only ``recipe of baseline: train.lr=-1.0: must be > 0``
under ``invalid config configs/train/cpu_tiny.yaml``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_a_recipe_problem_names_the_sweep_key_that_set_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    state = tmp_path / "ray"
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", "bundle=tests/data/train_views",
                                   f"storage={tmp_path}/storage", "overrides.train.lr=-1",
                                   "variant_overrides={optimized: {train.max_steps: -2}}",
                                   "--cluster-set", f"state_dir={state}"])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    for variant in ("baseline", "optimized"):
        assert f"recipe of {variant}: train.lr=-1.0: must be > 0" in out and "(set by overrides.train.lr)" in out
    assert ("recipe of optimized: train.max_steps=-2: must be > 0, or -1 to use num_epochs "
            "(set by variant_overrides.optimized.train.max_steps)") in out
    assert not state.exists()  # refused before any head starts
