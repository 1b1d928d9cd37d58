"""Recall and precision of the real detectors on the labelled corpus of ``pii_corpus``.

Matching rules:

- A finding is a true positive when it overlaps a planted value of a compatible type: the same
  type, or any two credential types (a GitHub token in a URL's userinfo found as the URL's
  password is still a redacted credential). Otherwise it is a false positive, whether it hits a
  planted negative or the surrounding text.
- A planted value is recalled when the compatible findings that overlap it cover every one of
  its characters.

Per-type recall is keyed by the planted type, per-type precision by the finding's type.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tracebridge.curate.detectors import Detectors, Span
from tracebridge.testing.pii_corpus import CREDENTIALS, Doc, Label


def compatible(label_kind: str, finding_kind: str) -> bool:
    """Whether a finding of ``finding_kind`` counts for a planted value of ``label_kind``."""
    return label_kind == finding_kind or (label_kind in CREDENTIALS and finding_kind in CREDENTIALS)


@dataclass
class Score:
    """Counts per type plus every miss and false positive (with its text, for the report)."""

    planted: Counter[str] = field(default_factory=Counter)
    recalled: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    true_pos: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (type, context, value)
    false_pos: list[tuple[str, str, str, str]] = field(default_factory=list)  # (type, context, text, negative hit)

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        return num / den if den else 1.0

    def recall(self, kind: str | None = None) -> float:
        """Recalled / planted, overall or for one planted type (1.0 when none was planted)."""
        if kind is None:
            return self._ratio(sum(self.recalled.values()), sum(self.planted.values()))
        return self._ratio(self.recalled[kind], self.planted[kind])

    def precision(self, kind: str | None = None) -> float:
        """True positives / findings, overall or for one finding type (1.0 when nothing was found)."""
        if kind is None:
            return self._ratio(sum(self.true_pos.values()), sum(self.found.values()))
        return self._ratio(self.true_pos[kind], self.found[kind])


def _covered(label: Label, spans: list[Span]) -> bool:
    pos = label.start
    for s in sorted(spans):
        if s.start > pos:
            return False
        pos = max(pos, s.end)
        if pos >= label.end:
            return True
    return pos >= label.end


def score(docs: list[Doc], detectors: Detectors) -> Score:
    """Run ``detectors.find`` over every document and match findings to labels."""
    sc = Score()
    for doc in docs:
        spans = detectors.find(doc.text)
        for lab in doc.labels:
            sc.planted[lab.kind] += 1
            hits = [s for s in spans if s.start < lab.end and lab.start < s.end and compatible(lab.kind, s.kind)]
            if _covered(lab, hits):
                sc.recalled[lab.kind] += 1
            else:
                sc.misses.append((lab.kind, doc.context, doc.text[lab.start:lab.end]))
        for s in spans:
            sc.found[s.kind] += 1
            if any(s.start < lab.end and lab.start < s.end and compatible(lab.kind, s.kind) for lab in doc.labels):
                sc.true_pos[s.kind] += 1
                continue
            neg = next((n.kind for n in doc.negatives if s.start < n.end and n.start < s.end), "")
            sc.false_pos.append((s.kind, doc.context, doc.text[s.start:s.end], neg))
    return sc
