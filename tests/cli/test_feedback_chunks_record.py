"""``tracebridge feedback chunks record`` refuses a batch it cannot register faithfully (exit 2, every
problem named, nothing written). Before, ``--message-ids 80,80`` wrote one row whose ``chunk_count``
was 2, a batch that never had its last chunk; an empty ``--run-id``, ``--event-id`` or ``--chat`` wrote
rows no reaction or run could ever join; and a typo in the ids printed Python's own
``invalid literal for int() with base 10``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


def _record(registry: Path, chat: str, ids: str, run_id: str, event_id: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["feedback", "chunks", "record", "--registry", str(registry), "--chat", chat,
                                   "--message-ids", ids, "--run-id", run_id, "--event-id", event_id, "--json"])
    return res.exit_code, json.loads(res.stdout)


@pytest.mark.parametrize("chat, ids, run_id, event_id, says", [
    ("-100123", "80,80", "r3", "r3:e", "message_ids: 80 given more than once"),
    ("-100123", "70", "", "r:e", "run_id: empty"),
    ("-100123", "70", "r", " ", "event_id: empty"),
    ("", "70", "r", "r:e", "chat: empty"),
    ("-100123", "0,-5", "r", "r:e", "message_ids: 0, -5: Telegram message ids are positive integers"),
    ("-100123", "5x,6", "r", "r:e", "--message-ids 5x,6: '5x' not an integer"),
    # a chat id stored as text joined no reaction (their chat ids are integers); was recorded, exit 0
    ("abc", "70", "r", "r:e", "--chat abc: not an integer; Telegram chat ids are integers"),
    ("-10x", "70", "r", "r:e", "--chat -10x: not an integer"),
    ("\uff15", "70", "r", "r:e", "--chat \uff15: not an integer"),
    # beyond 64 bits: a traceback from the registry's JSON writer, exit 1
    ("99999999999999999999", "70", "r", "r:e", "--chat 99999999999999999999: out of range"),
    ("-100123", "70,99999999999999999999", "r", "r:e", "'99999999999999999999' out of range"),
])
def test_a_batch_that_cannot_be_joined_is_refused_and_nothing_is_written(tmp_path: Path, chat: str, ids: str,
                                                                          run_id: str, event_id: str,
                                                                          says: str) -> None:
    registry = tmp_path / "sent-chunks.jsonl"
    code, doc = _record(registry, chat, ids, run_id, event_id)
    assert code == 2 and says in doc["error"], doc
    assert not registry.exists() or registry.read_text() == ""


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    code, doc = _record(tmp_path / "sent-chunks.jsonl", "", "7,7", "", "")
    assert code == 2
    for says in ("chat: empty", "message_ids: 7 given more than once", "run_id: empty", "event_id: empty"):
        assert says in doc["error"], doc


def test_a_good_batch_registers_one_row_per_chunk_ending_in_its_last(tmp_path: Path) -> None:
    registry = tmp_path / "sent-chunks.jsonl"
    code, doc = _record(registry, "-100123", "80,81", "r3", "r3:e")
    assert code == 0 and doc["chunks"] == 2, doc
    rows = [json.loads(x) for x in registry.read_text().splitlines()]
    assert [(r["message_id"], r["chunk_index"], r["chunk_count"]) for r in rows] == [(80, 0, 2), (81, 1, 2)]


def test_a_chat_id_with_blanks_around_it_is_the_integer(tmp_path: Path) -> None:
    registry = tmp_path / "sent-chunks.jsonl"
    code, doc = _record(registry, " -100123 ", "80", "r3", "r3:e")
    assert code == 0, doc
    assert json.loads(registry.read_text().splitlines()[0])["chat"] == -100123
