"""A rollout's spans as a graph the mapping can walk: parents first, in the store's order, each span id
once (an exact copy dropped, differing records resolved by ``sequence_id``), children by parent with cycles
cut, and whether two model-call spans are one call recorded twice (client and proxy)."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import orjson

from tracebridge.importers.agentlightning.llm_calls import reply_of, weave_llm_attrs

if TYPE_CHECKING:
    from tracebridge.importers.agentlightning.spans import _Builder

OPERATION = "agentlightning.operation"
_WEAVE_CHOICES = "agentlightning.operation.output.choices."  # the weave tracer's record of a client's reply
_SIBLING_SLACK_S = 0.1  # how far a sibling's times may disagree with the store's order before it is called skew


def _num(t: Any) -> float:
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) else 0.0


def _seq(s: dict[str, Any]) -> int:
    q = s.get("sequence_id")
    return q if isinstance(q, int) and not isinstance(q, bool) else 0


def ordered_spans(spans: list[dict[str, Any]], skewed: dict[Any, str] | None = None) -> list[dict[str, Any]]:
    """The spans parents first (each span right before the spans under it), siblings and top-level spans in
    ``sequence_id`` order, the start time only breaking a tie; a model call the weave tracer recorded (a span
    named for the client's function whose output has ``choices``) with its ``gen_ai.*`` records added.

    The store numbers a rollout's spans as they reach it, one counter whatever host recorded them, while the
    hosts' clocks may differ (an agent's tool and the LLM proxy's call inside it): ordered by start time, a
    child came before its parent and a sibling recorded on a host whose clock is behind before the one the
    store got first. A loop of parent pointers is cut at its span that comes first. ``skewed``, when given,
    receives span id → why, for each span whose clock disagrees with that order (``_skew``)."""
    by_id: dict[Any, dict[str, Any]] = {}
    for s in spans:
        by_id.setdefault(s.get("span_id"), s)
    rank = {id(s): (_seq(s), _num(s.get("start_time")), i) for i, s in enumerate(spans)}
    kids: dict[int, list[dict[str, Any]]] = {}
    tops: list[dict[str, Any]] = []
    for s in spans:
        p = by_id.get(s.get("parent_id")) if s.get("parent_id") is not None else None
        if p is None or p is s:
            tops.append(s)
        else:
            kids.setdefault(id(p), []).append(s)
    for group in [tops, *kids.values()]:
        group.sort(key=lambda s: rank[id(s)])
    out: list[dict[str, Any]] = []
    done: set[int] = set()

    def walk(top: dict[str, Any], into: list[dict[str, Any]]) -> None:
        stack = [top]
        while stack:
            s = stack.pop()
            if id(s) in done:  # reached again round a loop of parent pointers
                continue
            done.add(id(s))
            into.append(s)
            stack.extend(reversed(kids.get(id(s), ())))

    for top in tops:
        walk(top, [])
    while len(done) < len(spans):  # a loop of parent pointers below no top-level span: cut at its first span
        tops.append(min((s for s in spans if id(s) not in done), key=lambda s: rank[id(s)]))
        walk(tops[-1], [])
    tops.sort(key=lambda s: rank[id(s)])
    done.clear()
    for top in tops:
        walk(top, out)
    if skewed is not None:
        _skew(out, by_id, [tops, *kids.values()], skewed)
    for i, s in enumerate(out):
        attrs = s.get("attributes") or {}
        if s.get("name") != OPERATION and any(k.startswith(_WEAVE_CHOICES) for k in attrs):
            out[i] = {**s, "attributes": weave_llm_attrs(attrs)}
    return out


def _skew(ordered: list[dict[str, Any]], by_id: dict[Any, dict[str, Any]], groups: list[list[dict[str, Any]]],
          skewed: dict[Any, str]) -> None:
    """Spans whose times no one clock could have given: a child that starts before its parent, or a span that
    starts more than ``_SIBLING_SLACK_S`` after a sibling the store numbered later had ended (the store got its
    record first, so it ended first; the slack: a record's trip to the store, which can let a short span that
    ended later overtake it)."""
    pos = {id(s): i for i, s in enumerate(ordered)}
    for s in ordered:
        p = by_id.get(s.get("parent_id")) if s.get("parent_id") is not None else None
        t, pt = s.get("start_time"), (p or {}).get("start_time")
        if p is not None and pos[id(p)] < pos[id(s)] and _num(t) and _num(pt) and _num(t) < _num(pt):  # not cut
            skewed.setdefault(s.get("span_id"), f"starts {_num(pt) - _num(t):.3f} s before its parent "
                                                f"{p.get('span_id')}")
    for group in groups:  # siblings (and the top-level spans) in order
        for a, b in itertools.pairwise(group):
            if _seq(a) < _seq(b) and _num(b.get("end_time")) \
                    and _num(a.get("start_time")) > _num(b.get("end_time")) + _SIBLING_SLACK_S:
                skewed.setdefault(a.get("span_id"), (
                    f"starts {_num(a.get('start_time')) - _num(b.get('end_time')):.3f} s after its sibling "
                    f"{b.get('span_id')} ended, which the store numbered later (sequence_id {_seq(a)} < {_seq(b)})"))


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
