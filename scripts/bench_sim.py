"""Simulator throughput: episodes/s of the default collection matrix with its worker processes,
against the same matrix run in one process (the baseline) in the same invocation.

    python scripts/bench_sim.py [--config configs/collect/default.yaml] [--smoke] [key=value ...]

Each run writes its traces to a temp dir that is removed afterwards. ``--smoke`` uses
configs/collect/smoke.yaml. The last line is the ratio (workers / one process).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tracebridge.config import load_config
from tracebridge.sim.collect import collect
from tracebridge.sim.config import CollectConfig


def run(cfg_path: Path, overrides: list[str]) -> tuple[float, int, dict]:
    cfg = load_config(CollectConfig, cfg_path, overrides)
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        s = collect(cfg, tmp)
    if s.failed_checks:
        print(f"  checks failed: {'; '.join(s.failed_checks)}")
    return s.episodes_per_s, s.episodes, s.to_dict()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "collect" / "default.yaml")
    ap.add_argument("--smoke", action="store_true", help="the smoke matrix (seconds)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the collect config")
    args = ap.parse_args()
    path = ROOT / "configs" / "collect" / "smoke.yaml" if args.smoke else args.config
    cfg = load_config(CollectConfig, path, args.overrides)
    workers = max(cfg.workers, 2)
    # Fixed random seeds so both runs do exactly the same episodes.
    common = [*args.overrides, "seeds.random_source=1234"]
    par, n, d = run(path, [*common, f"workers={workers}"])
    print(f"{path.name}: {n} episodes, {workers} worker processes: {par:.1f} episodes/s "
          f"(verdicts {d['verdict_shares']}, recovery {d['recovery_share']:.1%}, success {d['success_rate']:.1%})")
    base, n1, _ = run(path, [*common, "workers=1"])
    print(f"{path.name}: {n1} episodes, 1 process (baseline): {base:.1f} episodes/s")
    print(f"ratio workers/baseline: {par / base:.2f}x ({par:.1f} vs {base:.1f} episodes/s, cpus={os.cpu_count()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
