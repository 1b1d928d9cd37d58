"""A private chat's id is its user's Telegram id: the feedback files, reports and quarantine keep it as the
user's salted pseudonym, as they keep users; files an older version wrote with it in the clear still join."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import orjson

from tests.feedback.conftest import DATE, feedback_cli, reaction
from tracebridge.feedback.audit import write_audit
from tracebridge.feedback.chunks import read_registry, record_batch
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.join import labels_report
from tracebridge.feedback.ledger import hash_user, salt_id

SALT = "host-secret"
ANN = 5550001  # the user, and so the id of her private chat with the bot
DAY = dt.datetime.fromtimestamp(DATE, dt.UTC).date()
OLD_BATCH = "b:" + hashlib.sha256(f"{ANN}|11|runA".encode()).hexdigest()[:16]  # as older versions derived it


def _everything(cfg) -> str:
    """Every feedback file's text (ledger, registry, harvest log, quarantine, audit)."""
    folder = Path(cfg.ledger).parent
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()
                     and not p.name.endswith(".lock"))


def test_a_private_chat_id_is_stored_and_reported_only_as_the_users_pseudonym(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    code, out = feedback_cli(cfg, "chunks", "record", "--chat", str(ANN), "--message-ids", "11,12", "--run-id", "runA",
                             "--event-id", "runA:e")
    assert code == 0, out
    bad = reaction(3, 13, [], [{"type": "weird"}], chat=ANN, user=ANN)  # quarantined: an unknown ReactionType
    dump = tmp_path / "updates.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": [
        reaction(1, 12, [], ["👍"], chat=ANN, user=ANN), reaction(2, 99, [], ["👎"], chat=ANN, user=ANN), bad]}))
    code, doc = feedback_cli(cfg, "harvest", "--updates", str(dump))
    assert code == 0 and (doc["added"], doc["quarantined"]) == (2, 1)
    code, lab = feedback_cli(cfg, "labels")
    assert lab["runs"]["runA"]["run"]["feedback_score"] == 1.0  # the reaction still joins the message the bot sent
    assert lab["reactions"]["orphan_samples"] == [{"chat": hash_user(ANN, SALT), "message_id": 99, "emoji": "👎"}]
    code, audit = feedback_cli(cfg, "audit", "--day", DAY.isoformat())
    assert audit["orphans"] == [{"chat": hash_user(ANN, SALT), "message_id": 99, "emoji": "👎"}]
    assert hash_user(ANN, SALT) in _everything(cfg)
    for text in (_everything(cfg), orjson.dumps([doc, lab, audit]).decode()):
        assert str(ANN) not in text  # was in the ledger, the registry, the quarantine and every report
    reg = [orjson.loads(line) for line in Path(cfg.registry).read_text().splitlines()]
    assert {r["chat"] for r in reg} == {hash_user(ANN, SALT)} and {r["salt_id"] for r in reg} == {salt_id(SALT)}


def test_a_group_chat_keeps_its_id(cfg, monkeypatch):
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    record_batch(cfg.registry, -1001234567890, [5], "runG", "runG:e")
    harvest_updates(cfg, [("t:1", reaction(1, 5, [], ["👍"], chat=-1001234567890))], "getUpdates", ["t"])
    [row] = [orjson.loads(line) for line in Path(cfg.ledger).read_text().splitlines()]
    assert row["chat"] == -1001234567890 and "salt_id" not in orjson.loads(Path(cfg.registry).read_bytes())
    assert labels_report(cfg.ledger, cfg.mapping, cfg.registry)["runs"]["runG"]["run"]["feedback_score"] == 1.0


def _old_row(uid: int, mid: int, change: str, emoji: str, at: int = 0) -> dict:
    """A ledger row as versions before this one wrote it: the private chat's id in the clear."""
    t = dt.datetime.fromtimestamp(DATE + at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"time": t, "chat": ANN, "message_id": mid, "user": hash_user(ANN, SALT), "emoji": emoji, "change": change,
            "count": 1, "score": 1.0, "mapping_version": 1, "source": "getUpdates", "update_id": uid,
            "key": f"tg:{uid}:{change}:{emoji}", "harvested_at": t, "salt_id": salt_id(SALT)}


