"""A small builder of OpenClaw transcripts in the row shapes current OpenClaw writes, for tests.

The shared generator (shared/tools/make_openclaw_sessions.py) writes the classic shapes only; this
one adds what OpenClaw's own session manager and gateway append (openclaw/openclaw
``src/agents/sessions/session-manager-*.ts``, ``src/config/sessions/transcript.ts``,
``src/llm/types.ts``): leaf controls, side appends, resets, gateway-injected replies, context-free
commands (``excludeFromContext``), encrypted lines, and the message facts ``responseModel``,
``responseId``, ``diagnostics``, ``__openclaw``, ``openclawDisplayContent``, ``openclawDelivery``.

Entries are chained as the writer chains them: each is the child of the visible leaf (the last
entry not appended with ``appendMode: side``, or the target of the last leaf control).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T0 = 1772359200000  # 2026-03-01T10:00:00Z, in ms
USAGE = {"input": 10, "output": 2, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 12,
         "cost": {"input": 0.1, "output": 0.1, "cacheRead": 0, "cacheWrite": 0, "total": 0.2}}
ZERO = {k: 0 for k in ("input", "output", "cacheRead", "cacheWrite", "totalTokens")} | {
    "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}}


def text(s: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": s}]


class SessionBuilder:
    """Rows (and raw lines) of one v3 transcript; each method appends one entry and returns its id."""

    def __init__(self, session_id: str, cwd: str = "/home/u") -> None:
        self.lines: list[str] = []
        self.n = 0
        self.leaf: str | None = None
        self._row({"type": "session", "version": 3, "id": session_id, "cwd": cwd})

    def _ts(self) -> str:
        return f"2026-03-01T10:{self.n // 60:02d}:{self.n % 60:02d}.000Z"

    def _row(self, row: dict[str, Any]) -> None:
        self.lines.append(json.dumps({**row, "timestamp": self._ts()} if "timestamp" not in row else row))
        self.n += 1

    def entry(self, kind: str, side: bool = False, parent: Any = "leaf", rid: str | None = None, **fields: Any) -> str:
        """Append an entry of type ``kind`` under ``parent`` (default the visible leaf), with id ``rid``
        (default ``e<line index>``)."""
        rid = rid or f"e{self.n}"
        row = {"type": kind, "id": rid, "parentId": self.leaf if parent == "leaf" else parent, **fields}
        if side:
            row["appendMode"] = "side"
        self._row(row)
        if not side:
            self.leaf = rid
        return rid

    def message(self, message: dict[str, Any], **kw: Any) -> str:
        return self.entry("message", message={"timestamp": T0 + self.n * 1000, **message}, **kw)

    def user(self, s: str, side: bool = False, **extra: Any) -> str:
        return self.message({"role": "user", "content": text(s), **extra}, side=side)

    def assistant(self, content: list[dict[str, Any]], stop: str = "stop", model: str = "claude-sonnet-4-5",
                  provider: str = "anthropic", usage: dict[str, Any] = USAGE, **extra: Any) -> str:
        return self.message({"role": "assistant", "content": content, "api": "anthropic-messages",
                             "provider": provider, "model": model, "usage": usage, "stopReason": stop, **extra})

    def say(self, s: str, **extra: Any) -> str:
        return self.assistant(text(s), **extra)

    def call(self, call_id: str, tool: str, args: dict[str, Any], **extra: Any) -> str:
        return self.assistant([{"type": "toolCall", "id": call_id, "name": tool, "arguments": args}], "toolUse",
                              **extra)

    def result(self, call_id: str, tool: str, output: str, error: bool = False, **extra: Any) -> str:
        return self.message({"role": "toolResult", "toolCallId": call_id, "toolName": tool, "content": text(output),
                             "isError": error, **extra})

    def injected(self, s: str, stop: str = "stop", **extra: Any) -> str:
        """A reply the gateway wrote itself (a command's answer, a note): no model's."""
        return self.assistant(text(s), stop, model="gateway-injected", provider="openclaw", usage=ZERO, **extra)

    def context_free(self, command: str) -> tuple[str, str]:
        """A context-free command (``/status``) and the gateway's answer, both kept out of the model's context."""
        flags = {"excludeFromContext": True, "__openclaw": {"contextFreeCommand": True}}
        return self.user(command, **flags), self.injected(f"{command}: ok", **flags)

    def leaf_to(self, target: str | None) -> str:
        """A leaf control: the writer's visible leaf moves to ``target``; the next entry names the
        control as its parent, which continues ``target``."""
        return self.entry("leaf", targetId=target)

    def reset(self, reason: str = "new") -> str:
        return self.entry("reset", reason=reason)

    def encrypted(self) -> None:
        """A line of OpenClaw's transcript encryption (``ENCRYPTED:<iv>:<tag>:<data>``): not readable here."""
        self.lines.append("ENCRYPTED:0f1e2d3c:4b5a6978:c2VjcmV0IHJvdw==")
        self.n += 1

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in self.lines))
        return path
