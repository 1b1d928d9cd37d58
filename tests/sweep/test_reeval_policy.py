"""A sweep's re-evaluation scores a checkpoint on the rows its trial evaluated: under the trial's
behaviour policy, not the rows as exported."""

from __future__ import annotations

import json
from pathlib import Path

from tracebridge.config import to_dict
from tracebridge.eval import offline
from tracebridge.sweep.reeval import reevaluate
from tracebridge.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "train_views"


def test_reevaluation_puts_the_rows_under_the_trials_behaviour_policy(tmp_path, monkeypatch):
    """Before: reevaluate loaded the rows as exported, so a trial trained with behaviour.tool_schemas=none
    was re-evaluated with every tool schema in its prompts."""
    from tracebridge.train.models import save_model_and_tokenizer, tiny_model_and_tokenizer

    ckpt = tmp_path / "checkpoint_000001"
    save_model_and_tokenizer(*tiny_model_and_tokenizer(), ckpt / "model")
    cfg = load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"), ["role=worker", "behaviour.tool_schemas=none"])
    (ckpt / "trial.json").write_text(json.dumps({"config": to_dict(cfg)}))
    (ckpt / "result.json").write_text(json.dumps({"role": "worker", "variant": "baseline", "seed": 0}))
    seen = {}

    def stub(model, tok, cfg, data, ref_model=None):
        seen["data"] = data
        return offline.OfflineResult(cfg.role), {"worker/eval_rows": 1}

    monkeypatch.setattr(offline, "evaluate_split", stub)
    out = reevaluate(ckpt, FIXTURE, ["eval.n_boot=100"], tmp_path / "out")
    assert out["worker/eval_rows"] == 1 and out["variant"] == "baseline"
    rows = seen["data"].sft + seen["data"].recovery_sft
    assert rows and all("tools" not in r and r["meta"].get("exported_tools") for r in rows)
