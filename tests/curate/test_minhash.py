"""The numpy MinHash/LSH finds what datasketch (which the check used before) finds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tracebridge.curate.config import SPLITS, LeakageConfig
from tracebridge.curate.minhash import MinHasher, lsh_bands
from tracebridge.curate.split import LeakageTracker, shingles

datasketch = pytest.importorskip("datasketch", minversion="2.0")  # the reference: affine32 is its 2.x default
MinHash, MinHashLSH = datasketch.MinHash, datasketch.MinHashLSH
_optimal_param = datasketch.lsh._optimal_param

WORDS = ("count the lines in file notes report number river flows through capital of norway list every "
         "open ticket assigned to me summarise last week deploy log find failing tests restart worker")


def _prompts(seed: int = 7, n: int = 120) -> list[tuple[str, str]]:
    """(split, prompt): random prompts, a third of them a copy of an earlier one with 0-4 words changed."""
    rng, vocab = random.Random(seed), WORDS.split()
    out: list[tuple[str, str]] = []
    for _ in range(n):
        if out and rng.random() < 0.35:
            words = rng.choice(out)[1].split()
            for _ in range(rng.randint(0, 4)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(4, 30))]
        out.append((rng.choice(SPLITS), " ".join(words)))
    return out


@pytest.mark.parametrize("num_perm", [16, 64, 128])
def test_bands_match_datasketch(num_perm: int) -> None:
    for threshold in (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        assert lsh_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5), threshold


def test_signatures_match_datasketch() -> None:
    hasher = MinHasher(64, seed=1)
    for _, prompt in _prompts(n=20) + [("train", ""), ("train", "!!")]:
        sh = shingles(prompt, 3)
        ref = MinHash(num_perm=64, seed=1, scheme="affine32")
        ref.update_batch(sh)
        assert np.array_equal(hasher.signature(sh), ref.hashvalues), prompt


def test_near_duplicates_match_datasketch() -> None:
    cfg = LeakageConfig(num_perm=64, near_dup_threshold=0.7)
    t = LeakageTracker(cfg)
    for i, (split, prompt) in enumerate(_prompts()):
        t.add(split, f"fam{i}", f"{i:064x}", prompt, f"r{i:03d}")
    near = t.near_duplicates()

    sample = {s: sorted(t._sample[s], reverse=True) for s in SPLITS}
    want: dict[str, int] = {}
    first: list[dict[str, str]] = []
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            lsh = MinHashLSH(threshold=cfg.near_dup_threshold, num_perm=cfg.num_perm)
            for _, rid, p in sample[a]:
                m = MinHash(num_perm=cfg.num_perm, seed=1, scheme="affine32")
                m.update_batch(shingles(p, cfg.shingle))
                lsh.insert(rid, m)
            want[f"{a}~{b}"] = 0
            for _, rid, p in sample[b]:
                m = MinHash(num_perm=cfg.num_perm, seed=1, scheme="affine32")
                m.update_batch(shingles(p, cfg.shingle))
                found = sorted(lsh.query(m))
                if found:
                    want[f"{a}~{b}"] += 1
                    first.append({"split_a": a, "run_a": found[0], "split_b": b, "run_b": rid})
    assert near["cross_split_near_duplicates"] == want
    assert near["examples"] == first[:10]
    assert 0 < near["total"] < 120  # the fixture has near-duplicates across splits, and not only those
