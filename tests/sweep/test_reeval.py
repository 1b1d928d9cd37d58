"""A sweep's re-evaluation reports the metrics its trial reported: a DPO trial's ``reward_margin``
needs the model DPO started from as its reference, which the final checkpoint did not keep, so the
re-evaluated trial lost the metric (and the report compared variants without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.sweep.reeval import reevaluate
from tracebridge.sweep.trainable import pack_final
from tracebridge.train.trial import run_trial

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "train_views"


def test_reevaluating_a_dpo_trial_reports_its_reward_margin_as_the_trial_did(tmp_path):
    spec = {"role": "verifier", "variant": "optimized", "seed": 0, "config": str(ROOT / "configs/train/cpu_tiny.yaml"),
            "overrides": ["train.max_steps=2", "train.save_steps=0", "dpo.max_steps=2", "data.max_eval_rows=6",
                          "eval.n_boot=100"]}
    result = run_trial(spec, FIXTURE, tmp_path / "trial")
    assert result["verifier/reward_margin"] is not None and "dpo/steps" in result, result
    ckpt = pack_final(result, tmp_path / "trial", tmp_path / "checkpoint_000003", keep_model=True)
    assert (ckpt / "ref_model" / "config.json").is_file()
    again = reevaluate(ckpt, FIXTURE, [], tmp_path / "reeval")
    for metric in ("verifier/reward_margin", "verifier/pref_accuracy"):
        assert again[metric] == pytest.approx(result[metric], abs=1e-5), metric
    # the training's times stay, so the re-evaluated results.json has each variant's elapsed span
    assert (again["started_at"], again["finished_at"]) == (result["started_at"], result["finished_at"])
    # `tracebridge eval` on the sweep checkpoint's model/ takes the ref_model/ beside it as the reference
    import json

    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers every command module
    from tracebridge.cli.app import app

    res = CliRunner().invoke(app, ["eval", str(ckpt / "model"), spec["config"], *spec["overrides"], "role=verifier",
                                   "--bundle", str(FIXTURE), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)["metrics"]
    assert metrics["verifier/reward_margin"] == pytest.approx(result["verifier/reward_margin"], abs=1e-5)
