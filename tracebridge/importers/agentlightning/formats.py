"""Our views → Agent Lightning's formats, through Agent Lightning's own adapters.

Each view row becomes the spans an instrumented agent would have produced (pure, no import of
``agentlightning``): one ``openai.chat.completion`` span whose ``gen_ai.prompt.*`` attributes
are the row's messages before the final assistant turn and whose ``gen_ai.completion.0`` is that
turn, the turn's tool calls as child ``tool.*`` spans, the row's tools as
``gen_ai.request.functions.*``, and a reward annotation when the row has a reward (preference
pairs: chosen 1.0, rejected 0.0; SFT rows: ``meta.labels.reward`` or the feedback score). Agent
Lightning's ``TraceToMessages`` and ``TracerTraceToTriplet`` then turn those spans into its
message and triplet formats, so what we export is exactly what its adapters produce; each output
row also carries our ``meta`` (top level and ``metadata.tracebridge``) to lead back to the run.

Files (``export_agentlightning``): ``agentlightning/spans.jsonl`` (Span dicts, one trace per row
and rollout), ``agentlightning/al_messages.jsonl`` and ``agentlightning/triplets.jsonl``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import iter_lines

LLM_SPAN = "openai.chat.completion"


@dataclass
class Trace:
    """The spans of one exported row (one rollout), with the row's meta and reward."""

    spans: list[dict[str, Any]]
    meta: dict[str, Any]
    reward: float | None
    variant: str = "sft"


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _text(content: Any) -> str:
    if content is None:
        return ""
    return content if isinstance(content, str) else orjson.dumps(content).decode()


def _args(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value if value is not None else {}).decode()


def _span(seed: str, k: int, name: str, attrs: dict[str, Any], parent: str | None, t: float,
          rollout: str) -> dict[str, Any]:
    trace_id, span_id = _hex(seed, 32), _hex(f"{seed}|{k}", 16)
    ctx = {"trace_id": trace_id, "span_id": span_id, "is_remote": False, "trace_state": {}}
    return {"rollout_id": rollout, "attempt_id": "tracebridge-export", "sequence_id": k, "trace_id": trace_id,
            "span_id": span_id, "parent_id": parent, "name": name, "status": {"status_code": "OK", "description": None},
            "attributes": attrs, "events": [], "links": [], "start_time": t, "end_time": t + 0.5, "context": ctx,
            "parent": ({**ctx, "span_id": parent} if parent else None),
            "resource": {"attributes": {}, "schema_url": ""}}


