"""Steps 1-3 of ``export_traces`` for one run, which need nothing from other runs.

``RunWork.build`` checks a run (quality), redacts it (pass 1 and pass 2), builds its views and
serialises their rows, and takes its dedup fingerprint. It runs in this process or in a worker
(``export_traces(workers=N)``); the main process then only accounts for each ``Built`` in run
order (quarantine, dedup verdict, leakage, counts) and appends its rows, serialised here (``Built.rows``),
to the bundle, so the bundle is the same for any number of workers.

Human corrections (``tracebridge.corrections``) join a run here, in memory: matched to its events
before the quality verdict is acted on (so every line is accounted for), merged into copies of
its events and session before redaction (pass 1 covers what reviewers wrote; pass 2 scans it), and
given to the views as labels, the run's outcome and a feedback overlay (``corrected_by``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracebridge.capture.reader import RunDir
from tracebridge.corrections.apply import (
    Fold,
    RunOutcome,
    apply_corrections,
    combine,
    match_run,
    overlay,
)
from tracebridge.corrections.records import Correction
from tracebridge.curate.dedup import fingerprint
from tracebridge.curate.quality import Reason, events_dropped, run_reasons
from tracebridge.curate.redact import Redactor, Scanner
from tracebridge.export.config import ExportConfig
from tracebridge.export.families import goal_key, split_family
from tracebridge.export.features import RowTyper
from tracebridge.export.labels import LabelsForRun, turn_scoped
from tracebridge.export.report import Tally
from tracebridge.export.tools import ToolRegistry
from tracebridge.export.views import AL_PREFIX, TOOL_OUTPUTS, TRIMMED, RunContext, build_views
from tracebridge.gc_pause import gc_paused
from tracebridge.schema.canonical import sha256_json
from tracebridge.schema.validate import check_run

log = logging.getLogger(__name__)
_ROW = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _findings_text(found: Counter[tuple[str, str]]) -> str:
    return ", ".join(f"{k}×{n} in {p}" for (k, p), n in sorted(found.items())[:20])


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _recorded_outcome(events: list[dict[str, Any]], raw: dict[str, Any]) -> dict[str, Any]:
    """The run's ``episode_end`` payload, else its session summary."""
    end = next((e.get("payload") for e in reversed(events) if e.get("event_type") == "episode_end"), None)
    return end if isinstance(end, dict) else _dict(raw.get("summary"))


# What a run's own data can raise past the checks a config lets through (a schema problem in
# ``quality.allow`` reaching a view that indexes the field, nesting deeper than orjson writes).
RUN_DATA_ERRORS = (AttributeError, KeyError, IndexError, TypeError, ValueError, RecursionError)


def build_error(run_id: str, lines: list[tuple[int, dict[str, Any]]], exc: Exception,
                session: dict[str, Any] | None = None) -> Reason:
    """The quarantine reason of a run whose data broke steps 2-3, located at its first event, or the
    field of its ``session``, that orjson cannot write (nesting past its 254 levels) when that is the cause."""
    error = f"{type(exc).__name__}: {str(exc)[:200]}"
    for key, value in (session or {}).items():
        try:
            orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except (orjson.JSONEncodeError, RecursionError):
            return Reason("build_error", f"{run_id}/session.json:-:{key}",
                          f"session field nests deeper than a bundle row can (254 levels) ({error})")
    for lineno, ev in lines:  # the error path only: a rare run pays one more serialisation
        try:
            orjson.dumps(ev, option=orjson.OPT_NON_STR_KEYS)
        except (orjson.JSONEncodeError, RecursionError):
            return Reason("build_error", f"{run_id}/events.jsonl:{lineno}:<line>",
                          f"event nests deeper than a bundle row can (254 levels) ({error})")
    return Reason("build_error", f"{run_id}/events.jsonl:-:<run>",
                  f"the run's data cannot be exported ({error}); its allowed quality problems, if any, follow")


def _serialised(views: dict[str, list[dict[str, Any]]], split: str, typer: RowTyper
                ) -> tuple[list[tuple[str, int, int]], list[bytes], dict[str, Any]]:
    """The run's rows as JSONL lines, the bundle file, byte count and row count of each view's share
    of them, and the type of each view's rows (``tracebridge.export.features``). Not joined into one
    buffer: a worker copies the lines into its arena slot (``tracebridge.export.arena``) and this
    process hashes and writes them (``BundleWriter.write_lines``) as they are; the join copied every
    byte of the bundle once more (~3% of an export's CPU)."""
    files: list[tuple[str, int, int]] = []
    lines: list[bytes] = []
    types: dict[str, Any] = {}
    memo: dict[int, Any] = {}  # the run's rows share message objects: each is typed once
    for key, rows in views.items():
        if rows:
            start = len(lines)
            lines += [orjson.dumps(r, option=_ROW) for r in rows]
            rel = f"{key}/{split}.jsonl" if key.startswith(AL_PREFIX) else f"views/{key}/{split}.jsonl"
            files.append((rel, sum(map(len, lines[start:])), len(rows)))
            types[key] = typer.rows_type(rows, memo)
    return files, lines, types


