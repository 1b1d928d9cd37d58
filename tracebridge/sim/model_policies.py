"""Model-backed role policies: render the role's input payload with the role I/O contract
(``tracebridge.schema.roles``: ``messages``, ``planner_user_text`` ...), send it through a chat
backend and parse the reply with ``roles.parse_*``. A reply that does not parse raises
``InvalidOutput`` with the model call attached, so the orchestrator records the garbage and the
rendered prompt under an ``invalid_output`` error instead of crashing.

The same classes run a trained role model closed-loop in the simulator (evaluation) and
collect traces from a served model (HTTP).
"""

from __future__ import annotations

import random
from typing import Any

from tracebridge.schema import roles
from tracebridge.sim.backends import ChatBackend
from tracebridge.sim.policies import (
    InvalidOutput,
    PlanDecision,
    PlannerView,
    VerdictDecision,
    VerifierView,
    WorkerDecision,
    WorkerView,
)


class _ModelRole:
    role = ""

    def __init__(self, backend: ChatBackend, rng: random.Random | None = None,
                 system_prompt: str | None = None) -> None:
        self.backend = backend
        self.rng = rng or random.Random(0)
        self.system_prompt = system_prompt
        self.name = backend.name
        self.params = dict(backend.params)
        self.prompt_source = system_prompt if system_prompt is not None else roles.DEFAULT_SYSTEM_PROMPTS[self.role]

    def _chat(self, user_text: str, tools: list[dict[str, Any]] | None = None) -> Any:
        msgs = roles.messages(self.role, user_text, system_prompt=self.system_prompt)
        return self.backend.chat(msgs, tools=tools, seed=self.rng.randrange(2**31))


class ModelPlanner(_ModelRole):
    """Planner played by a chat model (reply: a JSON plan)."""

    role = "planner"

    def plan(self, view: PlannerView) -> PlanDecision:
        """The model's plan for the view's payload.

        Raises:
            InvalidOutput: the reply does not parse, or its plan is empty.
            BackendError: the backend produced no reply.
        """
        call = self._chat(roles.planner_user_text(view.payload))
        try:
            out = roles.parse_planner_reply(call.response)
        except roles.ParseError as exc:
            raise InvalidOutput(f"planner reply: {exc}", call) from exc
        if not out.plan:
            raise InvalidOutput("planner reply: empty plan", call)
        return PlanDecision([s.model_dump() for s in out.plan], out.rationale, out.confidence, call=call)


class ModelWorker(_ModelRole):
    """Worker played by a chat model (reply: one ``<tool_call>`` or a final answer)."""

    role = "worker"

    def act(self, view: WorkerView) -> WorkerDecision:
        """The model's next action: a tool call, or a final answer in text.

        The payload's ``prior_failures`` gain this step's earlier attempts, so the model sees them.

        Raises:
            InvalidOutput: the reply does not parse.
            BackendError: the backend produced no reply.
        """
        payload = dict(view.payload)
        earlier = [{k: a[k] for k in ("tool", "args", "error_kind", "error_message") if k in a}
                   for a in view.attempts]
        payload["prior_failures"] = list(payload.get("prior_failures") or []) + earlier
        call = self._chat(roles.worker_user_text(payload), tools=view.tools)
        try:
            reply = roles.parse_worker_reply(call.response)
        except roles.ParseError as exc:
            raise InvalidOutput(f"worker reply: {exc}", call) from exc
        if reply.is_tool_call:
            return WorkerDecision("tool_call", reply.tool, reply.args, reasoning=f"model called {reply.tool}",
                                  call=call)
        return WorkerDecision("respond", answer=reply.answer, reasoning="model answered in text", call=call)


class ModelVerifier(_ModelRole):
    """Verifier played by a chat model (reply: ``verdict: ...`` then ``feedback: ...``)."""

    role = "verifier"

    def judge(self, view: VerifierView) -> VerdictDecision:
        """The model's verdict, feedback and risk flags for the view's payload.

        Raises:
            InvalidOutput: the reply does not parse.
            BackendError: the backend produced no reply.
        """
        call = self._chat(roles.verifier_user_text(view.payload))
        try:
            out = roles.parse_verifier_reply(call.response)
        except roles.ParseError as exc:
            raise InvalidOutput(f"verifier reply: {exc}", call) from exc
        return VerdictDecision(out.verdict, out.feedback, out.risk_flags, out.confidence, call=call)


MODEL_ROLES = {"planner": ModelPlanner, "worker": ModelWorker, "verifier": ModelVerifier}
