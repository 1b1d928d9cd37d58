"""Typed configs of ``tracebridge export`` (``configs/export/``) and of storage for ``push`` and
``fetch`` (``configs/storage/``). Curation sections come from ``tracebridge.curate.config``.

Storage configs hold endpoints and regions only: credentials come from the environment
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``GOOGLE_APPLICATION_CREDENTIALS``),
and ``validate()`` refuses secret-looking option keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tracebridge.curate.config import (
    SOURCE_KINDS,
    BalanceConfig,
    DedupConfig,
    LeakageConfig,
    QualityConfig,
    RedactionConfig,
    SplitConfig,
)
from tracebridge.export.reward import RewardConfig

ROLES = ("planner", "worker", "verifier")
VERIFIER_TARGETS = ("observed", "ex_post")
VERIFY_REMOTE = ("size", "sha256")  # StorageConfig.verify_remote
# s3fs options (``options``) that change where or how S3 is reached, and the pyarrow ``S3FileSystem``
# option each becomes in Ray Tune's and Train's storage (``arrow_s3_options``); any other is refused there
ARROW_S3_OPTIONS = {"endpoint_url": "endpoint_override", "anon": "anonymous", "use_ssl": "scheme"}
SECRET_KEYS = ("key", "secret", "token", "password", "passwd", "credential", "access_key", "session")


MIN_BUDGET_CHARS = 200  # a smaller budget in characters is a mistake (tokens meant, or no room for a user turn)


def _budget_problem(key: str, value: int) -> str:
    """The problem of a character budget that is negative or below ``MIN_BUDGET_CHARS`` (0 is off)."""
    if value < 0:
        return f"views.{key}={value}: must be >= 0 (0 = no budget)"
    return (f"views.{key}={value}: under {MIN_BUDGET_CHARS} characters leaves no room for a message; the budget "
            "is in characters (about 4 per token), not tokens: use 0 for none or e.g. 6000")


@dataclass
class ViewsConfig:
    """How view rows are rendered (always through ``tracebridge.schema.roles``)."""

    system_prompts: dict[str, str] = field(default_factory=dict, metadata={
        "help": "System prompt per role (planner/worker/verifier); missing roles use roles.DEFAULT_SYSTEM_PROMPTS."})
    include_reasoning: bool = field(default=False, metadata={
        "help": "Keep model thinking in assistant targets (worker reasoning_summary as content, <think> blocks). "
                "Off: it stays in the traces only."})
    json_strings: bool = field(default=True, metadata={
        "help": "Write `tools` and tool-call `arguments` as JSON strings: Arrow (datasets) cannot hold "
                "differently-shaped argument objects faithfully; TRL and chat templates accept strings."})
    verifier_sft_target: str = field(default="observed", metadata={
        "help": "verifier_sft assistant turn: observed (the verdict given) or ex_post (the correct one)."})
    verifier_pair_text: str = field(default="verdict", metadata={
        "help": "verifier_pref_pairs turns: verdict (the bare 'verdict: X' line, what evaluation ranks) or "
                "canonical (plus a fixed feedback line per verdict); both sides always differ in the verdict only."})
    planner_pairs: bool = field(default=True, metadata={
        "help": "Write planner_pref_pairs: the reference plan (label expected_plan) chosen over a plan made "
                "that differs from it and was bad by evidence (fault label, cycle closed by replan, failed run)."})
    agentlightning: bool = field(default=True, metadata={
        "help": "Also write Agent Lightning's formats: triplets (agentlightning/triplets/<split>.jsonl) and, "
                "with views.agentlightning_messages, messages; false writes neither."})
    agentlightning_messages: bool = field(default=True, metadata={
        "help": "With views.agentlightning, also write Agent Lightning's messages format (OpenAI chat rows, "
                "agentlightning/messages/<split>.jsonl) of the planner/worker/verifier SFT rows. It repeats "
                "the SFT views in another shape (+26% bundle bytes, ~+5-15% export CPU on OpenClaw sessions): "
                "on by default because DESIGN.md exports both Agent Lightning formats; false if you do not "
                "train with Agent Lightning."})
    reward: RewardConfig = field(default_factory=RewardConfig, metadata={
        "help": "Triplet rewards: weighted mean of run outcome, the turn's own result and reactions "
                "(tracebridge.export.reward)."})
    conversational_sources: list[str] = field(default_factory=lambda: ["openclaw"], metadata={
        "help": "session.json source.kind values whose worker rows are chat conversations (one row per "
                "assistant turn, the conversation so far as its prompt; tracebridge.export.views_conversation) "
                "instead of one prompt per worker_input."})
    llm_call_sources: list[str] = field(default_factory=lambda: ["agentlightning"], metadata={
        "help": "session.json source.kind values whose worker rows are the recorded model calls (one row per "
                "worker_action with an llm block: its prompt messages and reply; tracebridge.export.views_llm), "
                "for agents that build each prompt themselves (Agent Lightning rollouts)."})
    conversation_max_turns: int = field(default=32, metadata={
        "help": "Conversational worker rows: most messages (user, assistant, tool) before the assistant turn; "
                "older ones are dropped so the context starts at a user turn."})
    conversation_rows: str = field(default="span", metadata={
        "help": "Conversational worker rows: span (one row per run of plain assistant turns in a user turn, "
                "every assistant turn after labels.context_messages a target: each turn's context is encoded "
                "once, not once per turn) or turn (one row per assistant turn, the last one the target)."})
    context_max_chars: int = field(default=0, metadata={
        "help": "Conversational worker rows: most characters (message contents and tool-call arguments; about 4 "
                "per token) of the context before the targets, after views.conversation_max_turns. The oldest "
                "messages are dropped (labels.context_dropped) so the context still starts at a user turn; the "
                "targets are never cut. A row whose minimal context (its user turn alone) is over the budget is "
                "written anyway and counted in report.json views.rows_trimmed.context_over_budget. 0 = no budget."})
    tool_output_max_chars: int = field(default=8000, metadata={
        "help": "Worker rows: a tool result longer than this many characters keeps its first two thirds and its "
                "last third of them, with a '[… N characters cut …]' line between (N = the characters cut; "
                "conversational rows: in context and between the targets alike; step rows: the 'Prior result' "
                "lines of a step's earlier calls; recorded model-call rows (views.llm_call_sources): the tool messages and "
                "tool_result blocks of each call's recorded prompt, so such a row differs from what the model saw "
                "only in the cut outputs). Only tool results are cut, never an assistant turn (a target). "
                "Each result cut is counted once in report.json views.tool_outputs (cut, chars_cut). The default "
                "8000 (~2000 tokens, a 2048-token max_length) keeps ordinary outputs whole and stops one huge "
                "output (a file read, a log dump) from being copied whole into every later row of its session; "
                "0 = tool results whole."})

    def validate(self) -> list[str]:
        """Every problem of this section (its ``reward`` included), as ``key=value: what; fix``."""
        out = [f"views.system_prompts.{r}: unknown role; use {', '.join(ROLES)}" for r in self.system_prompts
               if r not in ROLES]
        out += [f"views.conversational_sources={k}: unknown source kind; use {', '.join(SOURCE_KINDS)}"
                for k in self.conversational_sources if k not in SOURCE_KINDS]
        out += [f"views.llm_call_sources={k}: unknown source kind; use {', '.join(SOURCE_KINDS)}"
                for k in self.llm_call_sources if k not in SOURCE_KINDS]
        out += [f"views.llm_call_sources={k}: also in views.conversational_sources; a source's worker rows are "
                f"read one way" for k in self.llm_call_sources if k in self.conversational_sources]
        if self.conversation_rows not in ("span", "turn"):
            out.append(f"views.conversation_rows={self.conversation_rows}: use span or turn")
        if self.conversation_max_turns < 2:
            out.append(f"views.conversation_max_turns={self.conversation_max_turns}: must be >= 2 "
                       "(a user turn and the message before the assistant turn)")
        out += [_budget_problem(k, getattr(self, k)) for k in ("context_max_chars", "tool_output_max_chars")
                if getattr(self, k) < MIN_BUDGET_CHARS and getattr(self, k) != 0]
        if self.verifier_pair_text not in ("verdict", "canonical"):
            out.append(f"views.verifier_pair_text={self.verifier_pair_text}: use verdict or canonical")
        out += self.reward.validate()
        if self.verifier_sft_target not in VERIFIER_TARGETS:
            out.append(f"views.verifier_sft_target={self.verifier_sft_target}: use {' or '.join(VERIFIER_TARGETS)}")
        return out


@dataclass
class ToolsConfig:
    """Where the JSON schemas of worker rows' ``tools`` come from."""

    schemas_file: str | None = field(default=None, metadata={
        "help": "JSON file: a list of function-tool schemas (OpenAI format). None = none configured."})
    from_sim: bool = field(default=True, metadata={
        "help": "For sim runs, take the goal family's tool schemas (checked against the run's toolset_hash)."})


