"""The Agent Lightning runtime hook: run an agent under an Agent Lightning tracer and its in-memory
store, and record what it did as one schema-v2 run. Fail-open: whatever goes wrong in capture
(setup, tracing, conversion, writing) is logged and counted, and the agent runs and returns as
it would without the hook; the agent's own exceptions propagate unchanged.

    hook = RuntimeHook("traces", goal_family="calc", tracer="agentops")
    res = hook.run(agent, {"question": "2+3"})     # agent(task) -> answer; sync or async
    res.result, res.run_id, res.capture_ok

Inside the agent, LLM calls are spans with ``gen_ai.*`` attributes, tool calls are
``agentlightning.operation`` spans (``with agl.operation(name=...)``) and rewards come from
``agl.emit_reward``. Which LLM calls become spans depends on ``tracer``:

- ``"agentops"``: Agent Lightning's ``AgentOpsTracer`` (what ``agl.Trainer`` uses by default): AgentOps
  instruments the ``openai`` client (and other providers' clients), so ``chat.completions.create`` calls
  are recorded as they are made (nothing is sent to AgentOps' service). The instrumentation is
  process-wide and stays installed after the run.
- ``"otel"`` (default): ``OtelTracer`` instruments nothing; only the spans the agent makes itself
  (``tracer.operation_context("openai.chat.completion", attributes=...)``, operations, rewards) are
  recorded, and an OpenAI client's calls are not.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracebridge.importers.agentlightning.runs import session_record, write_events
from tracebridge.importers.agentlightning.spans import spans_to_events
from tracebridge.importers.openclaw.runs import RunWriter
from tracebridge.importers.openclaw.session import run_id_for

log = logging.getLogger(__name__)


@dataclass
class HookResult:
    """What the agent returned and what the hook captured."""

    result: Any = None
    run_id: str | None = None
    run_dir: Path | None = None
    spans: int = 0
    events_written: int = 0
    events_dropped: int = 0
    capture_ok: bool = False
    capture_error: str | None = None
    span_kinds: dict[str, int] = field(default_factory=dict)
    tool_schemas: dict[str, int] = field(default_factory=dict)  # model calls with (recorded) or without (missing)
    raw_spans: list[dict[str, Any]] = field(default_factory=list)


def _agl() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import agentlightning as agl

    return agl


TracerName = Literal["otel", "agentops"]
TRACERS: tuple[TracerName, ...] = ("otel", "agentops")


class RuntimeHook:
    """Runs agents under an Agent Lightning tracer and in-memory store and writes their runs.

    Args:
        out: trace root.
        goal_family: goal family recorded for the runs.
        keep_spans: keep the raw span dicts on the result (for adapters and tests).
        tracer: ``"otel"`` records the spans the agent makes; ``"agentops"`` also records the calls of
            instrumented clients such as ``openai`` (see the module docstring).

    Raises:
        ValueError: ``tracer`` is none of ``TRACERS``.
    """

    def __init__(self, out: str | os.PathLike[str], goal_family: str = "agentlightning", keep_spans: bool = False,
                 tracer: TracerName = "otel") -> None:
        if tracer not in TRACERS:
            raise ValueError(f"tracer={tracer!r}: must be one of {', '.join(TRACERS)} (agentops records the calls "
                             "of clients such as openai; otel only the spans the agent makes)")
        self.out = Path(out)
        self.goal_family = goal_family
        self.keep_spans = keep_spans
        self.tracer = tracer

    def run(self, agent: Callable[[Any], Any], task: Any) -> HookResult:
        """Run ``agent(task)`` (sync or async) under the tracer; see the module docstring."""
        return asyncio.run(self.arun(agent, task))

    async def arun(self, agent: Callable[[Any], Any], task: Any) -> HookResult:
        """``run`` for callers already inside an event loop."""
        res = HookResult()
        try:
            agl = _agl()
            store = agl.InMemoryLightningStore()
            tracer = _start_tracer(agl, self.tracer, store)
            rollout = await store.start_rollout(input=task)
            rid, aid = rollout.rollout_id, rollout.attempt.attempt_id
        except Exception as exc:  # noqa: BLE001 - fail-open: capture never stops the agent
            self._capture_failed(res, "setup", exc)
            res.result = await _call(agent, task)
            return res
        error: BaseException | None = None
        traced = False
        try:
            async with tracer.trace_context("tracebridge-runtime-hook", rollout_id=rid, attempt_id=aid):
                traced = True
                try:
                    res.result = await _call(agent, task)
                except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised below
                    error = exc  # Ctrl-C and SystemExit too: an interrupted agent's run is kept
        except Exception as exc:  # noqa: BLE001 - the tracer itself failed
            self._capture_failed(res, "trace", exc)
            if not traced:
                res.result = await _call(agent, task)
        try:
            if res.capture_error is None:
                spans = [s.model_dump(mode="json") for s in await store.query_spans(rid)]
                self._write(res, spans, rid, task, error)
        except Exception as exc:  # noqa: BLE001
            self._capture_failed(res, "write", exc)
        finally:
            _teardown(tracer)
        if error is not None:
            raise error
        return res

    def _write(self, res: HookResult, spans: list[dict[str, Any]], rollout_id: str, task: Any,
               error: BaseException | None) -> None:
        run_id = run_id_for(rollout_id, "al-")  # the importer of stored spans gives the rollout the same run
        run = spans_to_events(spans, run_id, task, res.result, error)
        res.spans, res.span_kinds = len(spans), dict(run.kinds)
        for sid, attribute, why in run.problems:  # the agent's own spans: its log is where they are seen
            log.warning("rollout %s: span %s: %s: %s", rollout_id, sid, attribute, why)
        if run.skewed:  # spans from hosts whose clocks differ (an LLM proxy): the store's order was taken
            sid, why = next(iter(run.skewed.items()))
            log.warning("rollout %s: clock skew in %d span(s) (e.g. span %s %s): ordered by parent/child and "
                        "sequence_id, not by time", rollout_id, len(run.skewed), sid, why)
        res.tool_schemas = {k: run.tool_schemas[k] for k in ("recorded", "missing")}
        if self.keep_spans:
            res.raw_spans = spans
        writer = RunWriter(self.out, run_id, durable=True)
        try:
            res.events_dropped = write_events(writer, run)
            writer.close(session_record(run, run_id, goal_family=self.goal_family, spans=len(spans),
                                        dropped=res.events_dropped, ref=rollout_id))
        except BaseException:
            writer.abort()
            raise
        res.run_id, res.run_dir, res.events_written = run_id, self.out / run_id, writer.written
        res.capture_ok = res.events_dropped == 0

    @staticmethod
    def _capture_failed(res: HookResult, where: str, exc: BaseException) -> None:
        res.capture_ok = False
        res.capture_error = f"{where}: {type(exc).__name__}: {exc}"
        log.warning("runtime hook capture failed at %s (fail-open, the agent is unaffected): %s", where, exc)


async def _call(agent: Callable[[Any], Any], task: Any) -> Any:
    out = agent(task)
    return await out if inspect.isawaitable(out) else out


def _start_tracer(agl: Any, name: TracerName, store: Any) -> Any:
    """Agent Lightning's tracer of that name, set up as worker 0 writing to ``store``."""
    tracer = agl.AgentOpsTracer() if name == "agentops" else agl.OtelTracer()
    tracer.init()
    tracer.init_worker(0, store)
    if name == "agentops":
        try:
            _share_store_processor(tracer)
        except Exception as exc:  # noqa: BLE001 - the calls are still recorded, their tool-call spans may not be
            log.warning("could not route the global tracer provider's spans to the store: %s", exc)
    return tracer


def _share_store_processor(tracer: Any) -> None:
    """AgentOps records a model call on its own tracer provider but the call's ``tool_call.*`` spans and
    its session span on the process's global one. They are the same provider unless something set the
    global one first (an ``OtelTracer``, the application's own OpenTelemetry setup; OpenTelemetry sets
    it once per process), and then those spans never reach the store and the calls lose their tool
    calls. Adding the tracer's store processor to the global provider too brings them back (it only
    stores spans while a rollout is being traced)."""
    from agentlightning.tracer.otel import LightningSpanProcessor
    from agentlightning.utils.otel import get_span_processors
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.trace import TracerProvider

    own, shared = tracer._get_tracer_provider(), trace_api.get_tracer_provider()
    if shared is own or not isinstance(shared, TracerProvider):
        return
    processors = get_span_processors(own, LightningSpanProcessor)
    if processors and processors[0] not in get_span_processors(shared, LightningSpanProcessor):
        shared.add_span_processor(processors[0])


def _teardown(tracer: Any) -> None:
    try:
        tracer.teardown_worker(0)
        tracer.teardown()
    except Exception as exc:  # noqa: BLE001 - teardown problems never reach the agent
        log.debug("tracer teardown: %s", exc)
