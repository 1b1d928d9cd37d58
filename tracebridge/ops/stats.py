"""Statistics the gates use: one-sided regression tests and seeded bootstrap intervals (pure).

Tests are one-sided in the direction of harm: "is the candidate *worse* than the baseline?".
A small p-value is evidence of a regression.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def two_proportion_ztest(x_cand: int, n_cand: int, x_base: int, n_base: int) -> float:
    """One-sided p-value of H1: candidate rate < baseline rate (pooled two-proportion z-test).

    Returns 1.0 when the test is undefined (an empty arm, or both rates 0 or 1).
    """
    if n_cand == 0 or n_base == 0:
        return 1.0
    pooled = (x_cand + x_base) / (n_cand + n_base)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_cand + 1 / n_base))
    if se == 0:
        return 1.0
    z = (x_cand / n_cand - x_base / n_base) / se
    from scipy.stats import norm

    return float(norm.cdf(z))


def mann_whitney_p(cand: Sequence[float], base: Sequence[float], alternative: str) -> float:
    """One-sided Mann-Whitney U p-value; ``alternative`` is ``less`` or ``greater`` for the candidate.

    Returns 1.0 when either sample is empty or all values are equal.
    """
    if not cand or not base:
        return 1.0
    if len(set(cand) | set(base)) == 1:
        return 1.0
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(cand, base, alternative=alternative).pvalue)


def bootstrap_diff_ci(cand: Sequence[float], base: Sequence[float], n_boot: int, seed: int,
                      ci: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(candidate) − mean(baseline), seeded (reproducible)."""
    if not cand or not base:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    ma = _resampled_means(np.asarray(cand, dtype=float), n_boot, rng)
    mb = _resampled_means(np.asarray(base, dtype=float), n_boot, rng)
    lo, hi = np.quantile(ma - mb, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return (round(float(lo), 6), round(float(hi), 6))


_CHUNK = 1 << 22  # resample indices drawn at a time (32 MB): an arm of 133k sessions took 2 GB per check at once


def _resampled_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The means of ``n_boot`` resamples of ``x``, drawn a few resamples at a time: the same draws, in
    the same order, as one ``(n_boot, len(x))`` draw, so the interval is the same for any chunk size."""
    rows = max(1, _CHUNK // len(x))
    return np.concatenate([x[rng.integers(0, len(x), size=(min(rows, n_boot - at), len(x)))].mean(axis=1)
                           for at in range(0, n_boot, rows)])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation); nan for an empty sample."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; nan for an empty sample."""
    return float(sum(values) / len(values)) if values else float("nan")


def rel_increase(cand: float, base: float) -> float:
    """(cand − base) / base; 0 when both are 0, inf when only the baseline is 0."""
    if base == 0:
        return 0.0 if cand == 0 else math.inf
    return (cand - base) / base
