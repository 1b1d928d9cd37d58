"""Pure text parsing for OpenClaw transcripts: system-event lines, Telegram metadata in user
text, timestamps, and the tool-error taxonomy.

OpenClaw prepends queued system events to the next prompt as lines such as
``System: [2026-03-22 04:55:25 GMT+8] Exec completed (abc, code 0) :: ...``, and channel
plugins prefix user text with ``[Telegram Name (@user) id:N +5m 2026-01-22 23:34 UTC]`` (and a
trailing ``[message_id: N]``) or with fenced JSON blocks titled
``Conversation info (untrusted metadata)`` / ``Sender (untrusted metadata)``. These helpers split
such text into the user's message and structured metadata.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracebridge.schema.canonical import format_ts
from tracebridge.schema.events import ErrorKind

ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_SYSTEM_LINE = re.compile(r"^System: \[(?P<when>[^\]]*)\]\s?(?P<body>.*)$")
_TELEGRAM_PREFIX = re.compile(
    r"^\[Telegram (?P<name>.*?)(?: \(@(?P<username>[^)\s]+)\))? id:(?P<id>-?\d+)(?P<rest>[^\]]*)\]\s*")
_MESSAGE_ID_SUFFIX = re.compile(r"\s*\[message_id: (?P<mid>\d+)\]\s*$")
_META_BLOCK = re.compile(
    r"(?P<title>Conversation info|Sender) \(untrusted metadata\):?\s*```(?:json)?\s*(?P<body>\{.*?\})\s*```\s*",
    re.DOTALL)
_REACTION = re.compile(
    r"Telegram reaction (?P<action>added|removed): (?P<emoji>\S+) by (?P<who>.*?)"
    r"(?: \(@(?P<username>[^)\s]+)\))? on msg (?P<mid>\d+)")

# Substring rules over the lower-cased head of an error text, first match wins (order matters:
# "unknown tool" before "not found", "timed out" before "permission"). Plain ``in`` tests are
# much faster than one regex alternation on this hot path.
_ERROR_NEEDLES: tuple[tuple[ErrorKind, tuple[str, ...]], ...] = (
    (ErrorKind.UNKNOWN_TOOL, ("unknown tool", "tool not found", "no such tool", "tool not available")),
    (ErrorKind.TIMEOUT, ("timed out", "timeout", "time out", "etimedout", "deadline exceeded")),
    (ErrorKind.PERMISSION, ("permission denied", "eacces", "eperm", "forbidden", "not allowed", "unauthorized",
                            "unauthorised", " 401", " 403")),
    (ErrorKind.NOT_FOUND, ("not found", "no such file", "enoent", "does not exist", " 404")),
    (ErrorKind.BAD_ARGS, ("invalid argument", "invalid param", "invalid input", "missing required",
                          "validation error", "validation failed", "must be a", "must be one of",
                          "unknown parameter", "unknown argument", "unknown option")),
)
ERROR_HEAD_CHARS = 400


def to_timestamp(value: Any) -> str | None:
    """A source timestamp (ISO string or epoch ms/s number) in the schema's format, or None."""
    if type(value) is str:
        if len(value) == 24 and value[23] == "Z" and ISO_TIMESTAMP.match(value):
            return value
        try:
            t = dt.datetime.fromisoformat(value)  # reads a trailing Z (Python 3.11+)
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.UTC)
            return format_ts(t)
        except (ValueError, OverflowError):  # OverflowError: an offset moves it past year 1 or 9999 in UTC
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        secs = value / 1000.0 if value > 1e11 else float(value)  # epoch ms vs s
        try:
            return format_ts(dt.datetime.fromtimestamp(secs, dt.UTC))
        except (OverflowError, OSError, ValueError):
            return None
    return None


def classify_tool_error(text: str, details: Any = None) -> ErrorKind:
    """Map a tool's error text (its first 400 characters) and details onto the ErrorKind taxonomy."""
    if isinstance(details, dict) and details.get("status") == "timeout":
        return ErrorKind.TIMEOUT
    head = text[:ERROR_HEAD_CHARS].lower()
    for kind, needles in _ERROR_NEEDLES:
        for n in needles:
            if n in head:
                return kind
    return ErrorKind.RUNTIME_ERROR


