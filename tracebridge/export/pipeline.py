"""``export_traces``: a trace root → curated, split, deduplicated views → one bundle.

Streams run by run (``tracebridge.capture.reader.iter_runs``, name order), so memory is bounded
by the largest run plus small per-run indexes (dedup and goal keys, ~100 bytes a run) and the
capped MinHash sample. For each run, in order:

1. quality: ``check_run`` plus the extra rules (``tracebridge.curate.quality``);
2. redaction: a run redacted at capture gets pass 2, a full scan of every record with this
   export's policy; any other run gets pass 1 here, and pass 2 re-scans every value pass 1
   rewrote (the values it left were scanned by the same deterministic detectors and found
   clean, so a full re-scan could only repeat that). Any pass-2 finding blocks the run;
3. a failing run is quarantined with its reasons (``quarantine.jsonl``), never dropped;
4. views are built (``tracebridge.export.views``); a run whose dedup fingerprint was seen
   before is counted in its cluster instead of written;
5. rows stream into ``views/<view>/<split>.jsonl`` by the run's goal-family split.

Steps 1-2 need nothing from other runs: with ``workers > 1`` they run in worker processes
(``_Curator``, a few runs in flight) while this process does steps 3-5 in run order, so the
bundle is the same for any number of workers.

Counts reconcile (read = accepted + quarantined; accepted = exported + duplicates) or the
export fails. The report, the masked config and the manifest are written last.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import subprocess
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

import tracebridge
from tracebridge.capture.reader import RunDir, iter_runs
from tracebridge.curate.dedup import DedupIndex, fingerprint
from tracebridge.curate.quality import Reason, run_reasons
from tracebridge.curate.redact import Redactor, Scanner
from tracebridge.curate.split import LeakageTracker, assign_families
from tracebridge.export.bundle import BundleWriter, Manifest
from tracebridge.export.config import ExportConfig
from tracebridge.export.families import family_counts, split_family
from tracebridge.export.labels import LabelsForRun
from tracebridge.export.report import Tally, build_report, render_markdown
from tracebridge.export.tools import ToolRegistry
from tracebridge.export.views import TRIPLETS, VIEW_KINDS, RunContext, build_views
from tracebridge.schema.canonical import sha256_json, utc_now
from tracebridge.schema.validate import check_run

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass
class ExportResult:
    """A finished export: where the bundle is, its manifest and report, and the verdict."""

    path: Path
    manifest: Manifest
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])

    def summary(self) -> dict[str, Any]:
        """What ``tracebridge export --json`` prints."""
        return {"bundle_id": self.manifest.bundle_id, "path": str(self.path), "passed": self.passed,
                "failures": self.report["failures"], "counts": self.report["runs"], "rows": self.report["rows"],
                "data_governance": self.manifest.governance, "leakage_passed": self.report["leakage"]["passed"]}


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


def _findings_text(found: Counter[tuple[str, str]]) -> str:
    return ", ".join(f"{k}×{n} in {p}" for (k, p), n in sorted(found.items())[:20])


@dataclass
class Curated:
    """One run after quality checks and redaction: what a worker process hands back."""

    tally: Tally  # this run's counts: read, events, allowed rules, redaction passes
    blocking: list[Reason]
    family: str
    events: list[dict[str, Any]]
    session: dict[str, Any]
    raw_session: dict[str, Any]


class _Curator:
    """Steps 1-2 of one run (quality, redaction): no shared state, so runs may go to workers."""

    def __init__(self, cfg: ExportConfig) -> None:
        self.cfg = cfg
        self.redactor = Redactor(cfg.redaction)
        self.scanner = Scanner(cfg.redaction)

    def curate(self, run: RunDir) -> Curated:
        t = Tally(runs_read=1)
        lines: list[tuple[int, dict[str, Any]]] = []
        raw_session: dict[str, Any] = {}
        chk = check_run(run, lines, raw_session)
        t.events_read += chk.events
        source = raw_session.get("source") if isinstance(raw_session.get("source"), dict) else {}
        blocking, allowed = run_reasons(chk, run.path, lines, self.cfg.quality.allow,
                                        source.get("kind") in self.cfg.quality.open_ended_sources)
        t.allowed_rules.update(r.rule for r in allowed)
        events = [ev for _, ev in lines]
        session = raw_session
        if not blocking and self.cfg.redaction.enabled:
            events, session, more = self.redaction(t, run, events, raw_session)
            blocking += more
        return Curated(t, blocking, split_family(raw_session, self.cfg.split.by_goal_sources), events, session,
                       raw_session)

    def redaction(self, t: Tally, run: RunDir, events: list[dict[str, Any]], session: dict[str, Any]
                  ) -> tuple[list[dict[str, Any]], dict[str, Any], list[Reason]]:
        """Pass 1 where capture did not redact, then pass 2 over every record."""
        rid = run.run_id
        gov = session.get("data_governance") if isinstance(session.get("data_governance"), dict) else {}
        capture = [p for p in gov.get("passes") or [] if isinstance(p, dict) and p.get("stage") == "capture"]
        if capture:
            t.pass1_capture += 1
            for p in capture:
                t.capture_policies[str(p.get("policy"))] += 1
                t.capture_findings.update({str(k): int(v) for k, v in (p.get("findings") or {}).items()})
        elif not self.cfg.redaction.redact_unredacted_runs:
            return events, session, [Reason("unredacted", f"{rid}/session.json:-:data_governance",
                                            "captured without redaction and redaction.redact_unredacted_runs=false")]
        found: Counter[tuple[str, str]] = Counter()
        if capture:
            found = self.scanner.scan_all([*events, session])  # pass 2: a full scan with this export's policy
        else:
            events = self.redactor.redact_all(events, scope=rid)
            session = self.redactor.redact(session, scope=rid)
            t.pass1_export += 1
            t.add_findings(t.pass1_findings, self.redactor.flat_findings(rid))
            found = self.redactor.rewritten_findings(rid)  # pass 2 (see Redactor.rewritten_findings)
            self.redactor.forget(rid)
        t.pass2_scanned += 1
        if not found:
            return events, session, []
        t.pass2_blocked += 1
        t.add_findings(t.pass2_findings, found)
        return events, session, [Reason("redaction_pass2", f"{rid}/events.jsonl:-:<records>",
                                        f"pass 2 found {sum(found.values())} value(s): {_findings_text(found)}")]


class _Exporter:
    """The per-run loop of one export (state: tallies, indexes, the bundle writer)."""

    def __init__(self, root: Path, cfg: ExportConfig, writer: BundleWriter, labels_for_run: LabelsForRun | None):
        self.root, self.cfg, self.w, self.labels_for_run = root, cfg, writer, labels_for_run
        self.t = Tally()
        self.dedup = DedupIndex()
        self.leak = LeakageTracker(cfg.leakage)
        self.tools = ToolRegistry(cfg.tools)
        self.curator = _Curator(cfg)
        self.redactor = self.curator.redactor  # also masks quarantine messages
        self.family_runs, family_sources = family_counts(root, cfg.split.by_goal_sources)
        self.assignment = assign_families(self.family_runs, cfg.split, family_sources)

    def quarantine(self, run: RunDir, reasons: list[Reason]) -> None:
        t, cap = self.t, self.cfg.quality.max_reasons_per_run
        t.quarantined += 1
        rules = sorted({r.rule for r in reasons})
        for rule in rules:
            t.quarantine_rules[rule] += 1
        listed = [{**r.to_dict(), "message": self.redactor.redact_text(r.message, "_quarantine")}
                  for r in reasons[:cap]]
        self.w.write_row("quarantine.jsonl", {"run_id": run.run_id, "rules": rules, "reasons": listed,
                                              "reasons_total": len(reasons)})
        self.w.write_row("runs.jsonl", {"run_id": run.run_id, "status": "quarantined", "rules": rules})

    def process(self, ordinal: int, run: RunDir, c: Curated) -> None:
        """Steps 3-5 of a curated run, in run order."""
        self.t.merge(c.tally)
        if c.blocking:
            self.quarantine(run, c.blocking)
            return
        self.t.accepted += 1
        self.emit(ordinal, run, c.events, c.session, c.raw_session, c.family)

    def emit(self, ordinal: int, run: RunDir, events: list[dict[str, Any]], session: dict[str, Any],
             raw_session: dict[str, Any], family: str) -> None:
        t = self.t
        split = self.assignment.get(family, "train")
        summary = raw_session.get("summary") if isinstance(raw_session.get("summary"), dict) else {}
        end = next((e.get("payload") for e in reversed(events) if e.get("event_type") == "episode_end"), None)
        src = end if isinstance(end, dict) else summary
        tools, tool_source = self.tools.for_run(raw_session, events)
        ctx = RunContext(run.run_id, family, split, str((raw_session.get("source") or {}).get("kind", "unknown")),
                         src.get("success"), src.get("failure_class"), tools, tool_source,
                         self.labels_for_run(run.run_id) if self.labels_for_run else None)
        views, skips = build_views(events, ctx, self.cfg.views)
        goal = raw_session.get("goal") if isinstance(raw_session.get("goal"), dict) else {}
        goal_hash = str(goal.get("goal_hash") or sha256_json({"family": family, "run": run.run_id}))
        counts = {k: len(v) for k, v in views.items() if v}
        if self.cfg.dedup.enabled and self.dedup.add(fingerprint(goal_hash, events, raw_session), ordinal,
                                                     run.run_id, counts):
            t.duplicates += 1
            self.w.write_row("runs.jsonl", {"run_id": run.run_id, "status": "duplicate", "split": split})
            return
        t.exported += 1
        for key, rows in views.items():
            rel = f"{key}/{split}.jsonl" if key == TRIPLETS else f"views/{key}/{split}.jsonl"
            for r in rows:
                self.w.write_row(rel, r)
        t.add_rows(views)
        t.view_skips.update(skips)
        t.tool_sources[tool_source] += 1
        t.outcomes["unknown" if ctx.success is None else ("success" if ctx.success else "failure")] += 1
        if ctx.success is False:
            t.failure_classes[str(ctx.failure_class or "unspecified")] += 1
        t.families[family][split] += 1
        goal_red = session.get("goal") if isinstance(session.get("goal"), dict) else {}
        self.leak.add(split, family, goal_hash, str(goal_red.get("text") or ""), run.run_id)
        self.w.write_row("runs.jsonl", {"run_id": run.run_id, "status": "exported", "split": split,
                                        "rows": sum(counts.values())})


def _rows_by_view(rows: dict[str, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for rel, n in sorted(rows.items()):
        parts = rel.split("/")
        if parts[0] == "views" or rel.startswith(TRIPLETS):
            key = "/".join(parts[1:-1]) if parts[0] == "views" else TRIPLETS
            out.setdefault(key, {})[parts[-1].removesuffix(".jsonl")] = n
    return out


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


def _failures(ex: _Exporter, leakage: dict[str, Any]) -> list[str]:
    t, cfg = ex.t, ex.cfg
    out = t.reconcile()
    if t.accepted == 0:
        out.append("no run passed curation")
    if not leakage["passed"]:
        out.append(f"split leakage: families {leakage['families_in_several_splits']}, "
                   f"goal hashes {leakage['goal_hashes_in_several_splits']}")
    if cfg.leakage.fail_on_near_duplicates and not leakage["near_duplicates_passed"]:
        out.append(f"near-duplicate prompts across splits: {leakage['near_duplicates']['total']}")
    pct = 100.0 * t.quarantined / t.runs_read if t.runs_read else 0.0
    if pct > cfg.quality.max_quarantined_pct:
        out.append(f"quarantined {pct:.1f}% of runs > quality.max_quarantined_pct={cfg.quality.max_quarantined_pct}")
    return out


def _names(root: Path, ordinals: set[int]) -> dict[int, str]:
    return {i: r.run_id for i, r in enumerate(iter_runs(root)) if i in ordinals} if ordinals else {}


_WORKER: _Curator | None = None


def _init_worker(cfg: ExportConfig) -> None:
    global _WORKER
    _WORKER = _Curator(cfg)


def _curate_in_worker(run: RunDir) -> Curated:
    assert _WORKER is not None
    return _WORKER.curate(run)


def _curated(ex: _Exporter, workers: int) -> Iterator[tuple[RunDir, Curated]]:
    """Every run of the root, curated, in run order: here, or by ``workers`` processes with at
    most two runs per worker in flight (memory stays bounded by a few runs)."""
    if workers <= 1:
        for run in iter_runs(ex.root):
            yield run, ex.curator.curate(run)
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(ex.cfg,)) as pool:
        pending: deque[tuple[RunDir, Future[Curated]]] = deque()
        for run in iter_runs(ex.root):
            pending.append((run, pool.submit(_curate_in_worker, run)))
            if len(pending) >= 2 * workers:
                done, fut = pending.popleft()
                yield done, fut.result()
        while pending:
            done, fut = pending.popleft()
            yield done, fut.result()


def export_traces(root: str | os.PathLike[str], out_dir: str | os.PathLike[str], cfg: ExportConfig | None = None,
                  labels_for_run: LabelsForRun | None = None, progress: Progress | None = None,
                  workers: int = 1) -> ExportResult:
    """Curate a trace root and write one content-addressed bundle under ``out_dir``.

    Args:
        root: trace root (or one run directory).
        out_dir: parent folder of bundles; the bundle is ``out_dir/<bundle_id>``.
        cfg: export config (defaults when None).
        labels_for_run: the feedback seam (``tracebridge.export.labels.LabelsForRun``).
        progress: ``progress(done, total)`` callback.
        workers: processes that check and redact runs (steps 1-2) while this one builds views
            and writes the bundle in run order; the bundle is the same for any number.

    Returns:
        The bundle path, manifest and report (``report["passed"]`` false when a check failed).

    Raises:
        FileNotFoundError: ``root`` is not a trace root.
    """
    cfg, root = cfg or ExportConfig(), Path(root)
    writer = BundleWriter(out_dir)
    try:
        ex = _Exporter(root, cfg, writer, labels_for_run)
        total = sum(ex.family_runs.values())
        for i, (run, curated) in enumerate(_curated(ex, workers)):
            ex.process(i, run, curated)
            if progress is not None:
                progress(i + 1, total)
        return _finish(ex, root, cfg, writer)
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
    report = build_report(ex.t, _rows_by_view(rows), split, leakage, dedup, redaction, _failures(ex, leakage))
    writer.write_file("report.json", orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    writer.write_file("report.md", render_markdown(report).encode())
    masked = dataclasses.asdict(masked_config(cfg))  # plain dataclasses: what to_dict gives, faster
    writer.write_file("export_config.yaml", yaml.safe_dump(masked, sort_keys=False).encode())
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
    }
    path, man = writer.finish(manifest)
    log.info("bundle %s: %d runs read, %d exported, %d quarantined", man.bundle_id, ex.t.runs_read,
             ex.t.exported, ex.t.quarantined)
    return ExportResult(path, man, report)
