"""Edges of ``tracebridge eval`` (and of ``train`` on a pretrained path) found by walking them as a user:
a checkpoint whose tokenizer has no chat template, and rows the bundle check quarantined."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.train.model_config import ModelConfig, chat_template_problem, model_path_problem
from tracebridge.train.models import tiny_model_and_tokenizer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/train/cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny model folder as a trial saves it (its tokenizer carries the tracebridge template)."""
    path = tmp_path_factory.mktemp("ckpt") / "final"
    model, tok = tiny_model_and_tokenizer()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _without_template(checkpoint: Path, out: Path) -> Path:
    shutil.copytree(checkpoint, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    return out


def test_eval_of_a_checkpoint_without_a_chat_template_exits_2_naming_it(checkpoint, tmp_path):
    """Before: the model loaded, then transformers' ValueError traceback at the first prompt (exit 1)."""
    bare = _without_template(checkpoint, tmp_path / "bare")
    assert chat_template_problem(checkpoint) is None and chat_template_problem(bare) is not None
    res = CliRunner().invoke(app, ["eval", str(bare), CONFIG, "--bundle", str(FIXTURE), "--json"])
    assert res.exit_code == 2, res.output
    err = json.loads(res.stdout)["error"]
    assert err.startswith("checkpoint not usable") and f"{bare}: its tokenizer has no chat template" in err


def test_train_from_a_tokenizer_without_a_chat_template_exits_2_before_any_trial(checkpoint, tmp_path):
    """Before: with model.chat_template=native each trial failed on "TypeError: expected string or
    bytes-like object, got 'NoneType'" (exit 1), naming neither the tokenizer nor the fix."""
    bare = _without_template(checkpoint, tmp_path / "bare")
    native = ModelConfig(init="pretrained", path=str(bare), chat_template="native")
    assert "set model.chat_template=tracebridge" in model_path_problem(native)
    assert model_path_problem(ModelConfig(init="pretrained", path=str(bare))) is None  # ours replaces it
    res = CliRunner().invoke(app, ["train", CONFIG, "model.init=pretrained", f"model.path={bare}",
                                   "model.chat_template=native", "--bundle", str(FIXTURE),
                                   "--out", str(tmp_path / "runs"), "--json"])
    assert res.exit_code == 2, res.output
    assert f"model.path={bare}: its tokenizer has no chat template" in json.loads(res.stdout)["error"]
    assert not (tmp_path / "runs").exists()


def test_eval_counts_and_lists_quarantined_rows(checkpoint, tmp_path):
    """Before: a torn row was left out of the evaluation with only a log line; --json did not say so."""
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    view = bundle / "verifier_sft.jsonl"
    lines = view.read_text().splitlines()
    lines[4] = lines[4][:-5]
    view.write_text("".join(line + "\n" for line in lines))
    args = ["eval", str(checkpoint), CONFIG, "data.verify_bundle=false", "eval.n_boot=100", "--bundle", str(bundle)]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)["data"]
    assert (data["read"], data["quarantined"]) == (145, 1)
    assert data["quarantine"][0]["where"] == f"{view}:5:row" and data["quarantine"][0]["reason"].startswith("not JSON")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert f"warning: {bundle}: 1 of 145 rows of the role's views quarantined (not evaluated): first {view}:5:row" in res.stderr
