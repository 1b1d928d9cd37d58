"""Fixtures of the feedback tests: a FeedbackConfig whose files live in a temp folder, and
Bot API update builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracebridge.feedback.config import FeedbackConfig

DATE = 1772000000  # 2026-02-25T06:13:20Z


@pytest.fixture
def cfg(tmp_path: Path) -> FeedbackConfig:
    d = tmp_path / "memory" / "feedback"
    return FeedbackConfig(ledger=str(d / "telegram-reactions.jsonl"), mapping=str(d / "reaction-mapping.json"),
                          registry=str(d / "sent-chunks.jsonl"), harvest_log=str(d / "harvest-log.jsonl"),
                          quarantine=str(d / "quarantine.jsonl"), audit_dir=str(d / "audit"))


def emoji(e: str) -> dict[str, str]:
    return {"type": "emoji", "emoji": e}


def reaction(uid: int, mid: int, old: list[str], new: list[str], *, chat: int = 42, user: int = 7,
             at: int = 0) -> dict[str, Any]:
    return {"update_id": uid, "message_reaction": {"chat": {"id": chat, "type": "private"}, "message_id": mid,
                                                   "user": {"id": user, "first_name": "Ada"}, "date": DATE + at,
                                                   "old_reaction": [emoji(e) for e in old],
                                                   "new_reaction": [emoji(e) for e in new]}}
