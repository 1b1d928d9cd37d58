"""MinHash signatures and LSH banding for the cross-split near-duplicate check, in numpy.

The same sketch as ``datasketch`` 2's default (``MinHash(scheme="affine32")`` and ``MinHashLSH``
with weights 0.5/0.5): SHA-1 32-bit shingle hashes pre-mixed by the MurmurHash3 finalizer,
``a*h + b mod 2**32`` permutations drawn from ``RandomState(seed)``, and the (bands, rows) that
minimise false positives + false negatives at the threshold. The signatures and the candidates
a query finds are the same as datasketch's (``tests/curate/test_minhash.py`` compares them); what
this module saves is datasketch's import, which loads ``scipy.integrate`` and its async Redis
storage (~0.6 s a process) for one integral that Gauss-Legendre nodes compute exactly here.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

_MAX = np.uint32(0xFFFFFFFF)  # an empty set's signature value


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (a bijection that spreads weakly mixed input)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """Signatures of shingle sets under ``num_perm`` fixed permutations (one draw per instance)."""

    def __init__(self, num_perm: int, seed: int = 1) -> None:
        gen = np.random.RandomState(seed)
        self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)

    def signature(self, shingles: Iterable[bytes]) -> np.ndarray:
        """The per-permutation minimum hash of ``shingles`` (all ``2**32 - 1`` for none)."""
        hv = np.array([int.from_bytes(hashlib.sha1(s).digest()[:4], "little") for s in shingles], dtype=np.uint32)
        if not hv.size:
            return np.full(len(self.a), _MAX, dtype=np.uint32)
        with np.errstate(over="ignore"):  # uint32 wrap-around is the modulo 2**32
            return (_fmix32(hv).reshape(-1, 1) * self.a + self.b).min(axis=0)


@lru_cache(maxsize=32)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) with bands * rows <= ``num_perm`` minimising the false-positive
    mass below ``threshold`` plus the false-negative mass above it (equal weights).

    The collision probability ``1 - (1 - s**r)**b`` is a polynomial of degree ``b*r <= num_perm``,
    so Gauss-Legendre with ``num_perm // 2 + 1`` nodes integrates it exactly.
    """
    x, w = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    lo, hi = threshold / 2 * (x + 1), threshold + (1 - threshold) / 2 * (x + 1)  # nodes on [0, t], [t, 1]
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = threshold / 2 * float(w @ (1 - (1 - lo ** r) ** b))
            fn = (1 - threshold) / 2 * float(w @ ((1 - hi ** r) ** b))
            if 0.5 * fp + 0.5 * fn < best:
                best, opt = 0.5 * fp + 0.5 * fn, (b, r)
    return opt


class LSHIndex:
    """Signatures banded into hash tables: a query finds every key (run id) sharing at least one band."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        b, r = lsh_bands(threshold, num_perm)
        self.ranges = [(i * r, (i + 1) * r) for i in range(b)]
        self.tables: list[dict[bytes, list[str]]] = [defaultdict(list) for _ in range(b)]

    def insert(self, key: str, sig: np.ndarray) -> None:
        """Add ``key`` under each band of its MinHash signature ``sig``."""
        for (lo, hi), table in zip(self.ranges, self.tables):
            table[sig[lo:hi].tobytes()].append(key)

    def query(self, sig: np.ndarray) -> set[str]:
        """Every key that shares at least one band with ``sig`` (near-duplicate candidates)."""
        out: set[str] = set()
        for (lo, hi), table in zip(self.ranges, self.tables):
            out.update(table.get(sig[lo:hi].tobytes(), ()))
        return out
