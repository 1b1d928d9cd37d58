"""Config of the daily shadow cycle (the ``shadow:`` block of ``configs/ops/*.yaml``).

The cycle works only inside ``work_dir`` (its own trace root, replay set and state), never in the
production trace root or production configs: shadow training must not change production.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

OPTIMIZE_MODES = ("local", "cluster", "off")


def _metric_problems(metric: str) -> list[str]:
    """``shadow.optimize.metric`` must name a role and a metric whose direction is known (the uplift's sign)."""
    from tracebridge.eval.metrics import HIGHER_IS_BETTER, metric_direction

    if metric_direction(metric) is not None:
        return []
    known = ", ".join(sorted(HIGHER_IS_BETTER))
    why = (f"shadow.optimize.metric={metric}: use role/name with a known metric (its direction orients the "
           f"uplift): one of {known}; e.g. worker/action_match")
    return [why]


@dataclass
class ReplayConfig:
    """The fixed replay set: chosen once, then the same runs every day."""

    size: int = field(default=32, metadata={"help": "Runs in the replay set when it is first frozen."})
    salt: str = field(default="replay-1", metadata={
        "help": "Mixed into the run-id hash that picks the set; a new salt (or deleting the replay "
                "manifest) draws a new set."})


@dataclass
class OptimizeConfig:
    """The optimization smoke: baseline vs optimized on the cycle's bundle."""

    mode: str = field(default="local", metadata={
        "help": "local = a tiny run here (tracebridge.train.trial.run_trial) | cluster = tracebridge submit "
                "per `cluster` | off = skip (the step is recorded as skipped)."})
    train_config: str = field(default="configs/train/cpu_tiny.yaml", metadata={
        "help": "Train config of each variant's trial (the variant key is overridden)."})
    role: str = field(default="worker", metadata={
        "help": "Role trained in the smoke (OpenClaw sessions carry worker turns only)."})
    metric: str = field(default="worker/action_match", metadata={
        "help": "Metric (role/name, a name of tracebridge.eval.metrics.HIGHER_IS_BETTER) whose paired difference "
                "is the cycle's uplift, oriented so a gain is positive: optimized − baseline where higher is "
                "better, baseline − optimized where lower is (e.g. worker/error_recurrence)."})
    overrides: list[str] = field(default_factory=list, metadata={
        "help": "key=value overrides for both trials (e.g. sft.max_steps=20)."})
    sweep_config: str = field(default="configs/sweep/smoke.yaml", metadata={"help": "mode=cluster: sweep config."})
    cluster: str = field(default="local", metadata={"help": "mode=cluster: cluster config or address."})

    def __post_init__(self) -> None:
        # YAML 1.1 reads a bare `off` as false: `shadow.optimize.mode=off` (or `mode: off`) arrives as "False"
        if self.mode == "False":
            self.mode = "off"


@dataclass
class RetentionConfig:
    """What old cycles keep (``tracebridge.ops.retention``): run as each cycle's last step and by
    ``tracebridge shadow-prune``. Only bulky, reproducible work files are removed; every file of
    ``artifacts_dir/<cycle>/`` (manifest, reports, audits, logs: what the review reads) is kept forever."""

    enabled: bool = field(default=True, metadata={
        "help": "Prune at the end of every cycle (never fails the cycle: what could not be removed is "
                "counted in the manifest's `retention`); false = only `tracebridge shadow-prune` prunes."})
    keep_cycles: int = field(default=7, metadata={
        "help": "Newest finished cycles (with a manifest, ok or failed; the running one included) that keep "
                "their export bundle (work_dir/bundles/<bundle id>, the whole history: GBs on a real host) and "
                "optimize folder (work_dir/optimize/<cycle id>: model weights). Older cycles lose only those. "
                ">= 1; disk use is about keep_cycles bundles."})
    remove_crashed: bool = field(default=True, metadata={
        "help": "Remove the optimize folder (model weights) of a crashed cycle (artifacts_dir/<cycle>/ without "
                "manifest.json) once a newer cycle finished; its artifacts folder stays (a few KB: the review lists "
                "the crash from it). false = keep both."})
    pin: list[str] = field(default_factory=list, metadata={
        "help": "Work folders never pruned, named by a path or a string holding their name (cycle id, bundle id), "
                "e.g. the optimize folder of a model in canary before it is promoted. Every policy in the "
                "promotion history (promotion.state_dir) is pinned without this."})
    pin_configs: list[str] = field(default_factory=list, metadata={
        "help": "Other ops configs (configs/ops/phase2.yaml, canary.yaml) whose phase2.bundle, canary policy ids "
                "and shadow.retention.pin are pinned too, so a bundle named only there stays. One that cannot be "
                "read holds back every bundle and model (a problem in the report) until it is fixed."})
    keep_weekly: int = field(default=4, metadata={
        "help": "Newest weekly runs (`tracebridge ops weekly`) whose bundle (weekly.bundles_dir/weekly-<stamp>/, "
                "pushed to weekly.storage_uri, re-exportable) and staged run links (.weekly-<stamp>/) stay; older "
                "ones are removed. Their manifests (weekly.artifacts_dir/<stamp>/) stay forever. >= 1."})
    keep_phase2: int = field(default=3, metadata={
        "help": "Newest phase-2 reports whose trial folder (phase2.out_dir/.work-<stamp>/: trained models, "
                "rebuilt by --from-manifest) and bundle stay; older trial folders are removed (not while their "
                "run is going). Report folders (phase2.out_dir/<stamp>/) stay forever. >= 1."})


@dataclass
class FeedbackBot:
    """A further bot sharing the feedback files: its getUpdates dumps, harvested under its id."""

    bot_id: str = field(default="", metadata={
        "help": "The bot's id: the number before ':' in its token (public; never the secret), or a name."})
    updates: list[str] = field(default_factory=list, metadata={"help": "This bot's getUpdates JSON dumps."})


@dataclass
class ShadowConfig:
    """One daily shadow cycle."""

    sources: list[str] = field(default_factory=list, metadata={
        "help": "OpenClaw session folders or transcripts to import (e.g. ~/.openclaw); empty = use the "
                "runs already in work_dir/traces."})
    work_dir: str = field(default="shadow", metadata={
        "help": "The cycle's own state: traces/, replay/, bundles/, optimize/, import state. Isolated from "
                "production; bundles/ and optimize/ are pruned per `retention`."})
    export_config: str | None = field(default=None, metadata={"help": "configs/export/*.yaml; None = defaults."})
    export_overrides: list[str] = field(default_factory=list, metadata={
        "help": "key=value export overrides of both exports (cycle and replay), after export_config, e.g. "
                "views.context_max_chars=4000 so worker rows fit the optimize step's train.max_length."})
    export_cache: bool = field(default=True, metadata={
        "help": "Keep built runs in work_dir/export-cache/<step> (`export --cache`): each day's export builds only "
                "new or changed runs; about one bundle's views of disk."})
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    feedback_ledger: str = field(default="memory/feedback/telegram-reactions.jsonl", metadata={
        "help": "Reaction ledger audited each cycle."})
    feedback_mapping: str = field(default="memory/feedback/reaction-mapping.json", metadata={
        "help": "Reaction mapping used by the audit."})
    feedback_updates: list[str] = field(default_factory=list, metadata={
        "help": "Telegram Bot API getUpdates JSON dumps to harvest reactions from (besides `sources`)."})
    feedback_bot_id: str = field(default="", metadata={
        "help": "When several bots share the feedback files: the bot of `feedback_updates` and of the OpenClaw "
                "reaction lines of `sources` (feedback bot_id: the number before ':' in its token, or a name). "
                "Empty = one bot, rows carry no bot id."})
    feedback_legacy_bot_id: str = field(default="", metadata={
        "help": "The bot of the ledger and registry rows that name none (written before bot ids were set); "
                "passed to the harvest, the audit and the export's labels (feedback legacy_bot_id)."})
    feedback_bots: list[FeedbackBot] = field(default_factory=list, metadata={
        "help": "Further bots sharing the files, each harvested under its own id from its own dumps, "
                "e.g. [{bot_id: '2002', updates: [dumps/bot2.json]}]; needs feedback_bot_id."})
    feedback_openclaw_accounts: dict[str, str] = field(default_factory=dict, metadata={
        "help": "OpenClaw Telegram account id -> bot id for the harvest of `sources` (feedback openclaw_accounts; "
                "override as shadow.feedback_openclaw_accounts.<id>=<bot id>), for an OpenClaw host with several "
                "Telegram accounts. Empty = every OpenClaw reaction is feedback_bot_id's."})
    feedback_harvest_log: str = field(default="memory/feedback/harvest-log.jsonl", metadata={
        "help": "Harvest log (each harvest run appends a line): the audit's evidence that it ran."})
    chunk_registry: str = field(default="memory/feedback/sent-chunks.jsonl", metadata={
        "help": "Registry of chunked Telegram replies (for the chunk-policy check)."})
    chunk_policy_doc: str = field(default="docs/feedback-chunk-policy.md", metadata={
        "help": "Where the chunked-message label policy is documented (checked to exist)."})
    runtime_hook: bool = field(default=True, metadata={"help": "Run the Agent Lightning runtime-hook smoke."})
    skip: list[str] = field(default_factory=list, metadata={
        "help": "Step names not to run (recorded as skipped, e.g. [optimize] on a machine without torch); "
                "a name that is no step is refused before the cycle starts."})
    parallel_steps: int = field(default=2, metadata={
        "help": "Steps run at once when their dependencies allow (1 = one after the other)."})
    lock_timeout_s: float = field(default=0.0, metadata={
        "help": "Seconds to wait for another cycle's lock; 0 = fail at once (cron must not pile up)."})
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    def problems(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        if self.optimize.mode not in OPTIMIZE_MODES:
            p.append(f"shadow.optimize.mode={self.optimize.mode}: use one of {', '.join(OPTIMIZE_MODES)}")
        if self.optimize.mode != "off":
            p += _metric_problems(self.optimize.metric)
        if self.replay.size < 1:
            p.append(f"shadow.replay.size={self.replay.size}: must be >= 1")
        if self.parallel_steps < 1:
            p.append(f"shadow.parallel_steps={self.parallel_steps}: must be >= 1")
        if not (math.isfinite(self.lock_timeout_s) and self.lock_timeout_s >= 0):  # the lock refuses NaN
            p.append(f"shadow.lock_timeout_s={self.lock_timeout_s}: must be a finite number >= 0")
        if self.retention.keep_cycles < 1:  # the running cycle's own bundle is always kept
            p.append(f"shadow.retention.keep_cycles={self.retention.keep_cycles}: must be >= 1; default 7")
        for key, default in (("keep_weekly", 4), ("keep_phase2", 3)):  # the newest may be a running one
            if getattr(self.retention, key) < 1:
                p.append(f"shadow.retention.{key}={getattr(self.retention, key)}: must be >= 1; default {default}")
        return p + self._bot_problems()

    def _bot_problems(self) -> list[str]:
        """Problems of the feedback bot keys (what the harvest would refuse, said before the cycle runs)."""
        from tracebridge.feedback.bots import check_bot_id

        ids = [("shadow.feedback_bot_id", self.feedback_bot_id), ("shadow.feedback_legacy_bot_id",
                                                                  self.feedback_legacy_bot_id)]
        ids += [(f"shadow.feedback_bots[{i}].bot_id", b.bot_id) for i, b in enumerate(self.feedback_bots)]
        p = [why for k, v in ids if (why := check_bot_id(k, v))]
        if (self.feedback_legacy_bot_id or self.feedback_bots) and not self.feedback_bot_id:
            p.append("shadow.feedback_bot_id is empty but " + ("shadow.feedback_legacy_bot_id" if
                     self.feedback_legacy_bot_id else "shadow.feedback_bots") + " is set: the harvest of "
                     "feedback_updates and sources would write rows of no bot; set it to their bot's id")
        p += self._account_problems()
        seen = {self.feedback_bot_id} - {""}
        for i, b in enumerate(self.feedback_bots):
            if not b.bot_id or not b.updates:
                p.append(f"shadow.feedback_bots[{i}]: give its bot_id and at least one updates file")
            elif b.bot_id in seen:
                p.append(f"shadow.feedback_bots[{i}].bot_id={b.bot_id}: named twice; list each bot once "
                         "(several dumps of one bot go in its updates)")
            seen.add(b.bot_id)
        return p

    def _account_problems(self) -> list[str]:
        """``feedback_openclaw_accounts`` as the harvest checks ``openclaw_accounts`` (named by the shadow key)."""
        from tracebridge.feedback.config import FeedbackConfig

        accounts = FeedbackConfig(openclaw_accounts=dict(self.feedback_openclaw_accounts)).validate()
        return ["shadow.feedback_" + why for why in accounts if why.startswith("openclaw_accounts.")]
