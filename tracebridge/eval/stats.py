"""Statistics over per-item metric values: bootstrap confidence intervals, paired differences,
and the winner rule.

A metric is a ratio of sums over items, ``sum(num) / sum(den)``: a rate has ``den`` = 1 for the
items it counts and 0 for the others (e.g. stop precision counts only predicted stops), so the
bootstrap resamples *items* and recomputes the ratio, which keeps precision-like metrics exact.
Paired differences resample the same item indices for both sides (same test rows or the same
closed-loop episodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Estimate:
    """A point value with its bootstrap interval over ``n`` counted items; a paired difference also
    keeps how many items each side counted (``n_a``, ``n_b``; None where unknown)."""

    value: float
    lo: float
    hi: float
    n: int
    n_a: int | None = None
    n_b: int | None = None

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or wholly below zero."""
        return bool(self.lo > 0 or self.hi < 0)

    def to_dict(self) -> dict[str, float | int]:
        """``{value, lo, hi, n}``."""
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}


def ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """``sum(num) / sum(den)``, NaN when nothing is counted."""
    d = float(np.sum(den))
    return float(np.sum(num)) / d if d else float("nan")


def _boot_idx(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    a = (1 - ci) / 2
    return float(np.quantile(samples, a)), float(np.quantile(samples, 1 - a))


def bootstrap(num: Sequence[float], den: Sequence[float], n_boot: int = 1000, ci: float = 0.95,
              seed: int = 0) -> Estimate:
    """Percentile bootstrap interval of ``sum(num)/sum(den)`` over items."""
    num_a, den_a = np.asarray(num, float), np.asarray(den, float)
    n = int(np.count_nonzero(den_a))
    if num_a.size == 0 or n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    idx = _boot_idx(num_a.size, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = num_a[idx].sum(1) / den_a[idx].sum(1)
    lo, hi = _interval(samples, ci)
    return Estimate(ratio(num_a, den_a), lo, hi, n)


def paired_difference(a: tuple[Sequence[float], Sequence[float]], b: tuple[Sequence[float], Sequence[float]],
                      n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> Estimate:
    """Interval of ``metric(a) - metric(b)`` when ``a`` and ``b`` score the same items.

    Args:
        a: ``(num, den)`` of the first side (e.g. optimized).
        b: ``(num, den)`` of the second side (e.g. baseline), same item order and length.

    Raises:
        ValueError: when the sides do not have the same number of items.
    """
    an, ad = (np.asarray(x, float) for x in a)
    bn, bd = (np.asarray(x, float) for x in b)
    if not (an.size == ad.size == bn.size == bd.size):
        raise ValueError(f"paired difference needs the same items on both sides ({an.size} vs {bn.size})")
    if an.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    idx = _boot_idx(an.size, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = an[idx].sum(1) / ad[idx].sum(1) - bn[idx].sum(1) / bd[idx].sum(1)
    lo, hi = _interval(samples, ci)
    n = int(np.count_nonzero(ad + bd))
    return Estimate(ratio(an, ad) - ratio(bn, bd), lo, hi, n, int(np.count_nonzero(ad)), int(np.count_nonzero(bd)))


@dataclass
class Verdict:
    """The winner decision of one role."""

    winner: str | None
    reason: str


def decide_winner(primary: Estimate, guarded: dict[str, Estimate], higher_is_better: dict[str, bool],
                  challenger: str = "optimized", incumbent: str = "baseline") -> Verdict:
    """A challenger wins only when the primary uplift's interval excludes zero on the good side and
    no guarded metric regresses (its paired interval lies wholly on the bad side) or became
    unmeasurable; the incumbent wins when the challenger's primary difference is significantly negative.

    A guard the incumbent measured (``n_b`` > 0) but the challenger counted no item of (``n_a`` == 0:
    e.g. it never made a tool call, so ``tool_call_validity`` has nothing to count) cannot show that it
    did not regress, so it blocks the win; a guard neither side measured (``n`` == 0) is neutral.

    A primary difference over no items (``n`` == 0: no trial pair, or no item of the metric counted) names
    no winner and says that nothing was compared, rather than "no significant difference" of NaNs.

    Args:
        primary: paired difference challenger − incumbent of the primary metric (higher is better).
        guarded: paired differences challenger − incumbent of the guarded metrics (``paired_difference``).
        higher_is_better: direction of each guarded metric.
    """
    if not primary.n:
        return Verdict(None, f"nothing was compared: no item of the primary metric was paired between {challenger} "
                             f"and {incumbent}")
    if primary.hi < 0:  # guards only ever block a challenger, never an incumbent
        return Verdict(incumbent, f"{challenger} is worse: {primary.value:+.3f} [{primary.lo:+.3f}, {primary.hi:+.3f}]")
    regressed = [k for k, e in guarded.items()
                 if e.n and ((higher_is_better.get(k, True) and e.hi < 0) or
                             (not higher_is_better.get(k, True) and e.lo > 0))]
    lost = [k for k, e in guarded.items() if e.n_b and e.n_a == 0]
    if regressed or lost:
        why = [f"guarded metric(s) regressed: {', '.join(sorted(regressed))}"] if regressed else []
        why += [(f"guarded metric(s) {incumbent} measured but {challenger} could not be measured on (no items "
                 f"counted): {', '.join(sorted(lost))}")] if lost else []
        return Verdict(None, "; ".join(why))
    if primary.lo > 0:
        return Verdict(challenger, f"uplift {primary.value:+.3f} [{primary.lo:+.3f}, {primary.hi:+.3f}] excludes 0")
    return Verdict(None, f"no significant difference: {primary.value:+.3f} [{primary.lo:+.3f}, {primary.hi:+.3f}]")
