"""Issue point 7: learning is visible on CPU. On a real simulator bundle's verifier view, the
tiny CPU profile (configs/train/cpu_tiny.yaml, ~1.5 minutes of training on one core) beats the
majority-class baseline on verdict accuracy with the paired interval excluding zero, and the
report shows the optimized variant's effect with its interval."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_verifier_beats_the_majority_class_and_the_report_shows_the_optimized_effect(sim_bundle, tmp_path):
    res = CliRunner().invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "--bundle", str(sim_bundle),
                                   "--out", str(tmp_path), "--variants", "baseline,optimized", "--json"])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "report" / "results.json").read_text())["roles"]["verifier"]
    base = results["variants"]["baseline"]["metrics"]
    uplift = base["uplift_vs_majority"]
    assert base["accuracy"]["n"] >= 200
    assert uplift["lo"] > 0, f"baseline accuracy {base['accuracy']} vs majority {base['majority_accuracy']}"
    effect = results["comparison"]["accuracy"]
    assert all(math.isfinite(effect[k]) for k in ("value", "lo", "hi")) and effect["lo"] <= effect["value"] <= effect["hi"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert 'data-kind="differences"' in html and "uplift_vs_majority" in html
