"""The goal-family split and the cross-split leakage checks.

``assign_families`` gives every goal family one split, deterministically (per source kind, so
each source gets its share of every split; families are named by ``family_key``, so ``split.assign``
keys match whatever their case and spacing): fixed assignments
first, then families in the order of ``sha256(salt + family)``, each to the split furthest below
its target share of runs; when only as many families are left as there are empty splits with
a share > 0, they go to those splits, so validation and test are not left empty while families
remain (fewer families than that fill train and test before validation: trials evaluate on test). The
same family counts and config always give the same assignment.

``LeakageTracker`` checks, while rows stream out, that no family and no goal hash lands in two
splits (exact, one small entry per goal) and samples prompt texts per split for a MinHash
near-duplicate check across splits at the end. The sample is bounded: the ``k`` prompts with
the smallest hash per split (bottom-k, order-independent), so memory does not grow with input.
The MinHash and LSH are ``tracebridge.curate.minhash`` (datasketch's sketch without its import).
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections import defaultdict
from typing import Any

from tracebridge.curate.config import NEEDED_SPLITS, SPLITS, LeakageConfig, SplitConfig, family_key
from tracebridge.curate.minhash import LSHIndex, MinHasher

_WORD = re.compile(r"\w+")


def _order_key(salt: str, family: str) -> str:
    return hashlib.sha256(f"{salt}\0{family}".encode()).hexdigest()


def assign_families(counts: dict[str, int], cfg: SplitConfig, groups: dict[str, str] | None = None) -> dict[str, str]:
    """Family → split.

    Args:
        counts: runs per family.
        cfg: ratios, salt and fixed assignments.
        groups: family → group (its runs' source kind). Each group is split on its own, so every
            source gets its share of each split: without this, many small OpenClaw families can
            fill validation and test and leave the simulator's few large families (the only ones
            with planner and verifier rows) all in train.
    """
    by_group: dict[str, dict[str, int]] = {}
    for fam, n in counts.items():
        by_group.setdefault((groups or {}).get(fam, ""), {})[fam] = n
    out: dict[str, str] = {}
    for group in sorted(by_group):
        out.update(_assign(by_group[group], cfg))
    return out


def unfilled_splits(cfg: SplitConfig, assignment: dict[str, str], prefix: str = "split") -> list[str]:
    """Problems of an export's family → split ``assignment``: a split the bundle needs (train, test) that has
    no share in ``cfg.ratios`` and none of whose fixed families (``cfg.assign``) is in the traces, so it is
    empty (the config's own check lets a share of 0 pass only with families fixed to that split)."""
    out = []
    for split in NEEDED_SPLITS:
        if assignment and not cfg.ratios.get(split) and split not in assignment.values():
            fixed = sorted(f for f, s in cfg.assign.items() if s == split)
            out.append(f"{prefix}.ratios.{split}=0 and {prefix}.assign fixes {', '.join(fixed) or 'no family'} to "
                       f"{split}, but the traces hold none of them (families: {', '.join(sorted(assignment))}): the "
                       f"{split} split is empty; fix a family of these traces to it ({prefix}.assign.FAMILY={split}) "
                       f"or give it a share ({prefix}.ratios.{split}=0.1)")
    return out


def unmatched_assign(cfg: SplitConfig, assignment: dict[str, str]) -> list[str]:
    """``split.assign`` keys that name no family of an export's ``assignment`` (a typo, a family these traces
    lack, a chat kind of a source split by goal): they fixed nothing, and the report says so."""
    return sorted(f for f in cfg.assign if family_key(f) not in assignment)


def _assign(counts: dict[str, int], cfg: SplitConfig) -> dict[str, str]:
    out = {f: s for f, s in ((family_key(f), s) for f, s in cfg.assign.items()) if f in counts}
    have = {s: sum(counts[f] for f, x in out.items() if x == s) for s in SPLITS}
    total = sum(counts.values()) or 1
    active = [s for s in SPLITS if cfg.ratios.get(s, 0) > 0]
    rest = sorted((f for f in counts if f not in out), key=lambda f: _order_key(cfg.salt, f))
    for i, fam in enumerate(rest):
        empty = [s for s in active if have[s] == 0]
        left = len(rest) - i
        pool = empty if empty and left <= len(empty) else active
        # too few families for every empty split: train and test first (trials train on one and evaluate on the
        # other), validation last; two families went to train and validation, and no trial could evaluate
        few = left < len(empty)
        split = max(pool, key=lambda s: (few and s in NEEDED_SPLITS, cfg.ratios.get(s, 0) * total - have[s],
                                         -SPLITS.index(s)))
        out[fam] = split
        have[split] += counts[fam]
    return out


def shingles(text: str, n: int) -> list[bytes]:
    """Word n-grams of ``text`` (lower-cased); the words themselves when shorter than ``n``."""
    words = _WORD.findall(text.lower())
    if len(words) <= n:
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)]


