"""The ``Recorder``: how an agent runtime writes one schema-v2 run.

    with Recorder("traces", goal="sum column b", model_stack=stack,
                  runtime_config={"max_steps": 8}) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "..."})
        run.emit("planner_output", role="planner", payload={"plan": [...]},
                 llm=run.llm_call("qwen2.5-0.5b", prompt_text, params={"temperature": 0}))
        run.next_step()
        ...

Events go to ``traces/<run_id>/events.jsonl`` as they happen (append-only); ``session.json``
is written once, atomically, when the run closes. An exception leaving the ``with`` block before
the agent emitted ``episode_end`` is recorded as ``episode_error`` (its class and message) and
``episode_end`` (failed, ``failure_class`` the exception class), then re-raised. Capture is **fail-open** by default: an error
in capture (bad payload, full disk) is logged once, counted in the session's ``capture`` stats
and never raised into the agent; ``strict=True`` raises instead (tests use it). A NaN or infinite float
is written as ``"NaN"``/``"Infinity"``/``"-Infinity"`` and counted (``capture.nonfinite_values``), not as null.

A recorder may be shared by the agent's threads and asyncio tasks (one lock orders ids, timestamps and
counts; the interval fsync runs after it is released, so no thread waits for another's disk write); an event's default parent is the previous event *of the thread or task that emits it* (for a
thread's first, the run's previous event; for a task's first, its creator's previous event: a task starts
with a copy of its creator's ``contextvars`` context), so each one's action → call → result chain stays its own. A
process forked while a run is open does not write to it (``tracebridge.capture.forks``): the child's
emits are dropped and counted in the child. A signal handler may call ``close()`` mid-emit: the run closes
when that emit is done (an ``emit()`` from it mid-emit is refused and counted: it would be out of order).
"""

from __future__ import annotations

import logging
import os
import threading
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel

from tracebridge.capture.blocks import (
    CaptureCounts,
    CaptureError,
    RecorderArgumentError,
    RedactionHook,
    call_block,
    event_line,
    labels_argument,
    make_goal,
    new_run_id,
    payload_types,
    plain,
    recorder_arguments,
    redacted,
    root_argument,
    run_id_argument,
    usage_argument,
)
from tracebridge.capture.blocks import exception_message as _message
from tracebridge.capture.check import check_emitted
from tracebridge.capture.forks import OPEN, reduce_recorder
from tracebridge.capture.lineage import Lineage
from tracebridge.capture.problems import LineTooLong, event_problem, open_problem
from tracebridge.capture.reader import MAX_LINE_BYTES
from tracebridge.capture.session_file import count_written, write_session
from tracebridge.capture.writer import EventWriter
from tracebridge.schema.canonical import utc_now
from tracebridge.schema.events import LLMCall, Usage
from tracebridge.schema.session import Goal, ModelStack, RuntimeConfig, Source

__all__ = ["CaptureError", "Recorder", "RecorderArgumentError", "RedactionHook", "make_goal", "new_run_id",
           "payload_types"]
log = logging.getLogger(__name__)
_AUTO = object()


