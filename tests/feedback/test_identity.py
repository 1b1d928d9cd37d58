"""One person, one pseudonym: OpenClaw's reaction lines name a user by @username (or by name), the Bot API by
numeric id; where a row knows both, every row of that user is read under the id's pseudonym."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.feedback.conftest import reaction
from tests.feedback.test_harvest import _transcript
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.harvest_openclaw import harvest_openclaw
from tracebridge.feedback.join import labels_report
from tracebridge.feedback.ledger import hash_user, read_ledger

SALT = "host-secret"
GROUP = -1001234567890
ANN = 5550001
WHEN = "2026-02-25 06:13:20 UTC"  # DATE


def _openclaw(cfg, tmp_path: Path, key: str, *lines: str) -> None:
    src = tmp_path / "agents" / "main" / "sessions"
    src.mkdir(parents=True, exist_ok=True)
    _transcript(src / "s1.jsonl", *(f"System: [{WHEN}] {line}" for line in lines))
    (src / "sessions.json").write_bytes(orjson.dumps({key: {"sessionId": "s1", "sessionFile": "s1.jsonl"}}))
    assert harvest_openclaw(cfg, [tmp_path]).quarantined == 0


def _with_username(upd: dict, username: str) -> dict:
    upd["message_reaction"]["user"]["username"] = username
    return upd


def test_a_username_and_an_id_of_one_user_are_one_pseudonym(cfg, tmp_path, monkeypatch):
    """Ann's 👍 came from OpenClaw's line (@ann_smith); her removing it came as a Bot API update (id and
    username). Under two pseudonyms the removal cancelled nothing: the 👍 stayed on the run."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    record_batch(cfg.registry, GROUP, [500], "runA", "runA:e")
    _openclaw(cfg, tmp_path, f"agent:main:telegram:group:{GROUP}", "Telegram reaction added: 👍 by Ann (@ann_smith) on msg 500")
    removed = _with_username(reaction(1, 500, ["👍"], [], chat=GROUP, user=ANN, at=60), "ann_smith")
    harvest_updates(cfg, [("t:1", removed)], "getUpdates", ["t"])
    rows = read_ledger(cfg.ledger).rows
    assert {r.user for r in rows} == {hash_user(ANN, SALT)}
    text = Path(cfg.ledger).read_text(encoding="utf-8")
    assert "ann_smith" not in text and str(ANN) not in text  # the link is kept as pseudonyms only
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    assert doc["runs"] == {} and doc["reactions"]["present"] == 0


def test_a_link_learned_later_applies_to_the_rows_before_it(cfg, tmp_path, monkeypatch):
    """Ann 👍 on OpenClaw, then 👍 again by Bot API (another bot's copy in one supergroup would count once):
    with two pseudonyms her one reaction on the reply counted twice (score 2)."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    record_batch(cfg.registry, GROUP, [500, 501], "runA", "runA:e")
    _openclaw(cfg, tmp_path, f"agent:main:telegram:group:{GROUP}", "Telegram reaction added: 👍 by Ann (@ann_smith) on msg 500")
    added = _with_username(reaction(1, 501, [], ["👍"], chat=GROUP, user=ANN, at=60), "ann_smith")
    harvest_updates(cfg, [("t:1", added)], "getUpdates", ["t"])
    run = labels_report(cfg.ledger, cfg.mapping, cfg.registry)["runs"]["runA"]["run"]
    assert (run["feedback_score"], run["feedback_count"]) == (1.0, 1)  # one user's 👍 on one reply


def test_in_a_direct_chat_the_reactor_is_the_chats_user(cfg, tmp_path, monkeypatch):
    """A direct chat's session key names its user's id: a reaction there is that user's even without a
    @username (OpenClaw then names them only by their display name)."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    record_batch(cfg.registry, ANN, [500], "runA", "runA:e")
    _openclaw(cfg, tmp_path, f"agent:main:telegram:direct:{ANN}", "Telegram reaction added: ❤ by Ann on msg 500")
    harvest_updates(cfg, [("t:1", reaction(1, 500, ["❤"], ["👎"], chat=ANN, user=ANN, at=60))], "getUpdates", ["t"])
    assert {r.user for r in read_ledger(cfg.ledger).rows} == {hash_user(ANN, SALT)}
    assert labels_report(cfg.ledger, cfg.mapping, cfg.registry)["runs"]["runA"]["run"]["feedback"]["reactions"] == \
        {"👎": 1}  # the ❤ was replaced, not kept beside the 👎


def test_without_a_link_the_pseudonyms_stay_apart(cfg, tmp_path, monkeypatch):
    """Only one of them known: an @username that no update paired with an id, a display name outside a direct
    chat (names are not unique), or a username two accounts held: no row is merged on a guess."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    _openclaw(cfg, tmp_path, f"agent:main:telegram:group:{GROUP}",
              "Telegram reaction added: 👍 by Ann on msg 500", "Telegram reaction added: 👍 by Bo (@bo_b) on msg 501",
              "Telegram reaction added: 👍 by Cy (@cy_c) on msg 502")
    ups = [reaction(1, 503, [], ["👍"], chat=GROUP, user=ANN),
           _with_username(reaction(2, 504, [], ["👍"], chat=GROUP, user=7), "cy_c"),
           _with_username(reaction(3, 505, [], ["👍"], chat=GROUP, user=8), "cy_c")]  # the username changed hands
    harvest_updates(cfg, [(f"t:{i}", u) for i, u in enumerate(ups)], "getUpdates", ["t"])
    users = {r.message_id: r.user for r in read_ledger(cfg.ledger).rows}
    assert users == {500: hash_user("Ann", SALT), 501: hash_user("bo_b", SALT), 502: hash_user("cy_c", SALT),
                     503: hash_user(ANN, SALT), 504: hash_user(7, SALT), 505: hash_user(8, SALT)}


def test_only_a_direct_chats_peer_is_taken_for_the_reactor(cfg, tmp_path, monkeypatch):
    """A group session's key names the group, not a reactor, even when its number is positive."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    _openclaw(cfg, tmp_path, "agent:main:telegram:group:12345", "Telegram reaction added: 👍 by Bo (@bo_b) on msg 5")
    [row] = read_ledger(cfg.ledger).rows
    assert row.user == hash_user("bo_b", SALT) and "user_alias" not in row.raw
