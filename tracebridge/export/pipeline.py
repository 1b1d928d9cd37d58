"""``export_traces``: a trace root → curated, split, deduplicated views → one bundle.

Streams run by run (``tracebridge.capture.reader.iter_runs``, name order), so memory is bounded
by the largest run plus small per-run indexes (dedup and goal keys, ~100 bytes a run) and the
capped MinHash sample. For each run, in order:

1. quality: ``check_run`` plus the extra rules (``tracebridge.curate.quality``);
2. redaction: a run redacted at capture gets pass 2, a full scan of every record with this
   export's policy; any other run gets pass 1 here, and pass 2 re-scans every value pass 1
   rewrote (the values it left were scanned by the same deterministic detectors and found
   clean, so a full re-scan could only repeat that). Any pass-2 finding blocks the run;
3. views are built (``tracebridge.export.views``), their rows serialised, the dedup fingerprint
   taken;
4. a failing run is quarantined with its reasons (``quarantine.jsonl``), never dropped;
5. a run whose dedup fingerprint was seen before is counted in its cluster instead of written;
6. rows stream into ``views/<view>/<split>.jsonl`` by the run's goal-family split.

Steps 1-3 need nothing from other runs (``tracebridge.export.runwork.RunWork``; ``building.built_runs``): with
``workers > 1`` they run in worker processes, two runs per worker in flight, while this process
does steps 4-6 in run order, so the bundle is the same for any number of workers. A worker leaves
a run's rows in shared memory (``tracebridge.export.arena``), from which this process hashes and
writes them without copying; its share of the CPU is then mostly that hashing and writing (~20%
with two workers on OpenClaw sessions, whose rows are ~12x their input), the serial part. With
``cache_dir`` a run unchanged since an earlier export with that cache skips steps 1-3
(``tracebridge.export.runcache``); the bundle is the same.
With ``corrections.file`` the human corrections (``tracebridge.corrections``) are read once here and
joined to each run in step 3 (in memory; the traces are never edited); the report's
``corrections`` section accounts for every line and the manifest records the file's sha256.

Counts reconcile (read = accepted + quarantined; accepted = exported + duplicates) or the
export fails. The report, the masked config and the manifest are written last.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

import tracebridge
from tracebridge.capture.reader import RunDir, iter_runs
from tracebridge.corrections.records import CorrectionsFile, read_corrections
from tracebridge.corrections.summary import CorrectionsReport
from tracebridge.curate.config import SPLITS
from tracebridge.curate.dedup import DedupIndex
from tracebridge.curate.quality import Reason
from tracebridge.curate.split import (
    LeakageTracker,
    assign_families,
    unfilled_splits,
    unmatched_assign,
)
from tracebridge.export.building import built_runs
from tracebridge.export.bundle import BundleWriter, Manifest
from tracebridge.export.config import ExportConfig
from tracebridge.export.families import family_counts
from tracebridge.export.features import dataset_card, merge, to_features
from tracebridge.export.labels import LabelsForRun
from tracebridge.export.report import (
    Tally,
    balance_failures,
    build_report,
    class_balance,
    render_markdown,
)
from tracebridge.export.runcache import RunCache
from tracebridge.export.runwork import Built, RunWork
from tracebridge.export.views import AL_PREFIX, VIEW_KINDS
from tracebridge.schema.canonical import sha256_json, utc_now

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
_CORRECTION_COUNTS = ("file", "sha256", "lines_read", "applied", "unmatched", "quarantined")
# opt-in views keys left out of export_config.yaml (and config_hash) while 0 (off): bundles exported
# without them keep the ids they had before the keys existed. views.tool_output_max_chars is on by
# default (8000), so it is always written: a 0 left out would read back as the default.
_OPT_IN_VIEWS = ("context_max_chars",)


@dataclass
class ExportResult:
    """A finished export: where the bundle is, its manifest and report, and the verdict."""

    path: Path
    manifest: Manifest
    report: dict[str, Any]
    cache: dict[str, int] | None = None  # runs taken from / written to the run cache (``cache_dir``)

    @property
    def passed(self) -> bool:
        """The report's verdict (``report['passed']``)."""
        return bool(self.report["passed"])

    def summary(self) -> dict[str, Any]:
        """What ``tracebridge export --json`` prints."""
        return {"bundle_id": self.manifest.bundle_id, "path": str(self.path), "passed": self.passed,
                "failures": self.report["failures"], "counts": self.report["runs"], "rows": self.report["rows"],
                "quarantine": {"by_rule": self.report["quarantine"]["by_rule"],
                               "file": str(self.path / self.report["quarantine"]["file"])},
                "data_governance": self.manifest.governance, "leakage_passed": self.report["leakage"]["passed"],
                "class_balance_passed": self.report["class_balance"]["passed"],
                "class_balance_failures": balance_failures(self.report["class_balance"]["checks"]),
                **({"corrections": {k: self.report["corrections"][k] for k in _CORRECTION_COUNTS}}
                   if "corrections" in self.report else {}),
                **{k: self.report["views"][k] for k in ("rows_trimmed", "tool_outputs") if k in self.report["views"]},
                **({"feedback": self.report["feedback"]} if "feedback" in self.report else {}),
                **({"cache": self.cache} if self.cache is not None else {})}