@dataclass
class FeedbackConfig:
    """Feedback labels (Telegram reactions) merged into ``meta.labels``; all None = off."""

    ledger: str | None = field(default=None, metadata={"help": "Reaction ledger JSONL (None = no feedback)."})
    mapping: str | None = field(default=None, metadata={"help": "Reaction → score mapping JSON."})
    registry: str | None = field(default=None, metadata={"help": "Message → run/event registry."})
    other_chunks: str = field(default="batch", metadata={
        "help": "Reaction on a chunk that is not the last of its reply: batch = labels the whole reply (like the "
                "last chunk), chunk = only that chunk's event, ignore = not applied. Keep it equal to "
                "`other_chunks` in configs/feedback/*.yaml, which `feedback labels` and the audit use.",
        "choices": ("batch", "chunk", "ignore")})
    legacy_bot_id: str = field(default="", metadata={
        "help": "The bot of the ledger and registry rows that name none (written before bot_id was set, when several "
                "bots share the feedback files); keep it equal to legacy_bot_id in configs/feedback/*.yaml."})

    def validate(self) -> list[str]:
        """Every problem, as ``feedback.key=value: what; fix``."""
        from tracebridge.feedback.bots import check_bot_id
        from tracebridge.feedback.config import OTHER_CHUNK_RULES

        p = [why] if (why := check_bot_id("feedback.legacy_bot_id", self.legacy_bot_id)) else []
        if self.other_chunks not in OTHER_CHUNK_RULES:
            p.append(f"feedback.other_chunks={self.other_chunks}: use one of {', '.join(OTHER_CHUNK_RULES)}")
        return p