def classify_llm_error(message: str, error: Any = None) -> str:
    """Episode-error kind of a failed model call: its ``errorMessage``, and the HTTP status, error
    code and type current OpenClaw records beside it (``error``: ``rows.ERROR_FACTS`` by trace name)."""
    if type(error) is dict:
        status = error.get("status")
        if status == 429:
            return "rate_limit"
        if status == 408 or status == 504:
            return ErrorKind.TIMEOUT.value
        message = " ".join([message, *(v for k in ("code", "type") if type(v := error.get(k)) is str)])
    m = message.lower()
    if "429" in m or "rate limit" in m or "rate_limit" in m or "quota" in m:
        return "rate_limit"
    if "timed out" in m or "timeout" in m:
        return ErrorKind.TIMEOUT.value
    if "context" in m and ("length" in m or "window" in m or "too long" in m):
        return "context_length"
    if any(n in m for n in _NETWORK):  # OpenClaw's own failover class for them (failover-matches.ts): timeout
        return ErrorKind.TIMEOUT.value
    if "abort" in m:
        return "aborted"
    return ErrorKind.RUNTIME_ERROR.value


# A model call's connection that failed or dropped mid-stream (undici's "terminated"): no user abort
_NETWORK = ("terminated", "connection error", "network error", "fetch failed", "socket hang up", "econnreset",
            "econnrefused", "econnaborted", "enotfound", "etimedout", "epipe", "eai_again", "enetunreach")


@dataclass
class UserText:
    """A user message split into the user's own words and the metadata around them."""

    text: str
    system_events: list[dict[str, Any]] = field(default_factory=list)
    channel: dict[str, Any] = field(default_factory=dict)

    @property
    def is_system_only(self) -> bool:
        """Whether the message holds system events and no words of the user."""
        return not self.text.strip() and bool(self.system_events)


def system_event_kind(body: str) -> str:
    """A short kind for a system-event body: exec, cron, telegram_reaction, heartbeat or other."""
    if body.startswith("Exec "):
        return "exec"
    if body.startswith("Cron"):
        return "cron"
    if "Telegram reaction" in body:
        return "telegram_reaction"
    if "HEARTBEAT" in body or "heartbeat" in body:
        return "heartbeat"
    return "other"


def parse_reaction_event(body: str) -> dict[str, Any] | None:
    """``Telegram reaction added: 👍 by Name (@user) on msg 123`` → its fields, or None."""
    m = _REACTION.search(body)
    if m is None:
        return None
    return {"action": m.group("action"), "emoji": m.group("emoji"), "who": m.group("who"),
            "username": m.group("username"), "message_id": int(m.group("mid"))}


def _meta_blocks(text: str, channel: dict[str, Any]) -> str:
    def take(m: re.Match[str]) -> str:
        key = "conversation" if m.group("title").startswith("Conversation") else "sender"
        try:
            channel[key] = orjson.loads(m.group("body"))
        except orjson.JSONDecodeError:
            channel[key] = {"unparsed": m.group("body")}
        return ""

    return _META_BLOCK.sub(take, text) if "(untrusted metadata)" in text else text


def _message_id_suffix(text: str) -> re.Match[str] | None:
    """``_MESSAGE_ID_SUFFIX.search(text)``, started where it can match: the whitespace before the
    last ``[message_id: `` (whatever follows that bracket holds no other). A search from the
    start tries the pattern at every character: ~2.5 us a Telegram message, most of the time the
    import spent on user text."""
    at = text.rfind("[message_id: ")
    if at < 0:
        return None
    return _MESSAGE_ID_SUFFIX.search(text, len(text[:at].rstrip()))


def split_user_text(text: str) -> UserText:
    """Split system-event lines, Telegram prefixes and metadata blocks off a user message."""
    events: list[dict[str, Any]] = []
    channel: dict[str, Any] = {}
    if text.startswith("System: ["):
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            m = _SYSTEM_LINE.match(lines[i])
            if m is None:
                if lines[i].strip():
                    break
                i += 1
                continue
            body = m.group("body")
            ev: dict[str, Any] = {"time": m.group("when"), "kind": system_event_kind(body), "text": body}
            reaction = parse_reaction_event(body) if ev["kind"] == "telegram_reaction" else None
            if reaction:
                ev["reaction"] = reaction
            events.append(ev)
            i += 1
        text = "\n".join(lines[i:])
    text = _meta_blocks(text, channel)
    m = _TELEGRAM_PREFIX.match(text)
    if m is not None:
        channel["channel"] = "telegram"
        sender = {"name": m.group("name"), "id": int(m.group("id"))}
        if m.group("username"):
            sender["username"] = m.group("username")
        channel["sender"] = sender
        if m.group("rest").strip():
            channel["context"] = m.group("rest").strip()
        text = text[m.end():]
        mid = _message_id_suffix(text)
        if mid is not None:
            channel["message_id"] = int(mid.group("mid"))
            text = text[:mid.start()]
    elif channel:
        chat = str((channel.get("conversation") or {}).get("chat_id") or "")
        channel.setdefault("channel", chat.split(":", 1)[0] if ":" in chat else "unknown")
    return UserText(text=text.strip(), system_events=events, channel=channel)
