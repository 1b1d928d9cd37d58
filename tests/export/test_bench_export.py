"""scripts/bench_export.py runs in smoke mode and prints its figures, the ratio last."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_export_smoke() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "scripts/bench_export.py"), "--smoke"], capture_output=True,
                         text=True, timeout=300, check=True, cwd=ROOT)
    lines = res.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio export/plain \(MB/s\): \d+\.\d\d", lines[-1]), lines[-1]
    assert float(lines[-1].rsplit(" ", 1)[1]) > 0
    rss = next(line for line in lines if line.startswith("peak RSS"))
    assert re.search(r"\d+ MB at 1x .* \d+ MB at 2x", rss), rss
