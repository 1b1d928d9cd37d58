"""Offline role metrics as pure functions: one test item in, ``{metric: (num, den)}`` out.

Each metric of a role is ``sum(num) / sum(den)`` over the test items (``den`` = 0 means the
item does not count for that metric); ``tracebridge.eval.stats`` bootstraps them. Model replies
are parsed with ``tracebridge.schema.roles``. Definitions:

planner (item = one planner call):
  ``plan_validity``: the reply parses, has ≥1 step, every step's tool is in the tool mask, and
  the steps are ordered: the tools it shares with the reference plan appear in the reference's
  order. ``replan_rate`` (offline proxy; the closed loop measures the real one): the plan is
  invalid or leaves out a tool the reference plan uses, so executing it would need a replan.
worker (item = one assistant turn, prompted with the turns before it):
  ``tool_call_validity``: of the predicted tool calls (unparseable replies count as invalid
  calls), the share naming a tool offered in ``tools`` with arguments valid against its JSON
  schema. ``action_match``: the reply does what the reference does (same tool, or both answer
  in text). ``arg_grounding``: of the predicted calls' scalar argument values, the share found
  verbatim, as a whole token, in the prompt's non-assistant turns (user, tool results).
  ``error_recurrence``: of the items whose prompt shows a failed call (an earlier call with a
  failed result, or a ``Prior failure:`` line with its arguments: one without, a failure carried over
  from an earlier step, cannot be seen repeated and counts no item), the share whose prediction repeats
  one (same tool and arguments). A result failed when its content says so or the row's
  ``labels.failed_tool_calls`` names its call (conversation rows: ``failed_tool_calls``).
verifier (item = one verdict; expected = the ex-post ``labels.expected_verdict``, else the
reference verdict): ``accuracy``; ``stop_precision`` (of predicted ``end``, expected ``end``);
``stop_recall`` (of expected ``end``, predicted ``end``); ``false_stop_rate`` (of expected
not-``end``, predicted ``end``); ``unnecessary_replan_rate`` (of expected not-``replan``,
predicted ``replan``). A reply with no verdict counts as wrong.
preference (item = one pair): ``pref_accuracy``: the policy gives the chosen reply the higher
log-probability (reference-free, comparable across variants); ``reward_margin``: DPO's implicit
reward margin β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))] against the starting
(SFT) model, only for models trained with DPO.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Collection
from typing import Any

from tracebridge.schema import roles

NumDen = tuple[float, float]


def _tool_mask(user_text: str, labels: dict[str, Any]) -> list[str]:
    if isinstance(labels.get("tool_mask"), list):
        return [str(t) for t in labels["tool_mask"]]
    m = re.search(r"^Available tools: (.*)$", user_text, re.MULTILINE)
    return [] if m is None or m.group(1) == "none" else [t.strip() for t in m.group(1).split(",") if t.strip()]


def _ordered(pred_tools: list[str], ref_tools: list[str]) -> bool:
    common = [t for t in pred_tools if t in ref_tools]
    ref_order = [t for t in ref_tools if t in common]
    # compare first occurrences, so repeated tools do not break the order check
    return list(dict.fromkeys(common)) == list(dict.fromkeys(ref_order))


def planner_item(reply: str, reference: str, user_text: str, labels: dict[str, Any] | None = None) -> dict[str, NumDen]:
    """Metrics of one planner reply against the reference plan."""
    labels = labels or {}
    mask = _tool_mask(user_text, labels)
    try:
        ref_tools = [s.tool for s in roles.parse_planner_reply(reference).plan if s.tool]
    except roles.ParseError:
        ref_tools = []
    try:
        plan = roles.parse_planner_reply(reply).plan
    except roles.ParseError:
        plan = None
    tools = [s.tool for s in plan if s.tool] if plan else []
    valid = bool(plan) and all(t in mask for t in tools) and _ordered(tools, ref_tools)
    covers = set(ref_tools) <= set(tools)
    return {"plan_validity": (float(valid), 1.0), "replan_rate": (float(not (valid and covers)), 1.0)}


def _type_ok(value: Any, spec: dict[str, Any]) -> bool:
    t = spec.get("type")
    types = t if isinstance(t, list) else [t] if t else []
    checks = {"string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool), "object": lambda v: isinstance(v, dict),
              "array": lambda v: isinstance(v, list), "null": lambda v: v is None}
    if types and not any(checks.get(x, lambda v: True)(value) for x in types):
        return False
    return "enum" not in spec or value in spec["enum"]


def args_valid(args: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """Arguments against a tool's JSON-schema ``parameters`` (required, types, enums, extras)."""
    if not schema:
        return True
    props = schema.get("properties") or {}
    if any(k not in args for k in schema.get("required") or []):
        return False
    if schema.get("additionalProperties") is False and any(k not in props for k in args):
        return False
    return all(_type_ok(v, props[k]) for k, v in args.items() if k in props)


