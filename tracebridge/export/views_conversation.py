"""Worker rows of conversational runs: spans of assistant turns, the conversation so far as context.

A chat agent such as OpenClaw is one model in a loop: each assistant turn is a worker decision and
its prompt is the conversation before it. Such runs have no ``worker_input`` (the simulator's
per-decision prompt contract, ``tracebridge.schema.roles``), so ``views_worker`` finds no row in
them. Which runs are conversational is decided by ``session.json`` ``source.kind`` in
``views.conversational_sources`` (default ``[openclaw]``), not by the absence of ``worker_input``:
an Agent Lightning rollout has none either, but its ``worker_output`` is the agent's return value
and its prompt is the ``llm`` block, so reading it as a chat would make wrong rows; a source whose
mapping is a chat (docs/openclaw-mapping.md) is named on purpose.

Messages, in trace order (TRL's conversational format, no chat template, no system turn: a
transcript does not record the system prompt, and the simulator's worker prompt would be false):

* ``planner_input`` → ``user`` with the goal text; an ``env_observation`` of system events
  (``openclaw.system_event``: exec/cron lines the agent was woken by) → ``user`` with those
  lines, as the model saw them, less Telegram reaction lines (they are feedback, joined as
  labels: in the prompt they would leak the label and the reacting user's name);
* ``worker_action`` ``tool_call`` → ``assistant`` with the turn's text and ``tool_calls``
  (``roles.tool_call_message``, the call ids of the trace); ``respond`` → ``assistant`` with the
  ``worker_output`` text; ``truncated`` replies stay in the context but are no target;
  ``error``/``aborted`` turns produced nothing and are skipped;
* ``worker_tool_result`` → ``tool`` (``tool_call_id``, ``name``, the output text); a result with no
  call in the run is left out;
* a compaction (``openclaw.compaction``), a branch summary, an extension message and a ``!`` shell
  run (these two unless ``excludeFromContext``) → ``user`` with the text ``convertToLlm`` gave the
  model (``openclaw_context``; a compaction replaces the context before its ``firstKeptEntryId``
  with its summary, an OpenClaw reset (``openclaw.reset``) drops it); OpenClaw's runtime context
  (``openclaw.runtime-context`` carriers, labelled, and system updates of kind ``runtime-context``)
  is turn-scoped: a later user turn drops it from the context, as upstream does, but for the run
  of it just before that turn's user message (it belongs to that message);
  labels, session names, extension state, delivery mirrors, injected notes and context-free
  commands are no context.

Which events: a session whose ``session.json`` records no branch (``RunContext.branched`` false,
nearly all) is one path, read in file order. A branched one is walked depth first over its tree
(``openclaw_context.transcript_tree``): a turn's context is its ancestors, a span ends at a branch
point, and an abandoned path's turns are rows too, labelled ``abandoned_path`` when their last target is
off the path to the leaf (``extra.leaf_entry_id``; a leaf that is no event: ``branch_leaf_not_an_event``).

Each assistant turn that is a tool call or a non-empty answer is a **target**. With
``views.conversation_rows=turn`` each target is a ``worker_sft`` row: ``messages`` = the last
``views.conversation_max_turns`` messages before it (moved forward to start at a user turn; in one
long turn, that turn's user message then the latest messages) + the turn. With ``span`` (the
default) consecutive plain targets of one user turn share a row: the capped context, then the
targets with the tool results between them, so the context is encoded once per span and not once
per turn (the trained tokens fall with it: on 300 generated sessions the worker rows went from
189 MB to 92 MB). A span ends at the next user turn, a compaction, a reply that is no target
(``truncated``: context only), at half the cap (the other half is context), and around a target
that needs a row of its own: a recovery (its labels up-weight it and it feeds the recovery
views), a turn with labels or feedback of its own (event-level feedback must not label its
neighbours). ``labels.context_messages`` = where the targets start (TRL's prompt/completion split,
``tracebridge.train.data.to_sft_records``; assistant-only loss leaves the tool results out),
``target_turns`` = how many targets a span of more than one holds (``views.target_turns`` lists
their indices; Agent Lightning triplets stay one per target), ``context_dropped`` = what the cap
and the budget cut, ``failed_tool_calls`` = the ``tool_call_id`` of each tool message of the row
whose result failed (``payload.ok`` false: OpenClaw's ``isError``; a list of strings, typed in
labels.py): the content stays what the agent saw ("Command exited with code
1"), so the eval's ``error_recurrence`` reads the failure here (``metrics.failed_calls``). Ids, not
indexes: eval fits prompts by dropping their oldest messages, and an id still names its message. ``meta.event_ids`` = the user turn's event and the targets' events (action, calls,
results, output); run-level feedback reaches every row of the run, as for simulator runs. Thinking
stays out of targets unless ``views.include_reasoning`` (then it leads the content as a
``<think>`` block).

Budgets for training at a max_length (0 = off; ``views.tool_output_max_chars`` is 8000 by default, the
context one opt-in; realistic sessions give rows of ~22K characters, and TRL drops a row whose context
before the first target is longer than max_length):
``views.context_max_chars`` then drops the oldest context messages while the context's characters
(contents and call arguments) exceed it, by the cap's rule (``_fit``); a row whose user turn alone is
over it keeps that minimal context and is counted (``context_over_budget``). ``views.tool_output_max_chars``
cuts a longer tool result to its head and tail when its message is built (``cut_tool_output``), so context
and span rows alike carry the cut; a target (an assistant turn) is never cut. Rows trimmed by each are
counted (``views.TRIMMED``, report.json ``views.rows_trimmed``), and the tool results cut, once each,
with the characters cut (``views.TOOL_OUTPUTS``, report.json ``views.tool_outputs``).

A **recovery** is as in ``views_worker``, with the user turn as the step: a turn whose calls all
succeed after a failed call in the same user turn, none of them repeating the last failed call.
``labels.failed_event_ids`` names the events of the user turn's failed calls before the row's first
target (action, call, result), as ``views_worker`` does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from tracebridge.export.config import ViewsConfig
from tracebridge.export.conversation_window import _fit, _Msg, _window
from tracebridge.export.openclaw_context import (
    COMPACTION_PREFIX,
    COMPACTION_SUFFIX,
    context_text,
    transcript_tree,
    turn_scoped,
)
from tracebridge.export.views import RunContext, event_labels, payload, strip_reasoning
from tracebridge.export.views_worker import _Builder, _children, _text, cut_tool_output
from tracebridge.schema import roles

# Context boundaries: a compaction (its summary replaces the context before its kept entry) and
# OpenClaw's reset (/new, /reset, idle, daily: the context starts again).
_BOUNDARIES = frozenset({"openclaw.compaction", "openclaw.reset"})

@dataclass
class _Pending:
    """A plain assistant turn waiting in the open span: its place in the history, lineage and labels."""

    at: int
    ids: list[str]
    labels: dict[str, Any]


@dataclass
class _Turn:
    """The conversation so far, and the current user turn: its event and its failed calls so far."""

    event_id: str | None = None
    failed: int = 0
    last_failed: tuple[str, dict[str, Any]] | None = None
    failed_ids: list[str] = field(default_factory=list)  # the failed calls' events (labels.failed_event_ids)
    history: list[_Msg] = field(default_factory=list)


def _user_text(ev: dict[str, Any]) -> str | None:
    """The user turn of a ``planner_input`` or a system-event observation, else None."""
    p = payload(ev)
    if ev.get("event_type") == "planner_input":
        return _text(p.get("goal")) or None
    if ev.get("event_type") == "env_observation" and p.get("source") == "openclaw.system_event":
        obs = p.get("observation") if isinstance(p.get("observation"), dict) else {}
        lines = [f"System: [{e.get('time')}] {e.get('text')}" if e.get("time") else f"System: {e.get('text')}"
                 for e in obs.get("system_events") or []
                 if isinstance(e, dict) and e.get("kind") != "telegram_reaction"]
        return "\n".join(lines) or None
    return None


def _drop_scoped(history: list[_Msg]) -> list[_Msg]:
    """The history a new user turn starts from: turn-scoped context (OpenClaw's runtime context) is
    gone, but for the run of it just before the new user message, which belongs to that message
    (upstream's ``stripHistoricalRuntimeContextCustomMessages``)."""
    if not any(m.scoped for m in history):  # nearly every session: no runtime context at all
        return history
    k = len(history)
    while k and history[k - 1].scoped:
        k -= 1
    return [m for m in history[:k] if not m.scoped] + history[k:]


class _Conversation:
    """Walks one run's events in order, keeping the conversation and emitting rows."""

    def __init__(self, events: list[dict[str, Any]], ctx: RunContext, cfg: ViewsConfig, stats: Counter[str]) -> None:
        self.cfg, self.stats = cfg, stats
        self.kids = _children(events)
        self.pos = {str(e.get("event_id")): i for i, e in enumerate(events)}
        self.rows = _Builder(ctx, cfg, stats)
        self.turn = _Turn()
        self.span: list[_Pending] = []
        self.feedback_events = set((ctx.feedback or {}).get("events") or ())  # turns with feedback of their own
        self.any_failed = False  # a failed tool result seen: rows then list theirs (labels.failed_tool_calls)
        self.kept: set[int] | None = None  # a branched session's path to its leaf, by position (walk_tree)

    def content(self, text: str, action: dict[str, Any]) -> str:
        reasoning = payload(action).get("reasoning_summary")
        if not self.cfg.include_reasoning:
            return strip_reasoning(text)
        return f"<think>{reasoning}</think>\n{text}" if reasoning else text

    def compact(self, ev: dict[str, Any], i: int, reset: bool = False) -> None:
        """A compaction, or with ``reset`` OpenClaw's reset boundary: the context before its
        ``firstKeptEntryId`` is gone; a compaction puts its summary first, a reset nothing (one
        without a kept entry, or with one not in the run, keeps no context)."""
        obs = payload(ev).get("observation") if isinstance(payload(ev).get("observation"), dict) else {}
        run_id = str(ev.get("run_id"))
        kept = self.pos.get(f"{run_id}:{obs.get('firstKeptEntryId')}")
        if kept is None:
            if not reset or "firstKeptEntryId" in obs:
                self.stats["reset_without_kept_entry" if reset else "compaction_without_kept_entry"] += 1
            kept = i if reset else 0
        self.flush()
        history = [m for m in self.turn.history if m.pos >= kept]
        if not reset:
            summary = {"role": "user", "content": COMPACTION_PREFIX + _text(obs.get("summary")) + COMPACTION_SUFFIX}
            history.insert(0, _Msg(summary, i))
        self.turn.history = history

    def decision(self, ev: dict[str, Any], i: int) -> None:
        act = payload(ev).get("action")
        calls = [k for k in self.kids.get(str(ev["event_id"]), []) if k.get("event_type") == "worker_tool_call"]
        outputs = [k for k in self.kids.get(str(ev["event_id"]), []) if k.get("event_type") == "worker_output"]
        if act == "tool_call" and calls:
            self.tool_call(ev, i, calls)
        elif act in ("respond", "truncated") and outputs and _text(payload(outputs[0]).get("result")):
            reply = {"role": "assistant", "content": self.content(_text(payload(outputs[0]).get("result")), ev)}
            if act == "respond" and reply["content"]:
                self.emit(_Msg(reply, i), [ev["event_id"], outputs[0]["event_id"]],
                          {**event_labels(ev), "failed_attempts": self.turn.failed,
                           "failed_event_ids": list(self.turn.failed_ids) or None}, None, bool(event_labels(ev)))
            else:
                self.stats[f"worker_action_{act}"] += 1
                self.flush()  # context only: the open span ends before it
                self.turn.history.append(_Msg(reply, i))
        else:
            self.stats[f"worker_action_{act}" if act != "respond" else "worker_answer_without_text"] += 1

    def tool_call(self, ev: dict[str, Any], i: int, calls: list[dict[str, Any]]) -> None:
        tool_calls, done, results = [], [], []
        for c in calls:
            cp = payload(c)
            args = cp.get("args") if isinstance(cp.get("args"), dict) else {}
            tool_calls += roles.tool_call_message(str(cp.get("call_id")), str(cp.get("tool")), args)["tool_calls"]
            done.append((str(cp.get("tool")), args))
            results.append(next((k for k in self.kids.get(str(c["event_id"]), [])
                                 if k.get("event_type") == "worker_tool_result"), None))
        text = self.content(_text((ev.get("llm") or {}).get("response")), ev)
        reply = self.rows.render({"role": "assistant", "content": text, "tool_calls": tool_calls})
        oks = [None if r is None else bool(payload(r).get("ok")) for r in results]
        ok = None if None in oks else all(oks)
        t = self.turn
        recovered = ok is True and t.last_failed is not None and t.last_failed not in done
        labels = {**event_labels(ev), "recovery": recovered or None, "failed_attempts": t.failed,
                  "failed_event_ids": list(t.failed_ids) or None, "tool_source": self.rows.ctx.tool_source, "tool_ok": ok}
        rejected = None
        if recovered and t.last_failed is not None:
            rejected = self.rows.render(roles.tool_call_message(reply["tool_calls"][0]["id"], *t.last_failed))
        ids = [ev["event_id"]] + [c["event_id"] for c in calls] + [r["event_id"] for r in results if r]
        self.emit(_Msg(reply, i), ids, labels, rejected, bool(event_labels(ev)))
        for call, o, c, r in zip(done, oks, calls, results):
            if o is False and r is not None:
                t.failed += 1
                t.last_failed = call
                # a new list, not +=: a branched session's saved turns (walk_tree) share this one
                t.failed_ids = [*t.failed_ids, ev["event_id"], c["event_id"], r["event_id"]]

    def emit(self, reply: _Msg, ids: list[str], labels: dict[str, Any], rejected: dict[str, Any] | None,
             labelled: bool) -> None:
        """Add an assistant turn that is a target: to the open span when it is plain, else as a row
        of its own (``views.conversation_rows=turn``, a recovery, labels or feedback of its own);
        then to the history."""
        h = self.turn.history
        own = (self.cfg.conversation_rows == "turn" or rejected is not None or labelled
               or not self.feedback_events.isdisjoint(ids))
        if own or (self.span and len(h) + 1 - self.span[0].at > max(1, self.cfg.conversation_max_turns // 2)):
            self.flush()  # a span holds at most half the cap: the rest is context
        if own:
            self.row([reply], ids, labels, rejected)
        else:
            self.span.append(_Pending(len(h), ids, labels))
        h.append(reply)

    def flush(self) -> None:
        """Write the open span as one row: context, then its turns and the tool results between them."""
        if not self.span:
            return
        span, self.span = self.span, []
        h = self.turn.history
        start, end = span[0].at, span[-1].at + 1
        labels = dict(span[0].labels)
        if len(span) > 1:
            oks = [p.labels["tool_ok"] for p in span if "tool_ok" in p.labels]
            labels["tool_ok"] = False if False in oks else (None if None in oks else True)
            labels["target_turns"] = len(span)
        self.row(h[start:end], [i for p in span for i in p.ids], labels, None, h[:start])

    def row(self, part: list[_Msg], ids: list[str], labels: dict[str, Any], rejected: dict[str, Any] | None,
            before: list[_Msg] | None = None) -> None:
        """A ``worker_sft`` row: the capped context before ``part``, then ``part`` (its last message
        the last target; ``labels.context_messages`` = where the targets start)."""
        before = self.turn.history if before is None else before
        win, dropped = _window(before, self.cfg.conversation_max_turns + 1 - len(part))
        if not any(m.msg["role"] == "user" for m in win):
            self.stats["assistant_turn_without_user_turn"] += 1
            return
        if self.cfg.context_max_chars:
            fitted, over = _fit(win, self.cfg.context_max_chars)
            self.stats["context_max_chars"] += len(fitted) < len(win)
            self.stats["context_over_budget"] += over
            win, dropped = fitted, dropped + len(win) - len(fitted)
        if self.cfg.tool_output_max_chars:  # a budget that is on shows in the report, trimming or not
            self.stats["tool_output_max_chars"] += any(m.cut for m in (*win, *part))
        failed = [m.msg["tool_call_id"] for m in (*win, *part) if m.failed] if self.any_failed else None
        labels = {**labels, "context_messages": len(win), "context_dropped": dropped or None,
                  "failed_tool_calls": failed or None}
        if self.kept is not None and part[-1].pos not in self.kept:
            labels["abandoned_path"] = True
        ids = ([self.turn.event_id] if self.turn.event_id else []) + ids
        msgs = [m.msg for m in win] + [m.msg for m in part]
        self.rows.emit(msgs[:-1], msgs[-1], ids, labels, rejected)

    def step(self, ev: dict[str, Any], i: int, by_id: dict[str, dict[str, Any]]) -> None:
        """Take the event at position ``i`` into the conversation (and rows)."""
        et = ev.get("event_type")
        user = _user_text(ev)
        if user is not None:
            self.flush()
            history = _drop_scoped(self.turn.history) + [_Msg({"role": "user", "content": user}, i)]
            self.turn = _Turn(str(ev.get("event_id")), history=history)
        elif et == "worker_action":
            self.decision(ev, i)
        elif et == "worker_tool_result":
            self.tool_result(ev, i, by_id)
        elif et == "env_observation":
            text = context_text(ev)
            if text is not None:  # context in the current user turn: the open span ends before it
                self.flush()
                self.turn.history.append(_Msg({"role": "user", "content": text}, i, scoped=turn_scoped(ev)))
            elif payload(ev).get("source") in _BOUNDARIES:
                self.compact(ev, i, payload(ev)["source"] == "openclaw.reset")

    def walk_tree(self, events: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> None:
        """Take a branched session's events depth first over its tree (``transcript_tree``, children in file
        order), so each event sees the conversation of its own ancestors and no abandoned path; the
        open span ends at a branch point, so each target is in one row."""
        up, kids = transcript_tree(events)
        root = len(events)
        leaf = self.rows.ctx.leaf
        if leaf is not None:
            at = self.pos.get(f"{self.rows.ctx.run_id}:{leaf}")
            if at is None:
                self.stats["branch_leaf_not_an_event"] += 1
            else:
                self.kept = set()
                while at != root:
                    self.kept.add(at)
                    at = up[at]
        saved: dict[int, _Turn] = {root: _Turn()}
        last = root
        stack = kids[root][::-1]
        while stack:
            i = stack.pop()
            if up[i] != last:  # back to a branch point: the path so far ends here
                self.flush()
                self.turn = replace(saved[up[i]], history=list(saved[up[i]].history))
            self.step(events[i], i, by_id)
            last = i
            if len(kids[i]) > 1:
                self.flush()
                saved[i] = replace(self.turn, history=list(self.turn.history))
            stack += kids[i][::-1]

    def tool_result(self, ev: dict[str, Any], i: int, by_id: dict[str, dict[str, Any]]) -> None:
        call = by_id.get(str(ev.get("parent_event_id")))
        if call is None or call.get("event_type") != "worker_tool_call":
            self.stats["tool_result_without_call"] += 1
            return
        p, cp = payload(ev), payload(call)
        out = p.get("output")
        text = out.get("text") if isinstance(out, dict) and isinstance(out.get("text"), str) else _text(out)
        if not text and isinstance(p.get("error"), dict):
            text = _text(p["error"].get("message"))
        cut = cut_tool_output(text, self.cfg.tool_output_max_chars, self.stats)
        failed = not p.get("ok")  # tool_call's rule: no ok = failed
        self.any_failed = self.any_failed or failed
        self.turn.history.append(_Msg({"role": "tool", "tool_call_id": str(cp.get("call_id")),
                                       "name": str(cp.get("tool")), "content": text if cut is None else cut},
                                      i, cut is not None, failed))


def conversation_rows(events: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], ctx: RunContext,
                      cfg: ViewsConfig, stats: Counter[str]
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``worker_sft`` rows, recovery SFT rows and recovery pairs of a conversational run."""
    conv = _Conversation(events, ctx, cfg, stats)
    if ctx.branched:
        conv.walk_tree(events, by_id)
    else:  # the common case: the file is the path
        for i, ev in enumerate(events):
            conv.step(ev, i, by_id)
    conv.flush()
    return conv.rows.sft, conv.rows.rec_sft, conv.rows.rec_pairs
