"""The Python part of scripts/gpu_check.sh, on CPU at tiny size (the GPU run is manual)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tracebridge.train.gpu_check import main, synth_rows

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_sft_then_dpo_and_reports_speed_and_memory(tmp_path, capsys):
    summary = main(["--model", str(ROOT / "configs/model/tiny.yaml"), "--steps", "10", "--rows", "24",
                    "--seq-len", "256", "--chars", "200", "--batch-size", "4", "--lr", "3e-3",
                    "--out", str(tmp_path), "--json"])
    assert summary["ok"] and summary["device"] == "cpu"
    for phase in ("sft", "dpo"):
        r = summary[phase]
        assert r["steps"] == 10 and r["tokens_per_s"] > 0 and r["peak_memory_gib"] > 0
    assert summary["prepared"]["trials"] == ["stored", "loaded"] and summary["prepared"]["ok"]
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("{")


def test_synthetic_rows_reach_the_target_length():
    sft, pref = synth_rows("verifier", 3, 1500)
    assert len(sft) == len(pref) == 3
    assert all(len(r["messages"][1]["content"]) >= 1500 for r in sft)
    assert pref[0]["chosen"][0]["content"].startswith("verdict: ")


def test_the_shell_script_parses():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts/gpu_check.sh")], check=False).returncode == 0
