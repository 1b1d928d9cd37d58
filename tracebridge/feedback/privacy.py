"""Pseudonymising what the feedback harvest keeps of an input it could not use (the quarantine).

The ledger stores a Telegram user as ``hash_user(id, salt)``; the quarantine kept the input whole, so a
bad reaction update left the user's id, names and @username in ``quarantine.jsonl`` in the clear, and an
OpenClaw reaction line its ``by Name (@user)``. ``pseudonymised`` gives the input with every user
(``user``, ``from``, ``actor_chat``, ``sender_chat`` objects) as ``{"id": "u:…"}`` (the ledger's pseudonym,
so a quarantined update can still be matched with the ledger) plus its other non-personal fields,
a private chat without the user's names and with its id (the user's) as that pseudonym, and the name in a ``Telegram reaction … by …`` line as that
pseudonym; ``pseudonymous_key`` does the same for the peer of an OpenClaw session key.
"""

from __future__ import annotations

import re
from typing import Any

from tracebridge.feedback.ledger import hash_user, private_chat

_PEOPLE = ("user", "from", "actor_chat", "sender_chat")
_NAMES = ("first_name", "last_name", "username", "usernames", "active_usernames")
_BY = re.compile(
    r"(Telegram reaction (?:added|removed): \S+ by )(.*?)((?: \(@[^)\s]+\))?)( on msg \d+)"
)
# the same in a line that is no JSON (a torn line of a dump): best effort over its text
_ID_TEXT = re.compile(r'("(?:user|from|actor_chat|sender_chat)"\s*:\s*\{\s*"id"\s*:\s*)(-?\d+)')
_CHAT_TEXT = re.compile(r'("chat"\s*:\s*\{\s*"id"\s*:\s*)(\d+)')  # positive: a private chat, the user's id
_NAME_TEXT = re.compile(r'"(first_name|last_name|username)"\s*:\s*"(?:[^"\\]|\\.)*"')


def _person(obj: dict[str, Any], salt: str) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in _NAMES}
    if "id" in out and not str(out["id"]).startswith("u:"):
        out["id"] = hash_user(out["id"], salt)
    return out


def _text(text: str, salt: str) -> str:
    def by(m: re.Match[str]) -> str:
        who = m.group(3).strip()[2:-1] or m.group(
            2
        )  # hashed as the harvest hashes it: @username, else the name
        return f"{m.group(1)}{hash_user(who, salt)}{m.group(4)}"

    text = _BY.sub(by, text) if "Telegram reaction" in text else text
    if '"id"' in text:
        text = _ID_TEXT.sub(lambda m: f'{m.group(1)}"{hash_user(m.group(2), salt)}"', text)
        text = _CHAT_TEXT.sub(lambda m: f'{m.group(1)}"{private_chat(int(m.group(2)), salt)}"', text)
    return (
        _NAME_TEXT.sub(lambda m: f'"{m.group(1)}":"<withheld>"', text) if "name" in text else text
    )


def pseudonymised(raw: Any, salt: str) -> Any:
    """``raw`` (an update, a transcript row, a line's text) with the users in it pseudonymised."""
    if isinstance(raw, str):
        return _text(raw, salt)
    if isinstance(raw, list):
        return [pseudonymised(v, salt) for v in raw]
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in _PEOPLE and isinstance(v, dict):
            out[k] = _person(v, salt)
        elif k == "chat" and isinstance(v, dict):
            private = v.get("type") == "private"
            out[k] = {n: private_chat(x, salt) if n == "id" else x for n, x in v.items()
                      if not (private and n in _NAMES)}
        else:
            out[k] = pseudonymised(v, salt)
    return out


def pseudonymous_key(key: Any, salt: str) -> Any:
    """An OpenClaw session key ``agent:<a>:telegram:[<account>:]direct:<user id>`` with the user's id (the
    peer of a direct chat) as its pseudonym; other keys as they are."""
    parts = str(key).split(":") if isinstance(key, str) else []
    for i in range(len(parts) - 1):
        if parts[i] in ("direct", "dm") and parts[i + 1].isdigit():
            parts[i + 1] = hash_user(parts[i + 1], salt)
            return ":".join(parts)
    return key
