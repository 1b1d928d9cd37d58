"""PII/secret recall and precision of the real detectors on a seeded, labelled corpus.

    python scripts/chaos_pii.py [--seed 0] [--items 2100] [--smoke]

Plants values of every detector type (e-mail, phone, card, IBAN, IPv4/6, each credential kind,
user terms) in prose of seven languages, logs, nested and escaped JSON, code and config files,
URLs and markdown, next to hard negatives (versions, UUIDs, hashes, timestamps, Luhn-failing
order numbers, placeholders, code identifiers...), runs ``Detectors.find`` over every document
and matches findings to labels (see ``tracebridge.testing.pii_score``). Prints a per-type table,
then misses and false positives, and last the overall recall and precision with counts.
Targets: recall >= 0.99, precision >= 0.95 (``--min-recall``, ``--min-precision``); exit 1 below either.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracebridge.curate.detectors import Detectors
from tracebridge.testing.pii_corpus import build_corpus, corpus_config
from tracebridge.testing.pii_score import score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="corpus seed")
    ap.add_argument("--items", type=int, default=2100, help="planted values (spread over every type, >= 25 each)")
    ap.add_argument("--show", type=int, default=20, help="misses and false positives listed (each)")
    ap.add_argument("--smoke", action="store_true", help="small corpus (525 items), for the test suite")
    ap.add_argument("--min-recall", type=float, default=0.99, help="overall recall below this exits 1")
    ap.add_argument("--min-precision", type=float, default=0.95, help="overall precision below this exits 1")
    args = ap.parse_args()
    items = 525 if args.smoke else args.items
    docs = build_corpus(args.seed, items)
    sc = score(docs, Detectors(corpus_config()))
    print(f"{'type':<14} {'planted':>7} {'recalled':>8} {'recall':>7} {'found':>6} {'tp':>5} {'precision':>9}")
    for kind in sorted(set(sc.planted) | set(sc.found)):
        print(f"{kind:<14} {sc.planted[kind]:>7} {sc.recalled[kind]:>8} {sc.recall(kind):>7.3f} "
              f"{sc.found[kind]:>6} {sc.true_pos[kind]:>5} {sc.precision(kind):>9.3f}")
    for kind, ctx, value in sc.misses[:args.show]:
        print(f"MISS {kind} in {ctx}: {value[:100]!r}")
    for kind, ctx, value, neg in sc.false_pos[:args.show]:
        print(f"FALSE POSITIVE {kind} in {ctx}: {value[:100]!r}{f' (planted {neg})' if neg else ''}")
    planted, recalled = sum(sc.planted.values()), sum(sc.recalled.values())
    found, tp = sum(sc.found.values()), sum(sc.true_pos.values())
    negs = sum(len(d.negatives) for d in docs)
    print(f"seed {args.seed}: {len(docs)} docs, {negs} hard negatives; recall {sc.recall():.4f} ({recalled}/{planted}, "
          f"misses {planted - recalled}), precision {sc.precision():.4f} ({tp}/{found}, false positives {found - tp})")
    return below_targets(sc.recall(), sc.precision(), args.min_recall, args.min_precision)


def below_targets(recall: float, precision: float, min_recall: float, min_precision: float) -> int:
    """1 (and why, on stderr) when recall or precision misses its target, else 0: the figures stay last on stdout."""
    missed = [f"{name} {value:.4f} < {floor}" for name, value, floor in
              (("recall", recall, min_recall), ("precision", precision, min_precision)) if value < floor]
    if missed:
        print(f"FAIL: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
