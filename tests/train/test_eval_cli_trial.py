"""``tracebridge eval`` on a trial's checkpoint evaluates what the trial evaluated: the rows under the
behaviour policy the model trained with, and (for a DPO checkpoint) the reward margin against the SFT
model; it says when its settings differ from the trial's, and prints counts as counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.config import to_dict
from tracebridge.eval import offline
from tracebridge.eval.settings import PROMPTS_FIT
from tracebridge.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "train_views"
CONFIG = ROOT / "configs" / "train" / "cpu_tiny.yaml"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A trial-shaped folder: sft/final and dpo/final hold the same saved tiny model."""
    from tracebridge.train.models import save_model_and_tokenizer, tiny_model_and_tokenizer

    work = tmp_path_factory.mktemp("trial") / "worker-optimized-s0"
    model, tok = tiny_model_and_tokenizer()
    for phase in ("sft", "dpo"):
        save_model_and_tokenizer(model, tok, work / phase / "final")
    return work


@pytest.fixture
def captured(monkeypatch):
    """``evaluate_split`` replaced by a stub that records its data and reference model."""
    seen: dict = {}

    def stub(model, tok, cfg, data, ref_model=None):
        seen.update(data=data, ref_model=ref_model, cfg=cfg)
        return offline.OfflineResult(cfg.role), {f"{cfg.role}/eval_rows": 3, f"{cfg.role}/eval_prompts_fitted": 1}

    monkeypatch.setattr(offline, "evaluate_split", stub)
    return seen


def _eval(ckpt: Path, *args: str):
    return CliRunner().invoke(app, ["eval", str(ckpt), str(CONFIG), "role=worker", *args, "--bundle", str(FIXTURE)])


def test_eval_puts_the_rows_under_the_trained_behaviour_policy(saved, captured):
    """Before: eval loaded the rows as exported, so a model trained with behaviour.tool_schemas=none was
    evaluated with every tool schema in its prompt (tool_call_validity 0.0 in the trial, n/a in eval)."""
    res = _eval(saved / "sft" / "final", "behaviour.tool_schemas=none")
    assert res.exit_code == 0, res.output
    rows = captured["data"].sft + captured["data"].recovery_sft
    assert rows and all("tools" not in r and r["meta"].get("exported_tools") for r in rows)


def test_eval_of_a_dpo_checkpoint_scores_the_reward_margin_against_the_sft_model(saved, captured):
    """Before: no reference model, so the trial's worker/reward_margin was missing from eval's numbers."""
    assert _eval(saved / "dpo" / "final").exit_code == 0
    assert captured["ref_model"] is not None
    assert _eval(saved / "sft" / "final").exit_code == 0
    assert captured["ref_model"] is None


def test_eval_says_where_its_settings_differ_from_the_trial(saved, captured):
    """Before: nothing said that the trial fitted its prompts (data.fit_context=true) and this run did not."""
    trial = load_train_config(str(CONFIG), ["role=worker", "variant=optimized", "data.fit_context=true",
                                            "train.max_length=2048", "dpo.max_length=2048"])
    (saved / "trial.json").write_text(json.dumps({"result": {"role": "worker"}, "config": to_dict(trial)}))
    try:
        res = CliRunner().invoke(app, ["eval", str(saved / "sft" / "final"), str(CONFIG), "role=worker",
                                       "--bundle", str(FIXTURE), "--json"])
        assert res.exit_code == 0, res.output
        body = json.loads(res.stdout)
        assert body["differs_from_trial"][PROMPTS_FIT] == {"trial": 2048, "this run": 0}
        assert "differ from the trial's" in res.stderr and "data.fit_context=true" in res.stderr
        same = ["data.fit_context=true", "train.max_length=2048", "dpo.max_length=2048", "variant=optimized"]
        res = CliRunner().invoke(app, ["eval", str(saved / "sft" / "final"), str(CONFIG), "role=worker", *same,
                                       "--bundle", str(FIXTURE), "--json"])
        assert res.exit_code == 0 and "differs_from_trial" not in json.loads(res.stdout), res.output
    finally:
        (saved / "trial.json").unlink()


def test_eval_prints_counts_without_an_interval(saved, captured):
    """Before: 'worker/eval_rows   3.0000  [nan, nan]'."""
    res = _eval(saved / "sft" / "final")
    assert res.exit_code == 0, res.output
    assert "nan" not in res.output
    assert any(line.split() == ["worker/eval_rows", "3"] for line in res.output.splitlines()), res.output
