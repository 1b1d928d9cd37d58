"""The daily audit (JSON + Markdown) and the feedback commands."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest
from typer.testing import CliRunner

from tests.feedback.conftest import reaction
from tracebridge.cli import app
from tracebridge.feedback.audit import audit_day, write_audit
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.ledger import hash_user
from tracebridge.feedback.mapping import load_mapping, set_score

DAY = dt.date(2026, 2, 25)


def test_audit_counts_a_day(cfg):
    record_batch(cfg.registry, 42, [10, 11], "runA", "runA:e", time="2026-02-23T00:00:00.000Z")
    ups = [reaction(1, 11, [], ["👍"]), reaction(2, 11, [], ["🔥"], user=8), reaction(3, 10, [], ["❤"], user=9),
           reaction(4, 10, ["❤"], [], user=9, at=60), reaction(5, 77, [], ["👎"], user=10),
           reaction(6, 11, [], ["🙈"], user=11, at=86400)]  # the last one is on the next day
    harvest_updates(cfg, [(f"t:{i}", u) for i, u in enumerate(ups)], "getUpdates", ["t"])
    with open(cfg.ledger, "ab") as fh:
        fh.write(b"garbage\n")
    a = audit_day(cfg, DAY)
    assert a["rows_today"] == 5 and a["added"] == 4 and a["removed"] == 1
    assert a["by_emoji"] == {"👍": 1, "🔥": 1, "❤": 1, "👎": 1}
    assert a["by_score"] == {"+1": 1, "+2": 1, "-1": 1, "unlabeled": 1} and a["unmapped_emojis"] == {"🔥": 1}
    assert a["orphans"] == [{"chat": hash_user(42), "message_id": 77, "emoji": "👎"}]  # a private chat: the user's id
    assert {x["emoji"] for x in a["late"]} == {"👍", "🔥"}  # two days after the chunks were sent
    assert a["runs_labeled"] == ["runA"] and len(a["ledger"]["skipped"]) == 1
    assert a["harvest_ran"] is False and a["harvest_evidence"] == "none"  # harvested today, not on DAY


def test_harvest_ran_evidence_and_files(cfg):
    harvest_updates(cfg, [("t", reaction(1, 10, [], ["👍"]))], "getUpdates", ["t"])
    today = dt.datetime.now(dt.UTC).date()
    a, jp, mp = write_audit(cfg, today)
    assert a["harvest_ran"] is True and a["harvest_evidence"] == "harvest_log" and a["harvest_runs"] == 1
    assert orjson.loads(jp.read_bytes())["day"] == today.isoformat()
    assert "harvest ran: **yes**" in mp.read_text()


def test_audit_reads_ledgers_written_by_others(cfg, tmp_path):
    ledger = tmp_path / "other.jsonl"  # no harvest log, no harvested_at: the day's rows are the evidence
    ledger.write_text(json.dumps({"time": "2026-02-25T12:00:00+00:00", "chat": 1, "message_id": 10, "user": "u1",
                                  "emoji": "👍", "change": "added", "score": 1, "source": "getUpdates",
                                  "update_id": 1}) + "\n")
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"version": 3, "mapping": {"👍": 1}}))
    r = CliRunner().invoke(app, ["feedback", "audit", "--day", "2026-02-25", "--ledger", str(ledger), "--mapping",
                                 str(mapping), "--out", str(tmp_path / "audit"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["harvest_ran"] is True and doc["harvest_evidence"] == "ledger_rows" and doc["mapping_version"] == 3
    r = CliRunner().invoke(app, ["feedback", "audit", "--day", "2026-02-26", "--ledger", str(ledger), "--mapping",
                                 str(mapping), "--out", str(tmp_path / "audit")])
    assert r.exit_code == 1 and "harvest ran: **NO**" in r.output
    r = CliRunner().invoke(app, ["feedback", "audit", "--day", "yesterday"])
    assert r.exit_code == 2


def test_mapping_versions_and_validation(cfg, tmp_path):
    m = load_mapping(cfg.mapping)
    assert m.version == 1 and m.score("❤️") == m.score("❤") == 2 and m.score("🙈") == -2 and m.score("🤷") is None
    set_score(cfg.mapping, "🤷", 0)
    m2 = set_score(cfg.mapping, "👍", None)
    assert m2.version == 3 and m2.score("👍") is None and m2.score("🤷") == 0
    assert [h["version"] for h in m2.doc["history"]] == [1, 2]
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "mapping": {"👍": "one"}}')
    with pytest.raises(ValueError, match="mapping.👍: score must be a number"):
        load_mapping(bad)


def test_feedback_commands(cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps([reaction(1, 11, [], ["👍"])]))
    assert run(app, ["feedback", "mapping", "init"]).exit_code == 0
    assert run(app, ["feedback", "chunks", "record", "--chat", "42", "--message-ids", "10,11", "--run-id", "r",
                     "--event-id", "r:e"]).exit_code == 0
    r = run(app, ["feedback", "harvest", "--updates", str(dump), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 1
    r = run(app, ["feedback", "labels", "--json"])
    assert json.loads(r.stdout)["runs"]["r"]["run"]["feedback"]["score"] == 1.0
    assert run(app, ["feedback", "harvest"]).exit_code == 2
    assert run(app, ["feedback", "labels", "other_chunks=sometimes"]).exit_code == 2
    assert run(app, ["feedback", "serve"], env={"TELEGRAM_WEBHOOK_SECRET": ""}).exit_code == 2


def test_output_paths_under_a_file_are_clear_errors(tmp_path):
    """``audit --out FILE``, ``chunks record --registry FILE/x`` and ``mapping init --mapping DIR``
    raised FileExistsError / IsADirectoryError tracebacks."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for args in (["audit", "--day", "2026-02-25", "--ledger", str(tmp_path / "l.jsonl"), "--out", str(blocker)],
                 ["chunks", "record", "--chat", "1", "--message-ids", "1", "--run-id", "r", "--event-id", "e",
                  "--registry", str(blocker / "r.jsonl")],
                 ["mapping", "init", "--mapping", str(tmp_path)]):
        r = CliRunner().invoke(app, ["feedback", *args])
        # each names its option and the path in words (tests/cli/test_out_under_a_file.py,
        # tests/cli/test_feedback_write_errors.py)
        said = {"audit": "is a file, not a folder", "chunks": "is a file, not a folder",
                "mapping": "a folder; give the path"}[args[0]]
        assert r.exit_code == 2 and "error: " in r.output and said in r.output, (args, r.output)


