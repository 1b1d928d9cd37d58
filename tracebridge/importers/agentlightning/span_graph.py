"""A rollout's spans as a graph the mapping can walk: in recorded order, each span id once (an exact
copy dropped, differing records resolved by ``sequence_id``), children by parent with cycles cut, and
whether two model-call spans are one call recorded twice (client and proxy)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from tracebridge.importers.agentlightning.llm_calls import reply_of, weave_llm_attrs

if TYPE_CHECKING:
    from tracebridge.importers.agentlightning.spans import _Builder

OPERATION = "agentlightning.operation"
_WEAVE_CHOICES = "agentlightning.operation.output.choices."  # the weave tracer's record of a client's reply

def _starts(spans: list[dict[str, Any]]) -> dict[int, float]:
    """Each span's start for the order (by ``id()``): its own, or its parent's when that is later. Spans
    recorded on hosts whose clocks differ (an agent's tool and the LLM proxy's call inside it) would
    otherwise put a child before its parent, which it then could not attach to."""
    by_id = {s.get("span_id"): s for s in spans}
    out: dict[int, float] = {}
    for s in spans:
        chain, seen = [], set()
        while s is not None and id(s) not in out and id(s) not in seen:  # up to a span already done (or a loop)
            seen.add(id(s))
            chain.append(s)
            s = by_id.get(s.get("parent_id"))
        above = out.get(id(s), 0.0) if s is not None else 0.0
        for c in reversed(chain):
            t = c.get("start_time")
            above = out[id(c)] = max(t if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0, above)
    return out


def ordered_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans in start order (then ``sequence_id``), never a child before its parent (``_starts``), a
    model call the weave tracer recorded (a span named for the client's function whose output has
    ``choices``) with its ``gen_ai.*`` records added."""
    out, start = [], _starts(spans)
    for s in sorted(spans, key=lambda s: (start[id(s)], s.get("sequence_id") or 0)):
        attrs = s.get("attributes") or {}
        if s.get("name") != OPERATION and any(k.startswith(_WEAVE_CHOICES) for k in attrs):
            s = {**s, "attributes": weave_llm_attrs(attrs)}
        out.append(s)
    return out


def _distinct(spans: list[dict[str, Any]], b: _Builder) -> list[dict[str, Any]]:
    """The spans with one record per span id: a copy of a record (a store dumped into two files) is
    dropped; of records that differ, the one written last (highest ``sequence_id``, then the greatest
    bytes: the same whatever the order of records) is kept and the others are problems, so no span is
    mapped twice and every child finds one parent."""
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for s in spans:
        by_id.setdefault(s.get("span_id"), []).append(s)
    out = []
    for same in by_id.values():
        if len(same) == 1:
            out.append(same[0])
            continue
        keep = max(same, key=lambda s: (s.get("sequence_id") or 0, orjson.dumps(s, option=orjson.OPT_SORT_KEYS)))
        out.append(keep)
        for s in same:
            if s is keep:
                continue
            if s == keep:
                b.out.kinds["copy"] += 1
            else:
                b.note(s, [("span_id", (f"recorded again with other content (sequence_id {s.get('sequence_id')}): "
                                       f"the record with sequence_id {keep.get('sequence_id')} is mapped"))])
    return out


def close_tools(b: _Builder, parents: dict[Any, Any], span_id: Any = None) -> None:
    """Write the results of the open tool spans that are not above ``span_id`` (the span mapped next; None:
    all), innermost first: a tool's result follows the spans that ran inside it (a nested tool, a model
    call, a message), as its end follows theirs, instead of coming before them with their times pushed
    past it."""
    above: set[Any] = set()
    anc = parents.get(span_id)
    while anc is not None and anc not in above:  # a loop of parent pointers ends the walk
        above.add(anc)
        anc = parents.get(anc)
    while b.open_tools and b.open_tools[-1][0] not in above:
        _, result, call, end = b.open_tools.pop()
        b.emit("worker_tool_result", "worker", result, call, end)


def unsound_parents(ordered: list[dict[str, Any]]) -> dict[Any, str]:
    """Per span whose ``parent_id`` cannot be followed, why: it names no span of the rollout, or the span is
    on a loop of parent pointers (each span of the loop is listed; a span that only leads into one is not).
    One pass over each chain, so a long chain or a loop costs its length once."""
    parents = {s.get("span_id"): s.get("parent_id") for s in ordered}
    out = {sid: f"{pid!r} names no span of this rollout: attached to the event before it"
           for sid, pid in parents.items()
           if pid is not None and pid not in parents}
    done: set[Any] = set()
    for start in parents:
        path: dict[Any, None] = {}  # the chain walked from ``start``, in order
        node = start
        while node in parents and node not in done and node not in path:
            path[node] = None
            node = parents[node]
        done.update(path)
        if node in path:  # the walk came back to a span of its own chain: a loop
            loop = list(path)[list(path).index(node):]
            names = " -> ".join(map(str, [*loop[:8], *(["..."] if len(loop) > 8 else []), loop[0]]))
            for sid in loop:
                out[sid] = (f"parent pointers form a loop ({names}): cut at its span mapped first, "
                            "which is attached to the event before it")
    return out


def _same_call(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two spans with one response id record one call: times overlap, replies agree."""
    times = [a.get("start_time"), a.get("end_time"), b.get("start_time"), b.get("end_time")]
    if not all(isinstance(t, (int, float)) and math.isfinite(t) for t in times):
        return False
    if times[0] > times[3] or times[2] > times[1]:
        return False
    (text_a, calls_a), (text_b, calls_b) = reply_of(a.get("attributes") or {}), reply_of(b.get("attributes") or {})
    return (not text_a or not text_b or text_a == text_b) and (not calls_a or not calls_b or calls_a == calls_b)


def _children(ordered: list[dict[str, Any]], kinds: list[str], same_call: dict[Any, Any]
              ) -> tuple[dict[Any, dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """Per LLM span: its first tool span child (tools it ran inside the call), and the spans that are part
    of it: the agentops ``tool_call.*`` spans of its reply (children; one with another parent goes to the
    LLM span that started last before it), LiteLLM's ``raw_gen_ai_request`` (a child) and the other
    spans of the same call (``llm_duplicate``, with their own ``raw_gen_ai_request``)."""
    kind_of = {s.get("span_id"): k for s, k in zip(ordered, kinds)}
    first_tool: dict[Any, dict[str, Any]] = {}
    parts: dict[Any, list[dict[str, Any]]] = {}
    last_llm = None
    for s, kind in zip(ordered, kinds):
        sid = s.get("span_id")
        if kind == "llm":
            last_llm = sid
        elif kind == "llm_duplicate":
            parts.setdefault(same_call[sid], []).append(s)
        elif kind == "tool" and s.get("parent_id") is not None:
            first_tool.setdefault(s["parent_id"], s)
        elif kind == "llm_tool_call":
            owner = s.get("parent_id") if kind_of.get(s.get("parent_id")) == "llm" else last_llm
            parts.setdefault(owner, []).append(s)
        elif kind == "llm_raw":
            parts.setdefault(same_call.get(s.get("parent_id"), s.get("parent_id")), []).append(s)
    return first_tool, parts
