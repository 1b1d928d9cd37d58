"""Bootstrap intervals, paired differences and the winner rule."""

from __future__ import annotations

import numpy as np
import pytest

from tracebridge.eval.stats import Estimate, bootstrap, decide_winner, paired_difference, ratio


def test_ratio_ignores_uncounted_items():
    assert ratio([1, 0, 1, 0], [1, 1, 1, 0]) == pytest.approx(2 / 3)
    assert np.isnan(ratio([0], [0]))


def test_bootstrap_interval_brackets_the_value_and_shrinks_with_n():
    small = bootstrap([1, 0] * 10, [1] * 20, n_boot=2000, seed=1)
    big = bootstrap([1, 0] * 500, [1] * 1000, n_boot=2000, seed=1)
    assert small.value == big.value == 0.5
    assert small.lo < 0.5 < small.hi and big.lo < 0.5 < big.hi
    assert (big.hi - big.lo) < (small.hi - small.lo) / 4
    # the normal approximation for a proportion: half-width ~ 1.96*sqrt(.25/1000) = 0.031
    assert (big.hi - big.lo) / 2 == pytest.approx(0.031, abs=0.006)
    assert bootstrap([1] * 10, [1] * 10).lo == 1.0            # no variance, degenerate interval


def test_paired_difference_uses_the_pairing():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, 200).astype(float)
    better = base.copy()
    flip = np.where(base == 0)[0][:20]
    better[flip] = 1  # +20 items of 200: +0.10 exactly, each pair differs by 0 or +1
    d = paired_difference((better, np.ones(200)), (base, np.ones(200)), n_boot=2000, seed=0)
    assert d.value == pytest.approx(0.10)
    assert d.lo > 0 and d.excludes_zero
    # the same two marginals unpaired (independent resampling) would give a much wider interval
    idx = rng.permutation(200)
    loose = paired_difference((better[idx], np.ones(200)), (base, np.ones(200)), n_boot=2000, seed=0)
    assert (loose.hi - loose.lo) > 2 * (d.hi - d.lo)
    with pytest.raises(ValueError):
        paired_difference(([1], [1]), ([1, 0], [1, 1]))


def test_winner_needs_significant_uplift_and_no_guard_regression():
    up = Estimate(0.1, 0.02, 0.18, 100)
    flat = Estimate(0.01, -0.05, 0.07, 100)
    assert decide_winner(up, {}, {}).winner == "optimized"
    assert decide_winner(flat, {}, {}).winner is None
    assert decide_winner(Estimate(-0.1, -0.2, -0.03, 100), {}, {}).winner == "baseline"
    # a significantly worse challenger loses even when its guards also regress
    assert decide_winner(Estimate(-0.1, -0.2, -0.03, 100), {"false_stop_rate": Estimate(0.2, 0.1, 0.3, 50)},
                         {"false_stop_rate": False}).winner == "baseline"
    # false stops going up significantly blocks the win (lower is better)
    guard = {"false_stop_rate": Estimate(0.08, 0.01, 0.15, 50)}
    v = decide_winner(up, guard, {"false_stop_rate": False})
    assert v.winner is None and "false_stop_rate" in v.reason
    # a guard that moves but not significantly does not block
    assert decide_winner(up, {"false_stop_rate": Estimate(0.05, -0.02, 0.1, 50)}, {"false_stop_rate": False}).winner == "optimized"


def test_a_guard_the_challenger_made_unmeasurable_blocks_the_win():
    up = Estimate(0.1, 0.02, 0.18, 100)
    # the baseline made tool calls on 40 items, the candidate on none: validity cannot show no regression
    lost = paired_difference(([0.0] * 40, [0.0] * 40), ([1.0] * 40, [1.0] * 40))
    assert (lost.n_a, lost.n_b) == (0, 40)
    v = decide_winner(up, {"tool_call_validity": lost}, {"tool_call_validity": True})
    assert v.winner is None and "tool_call_validity" in v.reason and "could not be measured" in v.reason
    # unmeasured on both sides: neutral; measured only by the candidate: nothing it could regress from
    none = paired_difference(([0.0] * 40, [0.0] * 40), ([0.0] * 40, [0.0] * 40))
    new = paired_difference(([1.0] * 40, [1.0] * 40), ([0.0] * 40, [0.0] * 40))
    for g in (none, new):
        assert decide_winner(up, {"tool_call_validity": g}, {"tool_call_validity": True}).winner == "optimized"
    # an incumbent's significant win is not blocked by the challenger's missing guard
    worse = Estimate(-0.1, -0.2, -0.03, 100)
    assert decide_winner(worse, {"tool_call_validity": lost}, {"tool_call_validity": True}).winner == "baseline"
