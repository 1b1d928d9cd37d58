"""The context of a conversation row (``views_conversation``): its messages (``_Msg``), the last
``views.conversation_max_turns`` of them starting at a user turn (``_window``), and the longest tail of
those within ``views.context_max_chars`` by the same rule (``_fit``, what a message costs: ``_chars``).
``tracebridge.train.context_fit`` fits by tokens with the same rule at training time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class _Msg:
    """One message of the conversation, rendered for rows (``_Builder.render``), and the position
    of the event it came from."""

    msg: dict[str, Any]
    pos: int
    cut: bool = False  # a tool result cut to views.tool_output_max_chars
    failed: bool = False  # a tool result the trace records as failed (payload.ok false: OpenClaw isError)
    scoped: bool = False  # turn-scoped context (OpenClaw's runtime context): gone at the next user turn



def _window(history: list[_Msg], n: int) -> tuple[list[_Msg], int]:
    """The last ``n`` messages, starting at a user turn; and how many were dropped."""
    if len(history) <= n:
        return history, 0
    win = history[-n:]
    first = next((i for i, m in enumerate(win) if m.msg["role"] == "user"), None)
    if first is not None:
        win = win[first:]
    else:  # one long user turn: keep its user message, then the latest messages from an assistant one on
        user = next((m for m in reversed(history[:-n]) if m.msg["role"] == "user"), None)
        win = history[-(n - 1):]
        while win and win[0].msg["role"] == "tool":
            win = win[1:]
        win = ([user] if user else []) + win
    return win, len(history) - len(win)


def _chars(msg: dict[str, Any]) -> int:
    """What a message costs against ``views.context_max_chars``: its content and its calls' arguments."""
    n = len(msg["content"]) if isinstance(msg.get("content"), str) else 0
    for c in msg.get("tool_calls") or ():
        args = c["function"]["arguments"]
        n += len(args) if isinstance(args, str) else len(orjson.dumps(args))
    return n


def _fit(win: list[_Msg], budget: int) -> tuple[list[_Msg], bool]:
    """The longest tail of the window ``win`` within ``budget`` characters that keeps ``_window``'s rule
    (it starts at a user turn, or is the last user message then the latest messages from an assistant
    one on); else that user message alone, and True when even it is over the budget."""
    sizes = [_chars(m.msg) for m in win]
    left = sum(sizes)
    if left <= budget:
        return win, False
    last = max(i for i, m in enumerate(win) if m.msg["role"] == "user")  # row() checked that there is one
    for i, m in enumerate(win):  # oldest first: the first start that fits keeps the most
        if i <= last and m.msg["role"] == "user" and left <= budget:
            return win[i:], False
        if i > last and m.msg["role"] == "assistant" and sizes[last] + left <= budget:
            return [win[last], *win[i:]], False
        left -= sizes[i]
    return [win[last]], sizes[last] > budget
