"""scripts/bench_feedback.py runs in smoke mode (so it does not rot): each ledger size is timed with the webhook's
ledger cache and with a fresh read, the two ledgers are identical, and the ratio line comes last."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_feedback_smoke(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_feedback.py"), "--smoke"], cwd=tmp_path,
                         check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("ledgers: 200, 1000 rows")
    for n, line in zip((200, 1000), lines[1:-1], strict=True):
        got = re.match(rf"{n} rows: cached ([\d.]+) ms/update .* fresh full read ([\d.]+) ms/update .*; identical ledgers$",
                       line)
        assert got and float(got[1]) > 0 and float(got[2]) > 0, line
    assert lines[-1].startswith("ratio fresh/cached at 1000 rows: ")
    assert float(lines[-1].rsplit(" ", 1)[1]) > 0
