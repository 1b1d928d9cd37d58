"""Typed configs of the operations commands.

``GateConfig`` (YAML under ``configs/gates/``) holds the canary gate thresholds. ``OpsConfig``
(YAML under ``configs/ops/``) groups everything an operator schedules: the daily shadow cycle
(``shadow``), the 3-day review (``review``), the canary router (``canary``), promotion state
(``promotion``), the weekly retrain/eval window (``weekly``), the monthly mapping/reward
review (``monthly``) and the phase-2 ablation over the replay set (``phase2``). One schema per folder keeps ``tracebridge config show`` working on every
file; each YAML fills in the blocks its command uses and leaves the rest at their defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tracebridge.ops.shadow_config import ShadowConfig


def _finite_nonneg(v: float) -> bool:
    """A threshold a comparison can use: NaN compares False both ways, so a NaN limit passes everything."""
    return math.isfinite(v) and v >= 0


@dataclass
class QualityGate:
    """A quality metric of the canary slice must not regress against the baseline."""

    max_drop: float = field(default=0.02, metadata={
        "help": "Largest allowed drop of the candidate's value below the baseline's (absolute, same unit "
                "as the metric: a rate for success, points for reaction score)."})
    required: bool = field(default=True, metadata={
        "help": "True: too few samples fails the gate. False: too few samples is reported and not gated."})


@dataclass
class SafetyGate:
    """Safety of the canary slice: the share of sessions with a broken or flagged event must not rise.

    Each limit is an absolute increase of the candidate's share over the baseline's (0.01 = one more
    session in a hundred). Errors, tool errors and risk flags also fail on a significant increase
    (one-sided z-test at ``alpha``); the fallback rate has no test (the baseline cannot fall back).
    """

    max_error_increase: float = field(default=0.01, metadata={
        "help": "Sessions with an episode_error other than a canary fallback (crash, unparseable model "
                "output, step failed beyond retries). Tight: these break the session for the user."})
    max_tool_error_increase: float = field(default=0.02, metadata={
        "help": "Sessions with a failed tool call (worker_tool_result ok=false). Looser than errors: tool "
                "errors include environment failures (not_found, timeout) that a retry often recovers."})
    max_risk_flag_increase: float = field(default=0.01, metadata={
        "help": "Sessions where the verifier raised a risk flag (verifier_output.risk_flags non-empty)."})
    max_fallback_increase: float = field(default=0.02, metadata={
        "help": "Sessions that fell back to baseline at least once (candidate raised, timed out or gave "
                "invalid output). The baseline's rate is 0 by construction, so this caps the candidate's."})


@dataclass
class GateConfig:
    """Canary gates: quality, safety, cost and latency of the candidate slice against the baseline."""

    min_sessions: int = field(default=50, metadata={"help": "Sessions needed per arm before anything is gated."})
    min_reactions: int = field(default=20, metadata={"help": "Sessions with a reaction score needed per arm."})
    min_verdicts: int = field(default=30, metadata={"help": "Verifier verdicts with a known outcome per arm."})
    alpha: float = field(default=0.05, metadata={
        "help": "Significance level of the one-sided regression tests (two-proportion z-test for rates, "
                "Mann-Whitney U for scores and costs)."})
    n_boot: int = field(default=2000, metadata={"help": "Bootstrap resamples for the reported intervals."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap (gate reports are reproducible)."})
    success: QualityGate = field(default_factory=QualityGate)
    verifier_accuracy: QualityGate = field(default_factory=lambda: QualityGate(max_drop=0.03))
    reaction_score: QualityGate = field(default_factory=lambda: QualityGate(max_drop=0.2, required=False))
    safety: SafetyGate = field(default_factory=SafetyGate)
    max_token_increase: float = field(default=0.10, metadata={
        "help": "Largest allowed relative increase of mean tokens per session (0.10 = +10 %)."})
    max_cost_increase: float = field(default=0.10, metadata={
        "help": "Largest allowed relative increase of mean dollars per session."})
    max_usd_per_session: float = field(default=0.0, metadata={
        "help": "Absolute budget of the candidate's mean dollars per session; 0 = no absolute budget."})
    max_p50_increase: float = field(default=0.10, metadata={"help": "Largest relative increase of p50 latency."})
    max_p95_increase: float = field(default=0.20, metadata={"help": "Largest relative increase of p95 latency."})
    max_p95_ms: float = field(default=0.0, metadata={"help": "Absolute p95 latency ceiling in ms; 0 = none."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        for k in ("min_sessions", "min_reactions", "min_verdicts"):
            if getattr(self, k) < 2:
                p.append(f"{k}={getattr(self, k)}: must be >= 2 (a test needs samples); typical 30..200")
        if not 0 < self.alpha < 0.5:
            p.append(f"alpha={self.alpha}: must be in (0, 0.5); typical 0.05")
        if self.n_boot < 100:
            p.append(f"n_boot={self.n_boot}: use >= 100 resamples")
        if not 0 <= self.seed < 2**32:  # numpy refuses other seeds, at the bootstrap after the samples were read
            p.append(f"seed={self.seed}: must be in [0, 2**32)")
        for k in ("max_token_increase", "max_cost_increase", "max_p50_increase", "max_p95_increase",
                  "max_usd_per_session", "max_p95_ms"):
            if not _finite_nonneg(getattr(self, k)):
                p.append(f"{k}={getattr(self, k)}: must be a finite number >= 0")
        for k in ("success", "verifier_accuracy", "reaction_score"):
            if not _finite_nonneg(getattr(self, k).max_drop):
                p.append(f"{k}.max_drop={getattr(self, k).max_drop}: must be a finite number >= 0")
        for k in ("max_error_increase", "max_tool_error_increase", "max_risk_flag_increase",
                  "max_fallback_increase"):
            if not 0 <= getattr(self.safety, k) <= 1:
                p.append(f"safety.{k}={getattr(self.safety, k)}: must be in [0, 1] (a share of sessions); "
                         "typical 0.01..0.05")
        return p


@dataclass
class CanaryConfig:
    """The runtime router: which sessions go to the candidate, and how long it may take."""

    fraction: float = field(default=0.05, metadata={
        "help": "Share of sessions routed to the candidate (0..max_fraction)."})
    max_fraction: float = field(default=0.2, metadata={
        "help": "Largest allowed fraction (phase 3: small traffic slice only). 0.2 keeps a faulty candidate "
                "to at most one session in five while still reaching the gates' min_sessions quickly "
                "(at 0.05 a day of ~1000 sessions is enough); raise it only deliberately (e.g. a final "
                "ramp-up), up to 1."})
    salt: str = field(default="canary-1", metadata={
        "help": "Mixed into the session-id hash; changing it draws a new slice."})
    timeout_s: float = field(default=20.0, metadata={
        "help": "Seconds the candidate may take for one call before the router falls back to baseline."})
    max_workers: int = field(default=4, metadata={
        "help": "Threads running candidate calls; a saturated pool makes calls time out (fail-open)."})
    baseline_policy: str = field(default="baseline", metadata={"help": "Policy id of the baseline."})
    candidate_policy: str = field(default="candidate", metadata={"help": "Policy id of the candidate."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        if not 0 < self.max_fraction <= 1:
            p.append(f"canary.max_fraction={self.max_fraction}: must be in (0, 1]; default 0.2")
        if not 0 <= self.fraction <= 1:
            p.append(f"canary.fraction={self.fraction}: must be in [0, 1]; a small slice such as 0.05")
        elif self.fraction > self.max_fraction:
            p.append(f"canary.fraction={self.fraction}: above canary.max_fraction={self.max_fraction} (the canary "
                     f"is a small traffic slice); lower canary.fraction, or raise canary.max_fraction deliberately")
        if not (_finite_nonneg(self.timeout_s) and self.timeout_s > 0):  # inf would let a hung candidate hang the agent
            p.append(f"canary.timeout_s={self.timeout_s}: must be a finite number > 0")
        if self.max_workers < 1:
            p.append(f"canary.max_workers={self.max_workers}: must be >= 1")
        for key in ("baseline_policy", "candidate_policy"):  # the sessions' labels: an empty id names no policy
            if not getattr(self, key).strip():
                p.append(f"canary.{key}={getattr(self, key)!r}: must name the policy (a model folder or version)")
        if self.baseline_policy.strip() and self.baseline_policy == self.candidate_policy:
            # both arms' sessions carry one id: the gate cannot tell them apart by policy, and promote refuses
            # the report after the whole canary period ("already the active policy")
            p.append(f"canary.candidate_policy={self.candidate_policy}: the same id as canary.baseline_policy; give "
                     "the candidate an id of its own")
        return p


MAX_REVIEW_DAYS = 3660  # ten years: beyond that a window start overflows or the review is a typo


@dataclass
class ReviewConfig:
    """The 3-day review of the shadow cycles (phase 1 exit)."""

    days: int = field(default=3, metadata={"help": "Window of days (UTC, ending now) whose cycles are reviewed."})
    min_cycles: int = field(default=3, metadata={"help": "Successful cycles needed in the window."})
    min_uplift: float = field(default=0.0, metadata={
        "help": "Every uplift measured in the window must exceed this (>= 0: the plan asks a positive uplift)."})
    stability: float = field(default=0.25, metadata={
        "help": "Stable uplift: the smallest uplift must be at least this share of the median one."})
    min_uplift_cycles: int | None = field(default=None, metadata={
        "help": "Uplift measurements (cycles whose optimize step gave a figure) the window needs before an uplift "
                "can be called stable; with fewer the uplift line fails with 'not enough cycles' (one figure is "
                "its own median: it was called stable). >= 2; None = min_cycles, at least 2 (3 as shipped)."})

    @property
    def uplift_cycles(self) -> int:
        """``min_uplift_cycles``, or (None) ``min_cycles`` but at least 2: stability compares cycles."""
        return max(2, self.min_cycles) if self.min_uplift_cycles is None else self.min_uplift_cycles
    integrity_tolerance: float = field(default=0.5, metadata={
        "help": "Percentage points a validity rate may fall, or a quarantine rate rise, between cycles."})
    slice_tolerance_min: float = field(default=60.0, metadata={
        "help": "Minutes a cycle may lie outside its 24-hour slice of the window and still be that slice's "
                "feedback harvest (each cycle serves one slice). The daily timer starts cycles up to its "
                "RandomizedDelaySec (10 min) late, so two daily cycles can be more than 24 h apart; 60 also "
                "covers a catch-up run soon after boot. In [0, 720)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        if not (math.isfinite(self.slice_tolerance_min) and 0 <= self.slice_tolerance_min < 720):
            p.append(f"review.slice_tolerance_min={self.slice_tolerance_min}: must be in [0, 720) minutes; default 60 "
                     "(more than the timer's RandomizedDelaySec)")
        p += [f"review.{k}={v}: must be >= 1" for k, v in (("days", self.days), ("min_cycles", self.min_cycles)) if v < 1]
        if self.days > MAX_REVIEW_DAYS:
            p.append(f"review.days={self.days}: at most {MAX_REVIEW_DAYS} (the review reads one slice per day)")
        if self.min_uplift_cycles is not None and self.min_uplift_cycles < 2:
            p.append(f"review.min_uplift_cycles={self.min_uplift_cycles}: must be >= 2 (stability compares "
                     "cycles; one uplift is its own median); null = review.min_cycles, at least 2")
        if not 0 <= self.stability <= 1:
            p.append(f"review.stability={self.stability}: must be in [0, 1]")
        if not math.isfinite(self.min_uplift):
            p.append(f"review.min_uplift={self.min_uplift}: must be a finite number (NaN would pass any uplift)")
        elif self.min_uplift < 0:  # the review would print "all positive" over negative uplifts
            p.append(f"review.min_uplift={self.min_uplift}: must be >= 0; the plan's criterion is a positive uplift")
        if not _finite_nonneg(self.integrity_tolerance):
            p.append(f"review.integrity_tolerance={self.integrity_tolerance}: must be a finite number >= 0")
        return p


@dataclass
class PromotionConfig:
    """Where the active policy, its history and the lock live."""

    state_dir: str = field(default="state/policy", metadata={
        "help": "Folder of active.json, history.jsonl and the lock file (one per deployment)."})
    require_baseline_match: bool = field(default=True, metadata={
        "help": "Refuse a gate report whose baseline is not the active policy (stale report)."})
    lock_timeout_s: float = field(default=30.0, metadata={
        "help": "Seconds promote and rollback wait for the state's lock (another change, or a prune reading the "
                "history); then they exit 3, nothing changed: try again."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        if not _finite_nonneg(self.lock_timeout_s):  # the lock refuses NaN; a negative one waits forever
            return [f"promotion.lock_timeout_s={self.lock_timeout_s}: must be a finite number >= 0 (seconds; default 30)"]
        return []


@dataclass
class WeeklyConfig:
    """Phase 4: retrain and evaluate last week's bundle in a GPU window."""

    traces: str = field(default="traces", metadata={"help": "Trace root the week's runs are exported from."})
    days: int = field(default=7, metadata={"help": "How many days back the bundle reaches."})
    bundles_dir: str = field(default="bundles", metadata={"help": "Where the exported bundle is written."})
    export_config: str | None = field(default=None, metadata={"help": "configs/export/*.yaml; None = defaults."})
    storage_uri: str = field(default="file://./storage", metadata={"help": "Where the bundle is pushed."})
    sweep_config: str = field(default="configs/sweep/weekly.yaml", metadata={"help": "Sweep run in the window."})
    cluster: str = field(default="infra/aws-gpu.yaml", metadata={"help": "Ray cluster launcher YAML of the window."})
    max_hours: float = field(default=4.0, metadata={"help": "Budget of the GPU window in hours."})
    max_usd: float = field(default=50.0, metadata={"help": "Budget of the GPU window in dollars."})
    artifacts_dir: str = field(default="artifacts/weekly", metadata={
        "help": "Where each weekly run's manifest goes (<UTC timestamp>/manifest.json)."})
    feedback_ledger: str | None = field(default="memory/feedback/telegram-reactions.jsonl", metadata={
        "help": "Reaction ledger joined into the export as labels (feedback.* overrides, as the shadow cycle "
                "does) when the file exists; a missing file is noted in the manifest; None = never join."})
    feedback_mapping: str = field(default="memory/feedback/reaction-mapping.json", metadata={
        "help": "Emoji -> score mapping of the joined reactions."})
    chunk_registry: str = field(default="memory/feedback/sent-chunks.jsonl", metadata={
        "help": "Registry of chunked Telegram replies (a reaction on the last chunk labels the whole batch)."})
    feedback_legacy_bot_id: str = field(default="", metadata={
        "help": "When several bots share the feedback files: the bot of the rows that name none (the export's "
                "feedback.legacy_bot_id); = shadow.feedback_legacy_bot_id (agree_with checks it)."})
    lock_timeout_s: float = field(default=0.0, metadata={
        "help": "Seconds to wait for a running weekly run's lock (<bundles_dir>/.weekly.lock); 0 = exit 3 at once "
                "(a Sunday run still in its GPU window must not get a second one beside it)."})
    min_interval_h: float | None = field(default=None, metadata={
        "help": "Hours after the last weekly run that finished ok in which another is the same window's again (a "
                "timer and a cron both installed, a manual run after the Sunday one, a DST hour repeated, a clock "
                "set back by less than this): it is skipped, exit 0, nothing exported. None = half of weekly.days; "
                "0 = never skip (a run of a run's window on purpose)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        from tracebridge.feedback.bots import check_bot_id

        p = [why] if (why := check_bot_id("weekly.feedback_legacy_bot_id", self.feedback_legacy_bot_id)) else []
        if not _finite_nonneg(self.lock_timeout_s):  # the lock refuses NaN
            p.append(f"weekly.lock_timeout_s={self.lock_timeout_s}: must be a finite number >= 0")
        if not 1 <= self.days <= MAX_REVIEW_DAYS:
            p.append(f"weekly.days={self.days}: must be in [1, {MAX_REVIEW_DAYS}]")
        if self.min_interval_h is not None and not _finite_nonneg(self.min_interval_h):
            p.append(f"weekly.min_interval_h={self.min_interval_h}: must be a finite number >= 0 (null = half of weekly.days)")
        if not all(_finite_nonneg(b) and b > 0 for b in (self.max_hours, self.max_usd)):  # NaN is no budget
            p.append(f"weekly.max_hours={self.max_hours}, weekly.max_usd={self.max_usd}: budgets must be finite and > 0")
        return p


@dataclass
class MonthlyConfig:
    """Phase 4: the monthly mapping/reward review of Telegram reactions."""

    ledger: str = field(default="memory/feedback/telegram-reactions.jsonl", metadata={"help": "Reaction ledger."})
    mapping: str = field(default="memory/feedback/reaction-mapping.json", metadata={"help": "Emoji → score map."})
    min_count: int = field(default=5, metadata={"help": "Net uses in the reviewed month an unmapped emoji needs for a proposal."})
    drift_alpha: float = field(default=0.05, metadata={"help": "Significance of the chi-square drift test."})
    min_rows: int = field(default=5, metadata={
        "help": "Ledger rows a month needs before a rule rests on it (fewer: the rule is not evaluated and says why)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = [f"monthly.{k}={v}: must be >= 1" for k, v in (("min_count", self.min_count), ("min_rows", self.min_rows))
             if v < 1]
        if not 0 < self.drift_alpha < 1:  # NaN too: it would never flag a drift
            p.append(f"monthly.drift_alpha={self.drift_alpha}: must be in (0, 1); typical 0.05")
        return p


@dataclass
class PolicySpec:
    """One behaviour policy of the phase-2 ablation: a training variant plus config overrides."""

    name: str = field(default="baseline", metadata={"help": "Name shown in the report (unique)."})
    variant: str = field(default="baseline", metadata={"help": "baseline | optimized (train Variant)."})
    overrides: list[str] = field(default_factory=list, metadata={
        "help": "TrainConfig key=value overrides that make this policy: recipe and data (data.recovery_weight=1) "
                "or behaviour (behaviour.tool_schemas=names, behaviour.response=calls_only, behaviour.system_prompt=...)."})


@dataclass
class Phase2Config:
    """Phase 2: ablation over the fixed replay set, naming a winner policy."""

    bundle: str | None = field(default=None, metadata={
        "help": "Export bundle to evaluate on; None = the shadow cycle's replay bundle (latest)."})
    train_config: str = field(default="configs/train/cpu_tiny.yaml", metadata={"help": "Base train config."})
    role: str = field(default="worker", metadata={
        "help": "Role whose policies are compared (the replay set's OpenClaw sessions carry worker turns)."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Seeds per policy (same for all)."})
    overrides: list[str] = field(default_factory=list, metadata={"help": "Overrides applied to every policy."})
    policies: list[PolicySpec] = field(default_factory=lambda: [
        PolicySpec("baseline", "baseline"), PolicySpec("optimized", "optimized")], metadata={
        "help": "Policies compared; the winner must beat the runner-up with a paired interval excluding 0."})
    n_boot: int = field(default=1000, metadata={"help": "Bootstrap resamples of the paired comparisons."})
    out_dir: str = field(default="artifacts/phase2", metadata={"help": "Where reports go (<UTC timestamp>/)."})

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        names = [x.name for x in self.policies]
        if len(names) < 2 or len(set(names)) != len(names):
            p.append(f"phase2.policies={names}: need at least two policies with unique names")
        for x in self.policies:
            if x.variant not in ("baseline", "optimized"):
                p.append(f"phase2.policies[{x.name}].variant={x.variant}: use baseline or optimized")
        if not self.seeds:
            p.append("phase2.seeds=[]: give at least one seed")
        if self.n_boot < 100:  # checked now: the bootstrap runs only after every policy has trained
            p.append(f"phase2.n_boot={self.n_boot}: use >= 100 resamples")
        return p


@dataclass
class OpsConfig:
    """Everything an operator schedules; each command reads its own block."""

    artifacts_dir: str = field(default="artifacts/phase1-shadow", metadata={
        "help": "Where shadow-cycle bundles go (one immutable <UTC timestamp>/ folder per cycle)."})
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    weekly: WeeklyConfig = field(default_factory=WeeklyConfig)
    monthly: MonthlyConfig = field(default_factory=MonthlyConfig)
    phase2: Phase2Config = field(default_factory=Phase2Config)
    agree_with: list[str] = field(default_factory=list, metadata={
        "help": "Other ops configs (paths, from the working folder) that name folders this one names again "
                "(shadow.work_dir, the feedback files, phase2.out_dir, weekly.bundles_dir; "
                "the legacy bot id, monthly.ledger/mapping; tracebridge.ops.agreement): `ops phase2-report`, "
                "`ops weekly` and `ops monthly-review` exit 2 before any work when one of them names another "
                "place (or bot) for a key the command reads. [] = no check."})

    def validate(self) -> list[str]:
        """Every problem of every block."""
        out = self.shadow.problems()
        for block in (self.review, self.canary, self.promotion, self.weekly, self.monthly, self.phase2):
            out += block.problems()
        return out
