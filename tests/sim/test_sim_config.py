"""Every YAML under configs/collect loads and validates; bad values are reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.config import ConfigError, load_config, schema_for
from tracebridge.sim.config import CollectConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "collect").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    assert schema_for(path) is CollectConfig
    cfg = load_config(CollectConfig, path)
    assert cfg.validate() == [] and cfg.mixes and cfg.failures
    assert path.read_text().startswith("#")  # header comment: command, launch, override


def test_defaults_without_yaml():
    cfg = load_config(CollectConfig)
    assert list(cfg.mixes) == ["default"] and list(cfg.failures) == ["clean"]


def test_every_problem_is_reported():
    with pytest.raises(ConfigError) as exc:
        load_config(CollectConfig, None, ["families=[files,web]", "max_steps=0", "failures.x.flaky_rate=1.5",
                                          "mixes.m.worker.backend=gpt", "mixes.m.planner.backend=http"])
    text = str(exc.value)
    for fragment in ("'web' unknown", "max_steps=0", "failures.x.flaky_rate=1.5", "mixes.m.worker.backend=gpt",
                     "mixes.m.planner.base_url/model"):
        assert fragment in text, text


def test_repeated_seeds_and_non_finite_latencies_are_config_errors():
    from tracebridge.config import ConfigError, load_config
    from tracebridge.sim.config import CollectConfig

    smoke = Path(__file__).resolve().parents[2] / "configs" / "collect" / "smoke.yaml"
    try:
        load_config(CollectConfig, smoke, ["seeds.fixed=[0,0]", "failures.hard.slow_ms=nan"])
    except ConfigError as exc:
        assert any("seeds.fixed: [0] repeated" in p for p in exc.problems), exc.problems
        assert any(p.startswith("failures.hard.slow_ms") for p in exc.problems), exc.problems
    else:
        raise AssertionError("repeated seeds and slow_ms=nan were accepted")