def masked_config(cfg: ExportConfig) -> ExportConfig:
    """A copy of ``cfg`` whose redaction terms (names, hosts: PII themselves) are masked."""
    import copy

    out = copy.deepcopy(cfg)
    out.redaction.terms = {t: [f"<{t}_term_{i + 1}>" for i in range(len(ws))] for t, ws in cfg.redaction.terms.items()}
    return out


def git_sha() -> str | None:
    """The commit of the installed package's checkout, if any."""
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(tracebridge.__file__).parent, timeout=10,
                             capture_output=True, text=True, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None


class _Exporter:
    """The per-run loop of one export (state: tallies, indexes, the bundle writer)."""

    def __init__(self, root: Path, cfg: ExportConfig, writer: BundleWriter, labels_for_run: LabelsForRun | None,
                 corrections: CorrectionsFile | None = None):
        self.root, self.cfg, self.w = root, cfg, writer
        self.feedback_joined = labels_for_run is not None
        self.labels_for_run = labels_for_run
        self.feedback_sources = getattr(labels_for_run, "sources", None)  # the files the labels came from
        self.corrections = CorrectionsReport(corrections) if corrections is not None else None
        self.t = Tally()
        self.dedup = DedupIndex()
        self.leak = LeakageTracker(cfg.leakage)
        self.family_runs, family_sources = family_counts(root, cfg.split.by_goal_sources)
        self.assignment = assign_families(self.family_runs, cfg.split, family_sources)
        self.work = RunWork(cfg, self.assignment, labels_for_run,  # steps 1-3 when there are no workers
                            corrections.by_run if corrections is not None else None)
        self.redactor = self.work.redactor  # also masks quarantine messages and places (a field path names dict keys)
        self.types: dict[str, Any] = {}  # view file key -> type of its exported rows, every split (features.json)

    def quarantine(self, run: RunDir, reasons: list[Reason]) -> None:
        t, cap = self.t, self.cfg.quality.max_reasons_per_run
        t.quarantined += 1
        rules = sorted({r.rule for r in reasons})
        for rule in rules:
            t.quarantine_rules[rule] += 1
        mask = self.redactor.redact_text
        listed = [{**r.to_dict(), "where": mask(r.where, "_quarantine"), "message": mask(r.message, "_quarantine")}
                  for r in reasons[:cap]]
        self.w.write_row("quarantine.jsonl", {"run_id": run.run_id, "rules": rules, "reasons": listed,
                                              "reasons_total": len(reasons)})
        self.w.write_row("runs.jsonl", {"run_id": run.run_id, "status": "quarantined", "rules": rules})

    def take(self, ordinal: int, run: RunDir, b: Built) -> None:
        """Steps 5-6 of a built run, in run order: quarantine, or dedup verdict, rows and counts."""
        t = self.t
        t.merge(b.tally)
        if b.blocking:
            self.quarantine(run, b.blocking)
            self.corrected(run, b, "quarantined")
            t.feedback_quarantined += self.labelled(run)
            return
        t.accepted += 1
        if self.cfg.dedup.enabled and self.dedup.add(b.fingerprint, ordinal, run.run_id, b.counts):
            t.duplicates += 1
            self.w.write_row("runs.jsonl", {"run_id": run.run_id, "status": "duplicate", "split": b.split})
            self.corrected(run, b, "duplicate")
            t.feedback_duplicates += b.exported.feedback_runs  # its views were built with its labels
            return
        self.corrected(run, b, "exported")
        t.exported += 1
        if isinstance(b.rows, list):  # built in this process: one line a row, not joined
            at = 0
            for rel, size, n in b.files:
                self.w.write_lines(rel, b.rows[at:at + n], size)
                at += n
        else:
            rows, at = memoryview(b.rows), 0
            for rel, size, n in b.files:
                self.w.write_rows(rel, rows[at:at + size], n)
                at += size
        for key, typ in b.types.items():
            self.types[key] = merge(self.types.get(key), typ)
        t.merge(b.exported)
        t.families[b.family][b.split] += 1
        self.leak.add(b.split, b.family, b.goal_hash, b.goal_text, run.run_id)
        self.w.write_row("runs.jsonl", {"run_id": run.run_id, "status": "exported", "split": b.split,
                                        "rows": sum(b.counts.values())})


    def labelled(self, run: RunDir) -> bool:
        """Whether the feedback join labelled ``run``, a quarantined run (its views were never built, so the
        seam was not asked): before, the labels of a quarantined or duplicate run were lost without a word."""
        fb = self.labels_for_run(run.run_id) if self.labels_for_run is not None else None
        return bool(fb and (fb.get("run") or fb.get("events")))

    def corrected(self, run: RunDir, b: Built, status: str) -> None:
        """Account for the run's human corrections (every run: the rest are unmatched run ids)."""
        if self.corrections is not None:
            self.corrections.add(run.run_id, b.corrections, status)


