"""The harvest's promise on messy input: every report reconciles (read = accepted + quarantined),
and what it cannot use (unknown reaction shapes, a reused update id, an impossible date, bytes that
are not UTF-8) is quarantined with its place and field, never dropped or kept silently."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import DATE, reaction
from tracebridge.feedback.harvest import HarvestReport, harvest_dumps, harvest_updates
from tracebridge.feedback.harvest_openclaw import harvest_openclaw
from tracebridge.feedback.ledger import hash_user, private_chat, read_ledger

SAID = "Telegram reaction added: 👍 by Ada (@ada) on msg {}"


def _quarantined(cfg) -> list[dict]:
    p = Path(cfg.quarantine)
    return [orjson.loads(x) for x in p.read_bytes().splitlines()] if p.is_file() else []


def _reconciles(rep: HarvestReport, cfg) -> None:
    assert rep.read == rep.accepted + rep.quarantined, rep
    assert rep.accepted == rep.applied + sum(rep.ignored.values()), rep
    assert len(_quarantined(cfg)) == rep.quarantined  # each one kept with its reason, once


def _transcript(path: Path, *texts: str) -> Path:
    """A transcript whose user messages are these texts (a header row first)."""
    rows = [{"type": "session", "version": 3, "id": path.stem, "timestamp": "2026-01-01T00:00:00.000Z"}]
    rows += [{"type": "message", "id": f"m{i}", "timestamp": "2026-01-01T00:00:01.000Z",
              "message": {"role": "user", "content": t}} for i, t in enumerate(texts)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_getupdates_harvest_reconciles(cfg, tmp_path):
    folder, dump = tmp_path / "dir", tmp_path / "u.jsonl"
    folder.mkdir()
    dump.write_bytes(b"\n".join([orjson.dumps(reaction(1, 10, [], ["👍"])), b"{not json",
                                 orjson.dumps({"update_id": 2, "message_reaction": {"chat": {}}}),
                                 orjson.dumps(reaction(1, 10, [], ["🔥"])), orjson.dumps(reaction(3, 10, ["👍"], []))]))
    rep = harvest_dumps(cfg, [folder, dump])
    assert (rep.read, rep.accepted, rep.quarantined) == (6, 2, 4)
    _reconciles(rep, cfg)


def test_openclaw_harvest_reconciles_with_discovery_problems(cfg, tmp_path):
    """A missing path, an unreadable ``sessions.json`` and an unreadable transcript were counted as
    quarantined but not as read, so read != accepted + quarantined."""
    src = tmp_path / "agents" / "main" / "sessions"
    src.mkdir(parents=True)
    _transcript(src / "a.jsonl", f"System: [2026-03-22 04:55:25 UTC] {SAID.format(1)}")
    (src / "sessions.json").write_bytes(b"{broken")
    os.symlink("loop.jsonl", src / "loop.jsonl")
    rep = harvest_openclaw(cfg, [tmp_path, tmp_path / "missing"])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (4, 1, 3, 1)
    _reconciles(rep, cfg)
    assert any(q["where"].endswith("missing: no such file or folder") for q in _quarantined(cfg))


def test_webhook_harvest_reconciles(cfg):
    rep = harvest_updates(cfg, [("webhook:1", reaction(1, 10, [], ["👍"])), ("webhook:2", "invalid JSON: x"),
                                ("webhook:3", reaction(1, 10, [], ["❤"]))], "webhook", ["webhook"])
    assert (rep.read, rep.accepted, rep.quarantined) == (3, 1, 2)
    _reconciles(rep, cfg)


def test_unknown_reaction_shapes_are_quarantined_with_the_field(cfg, tmp_path):
    """``reaction_key`` returned None for these and the reaction was dropped with no count."""
    ups = []
    for uid, odd in enumerate(({"type": "emoji", "emoji": 5}, None, "👍", {"type": "story"}), 1):
        u = reaction(uid, 10, [], ["❤"])
        u["message_reaction"]["new_reaction"].append(odd)
        ups.append(u)
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": ups}))
    rep = harvest_dumps(cfg, [dump])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (4, 0, 4, 0)
    assert rep.quarantine_samples == [
        f"{dump}:result[0]:new_reaction[1]: unknown ReactionType {{\"type\":\"emoji\",\"emoji\":5}}",
        f"{dump}:result[1]:new_reaction[1]: unknown ReactionType null",
        f"{dump}:result[2]:new_reaction[1]: unknown ReactionType \"👍\"",
        f"{dump}:result[3]:new_reaction[1]: unknown ReactionType {{\"type\":\"story\"}}"]


def test_unknown_openclaw_reaction_lines_are_quarantined(cfg, tmp_path):
    """A ``Telegram reaction`` system event of another shape gave no row and no count."""
    t = _transcript(tmp_path / "s.jsonl", "System: [2026-03-22 04:55:25 UTC] Telegram reaction changed: 👍 on msg 4",
                    f"System: [2026-03-22 04:55:25 UTC] {SAID.format(5)}")
    rep = harvest_openclaw(cfg, [t])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (2, 1, 1, 1)
    assert rep.quarantine_samples[0].startswith(
        f"{t}:2: message.content: system event 'Telegram reaction changed: 👍 on msg 4' is not ")


def test_a_reused_update_id_is_a_conflict_and_the_first_is_kept(cfg, tmp_path):
    """Two different updates with the same ``update_id`` were both kept."""
    dump = tmp_path / "u.jsonl"
    first, other = reaction(1, 10, [], ["👍"]), reaction(1, 10, [], ["🔥"])
    dump.write_bytes(b"\n".join(orjson.dumps(u) for u in (first, other, first)))
    rep = harvest_dumps(cfg, [dump])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added, rep.duplicates) == (3, 2, 1, 1, 1)
    assert rep.quarantine_samples == [
        f"{dump}:2:update_id: 1 is already the id of a different update ({dump}:1); the first is kept"]
    assert [r.emoji for r in read_ledger(cfg.ledger).rows] == ["👍"]
    # a later harvest: the ledger holds update 1, so a different one is a conflict, the same one a duplicate
    dump.write_bytes(b"\n".join(orjson.dumps(u) for u in (reaction(1, 10, [], ["❤"]), first,
                                                           {"update_id": 1, "message": {"text": "hi"}})))
    rep = harvest_dumps(cfg, [dump])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added, rep.duplicates) == (3, 1, 2, 0, 1)
    assert rep.quarantine_samples[0] == (f"{dump}:1:update_id: 1: the ledger already holds other reactions for "
                                         "this id (an earlier harvest); the first is kept")
    assert rep.quarantine_samples[1].startswith(f"{dump}:3:update_id: 1 is already the id of a different update")
    assert [r.emoji for r in read_ledger(cfg.ledger).rows] == ["👍"]


def test_impossible_reaction_dates_are_quarantined(cfg, tmp_path):
    """``date: -1`` (1969) and other dates no reaction can have were accepted."""
    future = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).timestamp())
    dates = (-1, 0, 1356998399, future, 1356998400, DATE)  # 2012-12-31T23:59:59Z, in 3 days; then good ones
    ups = [reaction(i, 10 + i, [], ["👍"]) for i in range(len(dates))]
    for u, d in zip(ups, dates):
        u["message_reaction"]["date"] = d
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps(ups))
    rep = harvest_dumps(cfg, [dump])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (6, 2, 4, 2)
    assert rep.quarantine_samples[0] == (f"{dump}:result[0]:date: -1: 1969-12-31T23:59:59.000Z is before "
                                         "Telegram existed (2013)")
    assert rep.quarantine_samples[3].startswith(f"{dump}:result[3]:date: {future}: ") and "after the harvest" in \
        rep.quarantine_samples[3]
    t = _transcript(tmp_path / "s.jsonl", f"System: [2010-03-22 04:55:25 UTC] {SAID.format(1)}")
    rep = harvest_openclaw(cfg, [t])
    assert rep.quarantine_samples == [f"{t}:2: time: 2010-03-22T04:55:25.000Z is before Telegram existed (2013)"]


@pytest.mark.parametrize("where", ["updates", "openclaw"])
def test_bytes_that_are_not_utf8_are_located(cfg, tmp_path, where):
    """The reason said ``line 1 column 1 (char 0)`` wherever the bad byte was."""
    good = orjson.dumps(reaction(1, 10, [], ["👍"]))
    bad = b'{"update_id": 2, "note": "caf\xe9", "Telegram reaction": 1}'
    path = tmp_path / "u.jsonl"
    path.write_bytes(good + b"\n" + bad + b"\n")
    rep = harvest_dumps(cfg, [path]) if where == "updates" else harvest_openclaw(cfg, [path])
    line = f"{path}:2:<line>" if where == "updates" else f"{path}:2"
    why = "invalid JSON: not UTF-8: byte 0xe9 at byte 30 of the line (latin-1 or binary data?)"
    assert rep.quarantine_samples == [f"{line}: {why}"]


_HARVEST_ONE = """
import sys
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import harvest_dumps
cfg = FeedbackConfig(**dict(a.split("=", 1) for a in sys.argv[2:]))
rep = harvest_dumps(cfg, [sys.argv[1]])
print(rep.accepted, rep.quarantined)
"""


def test_two_processes_harvesting_one_update_id_accept_one_update(cfg, tmp_path):
    """A ``serve`` and a ``harvest`` side by side: each read the ledger before the other appended,
    so both accepted a different update of the same id. The ledger's lock now spans read to append."""
    import subprocess
    import sys
    import time

    from tracebridge.feedback.ledger import file_lock

    dumps = []
    for i, e in enumerate(["👍", "👎"]):
        dumps.append(tmp_path / f"d{i}.jsonl")
        dumps[-1].write_bytes(orjson.dumps(reaction(77, 10, [], [e])) + b"\n")
    args = [f"{k}={getattr(cfg, k)}" for k in ("ledger", "mapping", "registry", "harvest_log", "quarantine", "audit_dir")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with file_lock(cfg.ledger):  # both start and wait here: without the fix they would both read an empty ledger
        procs = [subprocess.Popen([sys.executable, "-c", _HARVEST_ONE, str(d), *args], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for d in dumps]
        time.sleep(3)  # long enough for both to import and reach the ledger
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    counts = sorted(tuple(map(int, o.split())) for o, _ in outs)
    assert counts == [(0, 1), (1, 0)], counts
    rows = read_ledger(cfg.ledger).rows
    assert len(rows) == 1 and rows[0].raw["update_id"] == 77


def test_openclaw_harvest_reads_sessions_kept_in_agent_databases(cfg, tmp_path):
    """Current OpenClaw keeps transcripts in ``agents/<agent>/agent/openclaw-agent.sqlite``: their
    reactions were never harvested. The same session also as a ``.jsonl`` adds no second row."""
    import sqlite3

    from tests.importers.test_openclaw_upstream import AGENT_DB_SCHEMA

    db_path = tmp_path / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    db_path.parent.mkdir(parents=True)
    legacy = tmp_path / "agents" / "main" / "sessions"
    legacy.mkdir()
    lines = _transcript(legacy / "s7.jsonl", f"System: [2026-03-22 04:55:25 UTC] {SAID.format(3)}",
                        "System: [2026-03-22 04:55:25 UTC] Telegram reaction changed: 👍 on msg 4").read_bytes()
    with sqlite3.connect(db_path) as db:
        db.executescript(AGENT_DB_SCHEMA)
        db.execute("INSERT INTO sessions VALUES ('s7', 'agent:main:telegram:direct:42', 0, 0, 'direct', 'telegram', NULL)")
        db.executemany("INSERT INTO transcript_events VALUES ('s7', ?, ?, 0)",
                       [(10 * seq, line.decode()) for seq, line in enumerate(lines.splitlines())])
    rep = harvest_openclaw(cfg, [tmp_path])
    _reconciles(rep, cfg)
    assert (rep.read, rep.accepted, rep.quarantined, rep.added, rep.duplicates) == (4, 2, 2, 1, 1)
    assert str(db_path) in rep.inputs
    assert f"{db_path} session 's7' seq 20: message.content: system event" in "\n".join(rep.quarantine_samples)
    [row] = read_ledger(cfg.ledger).rows
    assert (row.chat, row.message_id, row.emoji) == (hash_user(42), 3, "👍")  # a direct chat: the user's id


@pytest.mark.parametrize(("key", "chat"), [
    ("agent:main:telegram:direct:111", 111),
    ("agent:main:telegram:group:-1001234567890", -1001234567890),
    ("agent:main:telegram:group:-1001234567890:topic:42", -1001234567890),
    ("agent:main:telegram:direct:111:thread:7", 111),
    ("agent:main:telegram:acct1:dm:222", 222),
    ("agent:main:main", "session:s1"),
])
def test_openclaw_reactions_keep_the_chat_of_a_forum_topic_session(cfg, tmp_path, key, chat):
    """A reaction in a forum topic (session key ``...:group:-100…:topic:42``) was filed under chat
    42, the topic's number: it joined nothing, or a message 500 of another chat whose id is 42."""
    src = tmp_path / "agents" / "main" / "sessions"
    src.mkdir(parents=True)
    _transcript(src / "s1.jsonl", f"System: [2026-03-22 04:55:25 UTC] {SAID.format(500)}")
    (src / "sessions.json").write_bytes(orjson.dumps({key: {"sessionId": "s1", "sessionFile": "s1.jsonl"}}))
    rep = harvest_openclaw(cfg, [tmp_path])
    assert rep.added == 1
    assert [(r.chat, r.message_id) for r in read_ledger(cfg.ledger).rows] == [(private_chat(chat), 500)]


def test_every_update_is_applied_ignored_with_its_reason_or_quarantined(cfg, tmp_path):
    """A getUpdates dump holds messages, edits and re-deliveries besides reactions: all of them were
    'accepted' alike, so the report could not say how many updates brought reactions and why the
    others did not."""
    count = {"update_id": 9, "message_reaction_count": {"chat": {"id": -100, "type": "channel"}, "message_id": 5,
                                                         "date": DATE, "reactions": [{"type": {"type": "emoji",
                                                                                               "emoji": "👍"},
                                                                                      "total_count": 2}]}}
    updates = [reaction(1, 10, [], ["👍"]), reaction(1, 10, [], ["👍"]),  # a re-delivery
               {"update_id": 2, "message": {"message_id": 3, "date": DATE, "chat": {"id": 42}, "text": "hi"}},
               {"update_id": 3, "edited_message": {"message_id": 3, "date": DATE, "chat": {"id": 42}, "text": "hi!"}},
               reaction(4, 10, ["👍"], ["👎"]), count, {"update_id": 5, "message_reaction": {"chat": {}}}]
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": updates}))
    rep = harvest_dumps(cfg, [dump])
    assert (rep.read, rep.applied, rep.quarantined) == (7, 3, 1)
    assert rep.ignored == {"already harvested (a repeated delivery)": 1, "not a reaction update (message)": 1,
                           "not a reaction update (edited_message)": 1}
    _reconciles(rep, cfg)
    again = harvest_dumps(cfg, [dump])  # nothing new: every update is ignored for its reason
    assert (again.applied, again.added) == (0, 0)
    assert again.ignored["already harvested (a repeated delivery)"] == 3
    assert again.ignored["reaction counts unchanged, or not newer than counts already applied"] == 1
    _reconciles(again, cfg)


def test_a_harvest_under_another_salt_is_refused(cfg, tmp_path, monkeypatch):
    """Setting another salt on a host that had harvested under one named every user anew: a ❤ then
    changed to 👎 kept the ❤ (old pseudonym) and added the 👎 (new one), so the reply's label stayed
    positive (+1) instead of -1."""
    from typer.testing import CliRunner

    from tracebridge.cli import app
    from tracebridge.feedback.chunks import record_batch
    from tracebridge.feedback.join import labels_for_runs

    monkeypatch.setenv(cfg.user_salt_env, "the-first-host-salt")
    record_batch(cfg.registry, 42, [10], "runA", "runA:e")  # a private chat: pseudonymised under the host's salt
    assert harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["❤"]))], "getUpdates", ["t"]).added == 1
    monkeypatch.setenv(cfg.user_salt_env, "a-new-host-salt")
    before = Path(cfg.ledger).read_bytes()
    with pytest.raises(ValueError, match="pseudonymised under another salt"):
        harvest_updates(cfg, [("t:2", reaction(2, 10, ["❤"], ["👎"]))], "getUpdates", ["t"])
    src = tmp_path / "agents" / "main" / "sessions"
    src.mkdir(parents=True)
    _transcript(src / "s1.jsonl", f"System: [2026-03-22 04:55:25 UTC] {SAID.format(10)}")
    with pytest.raises(ValueError, match="pseudonymised under another salt"):
        harvest_openclaw(cfg, [tmp_path])
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps([reaction(2, 10, ["❤"], ["👎"])]))
    r = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), "--ledger", cfg.ledger,
                                 "--mapping", cfg.mapping, f"harvest_log={cfg.harvest_log}",
                                 f"quarantine={cfg.quarantine}"])
    assert r.exit_code == 2 and "set TRACEBRIDGE_FEEDBACK_SALT to the ledger's salt" in r.output
    assert Path(cfg.ledger).read_bytes() == before  # nothing written under the new salt
    monkeypatch.setenv(cfg.user_salt_env, "the-first-host-salt")  # the ledger's salt again: the change replaces the ❤
    harvest_updates(cfg, [("t:2", reaction(2, 10, ["❤"], ["👎"]))], "getUpdates", ["t"])
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["runA"]["run"]["feedback_score"] == -1.0
