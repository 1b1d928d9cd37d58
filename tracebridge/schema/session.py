"""Session-level model of schema v2: ``session.json``, written once when a run closes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tracebridge.schema.events import SCHEMA_VERSION, Strict, Timestamp

SourceKind = Literal["sim", "openclaw", "agentlightning", "runtime"]


class Goal(Strict):
    text: str
    family: str = Field("unknown", description="Goal family; the train/val/test split is by family.")
    goal_hash: str = Field(description="sha256 of the canonical goal (family + normalised text).")


class RoleModel(Strict):
    model: str
    params: dict[str, Any] = Field(default_factory=dict, description="Hyperparameters (temperature, ...).")


class ModelStack(Strict):
    planner: RoleModel
    worker: RoleModel
    verifier: RoleModel


class RuntimeConfig(Strict):
    max_steps: int = Field(ge=1)
    prompt_sources: list[str] = Field(default_factory=list, description="Where role prompts came from.")
    tool_mode: str = Field("real", description="real | sandbox | replay | mock")
    seed: int | None = None
    seed_kind: Literal["fixed", "random"] | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Runtime-specific settings.")


class Hashes(Strict):
    config_hash: str
    prompt_hash: str
    toolset_hash: str


class RedactionPass(Strict):
    stage: Literal["capture", "curation", "import"]
    policy: str
    findings: dict[str, int] = Field(default_factory=dict, description="Count by detector type; never values.")


class DataGovernance(Strict):
    redaction_policy: str | None = None
    pii_scan: Literal["not_run", "clean", "findings"] = "not_run"
    passes: list[RedactionPass] = Field(default_factory=list)


class Summary(Strict):
    success: bool | None = None
    steps: int = Field(0, ge=0)
    tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    failure_class: str | None = None


class CaptureStats(Strict):
    events_written: int = 0
    events_dropped: int = Field(0, description="Events lost to capture failures (fail-open).")
    errors: int = 0
    nonfinite_values: int = Field(0, description='Floats JSON cannot hold (NaN, +-inf) written as the strings '
                                                 '"NaN", "Infinity", "-Infinity" (not as null).')


class Source(Strict):
    kind: SourceKind
    ref: str | None = Field(None, description="Source file, session id or span store id.")


class Session(Strict):
    schema_version: Literal["2.0"] = SCHEMA_VERSION
    run_id: str = Field(min_length=1)
    goal: Goal
    started_at: Timestamp
    finished_at: Timestamp
    model_stack: ModelStack
    runtime_config: RuntimeConfig
    hashes: Hashes
    data_governance: DataGovernance = Field(default_factory=DataGovernance)
    summary: Summary = Field(default_factory=Summary)
    source: Source
    capture: CaptureStats = Field(default_factory=CaptureStats)
    labels: dict[str, Any] = Field(default_factory=dict)
