"""``import_agentlightning``: stored Agent Lightning spans → schema-v2 runs, one run per rollout.

Two passes, memory bounded by the record index (``stored.SpanIndex``, ~200 bytes a record) plus
one rollout's spans:

1. reading: every span file (``stored`` says which records it may hold) is read from where the
   last import stopped (a file whose size is unchanged is not opened; a grown one has its
   imported prefix checked against the state's digest; a shorter one or one whose prefix differs,
   such as a store dumped again, is read again whole); each new line is checked with Agent
   Lightning's model (copied in ``records``: ``agentlightning`` is never imported) and filed under its
   rollout, or quarantined as ``file:line: field: reason`` (lines read = accepted + quarantined; blank
   lines apart; a half-written last line waits, and so does every rollout with a record in its file: the
   line's rollout cannot be known before it is whole; a file with no line is skipped);
2. mapping: rollout by rollout, in id order. A rollout already imported whose records read now
   were all part of its import (a copied or re-dumped file) is unchanged; one with a record its
   import did not have is reported, never rewritten. A rollout still running by its Rollout record, with no
   spans yet, or with a record in a file whose last line is half-written, waits: its refs
   stay in the state and join the next import. Otherwise the spans of its latest attempt are read
   back and mapped by ``spans.spans_to_events`` (the runtime hook's mapping) into run
   ``al-<rollout_id>``, with the Rollout record's input as the task (else the first user message of
   its first LLM call) and a failed or cancelled status as the run's error.

Ids and times come from the spans, so importing the same records gives the same bytes; the state
(``<out>/.import/``) is saved after the runs it names are durable.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import xxhash

from tracebridge.capture.reader import HEAD_BYTES, overlong, pass_overlong, read_lines
from tracebridge.importers.agentlightning import records
from tracebridge.importers.agentlightning.config import SpanImportConfig
from tracebridge.importers.agentlightning.llm_calls import prompt_messages
from tracebridge.importers.agentlightning.report import SpanImportReport
from tracebridge.importers.agentlightning.runs import session_record, write_events
from tracebridge.importers.agentlightning.spans import ordered_spans, span_kind, spans_to_events
from tracebridge.importers.agentlightning.stored import (
    TERMINAL,
    FileState,
    RecordError,
    RecordReader,
    Ref,
    RolloutEntry,
    SpanImportState,
    SpanIndex,
    discover_span_files,
    prefix_digest,
)
from tracebridge.importers.jsonl import json_error
from tracebridge.importers.lock import import_lock
from tracebridge.importers.openclaw.runs import RunConflict, RunWriter, sync_filesystem
from tracebridge.importers.openclaw.session import run_id_for
from tracebridge.importers.openclaw.state import Quarantine

log = logging.getLogger(__name__)
_READ_BUFFER = 1 << 20
_BOM = b"\xef\xbb\xbf"


class RolloutFailed(Exception):
    """The error a failed or cancelled rollout's run records (its status is the message)."""


def task_from_spans(spans: list[dict[str, Any]], rollout_id: str) -> str:
    """The task of a rollout without a Rollout record: the first user message of its first LLM call (the
    text of its parts when it has several; before, such a message, say a question with an image, was
    passed over and every rollout of the task got a goal of its own id)."""
    for s in ordered_spans(spans):
        if span_kind(s) != "llm":
            continue
        for m in prompt_messages(s.get("attributes") or {}):
            content = m.get("content") if isinstance(m, dict) and m.get("role") == "user" else None
            if isinstance(content, list):  # content parts (text with an image): their text is the task
                content = "\n".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text"
                                    and isinstance(p.get("text"), str)) or None
            if isinstance(content, str):
                return content
    return f"Agent Lightning rollout {rollout_id}"


