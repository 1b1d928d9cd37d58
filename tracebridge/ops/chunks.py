"""Chunk-policy check: the chunked-message label policy is documented and applied in training joins.

A reply split over several Telegram messages is one *batch* in the sent-chunk registry (rows with
``batch_id``, ``message_id``, ``chunk_index``, ``chunk_count``, ``run_id``, ``event_id``). The
policy (issue 8, ``tracebridge.feedback``): a reaction on the last chunk labels the whole batch.
In the exported training rows (``meta.event_ids``, ``meta.labels``) that means: every row that
carries an event of a labelled batch carries the same feedback score. A batch where some rows
are labelled and others are not, or with two different scores, is a violation.

``reactions`` cross-references the reaction ledger the export joined (its manifest's ``feedback`` block):
how many reactions were present and how many of them reached a batch in the export, per UTC day of the
reaction, so the review can tell a broken join (reactions, none on an exported batch) from no reactions.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import iter_lines, parse_lines
from tracebridge.feedback.chunks import Registry
from tracebridge.feedback.chunks import read_registry as read_chunks
from tracebridge.feedback.join import join, replay, seen
from tracebridge.feedback.ledger import LedgerRow, check_row
from tracebridge.feedback.mapping import Mapping
from tracebridge.ops.artifacts import sha256_file
from tracebridge.ops.samples import feedback_score
from tracebridge.schema.canonical import sha256_bytes

_COUNTS = ("present", "joined", "in_export", "ignored", "orphans")


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


def _exported_ledger(block: dict[str, Any]) -> tuple[list[LedgerRow], bool, int]:
    """The ledger rows the export joined: the first ``bytes`` bytes of the ledger while they still hash to
    the manifest's ``sha256`` (the ledger is append-only and the cycle's harvest runs beside its export, so
    rows appended since were not in the join), else the whole current file. Returns (rows, as exported,
    unusable lines)."""
    path = Path(str(block.get("path") or "")).expanduser()
    if not block.get("path") or not path.is_file():
        return [], False, 0
    data, n = path.read_bytes(), block.get("bytes")
    exact = isinstance(n, int) and 0 <= n <= len(data) and sha256_bytes(data[:n]) == block.get("sha256")
    rows, bad = [], 0
    for ln in parse_lines((data[:n] if exact else data).splitlines(keepends=True)):
        got = check_row(ln.obj) if ln.error is None else "unparsable"
        if isinstance(got, str):
            bad += 1
        else:
            rows.append(got)
    return rows, exact, bad


def reaction_counts(export_bundle: Path, exported_batches: set[str]) -> dict[str, Any]:
    """The reactions of the ledger the export joined (``feedback`` of its manifest; none joined: ``ledger``
    None) after netting, as the join counts them: ``present`` = ``joined`` (on a registered chunk) +
    ``orphans`` (on a message in no registered batch) + ``ignored`` (``other_chunks=ignore``); a bot's copy
    another bot's copy counts for (``shared``) is left out. ``in_export``: the joined ones whose batch is one
    of ``exported_batches`` (has a row in the export); ``runs_not_in_export``: the runs of the joined ones
    that are not. ``by_day``: the same counts per UTC day the reaction was (last) added."""
    try:
        man = orjson.loads((export_bundle / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        man = {}
    fb = man.get("feedback") if isinstance(man, dict) and isinstance(man.get("feedback"), dict) else {}
    ledger = fb.get("ledger") if isinstance(fb.get("ledger"), dict) else {}
    out: dict[str, Any] = {"ledger": ledger.get("path"), "as_exported": False, "ledger_unusable": 0,
                           **dict.fromkeys(_COUNTS, 0), "by_day": {}, "orphan_samples": [],
                           "runs_not_in_export": []}
    if not ledger.get("path"):
        return out
    rows, out["as_exported"], out["ledger_unusable"] = _exported_ledger(ledger)
    legacy, other = str(fb.get("legacy_bot_id") or ""), str(fb.get("other_chunks") or "batch")
    registry = (fb.get("registry") or {}).get("path") if isinstance(fb.get("registry"), dict) else None
    chunks = read_chunks(Path(registry).expanduser(), legacy) if registry else Registry()  # none: all orphans
    res = join(rows, Mapping(0, {}), chunks, other, legacy)  # which reactions join does not depend on their scores
    days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNTS, 0))
    when = {key: row.time.date().isoformat() for key, (_, row) in replay(rows, legacy).items()}
    not_in: set[str] = set()
    for kind, keys in (("joined", [(k, c) for k, c, _ in res.joined]), ("ignored", [(k, None) for k in res.ignored]),
                       ("orphans", [(k, None) for k in res.orphans])):
        for key, chunk in keys:
            exported = chunk is not None and chunk.batch_id in exported_batches
            for counts in (out, days[when[key]]):
                counts["present"] += 1
                counts[kind] += 1
                counts["in_export"] += exported
            if chunk is not None and not exported:
                not_in.add(chunk.run_id)
    out["by_day"] = {d: days[d] for d in sorted(days)}
    out["orphan_samples"] = [seen(k) for k in res.orphans[:10]]
    out["runs_not_in_export"] = sorted(not_in)[:10]
    return out


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
        "reactions": reaction_counts(export_bundle, set(scores)),
    }
