"""Fixtures of the feedback tests: a FeedbackConfig whose files live in a temp folder, and
Bot API update builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tracebridge.feedback.config import FeedbackConfig

DATE = 1772000000  # 2026-02-25T06:13:20Z


@pytest.fixture(autouse=True)
def salt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host's salt file (``feedback.salt``), in the test's folder and absent: a test that unsets the salt's
    variable must never read or make the real ``~/.config/tracebridge/feedback-salt``."""
    path = tmp_path / "config" / "tracebridge" / "feedback-salt"
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT_FILE", str(path))
    return path


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


def feedback_cli(cfg: FeedbackConfig, *args: str) -> tuple[int, Any]:
    """``tracebridge feedback ARGS --json`` on ``cfg``'s files: (exit code, its JSON; its text on exit 2)."""
    from tracebridge.cli import app

    files = [f"{k}={getattr(cfg, k)}" for k in ("ledger", "mapping", "registry", "harvest_log", "quarantine",
                                                 "audit_dir")]
    res = CliRunner().invoke(app, ["feedback", *args, *files, "--json"])
    assert res.exit_code in (0, 1, 2), res.output
    return res.exit_code, res.output if res.exit_code == 2 else orjson.loads(res.output)
