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
