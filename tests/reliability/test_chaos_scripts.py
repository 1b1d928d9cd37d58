"""The chaos scripts run in smoke mode (so they cannot rot) and report zero violations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> list[str]:
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.strip().splitlines()


def test_chaos_capture_smoke():
    last = _run("chaos_capture.py", "--smoke")[-1]
    assert "lost 0" in last and "violations 0" in last


def test_chaos_fuzz_smoke():
    out = _run("chaos_fuzz.py", "--smoke")
    assert [ln.split(":")[0] for ln in out[:4]] == ["reader", "config", "openclaw", "telegram"]
    assert "400 cases over 4 kinds, crashes 0, hangs 0, lost 0, unreconciled 0, unlocated 0, bad_lineage 0" in out[-1]


def test_pii_scripts_exit_1_below_their_targets():
    """chaos_pii.py and chaos_pii_holdout.py printed recall and precision and exited 0 whatever they were, so a
    run below the documented targets (recall 0.99, precision 0.95) passed any script or CI step that ran it."""
    for script, args in (("chaos_pii.py", ["--smoke"]), ("chaos_pii_holdout.py", ["--docs", "60"])):
        for floor, expect in (("--min-recall", "FAIL: recall"), ("--min-precision", "FAIL: precision")):
            res = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args, floor, "1.01"],
                                 capture_output=True, text=True, timeout=600, check=False)
            assert res.returncode == 1 and expect in res.stderr, (script, floor, res.returncode, res.stderr)
            assert "precision" in res.stdout.strip().splitlines()[-1]  # the figures stay last
        assert _run(script, *args)[-1]  # the shipped targets pass
