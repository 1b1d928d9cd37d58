"""``feedback migrate``: the private chat ids (the users' Telegram ids) that older versions kept in the clear in
the ledger, registry, quarantine and daily audits are rewritten as the users' pseudonyms; the files still load
and join as before, a dry run writes nothing, and the counts reconcile and are kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

from tests.feedback.conftest import feedback_cli, reaction
from tests.feedback.test_private_chats import ANN, OLD_BATCH, SALT, _old_row
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.join import labels_report
from tracebridge.feedback.ledger import hash_user, salt_id

GROUP = -1001234567890
U = hash_user(ANN, SALT)


def _jsonl(path: str | Path, rows: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def _bad_update() -> dict:
    return reaction(3, 13, [], [{"type": "weird"}], chat=ANN, user=ANN)  # an unknown ReactionType: quarantined


def _old_files(cfg) -> None:
    """The feedback files as versions before private chats were pseudonymised wrote them."""
    _jsonl(cfg.registry, [{"batch_id": OLD_BATCH, "chat": ANN, "message_id": m, "chunk_index": i, "chunk_count": 2,
                           "run_id": "runA", "event_id": "runA:e", "time": "2026-02-25T06:00:00.000Z",
                           "key": f"{ANN}:{m}"} for i, m in enumerate((11, 12))]
           + [{"batch_id": "reply-7", "chat": ANN, "message_id": 13, "chunk_index": 0, "chunk_count": 1,  # given by the
               "run_id": "runC", "event_id": "runC:e", "time": "2026-02-25T06:00:00.000Z", "key": f"{ANN}:13"}])  # caller
    group = {**_old_row(2, 5, "added", "👎"), "chat": GROUP, "key": "tg:2:added:👎"}
    _jsonl(cfg.ledger, [_old_row(1, 12, "added", "👍"), group])
    Path(cfg.ledger).write_bytes(Path(cfg.ledger).read_bytes() + b'{"time": "2026-02-25T06:1')  # a torn last line
    upd = _bad_update()  # kept with the user pseudonymised, the private chat's id in the clear
    body = upd["message_reaction"]
    body["user"], body["chat"] = {"id": U}, {"id": ANN, "type": "private"}
    raw = orjson.dumps(upd).decode()
    where = "t:3:new_reaction[0]"
    _jsonl(cfg.quarantine, [{"where": where, "reason": "unknown ReactionType {'type': 'weird'}", "raw": raw,
                             "key": "q:" + hashlib.sha256(f"{where}|{raw}".encode()).hexdigest()[:24],
                             "time": "2026-02-25T06:13:20.000Z"}])
    # an older version named an OpenClaw direct chat's session key (its peer: the user's id) in reasons
    account = f"account: session 's1' (key 'agent:main:telegram:ops:direct:{ANN}') is of OpenClaw Telegram account 'ops'"
    with open(cfg.quarantine, "ab") as fh:
        fh.write(orjson.dumps({"where": "s1.jsonl:3", "reason": account, "raw": '{"type": "message"}', "key": "q:1",
                               "time": "2026-02-25T06:13:20.000Z"}) + b"\n")
    os.chmod(cfg.quarantine, 0o600)
    _jsonl(cfg.harvest_log, [{"source": "openclaw", "time": "2026-02-25T06:14:00.000Z", "read": 1, "quarantined": 1,
                              "quarantine_samples": [f"s1.jsonl:3: {account}"]}])
    audit = Path(cfg.audit_dir)
    audit.mkdir(parents=True)
    orphans = [{"chat": ANN, "message_id": 99, "emoji": "👎"}, {"chat": GROUP, "message_id": 7, "emoji": "👍"}]
    (audit / "2026-02-25.json").write_bytes(orjson.dumps(
        {"day": "2026-02-25", "orphans": orphans, "late": [{"chat": ANN, "message_id": 12, "emoji": "👍", "delay_s": 9e4}],
         "arrived_for_earlier_days": {"count": 1, "samples": [{"chat": str(ANN), "message_id": 12}]},
         "quarantined_today": {"count": 1, "samples": [f"s1.jsonl:3: {account}"]}},
        option=orjson.OPT_INDENT_2))
    (audit / "2026-02-25.md").write_text("## Orphan reactions (2)\n" + "".join(
        f"- {orjson.dumps(o).decode()}\n" for o in orphans) + f"## Quarantined today (1)\n- s1.jsonl:3: {account}\n",
        encoding="utf-8")


def _everything(cfg) -> str:
    folder = Path(cfg.ledger).parent
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*"))
                     if p.is_file() and p.suffix in (".jsonl", ".json", ".md") and p.name != "migrations.jsonl")


def _bytes(cfg) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(Path(cfg.ledger).parent.rglob("*")) if p.is_file() and p.suffix != ".lock"}


def test_migrate_rewrites_the_ids_in_the_clear_and_the_files_still_join(cfg, monkeypatch):
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    _old_files(cfg)
    assert str(ANN) in _everything(cfg)
    before, labels = _bytes(cfg), labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    code, dry = feedback_cli(cfg, "migrate", "--dry-run")
    assert code == 0 and dry["dry_run"] and dry["log"] is None and _bytes(cfg) == before  # nothing written
    by = {Path(f["path"]).name: f for f in dry["files"]}
    assert {n: (f["read"], f["changed"], f["unchanged"], f["unreadable"]) for n, f in by.items()} == {
        "telegram-reactions.jsonl": (3, 1, 1, 1), "sent-chunks.jsonl": (3, 3, 0, 0), "quarantine.jsonl": (2, 2, 0, 0),
        "harvest-log.jsonl": (1, 1, 0, 0), "2026-02-25.json": (5, 4, 1, 0), "2026-02-25.md": (3, 2, 1, 0)}
    assert dry["changed"] == 13 and all(f["read"] == f["changed"] + f["unchanged"] + f["unreadable"]
                                       for f in dry["files"])

    code, doc = feedback_cli(cfg, "migrate")
    assert code == 0 and doc["changed"] == 13 and doc["salt_id"] == salt_id(SALT)
    assert str(ANN) not in _everything(cfg) and U in _everything(cfg) and str(GROUP) in _everything(cfg)
    assert Path(cfg.ledger).read_bytes().endswith(b'\n{"time": "2026-02-25T06:1')  # the torn line kept as it was
    assert os.stat(cfg.quarantine).st_mode & 0o777 == 0o600  # the mode kept
    [logged] = [orjson.loads(line) for line in Path(doc["log"]).read_bytes().splitlines()]
    assert logged["migration"] == "private_chats" and logged["changed"] == 13 and len(logged["files"]) == 6
    assert f"direct:{U}" in Path(cfg.harvest_log).read_text() and f"direct:{U}" in Path(cfg.quarantine).read_text()
    reg = [orjson.loads(line) for line in Path(cfg.registry).read_bytes().splitlines()]
    batch = "b:" + hashlib.sha256(f"{U}|11|runA".encode()).hexdigest()[:16]  # as a batch recorded now is derived
    assert [(r["chat"], r["key"], r["salt_id"], r["batch_id"]) for r in reg] == [
        (U, f"{U}:11", salt_id(SALT), batch), (U, f"{U}:12", salt_id(SALT), batch),
        (U, f"{U}:13", salt_id(SALT), "reply-7")]  # OLD_BATCH, a hash of the id in the clear, could be reversed
    assert record_batch(cfg.registry, ANN, [11, 12], "runA", "runA:e") == batch  # again: no conflict, nothing added
    assert len(Path(cfg.registry).read_bytes().splitlines()) == 3
    audit = orjson.loads((Path(cfg.audit_dir) / "2026-02-25.json").read_bytes())
    assert audit["orphans"][0] == {"chat": U, "message_id": 99, "emoji": "👎"} and audit["orphans"][1]["chat"] == GROUP

    after = labels_report(cfg.ledger, cfg.mapping, cfg.registry)  # the same join, now with nothing in the clear
    assert after["runs"] == labels["runs"] and after["reactions"] == labels["reactions"]
    assert after["private_chats"]["in_clear"] == 0 and labels["private_chats"]["in_clear"] == 4
    assert "tracebridge feedback migrate" in labels["private_chats"]["fix"] and "fix" not in after["private_chats"]
    # the same bad update quarantined again is deduped against the migrated entry (its key was made anew)
    q = Path(cfg.quarantine).read_bytes()
    rep = harvest_updates(cfg, [("t:3", _bad_update())], "getUpdates", ["t"])
    assert rep.quarantined == 1 and Path(cfg.quarantine).read_bytes() == q
    # and the reaction harvested again is a re-delivery, not a conflict
    rep = harvest_updates(cfg, [("t:1", reaction(1, 12, [], ["👍"], chat=ANN, user=ANN))], "getUpdates", ["t"])
    assert (rep.added, rep.duplicates, rep.quarantined) == (0, 1, 0)

    code, again = feedback_cli(cfg, "migrate")  # a second run finds nothing to change
    assert code == 0 and again["changed"] == 0


def test_migrate_under_another_salt_than_the_ledgers_rewrites_nothing(cfg, monkeypatch):
    """Rewritten under a salt that is not the ledger's, the ids would join none of its rows and be lost."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    _old_files(cfg)
    before = _bytes(cfg)
    monkeypatch.setenv(cfg.user_salt_env, "not-the-host-salt")
    code, out = feedback_cli(cfg, "migrate")
    assert code == 2 and f"pseudonymised under salt {salt_id(SALT)}" in out and "nothing rewritten" in out, out
    monkeypatch.delenv(cfg.user_salt_env)
    code, out = feedback_cli(cfg, "migrate", "--dry-run")
    assert code == 2 and f"{cfg.user_salt_env} is not set" in out, out
    assert _bytes(cfg) == before


