"""Worker rows: one per worker decision, rendered as the model-backed worker is prompted.

The simulator's ``ModelWorker`` (and any runtime that follows ``tracebridge.schema.roles``) asks
for one decision at a time: the user turn is ``worker_user_text`` of the ``worker_input`` payload
whose ``prior_failures`` include this step's earlier failed attempts (``{tool, args, error_kind,
error_message}``; ``{error_kind, error_message}`` for an invalid reply) and, where the step made several
calls (a runtime's worker may; the simulator's ends a step at its first success), the results of its
successful calls written before the decision as ``Prior result: {tool, args, output}`` lines: a decision
that reads a result must see it in its prompt (and calls made in parallel did not see each other's). A row reproduces that prompt and takes the decision as the assistant turn: a tool call (``tool_call_message``, in TRL's
``tool_calls`` format, the call id from the trace) or a plain-text answer (``respond``).
``give_up`` is no model reply format and gives no row.

A ``worker_tool_call`` without a ``worker_action`` parent (runtimes that log only calls) is itself
the decision. An event belongs to the step (``worker_input``) its parents lead to, else to the latest
one in file order: steps a runtime ran in parallel threads of one run stay apart.

A **recovery** is a successful call after at least one failed call in the same step that differs
from the last failed call (tool or arguments), per docs/trace-conventions.md. It gives a
``worker_recovery_cases/sft`` row (labels ``recovery: true``) and a pair whose rejected turn
repeats the last failed call.

``meta.event_ids`` are the decision's own events; a row whose prompt shows failed attempts names
their events in ``labels.failed_event_ids`` (each failed call's action, call and result, an invalid
reply's ``episode_error``, in order: a recovery pair's rejected turn is the last failed call's), so a
recovery row leads back to the failure as well as to the recovery. They are a label, not event ids:
feedback joined to the failed call must not label the row that recovered from it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from tracebridge.export.config import ViewsConfig
from tracebridge.export.views import RunContext, event_labels, payload, strip_reasoning
from tracebridge.schema import roles


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _arguments(value: Any) -> str:
    """Tool-call arguments as a JSON string in their own key order, the order the model wrote them: a
    runtime sends an earlier call back to the model as it was (OpenClaw: ``JSON.stringify``), so sorted keys
    made a context the model never saw and a target it never wrote (a third of OpenClaw's calls)."""
    if isinstance(value, str):
        return value
    return "" if value is None else orjson.dumps(value, default=str).decode()


def _jsonify(msg: dict[str, Any]) -> dict[str, Any]:
    """A tool-call message with its arguments as a JSON string (Arrow-safe)."""
    calls = [{**tc, "function": {**tc["function"], "arguments": _arguments(tc["function"]["arguments"])}}
             for tc in msg.get("tool_calls") or []]
    return {**msg, "tool_calls": calls}


class _Step:
    """State of one worker_input: its payload and this step's failed attempts so far."""

    def __init__(self, ev: dict[str, Any]) -> None:
        self.ev = ev
        self.attempts: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []  # this step's successful calls so far
        self.result_ids: list[str] = []  # their result events (rows whose prompt shows them name them)
        self.cut = False  # one of them cut to views.tool_output_max_chars
        self.last_failed: tuple[str, dict[str, Any]] | None = None
        self.failed_ids: list[str] = []  # events of the failed attempts (labels.failed_event_ids)

    def user_text(self) -> str:
        p = dict(payload(self.ev))
        p["prior_failures"] = list(p.get("prior_failures") or []) + [dict(a) for a in self.attempts]
        p["prior_results"] = list(self.results)
        return roles.worker_user_text(p)


def _children(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(str(e.get("parent_event_id")), []).append(e)
    return out


def _child(kids: dict[str, list[dict[str, Any]]], ev: dict[str, Any], etype: str) -> dict[str, Any] | None:
    return next((k for k in kids.get(str(ev.get("event_id")), []) if k.get("event_type") == etype), None)


class _Builder:
    """Accumulates the worker rows of one run."""

    def __init__(self, ctx: RunContext, cfg: ViewsConfig, stats: Counter[str]) -> None:
        self.ctx, self.cfg, self.stats = ctx, cfg, stats
        self.system = cfg.system_prompts.get("worker")
        # in the schemas' own key order, not sorted: a chat template renders the list as given (``tojson``), so
        # the tool block a row trains on is the one the worker is prompted with (``sim.backends``, a runtime)
        self.tools: Any = orjson.dumps(ctx.tools, default=str).decode() if cfg.json_strings else ctx.tools
        self.sft: list[dict[str, Any]] = []
        self.rec_sft: list[dict[str, Any]] = []
        self.rec_pairs: list[dict[str, Any]] = []

    def render(self, m: dict[str, Any]) -> dict[str, Any]:
        """``m`` as rows hold it: tool-call arguments as JSON strings when ``views.json_strings``."""
        return _jsonify(m) if self.cfg.json_strings and m.get("tool_calls") else m

    def add(self, step: _Step, action: dict[str, Any], reply: dict[str, Any], ids: list[str],
            labels: dict[str, Any], rejected: dict[str, Any] | None) -> None:
        prompt = [self.render(m) for m in roles.messages("worker", step.user_text(), system_prompt=self.system)]
        if self.cfg.tool_output_max_chars:  # a budget that is on shows in the report, trimming or not
            self.stats["tool_output_max_chars"] += step.cut
        ids = list(dict.fromkeys(ids + step.result_ids)) if step.result_ids else ids
        self.emit(prompt, self.render(reply), ids, labels, None if rejected is None else self.render(rejected))

    def emit(self, prompt: list[dict[str, Any]], reply: dict[str, Any], ids: list[str], labels: dict[str, Any],
             rejected: dict[str, Any] | None) -> None:
        """A ``worker_sft`` row (``prompt`` + ``reply``); with ``rejected``, also a recovery row and pair.

        The messages come rendered (``render``): a conversation renders each message once, not once
        per row whose context holds it, and its rows share those message objects.
        """
        row = {"messages": [*prompt, reply], "tools": self.tools, "meta": self.ctx.meta(ids, labels)}
        self.sft.append(row)
        if rejected is None:
            return
        self.rec_sft.append(row)
        self.rec_pairs.append({"prompt": prompt, "chosen": [reply], "rejected": [rejected],
                               "tools": self.tools, "meta": self.ctx.meta(ids, {**labels, "pair_source": "recovery"})})

    def tool_call(self, step: _Step, action: dict[str, Any], call: dict[str, Any],
                  result: dict[str, Any] | None) -> None:
        cp = payload(call)
        tool, args = str(cp.get("tool")), cp.get("args") if isinstance(cp.get("args"), dict) else {}
        reply = roles.tool_call_message(str(cp.get("call_id")), tool, args)
        if self.cfg.include_reasoning and payload(action).get("reasoning_summary"):
            reply["content"] = str(payload(action)["reasoning_summary"])
        rp = payload(result)
        ok = bool(rp.get("ok")) if result is not None else None
        recovered = ok is True and step.last_failed is not None and step.last_failed != (tool, args)
        labels = {**event_labels(action), "recovery": recovered or None, "failed_attempts": len(step.attempts),
                  "failed_event_ids": list(step.failed_ids) or None, "tool_source": self.ctx.tool_source, "tool_ok": ok}
        ids = list(dict.fromkeys([step.ev["event_id"], action["event_id"], call["event_id"]]
                                 + ([result["event_id"]] if result else [])))
        rejected = None
        if recovered and step.last_failed is not None:
            rejected = roles.tool_call_message(str(cp.get("call_id")), *step.last_failed)
        self.add(step, action, reply, ids, labels, rejected)
        if ok is False:
            err = rp.get("error") if isinstance(rp.get("error"), dict) else {}
            step.attempts.append({"tool": tool, "args": args, "error_kind": str(err.get("kind")),
                                  "error_message": str(err.get("message", ""))})
            step.last_failed = (tool, args)
            step.failed_ids += [i for i in dict.fromkeys([action["event_id"], call["event_id"], result["event_id"]])
                                if isinstance(i, str)]

    def answer(self, step: _Step, action: dict[str, Any], output: dict[str, Any] | None) -> None:
        text = _text(payload(output).get("result")) if output is not None else ""
        if not self.cfg.include_reasoning:
            text = strip_reasoning(text)
        if not text:
            self.stats["worker_answer_without_text"] += 1
            return
        ids = [step.ev["event_id"], action["event_id"]] + ([output["event_id"]] if output else [])
        self.add(step, action, {"role": "assistant", "content": text}, ids,
                 {**event_labels(action), "failed_attempts": len(step.attempts),
                  "failed_event_ids": list(step.failed_ids) or None}, None)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters: its first two thirds (what the tool was doing) and its last
    third (how it ended: errors and summaries come last), with a line saying how much was cut."""
    head = limit * 2 // 3
    return f"{text[:head]}\n[… {len(text) - limit} characters cut …]\n{text[len(text) - (limit - head):]}"


def cut_tool_output(text: str, limit: int, stats: Counter[str]) -> str | None:
    """``text`` cut by ``_cut`` when it is over ``limit`` characters (``views.tool_output_max_chars``;
    0 = never), else None; each cut is counted once, with the characters it removed
    (``TOOL_OUTPUTS``: report.json ``views.tool_outputs``), however many rows then carry it."""
    if not limit or len(text) <= limit:
        return None
    stats["tool_outputs_cut"] += 1
    stats["tool_output_chars_cut"] += len(text) - limit
    return _cut(text, limit)


def _add_result(step: _Step, result: dict[str, Any], by_id: dict[str, dict[str, Any]], cfg: ViewsConfig,
                stats: Counter[str]) -> None:
    """Keep a successful result of the step for the prompts of its later decisions; an output over
    ``views.tool_output_max_chars`` is cut as conversational rows cut theirs (``cut_tool_output``)."""
    call = by_id.get(str(result.get("parent_event_id")))
    if payload(result).get("ok") is True and call is not None and call.get("event_type") == "worker_tool_call":
        cp = payload(call)
        args = cp.get("args") if isinstance(cp.get("args"), dict) else {}
        out = payload(result).get("output")
        cut = cut_tool_output(out if isinstance(out, str) else _text(out), cfg.tool_output_max_chars, stats) \
            if cfg.tool_output_max_chars else None
        if cut is not None:
            out, step.cut = cut, True
        step.results.append({"tool": str(cp.get("tool")), "args": args, "output": out})
        step.result_ids.append(str(result.get("event_id")))


def _own_step(ev: dict[str, Any], by_id: dict[str, dict[str, Any]], open_steps: dict[str, _Step]
              ) -> tuple[bool, _Step | None]:
    """The step an event descends from: ``(True, step)`` for the ``worker_input`` its parents lead to
    (``step`` None once that step's ``worker_output`` came), ``(False, None)`` when they lead to none.

    Steps recorded one after another need no lineage (file order says which is current), but the
    steps a runtime ran in threads of one run interleave in the file: lineage keeps them apart.
    """
    seen: set[str] = set()
    pid = ev.get("parent_event_id")
    while isinstance(pid, str) and pid not in seen:
        seen.add(pid)
        parent = by_id.get(pid)
        if parent is None or parent.get("event_type") in ("worker_output", "planner_output", "verifier_output"):
            return False, None
        if parent.get("event_type") == "worker_input":
            return True, open_steps.get(pid)
        pid = parent.get("parent_event_id")
    return False, None


def worker_rows(events: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], ctx: RunContext,
                cfg: ViewsConfig, stats: Counter[str]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``worker_sft`` rows, recovery SFT rows and recovery pairs of a run."""
    kids = _children(events)
    b = _Builder(ctx, cfg, stats)
    current: _Step | None = None  # the latest worker_input's step, in file order
    open_steps: dict[str, _Step] = {}
    handled: set[str] = set()
    for ev in events:
        et = ev.get("event_type")
        if et == "worker_input":
            current = open_steps[str(ev.get("event_id"))] = _Step(ev)
            continue
        found, own = _own_step(ev, by_id, open_steps)
        step = own if found else current
        if et == "worker_output":
            if step is not None:
                open_steps.pop(str(step.ev.get("event_id")), None)
            current = None if step is current else current
        elif step is None:
            continue
        elif et == "episode_error" and payload(ev).get("kind") == "invalid_output" and ev.get("role") == "worker":
            step.attempts.append({"error_kind": "invalid_output", "error_message": str(payload(ev).get("message"))[:200]})
            step.failed_ids.append(str(ev.get("event_id")))
        elif et == "worker_tool_result":  # in file order: a decision written before it did not see it
            _add_result(step, ev, by_id, cfg, stats)
        elif et == "worker_tool_call" and ev["event_id"] not in handled:
            # a call with no worker_action of its own (runtimes that log only calls): the call is the decision
            b.tool_call(step, ev, ev, _child(kids, ev, "worker_tool_result"))
        elif et == "worker_action":
            act = payload(ev).get("action")
            call = _child(kids, ev, "worker_tool_call")
            if act == "tool_call" and call is not None:
                handled.add(call["event_id"])
                b.tool_call(step, ev, call, _child(kids, call, "worker_tool_result"))
            elif act == "respond":
                b.answer(step, ev, _child(kids, ev, "worker_output"))
            else:
                stats[f"worker_action_{act}"] += 1
    return b.sft, b.rec_sft, b.rec_pairs