def _rows_by_view(rows: dict[str, int]) -> dict[str, dict[str, int]]:
    """Rows per view and split; a view that got no row (no file: an OpenClaw bundle has no planner or
    verifier rows) is listed with zeros, so the report says it is empty instead of leaving it out."""
    out: dict[str, dict[str, int]] = {}
    for rel, n in sorted(rows.items()):
        parts = rel.split("/")
        if parts[0] == "views" or rel.startswith(AL_PREFIX):
            key = "/".join(parts[1:-1]) if parts[0] == "views" else "/".join(parts[:-1])
            out.setdefault(key, {})[parts[-1].removesuffix(".jsonl")] = n
    empty = {k: dict.fromkeys(SPLITS, 0) for k in VIEW_KINDS if k not in out}
    return dict(sorted({**out, **empty}.items(), key=lambda kv: (not kv[0].startswith(AL_PREFIX), kv[0])))


def _view_entries(rows: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for rel, n in sorted(rows.items()):
        parts = rel.split("/")
        if parts[0] != "views":
            continue
        key = "/".join(parts[1:-1])
        out.append({"view": key.split("/")[0], "file_key": key, "kind": VIEW_KINDS.get(key, "sft"),
                    "split": parts[-1].removesuffix(".jsonl"), "path": rel, "rows": n})
    return out


def _write_card(writer: BundleWriter, rows: dict[str, int], types: dict[str, Any]) -> dict[str, str]:
    """``features.json`` (each view's ``datasets`` features over all its splits) and the dataset card
    ``README.md`` (``tracebridge.export.features``); returns the manifest's ``datasets`` entry."""
    files: dict[str, dict[str, str]] = {}
    for e in _view_entries(rows):
        files.setdefault(e["file_key"], {})[e["split"]] = e["path"]
    for rel in sorted(rows):
        if rel.startswith(AL_PREFIX):
            files.setdefault(rel.rsplit("/", 1)[0], {})[rel.rsplit("/", 1)[1].removesuffix(".jsonl")] = rel
    order = {s: i for i, s in enumerate(SPLITS)}
    files = {k: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], len(order)))) for k, v in sorted(files.items())}
    features = {k: to_features(types.get(k)) for k in files}
    writer.write_file("features.json", orjson.dumps(features, option=orjson.OPT_INDENT_2))
    writer.write_file("README.md", dataset_card(files, features, _rows_by_view(rows)).encode())
    return {"card": "README.md", "features": "features.json"}