def _goal_bytes(goal_hash: str) -> bytes:
    """A goal hash's first 8 bytes (16 hex digits); one that is no hex (``session.json`` asks a string, and a
    runtime may write its own task id) is hashed: ``bytes.fromhex`` raised and ended the whole export."""
    if len(goal_hash) < 16:
        return goal_hash.encode()
    try:
        return bytes.fromhex(goal_hash[:16])
    except ValueError:
        return hashlib.blake2b(goal_hash.encode(), digest_size=8).digest()


class LeakageTracker:
    """Exact family/goal leakage and a bounded MinHash sample of prompts per split."""

    def __init__(self, cfg: LeakageConfig) -> None:
        self.cfg = cfg
        self.family_splits: dict[str, set[str]] = defaultdict(set)
        self.goal_splits: dict[bytes, int] = {}
        self.goal_leaks = 0
        self._sample: dict[str, list[tuple[int, str, str]]] = defaultdict(list)  # max-heap via -h
        self._seen_prompts: dict[str, int] = defaultdict(int)

    def add(self, split: str, family: str, goal_hash: str, prompt: str, run_id: str) -> None:
        """Register one exported run."""
        self.family_splits[family].add(split)
        key = _goal_bytes(goal_hash)
        bit = 1 << SPLITS.index(split)
        prev = self.goal_splits.get(key, 0)
        if prev and not prev & bit:
            self.goal_leaks += 1
        self.goal_splits[key] = prev | bit
        if not prompt:
            return
        self._seen_prompts[split] += 1
        h = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "big")
        heap = self._sample[split]
        item = (-h, run_id, prompt)
        if len(heap) < self.cfg.max_signatures_per_split:
            heapq.heappush(heap, item)
        elif -h > heap[0][0]:
            heapq.heapreplace(heap, item)

    def near_duplicates(self) -> dict[str, Any]:
        """MinHash LSH across every pair of splits over the sampled prompts."""
        hasher = MinHasher(self.cfg.num_perm, seed=1)
        sigs = {s: [(rid, hasher.signature(shingles(p, self.cfg.shingle)))
                    for _, rid, p in sorted(self._sample[s], reverse=True)]
                for s in SPLITS if self._sample.get(s)}
        pairs: dict[str, int] = {}
        examples: list[dict[str, str]] = []
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1:]:
                if a not in sigs or b not in sigs:
                    continue
                lsh = LSHIndex(self.cfg.near_dup_threshold, self.cfg.num_perm)
                for rid, m in sigs[a]:
                    lsh.insert(rid, m)
                hits = 0
                for rid, m in sigs[b]:
                    found = sorted(lsh.query(m))
                    if found:
                        hits += 1
                        if len(examples) < 10:
                            examples.append({"split_a": a, "run_a": found[0], "split_b": b, "run_b": rid})
                pairs[f"{a}~{b}"] = hits
        return {"method": f"MinHash LSH (num_perm={self.cfg.num_perm}, {self.cfg.shingle}-word shingles, "
                          f"threshold={self.cfg.near_dup_threshold}) on goal prompts",
                "sampled": {s: len(self._sample.get(s, [])) for s in SPLITS},
                "prompts": {s: self._seen_prompts.get(s, 0) for s in SPLITS},
                "cross_split_near_duplicates": pairs, "total": sum(pairs.values()), "examples": examples}

    def report(self) -> dict[str, Any]:
        """Leakage summary; ``passed`` covers the exact checks (near-duplicates are reported)."""
        fam_leaks = sorted(f for f, s in self.family_splits.items() if len(s) > 1)
        near = self.near_duplicates()
        return {"families_in_several_splits": fam_leaks, "goal_hashes_in_several_splits": self.goal_leaks,
                "near_duplicates": near, "passed": not fam_leaks and self.goal_leaks == 0,
                "near_duplicates_passed": near["total"] == 0}
