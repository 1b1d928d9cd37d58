"""scripts/bench_ray.py --smoke runs against the session's head and ends with the ratio line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.cluster


def test_bench_ray_smoke(ray_head):
    res = subprocess.run([sys.executable, "scripts/bench_ray.py", "--smoke", "--cluster", ray_head["yaml"]], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    lines = res.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio tune/direct = \d+\.\d\d", lines[-1])
    assert any(re.match(r"submit -> running: \d+\.\d\d s", x) for x in lines)
    assert lines[0].startswith("2 trials")
