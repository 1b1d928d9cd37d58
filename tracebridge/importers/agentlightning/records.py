"""Agent Lightning's stored record models (``Span``, ``Rollout``, ``AttemptedRollout``, ``Attempt``), copied.

Reading a span file needs only these pydantic models, but they live in ``agentlightning.types``,
and importing any part of ``agentlightning`` runs its package ``__init__``: litellm, the
OpenTelemetry SDK, agentops hooks, ~15 s and ~330 MB before the first line is read. So the
importer checks lines with these copies instead: the same fields, types, defaults, ``extra``
settings and validator as ``agentlightning/types/tracer.py`` and ``types/core.py`` of 0.3.0, in the
same order, so a record is accepted, rejected (the same first error) and dumped
(``model_dump(mode="json")``, extra fields kept) exactly as Agent Lightning's own model does.
``tests/importers/test_agentlightning_records.py`` holds them to that against the installed package.
Only the fields of stored records are here; the constructors from OpenTelemetry objects are not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

# An error's location names the union member (``attributes.k.str``): the members and their order are
# Agent Lightning's.
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
Attributes = dict[str, AttributeValue]
TraceState = dict[str, str]
StatusCode = Literal["UNSET", "OK", "ERROR"]
RolloutStatus = Literal["queuing", "preparing", "running", "failed", "succeeded", "cancelled", "requeuing"]
AttemptStatus = Literal["preparing", "running", "failed", "succeeded", "unresponsive", "timeout"]
RolloutMode = Literal["train", "val", "test"]


class SpanContext(BaseModel):
    trace_id: str
    span_id: str
    is_remote: bool
    trace_state: TraceState

    model_config = ConfigDict(extra="allow")


class TraceStatus(BaseModel):
    status_code: StatusCode
    description: str | None = None

    model_config = ConfigDict(extra="allow")


class Event(BaseModel):
    name: str
    attributes: Attributes
    timestamp: float | None = None

    model_config = ConfigDict(extra="allow")


class Link(BaseModel):
    context: SpanContext
    attributes: Attributes | None = None

    model_config = ConfigDict(extra="allow")


class OtelResource(BaseModel):
    attributes: Attributes
    schema_url: str


class Span(BaseModel):
    """One stored span (``agentlightning.Span``)."""

    model_config = ConfigDict(extra="allow")

    rollout_id: str
    attempt_id: str
    sequence_id: int
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    status: TraceStatus
    attributes: Attributes
    events: list[Event]
    links: list[Link]
    start_time: float | None
    end_time: float | None
    context: SpanContext | None
    parent: SpanContext | None
    resource: OtelResource


class Attempt(BaseModel):
    """One attempt of a rollout (``agentlightning.Attempt``)."""

    rollout_id: str
    attempt_id: str
    sequence_id: int
    start_time: float
    end_time: float | None = None
    status: AttemptStatus = "preparing"
    worker_id: str | None = None
    last_heartbeat_time: float | None = None
    metadata: dict[str, Any] | None = None


class RolloutConfig(BaseModel):
    timeout_seconds: float | None = None
    unresponsive_seconds: float | None = None
    max_attempts: int = Field(default=1, ge=1)
    retry_condition: list[AttemptStatus] = Field(default_factory=cast(Callable[[], list[AttemptStatus]], list))


class Rollout(BaseModel):
    """One rollout: its task input and status (``agentlightning.Rollout``)."""

    rollout_id: str
    input: Any
    start_time: float
    end_time: float | None = None
    mode: RolloutMode | None = None
    resources_id: str | None = None
    status: RolloutStatus = "queuing"
    config: RolloutConfig = Field(default_factory=RolloutConfig)
    metadata: dict[str, Any] | None = None


class AttemptedRollout(Rollout):
    """A rollout with its current attempt (``agentlightning.AttemptedRollout``)."""

    attempt: Attempt

    @model_validator(mode="after")
    def check_consistency(self) -> AttemptedRollout:
        if self.attempt.rollout_id != self.rollout_id:
            raise ValueError("Inconsistent rollout_id between Rollout and Attempt")
        return self
