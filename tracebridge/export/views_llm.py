"""Worker rows of recorded model calls: the prompt the model saw, the reply it gave.

An Agent Lightning rollout (``import agentlightning``, the runtime hook) records each model call as a
``worker_action`` whose ``llm`` block holds the call's chat messages (``rendered_prompt``, a JSON list)
and its reply (``response`` text, ``tool_calls`` when the model called tools natively). Such runs have
no ``worker_input`` (the simulator's prompt contract, ``views_worker``) and are no chat transcript
(``views_conversation``): the agent builds each prompt itself. Which runs are read this way is decided
by ``session.json`` ``source.kind`` in ``views.llm_call_sources`` (default ``[agentlightning]``).

Each call with a reply is a ``worker_sft`` row: ``messages`` = the prompt messages as recorded (roles
kept, content as text, tool calls in TRL's ``tool_calls`` format) + the assistant reply (its text, less
thinking unless ``views.include_reasoning``, and its tool calls); ``labels.context_messages`` = the
prompt's length, so training takes the reply alone as the target (the prompt's own assistant turns were
targets of the earlier calls' rows). With ``views.json_strings`` a tool call's arguments are the string
the call recorded (the model's own bytes), not a re-serialisation. The row's labels are the call's, less
its token ids (``prompt_token_ids``/``response_token_ids``): they encode the raw text that redaction
rewrites in the row, and stay in the traces.

``tools`` = the schemas the call offered, as recorded (``llm.tools``, stored once per run and
``llm.toolset_hash``; key order kept; ``labels.tool_source: recorded``); a call that offered tools the
trace holds no schemas of, or called one, gets the run's schemas (``tracebridge.export.tools``:
``tools.schemas_file``, else inferred from the arguments; ``labels.tool_source`` says which), as does a
call whose prompt holds native tool calls or results (the agent offered it tools); a call that did none
of these gets None and no ``tool_source``: a text-only agent (a ReAct loop that parses the reply itself)
saw no tool list, and a row must not show it one.

Calls whose prompt is not a JSON message list (a rendered chat template), or with no reply, give no row
and are counted (``llm_prompt_not_messages``, ``llm_call_without_reply``), as are calls whose prompt
lacks a message the instrumentation could not record (``llm_prompt_incomplete``: a ``null`` in
``rendered_prompt``; a row without it would teach a conversation that never happened).

The tool calls of a call are the ``worker_tool_call`` events after it and before the next call (their
spans follow the model call that asked for them, as children or siblings), so ``labels.tool_ok`` is
whether they all succeeded; ``labels.failed_tool_calls`` names the call ids of the failed results a row's
prompt shows (as ``views_conversation``: the eval's ``error_recurrence`` reads it, since a result's text
rarely says it failed). A **recovery** is as in ``views_worker``, with the whole rollout as the
step: a call whose tools all succeed after a failed call, with a reply that differs from the failed
call's (its text, or the tools and arguments it called: not the calls' ids, new on every call, nor the
arguments' spacing). It gives a ``worker_recovery_cases/sft`` row and a pair whose rejected turn is the
failed call's reply (what the model said last time, which failed). ``labels.failed_event_ids`` names
the events of the rollout's failed calls so far (each call's action, tool calls and results), as
``views_worker`` does.

A call's prompt holds every earlier tool output of its rollout, so one huge output (a file read, a log
dump) would be copied whole into every later call's row, triplet and messages row. The tool outputs in
recorded prompts (``tool`` messages, Anthropic-style ``tool_result`` blocks) are cut to
``views.tool_output_max_chars`` as worker rows cut theirs (``ToolCuts``: head and tail with a
``[… N characters cut …]`` line), each distinct output counted once (report.json ``views.tool_outputs``);
the reply, the row's target, is never cut. A row then differs from what the model saw only in the cut
outputs; ``views.tool_output_max_chars=0`` keeps them whole.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from tracebridge.export.config import ViewsConfig
from tracebridge.export.views import RunContext, event_labels, payload, strip_reasoning
from tracebridge.export.views_worker import _Builder, _text, cut_tool_output

# OpenAI's newer and older role names, as chat templates know them
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool",
          "function": "tool"}


def _calls(raw: Any, keep_text: bool = False) -> list[dict[str, Any]]:
    """Tool calls (``{id, name, arguments}`` or OpenAI's nested shape) in TRL's format: arguments an
    object when they are JSON, or with ``keep_text`` a recorded string as it is."""
    out = []
    for i, c in enumerate(raw if isinstance(raw, list) else []):
        fn = c.get("function") if isinstance(c, dict) and isinstance(c.get("function"), dict) else c
        if not isinstance(fn, dict) or not fn.get("name"):
            continue
        args = fn.get("arguments")
        if isinstance(args, str) and not keep_text:
            try:
                args = orjson.loads(args)
            except orjson.JSONDecodeError:
                pass
        out.append({"id": str(c.get("id") or f"call_{i}"), "type": "function",
                    "function": {"name": str(fn["name"]), "arguments": {} if args is None else args}})
    return out


def _content(value: Any) -> str:
    """Message content as text: a list of OpenAI content parts gives its text parts joined (JSON when
    it holds other parts, an image say, so nothing is lost silently)."""
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text") or "") for p in value)
    return _text(value)


class ToolCuts:
    """Tool outputs in recorded prompts cut to ``views.tool_output_max_chars`` (``cut_tool_output``, 0 =
    whole), as worker rows cut theirs. A call's prompt repeats every earlier output of its run, so each
    distinct output (its call id and text) is cut and counted once per run, however many prompts hold it."""

    def __init__(self, limit: int, stats: Counter[str]) -> None:
        self.limit, self.stats = limit, stats
        self.done: dict[tuple[str, str], str] = {}
        self.row_cut = False  # the prompt being read had an output cut

    def __call__(self, call_id: str, text: str) -> str:
        if not self.limit or len(text) <= self.limit:
            return text
        key = (call_id, text)
        if key not in self.done:
            self.done[key] = cut_tool_output(text, self.limit, self.stats) or text
        self.row_cut = True
        return self.done[key]


def _cut_results(content: Any, cut: ToolCuts | None) -> Any:
    """``content`` with the text of its ``tool_result`` blocks (Anthropic's shape: a string or text parts)
    cut by ``cut``; as it was when none is over the budget."""
    if cut is None or not isinstance(content, list):
        return content
    out = []
    for p in content:
        inner = p.get("content") if isinstance(p, dict) and p.get("type") == "tool_result" else None
        text = _content(inner) if isinstance(inner, (str, list)) else None
        short = text if text is None else cut(str(p.get("tool_use_id") or ""), text)
        out.append(p if short is text else {**p, "content": short})
    return out


def _message(m: Any, keep_text: bool, cut: ToolCuts | None = None) -> dict[str, Any] | None:
    """One recorded prompt message as rows hold it, or None when it is no chat message; ``cut`` cuts
    its tool outputs (a tool message's content, ``tool_result`` blocks)."""
    role = _ROLES.get(m.get("role")) if isinstance(m, dict) and isinstance(m.get("role"), str) else None
    if role is None:
        return None
    out: dict[str, Any] = {"role": role, "content": _content(_cut_results(m.get("content"), cut))}
    calls = _calls(m.get("tool_calls"), keep_text)
    if calls and role == "assistant":
        out["tool_calls"] = calls
    if role == "tool":
        out["tool_call_id"] = str(m.get("tool_call_id") or m.get("name") or "")
        if cut is not None:
            out["content"] = cut(out["tool_call_id"], out["content"])
    return out


def prompt_messages(llm: dict[str, Any], keep_text: bool = False, cut: ToolCuts | None = None
                    ) -> list[dict[str, Any]] | None:
    """The call's prompt as chat messages (``keep_text``: tool-call arguments as the strings recorded;
    ``cut``: tool outputs cut to the budget); None when ``rendered_prompt`` is no JSON message list."""
    try:
        raw = orjson.loads(llm.get("rendered_prompt") or "")
    except (orjson.JSONDecodeError, TypeError):
        return None
    msgs = [_message(m, keep_text, cut) for m in raw] if isinstance(raw, list) and raw else None
    return msgs if msgs and all(m is not None for m in msgs) else None  # type: ignore[return-value]


def _no_row_reason(llm: dict[str, Any], prompt: list[dict[str, Any]] | None) -> str:
    if prompt is not None:
        return "llm_call_without_reply"
    try:
        raw = orjson.loads(llm.get("rendered_prompt") or "")
    except (orjson.JSONDecodeError, TypeError):
        return "llm_prompt_not_messages"
    # a message the instrumentation could not read (null) that no earlier call's reply filled in
    return "llm_prompt_incomplete" if isinstance(raw, list) and None in raw else "llm_prompt_not_messages"


def _reply(llm: dict[str, Any], cfg: ViewsConfig, keep_text: bool) -> dict[str, Any] | None:
    text = llm.get("response") if isinstance(llm.get("response"), str) else ""
    if not cfg.include_reasoning:
        text = strip_reasoning(text)
    calls = _calls(llm.get("tool_calls"), keep_text)
    if not text and not calls:
        return None
    out: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        out["tool_calls"] = calls
    return out


def _row_labels(ev: dict[str, Any]) -> dict[str, Any]:
    """The call's labels a row carries: not its token ids (Agent Lightning records them from vLLM), which
    encode the raw prompt and reply that redaction rewrites in the row's text, and only fit the tokenizer
    that made them."""
    return {k: v for k, v in event_labels(ev).items() if k not in ("prompt_token_ids", "response_token_ids")}


def _tool_events(events: list[dict[str, Any]]) -> dict[str, tuple[list[str], bool | None]]:
    """Per ``worker_action`` with a model call: the ids of its tool calls and results, and whether
    they all succeeded (None with no call or no result)."""
    results = {payload(e).get("call_id"): e for e in events if e.get("event_type") == "worker_tool_result"}
    ids: dict[str, list[str]] = {}
    oks: dict[str, list[bool | None]] = {}
    current: str | None = None
    for e in events:
        et = e.get("event_type")
        if et == "worker_action" and isinstance(e.get("llm"), dict):
            current = str(e.get("event_id"))
            ids[current], oks[current] = [], []
        elif et == "worker_tool_call" and current is not None:
            res = results.get(payload(e).get("call_id"))
            ids[current] += [str(e.get("event_id"))] + ([str(res.get("event_id"))] if res else [])
            oks[current].append(bool(payload(res).get("ok")) if res else None)
    return {k: (ids[k], False if False in v else None if not v or None in v else True) for k, v in oks.items()}


def _decision(reply: dict[str, Any] | None) -> Any:
    """What a reply decided, for telling a retry from a changed call: its text and its calls' tools and
    arguments (parsed)."""
    if reply is None:
        return None
    calls = [(c["function"]["name"], c["function"]["arguments"]) for c in reply.get("tool_calls", [])]
    return reply["content"], calls


def used_tools(prompt: list[Any]) -> bool:
    """Whether a prompt holds native tool calls or their results: the agent offered tools to this call
    too, though its span did not record the list (a text-only agent's prompt holds neither)."""
    return any(isinstance(m, dict) and (m.get("tool_calls") or m.get("role") in ("tool", "function"))
               for m in prompt)


def _toolsets(events: list[dict[str, Any]], json_strings: bool) -> dict[str, Any]:
    """The tool schemas the run's calls offered (``llm.tools``) by ``toolset_hash``, as rows hold them:
    with ``json_strings`` a JSON string in the recorded key order (the order the model saw, not sorted),
    else the list."""
    out: dict[str, Any] = {}
    for ev in events:
        llm = ev.get("llm") if ev.get("event_type") == "worker_action" else None
        if not isinstance(llm, dict) or not isinstance(llm.get("tools"), list) or not llm["tools"]:
            continue
        h = llm.get("toolset_hash")
        if isinstance(h, str) and h not in out:
            out[h] = orjson.dumps(llm["tools"]).decode() if json_strings else llm["tools"]
    return out


def llm_call_rows(events: list[dict[str, Any]], ctx: RunContext, cfg: ViewsConfig, stats: Counter[str]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``worker_sft`` rows, recovery SFT rows and recovery pairs of a run's recorded model calls."""
    b = _Builder(ctx, cfg, stats)
    schemas, tools_of, offered = b.tools or None, _tool_events(events), _toolsets(events, cfg.json_strings)
    keep = cfg.json_strings  # rows hold arguments as strings: the recorded ones, not re-serialised
    failed: tuple[Any, dict[str, Any]] | None = None  # the last failed call's decision and reply
    attempts = 0
    failed_ids: list[str] = []  # the failed calls' events (labels.failed_event_ids)
    # call ids of failed tool results: rows name those their prompt holds (labels.failed_tool_calls, as
    # views_conversation), since a result's text alone rarely says it failed
    bad = {str(payload(e).get("call_id")) for e in events
           if e.get("event_type") == "worker_tool_result" and payload(e).get("ok") is False}
    cuts = ToolCuts(cfg.tool_output_max_chars, stats)
    for ev in events:
        llm = ev.get("llm")
        if ev.get("event_type") != "worker_action" or not isinstance(llm, dict):
            continue
        cuts.row_cut = False
        prompt, reply = prompt_messages(llm, keep, cuts), _reply(llm, cfg, keep)  # the reply is never cut
        decision = _decision(_reply(llm, cfg, False))
        ids, ok = tools_of[str(ev.get("event_id"))]
        if prompt is None or reply is None:
            stats[_no_row_reason(llm, prompt)] += 1
        else:
            recovered = ok is True and failed is not None and failed[0] != decision
            h = llm.get("toolset_hash")
            recorded = offered.get(h) if isinstance(h, str) else None
            # a text-only agent saw no tool list: its row must not show one (nor name a source)
            b.tools = recorded or (schemas if h or reply.get("tool_calls") or used_tools(prompt) else None)
            labels = {**_row_labels(ev), "recovery": recovered or None, "failed_attempts": attempts,
                      "failed_event_ids": list(failed_ids) or None,
                      "tool_source": "recorded" if recorded else ctx.tool_source if b.tools else None, "tool_ok": ok,
                      "context_messages": len(prompt),
                      "failed_tool_calls": [m["tool_call_id"] for m in prompt if m.get("tool_call_id") in bad] or None}
            # a row with an output cut counts (views.rows_trimmed); none is added while none is cut, so
            # exports with no output over the budget keep their report, and bundle id, as before
            if cuts.row_cut:
                stats["tool_output_max_chars"] += 1
            b.emit([b.render(m) for m in prompt], b.render(reply), [str(ev["event_id"]), *ids], labels,
                   b.render(failed[1]) if recovered and failed is not None else None)
        if ok is False and reply is not None:
            failed, attempts = (decision, reply), attempts + 1
            failed_ids += [str(ev["event_id"]), *ids]
    return b.sft, b.rec_sft, b.rec_pairs
