"""Event-level models of schema v2: one typed payload per event type, the tool-error taxonomy and
the LLM-call block. ``Event`` is a union discriminated on ``event_type``; ``EVENT_ADAPTER``
validates one event dict against it.

Every model forbids unknown fields: an unknown field in input is *schema drift* and is reported
by the validator, never silently accepted.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = "2.0"

# UTC, millisecond precision, ``Z`` suffix: fixed width, so string order is time order.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
Timestamp = Annotated[str, Field(pattern=TIMESTAMP_PATTERN, description="UTC, ms, e.g. 2026-01-31T12:00:00.000Z")]
Role = Literal["planner", "worker", "verifier", "orchestrator", "env", "user"]
Verdict = Literal["continue", "replan", "end"]


class ErrorKind(enum.StrEnum):
    """Fixed taxonomy of tool/action errors."""

    BAD_ARGS = "bad_args"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    PERMISSION = "permission"
    RUNTIME_ERROR = "runtime_error"
    UNKNOWN_TOOL = "unknown_tool"
    INVALID_OUTPUT = "invalid_output"

    @property
    def is_agent_fault(self) -> bool:
        """True when the calling role caused the error (a better policy would avoid it)."""
        return self in {ErrorKind.BAD_ARGS, ErrorKind.UNKNOWN_TOOL, ErrorKind.INVALID_OUTPUT}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- shared parts


class PlanStep(Strict):
    index: int = Field(ge=0, description="Position of the step in the plan, 0-based.")
    description: str
    tool: str | None = Field(None, description="Tool the step expects to use, if any.")
    args: dict[str, Any] | None = Field(None, description="Suggested tool arguments, if any.")


class ToolError(Strict):
    kind: ErrorKind
    message: str


class Usage(Strict):
    # inf passes ge=0 but JSON has no inf: it would be written as null, which this model refuses
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0, allow_inf_nan=False)
    latency_ms: float = Field(0.0, ge=0, allow_inf_nan=False)


class LLMCall(Strict):
    """One model call: what was sent (rendered), with hashes to group calls by prompt/config."""

    model: str
    rendered_prompt: str = Field(description="The exact text (chat template applied) or JSON messages sent.")
    prompt_hash: str = Field(description="sha256 of the canonical JSON of the prompt.")
    config_hash: str = Field(description="sha256 of the canonical JSON of the call's model + params.")
    toolset_hash: str | None = Field(None, description="sha256 of the tools offered, if any.")
    tools: list[dict[str, Any]] | None = Field(
        None, description="The tool schemas offered, in OpenAI's tools format ({type: function, function: "
                          "{name, description, parameters}}) as the call sent them; recorded once per run and "
                          "toolset_hash (on the first call that offered them), None on later calls and where the "
                          "source did not record them.")
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters.")
    response: str | None = Field(None, description="Raw text the model returned.")
    tool_calls: list[dict[str, Any]] | None = Field(
        None, description="Tool calls the model returned natively, in the OpenAI function-call shape "
                          "{id, name, arguments} (arguments the string the model returned where the source "
                          "recorded it); None when it returned text only.")
    usage: Usage = Field(default_factory=Usage)


# --------------------------------------------------------------------------- payloads


class PlannerInput(Strict):
    goal: str
    observation: Any = None
    history: list[Any] = Field(default_factory=list, description="Condensed history of earlier cycles.")
    tool_mask: list[str] = Field(default_factory=list, description="Tools available to the plan.")


class PlannerOutput(Strict):
    plan: list[PlanStep]
    rationale: str = ""
    confidence: float | None = Field(None, ge=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class WorkerInput(Strict):
    plan_step: PlanStep
    state: Any = None
    allowed_tools: list[str] = Field(default_factory=list)
    prior_failures: list[dict[str, Any]] = Field(default_factory=list)


class WorkerAction(Strict):
    action: str = Field(description="tool_call | respond | give_up, or a runtime-specific action name.")
    reasoning_summary: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None


class WorkerToolCall(Strict):
    call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class WorkerToolResult(Strict):
    call_id: str
    ok: bool
    output: Any = None
    error: ToolError | None = None
    retry_of: str | None = Field(None, description="call_id of the failed call this one retries.")
    latency_ms: float | None = Field(None, ge=0)


class WorkerOutput(Strict):
    result: Any = None
    status: Literal["done", "failed", "partial"] = "done"


class VerifierInput(Strict):
    plan_progress: dict[str, Any] = Field(default_factory=dict, description="e.g. {completed, total, current}")
    evidence: list[Any] = Field(default_factory=list, description="Action traces and tool results seen.")


class VerifierOutput(Strict):
    verdict: Verdict
    feedback: str = ""
    risk_flags: list[str] = Field(default_factory=list)
    confidence: float | None = Field(None, ge=0, le=1)


class OrchestratorTransition(Strict):
    from_state: str
    to_state: str
    reason: str


class EnvObservation(Strict):
    observation: Any
    source: str = "env"


class EpisodeError(Strict):
    kind: str = Field(description="An ErrorKind value, or an exception class for crashes.")
    message: str
    recoverable: bool = True


class EpisodeEnd(Strict):
    success: bool
    outcome: str = ""
    failure_class: str | None = None


PAYLOADS: dict[str, type[Strict]] = {
    "planner_input": PlannerInput,
    "planner_output": PlannerOutput,
    "worker_input": WorkerInput,
    "worker_action": WorkerAction,
    "worker_tool_call": WorkerToolCall,
    "worker_tool_result": WorkerToolResult,
    "worker_output": WorkerOutput,
    "verifier_input": VerifierInput,
    "verifier_output": VerifierOutput,
    "orchestrator_transition": OrchestratorTransition,
    "env_observation": EnvObservation,
    "episode_error": EpisodeError,
    "episode_end": EpisodeEnd,
}
EVENT_TYPES: tuple[str, ...] = tuple(PAYLOADS)


# --------------------------------------------------------------------------- events


class EventBase(Strict):
    run_id: str = Field(min_length=1)
    step: int = Field(ge=0, description="Orchestrator cycle the event belongs to.")
    event_id: str = Field(min_length=1, description="Unique within the run; recorder ids are '<run_id>:<seq>'.")
    timestamp: Timestamp
    parent_event_id: str | None = Field(description="Causal parent; null only for the root event.")
    root: bool = Field(False, description="True for the single root event of a run.")
    role: Role
    llm: LLMCall | None = None
    labels: dict[str, Any] = Field(default_factory=dict, description="Weak labels, e.g. feedback scores.")


def _event_model(event_type: str, payload: type[Strict]) -> type[EventBase]:
    name = "".join(p.title() for p in event_type.split("_")) + "Event"
    return type(
        name,
        (EventBase,),
        {
            "__annotations__": {"event_type": Literal[event_type], "payload": payload},  # type: ignore[valid-type]
            "__module__": __name__,
        },
    )


EVENT_MODELS: dict[str, type[EventBase]] = {t: _event_model(t, p) for t, p in PAYLOADS.items()}
Event = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="event_type")]  # type: ignore[valid-type]  # noqa: UP007 - a union of a computed tuple has no X | Y form
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def validate_event(obj: dict[str, Any]) -> EventBase:
    """Validate one event dict.

    Raises:
        pydantic.ValidationError: with the path of every bad field.
    """
    return EVENT_ADAPTER.validate_python(obj)
