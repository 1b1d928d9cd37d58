"""The redaction detectors on a seeded slice of the independent hold-out corpus (``pii_holdout``).

Types the detectors fully recall must stay at recall 1.0. Types with a known gap are strict xfails
naming the gap, so closing it flips the test; ``test_misses_are_only_the_known_gaps`` keeps the rest
of each gapped type (and every other form) from regressing meanwhile. The same split holds for
precision: false positives outside the known classes (none open now) fail at once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracebridge.curate.redact import Redactor
from tracebridge.testing.pii_holdout import TYPES, Score, build_holdout, holdout_config, score

# type -> (what the detectors miss, which missed values that explains); none open now, a gap found
# later goes here and its test_full_recall turns a strict xfail
GAPS: dict[str, tuple[str, Callable[[str], bool]]] = {}
# class -> whether a false positive (kind, text) is of it; none open now (phones read out of byte
# counts, order numbers, dotted dates and OIDs, and the placeholder ghp_XXXX were closed 2026-11-27),
# a class found later goes here and test_precision's floor holds it below 1%
FP_CLASSES: dict[str, Callable[[str, str], bool]] = {}


@pytest.fixture(scope="module")
def holdout() -> Score:
    return score(build_holdout(seed=7, docs=300), Redactor(holdout_config(), key=b"test"))


@pytest.mark.parametrize("kind", [
    pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=f"missed: {GAPS[k][0]}")) if k in GAPS else k
    for k in TYPES])
def test_full_recall(holdout: Score, kind: str) -> None:
    assert holdout.planted[kind] >= 5, f"slice plants too few {kind}"
    missed = [v for k, v, _ in holdout.misses if k == kind]
    assert holdout.recall(kind) == 1.0, f"{kind} missed: {missed[:5]}"


def test_misses_are_only_the_known_gaps(holdout: Score) -> None:
    other = [(k, v, line) for k, v, line in holdout.misses if k not in GAPS or not GAPS[k][1](v)]
    assert not other, f"misses outside the known gaps: {other[:5]}"


def test_every_gap_shows_in_the_slice(holdout: Score) -> None:
    """A gap absent from the slice would make its xfail pass for the wrong reason."""
    assert {k for k, _, _ in holdout.misses} == set(GAPS)


def test_precision(holdout: Score) -> None:
    """Known false-positive classes stay below 1% of the findings (none on this slice: 0 of 743)."""
    assert holdout.found > 300
    assert holdout.precision >= 0.99, f"precision {holdout.precision:.4f}: {holdout.false_pos[:5]}"


def test_false_positives_are_only_the_known_classes(holdout: Score) -> None:
    other = [fp for fp in holdout.false_pos if not any(known(fp[0], fp[1]) for known in FP_CLASSES.values())]
    assert not other, f"false positives outside {sorted(FP_CLASSES)}: {other[:5]}"
