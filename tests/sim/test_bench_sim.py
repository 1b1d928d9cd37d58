"""scripts/bench_sim.py runs in smoke mode (so it cannot rot) and ends with the ratio line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_sim_smoke():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_sim.py"), "--smoke"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-1].startswith("ratio workers/baseline: ") and "episodes/s" in lines[-1]
    assert "32 episodes" in lines[0] and "checks failed" not in res.stdout