class _Import:
    """One import: the waiting rollouts (``reload_pending``), pass 1 (``read_file``), pass 2 (``map``)."""

    def __init__(self, root: Path, cfg: SpanImportConfig, state: SpanImportState, q: Quarantine,
                 rep: SpanImportReport) -> None:
        self.root, self.cfg, self.state, self.q, self.rep = root, cfg, state, q, rep
        self.index = SpanIndex()
        self.files: dict[str, FileState] = {}  # new file states, saved once every rollout is written
        self.rewritten: set[str] = set()  # files read again from the start (their waiting refs with them)
        self.prefix: dict[str, Any] = {}  # grown files: the digest of the prefix ``plan`` checked
        self.mtimes: dict[str, int] = {}  # modification times ``plan`` saw
        self.held: set[str] = set()  # files whose last line is half-written: their rollouts wait
        self.reader = RecordReader()

    def plan(self, paths: list[str]) -> list[tuple[str, FileState | None]]:
        """The files to read and where from: a grown file from its imported prefix (checked against
        the state's digest), a new or rewritten one (shorter, or its prefix differs: a store dumped
        again) from its start; a file of the same size and modification time is not opened, one of
        the same size and another time is unchanged if its bytes are."""
        rep, todo = self.rep, []
        for path in paths:
            rep.files_seen += 1
            fs = self.state.files.get(path)
            try:
                st = os.stat(path)
                self.mtimes[path] = st.st_mtime_ns
                if fs is not None and st.st_size == fs.offset and st.st_mtime_ns == fs.mtime_ns:
                    rep.files_unchanged += 1
                    continue
                prefix = prefix_digest(path, fs) if fs is not None and st.st_size >= fs.offset else None
                if fs is not None and prefix is not None and st.st_size == fs.offset:  # touched, not changed
                    self.files[path] = FileState(fs.offset, fs.digest, fs.lines, st.st_mtime_ns)
                    rep.files_unchanged += 1
                    continue
                if fs is not None and prefix is None:
                    self.rewritten.add(path)
                    rep.files_rewritten += 1
                    fs = None
                elif fs is not None:
                    self.prefix[path] = prefix
                    rep.files_appended += 1
                else:
                    rep.files_new += 1
            except OSError as exc:
                rep.skip(path, f"unreadable: {exc}")
                continue
            todo.append((path, fs))
        return todo

    def read_file(self, path: str, fs: FileState | None) -> None:
        """Pass 1 over the new lines of one file (``fs``: what an earlier import read of it)."""
        try:
            with open(path, "rb", buffering=_READ_BUFFER) as fh:
                self._read(path, fh, fs)
        except OSError as exc:
            self.rep.skip(path, f"unreadable: {exc}")

    def _read(self, path: str, fh: BinaryIO, fs: FileState | None) -> None:
        rep, final, add = self.rep, self.cfg.final, self.index.add
        digest = xxhash.xxh3_128()
        offset = lineno = 0
        if fs is not None:  # ``plan`` hashed and checked the prefix: read on from it
            digest = self.prefix.pop(path)
            fh.seek(fs.offset)
            offset, lineno = fs.offset, fs.lines
        limit, before = self.cfg.max_line_bytes, rep.lines_read
        for raw in read_lines(fh, limit):
            lineno += 1
            if raw[-1] != 10 and len(raw) > limit:  # read past in chunks (or left for the next import if being written)
                size = pass_overlong(fh, raw, digest.update, final)
                if size is None:
                    self._pending(path)
                    lineno -= 1
                    break
                rep.lines_read += 1
                self._quarantine(path, lineno, "<line>", overlong(size, limit), raw[:HEAD_BYTES])
                offset += size
                continue
            body = raw[3:] if offset == 0 and raw.startswith(_BOM) else raw
            try:
                obj: Any = orjson.loads(body)
            except orjson.JSONDecodeError:
                if raw.isspace():
                    rep.lines_blank += 1
                elif raw[-1:] != b"\n" and not final:  # a live file's half-written last line: next import
                    self._pending(path)
                    lineno -= 1
                    break
                else:
                    rep.lines_read += 1
                    why = f"invalid JSON: {json_error(body)}" if raw[-1:] == b"\n" else \
                        "truncated line (no newline, not valid JSON)"
                    self._quarantine(path, lineno, "<line>", why, raw)
            else:
                rep.lines_read += 1
                bom = len(raw) - len(body)  # the record starts after a BOM: it is read back from there
                ref = Ref(path, lineno, offset + bom, len(body), xxhash.xxh3_64_intdigest(body.rstrip(b"\r\n")))
                try:
                    rep.records[add(ref, obj)] += 1
                    rep.lines_accepted += 1
                except RecordError as exc:
                    self._quarantine(path, lineno, exc.field, exc.reason, raw)
            digest.update(raw)
            offset += len(raw)
        rep.bytes_read += offset - (fs.offset if fs is not None else 0)
        self.files[path] = FileState(offset, digest.hexdigest(), lineno, self.mtimes[path])
        if fs is None and rep.lines_read == before and path not in self.held:  # as OpenClaw's importer says
            rep.files_new -= path not in self.rewritten
            rep.files_rewritten -= path in self.rewritten
            rep.skip(path, f"no importable rows yet ({'blank lines only' if offset else 'no line: an empty file'})")

    def _pending(self, path: str) -> None:
        """A half-written last line: the next import reads it, and until then every rollout with a record
        in ``path`` waits (the line may be any rollout's: a run written without it would never get it)."""
        self.rep.lines_pending += 1
        self.held.add(path)

    def _quarantine(self, path: str, lineno: int, field_: str, reason: str, raw: bytes) -> None:
        self.rep.quarantine(f"{path}:{lineno}: {field_}: {reason}")
        self.q.add(path, lineno, field_, reason, raw.rstrip(b"\r\n"))

    def reload_pending(self) -> None:
        """File the records of rollouts that waited at the last import, before any new line: they were
        read (and counted) then, and a record read later wins (a Rollout's final status)."""
        for rid, refs in sorted(self.state.pending.items()):
            for ref in refs:
                if ref.file in self.rewritten:  # read again whole in pass 1
                    continue
                try:
                    self.index.add(ref, orjson.loads(self.reader.read(ref)))
                except (OSError, ValueError) as exc:  # changed bytes, RecordError, JSON errors
                    self.rep.problems.append(f"{ref.file}:{ref.line}: record of waiting rollout {rid} lost: {exc}")
            if rid not in self.index.rollouts:  # nothing left to wait for (or in a file read again)
                del self.state.pending[rid]

    def map(self, rid: str, entry: RolloutEntry) -> None:
        """Pass 2 for one rollout; see the module docstring."""
        rep, state = self.rep, self.state
        rep.rollouts_seen += 1
        done = state.rollouts.get(rid)
        if done is not None:
            new = entry.new_records(done["lines"])
            if not new:  # a copy or a new dump of what was imported
                rep.rollouts_unchanged += 1
            else:
                self._skip(f"{new[0].file}:{new[0].line}", f"rollout {rid}: {len(new)} record(s) that its import "
                           f"into run {done['run_id']} did not have (an imported run is never rewritten)")
            return
        attempt = entry.latest_attempt()
        running = entry.status is not None and entry.status not in TERMINAL and not self.cfg.final
        if running or attempt is None or (self.held and any(r.file in self.held for r in entry.refs)):
            state.pending[rid] = list(entry.refs)
            rep.rollouts_pending += 1
            return
        why = entry.failure(attempt)
        run_id = run_id_for(rid, "al-")
        try:
            refs = [r for _, _, r in entry.attempts[attempt]]
            spans = [records.Span.model_validate_json(self.reader.read(r)).model_dump(mode="json")
                     for r in refs]
            task = orjson.loads(self.reader.read(entry.record))["input"] if entry.record else task_from_spans(spans, rid)
            run = spans_to_events(spans, run_id, task, None, RolloutFailed(why) if why else None)
        except (OSError, ValueError, TypeError, OverflowError) as exc:  # one bad rollout, not the whole import
            self._skip(rid, f"rollout {rid}: {type(exc).__name__}: {exc}")
            return
        extra = {"attempt_id": attempt, "attempts": len(entry.attempts), "rollout_status": entry.status,
                 "mode": entry.mode}
        writer = RunWriter(self.root, run_id)
        try:
            dropped = write_events(writer, run)
            events_bytes = writer.close(session_record(
                run, run_id, goal_family=self.cfg.goal_family, spans=len(spans), dropped=dropped, ref=rid,
                extra={k: v for k, v in extra.items() if v is not None}))
        except (RunConflict, ValueError, TypeError) as exc:  # a session.json the schema rejects, a value JSON
            writer.abort()  # cannot hold (an integer past 64 bits)
            self._skip(rid, f"rollout {rid}: {type(exc).__name__}: {exc}")
            return
        except BaseException:
            writer.abort()
            raise
        self._problems(refs, spans, run.problems)
        if run.skewed:
            self._skewed(refs, spans, rid, run.skewed)
        if writer.existing and writer.written == 0:  # written before, state lost: the same bytes
            rep.rollouts_unchanged += 1
        else:
            rep.rollouts_imported += 1
            rep.runs_written += 1
        rep.events_written += writer.written
        rep.events_already_present += writer.already_present
        rep.torn_cut(writer.events_path, writer.torn_cut)
        rep.events_dropped += dropped
        rep.spans_superseded += sum(len(v) for a, v in entry.attempts.items() if a != attempt)
        rep.drift.update(run.drift)
        rep.tool_schemas.update(run.tool_schemas)
        rep.tool_call_ids.update(run.tool_call_ids)
        rep.counts.update({f"span:{k}": n for k, n in run.kinds.items()})
        state.rollouts[rid] = {"run_id": run_id, "records": len(entry.refs), "events_bytes": events_bytes,
                               "lines": entry.line_digests()}
        state.pending.pop(rid, None)

    def _problems(self, refs: list[Ref], spans: list[dict[str, Any]], problems: list[tuple[str, str, str]]) -> None:
        """List a mapped rollout's span problems as ``file:line: span <id>: attribute: reason`` (the lines
        of every record of that span id), counting all of them."""
        where: dict[str, list[str]] = {}
        for ref, span in zip(refs, spans):
            where.setdefault(str(span.get("span_id")), []).append(f"{ref.file}:{ref.line}")
        rep = self.rep
        for sid, attribute, why in problems:
            rep.span_problems += 1
            if rep.span_problems <= rep.max_listed:
                rep.problems.append(f"{', '.join(where.get(sid, ['?']))}: span {sid}: {attribute}: {why}")

    def _skewed(self, refs: list[Ref], spans: list[dict[str, Any]], rid: str, skewed: dict[Any, str]) -> None:
        """Count and list a rollout whose span clocks disagree (hosts whose clocks differ): its spans were
        ordered by parent/child and ``sequence_id``, not by time; its event times are kept monotonic."""
        self.rep.clock_skew_rollouts += 1
        self.rep.clock_skew_spans += len(skewed)
        sid, why = next(iter(skewed.items()))
        where = next((f"{r.file}:{r.line}" for r, s in zip(refs, spans) if s.get("span_id") == sid), "?")
        self.rep.problems.append(f"{where}: rollout {rid}: clock skew in {len(skewed)} span(s) (e.g. span {sid} "
                                 f"{why}): ordered by parent/child and sequence_id, not by time")

    def _skip(self, where: str, why: str) -> None:
        self.rep.rollouts_skipped += 1
        self.rep.skipped.append(f"{where}: {why}")

    def checkpoint(self, final: bool) -> None:
        """Make the runs written so far durable, then save the state (file offsets only at the end:
        a crash before it reads the new lines again, and their rollouts are found imported)."""
        if self.rep.runs_written:
            sync_filesystem(self.root)
        if final:
            self.state.files.update(self.files)
        self.state.save()