@dataclass
class CorrectionsConfig:
    """Human corrections of trajectories (``tracebridge.corrections``) joined to runs at export; None = off."""

    file: str | None = field(default=None, metadata={
        "help": "Corrections JSONL (e.g. memory/corrections/corrections.jsonl): per line run_id, event_id (null = "
                "run level), labels, reviewer, time. Applied in memory; the traces are never edited. None = off."})


@dataclass
class ExportConfig:
    """``tracebridge export``: curation (redaction, quality, dedup, split, leakage) and views."""

    views: ViewsConfig = field(default_factory=ViewsConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    leakage: LeakageConfig = field(default_factory=LeakageConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    corrections: CorrectionsConfig = field(default_factory=CorrectionsConfig)

    def validate(self) -> list[str]:
        """Every problem of every section."""
        return (self.views.validate() + self.redaction.validate() + self.quality.validate()
                + self.dedup.validate() + self.split.validate() + self.leakage.validate() + self.balance.validate()
                + self.feedback.validate())


@dataclass
class RetryConfig:
    """Retries of a push or fetch whose storage fails for a transient reason (unreachable, timeout, reset):
    ``attempts`` tries in all, waiting ``backoff_s`` before the second and doubling up to
    ``max_backoff_s``. Missing files and refused permissions are not retried."""

    attempts: int = field(default=4, metadata={"help": "Tries in all (1 = no retry)."})
    backoff_s: float = field(default=1.0, metadata={"help": "Wait before the second try, doubled before each next."})
    max_backoff_s: float = field(default=30.0, metadata={"help": "Longest wait between two tries."})

    def problems(self, prefix: str) -> list[str]:
        """Every problem, as ``<prefix>.key=value: what; fix``."""
        p = [f"{prefix}.attempts={self.attempts}: must be >= 1"] if self.attempts < 1 else []
        return p + [f"{prefix}.{k}={getattr(self, k)}: must be >= 0" for k in ("backoff_s", "max_backoff_s")
                    if getattr(self, k) < 0]


@dataclass
class StorageConfig:
    """``tracebridge push`` / ``fetch``: non-secret filesystem options per protocol."""

    s3_endpoint_url: str | None = field(default=None, metadata={
        "help": "S3 API endpoint (MinIO, moto, ...); None = AWS or $AWS_ENDPOINT_URL."})
    s3_region: str | None = field(default=None, metadata={"help": "S3 region; None = from the environment."})
    gs_project: str | None = field(default=None, metadata={"help": "GCP project for gs:// (gcsfs extra)."})
    options: dict[str, str] = field(default_factory=dict, metadata={
        "help": "Extra fsspec options (non-secret only; credentials come from the environment)."})
    update_latest: bool = field(default=True, metadata={
        "help": "After publishing, point <URI>/LATEST at the bundle (fetch URI resolves it)."})
    verify_remote: str = field(default="size", metadata={
        "help": "How `push` checks a bundle already published there before trusting it: size = one listing, every "
                "manifest file present with its size (cheap) | sha256 = also hash every remote file (reads the "
                "whole remote copy). Missing or different files are sent again.", "choices": VERIFY_REMOTE})
    request_timeout_s: float = field(default=30.0, metadata={
        "help": "s3:// and gs://: most seconds a request waits to connect or for the next bytes of its answer (a "
                "storage that accepts and never answers fails the try); the S3 client's own retries are off, `retry.*` "
                "retries (gcsfs still tries each request 6 times, a count fixed in its code)."})
    retry: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> list[str]:
        """Every problem: credential-like ``options`` keys, ``verify_remote``, and those of ``retry``."""
        bad = [] if self.verify_remote in VERIFY_REMOTE else [
            f"verify_remote={self.verify_remote}: use one of {', '.join(VERIFY_REMOTE)}"]
        if not self.request_timeout_s > 0:
            bad.append(f"request_timeout_s={self.request_timeout_s}: must be > 0")
        return [f"options.{k}: looks like a credential; set it in the environment instead"
                for k in self.options if any(s in k.lower() for s in SECRET_KEYS)] + bad + self.retry.problems("retry")

    def fs_options(self, protocol: str) -> dict[str, Any]:
        """fsspec keyword options for ``protocol`` (no credentials)."""
        opts: dict[str, Any] = {k: _flag(v) for k, v in self.options.items()}
        if protocol in ("s3", "s3a"):
            ck = {k: v for k, v in (("endpoint_url", self.s3_endpoint_url), ("region_name", self.s3_region)) if v}
            if ck:
                opts["client_kwargs"] = ck
            # bounded requests, tried once: botocore (5 attempts) and s3fs (5 more around each) would otherwise
            # retry a silent endpoint for half an hour under every one of retry.attempts
            opts["config_kwargs"] = {"connect_timeout": self.request_timeout_s, "read_timeout": self.request_timeout_s,
                                     "retries": {"total_max_attempts": 1}}
        elif protocol in ("gs", "gcs"):
            from aiohttp import ClientTimeout  # gcsfs's HTTP client (the gcs extra brings it)

            # per request, to connect and for each read of the answer (not in all: a large upload may take long);
            # gcsfs's default is aiohttp's 5 min for the whole request, and it tries each request 6 times
            opts["requests_timeout"] = ClientTimeout(sock_connect=self.request_timeout_s,
                                                     sock_read=self.request_timeout_s)
            if self.gs_project:
                opts["project"] = self.gs_project
        return opts

    def arrow_s3_problems(self) -> list[str]:
        """``options`` that Ray Tune's and Train's pyarrow S3 cannot take (``arrow_s3_options``), as
        ``options.key=value: what; fix``: left out, Tune's checkpoints would reach another S3 than our copies."""
        p = [f"options.{k}={v}: an s3fs option pyarrow's S3 (Ray Tune's and Train's checkpoints) has no equivalent "
             f"for; use s3_endpoint_url, s3_region or options.{', options.'.join(ARROW_S3_OPTIONS)}, or remove it"
             for k, v in self.options.items() if k not in ARROW_S3_OPTIONS]
        url = self.options.get("endpoint_url")
        if url and self.s3_endpoint_url and url != self.s3_endpoint_url:
            p.append(f"options.endpoint_url={url}: differs from s3_endpoint_url={self.s3_endpoint_url}; set one")
        return p

    def arrow_s3_options(self) -> dict[str, Any]:
        """``pyarrow.fs.S3FileSystem`` keyword options (Ray Tune's and Train's storage) for the S3 that
        ``fs_options("s3")`` reaches: the same endpoint, region and ``options`` (``ARROW_S3_OPTIONS``), each try
        waiting at most ``request_timeout_s`` to connect or for the next bytes of the answer. The endpoint falls
        back to ``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL`` here because pyarrow does not read them as
        botocore does; no credentials (each process finds its own in its environment, and pyarrow would pickle
        explicit ones into every trial).

        Raises:
            ValueError: ``arrow_s3_problems`` (an option pyarrow cannot take: s3fs's copies and Tune's
                would reach different storage).
        """
        if bad := self.arrow_s3_problems():
            raise ValueError("; ".join(bad))
        endpoint = (self.s3_endpoint_url or self.options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL"))
        opts: dict[str, Any] = {"connect_timeout": self.request_timeout_s, "request_timeout": self.request_timeout_s}
        if endpoint:
            opts["endpoint_override"] = endpoint
        if self.s3_region:
            opts["region"] = self.s3_region
        if "anon" in self.options:
            opts["anonymous"] = bool(_flag(self.options["anon"]))
        if "use_ssl" in self.options and not _flag(self.options["use_ssl"]):
            opts["scheme"] = "http"
        return opts


def _flag(value: Any) -> Any:
    """An ``options`` value as fsspec wants it: 'true'/'false' (all a ``dict[str, str]`` override can hold)
    as booleans (s3fs took ``use_ssl='false'`` as true), anything else as it is."""
    low = value.lower() if isinstance(value, str) else None
    return {"true": True, "false": False}.get(low, value) if low is not None else value
