"""Chunk-policy check: the chunked-message label policy is documented and applied in training joins.

A reply split over several Telegram messages is one *batch* in the sent-chunk registry (rows with
``batch_id``, ``message_id``, ``chunk_index``, ``chunk_count``, ``run_id``, ``event_id``). The
policy (issue 8, ``tracebridge.feedback``): a reaction on the last chunk labels the whole batch.
In the exported training rows (``meta.event_ids``, ``meta.labels``) that means: every row that
carries an event of a labelled batch carries the same feedback score. A batch where some rows
are labelled and others are not, or with two different scores, is a violation.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import iter_lines
from tracebridge.ops.artifacts import sha256_file
from tracebridge.ops.samples import feedback_score


def read_registry(path: Path) -> tuple[dict[str, set[str]], list[str]]:
    """Batch id → event ids of its chunks; and skipped lines as ``file:line:field: why``."""
    batches: dict[str, set[str]] = defaultdict(set)
    skipped = []
    if not path.is_file():
        return {}, []
    for line in iter_lines(path):
        row = line.obj
        if line.error or not isinstance(row, dict):
            skipped.append(f"{path}:{line.lineno}: {line.error or 'not an object'}")
            continue
        for k in ("batch_id", "event_id"):
            if not row.get(k):
                skipped.append(f"{path}:{line.lineno}:{k}: missing")
                break
        else:
            batches[str(row["batch_id"])].add(str(row["event_id"]))
    return dict(batches), skipped


def row_scores(bundle: Path, event_to_batch: dict[str, str]) -> dict[str, list[float | None]]:
    """Batch id → the feedback score (or None) of every exported row touching one of its events."""
    out: dict[str, list[float | None]] = defaultdict(list)
    for p in sorted(bundle.rglob("*.jsonl")):
        for line in iter_lines(p):
            meta = (line.obj or {}).get("meta") if isinstance(line.obj, dict) else None
            if not isinstance(meta, dict):
                continue
            hit = {event_to_batch[e] for e in meta.get("event_ids") or [] if e in event_to_batch}
            for b in hit:
                out[b].append(feedback_score(meta.get("labels") or {}))
    return dict(out)


def check_chunk_policy(doc: Path, registry: Path, export_bundle: Path) -> dict[str, Any]:
    """Whether the policy is documented and applied; evidence for the manifest."""
    documented = doc.is_file()
    batches, skipped = read_registry(registry)
    event_to_batch = {e: b for b, es in batches.items() for e in es}
    scores = row_scores(export_bundle, event_to_batch)
    violations, labelled = [], 0
    for b, vals in sorted(scores.items()):
        present = {v for v in vals if v is not None}
        if not present:
            continue
        labelled += 1
        if len(present) > 1:
            violations.append(f"batch {b}: rows carry different scores {sorted(present)}")
        elif None in vals:
            violations.append(f"batch {b}: {vals.count(None)} of {len(vals)} rows unlabelled")
    return {
        "doc": str(doc), "doc_sha256": sha256_file(doc) if documented else None,
        "registry": str(registry), "registry_present": registry.is_file(), "batches": len(batches),
        "batches_in_export": len(scores), "batches_labelled": labelled, "applied": documented and not violations,
        "violations": len(violations), "violation_examples": violations[:10], "registry_skipped": skipped[:10],
    }
