"""Role interfaces of the simulator: what the orchestrator shows each role (a *view* holding the
role's input payload as it is recorded) and what the role decides.

Three small Protocols, ``Planner``, ``Worker`` and ``Verifier``, each with ``name``, ``params``,
``prompt_source`` and one method. Implementations: scripted (``tracebridge.sim.scripted``) and
model-backed (``tracebridge.sim.model_policies``). A model-backed role that cannot parse its
model's reply raises ``InvalidOutput`` carrying the model call; the orchestrator records it as
an ``invalid_output`` error, never a crash.

Views hold ground truth only where a scripted policy needs it to simulate skill
(``reference_plan``, ``expected_verdict``); model-backed roles read only ``payload``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ModelCall:
    """One chat-model call: what was sent (rendered), what came back, what it cost."""

    model: str
    prompt: Any  # rendered text (chat template applied) or the JSON message list sent
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    response: str = ""
    usage: dict[str, Any] = field(default_factory=dict)


class InvalidOutput(Exception):
    """A model reply that does not follow the role's format."""

    def __init__(self, message: str, call: ModelCall | None = None) -> None:
        super().__init__(message)
        self.call = call


# --------------------------------------------------------------------------- views


@dataclass
class PlannerView:
    """Planner input: the ``planner_input`` payload, the tool schemas and (scripted only) the
    plan a perfect planner would write given what it was shown."""

    payload: dict[str, Any]
    tools: list[dict[str, Any]]
    reference_plan: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class WorkerView:
    """Worker input for one attempt: the ``worker_input`` payload, the tool schemas, the output of
    the previous completed step (what ``$prev`` refers to) and this step's earlier attempts."""

    payload: dict[str, Any]
    tools: list[dict[str, Any]]
    prev: Any = None
    attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class VerifierView:
    """Verifier input: the ``verifier_input`` payload and (scripted only) the ground truth."""

    payload: dict[str, Any]
    expected_verdict: str = "continue"
    goal_met: bool = False


# --------------------------------------------------------------------------- decisions


@dataclass
class PlanDecision:
    plan: list[dict[str, Any]]
    rationale: str = ""
    confidence: float | None = None
    call: ModelCall | None = None
    fault: str | None = None  # the scripted mistake made, if any


@dataclass
class WorkerDecision:
    action: str  # tool_call | respond | give_up
    tool: str | None = None
    args: dict[str, Any] | None = None
    answer: str | None = None
    reasoning: str = ""
    call: ModelCall | None = None
    fault: str | None = None


@dataclass
class VerdictDecision:
    verdict: str
    feedback: str = ""
    risk_flags: list[str] = field(default_factory=list)
    confidence: float | None = None
    call: ModelCall | None = None
    fault: str | None = None


# --------------------------------------------------------------------------- protocols


class Planner(Protocol):
    name: str
    params: dict[str, Any]
    prompt_source: str

    def plan(self, view: PlannerView) -> PlanDecision:
        """Write a plan. Raises InvalidOutput."""


class Worker(Protocol):
    name: str
    params: dict[str, Any]
    prompt_source: str

    def act(self, view: WorkerView) -> WorkerDecision:
        """Choose the next action for the current plan step. Raises InvalidOutput."""


class Verifier(Protocol):
    name: str
    params: dict[str, Any]
    prompt_source: str

    def judge(self, view: VerifierView) -> VerdictDecision:
        """Judge the progress. Raises InvalidOutput."""


@dataclass
class RoleSet:
    """The three roles of one episode."""

    planner: Planner
    worker: Worker
    verifier: Verifier

    def model_stack(self) -> dict[str, Any]:
        """Each role's model name and params (the session's ``model_stack``)."""
        return {r: {"model": getattr(self, r).name, "params": getattr(self, r).params}
                for r in ("planner", "worker", "verifier")}

    def prompts(self) -> dict[str, str]:
        """Each role's prompt source (the session's ``prompts``)."""
        return {r: getattr(self, r).prompt_source for r in ("planner", "worker", "verifier")}
