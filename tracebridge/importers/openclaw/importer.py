"""``import_openclaw``: OpenClaw transcripts → schema-v2 runs, streaming and incremental.

Per transcript: find the session id (header row near the top, else the file name) and so the
run id; compare with the import state (unchanged → skip without reading; grown → replay the
imported prefix through the mapper without writing, checking its digest, then map and append
only the new lines; renamed or copied → recognised by the prefix digest); map line by line,
quarantining what cannot be mapped; write through ``RunWriter``. Memory is bounded by one
session's id maps, never by the input size.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from io import BufferedReader
from pathlib import Path
from typing import Any

import orjson
import xxhash

from tracebridge.capture.reader import HEAD_BYTES, overlong, pass_overlong, read_lines
from tracebridge.importers.config import ImportConfig
from tracebridge.importers.jsonl import json_error
from tracebridge.importers.lock import import_lock
from tracebridge.importers.openclaw.discover import Transcript, discover, nothing_found
from tracebridge.importers.openclaw.mapping import RowError, SessionMapper
from tracebridge.importers.openclaw.migration import MigratedPrefix
from tracebridge.importers.openclaw.repair import RepairedPrefix
from tracebridge.importers.openclaw.report import ImportReport
from tracebridge.importers.openclaw.runs import RunConflict, RunWriter
from tracebridge.importers.openclaw.session import read_session_id, run_id_for, session_record
from tracebridge.importers.openclaw.sqlite_store import materialize
from tracebridge.importers.openclaw.state import (
    ImportState,
    Quarantine,
    RunState,
    checkpoint,
    newline_since,
)

log = logging.getLogger(__name__)
# Events are serialised in batches of this many, and RunWriter writes every 64 KiB (runs.py): the
# rows' dicts and lines are turned into bytes and written while still in the CPU's caches. With 256
# events and 256 KiB the import took the same CPU time on an idle core and ~5% more while the
# other core was busy (200 sessions, 80 rounds interleaved in one process, median).
_BATCH_EVENTS = 32
# Read transcripts in 1 MiB blocks: the default 8 KiB buffer costs a read() per 8 KiB, and line
# iteration over the 233 MB benchmark input took 0.11 CPU s with it, 0.04 s with this.
_READ_BUFFER = 1 << 20
# OpenClaw's transcript encryption: ``ENCRYPTED:<iv>:<tag>:<data>`` lines (line-encryption.ts), or a
# whole file after an ``OPENCLAW_ENCRYPTED_V1`` line (file-encryption.ts). Not readable here.
_ENCRYPTED_LINE, _ENCRYPTED_FILE = b"ENCRYPTED:", b"OPENCLAW_ENCRYPTED_V1"
ENCRYPTED_WHY = "encrypted transcript line (OpenClaw transcript encryption): decrypt the transcript to import it"
SQLITE_CACHE = "openclaw-sqlite"  # under <out>/.import/: the sessions of agent databases as files


class _FileImport:
    """Imports one open transcript; see the module docstring."""

    def __init__(self, t: Transcript, fh: BufferedReader, out: Path, cfg: ImportConfig, state: ImportState,
                 q: Quarantine, rep: ImportReport) -> None:
        self.t, self.fh, self.out, self.cfg, self.state, self.q, self.rep = t, fh, out, cfg, state, q, rep
        self.file = str(t.path)
        self.where = f"{self.file} ({t.origin})" if t.origin else self.file  # for report lines
        self.size = os.fstat(fh.fileno()).st_size
        self.session_id, self.bom = read_session_id(fh, t.path.name, cfg.header_scan_bytes)
        self.run_id = run_id_for(self.session_id)
        self.final = cfg.final or t.archived is not None
        self._base: tuple[Counter[str], Counter[str]] | None = None  # counts after the replayed prefix
        self._blank = 0
        self._encrypted = False  # an OPENCLAW_ENCRYPTED_V1 line was read: what follows is ciphertext
        self._changed = ""  # why the imported prefix no longer matches (then it may have been migrated)
        self._rewritten = False  # the imported prefix was found rewritten in place by OpenClaw

    def run(self) -> None:
        st = self.state.runs.get(self.run_id)
        size = self.size
        if st is not None and st.file == self.file and size == st.offset and self._same_prefix(st):
            self.rep.files_unchanged += 1
            return
        if st is not None and size < st.offset:
            self._changed = (f"older or truncated copy of session {self.session_id} ({size} bytes < "
                             f"{st.offset} imported from {st.file})")
        writer = RunWriter(self.out, self.run_id, st.events_bytes if st else 0)
        try:
            mapper, done = self._map(writer, st)
            if done is None:
                writer.abort()
                return
            if mapper.events == 0 and not writer.existing:  # nothing importable (yet): no empty run
                writer.abort()
                self.rep.skip(self.where, "no importable rows yet (" + ("the lines read are quarantined or blank)" if done[1]
                              else "a half-written line only)" if self.size > self.bom else "no line: an empty file)"))
                self.rep.drift.update(mapper.drift)
                self.state.runs[self.run_id] = RunState(self.file, done[0], done[2], done[1], 0)
                return
            session = session_record(mapper, session_id=self.session_id, agent=self.t.agent,
                                     index_entry=self.t.index_entry)
            events_bytes = writer.close(session)
        except RunConflict as exc:
            writer.abort()
            self.rep.skip(self.where, str(exc))
            return
        except BaseException:
            writer.abort()
            raise
        offset, lines, digest = done
        self._account(mapper, writer, st, RunState(self.file, offset, digest, lines, events_bytes))

    def _map(self, writer: RunWriter, st: RunState | None) -> tuple[SessionMapper, tuple[int, int, str] | None]:
        """The session's mapper and ``_stream``'s result. A file whose imported prefix changed is
        replayed once more as a migration OpenClaw made in place, and once more as its repair of a
        transcript without a header first (either perhaps archived since: any path), except a shorter
        copy elsewhere (a ``.bak``), which is reported at once."""
        mapper = SessionMapper(self.run_id)
        done = None if self._changed else self._stream(mapper, writer, st)
        if done is not None or not self._changed or st is None:
            return mapper, done
        if st.file != self.file and self.size < st.offset:
            self.rep.skip(self.where, self._changed)
            return mapper, None
        replays = ((MigratedPrefix, self.q.rejected_rows(st.file, st.lines)),
                   (RepairedPrefix, self.q.quarantined_lines(st.file, st.lines)))
        why = []
        for rewrite, known in replays:
            mapper = SessionMapper(self.run_id)
            replay: Any = rewrite(mapper, writer.events_path, st.events_bytes, known)
            done = self._stream(mapper, writer, st, replay)
            if done is not None or replay.complete:
                return mapper, done
            why.append(replay.why or "it holds fewer rows than were imported")
        self.rep.skip(self.where, f"{self._changed}; no in-place migration by OpenClaw either: {why[0]}; "
                                  f"nor its repair of a transcript without a header first: {why[1]}")
        return mapper, None

    def _same_prefix(self, st: RunState) -> bool:
        """Whether a file of the imported size still holds the imported bytes: assumed for files
        (transcripts are appended to, and reading each unchanged one would cost the import its
        speed), checked for an agent database's session, whose rows can be rewritten in place."""
        if self.t.origin is None:
            return True
        digest = xxhash.xxh3_128()
        while chunk := self.fh.read(_READ_BUFFER):
            digest.update(chunk)
        self.fh.seek(self.bom)
        return digest.hexdigest() == st.prefix_digest

    def _account(self, mapper: SessionMapper, writer: RunWriter, st: RunState | None, new: RunState) -> None:
        # a file OpenClaw rewrote in place without adding rows is unchanged too (its new bytes are saved)
        unchanged = writer.written == 0 and writer.existing and (st is None or new.offset == st.offset
                                                                 or self._rewritten)
        rep = self.rep
        if unchanged:
            rep.files_unchanged += 1
        elif writer.existing:
            rep.files_appended += 1
        else:
            rep.files_new += 1
        rep.runs_written += not unchanged
        rep.events_written += writer.written
        rep.events_already_present += writer.already_present
        rep.torn_cut(writer.events_path, writer.torn_cut)
        if self._base is None:  # nothing replayed: every count is new
            rep.drift.update(mapper.drift)
            rep.counts.update(mapper.all_counts())
        else:
            rep.drift.update(mapper.drift - self._base[0])
            rep.counts.update(mapper.all_counts() - self._base[1])
        if not (unchanged and st is not None) or self._rewritten:  # a copy seen again keeps its first owner
            self.state.runs[self.run_id] = new

    def _stream(self, mapper: SessionMapper, writer: RunWriter, st: RunState | None,
                migrated: MigratedPrefix | RepairedPrefix | None = None) -> tuple[int, int, str] | None:
        """Map every line; returns (bytes consumed, lines consumed, digest) or None on conflict.

        Two loops over the same file: the imported prefix (replayed, nothing written; with
        ``migrated``, as OpenClaw migrated or repaired it), then the new lines, whose loop is the import's hot
        path and so checks nothing about the prefix.
        """
        digest = xxhash.xxh3_128()
        update, feed, write, loads, fh = digest.update, mapper.feed, writer.write_many, orjson.loads, self.fh
        replay_to = st.offset if st else 0
        lineno = replayed = accepted = 0
        limit = self.cfg.max_line_bytes
        new: Iterable[bytes] = read_lines(fh, limit)  # a longer line comes cut: see ``_overlong``
        if migrated is not None:
            replay_to, lineno = self._replay_migrated(migrated, update)
            if not lineno:
                return None
            replayed = lineno
        elif st is not None:
            prefix = self._replay_prefix(mapper, new, st, digest)
            if prefix is None:
                return None
            replayed = lineno = prefix[0]
            new = prefix[1]
        mapper.notes.clear()  # rows of the replayed prefix were listed by the import that read them
        pending: int | None = None  # bytes of a half-written last line, left for the next import
        batch: list[dict[str, Any]] = []  # the events of several rows: one ``write_many`` per batch
        start = lineno + 1
        for lineno, raw in enumerate(new, start):  # lineno stays the last line read (or start - 1)
            if raw[-1] != 10 and len(raw) > limit:  # only a line without its newline can be cut
                pending = self._overlong(lineno, raw, update)
                if pending is not None:
                    break
                continue
            try:  # JSON allows the trailing newline: no copy of the line on the common path
                row = loads(raw)
            except orjson.JSONDecodeError:
                error = None if raw.isspace() else json_error(raw)
                if error is not None and raw[-1:] != b"\n" and not self.final:
                    self.rep.lines_pending += 1  # a live transcript's half-written last line: next import
                    pending = len(raw)
                    break
                update(raw)
                self._bad_line(lineno, raw, error)
                continue
            update(raw)
            try:
                events = feed(row, lineno)
            except RowError as exc:
                self._quarantine(lineno, exc.field, exc.reason, raw.rstrip(b"\r\n"))
                continue
            accepted += 1
            batch += events
            if len(batch) >= _BATCH_EVENTS:
                write(batch)
                batch = []
        write(batch)
        offset, lines = fh.tell() - (pending or 0), lineno - (pending is not None)
        rep = self.rep
        rep.lines_replayed += replayed
        rep.lines_read += lines - replayed - self._blank  # blank lines are no records
        rep.lines_accepted += accepted
        rep.bytes_read += max(0, offset - replay_to)
        if st is not None and offset < replay_to:
            rep.skip(self.where, f"shorter than what was imported into run {self.run_id}")
            return None
        rep.noted(self.where, mapper.notes)
        return offset, lines, digest.hexdigest()

    def _replay_prefix(self, mapper: SessionMapper, lines: Iterable[bytes], st: RunState,
                       digest: Any) -> tuple[int, Iterable[bytes]] | None:
        """Feed the imported prefix again (nothing written); returns its lines and the new lines, or
        None when the file's first ``st.offset`` bytes are not the imported ones."""
        end, lineno, limit = self.bom, 0, self.cfg.max_line_bytes
        for lineno, raw in enumerate(lines, 1):
            end += len(raw)
            if end > st.offset:  # the first new line, unless it straddles the imported prefix
                if end - len(raw) == st.offset:
                    return lineno - 1, itertools.chain((raw,), lines)
                if not newline_since(digest, raw, end - len(raw), st):  # the imported lines end elsewhere: rewritten
                    break
                digest.update(raw)  # the last row imported was read before its newline was written
                self._replay(mapper, raw, lineno, True)
                return lineno, lines
            whole: bytes | None = raw
            if raw[-1] != 10 and len(raw) > limit:  # quarantined by the import that read it: read past it
                end += (pass_overlong(self.fh, raw, digest.update, True) or 0) - len(raw)
                if end > st.offset:
                    break
                whole = None
            else:
                digest.update(raw)
            self._replay(mapper, whole, lineno, end == st.offset)
            if end == st.offset and digest.hexdigest() != st.prefix_digest:
                break
        else:
            return lineno, lines
        self._changed = self._changed_since(st)
        return None

    def _overlong(self, lineno: int, raw: bytes, update: Any) -> int | None:
        """Quarantine a line longer than ``max_line_bytes``, read past in bounded chunks; returns 0 when
        it is a live transcript's last line, still being written (left for the next import), else None."""
        size = pass_overlong(self.fh, raw, update, self.final)
        if size is None:
            self.rep.lines_pending += 1
            return 0
        self._quarantine(lineno, "<line>", overlong(size, self.cfg.max_line_bytes), raw[:HEAD_BYTES])
        return None

    def _changed_since(self, st: RunState) -> str:
        return (f"content changed since it was imported into run {self.run_id} "
                f"(first {st.offset} bytes differ; imported from {st.file})")

    def _replay_migrated(self, migrated: MigratedPrefix | RepairedPrefix, update: Any) -> tuple[int, int]:
        """Replay the imported rows as OpenClaw rewrote them in place; returns (bytes, lines) of that
        prefix, or (0, 0) when it is no such rewrite (``migrated.why`` says why)."""
        self.fh.seek(self.bom)
        end, limit = self.bom, self.cfg.max_line_bytes
        for lineno, raw in enumerate(read_lines(self.fh, limit), 1):
            if raw[-1] != 10 and len(raw) > limit:  # no row of the import: its head is no JSON, as the migration reads it
                end += pass_overlong(self.fh, raw, update, True) or 0
                raw = raw[:HEAD_BYTES]
            else:
                end += len(raw)
                update(raw)
            if not migrated.feed(raw, lineno):
                break
            if migrated.complete:
                migrated.finish()
                self._base = (Counter(migrated.mapper.drift), migrated.mapper.all_counts())
                setattr(self.rep, migrated.counter, getattr(self.rep, migrated.counter) + 1)
                self._rewritten = True
                return end, lineno
        return 0, 0

    def _bad_line(self, lineno: int, raw: bytes, error: str | None) -> None:
        if error is None:
            self.rep.lines_blank += 1
            self._blank += 1
            return
        self._encrypted = self._encrypted or raw.startswith(_ENCRYPTED_FILE)
        if self._encrypted or raw.startswith(_ENCRYPTED_LINE):
            why = ENCRYPTED_WHY
        else:
            why = f"invalid JSON: {error}" if raw[-1:] == b"\n" else "truncated line (no newline, not valid JSON)"
        self._quarantine(lineno, "<line>", why, raw.rstrip(b"\r\n"))

    def _replay(self, mapper: SessionMapper, raw: bytes | None, lineno: int, last: bool) -> None:
        """Feed an already-imported line to rebuild the mapper's state (nothing is written; None: an
        over-long line, quarantined when it was read)."""
        try:
            if raw is not None:
                mapper.feed(orjson.loads(raw), lineno)
        except (orjson.JSONDecodeError, RowError):
            pass
        if last:  # drift and counts are reported for new lines only
            self._base = (Counter(mapper.drift), mapper.all_counts())

    def _quarantine(self, lineno: int, field: str, reason: str, raw: bytes) -> None:
        row = f" ({self.t.origin}, its row {lineno} by seq)" if self.t.origin else ""
        self.rep.quarantine(f"{self.file}:{lineno}{row}: {field}: {reason}")
        self.q.add(self.file, lineno, field, reason, raw)