def test_the_audit_shows_what_the_days_harvests_did(cfg, tmp_path):
    """The audit of the day a harvest ran listed reactions by the day they were made only: a
    malformed update it quarantined, the updates it ignored and the reactions that arrived days
    late (whose own day's audit was already written) appeared in no audit at all."""
    record_batch(cfg.registry, 42, [10], "runA", "runA:e", time="2026-02-25T00:00:00.000Z")
    ups = [reaction(1, 10, [], ["👍"]), {"update_id": 2, "message": {"message_id": 3, "chat": {"id": 42}}},
           {"update_id": 3, "message_reaction": {"message_id": 10}}]
    harvest_updates(cfg, [(f"t:{i}", u) for i, u in enumerate(ups)], "getUpdates", ["t"])
    today = dt.datetime.now(dt.UTC).date()
    a, _, mp = write_audit(cfg, today)
    harvest_updates(cfg, [("webhook:1", reaction(1, 10, [], ["👍"]))], "webhook", ["webhook"])
    harvest_updates(cfg, [("webhook:2", reaction(4, 10, [], ["❤"], user=9))], "webhook", ["webhook"])
    a, _, mp = write_audit(cfg, today)  # a webhook logs a run per update: summed per source
    h, w = a["harvests"]["getUpdates"], a["harvests"]["webhook"]
    assert (h["runs"], h["read"], h["applied"], h["quarantined"], h["added"]) == (1, 3, 1, 1, 1)
    assert h["ignored"] == {"not a reaction update (message)": 1}
    assert (w["runs"], w["read"], w["applied"], w["added"], w["ignored"]) == (2, 2, 1, 1, {
        "already harvested (a repeated delivery)": 1})
    assert a["quarantined_today"]["count"] == 1
    assert a["quarantined_today"]["samples"] == ["t:2:chat.id: missing"]
    assert a["harvested_today"] == 2 and a["arrived_for_earlier_days"]["by_day"] == {"2026-02-25": 2}
    md = mp.read_text()
    assert "## Quarantined today (1)\n- t:2:chat.id: missing" in md
    assert "getUpdates ignored 1: not a reaction update (message)" in md
    assert "## Harvests (3 runs)" in md and "## Harvested today for earlier days (2)" in md


def test_an_audit_run_again_replaces_the_files_whole(cfg, tmp_path):
    # written in place, a run killed mid-write left half of the day's JSON where the whole earlier one was; a
    # reader holding the earlier file (here a hard link to it) saw it change under it
    _, jp, mp = write_audit(cfg, DAY)
    held = {p: tmp_path / f"held-{p.name}" for p in (jp, mp)}
    for p, link in held.items():
        link.hardlink_to(p)
    before = {p: link.read_bytes() for p, link in held.items()}
    harvest_updates(cfg, [("t", reaction(1, 10, [], ["👍"]))], "getUpdates", ["t"])  # the next run differs
    a, jp, mp = write_audit(cfg, DAY)
    assert {p: link.read_bytes() for p, link in held.items()} == before
    assert orjson.loads(jp.read_bytes()) == orjson.loads(orjson.dumps(a)) and jp.read_bytes() != before[jp]
    assert not [p.name for p in jp.parent.iterdir() if ".tmp." in p.name]