def test_files_of_an_older_version_still_load_and_join(cfg, tmp_path, monkeypatch):
    """An older version kept the private chat's id in the clear in both files: they load, join, and join the
    rows harvested now (pseudonymised), and nothing is rewritten."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    folder = Path(cfg.ledger).parent
    folder.mkdir(parents=True)
    old_reg = [{"batch_id": OLD_BATCH, "chat": ANN, "message_id": m, "chunk_index": i, "chunk_count": 2, "run_id": "runA",
                "event_id": "runA:e", "time": "2026-02-25T06:00:00.000Z", "key": f"{ANN}:{m}"}
               for i, m in enumerate((11, 12))]
    Path(cfg.registry).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in old_reg))
    Path(cfg.ledger).write_bytes(orjson.dumps(_old_row(1, 12, "added", "👍")) + b"\n")
    before = Path(cfg.ledger).read_bytes()
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    assert doc["runs"]["runA"]["run"]["feedback_score"] == 1.0 and doc["reactions"]["orphans"] == 0
    # the same update again is a re-delivery (was: a conflict of its update id, the new row's chat differing)
    rep = harvest_updates(cfg, [("t:1", reaction(1, 12, [], ["👍"], chat=ANN, user=ANN))], "getUpdates", ["t"])
    assert (rep.quarantined, rep.added, rep.duplicates) == (0, 0, 1)
    # the user swaps her old 👍 for a ❤: the removal, pseudonymised now, replaces the row kept in the clear
    rep = harvest_updates(cfg, [("t:2", reaction(2, 12, ["👍"], ["❤"], chat=ANN, user=ANN, at=60))], "getUpdates",
                          ["t"])
    assert rep.added == 2 and Path(cfg.ledger).read_bytes().startswith(before)
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    assert doc["runs"]["runA"]["run"]["feedback"]["reactions"] == {"❤": 1}
    # recording the old batch again is no conflict, and a new message of that chat joins the old ones
    assert record_batch(cfg.registry, ANN, [11, 12], "runA", "runA:e") == OLD_BATCH
    record_batch(cfg.registry, ANN, [20], "runB", "runB:e")
    harvest_updates(cfg, [("t:3", reaction(3, 20, [], ["👎"], chat=ANN, user=ANN))], "getUpdates", ["t"])
    assert labels_report(cfg.ledger, cfg.mapping, cfg.registry)["runs"]["runB"]["run"]["feedback_score"] == -1.0
    assert read_registry(cfg.registry).find(ANN, 11).batch_id == OLD_BATCH
    _, _, md = write_audit(cfg, DAY)
    assert str(ANN) not in md.read_text(encoding="utf-8")  # the old rows are reported by their pseudonym too
    pc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)["private_chats"]
    assert pc == {"in_clear": 3, "salt_id": salt_id(SALT), "fix": pc["fix"]}  # one ledger row, two registry rows
    # read under another salt, the old rows join none of the new ones: said, not left as silent orphans
    monkeypatch.setenv(cfg.user_salt_env, "not-the-host-salt")
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    assert doc["runs"]["runA"]["run"]["feedback"]["reactions"] == {"👍": 1}  # the old rows alone: the ❤ is lost
    assert "set TRACEBRIDGE_FEEDBACK_SALT to the harvest's salt" in doc["private_chats"]["problem"]


def test_a_registry_recorded_under_another_salt_is_named(cfg, monkeypatch):
    """The runtime recorded its replies without the host's salt (the built-in one): every reaction in a private
    chat was an orphan, with nothing to say why."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    record_batch(cfg.registry, ANN, [11], "runA", "runA:e", salt="tracebridge-feedback")
    harvest_updates(cfg, [("t:1", reaction(1, 11, [], ["👍"], chat=ANN, user=ANN))], "getUpdates", ["t"])
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    assert doc["reactions"]["orphans"] == 1
    assert f"registry's private chats were pseudonymised under salt {salt_id('tracebridge-feedback')}" in \
        doc["private_chats"]["problem"]


def test_recording_a_private_chat_needs_the_salt(cfg, monkeypatch):
    monkeypatch.delenv(cfg.user_salt_env, raising=False)
    code, out = feedback_cli(cfg, "chunks", "record", "--chat", str(ANN), "--message-ids", "11", "--run-id", "runA",
                             "--event-id", "runA:e")
    assert code == 2 and f"--chat {ANN}: a private chat" in out and "TRACEBRIDGE_FEEDBACK_SALT is not set" in out
    assert not Path(cfg.registry).exists()
    code, out = feedback_cli(cfg, "chunks", "record", "--chat", "-1001234567890", "--message-ids", "11", "--run-id",
                             "runA", "--event-id", "runA:e")
    assert code == 0, out  # a group's id names no user: no salt needed


def test_a_torn_update_in_quarantine_names_no_private_chat(cfg, monkeypatch):
    from tracebridge.feedback.telegram import ReadError

    monkeypatch.setenv(cfg.user_salt_env, SALT)
    torn = f'{{"update_id": 2, "message_reaction": {{"chat": {{"id": {ANN}, "type": "private", "first_na'
    group = '{"update_id": 3, "message_reaction": {"chat": {"id": -1001234567890, "title": "Ops"}, "mess'
    rep = harvest_updates(cfg, [("t:1", ReadError.of("invalid JSON", torn.encode())),
                                ("t:2", ReadError.of("invalid JSON", group.encode()))], "getUpdates", ["t"])
    assert rep.quarantined == 2
    text = Path(cfg.quarantine).read_text(encoding="utf-8")
    assert str(ANN) not in text and hash_user(ANN, SALT) in text and "-1001234567890" in text
