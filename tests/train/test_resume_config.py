"""``tracebridge train --resume`` refuses a trial folder trained with another config, naming each key that
differs, before anything trains (exit 2). Before, a verifier checkpoint resumed with ``role=planner`` or a
baseline trial resumed as ``--variants optimized`` trained on silently (exit 0), and ``model.hidden_size``
changed failed the trial after it started with a page of torch size-mismatch lines (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.train.resume_config import resume_config_problem

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"
FAST = ["train.max_steps=2", "train.save_steps=2", "eval.n_boot=100"]


def _train(out: Path, *extra: str) -> object:
    given = {e.split("=", 1)[0] for e in extra}  # a key given twice with two values is refused (734d72e): extra's wins
    fast = [f for f in FAST if f.split("=", 1)[0] not in given]
    return CliRunner().invoke(app, ["train", CFG, *fast, *extra, "--bundle", str(FIXTURE), "--out", str(out)])


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("resume") / "runs"
    assert _train(runs).exit_code == 0
    work = runs / "verifier-baseline-s0"
    assert json.loads((work / "trial_config.json").read_text())["role"] == "verifier"
    return work


@pytest.mark.parametrize("extra, said", [
    (["role=planner"], "role: 'verifier', now 'planner'"),
    (["--variants", "optimized"], "variant: 'baseline', now 'optimized'"),
    (["model.hidden_size=128", "train.lr=1e-3"], "model.hidden_size: 64, now 128; train.lr: 0.005, now 0.001"),
])
def test_a_resume_under_another_config_names_each_key_before_training(trial, tmp_path, extra, said):
    ck = trial / "sft" / "checkpoint-2"
    res = _train(tmp_path / "runs", *extra, "--resume", str(ck))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"--resume {ck}: trained with another config ({trial / 'trial_config.json'}): {said}" in res.stderr
    assert "drop --resume to train afresh" in res.stderr and not (tmp_path / "runs").exists()


def test_a_resume_may_run_longer_and_evaluate_otherwise(trial, tmp_path):
    res = _train(tmp_path / "runs", "train.max_steps=3", "eval.n_boot=200", "threads=1", "--resume", str(trial))
    assert res.exit_code == 0, res.output


def test_a_finished_trials_config_counts_and_a_folder_without_one_is_not_compared(trial, tmp_path):
    work = tmp_path / "old"
    work.mkdir()
    assert resume_config_problem(work, {"role": "planner"}) is None  # older than trial_config.json
    config = json.loads((trial / "trial_config.json").read_text())
    (work / "trial.json").write_text(json.dumps({"result": {}, "config": config}))
    assert resume_config_problem(work, config) is None
    assert "seed: 0, now 1" in resume_config_problem(work, {**config, "seed": 1})
