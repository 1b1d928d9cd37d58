"""Role I/O contract: how each role's input payload becomes chat messages, how its output
payload becomes the assistant text, and how a model's reply is parsed back.

One module, used by three consumers that must agree: the export views (training targets),
the simulator's model-backed roles (prompts sent, replies parsed) and evaluation (parsing what
a trained model generates). Pure functions, no I/O.

Formats (kept short so tiny CPU models can learn them):

* planner reply: a JSON object ``{"plan": [{"description", "tool", "args"}], "rationale",
  "confidence"}``;
* worker reply: one tool call ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  (Hermes/Qwen style; the conversational view carries it as ``tool_calls``) or a final answer
  as plain text;
* verifier reply: ``verdict: <continue|replan|end>`` on the first line, then
  ``feedback: ...`` and optionally ``risks: a, b``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tracebridge.schema.events import PlannerOutput, VerifierOutput

DEFAULT_SYSTEM_PROMPTS: dict[str, str] = {
    "planner": "You are the planner. Break the goal into ordered steps that use only the available "
               "tools. Reply with a JSON object: {\"plan\": [{\"description\", \"tool\", \"args\"}], "
               "\"rationale\", \"confidence\"}.",
    "worker": "You are the worker. Carry out the current plan step by calling one of the allowed tools "
              "with grounded arguments, or answer in plain text when the step is done.",
    "verifier": "You are the verifier. Judge the progress from the evidence. Reply 'verdict: continue', "
                "'verdict: replan' or 'verdict: end' on the first line, then 'feedback: ...'.",
}
VERDICTS = ("continue", "replan", "end")


class ParseError(ValueError):
    """A reply that does not follow the role's format (recorded as ``invalid_output``)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- planner


def planner_user_text(payload: dict[str, Any]) -> str:
    """Render a ``planner_input`` payload as the user turn."""
    lines = [f"Goal: {payload.get('goal', '')}"]
    if payload.get("observation") not in (None, ""):
        lines.append(f"Observation: {_text(payload['observation'])}")
    lines.append(f"Available tools: {', '.join(payload.get('tool_mask') or []) or 'none'}")
    for h in payload.get("history") or []:
        lines.append(f"History: {_text(h)}")
    return "\n".join(lines)


def planner_reply_text(payload: dict[str, Any]) -> str:
    """Render a ``planner_output`` payload as the assistant reply."""
    plan = [{"description": s.get("description", ""), "tool": s.get("tool"), "args": s.get("args")}
            for s in payload.get("plan") or []]
    obj = {"plan": plan, "rationale": payload.get("rationale", "")}
    if payload.get("confidence") is not None:
        obj["confidence"] = payload["confidence"]
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


def _first_json_object(text: str) -> Any:
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
            return obj
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    raise ParseError("no JSON object in reply")


def parse_planner_reply(text: str) -> PlannerOutput:
    """Parse a planner reply into a ``PlannerOutput``. Raises ParseError."""
    obj = _first_json_object(text)
    if not isinstance(obj, dict) or not isinstance(obj.get("plan"), list):
        raise ParseError("reply has no 'plan' list")
    steps = []
    for i, s in enumerate(obj["plan"]):
        if isinstance(s, str):
            s = {"description": s}
        if not isinstance(s, dict):
            raise ParseError(f"plan step {i} is not an object")
        steps.append({"index": i, "description": str(s.get("description", "")), "tool": s.get("tool"),
                      "args": s.get("args") if isinstance(s.get("args"), dict) else None})
    try:
        return PlannerOutput(plan=steps, rationale=str(obj.get("rationale", "")),
                             confidence=obj.get("confidence"))
    except ValidationError as exc:
        raise ParseError(f"invalid plan: {exc.errors()[0]['msg']}") from exc


# --------------------------------------------------------------------------- worker


@dataclass
class WorkerReply:
    """A parsed worker reply: a tool call, or a final answer."""

    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None

    @property
    def is_tool_call(self) -> bool:
        """Whether the reply is a tool call (else a final answer)."""
        return self.tool is not None