def test_migrate_of_paths_holding_no_feedback_file_writes_nothing(cfg, monkeypatch):
    """A mistyped path was 'migrated' as empty, and left a migrations.jsonl (and its folder) there."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    code, out = feedback_cli(cfg, "migrate")
    assert code == 2 and "nothing to migrate" in out and f"ledger={cfg.ledger}" in out, out
    assert not Path(cfg.ledger).parent.exists()


def test_a_file_that_cannot_be_replaced_stops_the_migration_and_a_second_run_finishes_it(cfg, monkeypatch):
    """It exited 2 ("nothing was written") with the files before it already rewritten."""
    monkeypatch.setenv(cfg.user_salt_env, SALT)
    _old_files(cfg)
    audit = Path(cfg.audit_dir) / "2026-02-25.json"
    before = audit.read_bytes()
    blocker = audit.with_name(f".{audit.name}.migrate.{os.getpid()}")  # where its temporary goes: a folder
    blocker.mkdir()
    from typer.testing import CliRunner

    from tracebridge.cli import app

    files = [f"{k}={getattr(cfg, k)}" for k in ("ledger", "registry", "quarantine", "harvest_log", "audit_dir")]
    res = CliRunner().invoke(app, ["feedback", "migrate", *files])
    assert res.exit_code == 1 and f"{blocker}" in res.output and "run migrate again" in res.output, res.output
    assert str(ANN) not in Path(cfg.ledger).read_text() and audit.read_bytes() == before
    assert not (Path(cfg.ledger).parent / "migrations.jsonl").exists()
    blocker.rmdir()
    code, doc = feedback_cli(cfg, "migrate")
    assert code == 0 and {Path(f["path"]).name: f["changed"] for f in doc["files"] if f["changed"]} == {
        "2026-02-25.json": 4, "2026-02-25.md": 2}
    assert str(ANN) not in _everything(cfg)
