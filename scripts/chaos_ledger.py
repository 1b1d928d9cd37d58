"""Chaos run of the append-only ledgers: the feedback ledger (``append_locked``, also the
quarantine, harvest log and chunk registry) and the promotion history, with many concurrent
writer processes SIGKILLed at random moments and at crash points, thousands of writes.

    python scripts/chaos_ledger.py [--writers 8] [--writes 400] [--kills 200] [--seed 0] [--smoke]

Figures last; lost and duplicated must be 0, history_problems 0, pointer_matches_history 1.
Exit 1 when a promise is broken.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tracebridge.testing.ledger_chaos import ledger_chaos, promotion_chaos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--writes", type=int, default=400, help="writes per writer (ledger; promotion gets a quarter)")
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="a few seconds: 3 writers, 30 writes, 6 kills")
    a = ap.parse_args()
    if a.smoke:
        a.writers, a.writes, a.kills = 3, 30, 6
    with tempfile.TemporaryDirectory(prefix="chaos-ledger-") as tmp:
        t0 = time.monotonic()
        led = ledger_chaos(Path(tmp) / "ledger", a.writers, a.writes, a.kills, tear_p=0.01, seed=a.seed)
        t1 = time.monotonic()
        pro = promotion_chaos(Path(tmp) / "promotion", a.writers, max(a.writes // 4, 5), a.kills // 2,
                              tear_p=0.05, seed=a.seed)
        t2 = time.monotonic()
    ok = (led["lost"] == led["duplicated"] == led["expected_keys_missing"] == led["bad_quarantine"] == 0
          and pro["lost"] == pro["duplicated"] == pro["history_problems"] == 0 and pro["pointer_matches_history"] == 1)
    print(f"feedback ledger ({t1 - t0:.1f}s): " + ", ".join(f"{k}={v}" for k, v in led.items()))
    print(f"promotion history ({t2 - t1:.1f}s): " + ", ".join(f"{k}={v}" for k, v in pro.items()))
    print(f"writes acknowledged={led['acknowledged'] + pro['acknowledged']} "
          f"found={led['found'] + pro['found']} lost={led['lost'] + pro['lost']} "
          f"duplicated={led['duplicated'] + pro['duplicated']} kills={led['killed'] + pro['killed']} "
          f"{'OK' if ok else 'BROKEN'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