def worker_user_text(payload: dict[str, Any]) -> str:
    """Render a ``worker_input`` payload as the user turn. ``prior_results`` (no payload field: the
    export adds the successful calls made earlier in the same step, ``{tool, args, output}``) are
    rendered after the prior failures."""
    step = payload.get("plan_step") or {}
    lines = [f"Step: {step.get('description', '')}"]
    if step.get("tool"):
        lines.append(f"Suggested tool: {step['tool']}")
    if payload.get("state") not in (None, "", {}):
        lines.append(f"State: {_text(payload['state'])}")
    lines.append(f"Allowed tools: {', '.join(payload.get('allowed_tools') or []) or 'none'}")
    for f in payload.get("prior_failures") or []:
        lines.append(f"Prior failure: {_text(f)}")
    for r in payload.get("prior_results") or []:
        lines.append(f"Prior result: {_text(r)}")
    return "\n".join(lines)


def tool_call_text(tool: str, args: dict[str, Any]) -> str:
    """The text form of one tool call, as a worker reply."""
    return "<tool_call>" + json.dumps({"name": tool, "arguments": args}, ensure_ascii=False) + "</tool_call>"


def tool_call_message(call_id: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """An assistant message carrying one tool call, in TRL/transformers conversational format."""
    return {"role": "assistant", "content": "",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": tool, "arguments": args}}]}


_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def parse_worker_reply(text: str) -> WorkerReply:
    """Parse a worker reply. Raises ParseError for a malformed tool call or an empty reply.

    A reply without a ``<tool_call>`` tag that is a JSON object is a tool call only when it has a ``name``
    or ``arguments`` key; any other object (``{"total": 3}``) is the answer, as its text."""
    m = _TOOL_CALL.search(text)
    if m is None:
        if text.strip().startswith("{"):
            body = text.strip()
        elif text.strip():
            return WorkerReply(answer=text.strip())
        else:
            raise ParseError("empty reply")
    else:
        body = m.group(1)
    try:
        obj = _first_json_object(body)
    except ParseError as exc:
        raise ParseError("tool call is not JSON") from exc
    if m is None and isinstance(obj, dict) and not {"name", "arguments"} & obj.keys():
        return WorkerReply(answer=body)
    name = obj.get("name") if isinstance(obj, dict) else None
    args = obj.get("arguments", {}) if isinstance(obj, dict) else None
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            raise ParseError("tool arguments are not JSON") from exc
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        raise ParseError("tool call needs a string 'name' and an object 'arguments'")
    return WorkerReply(tool=name, args=args)


# --------------------------------------------------------------------------- verifier


def verifier_user_text(payload: dict[str, Any]) -> str:
    """Render a ``verifier_input`` payload as the user turn."""
    lines = [f"Plan progress: {_text(payload.get('plan_progress') or {})}"]
    for e in payload.get("evidence") or []:
        lines.append(f"Evidence: {_text(e)}")
    return "\n".join(lines)


def verifier_reply_text(payload: dict[str, Any]) -> str:
    """Render a ``verifier_output`` payload as the assistant reply (verdict first)."""
    lines = [f"verdict: {payload['verdict']}"]
    if payload.get("feedback"):
        lines.append(f"feedback: {payload['feedback']}")
    if payload.get("risk_flags"):
        lines.append(f"risks: {', '.join(payload['risk_flags'])}")
    return "\n".join(lines)


_VERDICT = re.compile(r"verdict\s*[:=]\s*\"?(continue|replan|end)\b", re.IGNORECASE)


def parse_verifier_reply(text: str) -> VerifierOutput:
    """Parse a verifier reply. Raises ParseError when no verdict is found."""
    m = _VERDICT.search(text)
    if m is None:
        raise ParseError("no 'verdict: continue|replan|end' in reply")
    fb = re.search(r"feedback\s*:\s*(.*)", text)
    risks = re.search(r"risks\s*:\s*(.*)", text)
    return VerifierOutput(
        verdict=m.group(1).lower(),  # type: ignore[arg-type]
        feedback=fb.group(1).strip() if fb else "",
        risk_flags=[r.strip() for r in risks.group(1).split(",") if r.strip()] if risks else [],
    )


def messages(role: str, user_text: str, reply: str | None = None,
             system_prompt: str | None = None) -> list[dict[str, Any]]:
    """Build a chat: system (role default unless given), user, and the assistant reply if any."""
    out = [{"role": "system", "content": system_prompt if system_prompt is not None else DEFAULT_SYSTEM_PROMPTS[role]},
           {"role": "user", "content": user_text}]
    if reply is not None:
        out.append({"role": "assistant", "content": reply})
    return out
