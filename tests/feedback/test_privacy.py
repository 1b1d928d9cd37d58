"""The quarantine keeps users as the ledger does: pseudonyms, never Telegram ids, names or @usernames."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.feedback.conftest import reaction
from tests.feedback.test_telegram import _transcript
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.harvest_openclaw import harvest_openclaw
from tracebridge.feedback.ledger import hash_user
from tracebridge.feedback.privacy import pseudonymous_key

SALT = "host-secret"
GROUP = -1001234567890


def test_a_quarantined_update_keeps_the_user_as_a_pseudonym(cfg, monkeypatch):
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    bad = reaction(1, 10, [], ["👍"], user=987654321, chat=GROUP)
    bad["message_reaction"]["user"].update(username="ada_l", last_name="Lovelace", is_bot=False)
    bad["message_reaction"]["date"] = 9999999999  # after the harvest: quarantined
    torn = '{"update_id": 2, "message_reaction": {"user": {"id": 987654321, "first_name": "Ada", "userna'
    from tracebridge.feedback.telegram import ReadError

    rep = harvest_updates(
        cfg,
        [("t:0", bad), ("t:1", ReadError.of("invalid JSON", torn.encode()))],
        "getUpdates",
        ["t"],
    )
    assert rep.quarantined == 2
    text = Path(cfg.quarantine).read_text(encoding="utf-8")
    for secret in ("987654321", "Ada", "ada_l", "Lovelace"):
        assert secret not in text, secret
    raw = orjson.loads(orjson.loads(text.splitlines()[0])["raw"])
    assert raw["message_reaction"]["user"] == {"id": hash_user(987654321, SALT), "is_bot": False}
    assert (
        raw["message_reaction"]["chat"]["id"] == GROUP
        and raw["message_reaction"]["date"] == 9999999999
    )
    assert hash_user(987654321, SALT) in text.splitlines()[1]  # the torn line's id too


def test_an_openclaw_line_in_quarantine_names_no_user(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    src = tmp_path / "sessions"
    src.mkdir()
    _transcript(
        src / "a.jsonl",
        "System: [2026-13-45 04:55:25 UTC] Telegram reaction added: 👍 by Ada (@ada_l) on msg 1",
        "System: [2026-03-22 04:55:25 UTC] Telegram reaction added: 👍 from Ada Lovelace via msg 2",
    )
    rep = harvest_openclaw(cfg, [src])
    assert rep.quarantined == 2
    known, unknown = (
        orjson.loads(line) for line in Path(cfg.quarantine).read_text(encoding="utf-8").splitlines()
    )
    log = Path(cfg.harvest_log).read_text(encoding="utf-8")
    for secret in ("Ada", "ada_l", "Lovelace"):  # reasons go to reports and the harvest log
        assert secret not in known["raw"] + known["reason"] + unknown["reason"] + log, secret
    assert hash_user("ada_l", SALT) in known["raw"]  # the pseudonym the ledger gives that user
    assert unknown["reason"].startswith(
        "message.content: system event 'Telegram reaction added: 👍 <the rest"
    )
    assert (
        "from Ada Lovelace via msg 2" in unknown["raw"]
    )  # a shape no rule knows: kept whole, to be read


def test_a_session_key_names_the_peer_by_its_pseudonym():
    key = "agent:main:telegram:stranger:direct:987654321"
    assert (
        pseudonymous_key(key, SALT)
        == f"agent:main:telegram:stranger:direct:{hash_user('987654321', SALT)}"
    )
    assert (
        pseudonymous_key("agent:main:telegram:group:-1001", SALT)
        == "agent:main:telegram:group:-1001"
    )
