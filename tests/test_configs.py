"""Every YAML under configs/ (any folder, any depth) has a registered schema, loads and validates.

The per-area tests check their own folders in depth; this one globs them all, so a new folder
fails here until its schema is registered in ``tracebridge.config.CONFIG_KINDS``. No training.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.config import ConfigError, load_config, schema_for

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
YAMLS = sorted([*CONFIGS.rglob("*.yaml"), *CONFIGS.rglob("*.yml")])
# Values a config only gets at launch; its YAML leaves them empty on purpose (validate() asks for them).
LAUNCH_VALUES = {"sweep": ["bundle=s3://bucket/bundle"]}


def schema_of(path: Path) -> type:
    """The schema of a config file, or a test failure that names the file and where to register it."""
    try:
        return schema_for(path)
    except ConfigError as exc:
        pytest.fail(f"{path}: no known schema; register configs/{path.parent.name}/ in "
                    f"tracebridge.config.CONFIG_KINDS\n{exc}", pytrace=False)


def test_the_glob_finds_the_configs():  # an empty parametrization would pass silently
    assert len(YAMLS) >= 20 and {"model", "train", "sweep", "ops"} <= {p.parent.name for p in YAMLS}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_yaml_loads_and_validates(path):
    schema = schema_of(path)
    cfg = load_config(schema, path, LAUNCH_VALUES.get(path.parent.name, []))
    assert isinstance(cfg, schema), path


def test_a_yaml_in_an_unregistered_folder_fails_with_its_name(tmp_path):
    new = tmp_path / "configs" / "newarea" / "x.yaml"
    new.parent.mkdir(parents=True)
    new.write_text("a: 1\n")
    with pytest.raises(pytest.fail.Exception, match=r"newarea/x\.yaml: no known schema.*CONFIG_KINDS"):
        schema_of(new)


@pytest.mark.parametrize("override, expect", [
    ("=x", "=x: key '' is empty"),
    ("retry..attempts=1", "retry..attempts=1: key 'retry..attempts' is empty or has an empty part"),
    ("retry.attempts=[1,2", "retry.attempts=[1,2: the value is not valid YAML"),
    ("retry=3", "retry=3: expected a group of keys (attempts, backoff_s, max_backoff_s), e.g. retry.attempts=3"),
    ("retry.attempts=three", "retry.attempts=three: expected an integer, e.g. retry.attempts=3"),
    ("retry.attempts=[1,2]", "retry.attempts=[1, 2]: expected an integer, e.g. retry.attempts=3"),
    ("retry.attempts=${nope}", "retry.attempts: Interpolation key 'nope' not found"),
    ("retry.attemps=3", "retry.attemps: unknown key; did you mean 'retry.attempts'?"),
])
def test_bad_overrides_are_one_config_error_naming_the_override(override, expect):
    from tracebridge.export.config import StorageConfig

    with pytest.raises(ConfigError) as err:
        load_config(StorageConfig, CONFIGS / "storage/s3.yaml", [override])
    assert expect in str(err.value)


@pytest.mark.parametrize("override, hint", [
    ("split.salts=x", "; did you mean 'split.salt'?"),  # a name of the same block
    ("salt=x", "; did you mean 'split.salt'?"),  # the same name in another block
    ("split.bogus=1", ""),  # no name near it: no hint (the whole paths' shared 'split.' gave 'split.ratios')
    ("views.bogus=1", ""),
])
def test_an_unknown_key_is_told_its_closest_name_only_when_one_is_close(override, hint):
    from tracebridge.export.config import ExportConfig

    with pytest.raises(ConfigError) as err:
        load_config(ExportConfig, CONFIGS / "export/default.yaml", [override])
    key = override.split("=")[0]
    assert f"{key}: unknown key{hint}" in str(err.value) and (hint or "did you mean" not in str(err.value))


def test_every_bad_override_is_listed_with_the_list_fix():
    from tracebridge.sweep.config import SweepConfig

    with pytest.raises(ConfigError) as err:
        load_config(SweepConfig, CONFIGS / "sweep/smoke.yaml",
                    ["bundle=b", "seeds.0=5", "seeds=[0,1", "resources=3"])
    assert len(err.value.problems) == 2, err.value.problems  # seeds.0=5 sets the one seed the YAML has
    assert "resources=3: expected a group of keys (" in str(err.value)
    assert "container" not in str(err.value)


def test_an_index_override_sets_one_item_of_a_typed_list_in_order():
    from tracebridge.sweep.config import SweepConfig

    cfg = load_config(SweepConfig, CONFIGS / "sweep/smoke.yaml",
                      ["bundle=b", "seeds=[5,1,2]", "seeds.1=7", "roles.0=worker"])
    assert cfg.seeds == [5, 7, 2] and cfg.roles == ["worker"]
    later = load_config(SweepConfig, CONFIGS / "sweep/smoke.yaml", ["bundle=b", "seeds.0=9", "seeds=[3,4]"])
    assert later.seeds == [3, 4]  # overrides apply left to right, an index one among them


@pytest.mark.parametrize("override, expect", [
    ("seeds.3=5", ("seeds.3=5: seeds has 1 item(s), so there is no item 3 to set; "
                  "set the whole list instead, e.g. seeds=[0,5]")),
    ("seeds.0=x", "seeds.0=x: expected an integer, e.g. seeds.0=3"),
    ("seeds.0.x=3", "seeds.0.x=3: seeds.0 is one item (an integer), not a group of keys; e.g. seeds.0=3"),
    ("ablations.train.lr.0=1e-4", ("ablations.train.lr.0=0.0001: an ablation's values are set as a whole list, "
                                  "not by index; e.g. ablations.train.lr=[0.0001,...]")),
])
def test_an_index_override_that_cannot_apply_names_the_key_and_the_whole_list_form(override, expect):
    from tracebridge.sweep.config import load_sweep_config

    with pytest.raises(ConfigError) as err:
        load_sweep_config(str(CONFIGS / "sweep/demo.yaml"), ["bundle=b", override])
    assert err.value.problems == [expect]


@pytest.mark.parametrize("base, expect", [
    (None, "nope.yaml: no such config file (the _base_ of"),
    ("- 1\n", "base.yaml: top level must be a mapping (key: value lines) (the _base_ of"),
    ("a: [1\n", "base.yaml: not valid YAML (the _base_ of"),
])
def test_a_bad_base_file_is_a_config_error_naming_both_files(tmp_path, base, expect):
    from tracebridge.export.config import StorageConfig

    folder = tmp_path / "configs" / "storage"
    folder.mkdir(parents=True)
    if base is not None:
        (folder / "base.yaml").write_text(base)
    (folder / "x.yaml").write_text(f"_base_: {'base' if base is not None else 'nope'}.yaml\nupdate_latest: false\n")
    with pytest.raises(ConfigError) as err:
        load_config(StorageConfig, folder / "x.yaml")
    assert expect in str(err.value) and "x.yaml" in str(err.value)


def test_a_struct_field_given_a_scalar_in_yaml_names_its_key(tmp_path):
    from tracebridge.export.config import StorageConfig

    (tmp_path / "x.yaml").write_text("retry: 3\nupdate_latest: maybe\n")
    with pytest.raises(ConfigError) as err:
        load_config(StorageConfig, tmp_path / "x.yaml")
    assert err.value.problems == [
        "retry=3: expected a group of keys (attempts, backoff_s, max_backoff_s), e.g. retry.attempts=3",
        "update_latest=maybe: expected true or false, e.g. update_latest=true"]


def test_a_wrong_type_deep_in_yaml_names_the_deepest_key(tmp_path):
    from tracebridge.sweep.config import SweepConfig

    (tmp_path / "x.yaml").write_text("seeds: 7\nresources: {gpu: lots}\nroles: [planner]\n")
    with pytest.raises(ConfigError) as err:
        load_config(SweepConfig, tmp_path / "x.yaml")
    assert err.value.problems[:2] == ["seeds=7: expected a list of integers, e.g. seeds=[0,1]",
                                      "resources.gpu=lots: expected a number, e.g. resources.gpu=0.5"]


@pytest.mark.parametrize("config, override, expect", [
    ("gates/default.yaml", "seed=-1", "seed=-1: must be in [0, 2**32)"),  # numpy refused it at the bootstrap
    ("export/default.yaml", "dedup.report_clusters=-1",  # listed every cluster but the smallest
     "dedup.report_clusters=-1: must be >= 0 (0 = none listed)"),
])
def test_an_out_of_range_value_is_refused_naming_the_key(config, override, expect):
    path = CONFIGS / config
    with pytest.raises(ConfigError) as err:
        load_config(schema_of(path), path, [override])
    assert err.value.problems == [expect]


def test_overrides_merged_at_once_give_the_config_merged_one_by_one(monkeypatch):
    """``load_config`` merges a YAML's keys and the overrides in one merge when none needs the one-by-one path
    (a copy of the config per layer made a dozen-override recipe 0.77 s); the result is the one-by-one merge's, and
    a problem still sends it down the one-by-one path that names every problem."""
    import tracebridge.config as config_mod
    from tracebridge.train.config import load_train_config

    path = "configs/train/cpu_tiny.yaml"
    ov = ["train.lr=3e-3", "train.optim=adamw_torch", "dpo.beta=0.3", "role=worker", "data.fit_context=true",
          "train.lora.target_modules=[q_proj,v_proj]", "seed=7"]
    fast = load_train_config(path, ov)
    with monkeypatch.context() as m:
        m.setattr(config_mod, "_merged_at_once", lambda *a: None)
        assert load_train_config(path, ov) == fast
    assert (fast.train.lr, fast.train.optim, fast.dpo.beta, fast.role, fast.seed) == (3e-3, "adamw_torch", 0.3,
                                                                                      "worker", 7)
    with pytest.raises(ConfigError) as exc:  # two problems at once: both named, as before
        load_train_config(path, [*ov, "train.lrr=1", "dpo.beta=fast"])
    assert "train.lrr" in str(exc.value) and "dpo.beta" in str(exc.value)
