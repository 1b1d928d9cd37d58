"""Typed config of ``tracebridge collect`` (YAML under ``configs/collect/``).

The collection matrix is ``families × mixes × failures × seeds``: a *mix* names the policy of
each role (scripted with tunable skill, or model-backed through a backend) and a *failure
profile* names the controlled failures of the environment. Mixes and failure profiles are maps
keyed by name, so an override reaches any of them: ``mixes.novice.skill.bad_args=0.3``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tracebridge.curate.config import DETECTORS, RedactionConfig
from tracebridge.sim.families import FAMILIES

BACKENDS = ("scripted", "transformers", "http")
ROLE_NAMES = ("planner", "worker", "verifier")


def _prob(key: str, v: float) -> list[str]:
    return [] if 0.0 <= v <= 1.0 else [f"{key}={v}: a probability must be in [0, 1]"]


@dataclass
class SkillConfig:
    """Mistake probabilities of the scripted roles (0 = never, 1 = always)."""

    wrong_step_order: float = field(default=0.0, metadata={"help": "Planner: swap two adjacent plan steps."})
    bad_args: float = field(default=0.0, metadata={"help": "Worker: first call of a step has broken or wrong args."})
    unknown_tool: float = field(default=0.0, metadata={"help": "Worker: first call of a step names a tool that does not exist."})
    recover: float = field(default=0.9, metadata={"help": "Worker: after a failed call, retry with the right call."})
    premature_stop: float = field(default=0.0, metadata={"help": "Verifier: says end while the plan is still progressing."})
    missed_stop: float = field(default=0.0, metadata={"help": "Verifier: says continue although the goal is met."})
    needless_replan: float = field(default=0.0, metadata={"help": "Verifier: says replan while the plan is progressing."})

    def validate(self, prefix: str) -> list[str]:
        """Every probability outside [0, 1], as ``<prefix>.key=value: what``."""
        return [p for k, v in vars(self).items() for p in _prob(f"{prefix}.{k}", v)]


@dataclass
class RoleBackendConfig:
    """Who plays one role: the scripted policy, a local transformers model or an HTTP endpoint."""

    backend: str = field(default="scripted", metadata={"help": "scripted | transformers | http."})
    model: str = field(default="", metadata={
        "help": "transformers: a configs/model/*.yaml file (random-init or pretrained); "
                "http: the model name sent to the endpoint."})
    base_url: str = field(default="", metadata={"help": "http: endpoint root, e.g. http://127.0.0.1:8000."})
    api_key_env: str | None = field(default=None, metadata={
        "help": "http: name of the environment variable holding the API key (never stored)."})
    max_new_tokens: int = field(default=128, metadata={
        "help": "Tokens generated per call; transformers: below the model's max_position_embeddings (the "
                "prompt keeps its last positions - max_new_tokens tokens)."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy; > 0 samples (seeded per episode)."})
    timeout_s: float = field(default=60.0, metadata={"help": "http: request timeout in seconds."})

    def validate(self, prefix: str) -> list[str]:
        """Every problem, as ``<prefix>.key=value: what; fix``."""
        p = []
        if self.backend not in BACKENDS:
            p.append(f"{prefix}.backend={self.backend}: use one of {', '.join(BACKENDS)}")
        if self.backend == "transformers" and not self.model:
            p.append(f"{prefix}.model='': transformers needs a configs/model/*.yaml path")
        if self.backend == "http" and not (self.base_url and self.model):
            p.append(f"{prefix}.base_url/model: http needs both (e.g. http://127.0.0.1:8000, qwen2.5-0.5b)")
        if self.max_new_tokens < 1:
            p.append(f"{prefix}.max_new_tokens={self.max_new_tokens}: must be >= 1")
        if self.temperature < 0:
            p.append(f"{prefix}.temperature={self.temperature}: must be >= 0")
        return p


@dataclass
class PolicyMix:
    """The policy of each role, and the skill of the scripted ones."""

    skill: SkillConfig = field(default_factory=SkillConfig, metadata={"help": "Scripted roles' mistake rates."})
    planner: RoleBackendConfig = field(default_factory=RoleBackendConfig, metadata={"help": "Planner policy."})
    worker: RoleBackendConfig = field(default_factory=RoleBackendConfig, metadata={"help": "Worker policy."})
    verifier: RoleBackendConfig = field(default_factory=RoleBackendConfig, metadata={"help": "Verifier policy."})

    @property
    def scripted(self) -> bool:
        """Whether every role is played by the scripted policy."""
        return all(getattr(self, r).backend == "scripted" for r in ROLE_NAMES)


@dataclass
class FailureProfile:
    """Controlled failures of the environment."""

    flaky_rate: float = field(default=0.0, metadata={"help": "Per call: a transient runtime_error before the tool runs."})
    slow_rate: float = field(default=0.0, metadata={"help": "Per call: the tool is slow by slow_ms."})
    slow_ms: float = field(default=0.0, metadata={"help": "Added latency of a slow call (ms); past timeout_ms it is a timeout."})
    timeout_ms: float = field(default=1000.0, metadata={"help": "Tool timeout (ms)."})
    real_sleep: bool = field(default=False, metadata={"help": "Sleep for real on slow calls (else latency is simulated)."})
    misleading_rate: float = field(default=0.0, metadata={"help": "Per episode: the first observation is false."})
    unsatisfiable_rate: float = field(default=0.0, metadata={"help": "Per episode: the goal cannot be met."})

    def validate(self, prefix: str) -> list[str]:
        """Every problem, as ``<prefix>.key=value: what; fix``."""
        p = [x for k in ("flaky_rate", "slow_rate", "misleading_rate", "unsatisfiable_rate")
             for x in _prob(f"{prefix}.{k}", getattr(self, k))]
        if not (0 <= self.slow_ms < math.inf and 0 < self.timeout_ms < math.inf):  # NaN fails both
            p.append(f"{prefix}.slow_ms/timeout_ms: slow_ms >= 0 and timeout_ms > 0")
        return p


@dataclass
class SeedsConfig:
    """Seeds of the matrix: a fixed list plus N random ones (each run records its kind)."""

    fixed: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Seeds always run."})
    random: int = field(default=0, metadata={"help": "How many random seeds to add."})
    random_source: int | None = field(default=None, metadata={
        "help": "Seed of the random-seed draw (reproducible collection); None = OS entropy."})


@dataclass
class CheckConfig:
    """What the collector checks after the run (exit 1 when a check fails)."""

    min_verdict_share: float = field(default=0.0, metadata={"help": "Each of continue/replan/end at least this share."})
    min_recovery_share: float = field(default=0.0, metadata={"help": "Share of episodes with a failure → recovery."})
    require_all_event_types: bool = field(default=False, metadata={"help": "Every schema event type must occur."})


@dataclass
class CaptureConfig:
    """Redaction at capture: pass 1 of the two redaction passes (seed 004, risk 2). Export's pass 2
    re-scans every record of a run redacted here with the export's own policy."""

    redact: bool = field(default=True, metadata={
        "help": "Redact every event and session.json before it is written; session.json records the "
                "capture pass (policy, findings by type). false writes raw traces and leaves pass 1 to export."})
    detectors: list[str] = field(default_factory=lambda: list(DETECTORS), metadata={
        "help": f"Detector categories of the capture pass, from {', '.join(DETECTORS)}."})
    terms: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "User terms by placeholder type, e.g. {NAME: [Alice Smith]}; as the export's redaction.terms."})

    def redaction(self) -> RedactionConfig | None:
        """The capture pass's redaction config (None when ``redact`` is false)."""
        return RedactionConfig(detectors=list(self.detectors), terms=dict(self.terms)) if self.redact else None