def _failures(ex: _Exporter, leakage: dict[str, Any], balance: dict[str, Any],
              view_rows: dict[str, dict[str, int]]) -> list[str]:
    t, cfg = ex.t, ex.cfg
    out = t.reconcile()
    if t.runs_read == 0:  # not "no run passed": nothing was quarantined, the root holds no run folder
        out.append(f"no runs found under {ex.root} (a run is a folder holding events.jsonl or session.json: "
                   "give the folder that holds the run folders, or one run's folder)")
    elif t.accepted == 0:
        out.append("no run passed curation")
    elif t.exported and not any(n for splits in view_rows.values() for n in splits.values()):
        # runs of a source no view reads (e.g. imported Agent Lightning spans) make a bundle nothing can
        # train on: say so here, not only when train finds the view empty
        out.append(f"no row in any view from {t.exported} exported runs: views are built from simulator-style "
                   f"runs (worker_input, planner and verifier events), from the chat runs of "
                   f"views.conversational_sources={list(cfg.views.conversational_sources)} and from the recorded "
                   f"model calls (llm blocks with a JSON message prompt and a reply) of "
                   f"views.llm_call_sources={list(cfg.views.llm_call_sources)}")
    out += unfilled_splits(cfg.split, ex.assignment)
    if not leakage["passed"]:
        out.append(f"split leakage: families {leakage['families_in_several_splits']}, "
                   f"goal hashes {leakage['goal_hashes_in_several_splits']}")
    if cfg.leakage.fail_on_near_duplicates and not leakage["near_duplicates_passed"]:
        out.append(f"near-duplicate prompts across splits: {leakage['near_duplicates']['total']}")
    pct = 100.0 * t.quarantined / t.runs_read if t.runs_read else 0.0
    if pct > cfg.quality.max_quarantined_pct:
        out.append(f"quarantined {pct:.1f}% of runs > quality.max_quarantined_pct={cfg.quality.max_quarantined_pct}")
    if cfg.balance.fail and not balance["passed"]:
        out.append("class balance (balance.fail): " + "; ".join(balance_failures(balance["checks"])))
    return out + (ex.corrections.failures() if ex.corrections is not None else [])


def _names(root: Path, ordinals: set[int]) -> dict[int, str]:
    return {i: r.run_id for i, r in enumerate(iter_runs(root)) if i in ordinals} if ordinals else {}


def export_traces(root: str | os.PathLike[str], out_dir: str | os.PathLike[str], cfg: ExportConfig | None = None,
                  labels_for_run: LabelsForRun | None = None, progress: Progress | None = None,
                  workers: int = 1, cache_dir: str | os.PathLike[str] | None = None) -> ExportResult:
    """Curate a trace root and write one content-addressed bundle under ``out_dir``.

    Args:
        root: trace root (or one run directory).
        out_dir: parent folder of bundles; the bundle is ``out_dir/<bundle_id>``.
        cfg: export config (defaults when None).
        labels_for_run: the feedback seam (``tracebridge.export.labels.LabelsForRun``).
        progress: ``progress(done, total)`` callback.
        workers: processes that check, redact and render runs (steps 1-3) while this one accounts
            for them and writes the bundle in run order; the bundle is the same for any number.
        cache_dir: a cache of built runs (``tracebridge.export.runcache``): unchanged runs of an
            earlier export with this folder are not built again; the bundle is the same as without.

    Returns:
        The bundle path, manifest and report (``report["passed"]`` false when a check failed).

    Raises:
        FileNotFoundError: ``root`` is not a trace root.
        CorrectionsError: ``corrections.file`` is set and cannot be read (a ``ValueError``).
    """
    cfg, root = cfg or ExportConfig(), Path(root)
    corrections = read_corrections(cfg.corrections.file) if cfg.corrections.file else None
    writer = BundleWriter(out_dir)
    try:
        ex = _Exporter(root, cfg, writer, labels_for_run, corrections)
        cache = RunCache(cache_dir, cfg, ex.assignment, labels_for_run,
                         corrections.by_run if corrections is not None else None) if cache_dir is not None else None
        total = sum(ex.family_runs.values())
        for i, (run, built) in enumerate(built_runs(ex.root, ex.work, workers, cache)):
            ex.take(i, run, built)
            if progress is not None:
                progress(i + 1, total)
        res = _finish(ex, root, cfg, writer)
        if cache is not None:
            cache.prune()
            res.cache = cache.stats.to_dict()
            log.info("export cache %s: %s", cache_dir, res.cache)
        return res
    except BaseException:
        writer.abort()
        raise


