"""Typed config of curation: redaction/PII detectors, quality rules, dedup, the goal-family split
and the leakage checks. The export config (``tracebridge.export.config.ExportConfig``) nests these
sections; ``tracebridge redact`` reads the ``redaction`` section of the same YAML.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from tracebridge.capture.reader import MAX_LINE_BYTES
from tracebridge.schema.consistency import CONSISTENCY_RULES

# Detector categories (``redaction.detectors``); each yields one or more placeholder types.
DETECTORS = ("email", "phone", "card", "iban", "ip", "secrets", "auth_header", "terms", "ssn")
# detect-secrets plugins run on credential candidates. No entropy or keyword plugins by default:
# they flag hashes and ids, which traces are full of.
DEFAULT_SECRET_PLUGINS = [
    "AWSKeyDetector", "GitHubTokenDetector", "GitLabTokenDetector", "SlackDetector", "OpenAIDetector",
    "JwtTokenDetector", "PrivateKeyDetector", "BasicAuthDetector", "StripeDetector", "SendGridDetector",
    "NpmDetector", "PypiTokenDetector",
]
QUALITY_RULES = ("bad_json", "torn_tail", "missing_key", "schema_invalid", "schema_drift", "broken_lineage",
                 "duplicate_id", "non_monotonic_timestamp", *CONSISTENCY_RULES, "empty_payload", "incomplete_run",
                 "no_events", "events_dropped")
SPLITS = ("train", "validation", "test")
SOURCE_KINDS = ("sim", "openclaw", "agentlightning", "runtime")  # session.json source.kind
_TYPE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")


def family_key(name: str) -> str:
    """A goal family as the split names it: lower-cased, ends stripped, whitespace runs as one space (as
    ``goal_hash`` reads a goal's text), ``unknown`` when nothing is left. ``CSV``, ``csv`` and `` csv `` are
    one task: as three families they could land in train and test, and no leakage check saw it (their
    goal hashes differ, the family being part of them)."""
    return " ".join(name.lower().split()) or "unknown"


@dataclass
class RedactionConfig:
    """Redaction and PII scan, applied at capture (pass 1) and checked again at curation (pass 2)."""

    enabled: bool = field(default=True, metadata={
        "help": "Run both passes. false exports unredacted data: the bundle's governance is then not "
                "clean and `tracebridge push` refuses it (local debugging only)."})
    detectors: list[str] = field(default_factory=lambda: list(DETECTORS), metadata={
        "help": f"Detector categories to run, from {', '.join(DETECTORS)}."})
    terms: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "User terms by placeholder type, e.g. {NAME: [Alice Smith], HOST: [db01.corp]}; matched "
                "case-insensitively as whole words."})
    phone_regions: list[str] = field(default_factory=lambda: ["US"], metadata={
        "help": "Regions for national phone formats (phonenumbers); international +CC numbers match always."})
    ip_allowlist: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "0.0.0.0/32", "::1/128", "::/128"],
                                    metadata={"help": "Networks that are not personal data (loopback, unspecified)."})
    secret_plugins: list[str] = field(default_factory=lambda: list(DEFAULT_SECRET_PLUGINS), metadata={
        "help": "detect-secrets plugin class names run on credential candidates."})
    redact_unredacted_runs: bool = field(default=True, metadata={
        "help": "Runs captured without a redaction hook get pass 1 at export; false quarantines them."})

    def validate(self, prefix: str = "redaction") -> list[str]:
        """Every problem of this section, as ``key=value: what; fix``."""
        out = [f"{prefix}.detectors={d}: unknown; use {', '.join(DETECTORS)}" for d in self.detectors
               if d not in DETECTORS]
        for t, words in self.terms.items():
            if not _TYPE_NAME.match(t):
                out.append(f"{prefix}.terms.{t}: type names are UPPER_SNAKE (e.g. NAME, HOST)")
            if any(not str(w).strip() for w in words):
                out.append(f"{prefix}.terms.{t}: empty term")
        for net in self.ip_allowlist:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                out.append(f"{prefix}.ip_allowlist={net}: not an IP network (e.g. 10.0.0.0/8)")
        try:
            import phonenumbers

            out += [f"{prefix}.phone_regions={r}: unknown region code (e.g. US, GB, DE)"
                    for r in self.phone_regions if r not in phonenumbers.SUPPORTED_REGIONS]
        except ImportError:  # pragma: no cover - a core dependency
            pass
        return out


@dataclass
class QualityConfig:
    """Quality rules; a run that breaks one is quarantined with its reasons."""

    allow: list[str] = field(default_factory=lambda: ["unmatched_tool_result"], metadata={
        "help": f"Rules reported but not quarantined, from {', '.join(QUALITY_RULES)} (unredacted, "
                "redaction_pass2 and build_error always quarantine). Default: unmatched_tool_result (a tool "
                "result answering no call, as OpenClaw's transcript repair leaves them: the rows leave it out "
                "and keep the rest of the run); `quality.allow=[]` quarantines such runs."})
    open_ended_sources: list[str] = field(default_factory=lambda: ["openclaw"], metadata={
        "help": "session.json source.kind values whose runs record no episode_end (an OpenClaw session "
                "has no end its transcript records): for these, a written session.json is complete."})
    max_quarantined_pct: float = field(default=100.0, metadata={
        "help": "Export exits 1 when more than this % of runs is quarantined (100 = never)."})
    max_reasons_per_run: int = field(default=20, metadata={
        "help": "Reasons listed per quarantined run (all are counted)."})
    max_line_bytes: int = field(default=MAX_LINE_BYTES, metadata={
        "help": "Longest event line read (bytes, >= 1024; 16 MiB): a longer one is a bad_json problem of its run "
                "(its size named), read past in bounded memory."})

    def validate(self, prefix: str = "quality") -> list[str]:
        """Every problem of this section, as ``key=value: what; fix``."""
        out = [f"{prefix}.allow={r}: unknown rule; use {', '.join(QUALITY_RULES)}" for r in self.allow
               if r not in QUALITY_RULES]
        out += [f"{prefix}.open_ended_sources={k}: unknown source kind; use {', '.join(SOURCE_KINDS)}"
                for k in self.open_ended_sources if k not in SOURCE_KINDS]
        if not 0 <= self.max_quarantined_pct <= 100:
            out.append(f"{prefix}.max_quarantined_pct={self.max_quarantined_pct}: must be in 0..100")
        if self.max_reasons_per_run < 1:
            out.append(f"{prefix}.max_reasons_per_run={self.max_reasons_per_run}: must be >= 1")
        if self.max_line_bytes < 1024:
            out.append(f"{prefix}.max_line_bytes={self.max_line_bytes}: must be >= 1024; typical {MAX_LINE_BYTES} (16 MiB)")
        return out


@dataclass
class DedupConfig:
    """Run-level dedup by ``(goal_hash, key_steps_hash, final_outcome)``."""

    enabled: bool = field(default=True, metadata={"help": "Drop later runs whose fingerprint was seen."})
    report_clusters: int = field(default=50, metadata={"help": "Largest clusters listed in the report."})

    def validate(self, prefix: str = "dedup") -> list[str]:
        """Every problem of this section, as ``key=value: what; fix``."""
        if self.report_clusters < 0:  # a negative count would list all clusters but the smallest ones
            return [f"{prefix}.report_clusters={self.report_clusters}: must be >= 0 (0 = none listed)"]
        return []


# Splits a bundle must hold runs in, and why: with a share of 0 and no family fixed to one, it is empty.
NEEDED_SPLITS = {"train": "no run would be in the train split, so no role has rows to train on",
                 "test": "no run would be in the test split, which trials evaluate on (data.eval_split=test)"}


@dataclass
class SplitConfig:
    """Deterministic train/validation/test split by goal family."""

    ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1},
                                     metadata={"help": "Share of runs per split (sums to 1). train and test "
                                               "need a share > 0 unless `assign` fixes families to them; "
                                               "validation may be 0."})
    salt: str = field(default="tracebridge", metadata={
        "help": "Orders families before assignment; change it to draw a different split."})
    assign: dict[str, str] = field(default_factory=dict, metadata={
        "help": "Fixed family → split assignments, e.g. {calc: test}; the rest follow the ratios. With "
                "ratios.test=0 the test split holds exactly these families (the export fails when none of "
                "them is in the traces)."})
    by_goal_sources: list[str] = field(default_factory=lambda: ["openclaw", "agentlightning"], metadata={
        "help": "source.kind values split by family AND goal (`<family>/<goal_hash[:8]>`): an OpenClaw "
                "family is a chat kind (telegram, chat, cron...) and an Agent Lightning one the hook's or "
                "importer's goal_family (one per agent), so one bot or agent would get one family and one "
                "split; identical opening messages (or tasks) still stay in one split."})

    def validate(self, prefix: str = "split") -> list[str]:
        """Every problem of this section, as ``key=value: what; fix``."""
        out = [f"{prefix}.ratios.{k}: unknown split; use {', '.join(SPLITS)}" for k in self.ratios if k not in SPLITS]
        if any(v < 0 for v in self.ratios.values()):
            out.append(f"{prefix}.ratios: shares must be >= 0")
        if abs(sum(self.ratios.values()) - 1.0) > 1e-6:
            out.append(f"{prefix}.ratios={dict(self.ratios)}: must sum to 1 (e.g. train=0.8 validation=0.1 test=0.1)")
        out += [f"{prefix}.assign.{f}={s}: unknown split; use {', '.join(SPLITS)}"
                for f, s in self.assign.items() if s not in SPLITS]
        first: dict[str, str] = {}
        for f, s in self.assign.items():
            other = first.setdefault(family_key(f), f)
            if other != f and self.assign[other] != s:
                out.append(f"{prefix}.assign.{f}={s} and {prefix}.assign.{other}={self.assign[other]}: one family "
                           f"({family_key(f)!r}: case and spaces are ignored) fixed to two splits; keep one")
        out += [f"{prefix}.ratios.{s}=0: {why}; give it a share (e.g. {prefix}.ratios.{s}=0.1, the others "
                f"lowered to sum to 1) or fix families to it ({prefix}.assign.FAMILY={s})"
                for s, why in NEEDED_SPLITS.items() if not self.ratios.get(s) and s not in self.assign.values()]
        out += [f"{prefix}.by_goal_sources={k}: unknown source kind; use {', '.join(SOURCE_KINDS)}"
                for k in self.by_goal_sources if k not in SOURCE_KINDS]
        return out


@dataclass
class LeakageConfig:
    """Cross-split leakage: families and goal hashes (exact), prompts (MinHash near-duplicates)."""

    near_dup_threshold: float = field(default=0.8, metadata={"help": "Jaccard threshold for MinHash LSH."})
    num_perm: int = field(default=64, metadata={"help": "MinHash permutations (more = slower, more exact)."})
    shingle: int = field(default=3, metadata={"help": "Word n-gram size of the prompt shingles."})
    max_signatures_per_split: int = field(default=5000, metadata={
        "help": "Bounded memory: at most this many prompt signatures per split, a deterministic bottom-k "
                "sample by hash (the report says how many were sampled)."})
    fail_on_near_duplicates: bool = field(default=False, metadata={
        "help": "Exit 1 when near-duplicate prompts cross splits (they are always reported)."})

    def validate(self, prefix: str = "leakage") -> list[str]:
        """Every problem of this section, as ``key=value: what; fix``."""
        out = []
        if not 0 < self.near_dup_threshold <= 1:
            out.append(f"{prefix}.near_dup_threshold={self.near_dup_threshold}: must be in (0, 1]")
        if self.num_perm < 16:
            out.append(f"{prefix}.num_perm={self.num_perm}: must be >= 16")
        if self.shingle < 1 or self.max_signatures_per_split < 1:
            out.append(f"{prefix}: shingle and max_signatures_per_split must be >= 1")
        return out


@dataclass
class BalanceConfig:
    """Class-balance checks of the dataset report: a verifier that sees mostly ``continue`` learns to
    say ``continue``, and a set of successes alone teaches nothing about failure. Always reported
    (``report.json`` ``class_balance.checks``); they fail the export only with ``fail``."""

    min_verdict_share: float = field(default=0.10, metadata={
        "help": "Each verifier verdict (continue, replan, end) at least this share of the verifier_sft "
                "targets (the verdict the rows train on: observed, or expected with views.verifier_sft_target=ex_post)."})
    min_outcome_share: float = field(default=0.05, metadata={
        "help": "Successful and failed runs each at least this share of the exported runs whose outcome is known."})
    min_count: int = field(default=30, metadata={
        "help": "A check runs only on at least this many rows or runs (a handful says nothing about balance)."})
    fail: bool = field(default=False, metadata={
        "help": "Export exits 1 when a class-balance check fails (they are reported either way)."})

    def validate(self, prefix: str = "balance") -> list[str]:
        """Every problem of this section, as ``key=value: what; fix``."""
        out = [f"{prefix}.{k}={v}: must be in 0..{hi:.3g} (a share each of {n} classes can reach)"
               for k, v, n, hi in (("min_verdict_share", self.min_verdict_share, 3, 1 / 3),
                                   ("min_outcome_share", self.min_outcome_share, 2, 0.5)) if not 0 <= v <= hi]
        if self.min_count < 1:
            out.append(f"{prefix}.min_count={self.min_count}: must be >= 1")
        return out