@dataclass
class CollectConfig:
    """``tracebridge collect``: run the matrix and write schema-v2 traces."""

    name: str = field(default="collect", metadata={"help": "Label stamped into every run's source.ref."})
    out: str = field(default="traces/sim", metadata={"help": "Trace root (one run directory per episode)."})
    families: list[str] = field(default_factory=lambda: list(FAMILIES), metadata={
        "help": f"Goal families: {', '.join(FAMILIES)}."})
    mixes: dict[str, PolicyMix] = field(default_factory=dict, metadata={
        "help": "Policy mixes by name; empty = one scripted mix named 'default' with perfect skill."})
    failures: dict[str, FailureProfile] = field(default_factory=dict, metadata={
        "help": "Failure profiles by name; empty = one profile named 'clean' without failures."})
    seeds: SeedsConfig = field(default_factory=SeedsConfig, metadata={"help": "Fixed and random seeds."})
    max_steps: int = field(default=8, metadata={"help": "Orchestrator cycles per episode."})
    max_attempts: int = field(default=3, metadata={"help": "Tool calls per plan step (first try + retries)."})
    workers: int = field(default=2, metadata={"help": "Worker processes; 0 or 1 = run in this process."})
    chunk: int = field(default=16, metadata={"help": "Episodes per task sent to a worker process."})
    sandbox_dir: str | None = field(default=None, metadata={"help": "Where episode temp dirs go; None = system temp."})
    checks: CheckConfig = field(default_factory=CheckConfig, metadata={"help": "Post-run checks."})
    capture: CaptureConfig = field(default_factory=CaptureConfig, metadata={
        "help": "Redaction at capture (on by default)."})

    def __post_init__(self) -> None:
        # Map defaults live here, not in the field defaults, so YAML maps replace them instead
        # of merging into them.
        if not self.mixes:
            self.mixes = {"default": PolicyMix()}
        if not self.failures:
            self.failures = {"clean": FailureProfile()}

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = [f"families: {f!r} unknown; use {', '.join(FAMILIES)}" for f in self.families if f not in FAMILIES]
        if not self.families:
            p.append("families=[]: name at least one family")
        for name, mix in self.mixes.items():
            p += mix.skill.validate(f"mixes.{name}.skill")
            for r in ROLE_NAMES:
                p += getattr(mix, r).validate(f"mixes.{name}.{r}")
        for name, prof in self.failures.items():
            p += prof.validate(f"failures.{name}")
        if not self.seeds.fixed and self.seeds.random <= 0:
            p.append("seeds: no seeds; give seeds.fixed or seeds.random > 0")
        repeated = sorted({s for s in self.seeds.fixed if self.seeds.fixed.count(s) > 1})
        if repeated:  # the same seed twice runs the same episodes twice
            p.append(f"seeds.fixed: {repeated} repeated; list each seed once")
        if self.seeds.random < 0:
            p.append(f"seeds.random={self.seeds.random}: must be >= 0")
        for k in ("max_steps", "max_attempts", "chunk"):
            if getattr(self, k) < 1:
                p.append(f"{k}={getattr(self, k)}: must be >= 1")
        if self.workers < 0:
            p.append(f"workers={self.workers}: must be >= 0")
        p += _prob("checks.min_verdict_share", self.checks.min_verdict_share)
        p += _prob("checks.min_recovery_share", self.checks.min_recovery_share)
        p += RedactionConfig(detectors=self.capture.detectors, terms=self.capture.terms).validate("capture")
        return p