def _prompt_attrs(messages: list[dict[str, Any]]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, m in enumerate(messages):
        p = f"gen_ai.prompt.{i}"
        attrs[f"{p}.role"] = str(m.get("role", "user"))
        calls = m.get("tool_calls") or []
        if calls:
            for j, c in enumerate(calls):
                fn = c.get("function") or c
                attrs[f"{p}.tool_calls.{j}.id"] = str(c.get("id") or f"call_{i}_{j}")
                attrs[f"{p}.tool_calls.{j}.name"] = str(fn.get("name"))
                attrs[f"{p}.tool_calls.{j}.arguments"] = _args(fn.get("arguments"))
        else:
            attrs[f"{p}.content"] = _text(m.get("content"))
        if m.get("tool_call_id"):
            attrs[f"{p}.tool_call_id"] = str(m["tool_call_id"])
    return attrs


def _one_trace(seed: str, prompt: list[dict[str, Any]], answer: dict[str, Any], tools: Any, meta: dict[str, Any],
               reward: float | None, t0: float, variant: str) -> Trace:
    rollout = f"{meta.get('run_id') or 'row'}#{seed[-12:]}"
    attrs = _prompt_attrs(prompt)
    attrs.update({"gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": _text(answer.get("content")),
                  "gen_ai.request.model": str(meta.get("model") or "tracebridge-view"),
                  "gen_ai.response.id": _hex(seed + "|resp", 24), "tracebridge.meta": orjson.dumps(meta).decode()})
    if isinstance(tools, str):  # rows written with views.json_strings hold the schemas as a JSON string
        tools = orjson.loads(tools)
    for k, fn in enumerate((t.get("function") or t) for t in tools or [] if isinstance(t, dict)):
        attrs[f"gen_ai.request.functions.{k}.name"] = str(fn.get("name"))
        attrs[f"gen_ai.request.functions.{k}.description"] = str(fn.get("description") or "")
        attrs[f"gen_ai.request.functions.{k}.parameters"] = _args(fn.get("parameters"))
    for j, c in enumerate(answer.get("tool_calls") or []):  # also on the completion, for triplets
        fn = c.get("function") or c
        attrs[f"gen_ai.completion.0.tool_calls.{j}.id"] = str(c.get("id") or f"call_{j}")
        attrs[f"gen_ai.completion.0.tool_calls.{j}.name"] = str(fn.get("name"))
        attrs[f"gen_ai.completion.0.tool_calls.{j}.arguments"] = _args(fn.get("arguments"))
    llm = _span(seed, 0, LLM_SPAN, attrs, None, t0, rollout)
    spans = [llm]
    for j, c in enumerate(answer.get("tool_calls") or []):
        fn = c.get("function") or c
        spans.append(_span(seed, j + 1, "tool.call", {"tool.name": str(fn.get("name")),
                                                      "tool.parameters": _args(fn.get("arguments")),
                                                      "tool.call.id": str(c.get("id") or f"call_{j}"),
                                                      "tool.call.type": "function"},
                           llm["span_id"], t0 + 0.1, rollout))
    if reward is not None:
        spans.append(_span(seed, len(spans), "agentlightning.annotation",
                           {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": float(reward)},
                           None, t0 + 1.0, rollout))
    return Trace(spans, meta, reward, variant)


def _sft_reward(meta: dict[str, Any]) -> float | None:
    labels = meta.get("labels") or {}
    for v in (labels.get("reward"), labels.get("feedback_score"), (labels.get("feedback") or {}).get("score")):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _as_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    return [m for m in value or [] if isinstance(m, dict)]


def row_to_traces(row: dict[str, Any], index: int) -> list[Trace]:
    """The traces of one view row (SFT: one; preference pair: chosen and rejected).

    Raises:
        ValueError: the row has neither ``messages`` ending in an assistant turn nor
            ``prompt``/``chosen``/``rejected``.
    """
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    seed = f"{meta.get('run_id')}|{','.join(map(str, meta.get('event_ids') or []))}|{index}"
    t0 = 1_000_000.0 + index * 10.0
    if "messages" in row:
        msgs = _as_messages(row["messages"])
        if not msgs or msgs[-1].get("role") != "assistant":
            raise ValueError("messages: the last message must be the assistant turn")
        return [_one_trace(seed, msgs[:-1], msgs[-1], row.get("tools"), meta, _sft_reward(meta), t0, "sft")]
    if all(k in row for k in ("prompt", "chosen", "rejected")):
        prompt = _as_messages(row["prompt"]) if not isinstance(row["prompt"], str) else [
            {"role": "user", "content": row["prompt"]}]
        out = []
        for variant, reward, k in (("chosen", 1.0, 0), ("rejected", 0.0, 1)):
            answer = _as_messages(row[variant])
            if not answer:
                raise ValueError(f"{variant}: empty")
            prior, last = prompt + answer[:-1], answer[-1]
            out.append(_one_trace(f"{seed}|{variant}", prior, last, row.get("tools"), meta, reward, t0 + 5 * k, variant))
        return out
    raise ValueError("row has neither 'messages' nor 'prompt'/'chosen'/'rejected'")


def adapt(trace: Trace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Agent Lightning's adapters on one trace → (message rows, triplet rows), each with our meta."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import agentlightning as agl

    spans = [agl.Span.model_validate(s) for s in trace.spans]
    messages = [{"messages": m["messages"], "tools": m.get("tools"), "meta": trace.meta, "variant": trace.variant}
                for m in agl.TraceToMessages().adapt(spans)]
    triplets = []
    for t in agl.TracerTraceToTriplet().adapt(spans):
        d = t.model_dump(mode="json")
        d["metadata"] = {**(d.get("metadata") or {}), "tracebridge": trace.meta, "variant": trace.variant}
        d["meta"] = trace.meta
        triplets.append(d)
    return messages, triplets


@dataclass
class ExportSummary:
    rows_read: int = 0
    rows_exported: int = 0
    rows_quarantined: int = 0
    traces: int = 0
    messages: int = 0
    triplets: int = 0
    quarantined: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def export_agentlightning(view_files: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> ExportSummary:
    """Write ``spans.jsonl``, ``al_messages.jsonl`` and ``triplets.jsonl`` for the rows of ``view_files``.

    Rows that cannot be exported are counted with ``file:line: reason`` (read = exported + quarantined).
    """
    out = Path(out_dir) / "agentlightning"
    out.mkdir(parents=True, exist_ok=True)
    s = ExportSummary()
    names = {"spans": out / "spans.jsonl", "messages": out / "al_messages.jsonl", "triplets": out / "triplets.jsonl"}
    with open(names["spans"], "wb") as fs, open(names["messages"], "wb") as fm, open(names["triplets"], "wb") as ft:
        for path in view_files:
            for line in iter_lines(path):
                s.rows_read += 1
                try:
                    if line.error or not isinstance(line.obj, dict):
                        raise ValueError(line.error or "not a JSON object")
                    traces = row_to_traces(line.obj, s.rows_read)
                    adapted = [adapt(t) for t in traces]
                except Exception as exc:  # noqa: BLE001 - any row the adapters reject is quarantined
                    s.rows_quarantined += 1
                    s.quarantined.append(f"{path}:{line.lineno}: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                s.rows_exported += 1
                for t, (msgs, trips) in zip(traces, adapted):
                    s.traces += 1
                    fs.writelines(orjson.dumps(sp) + b"\n" for sp in t.spans)
                    fm.writelines(orjson.dumps(m) + b"\n" for m in msgs)
                    ft.writelines(orjson.dumps(tr) + b"\n" for tr in trips)
                    s.messages += len(msgs)
                    s.triplets += len(trips)
    s.files = {k: str(v) for k, v in names.items()}
    return s
