"""Typed config of the Telegram reaction feedback (``configs/feedback/*.yaml``, kind ``feedback``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tracebridge.capture.reader import MAX_LINE_BYTES
from tracebridge.feedback.bots import check_bot_id

OTHER_CHUNK_RULES = ("batch", "chunk", "ignore")
OPENCLAW_ACCOUNT = re.compile(r"[a-z0-9_][a-z0-9_-]{0,63}", re.IGNORECASE)  # OpenClaw's account ids (account-id.ts)


@dataclass
class FeedbackConfig:
    """Where the feedback files live and how reactions become labels."""

    ledger: str = field(default="memory/feedback/telegram-reactions.jsonl", metadata={
        "help": "Append-only reaction ledger, one row per reaction change."})
    mapping: str = field(default="memory/feedback/reaction-mapping.json", metadata={
        "help": "Versioned emoji → score mapping (created with defaults by `feedback mapping init`)."})
    registry: str = field(default="memory/feedback/sent-chunks.jsonl", metadata={
        "help": "Registry of sent reply chunks (message id → batch, run, event)."})
    harvest_log: str = field(default="memory/feedback/harvest-log.jsonl", metadata={
        "help": "One row per harvest run (what the daily audit checks)."})
    quarantine: str = field(default="memory/feedback/quarantine.jsonl", metadata={
        "help": "Inputs that could not be harvested, with file:line: reason."})
    audit_dir: str = field(default="memory/feedback/audit", metadata={
        "help": "Where `feedback audit` writes <day>.json and <day>.md."})
    other_chunks: str = field(default="batch", metadata={
        "help": "Reaction on a chunk that is not the last of its batch: batch = labels the whole batch "
                "(like the last chunk), chunk = labels only that chunk's event, ignore = counted, not applied.",
        "choices": OTHER_CHUNK_RULES})
    late_after_s: float = field(default=86400.0, metadata={
        "help": "A reaction this long after its message was sent is 'late' in the audit (seconds)."})
    user_salt_env: str = field(default="TRACEBRIDGE_FEEDBACK_SALT", metadata={
        "help": "Environment variable with the secret salt for hashing Telegram user ids. Set it before the first "
                "harvest: a harvest with it unset is refused (unless allow_default_salt), and a harvest under "
                "another salt than the ledger's rows is refused. Unset, the host's salt file is read "
                "($TRACEBRIDGE_FEEDBACK_SALT_FILE, default ~/.config/tracebridge/feedback-salt, mode 600)."})
    allow_default_salt: bool = field(default=False, metadata={
        "help": "Harvest with user_salt_env unset, hashing user ids under the built-in salt, which is public: "
                "anyone can reverse those pseudonyms by trying Telegram user ids. For tests and demos only."})
    bot_id: str = field(default="", metadata={
        "help": "The bot whose updates this harvest, serve or chunk record handles, when several bots share these "
                "files: the number before ':' in its token (public; never the secret), or a name. Update ids, "
                "message ids and resume offsets are kept per bot. Empty = one bot, rows carry no bot id."})
    bot_token_env: str = field(default="", metadata={
        "help": "Environment variable holding the bot's token; with bot_id empty, bot_id is the number before "
                "':' in it (only that part is stored). Empty = not used."})
    legacy_bot_id: str = field(default="", metadata={
        "help": "The bot that wrote the ledger and registry rows that carry no bot id (written before bot_id was "
                "set). Needed once bot_id is set and such rows exist; they are read as that bot's, never rewritten."})
    openclaw_accounts: dict[str, str] = field(default_factory=dict, metadata={
        "help": "OpenClaw Telegram account id → bot id, for an OpenClaw host with several Telegram accounts "
                "(channels.telegram.accounts.<id>; override as openclaw_accounts.<id>=<bot id>): reactions from a "
                "session are the bot of its account (from the session key agent:<a>:telegram:<account>:direct:<peer>, "
                "else the session entry's deliveryContext, origin or lastAccountId of telegram; none = OpenClaw's "
                "'default' account); a session of an account not listed is quarantined, naming it. "
                "Empty = every OpenClaw reaction is bot_id's (one account)."})
    webhook_host: str = field(default="127.0.0.1", metadata={"help": "Webhook bind address (loopback only)."})
    webhook_port: int = field(default=8787, metadata={"help": "Webhook port (0 = any free port)."})
    webhook_secret_env: str = field(default="TELEGRAM_WEBHOOK_SECRET", metadata={
        "help": "Environment variable holding the X-Telegram-Bot-Api-Secret-Token value."})
    max_body_bytes: int = field(default=1 << 20, metadata={"help": "Largest webhook body accepted (bytes)."})
    max_line_bytes: int = field(default=MAX_LINE_BYTES, metadata={
        "help": "Largest getUpdates dump read whole, and longest line of a larger (JSONL) dump (bytes; default "
                "16 MiB): a longer line is quarantined with its size, read past in 1 MiB chunks."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        p = []
        p += [why for k in ("bot_id", "legacy_bot_id") if (why := check_bot_id(k, getattr(self, k)))]
        for account, bot in self.openclaw_accounts.items():
            if not OPENCLAW_ACCOUNT.fullmatch(str(account)):
                p.append(f"openclaw_accounts.{account}: not an OpenClaw account id (letters, digits, '_' or '-', 1-64)")
            if not bot:
                p.append(f"openclaw_accounts.{account}: empty; give the bot id of that account (e.g. the number "
                         "before ':' in its token)")
            p += [why] if (why := check_bot_id(f"openclaw_accounts.{account}", str(bot))) else []
        if self.other_chunks not in OTHER_CHUNK_RULES:
            p.append(f"other_chunks={self.other_chunks}: use one of {', '.join(OTHER_CHUNK_RULES)}")
        if self.late_after_s <= 0:
            p.append(f"late_after_s={self.late_after_s}: must be > 0; typical 86400")
        if self.webhook_host not in ("127.0.0.1", "::1", "localhost"):
            p.append(f"webhook_host={self.webhook_host}: the receiver binds to loopback only (put a TLS proxy in front)")
        if not 0 <= self.webhook_port <= 65535:
            p.append(f"webhook_port={self.webhook_port}: a TCP port 0..65535")
        if self.max_line_bytes < 1024:
            p.append(f"max_line_bytes={self.max_line_bytes}: must be >= 1024; typical {MAX_LINE_BYTES} (16 MiB)")
        if self.max_body_bytes < 1024:
            p.append(f"max_body_bytes={self.max_body_bytes}: must be >= 1024")
        return p
