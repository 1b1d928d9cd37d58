"""Recall and precision of the redaction detectors on the independent hold-out corpus.

    python scripts/chaos_pii_holdout.py [--seed 0] [--docs 600] [--show 3]

Builds ``tracebridge.testing.pii_holdout`` (written without looking at the detectors or at
``pii_corpus``), runs each document through ``Redactor.redact`` as export does (record prefilter,
then ``Detectors.find``), and prints recall per planted type, the misses and false positives
(``--show`` examples per type; values are synthetic), values redacted under another type, and last the overall recall and precision.
Exit 1 when recall is below ``--min-recall`` (0.99) or precision below ``--min-precision`` (0.95), as ``chaos_pii.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracebridge.curate.redact import Redactor
from tracebridge.testing.pii_holdout import TYPES, build_holdout, holdout_config, score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="corpus seed")
    ap.add_argument("--docs", type=int, default=600, help="documents to generate")
    ap.add_argument("--show", type=int, default=3, help="examples printed per missed type / false-positive type")
    ap.add_argument("--min-recall", type=float, default=0.99, help="overall recall below this exits 1")
    ap.add_argument("--min-precision", type=float, default=0.95, help="overall precision below this exits 1")
    args = ap.parse_args()

    sc = score(build_holdout(args.seed, args.docs), Redactor(holdout_config(), key=b"holdout"))
    print(f"{'type':<14}{'planted':>8}{'recalled':>9}{'recall':>8}")
    for kind in TYPES:
        print(f"{kind:<14}{sc.planted[kind]:>8}{sc.recalled[kind]:>9}{sc.recall(kind):>8.4f}")

    misses = defaultdict(list)
    for kind, value, line in sc.misses:
        misses[kind].append((value, line))
    print(f"\nmisses: {len(sc.misses)}")
    for kind, rows in sorted(misses.items()):
        print(f"  {kind} ({len(rows)}):")
        for value, line in rows[:args.show]:
            print(f"    {value!r}  in  {line!r}")

    print(f"\nmislabelled (redacted, but under another type): {len(sc.mislabelled)}")
    for kind, found, value in sc.mislabelled[:args.show * 3]:
        print(f"    {kind} as {found}: {value!r}")

    fps = defaultdict(list)
    for kind, text, neg, line in sc.false_pos:
        fps[kind, neg].append((text, line))
    print(f"\nfalse positives: {len(sc.false_pos)} of {sc.found} findings")
    for (kind, neg), rows in sorted(fps.items()):
        print(f"  {kind} on {neg} ({len(rows)}):")
        for text, line in rows[:args.show]:
            print(f"    {text!r}  in  {line!r}")

    n = sum(sc.planted.values())
    print(f"\noverall recall {sc.recall():.4f} ({n - len(sc.misses)}/{n})  "
          f"precision {sc.precision:.4f} ({sc.true_pos}/{sc.found})")
    missed = [f"{name} {value:.4f} < {floor}" for name, value, floor in
              (("recall", sc.recall(), args.min_recall), ("precision", sc.precision, args.min_precision))
              if value < floor]
    if missed:  # on stderr: the figures stay last on stdout
        print(f"FAIL: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