def _finish(ex: _Exporter, root: Path, cfg: ExportConfig, writer: BundleWriter) -> ExportResult:
    leakage = ex.leak.report()
    dedup = ex.dedup.report(cfg.dedup.report_clusters, _names(root, ex.dedup.kept_ordinals(cfg.dedup.report_clusters)))
    for rel in ("quarantine.jsonl", "runs.jsonl"):
        if rel not in writer.rows():
            writer.write_file(rel, b"", rows=0)
    rows = writer.rows()
    redaction = ex.t.redaction(cfg.redaction.enabled, ex.redactor.policy)
    split = {"method": "goal_family", "ratios": dict(cfg.split.ratios), "salt": cfg.split.salt,
             "assignment": dict(sorted(ex.assignment.items())), "family_runs": dict(sorted(ex.family_runs.items()))}
    if unmatched := unmatched_assign(cfg.split, ex.assignment):  # listed only when there are: ids stay as they were
        split["assign_unmatched"] = unmatched
        log.warning("split.assign names no family of these traces, so it fixed nothing: %s", ", ".join(unmatched))
    balance = class_balance(ex.t, cfg.balance, cfg.views.verifier_sft_target)
    corrections = ex.corrections.to_dict(lambda s: ex.redactor.redact_text(s, "_quarantine")) \
        if ex.corrections is not None else None
    view_rows = _rows_by_view(rows)
    report = build_report(ex.t, view_rows, split, leakage, dedup, redaction,
                          _failures(ex, leakage, balance, view_rows), balance, corrections, ex.feedback_joined,
                          cfg.views.tool_output_max_chars)
    writer.write_file("report.json", orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    writer.write_file("report.md", render_markdown(report).encode())
    masked = dataclasses.asdict(masked_config(cfg))  # plain dataclasses: what to_dict gives, faster
    for k in _OPT_IN_VIEWS:  # off: not written, so a bundle without them keeps the id it had before they existed
        if not masked["views"][k]:
            del masked["views"][k]
    writer.write_file("export_config.yaml", yaml.safe_dump(masked, sort_keys=False).encode())
    card = _write_card(writer, rows, ex.types)
    manifest = {
        "created_at": utc_now(), "tracebridge_version": tracebridge.__version__, "git_sha": git_sha(),
        "config_hash": sha256_json(masked),
        "source": {"runs": ex.t.runs_read, "exported": ex.t.exported, "run_ids_file": "runs.jsonl"},
        "data_governance": redaction,
        "split": {**split, "counts": report["rows"]},
        "views": _view_entries(rows),
        "report": {"file": "report.json", "markdown": "report.md", "passed": report["passed"],
                   "failures": report["failures"], "runs": report["runs"], "leakage": leakage,
                   "dedup": {k: dedup[k] for k in ("method", "removed_runs", "removed_rows", "clusters_total")},
                   "class_balance": report["class_balance"]},
        "quarantine": {"file": "quarantine.jsonl", "runs": ex.t.quarantined},
        "datasets": card,
        # the row budgets the views were cut to (0 = off), and what the tool-output one cut
        "budgets": {"context_max_chars": cfg.views.context_max_chars,
                    "tool_output_max_chars": cfg.views.tool_output_max_chars,
                    **({"tool_outputs": report["views"]["tool_outputs"]} if "tool_outputs" in report["views"] else {})},
        **({"corrections": {k: corrections[k] for k in _CORRECTION_COUNTS}} if corrections is not None else {}),
        **({"feedback": ex.feedback_sources} if ex.feedback_sources is not None else {}),
    }
    path, man = writer.finish(manifest)
    log.info("bundle %s: %d runs read, %d exported, %d quarantined", man.bundle_id, ex.t.runs_read,
             ex.t.exported, ex.t.quarantined)
    return ExportResult(path, man, report)
