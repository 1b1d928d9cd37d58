"""``model.init=pretrained model.path=FOLDER`` (and ``model.path`` as the tokenizer of a random init) is
checked before any trial starts: a folder that lacks what ``save_pretrained`` writes is a config error
(exit 2) naming ``model.path`` and each missing file. Before, a folder without a tokenizer vocabulary
trained silently with a one-token tokenizer (exit 0), and a missing folder failed the trial with
transformers' "Repo id must be in the form 'repo_name'..." (exit 1), its trial folder left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.config import ConfigError
from tracebridge.train.model_config import ModelConfig, model_folder_problem, model_path_problem
from tracebridge.train.trial import run_trial

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    from tracebridge.train.models import save_model_and_tokenizer, tiny_model_and_tokenizer

    return save_model_and_tokenizer(*tiny_model_and_tokenizer(), tmp_path_factory.mktemp("m") / "tiny")


def _without(saved: Path, tmp: Path, *names: str) -> Path:
    copy = Path(shutil.copytree(saved, tmp / "model"))
    for n in names:
        (copy / n).unlink()
    return copy


@pytest.mark.parametrize("gone, said", [(("config.json",), "config.json with a model_type"),
                                        (("model.safetensors",), "weights (model.safetensors"),
                                        (("tokenizer.json",), "a tokenizer vocabulary (tokenizer.json"),
                                        (("tokenizer_config.json", "tokenizer.json"),
                                         "tokenizer_config.json; a tokenizer vocabulary")])
def test_each_missing_file_is_named(saved, tmp_path, gone, said):
    assert model_folder_problem(saved) is None
    why = model_folder_problem(_without(saved, tmp_path, *gone))
    assert why.startswith("not a saved model folder (missing: ") and said in why, why


def test_a_random_init_needs_only_the_tokenizer_and_a_hub_name_is_left_to_the_hub(saved, tmp_path):
    no_weights = _without(saved, tmp_path, "model.safetensors", "config.json")
    assert model_path_problem(ModelConfig(path=str(no_weights))) is None
    assert "missing: config.json with a model_type; weights" in model_path_problem(
        ModelConfig(init="pretrained", path=str(no_weights)))
    assert model_path_problem(ModelConfig(init="pretrained", path="Qwen/Qwen2.5-0.5B")) is None
    assert model_path_problem(ModelConfig(init="pretrained", path=str(tmp_path / "nope"))) == \
        f"model.path={tmp_path / 'nope'}: no such folder; give a folder save_pretrained wrote (a trial's checkpoint_dir)"


@pytest.mark.parametrize("case", ["no_vocab", "no_folder"])
def test_train_refuses_the_folder_before_any_trial(saved, tmp_path, case):
    path = _without(saved, tmp_path, "tokenizer.json") if case == "no_vocab" else tmp_path / "nope"
    res = CliRunner().invoke(app, ["train", CFG, "train.max_steps=2", "model.init=pretrained", f"model.path={path}",
                                   "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"), "--json"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = "missing: a tokenizer vocabulary" if case == "no_vocab" else "no such folder"
    assert f"model.path={path}: " in res.stderr and said in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists()


def test_run_trial_refuses_it_before_the_trial_folder(saved, tmp_path):
    """The jobs (sweep, train_role) call run_trial directly."""
    path = _without(saved, tmp_path, "tokenizer.json", "tokenizer_config.json")
    with pytest.raises(ConfigError, match="missing: tokenizer_config.json"):
        run_trial({"config": CFG, "overrides": [f"model.path={path}"]}, FIXTURE, tmp_path / "trial")
    assert not (tmp_path / "trial").exists()


def test_eval_refuses_a_checkpoint_without_a_vocabulary(saved, tmp_path):
    ck = _without(saved, tmp_path, "tokenizer.json")
    res = CliRunner().invoke(app, ["eval", str(ck), CFG, "--bundle", str(FIXTURE)])
    assert res.exit_code == 2 and "checkpoint not usable (1 problem(s))" in res.stderr, res.output
    assert "missing: a tokenizer vocabulary" in res.stderr
