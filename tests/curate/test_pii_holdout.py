"""The redaction detectors on a seeded slice of the independent hold-out corpus (``pii_holdout``).

Types the detectors fully recall must stay at recall 1.0. Types with a known gap are strict xfails
naming the gap, so closing it flips the test; ``test_misses_are_only_the_known_gaps`` keeps the rest
of each gapped type (and every other form) from regressing meanwhile. The same split holds for
precision: false positives outside the known class fail at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tracebridge.curate.redact import Redactor
from tracebridge.testing.pii_holdout import TYPES, Score, build_holdout, holdout_config, score

# type -> (what the detectors miss, which missed values that explains); none open now, a gap found
# later goes here and its test_full_recall turns a strict xfail
GAPS: dict[str, tuple[str, Callable[[str], bool]]] = {}
# the known false positives: bare 10-11 digit numbers and dates read as US phones, a ghp_ placeholder
FP_CLASS = ("PHONE on byte counts / order numbers / dates (order #5132795740, 15804339869 bytes, 13.10.2021, "
            "13/10/2023); GITHUB_TOKEN on the placeholder ghp_XXXX")


def _known_fp(kind: str, text: str) -> bool:
    return (kind == "PHONE" and bool(re.fullmatch(r"[\d./ -]+", text))) or text == "ghp_XXXX"


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
    """The known false-positive class stays below 1% of the findings (7 of 742 on this slice)."""
    assert holdout.precision >= 0.99, f"precision {holdout.precision:.4f}: {holdout.false_pos[:5]}"


def test_false_positives_are_only_the_known_class(holdout: Score) -> None:
    other = [fp for fp in holdout.false_pos if not _known_fp(fp[0], fp[1])]
    assert not other, f"false positives outside '{FP_CLASS}': {other[:5]}"
    assert holdout.found > 300 and len(holdout.false_pos) / holdout.found < 0.05
