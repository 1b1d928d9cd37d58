"""The main job end to end on this machine (``make demo``).

Today: record sample runs with the Recorder and validate them. Later stages (collect →
export → sweep on an embedded Ray head → pull report) extend this script.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo_out"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import record_sample_run

    shutil.rmtree(OUT, ignore_errors=True)
    traces = OUT / "traces"
    for i in range(5):
        record_sample_run(traces, fail_tool=bool(i % 2), goal=f"count lines in notes{i}.txt")
    print(f"recorded 5 runs under {traces}")
    return subprocess.call([sys.executable, "-m", "tracebridge.cli.__main__", "validate", str(traces)])


if __name__ == "__main__":
    raise SystemExit(main())
