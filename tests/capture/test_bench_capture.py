"""scripts/bench_capture.py runs in smoke mode (so it does not rot): the bare loop, the recorder and the
recorder with pass-1 redaction are each timed, and the ratio line comes last."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_capture_smoke():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_capture.py"), "--smoke"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "events: 500"
    timed = {line.split(":")[0]: line for line in lines[1:-1]}
    assert set(timed) == {"bare json.dumps+write", "Recorder.emit", "Recorder.emit+redact"}
    for name in ("Recorder.emit", "Recorder.emit+redact"):
        p50, rate = re.search(r"p50 ([\d.]+) µs .* ([\d,]+) events/s", timed[name]).groups()
        assert float(p50) > 0 and int(rate.replace(",", "")) > 0
    assert lines[-1].startswith("ratio recorder/bare (p50): ") and lines[-1].endswith("x")
    assert float(lines[-1].rsplit(" ", 1)[1].rstrip("x")) > 0
