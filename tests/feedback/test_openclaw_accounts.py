"""Reactions from an OpenClaw host with several Telegram accounts (``openclaw_accounts``).

OpenClaw runs one bot per Telegram account (``channels.telegram.accounts.<id>``) and names the account
in a session key with ``dmScope: per-account-channel-peer`` (``agent:<agent>:telegram:<account>:direct:
<peer>``, upstream ``src/routing/session-key.ts``) or in the session entry's ``deliveryContext``. Before
``openclaw_accounts``, every reaction line was stamped with the one configured ``bot_id``: the worker
account's reaction on its own message 500 in a private chat joined the planner's message 500 there
(private chats number messages per bot), and nothing said a session was of an account never configured.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from tests.feedback.conftest import feedback_cli
from tests.feedback.test_harvest import _quarantined, _transcript
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.harvest_openclaw import account_of, harvest_openclaw
from tracebridge.feedback.ledger import hash_user, read_ledger

PLANNER, WORKER = "111", "222"
ACCOUNTS = [f"openclaw_accounts.planner={PLANNER}", f"openclaw_accounts.Worker={WORKER}"]  # any case, as in OpenClaw
GROUP = -1001234567890


def _said(emoji: str, mid: int) -> str:
    return f"System: [2026-03-22 04:55:25 UTC] Telegram reaction added: {emoji} by Ada (@ada) on msg {mid}"


def _host(tmp_path: Path) -> Path:
    """An OpenClaw home: sessions of the planner and worker accounts and of two accounts not configured."""
    src = tmp_path / "home" / "agents" / "main" / "sessions"
    src.mkdir(parents=True)
    sessions: dict[str, Any] = {
        "agent:main:telegram:planner:direct:7": ("sp", _said("👍", 500)),  # per-account-channel-peer DMs
        "agent:main:telegram:worker:direct:7": ("sw", _said("❤", 500)),  # the worker's own 500 with Ada
        "agent:main:telegram:group:-1001234567890": ("sg", _said("👎", 600)),  # a group key names no account
        "agent:main:telegram:stranger:direct:9": ("ss", _said("👎", 3)),
        "agent:main:main": ("sm", _said("👍", 4)),  # dmScope main: no account anywhere = OpenClaw's default
    }
    index = {}
    for key, (sid, text) in sessions.items():
        _transcript(src / f"{sid}.jsonl", text)
        index[key] = {"sessionId": sid, "sessionFile": f"{sid}.jsonl"}
    index["agent:main:telegram:group:-1001234567890"]["deliveryContext"] = {
        "channel": "telegram", "to": f"telegram:{GROUP}", "accountId": "worker"}
    (src / "sessions.json").write_bytes(orjson.dumps(index))
    return tmp_path / "home"


def test_each_session_is_its_accounts_bot_and_unknown_accounts_are_quarantined(cfg, tmp_path):
    home = _host(tmp_path)
    code, doc = feedback_cli(cfg, "harvest", "--openclaw", str(home), *ACCOUNTS)
    assert code == 0, doc
    [rep] = doc["harvests"]
    assert (rep["read"], rep["accepted"], rep["quarantined"], rep["added"]) == (5, 3, 2, 3)
    assert doc["accounts"] == {
        "planner": {"bot_id": PLANNER, "read": 1, "accepted": 1, "applied": 1, "quarantined": 0},
        "worker": {"bot_id": WORKER, "read": 2, "accepted": 2, "applied": 2, "quarantined": 0},
        "stranger": {"bot_id": None, "read": 1, "accepted": 0, "applied": 0, "quarantined": 1},
        "default": {"bot_id": None, "read": 1, "accepted": 0, "applied": 0, "quarantined": 1}}
    for a in doc["accounts"].values():
        assert a["read"] == a["accepted"] + a["quarantined"]
    rows = {(r.raw["bot_id"], r.raw["openclaw_account"], r.chat, r.message_id, r.emoji)
            for r in read_ledger(cfg.ledger).rows}
    assert rows == {(PLANNER, "planner", hash_user(7), 500, "👍"), (WORKER, "worker", hash_user(7), 500, "❤"),
                    (WORKER, "worker", GROUP, 600, "👎")}
    reasons = sorted(q["reason"] for q in _quarantined(cfg))
    assert len(reasons) == 2
    assert "OpenClaw Telegram account 'default' (it names none: the default one)" in reasons[0]
    assert "account 'stranger', which openclaw_accounts does not list (planner, worker); add " \
           "openclaw_accounts.stranger=<that bot's id>" in reasons[1]
    assert "direct:9'" not in reasons[1] and "direct:u:" in reasons[1]  # the peer (the user's id) as its pseudonym
    # each bot's reaction labels the run of the message that bot sent: both sent a message 500 to Ada
    record_batch(cfg.registry, 7, [500], "runPlanner", "runPlanner:e", bot_id=PLANNER)
    record_batch(cfg.registry, 7, [500], "runWorker", "runWorker:e", bot_id=WORKER)
    record_batch(cfg.registry, GROUP, [600], "runGroup", "runGroup:e", bot_id=WORKER)
    _, labels = feedback_cli(cfg, "labels")
    assert {r: lab["run"]["feedback"]["reactions"] for r, lab in labels["runs"].items()} == {
        "runPlanner": {"👍": 1}, "runWorker": {"❤": 1}, "runGroup": {"👎": 1}}
    # harvested again: nothing added, the unknown accounts quarantined again (their lines are still unread)
    _, again = feedback_cli(cfg, "harvest", "--openclaw", str(home), *ACCOUNTS)
    assert (again["added"], again["duplicates"], again["quarantined"]) == (0, 3, 2)


def test_without_openclaw_accounts_every_reaction_is_bot_ids(cfg, tmp_path):
    """One account (or a host that maps none): as before, every session's reactions are ``bot_id``'s."""
    import dataclasses

    rep = harvest_openclaw(dataclasses.replace(cfg, bot_id=PLANNER), [_host(tmp_path)])
    assert (rep.read, rep.accepted, rep.quarantined, rep.accounts) == (5, 5, 0, {})
    rows = read_ledger(cfg.ledger).rows
    assert {r.raw["bot_id"] for r in rows} == {PLANNER} and not any("openclaw_account" in r.raw for r in rows)


def test_an_agent_databases_session_entry_names_its_account(cfg, tmp_path):
    # imported here, as tests/feedback/test_harvest.py does: that module imports hypothesis
    from tests.importers.test_openclaw_upstream import AGENT_DB_SCHEMA

    db_path = tmp_path / "home" / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    db_path.parent.mkdir(parents=True)
    line = _transcript(tmp_path / "s7.jsonl", _said("👍", 42)).read_bytes().splitlines()[1]
    key = f"agent:main:telegram:group:{GROUP}"
    with sqlite3.connect(db_path) as db:
        db.executescript(AGENT_DB_SCHEMA)
        db.execute("INSERT INTO sessions VALUES ('s7', ?, 0, 0, 'group', 'telegram', NULL)", (key,))
        db.execute("INSERT INTO session_entries VALUES (?, 's7', ?, 0)", (key, orjson.dumps(
            {"sessionId": "s7", "lastChannel": "telegram", "lastAccountId": "Worker"}).decode()))
        db.execute("INSERT INTO transcript_events VALUES ('s7', 1, ?, 0)", (line.decode(),))
    code, doc = feedback_cli(cfg, "harvest", "--openclaw", str(tmp_path / "home"), *ACCOUNTS)
    assert code == 0 and doc["accounts"] == {
        "worker": {"bot_id": WORKER, "read": 1, "accepted": 1, "applied": 1, "quarantined": 0}}
    [row] = read_ledger(cfg.ledger).rows
    assert (row.raw["bot_id"], row.chat, row.message_id) == (WORKER, GROUP, 42)


def test_account_of_reads_the_key_before_the_entry():
    assert account_of({"key": "agent:main:telegram:Planner:direct:7", "lastChannel": "telegram",
                       "lastAccountId": "worker"}) == "planner"
    assert account_of({"key": "agent:main:telegram:group:-100123", "origin": {"provider": "telegram",
                                                                              "accountId": "w"}}) == "w"
    assert account_of({"key": "agent:main:telegram:direct:7"}) is None
    assert account_of({"key": "agent:main:main", "lastChannel": "discord", "lastAccountId": "x"}) is None
    assert account_of(None) is None


def test_openclaw_accounts_are_checked_before_anything_is_harvested(cfg, tmp_path):
    code, out = feedback_cli(cfg, "harvest", "--openclaw", str(_host(tmp_path)), "openclaw_accounts.work=123456:AAEsecret",
                     "openclaw_accounts.a$b=5")
    assert code == 2 and "openclaw_accounts.work=<hidden>: looks like a bot token" in out
    assert "openclaw_accounts.a$b: not an OpenClaw account id" in out and "AAEsecret" not in out
    assert not Path(cfg.ledger).exists()
