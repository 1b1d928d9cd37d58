"""A NaN or an inf in any config is a config error (exit 2) naming its key. NaN passes every range check written
as ``x <= 0`` (no comparison with it is true), so before, 28 float keys of the shipped schemas took it:
``train.lr=nan`` trained on NaN, ``request_timeout_s=nan`` gave requests no timeout, ``budget.max_hours=nan``
no hours cap, ``late_after_s=nan`` flagged no reaction late. Schemas whose own checks already refuse NaN
keep their messages."""

from __future__ import annotations

import dataclasses
import importlib
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import CONFIG_KINDS, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def _schema(kind: str) -> type:
    mod, _, cls = CONFIG_KINDS[kind].partition(":")
    return getattr(importlib.import_module(mod), cls)


def _float_keys(cls: type, prefix: str = "") -> list[str]:
    """The dotted keys of every float field of a config schema, nested groups included."""
    hints, out = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if t is float or t == (float | None):
            out.append(prefix + f.name)
        elif dataclasses.is_dataclass(t):
            out += _float_keys(t, f"{prefix}{f.name}.")
    return out


FLOAT_KEYS = [(kind, key) for kind in CONFIG_KINDS for key in _float_keys(_schema(kind))]


def test_the_schemas_have_float_keys_to_check() -> None:
    assert len(FLOAT_KEYS) > 50 and ("train", "train.lr") in FLOAT_KEYS


@pytest.mark.parametrize("kind, key", FLOAT_KEYS)
def test_nan_in_any_float_key_is_a_config_error_naming_it(kind: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_schema(kind), None, [f"{key}=nan"])
    assert f"{key}=nan" in str(err.value), str(err.value)


@pytest.mark.parametrize("value", ["inf", "-inf"])
@pytest.mark.parametrize("kind, key", FLOAT_KEYS)
def test_inf_in_any_float_key_is_a_config_error_naming_it(kind: str, key: str, value: str) -> None:
    """inf passes every lower bound: before, train.lr=inf trained 400 steps to a NaN model and exited 0."""
    with pytest.raises(ConfigError) as err:
        load_config(_schema(kind), None, [f"{key}={value}"])
    assert f"{key}={value}" in str(err.value), str(err.value)


def test_inf_names_itself_not_finite() -> None:
    from tracebridge.train.config import TrainConfig

    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, ROOT / "configs/train/cpu_tiny.yaml", ["train.lr=inf", "dpo.lr=1e400"])
    assert sorted(err.value.problems) == ["dpo.lr=inf: not finite; give a finite number",
                                  "train.lr=inf: not finite; give a finite number"], err.value.problems


def test_a_schema_check_that_refuses_nan_keeps_its_own_message() -> None:
    from tracebridge.ops.config import GateConfig

    with pytest.raises(ConfigError, match="max_token_increase=nan: must be a finite number >= 0"):
        load_config(GateConfig, None, ["max_token_increase=nan"])


@pytest.mark.parametrize("args", [["configs/train/cpu_tiny.yaml", "train.lr=nan"],
                                  ["configs/feedback/default.yaml", "late_after_s=nan"],
                                  ["configs/sweep/smoke.yaml", "bundle=b", "budget.max_hours=nan"]])
def test_config_show_exits_2(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, ["config", "show", *args])
    assert res.exit_code == 2, res.output
    assert f"{args[-1]}: not a number; give a finite number" in res.stderr