def import_agentlightning(paths: list[str | os.PathLike[str]], out: str | os.PathLike[str],
                          cfg: SpanImportConfig | None = None) -> SpanImportReport:
    """Import stored Agent Lightning spans (files or folders of JSONL records) into the trace root ``out``.

    Args:
        paths: span files, or folders whose ``*.jsonl`` files are span files (see ``stored``).
        out: trace root; state and quarantine go to ``out/.import/``.
        cfg: importer settings.

    Returns:
        The report: ``reconciles`` (every line read accepted or quarantined), ``imported_nothing``.

    Raises:
        ImportError: ``agentlightning`` is not installed (``pip install 'tracebridge[agentlightning]'``).
    """
    cfg = cfg or SpanImportConfig()
    if importlib.util.find_spec("agentlightning") is None:  # the extra it reads records of; never imported here
        raise ImportError("No module named 'agentlightning'")
    root = Path(out)
    meta = root / ".import"
    meta.mkdir(parents=True, exist_ok=True)
    rep = SpanImportReport(max_listed=cfg.max_listed)
    with import_lock(root, "agentlightning", cfg.lock_timeout_s):
        state = SpanImportState(meta / cfg.state_file)
        q = Quarantine(meta / cfg.quarantine_file)
        imp = _Import(root, cfg, state, q, rep)
        try:
            todo = imp.plan(discover_span_files(paths, rep.problems))
            imp.reload_pending()  # before the new lines: a record read later wins (a Rollout's final status)
            for path, fs in todo:
                imp.read_file(path, fs)
            for i, rid in enumerate(sorted(imp.index.rollouts), 1):
                imp.map(rid, imp.index.rollouts[rid])
                if i % cfg.checkpoint_every == 0:
                    imp.checkpoint(final=False)
            imp.checkpoint(final=True)
        finally:
            imp.reader.close()
            q.close()
    return rep
