"""Sweep configs: the shipped YAMLs load, resolve and expand; every problem is reported at once;
nested ablations flatten; local paths become absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.config import ConfigError
from tracebridge.sweep import grid
from tracebridge.sweep.config import load_sweep_config

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "configs" / "sweep").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_resolve_and_check(path):
    cfg = load_sweep_config(str(path), ["bundle=s3://bucket/bundle"])
    recipes = grid.resolve_recipes(cfg)
    specs = grid.expand_grid(cfg)
    assert grid.check_trials(cfg, recipes, specs) == []
    assert len(specs) == len(cfg.roles) * len(cfg.variants) * len(grid.ablation_cells(cfg)) * len(cfg.seeds)
    assert path.read_text().startswith("#") and "Launch:" in path.read_text()


def test_demo_is_three_roles_two_variants_one_ablation():
    cfg = load_sweep_config("configs/sweep/demo.yaml", ["bundle=x"])
    assert cfg.roles == ["planner", "worker", "verifier"] and cfg.variants == ["baseline", "optimized"]
    assert list(cfg.ablations) == ["train.lr"] and cfg.resources.gpu == 0


def test_every_problem_at_once():
    with pytest.raises(ConfigError) as exc:
        load_sweep_config(None, ["roles=[planner,critic]", "variants=[]", "seeds=[0,0]", "ablations.train.lr=0.1",
                                 "max_failures=-5", "resources.workers=0", "budget.max_hours=-1"])
    text = str(exc.value)
    for needle in ("bundle=''", "'critic' unknown", "variants=[]", "duplicates", "ablations.train.lr=0.1",
                   "max_failures=-5", "resources.workers=0", "budget.max_hours=-1"):
        assert needle in text, needle


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'seeds'"):
        load_sweep_config(None, ["bundle=x", "sedes=[1]"])


def test_nested_and_dotted_ablations_flatten_and_paths_absolutize(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_sweep_config(None, ["bundle=b", "storage=file://./st", "ablations.train.lr=[0.1,0.2]",
                                   "overrides.dpo.beta=0.2", "variant_overrides.optimized.train.max_steps=3"])
    assert cfg.ablations == {"train.lr": [0.1, 0.2]} and cfg.overrides == {"dpo.beta": 0.2}
    assert cfg.variant_overrides == {"optimized": {"train.max_steps": 3}}
    assert cfg.bundle == str(tmp_path / "b") and cfg.storage == str(tmp_path / "st")
    assert load_sweep_config(None, ["bundle=s3://b/x"]).bundle == "s3://b/x"


def test_the_cluster_submit_ran_on_is_what_the_job_records(tmp_path):
    """``submit --cluster X`` (and ``window --cluster L``) ran the job on X, but the job's config, and so its
    report manifest's ``config.sweep.cluster``, said the sweep YAML's ``cluster: local``: the override they
    now pass names X, as a plain value that loads (a path inside the working dir relative, else absolute)."""
    from tracebridge.sweep.config import cluster_override

    outside = tmp_path / "cluster.yaml"
    cases = {"configs/cluster/remote.yaml": "configs/cluster/remote.yaml", str(ROOT / "configs/cluster/remote.yaml"):
             "configs/cluster/remote.yaml", str(outside): str(outside), "local": "local",
             "http://127.0.0.1:8265": "http://127.0.0.1:8265"}
    for spec, recorded in cases.items():
        override = cluster_override(spec, ROOT)
        assert override == f"cluster={recorded}"
        assert load_sweep_config("configs/sweep/smoke.yaml", ["bundle=s3://b/x", override]).cluster == recorded