def joined(rows: bytes | memoryview | list[bytes]) -> bytes:
    """``Built.rows`` as one buffer, a copy (what the run cache keeps and the pipe carries)."""
    return b"".join(rows) if isinstance(rows, list) else bytes(rows)


@dataclass
class Built:
    """One run after steps 1-3: what the main process needs to account for it and write it."""

    tally: Tally  # curation counts: read, events, allowed rules, redaction passes
    blocking: list[Reason]  # non-empty: the run is quarantined and the fields below are empty
    family: str
    split: str = ""
    files: list[tuple[str, int, int]] = field(default_factory=list)  # bundle path, bytes and rows it gets of ``rows``
    counts: dict[str, int] = field(default_factory=dict)  # rows per view the run would add
    exported: Tally = field(default_factory=Tally)  # class balance: counted unless a duplicate
    fingerprint: str = ""  # dedup key (empty when dedup is off)
    goal_hash: str = ""
    goal_text: str = ""  # the redacted goal, for the near-duplicate leakage check
    corrections: RunOutcome | None = None  # what became of the run's human corrections (None: it has none)
    # the JSONL lines of every file in ``files``, in that order: a list of them as built (one line a row), or one
    # buffer (a worker's arena slot, the pipe, the run cache)
    rows: bytes | memoryview | list[bytes] = b""
    slot: int = -1  # >= 0: a worker put ``rows`` in this slot of the export's RowArena (``rows`` then empty)
    types: dict[str, Any] = field(default_factory=dict)  # view file key -> type of the run's rows in it