def import_file(t: Transcript, root: Path, cfg: ImportConfig, state: ImportState, q: Quarantine, rep: ImportReport) -> None:
    """Import one transcript into ``root`` (an unreadable one is reported as skipped)."""
    rep.files_seen += 1
    try:
        with open(t.path, "rb", buffering=_READ_BUFFER) as fh:
            _FileImport(t, fh, root, cfg, state, q, rep).run()
    except OSError as exc:
        rep.skip(str(t.path), f"unreadable: {exc}")


def import_openclaw(paths: list[str | os.PathLike[str]] | None, out: str | os.PathLike[str],
                    cfg: ImportConfig | None = None, workers: int = 1,
                    progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import OpenClaw transcripts under ``paths`` into the trace root ``out``; returns the report
    (``report.reconciles``: every line read was accepted or quarantined).

    Args:
        paths: transcript files or folders (default: ``~/.openclaw``, ``~/.clawdbot``).
        out: trace root; state and quarantine go to ``out/.import/``.
        cfg: importer settings.
        workers: processes that import sessions side by side (see ``parallel.py``); the runs, state,
            quarantine and report are the same for any number.
        progress: ``progress(done, total)`` in transcripts (with workers: as each one's share ends).
    """
    if workers < 1:
        raise ValueError(f"workers={workers}: must be >= 1")
    cfg = cfg or ImportConfig()
    root = Path(out)
    meta = root / ".import"
    meta.mkdir(parents=True, exist_ok=True)
    rep = ImportReport(max_listed=cfg.max_listed)
    with import_lock(root, "openclaw", cfg.lock_timeout_s):
        state = ImportState(meta / cfg.state_file)
        stores: list[Path] = []
        transcripts = discover(paths, rep.problems, stores, out=root)
        for db in stores:  # current OpenClaw's SQLite transcripts, as files under .import/
            transcripts += materialize(db, meta / SQLITE_CACHE, rep.problems, cfg.db_busy_timeout_s)
        if not transcripts and not stores:  # a wrong folder read as "0 files, reconciles" and nothing else
            rep.problems.append(nothing_found(paths))
        if workers > 1 and len(transcripts) > 1:
            from tracebridge.importers.openclaw.parallel import import_parallel

            import_parallel(transcripts, root, cfg, state, rep, workers, progress)
            checkpoint(root, state, rep.runs_written)
            return rep
        q = Quarantine(meta / cfg.quarantine_file, problems=rep.problems)
        try:
            for i, t in enumerate(transcripts, 1):
                import_file(t, root, cfg, state, q, rep)
                if progress is not None:
                    progress(i, len(transcripts))
                if i % cfg.checkpoint_every == 0:
                    checkpoint(root, state, rep.runs_written)
        finally:
            q.close()
            checkpoint(root, state, rep.runs_written)
    return rep
