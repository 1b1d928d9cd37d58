"""The gates' bootstrap interval (``ops.stats.bootstrap_diff_ci``) draws its resamples a few at a time:
an arm of 133k sessions (two weeks at 10k a day) took ``n_boot x len(arm)`` indices at once, 2 GB a
check; the interval is the same whatever the chunk, seeded, and covers the true difference."""

from __future__ import annotations

import numpy as np
import pytest

from tracebridge.ops import stats


@pytest.mark.parametrize("chunk", [1, 997, 1 << 22])
def test_the_interval_is_the_same_drawn_in_chunks(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    cand, base = list(rng.normal(0.3, 1, size=400)), list(rng.normal(0.0, 1, size=900))
    whole = stats.bootstrap_diff_ci(cand, base, n_boot=500, seed=7)
    monkeypatch.setattr(stats, "_CHUNK", chunk)  # 1: one resample at a time; 997: a few rows, not dividing n_boot
    assert stats.bootstrap_diff_ci(cand, base, n_boot=500, seed=7) == whole
    assert whole[0] < 0.3 < whole[1] and whole[0] > 0  # the true difference inside, zero outside


def test_a_large_arm_is_resampled_within_the_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory follows the chunk, not ``n_boot x len(arm)`` (numpy's arrays are traced by tracemalloc)."""
    import tracemalloc

    def peak(chunk: int) -> tuple[float, tuple[float, float]]:
        monkeypatch.setattr(stats, "_CHUNK", chunk)
        tracemalloc.start()
        try:
            ci = stats.bootstrap_diff_ci([1.0] * 30, [0.0] * 4000, n_boot=200, seed=1)
            return tracemalloc.get_traced_memory()[1] / 1e6, ci
        finally:
            tracemalloc.stop()

    small, ci = peak(10_000)
    big, same = peak(1 << 30)
    assert ci == same == (1.0, 1.0)
    assert big > 6 and small < 1, (big, small)  # 200 x 4000 indices are 6.4 MB at once