class RunWork:
    """Quality, redaction, views and dedup key of one run at a time (``build``).

    Args:
        cfg: the export config.
        assignment: goal family → split, decided over the whole root before any run is built.
        labels_for_run: the feedback seam (``tracebridge.export.labels.LabelsForRun``).
        corrections: checked human corrections by run id (``tracebridge.corrections.read_corrections``).
    """

    def __init__(self, cfg: ExportConfig, assignment: dict[str, str] | None = None,
                 labels_for_run: LabelsForRun | None = None,
                 corrections: Mapping[str, Sequence[Correction]] | None = None) -> None:
        self.cfg = cfg
        self.assignment = assignment or {}
        self.labels_for_run = labels_for_run
        self.corrections = corrections or {}
        self.redactor = Redactor(cfg.redaction)
        self.scanner = Scanner(cfg.redaction)
        self.tools = ToolRegistry(cfg.tools)
        self.typer = RowTyper()  # the rows' types for features.json, its tables kept across runs

    def build(self, run: RunDir) -> Built:
        """Steps 1-3 of ``run`` (see ``tracebridge.export.pipeline``), the cyclic GC paused: a run's
        events, records and rows are acyclic, freed by reference counting (export CPU -5%)."""
        with gc_paused():
            return self._build(run)

    def _build(self, run: RunDir) -> Built:
        t = Tally(runs_read=1)
        lines: list[tuple[int, dict[str, Any]]] = []
        raw: dict[str, Any] = {}
        chk = check_run(run, lines, raw, self.cfg.quality.max_line_bytes)
        t.events_read += chk.events
        source = _dict(raw.get("source"))
        blocking, allowed = run_reasons(chk, run.path, lines, self.cfg.quality.allow,
                                        source.get("kind") in self.cfg.quality.open_ended_sources, raw)
        t.allowed_rules.update(r.rule for r in allowed)
        dropped = events_dropped(raw)  # counted for every run read, as validate totals them
        t.events_dropped, t.runs_with_dropped_events = dropped, int(dropped > 0)
        family = split_family(raw, self.cfg.split.by_goal_sources)
        if family not in self.assignment:  # completed after the first pass, which split the families it saw
            blocking.append(Reason("changed_during_export", f"{run.path / 'session.json'}:goal.family",
                                   f"the run completed while the export ran, after its first pass split the "
                                   f"families it saw; its family {family!r} has no split: the next export takes it"))
        outcome: RunOutcome | None = None
        try:
            events = [ev for _, ev in lines]
            outcome, fold = self.match(run.run_id, events, raw)  # before the verdict: every line is accounted for
            built = self._curate(t, run, family, blocking, events, raw, fold)
        except RUN_DATA_ERRORS as exc:  # caught per run, not checked per value: the hot path pays nothing
            log.debug("run %s quarantined: build failed", run.run_id, exc_info=True)
            self.redactor.forget(run.run_id)
            # a fresh tally: a pass 2 counted for a run that is not accepted would mark the bundle unclean
            t = Tally(runs_read=1, events_read=chk.events, allowed_rules=Counter(r.rule for r in allowed),
                      events_dropped=dropped, runs_with_dropped_events=int(dropped > 0))
            built = Built(t, [build_error(run.run_id, lines, exc, raw), *allowed], family)
        built.corrections = outcome
        return built

    def _curate(self, t: Tally, run: RunDir, family: str, blocking: list[Reason], events: list[dict[str, Any]],
                raw: dict[str, Any], fold: Fold | None) -> Built:
        """Corrections, redaction and views of a checked run (``blocking``: its quarantine reasons so far)."""
        session = raw
        if fold and not blocking:
            red = (lambda rec: self.redactor.redact(rec, scope=run.run_id)) if self.cfg.redaction.enabled else None
            events, session = apply_corrections(events, session, fold, red)
        if not blocking and self.cfg.redaction.enabled:
            events, session, more = self.redaction(t, run, events, session)
            blocking += more
        if blocking:
            return Built(t, blocking, family)
        return self._views(t, run, family, events, session, raw, fold)

    def match(self, run_id: str, events: list[dict[str, Any]], raw: dict[str, Any]
              ) -> tuple[RunOutcome | None, Fold | None]:
        """The run's corrections checked against its events and folded (None, None: it has none)."""
        mine = self.corrections.get(run_id)
        if not mine:
            return None, None
        return match_run(mine, events, run_id, raw)

    def _views(self, t: Tally, run: RunDir, family: str, events: list[dict[str, Any]], session: dict[str, Any],
               raw: dict[str, Any], fold: Fold | None = None) -> Built:
        split = self.assignment.get(family, "train")
        src = _recorded_outcome(events, raw)
        success, failure_class = src.get("success"), src.get("failure_class")
        feedback = reactions = self.labels_for_run(run.run_id) if self.labels_for_run else None
        kind = str(_dict(raw.get("source")).get("kind", "unknown"))
        if reactions and kind in self.cfg.views.conversational_sources:
            feedback = turn_scoped(reactions)
        if fold:  # a person's outcome wins over the trace's; the rows say so (labels.outcome_source)
            trace = success if isinstance(success, bool) else None
            if fold.success is not None:
                success, failure_class = fold.success[0], (None if fold.success[0] else failure_class)
            feedback = combine(feedback, overlay(events, session, fold, trace))
        tools, tool_source = self.tools.for_run(raw, events)
        extra = _dict(_dict(raw.get("runtime_config")).get("extra"))
        leaf = extra.get("leaf_entry_id") if extra.get("branches") else None
        ctx = RunContext(run.run_id, family, split, kind,
                         success, failure_class, tools, tool_source, feedback, bool(extra.get("branches")),
                         leaf if isinstance(leaf, str) else None, events_dropped(raw))
        views, skips = build_views(events, ctx, self.cfg.views)
        goal_hash = goal_key(raw) or sha256_json({"family": family, "run": run.run_id})
        x = Tally()
        x.add_rows(views)
        x.view_skips.update({k: n for k, n in skips.items() if k not in TRIMMED and k not in TOOL_OUTPUTS})
        x.view_trims.update({k: n for k, n in skips.items() if k in TRIMMED})
        x.tool_cuts.update({k: n for k, n in skips.items() if k in TOOL_OUTPUTS})
        if reactions:  # the join's reach, for the report (corrections are accounted on their own)
            x.feedback_runs += bool(reactions.get("run") or reactions.get("events"))
            labelled = reactions.get("events") or {}
            x.feedback_events += sum(1 for e in events if e.get("event_id") in labelled) if labelled else 0
        x.outcomes["unknown" if ctx.success is None else ("success" if ctx.success else "failure")] += 1
        if ctx.success is False:
            x.failure_classes[str(ctx.failure_class or "unspecified")] += 1
        files, blob, types = _serialised(views, split, self.typer)
        fp = fingerprint(goal_hash, events, raw) if self.cfg.dedup.enabled else ""
        return Built(t, [], family, split, files, {k: len(v) for k, v in views.items() if v}, x, fp, goal_hash,
                     str(_dict(session.get("goal")).get("text") or ""), rows=blob, types=types)

    def redaction(self, t: Tally, run: RunDir, events: list[dict[str, Any]], session: dict[str, Any]
                  ) -> tuple[list[dict[str, Any]], dict[str, Any], list[Reason]]:
        """Pass 1 where capture did not redact, then pass 2 over every record."""
        rid = run.run_id
        gov = _dict(session.get("data_governance"))
        capture = [p for p in gov.get("passes") or [] if isinstance(p, dict) and p.get("stage") == "capture"]
        if capture:
            t.pass1_capture += 1
            for p in capture:
                t.capture_policies[str(p.get("policy"))] += 1
                t.capture_findings.update({str(k): int(v) for k, v in (p.get("findings") or {}).items()})
            # pass 1 here covered only what reviewers wrote (apply_corrections): count it, drop its map
            t.add_findings(t.pass1_findings, self.redactor.flat_findings(rid))
            self.redactor.forget(rid)
        elif not self.cfg.redaction.redact_unredacted_runs:
            self.redactor.forget(rid)
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
