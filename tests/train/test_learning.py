"""Issue point 7: learning is visible on CPU. On a real simulator bundle's verifier view, the
tiny CPU profile (configs/train/cpu_tiny.yaml, ~1.5 minutes of training on one core) beats the
majority-class baseline on verdict accuracy with the paired interval excluding zero, and the
report shows the optimized variant's effect with its interval.

The two variants train side by side in two ``tracebridge train`` processes (one torch thread
each, as the profile sets), and ``tracebridge report`` joins their trial folders: the same report
``train --variants baseline,optimized`` writes, in half the wall time on a 2-core runner."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tracebridge(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen([sys.executable, "-m", "tracebridge.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen[str]) -> None:
    out, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, out[-4000:]


@pytest.mark.slow
def test_tiny_verifier_beats_the_majority_class_and_the_report_shows_the_optimized_effect(sim_bundle, tmp_path):
    config = str(ROOT / "configs/train/cpu_tiny.yaml")
    procs = [_tracebridge("train", config, "--bundle", str(sim_bundle), "--out", str(tmp_path / v),
                          "--variants", v, "--json") for v in ("baseline", "optimized")]
    for p in procs:
        _wait(p)
    _wait(_tracebridge("report", str(tmp_path / "baseline"), str(tmp_path / "optimized"),
                       "--out", str(tmp_path / "report"), "--json"))
    results = json.loads((tmp_path / "report" / "results.json").read_text())["roles"]["verifier"]
    assert set(results["variants"]) == {"baseline", "optimized"}
    base = results["variants"]["baseline"]["metrics"]
    uplift = base["uplift_vs_majority"]
    assert base["accuracy"]["n"] >= 200
    assert uplift["lo"] > 0, f"baseline accuracy {base['accuracy']} vs majority {base['majority_accuracy']}"
    effect = results["comparison"]["accuracy"]
    assert all(math.isfinite(effect[k]) for k in ("value", "lo", "hi")) and effect["lo"] <= effect["value"] <= effect["hi"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert 'data-kind="differences"' in html and "uplift_vs_majority" in html
