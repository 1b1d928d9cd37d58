"""What ``tracebridge train`` prints about the evaluation's fitted prompts is true: prompts and pairs
apart, each of its total, those over even when fitted, and whether training fitted its rows at all."""

from __future__ import annotations

import json

from tracebridge.cli.train_notes import warn_trial_notes
from tracebridge.train.config import load_train_config

# extra.fit_context of the worker eval on 20 generated OpenClaw sessions (max_length 2048)
FIT = {"max_length": 2048, "pref_max_length": 2048, "prompts": 66, "fitted": 51, "over": 7, "refused": 0,
       "pairs": 12, "pairs_fitted": 10, "pairs_over": 2}


def _note(tmp_path, capsys, *overrides: str) -> str:
    (tmp_path / "eval_items.json").write_text(json.dumps({"extra": {"fit_context": FIT}}))
    result = {"variant": "baseline", "seed": 0, "worker/eval_rows": 66, "worker/eval_prompts_fitted": 61,
              "eval_items_path": str(tmp_path / "eval_items.json")}
    warn_trial_notes(result, load_train_config(None, ["role=worker", *overrides]))
    return capsys.readouterr().err


def test_the_note_counts_prompts_and_pairs_apart(tmp_path, capsys):
    """Before: 'eval fitted 61 prompts' next to eval_rows 66: 51 prompts and 10 pairs added up."""
    err = _note(tmp_path, capsys, "data.fit_context=true")
    assert "eval fitted 51 of 66 prompts and 10 of 12 pairs to 2048 tokens" in err, err
    assert "7 prompts and 2 pairs are over" in err and "61 prompts" not in err
    assert "as training fitted its rows (data.fit_context)" in err


def test_the_note_does_not_claim_training_fitted_when_it_did_not(tmp_path, capsys):
    """Before: with eval.fit_context=true alone the note said 'as in training', though TRL had cut or dropped
    the training rows (data.fit_context=false)."""
    err = _note(tmp_path, capsys, "eval.fit_context=true")
    assert "eval fitted 51 of 66 prompts" in err
    assert "as in training" not in err and "as training fitted" not in err
    assert "training did not fit its rows (data.fit_context=false)" in err
