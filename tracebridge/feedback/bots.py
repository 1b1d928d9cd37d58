"""Bot identity in the shared feedback files (ledger, chunk registry, harvest log).

Telegram numbers updates per bot, and in a private chat each bot numbers its messages on its own
while the chat id is the user's for every bot: a planner bot and a worker bot both deliver update
1000 and both send message 5 to chat 42. So with ``bot_id`` set (the public number before ``:`` in
the bot's token, or a name), every ledger and registry row carries ``bot_id``, its dedupe key names
the bot (``tg@<bot>:…``, ``tgc@<bot>:…``, ``<bot>@<chat>:<message>``) and update ids, count states,
resume offsets and the join's message lookups are kept per bot.

Rows written before ``bot_id`` was set carry none; they belong to ``legacy_bot_id`` (or, when that is
unset too, to the unnamed single bot). Nothing is rewritten: a legacy ``tg:<uid>:…`` key is read as
``tg@<legacy>:<uid>:…``, so a dump harvested again under the bot that first harvested it is still
deduped. A harvest or chunk record under a ``bot_id`` refuses files that hold rows of no bot while
``legacy_bot_id`` is unset (they could be this bot's or another's), and a harvest without ``bot_id``
refuses files that hold rows of named bots; both errors say what to set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

BOT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
NO_BOT = "(none)"  # the label of rows of no bot in reports (a bot id cannot hold parentheses)
_USER_PREFIXES = ("tg:", "tg@")
_LEGACY_PREFIXES = ("tg:", "tgc:")


def check_bot_id(key: str, value: str) -> str | None:
    """Why ``value`` cannot be a bot id (``key=value: what; fix``), or None (also for empty)."""
    if not value or BOT_ID.fullmatch(value):
        return None
    if ":" in value:
        return (f"{key}=<hidden>: looks like a bot token (<id>:<secret>); give only the number before ':' "
                "(the bot's public id): the secret must never go into the feedback files")
    return f"{key}={value}: letters, digits, '_' or '-' (1-64), e.g. the number before ':' in the bot's token"


def bot_of(cfg: Any) -> str:
    """The bot a harvest or chunk record is for: ``cfg.bot_id``, else the public id before ':' in the token
    held by the environment variable ``cfg.bot_token_env`` (if one is named), else "" (a single bot).

    Raises:
        ValueError: ``bot_token_env`` names a variable that is unset or holds no ``<id>:<secret>`` token.
    """
    if cfg.bot_id or not cfg.bot_token_env:
        return str(cfg.bot_id)
    token = os.environ.get(cfg.bot_token_env, "")
    bot, sep, _ = token.partition(":")
    if not sep or not bot.isdigit():
        raise ValueError(f"bot_token_env={cfg.bot_token_env}: the variable is unset or holds no bot token "
                         "(<number>:<secret>); set it, or set bot_id")
    return bot


def row_bot(raw: dict[str, Any], legacy: str = "") -> str:
    """The bot of a ledger or registry row: its ``bot_id``, else ``legacy`` ("" = the unnamed bot)."""
    bot = raw.get("bot_id")
    return str(bot) if bot else legacy


def label(bot: str) -> str:
    """A bot as reports name it (``(none)`` for rows of no bot)."""
    return bot or NO_BOT


def tagged(prefix: str, bot: str) -> str:
    """A key prefix for ``bot``: ``tg`` → ``tg@<bot>`` (unchanged for the unnamed bot)."""
    return f"{prefix}@{bot}" if bot else prefix


def is_user_key(key: Any) -> bool:
    """Whether a ledger key is that of a user's reaction from the Bot API (any bot)."""
    return isinstance(key, str) and key.startswith(_USER_PREFIXES)


def canonical_key(raw: dict[str, Any], legacy: str = "") -> Any:
    """A row's dedupe key as its bot would write it now: a row of no bot written as ``tg:…``/``tgc:…``
    belongs to ``legacy`` and reads as ``tg@<legacy>:…`` (the file keeps its bytes)."""
    key = raw.get("key")
    if legacy and not raw.get("bot_id") and isinstance(key, str) and key.startswith(_LEGACY_PREFIXES):
        prefix, _, rest = key.partition(":")
        return f"{tagged(prefix, legacy)}:{rest}"
    return key


def check_files(where: str, rows: Iterable[dict[str, Any]], bot: str, legacy: str, *,
                counts: Callable[[dict[str, Any]], bool] = lambda raw: True) -> None:
    """Refuse to add rows of ``bot`` to a file whose rows cannot be told apart from them.

    Args:
        rows: the file's rows (raw dicts); ``counts(raw)`` says whether a row of no bot is ambiguous.

    Raises:
        ValueError: ``bot`` is named and rows of no bot exist while ``legacy`` is unset, or ``bot`` is
            unnamed and rows of named bots exist or ``legacy`` is set.
    """
    named: set[str] = set()
    unnamed = 0
    for raw in rows:
        if raw.get("bot_id"):
            named.add(str(raw["bot_id"]))
        elif counts(raw):
            unnamed += 1
    check_tally(where, named, unnamed, bot, legacy)


def check_tally(where: str, named: set[str], unnamed: int, bot: str, legacy: str) -> None:
    """``check_files`` of a file whose rows were tallied already: the bots ``named`` by its rows and the number of
    ``unnamed`` rows that count (a cache of the ledger keeps the tally as rows are appended).

    Raises:
        ValueError: as ``check_files``.
    """
    if legacy and not bot:  # its rows would name no bot, so they would read as the legacy bot's
        raise ValueError(f"{where}: legacy_bot_id={legacy} is set but bot_id is not; set bot_id to this bot's id")
    if bot and unnamed and not legacy:
        raise ValueError(f"{where}: {unnamed} rows were written before bot_id was set and name no bot, so they "
                         f"cannot be told from this bot's (bot_id={bot}); set legacy_bot_id to the bot that wrote "
                         f"them (legacy_bot_id={bot} if it was this one); the rows are not rewritten")
    if not bot and named:
        raise ValueError(f"{where}: holds rows of bots {', '.join(sorted(named))} (bot_id), and these are of no "
                         "named bot; set bot_id to this bot's id (the number before ':' in its token)")
