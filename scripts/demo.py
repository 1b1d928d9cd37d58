"""The main job end to end on this machine (``make demo``).

collect simulator traces → validate → curate/export a content-addressed bundle → start an
embedded Ray head on 127.0.0.1 (token auth) → submit the sweep (baseline vs optimized × 3 roles
× one ablation, tiny model, CPU) → wait with progress → pull and verify the report → print the
path of report.html. Each step is the ``tracebridge`` command a user would type.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo_out"
TB = [sys.executable, "-m", "tracebridge.cli.__main__"]


def step(title: str, *args: str, capture: bool = False) -> str:
    print(f"\n==> {title}: tracebridge {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    res = subprocess.run([*TB, *args], cwd=ROOT, text=True,
                         stdout=subprocess.PIPE if capture else None, check=False)  # a failed step: SystemExit below
    print(f"    ({time.perf_counter() - t0:.1f} s)", flush=True)
    if res.returncode != 0:
        raise SystemExit(f"demo: step '{title}' failed with exit code {res.returncode}")
    return res.stdout or ""


def main() -> int:
    t0 = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    traces, bundles, reports = OUT / "traces", OUT / "bundles", OUT / "reports"
    step("collect", "collect", "configs/collect/default.yaml", "--out", str(traces))
    step("validate", "validate", str(traces))
    step("export", "export", str(traces), "--out", str(bundles))
    out = step("sweep on an embedded Ray head", "submit", "configs/sweep/demo.yaml",
               f"bundle={bundles}", "--out", str(reports), "--json", capture=True)
    summary = json.loads(out[out.index("{"):])
    print(f"\ndemo: done in {time.perf_counter() - t0:.0f} s")
    print(f"report: {summary.get('report')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
