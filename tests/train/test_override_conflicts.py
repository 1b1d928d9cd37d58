"""``tracebridge train`` with conflicting inputs: ``train.lr=1e-3 train.lr=3e-3`` trained at 3e-3 without a word
(the last one won), and ``variant=optimized --variants baseline`` trained the baseline (the option won). Both are
refused now, before anything trains (exit 2), naming the key and each value given."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"


def run(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["train", CFG, *args, "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                    "--json"])


def test_a_key_given_twice_with_different_values_is_refused(tmp_path):
    res = run(tmp_path, "train.lr=1e-3", "train.max_steps=2", "eval.n_boot=100", "train.lr=3e-3")
    assert res.exit_code == 2, res.output
    body = json.loads(res.stdout)
    assert body["problems"] == ["train.lr: given 2 times (1e-3, 3e-3); give it once"]
    assert not (tmp_path / "runs").exists()


def test_variant_or_seed_beside_the_option_that_names_them_is_refused(tmp_path):
    res = run(tmp_path, "variant=optimized", "seed=3", "train.max_steps=2", "eval.n_boot=100", "--variants", "baseline",
              "--seeds", "0,1")
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["problems"] == [
        "variant=optimized and --variants baseline: say it once (the option names every trial's variant)",
        "seed=3 and --seeds 0,1: say it once (the option names every trial's seed)"]
    assert not (tmp_path / "runs").exists()