class Recorder:
    """Records one run. Use as a context manager.

    Args:
        root: trace root; the run goes to ``root/<run_id>/``.
        goal: the goal text (family ``unknown``), a dict ``{"text", "family"}`` (``goal_hash`` is
            computed when absent), or a ``Goal``. The export splits train/validation/test by family.
        model_stack: planner/worker/verifier models and params.
        runtime_config: max_steps, prompt_sources, tool_mode, seed, seed_kind, extra.
        source: where the run comes from (default ``{"kind": "runtime"}``).
        run_id: fixed run id (default: a new time-sortable id).
        tools: the toolset offered (JSON-able); hashed into ``toolset_hash``.
        prompts: prompt templates or sources (JSON-able); hashed into ``prompt_hash``.
        strict: raise ``CaptureError`` on any capture failure instead of failing open.
        fsync_interval_s: fsync the events file at most this often (None = only at close; 0 = each emit
            returns once its line is synced). ``close()`` always syncs it before writing session.json.
        redactor: redaction hook applied to every event and to the session before writing.
        labels: run-level labels for session.json.

    Raises:
        RecorderArgumentError: (a ValueError) an argument no valid session.json can hold: a ``model_stack``
            without a role, a ``runtime_config`` without ``max_steps``, a param JSON cannot hold, a ``run_id``
            that is not a str; the message names the argument and field. Checked here, before the agent
            runs; from then on capture fails open.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        goal: Goal | dict[str, Any] | str,
        model_stack: ModelStack | dict[str, Any],
        runtime_config: RuntimeConfig | dict[str, Any],
        source: Source | dict[str, Any] | None = None,
        run_id: str | None = None,
        tools: Any = None,
        prompts: Any = None,
        strict: bool = False,
        fsync_interval_s: float | None = 1.0,
        redactor: RedactionHook | None = None,
        labels: dict[str, Any] | None = None,
    ) -> None:
        self.goal, self.model_stack, self.runtime_config, self.source, self.hashes = recorder_arguments(
            goal, model_stack, runtime_config, source, tools, prompts)
        self.run_id = run_id_argument(run_id)
        self.run_dir = root_argument(root) / self.run_id
        self.strict = strict
        self.redactor = redactor
        self.labels = labels_argument(labels)
        self.stats = CaptureCounts()
        self.step = 0
        self._fsync_interval_s = fsync_interval_s
        self._writer: EventWriter | None = None
        self._lineage = Lineage(self.run_id)
        self._last_ts = ""
        self._started_at = ""
        self._tokens = 0
        self._cost = 0.0
        self._last_step: Any = 0  # the step of the last event written
        self._end: dict[str, Any] | None = None
        self._toolsets: set[str] = set()  # toolset hashes whose schemas an llm block written holds
        self._warned = False
        self._closed = False
        self._emitting = 0  # emits in progress in the thread holding the lock (a signal handler can nest one)
        self._close_after_emit: tuple[bool | None, str | None] | None = None  # a close() from mid-emit
        self._sync: tuple[EventWriter, int] | None = None  # an interval fsync emit() runs out of the lock
        self._not_open = "it was never opened (use `with Recorder(...) as run:` or call open())"
        # re-entrant: a signal handler's close() or emit() mid-emit would deadlock; close waits for that emit to end
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle
    __reduce__ = reduce_recorder  # pickled into another process (multiprocessing spawn): a stand-in there (forks.py)
    _disowned = False  # the run belongs to another process (forks.disown)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or self._end is not None:
            self.close()
            return
        kind = type(exc).__name__
        try:  # the run ends here: episode_end too, so the export reads a finished, failed run (not incomplete)
            self.emit("episode_error", role="orchestrator",
                      payload={"kind": kind, "message": _message(exc), "recoverable": False})
            self.emit("episode_end", role="orchestrator",
                      payload={"success": False, "outcome": f"crash: {kind}", "failure_class": kind})
        finally:  # strict mode may raise above; session.json is still written, with the error
            self.close(success=False, failure_class=kind)

    def open(self) -> None:
        """Create the run directory and open the events file. A recorder records one run: a second
        ``open`` (a nested ``with``) fails, as does a run folder that exists already."""
        if self._disowned:
            self._fail(CaptureError(f"run {self.run_id!r} cannot be opened here: {self._not_open}"), "open")
            return
        if self._writer is not None or self._closed:
            self._fail(CaptureError(f"run {self.run_id!r} was opened already; a Recorder records one run: make a "
                                    f"new one (with a new run_id) for the next"), "open")
            return
        self._started_at = self._now()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=False)
            self._writer = EventWriter(self.run_dir / "events.jsonl", self._fsync_interval_s)
        except OSError as exc:
            self._not_open = "its folder could not be created (see the error at open)"
            self._fail(CaptureError(open_problem(exc, self.run_dir)), "open")
            return
        OPEN.add(self)

    def close(self, success: bool | None = None, failure_class: str | None = None) -> None:
        """Close the events file and write ``session.json`` once (idempotent). Called mid-emit (from a signal
        handler), it closes once that emit is done."""
        with self._lock:
            if self._closed:
                return
            if self._emitting:
                self._close_after_emit = (success, failure_class)
                return
            self._close_after_emit = None
            self._closed = True
            OPEN.discard(self)
            self._close(success, failure_class)
            self._warned = False  # an emit after close is logged again: session.json cannot count it
            self._not_open = "it was closed (emit after close()); session.json does not count this event"

    def _close(self, success: bool | None, failure_class: str | None) -> None:
        writer, self._writer = self._writer, None  # emits from now on are refused before any work
        if self._sync is not None:  # an emit stopped (Ctrl-C) before its interval sync: the close syncs
            os.close(self._sync[1])
            self._sync = None
        self._lineage.close()
        if writer is None:  # never opened, or its folder could not be made: no run to write session.json into
            return
        try:
            writer.close()
        except OSError as exc:
            self._fail(exc, "close")
        if not self.stats.events_written:
            log.warning("run %s closed without any event written: tracebridge validate fails it and the export "
                        "quarantines it (no_events)", self.run_dir)
        end = self._end or {}
        try:
            write_session(self, success if success is not None else end.get("success"),
                          failure_class if failure_class is not None else end.get("failure_class"))
        except Exception as exc:  # noqa: BLE001 - fail-open: a bad label or goal never reaches the agent
            self._fail(exc, "session")

    # ------------------------------------------------------------------ emitting

    def next_step(self) -> int:
        """Start the next orchestrator cycle; return its number."""
        with self._lock:
            self.step += 1
            return self.step

    def emit(
        self,
        event_type: str,
        *,
        role: str,
        payload: dict[str, Any] | BaseModel,
        parent: str | None | object = _AUTO,
        llm: LLMCall | dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
    ) -> str:
        """Record one event and return its id.

        Args:
            event_type: one of the schema's event types.
            role: planner | worker | verifier | orchestrator | env | user.
            payload: the typed payload (model or dict) for ``event_type``.
            parent: causal parent id; default the previous event emitted by this thread or asyncio
                task (for a thread's first, the run's previous event; for a task's first, its creator's).
                The first event is the root; ``None`` asks for the root explicitly.
            llm: the model call that produced this event (see ``llm_call``).
            labels: event-level labels.

        Returns:
            The event id (also when capture failed in fail-open mode, so callers go on).
        """
        with self._lock:  # one event at a time: ids, timestamps and counts stay in file order
            self._emitting += 1
            try:
                event_id = self._emit(event_type, role, payload, parent, llm, labels)
            finally:
                self._emitting -= 1
                if self._close_after_emit is not None and not self._emitting:
                    self.close(*self._close_after_emit)
            sync, self._sync = self._sync, None
        if sync is not None:  # the interval fsync, out of the lock: other threads' emits do not wait for the disk
            sync[0].sync(sync[1])
            if sync[0].sync_error is not None:
                with self._lock:
                    if sync[0].sync_error is not None:  # the line is written; only its fsync failed: an error
                        exc, sync[0].sync_error = sync[0].sync_error, None
                        self._fail(exc, "fsync")
        return event_id

    def _emit(self, event_type: str, role: str, payload: Any, parent: Any, llm: Any, labels: Any) -> str:
        event_id, resolved = self._lineage.issue()
        record, line, nonfinite = None, b"", 0
        try:
            resolved = self._lineage.parent(parent, resolved, parent is _AUTO)
            record: dict[str, Any] = {
                "run_id": self.run_id,
                "step": self.step,
                "event_id": event_id,
                "event_type": event_type,
                "timestamp": self._now(),
                "parent_event_id": resolved,
                "role": role,
                "payload": plain(payload),
            }
            if resolved is None:
                record["root"] = True
            if llm is not None:
                record["llm"] = plain(llm)
            if labels:
                record["labels"] = labels
            if self._writer is None:
                raise CaptureError(f"run {self.run_id!r} is not open: {self._not_open}")
            if self._emitting > 1:  # written now, it would land before the event being emitted: out of order
                raise CaptureError("emit() called while another emit() of this thread was running (from a signal "
                                   "handler?): refused")
            check_emitted(record)
            if self.redactor is not None:
                record, kept = redacted(self.redactor, record)
            line, nonfinite = event_line(record)
            if self.redactor is not None:
                nonfinite += kept
            if len(line) > MAX_LINE_BYTES + 1:  # the reader skips it: refused here, where the agent is told
                raise LineTooLong(len(line) - 1, MAX_LINE_BYTES)
            fd = self._writer.write_lines(line, 1, defer_sync=self._emitting == 1)
            if fd is not None:  # synced by emit() once the lock is released
                self._sync = (self._writer, fd)
        except Exception as exc:  # noqa: BLE001 - fail-open: whatever the payload holds, the agent goes on
            self._lineage.dropped(event_id, resolved)  # its children attach to its parent
            self.stats.events_dropped += 1
            self._fail(exc, event_type, record)
            return event_id
        except BaseException:  # Ctrl-C mid-emit: raised right after os.write returned, the line is in the file
            if line and self._writer is not None and self._writer.ends_with(line):
                self._lineage.written(event_id, resolved)
                count_written(self, record, nonfinite)
                raise
            self._lineage.dropped(event_id, resolved)  # else nothing written; its children attach to its parent
            self.stats.events_dropped += 1
            raise
        self._lineage.written(event_id, resolved)
        count_written(self, record, nonfinite)
        if self._writer.sync_error is not None:  # a sync run here (no descriptor left to run it out of the lock)
            exc, self._writer.sync_error = self._writer.sync_error, None  # failed: the line is written, an error
            self._fail(exc, "fsync")
        return event_id

    def llm_call(
        self,
        model: str,
        prompt: Any,
        *,
        params: dict[str, Any] | None = None,
        tools: Any = None,
        response: str | None = None,
        usage: Usage | dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Describe one model call, with prompt/config/toolset hashes, for ``emit(llm=...)``.

        Args:
            model: model name or path.
            prompt: the rendered prompt text, or the message list that was sent.
            params: sampling parameters.
            tools: tool schemas offered to the model, in OpenAI's tools format (``{"type": "function",
                "function": {name, description, parameters}}``). Hashed into the block; the list itself
                is recorded on the first call of the run that offers it (``llm.tools``), and the
                export's worker rows carry it instead of schemas inferred from the call arguments.
            response: raw text the model returned.
            usage: token counts, cost and latency (a ``Usage``, or a dict of its fields; OpenAI's
                ``prompt_tokens``/``completion_tokens`` are taken for ours, ``total_tokens`` left out).

        Returns:
            The block; None when it cannot be built (an argument JSON cannot hold, ``params`` not a
            mapping): fail-open, counted, and the event is written without it. A ``usage`` the schema
            refuses is left out of the block (counted, fail-open): the call is still recorded.
        """
        try:
            usage = usage_argument(usage)
        except (TypeError, ValueError) as exc:
            with self._lock:
                self._fail(exc, "llm_call usage")
            usage = None
        try:
            return call_block(model, prompt, params=params, tools=tools, response=response, usage=usage,
                              recorded=self._toolsets)
        except Exception as exc:  # noqa: BLE001 - fail-open: the agent calls this on its own path
            with self._lock:
                self._fail(exc, "llm_call")
            return None

    # ------------------------------------------------------------------ internals

    def _now(self) -> str:
        ts = utc_now()
        if ts < self._last_ts:  # wall clock went back: keep the file's order monotonic
            return self._last_ts
        self._last_ts = ts
        return ts

    def _fail(self, exc: BaseException, where: str, record: Any = _AUTO) -> None:
        """Count a capture failure; raise it (strict) or log the first one and any at close. An event's failure (``record``: the
        event, or None when it failed before it was built) is described by field only when it is told."""
        self.stats.errors += 1
        if self._warned and not self.strict and where not in ("close", "session"):  # those lose the run: always said
            return
        why = exc if record is _AUTO or isinstance(exc, (CaptureError, OSError)) else event_problem(exc, record)
        if self.strict:
            raise CaptureError(f"{self.run_dir}: capture failed at {where}: {why}") from exc
        self._warned = True
        log.warning("capture failed at %s in %s (fail-open, counting further errors): %s", where, self.run_dir, why)