def tool_schemas(tools: Any) -> dict[str, dict[str, Any] | None]:
    """``{name: parameters schema}`` from a ``tools`` list (OpenAI function format or plain)."""
    if isinstance(tools, str):
        tools = json.loads(tools)
    out = {}
    for t in tools or []:
        f = t.get("function", t) if isinstance(t, dict) else {}
        if f.get("name"):
            out[f["name"]] = f.get("parameters")
    return out


def _scalars(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def grounded(value: str, context: str) -> bool:
    """``value`` occurs in ``context`` as a whole token (``a`` is not grounded by ``read``)."""
    return bool(value) and re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", context) is not None


def _call(tc: dict[str, Any]) -> roles.WorkerReply:
    """A recorded tool call as a reply. Arguments that are no JSON object (a model's broken JSON, which
    the export keeps as written, or a JSON list) are kept whole under ``_raw``: the call still counts
    by its tool, and a failed one can still be recognised when repeated word for word."""
    f = tc.get("function", tc)
    args = f.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else None  # "" = no arguments (some providers send it)
        except json.JSONDecodeError:
            pass
    return roles.WorkerReply(tool=f.get("name"), args=args if isinstance(args, dict) else
                             {} if args is None else {"_raw": args})


def message_call(msg: dict[str, Any]) -> roles.WorkerReply:
    """The worker reply an assistant message carries (first tool call, else its text)."""
    calls = msg.get("tool_calls") or []
    if calls:
        return _call(calls[0])
    return roles.WorkerReply(answer=str(msg.get("content") or ""))


def _tool_failed(content: Any) -> bool:
    try:
        obj = json.loads(content) if isinstance(content, str) else content
    except json.JSONDecodeError:
        return str(content).lower().startswith("error")
    return isinstance(obj, dict) and (obj.get("ok") is False or bool(obj.get("error")))


def _prior_failures(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if line.startswith("Prior failure: "):
            try:
                obj = json.loads(line[len("Prior failure: "):])
            except json.JSONDecodeError:
                continue
            # a failure carried over from an earlier step without its arguments (the simulator's) can never
            # be seen repeated: counted, it would only add items that score "no repeat"
            if isinstance(obj, dict) and obj.get("tool") and isinstance(obj.get("args"), dict):
                out.append((str(obj["tool"]), json.dumps(obj["args"], sort_keys=True)))
    return out


def failed_tool_calls(rows: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """``{run_id: tool_call_ids}`` of the failed tool results the rows hold (``meta.labels.failed_tool_calls``,
    written by ``views_conversation`` and ``views_llm``: a list of strings, or in bundles exported before
    labels.py typed it, the same list as a JSON string), for ``failed_calls``. By run: call ids are
    unique in a run, not across runs."""
    out: dict[str, set[str]] = {}
    for r in rows:
        meta = r.get("meta") or {}
        ids = (meta.get("labels") or {}).get("failed_tool_calls")
        if isinstance(ids, str):
            ids = json.loads(ids)
        if ids:
            out.setdefault(str(meta.get("run_id")), set()).update(str(x) for x in ids)
    return {k: frozenset(v) for k, v in out.items()}


def failed_calls(prompt: list[dict[str, Any]], failed_ids: Collection[str] = ()) -> list[tuple[str, str]]:
    """``(tool, canonical args)`` of every failed call the prompt shows: earlier assistant calls
    whose tool result failed, and ``Prior failure: {...}`` lines of the user turn (roles.py).

    A tool result failed when its content says so (JSON ``ok: false`` or ``error``, text starting
    with "error") or its ``tool_call_id`` is in ``failed_ids`` (the trace's own flag, for results
    whose text does not say it, such as "Command exited with code 1": ``failed_tool_calls``)."""
    out = [f for m in prompt if m.get("role") == "user" for f in _prior_failures(str(m.get("content") or ""))]
    for i, m in enumerate(prompt[:-1]):
        if m.get("role") != "assistant" or not m.get("tool_calls"):
            continue
        if prompt[i + 1].get("role") == "tool" and _tool_failed(prompt[i + 1].get("content")):
            c = message_call(m)
            out.append((c.tool or "", json.dumps(c.args, sort_keys=True)))
        if failed_ids:
            calls = {tc.get("id"): tc for tc in m["tool_calls"]}
            for t in itertools.takewhile(lambda x: x.get("role") == "tool", prompt[i + 1:]):
                if t.get("tool_call_id") in failed_ids and t.get("tool_call_id") in calls:
                    c = _call(calls[t["tool_call_id"]])
                    out.append((c.tool or "", json.dumps(c.args, sort_keys=True)))
    return out


def worker_item(reply: str, reference: dict[str, Any], prompt: list[dict[str, Any]], tools: Any,
                failed_ids: Collection[str] = ()) -> dict[str, NumDen]:
    """Metrics of one worker reply (text) against the reference assistant message; ``failed_ids``:
    the tool_call_ids of the prompt's failed tool results (``failed_calls``)."""
    schemas = tool_schemas(tools)
    ref = message_call(reference)
    try:
        pred: roles.WorkerReply | None = roles.parse_worker_reply(reply)
    except roles.ParseError:
        pred = None
    out: dict[str, NumDen] = {}
    is_call = pred is None or pred.is_tool_call
    valid = pred is not None and pred.tool in schemas and args_valid(pred.args, schemas.get(pred.tool))
    out["tool_call_validity"] = (float(valid), 1.0) if is_call else (0.0, 0.0)
    match = pred is not None and ((ref.is_tool_call and pred.tool == ref.tool) or
                                  (not ref.is_tool_call and not pred.is_tool_call))
    out["action_match"] = (float(match), 1.0)
    context = "\n".join(str(m.get("content") or "") for m in prompt if m.get("role") != "assistant")
    values = _scalars(pred.args) if pred is not None and pred.is_tool_call else []
    out["arg_grounding"] = (float(sum(grounded(v, context) for v in values)), float(len(values)))
    failed = failed_calls(prompt, failed_ids)
    repeat = pred is not None and pred.is_tool_call and (pred.tool, json.dumps(pred.args, sort_keys=True)) in failed
    out["error_recurrence"] = (float(repeat), 1.0) if failed else (0.0, 0.0)
    return out


def expected_verdict(reference: str, labels: dict[str, Any] | None) -> str:
    """The ex-post verdict: ``labels.expected_verdict`` when recorded, else the reference's."""
    exp = (labels or {}).get("expected_verdict")
    if exp in roles.VERDICTS:
        return str(exp)
    return roles.parse_verifier_reply(reference).verdict


def verifier_item(predicted: str | None, expected: str) -> dict[str, NumDen]:
    """Metrics of one predicted verdict (None = unparseable) against the expected one."""
    p_end, e_end = predicted == "end", expected == "end"
    return {
        "accuracy": (float(predicted == expected), 1.0),
        "stop_precision": (float(e_end), 1.0) if p_end else (0.0, 0.0),
        "stop_recall": (float(p_end), 1.0) if e_end else (0.0, 0.0),
        "false_stop_rate": (float(p_end), 1.0) if not e_end else (0.0, 0.0),
        "unnecessary_replan_rate": (float(predicted == "replan"), 1.0) if expected != "replan" else (0.0, 0.0),
    }


def preference_item(logp_chosen: float, logp_rejected: float, ref_chosen: float | None = None,
                    ref_rejected: float | None = None, beta: float = 0.1) -> dict[str, NumDen]:
    """Preference metrics of one pair from summed log-probabilities (reference optional)."""
    out = {"pref_accuracy": (float(logp_chosen > logp_rejected), 1.0)}
    if ref_chosen is not None and ref_rejected is not None:
        out["reward_margin"] = (beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)), 1.0)
    return out


# metric directions, for winners and guards
HIGHER_IS_BETTER: dict[str, bool] = {
    "plan_validity": True, "replan_rate": False, "tool_call_validity": True, "action_match": True,
    "arg_grounding": True, "error_recurrence": False, "accuracy": True, "stop_precision": True,
    "stop_recall": True, "false_stop_rate": False, "unnecessary_replan_rate": False, "pref_accuracy": True,
    "reward_margin": True, "success": True, "tool_success": True, "action_efficiency": True,
    "verdict_accuracy": True, "invalid_outputs_per_episode": False,
}


def metric_direction(metric: str) -> bool | None:
    """Whether the metric ``role/name`` is better higher (a closed-loop ``cl_`` name as its offline one);
    None when it names no role or a metric of unknown direction."""
    role, sep, name = metric.partition("/")
    return HIGHER_IS_BETTER.get(name.removeprefix("cl_")) if role and sep and name else None
