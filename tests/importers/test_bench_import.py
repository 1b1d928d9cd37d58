"""scripts/bench_import.py runs in smoke mode with --workers 2 (so neither rots) and ends with the ratio line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_import_smoke():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_import.py"), "--smoke", "--workers", "2"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-1].startswith("ratio import/(read+loads+dumps): ")
    float(lines[-1].rsplit(" ", 1)[1])
    assert lines[0].startswith("validate: PASS") and "40 transcripts" in lines[1]
    assert lines[-2].startswith("scaling, wall clock, 2 workers vs 1: ") and "reports identical" in lines[-2]
