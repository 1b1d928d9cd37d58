"""Several bots sharing one feedback ledger and chunk registry (``bot_id``).

Telegram numbers updates per bot, and in a private chat each bot numbers its messages on its own
while the chat id is the user's for every bot. Before ``bot_id``, a worker bot's update 1000 in a
ledger that held the planner bot's update 1000 was quarantined ("the ledger already holds other
reactions for this id"), and its update 1001 that looked like the planner's was dropped as a
repeated delivery: one bot's feedback was lost.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.feedback.conftest import reaction
from tracebridge.cli import app
from tracebridge.feedback.audit import audit_day, to_markdown
from tracebridge.feedback.chunks import read_registry, record_batch
from tracebridge.feedback.harvest import HarvestReport, harvest_updates, resume_offsets
from tracebridge.feedback.join import labels_for_run_factory, labels_report
from tracebridge.feedback.ledger import hash_user, parse_time, read_ledger

PLANNER, WORKER = "111", "222"


def _bot(cfg, bot: str, legacy: str = ""):
    return dataclasses.replace(cfg, bot_id=bot, legacy_bot_id=legacy)


def _harvest(cfg, *updates) -> HarvestReport:
    rep = harvest_updates(cfg, [(f"t:{i}", u) for i, u in enumerate(updates)], "getUpdates", ["test"])
    assert rep.read == rep.accepted + rep.quarantined  # every report reconciles
    assert rep.accepted == rep.applied + sum(rep.ignored.values())
    return rep


# Both bots deliver update ids 1000 and 1001: the planner's on its messages 5 and 6, the worker's on its
# own messages 9 and 6 (another message than the planner's 6: the same chat id, the user's).
PLANNER_UPS = (reaction(1000, 5, [], ["👍"]), reaction(1001, 6, [], ["❤"]))
WORKER_UPS = (reaction(1000, 9, [], ["👎"]), reaction(1001, 6, [], ["❤"]))


def test_one_update_id_from_two_bots_keeps_both(cfg):
    assert _harvest(_bot(cfg, PLANNER), *PLANNER_UPS).applied == 2
    rep = _harvest(_bot(cfg, WORKER), *WORKER_UPS)
    assert (rep.applied, rep.quarantined, rep.added, rep.bot_id) == (2, 0, 2, WORKER)
    rows = read_ledger(cfg.ledger).rows
    assert sorted((r.raw["bot_id"], r.raw["update_id"], r.message_id) for r in rows) == [
        (PLANNER, 1000, 5), (PLANNER, 1001, 6), (WORKER, 1000, 9), (WORKER, 1001, 6)]
    assert {r.key.split(":")[0] for r in rows} == {"tg@111", "tg@222"}


def test_without_bot_id_the_second_bots_updates_are_lost(cfg):
    """The failure ``bot_id`` fixes (still the rule for one bot: an id is one update)."""
    _harvest(cfg, *PLANNER_UPS)
    rep = _harvest(cfg, *WORKER_UPS)
    assert (rep.applied, rep.quarantined, rep.added) == (0, 1, 0)
    assert rep.ignored == {"already harvested (a repeated delivery)": 1}


def test_a_bots_repeated_delivery_is_still_deduped_and_a_reused_id_refused(cfg):
    worker = _bot(cfg, WORKER)
    _harvest(_bot(cfg, PLANNER), *PLANNER_UPS)
    _harvest(worker, *WORKER_UPS)
    before = Path(cfg.ledger).read_bytes()
    rep = _harvest(worker, *WORKER_UPS)  # the worker's dump again
    assert (rep.applied, rep.added, rep.duplicates) == (0, 0, 2)
    rep = _harvest(worker, reaction(1000, 77, [], ["🙈"]))  # another update under the worker's id 1000
    assert rep.quarantined == 1 and "update_id: 1000" in rep.quarantine_samples[0]
    assert Path(cfg.ledger).read_bytes() == before


def test_resume_offsets_are_per_bot(cfg):
    _harvest(_bot(cfg, PLANNER), *PLANNER_UPS)
    rep = _harvest(_bot(cfg, WORKER), reaction(50, 9, [], ["👍"]), {"update_id": 60, "message": {"text": "hi"}})
    assert rep.next_offset == 61  # the message update 60 holds no reaction but was read
    assert resume_offsets(cfg) == {PLANNER: 1002, WORKER: 61}
    log = [orjson.loads(x) for x in Path(cfg.harvest_log).read_bytes().splitlines()]
    assert [(h["bot_id"], h["max_update_id"], h["next_offset"]) for h in log] == [(PLANNER, 1001, 1002),
                                                                                (WORKER, 60, 61)]


def test_the_offset_forgets_update_ids_older_than_telegrams_renumbering(cfg, tmp_path):
    """After a week without updates Telegram numbers a bot's updates anew from a random id. The offset was the
    largest id ever read plus one: above the new ids, so a fetch with it confirmed (dropped) each as it came."""
    def logged(days_ago: float, top: int) -> None:
        when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
        with open(cfg.harvest_log, "ab") as fh:
            fh.write(orjson.dumps({"time": when.isoformat(), "source": "getUpdates", "max_update_id": top}) + b"\n")

    Path(cfg.harvest_log).parent.mkdir(parents=True)
    logged(8, 900_000)  # the last update the bot got, a week and a day ago
    empty = tmp_path / "empty.json"
    empty.write_bytes(b'{"ok": true, "result": []}')
    assert harvest_updates(cfg, [], "getUpdates", [str(empty)]).next_offset is None  # fetch without one
    rep = harvest_updates(cfg, [("t:1", reaction(12, 5, [], ["👍"])), ("t:2", reaction(13, 5, ["👍"], []))],
                          "getUpdates", ["t"])
    assert (rep.applied, rep.next_offset) == (2, 14)  # was 900001: the new ids 12, 13 and all after them dropped
    assert resume_offsets(cfg) == {"(none)": 14}
    logged(1, 900_000)  # ids read within the week still count
    assert resume_offsets(cfg) == {"(none)": 900_001}


def test_harvest_json_shows_counts_and_offset_per_bot(cfg, tmp_path):
    dump = tmp_path / "worker.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": [*WORKER_UPS, reaction(1000, 1, [], ["👍"])]}))
    _harvest(_bot(cfg, PLANNER), *PLANNER_UPS)
    args = ["feedback", "harvest", "--updates", str(dump), "--ledger", cfg.ledger, f"bot_id={WORKER}",
            *(f"{k}={getattr(cfg, k)}" for k in ("mapping", "harvest_log", "quarantine"))]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    bots = orjson.loads(res.output)["bots"]
    assert bots == {WORKER: {"read": 3, "accepted": 2, "applied": 2, "quarantined": 1, "added": 2, "duplicates": 0,
                             "next_offset": 1002}}


def test_a_bot_token_gives_its_public_id_never_the_secret(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_BOT_TOKEN", "123456:AAEzq9XkTail")
    rep = _harvest(dataclasses.replace(cfg, bot_token_env="PLANNER_BOT_TOKEN"), PLANNER_UPS[0])
    assert rep.bot_id == "123456" and read_ledger(cfg.ledger).rows[0].raw["bot_id"] == "123456"
    assert b"AAEzq9XkTail" not in Path(cfg.ledger).read_bytes() + Path(cfg.harvest_log).read_bytes()
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps([PLANNER_UPS[1]]))
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), "--ledger", cfg.ledger,
                                   "bot_id=123456:AAEzq9XkTail"])
    assert res.exit_code == 2 and "looks like a bot token" in res.output and "AAEzq9XkTail" not in res.output
    monkeypatch.delenv("PLANNER_BOT_TOKEN")
    with pytest.raises(ValueError, match="bot_token_env=PLANNER_BOT_TOKEN: the variable is unset"):
        harvest_updates(dataclasses.replace(cfg, bot_token_env="PLANNER_BOT_TOKEN"), [], "getUpdates", [])


def test_an_old_ledger_without_bot_ids_still_works_and_is_never_rewritten(cfg):
    old_batch = record_batch(cfg.registry, 42, [5], "runOld", "runOld:e")  # written before bot ids, like the ledger
    _harvest(cfg, *PLANNER_UPS)
    old = Path(cfg.ledger).read_bytes()
    assert labels_for_run_factory(cfg.ledger, cfg.mapping, cfg.registry)("runOld")["run"]["feedback_score"] == 1.0
    assert _harvest(cfg, PLANNER_UPS[0]).added == 0  # the single bot as before: deduped
    with pytest.raises(ValueError, match="set legacy_bot_id to the bot that wrote them"):
        harvest_updates(_bot(cfg, PLANNER), [("t:0", PLANNER_UPS[0])], "getUpdates", ["t"])
    with pytest.raises(ValueError, match="set legacy_bot_id"):
        record_batch(cfg.registry, 42, [6], "runNew", "runNew:e", bot_id=PLANNER)
    planner = _bot(cfg, PLANNER, legacy=PLANNER)
    rep = _harvest(planner, *PLANNER_UPS, reaction(1002, 6, [], ["👎"], user=8))  # the old dump again, and one more
    assert (rep.added, rep.duplicates, rep.applied) == (1, 2, 1)
    assert _harvest(_bot(cfg, WORKER, legacy=PLANNER), *WORKER_UPS).added == 2
    registry = Path(cfg.registry).read_bytes()
    assert record_batch(cfg.registry, 42, [5], "runOld", "runOld:e", bot_id=PLANNER, legacy_bot_id=PLANNER) == old_batch
    assert Path(cfg.registry).read_bytes() == registry  # the planner's old batch recorded again: nothing added
    with pytest.raises(ValueError, match="message 5 of bot 111 is already registered for run runOld"):
        record_batch(cfg.registry, 42, [5], "runNew", "runNew:e", bot_id=PLANNER, legacy_bot_id=PLANNER)
    record_batch(cfg.registry, 42, [5], "runW", "runW:e", bot_id=WORKER, legacy_bot_id=PLANNER)  # its own 5
    assert Path(cfg.ledger).read_bytes().startswith(old)  # appended to, never rewritten
    with pytest.raises(ValueError, match=r"holds rows of bots 111, 222 .*set bot_id"):
        harvest_updates(cfg, [("t:0", reaction(7, 1, [], ["👍"]))], "getUpdates", ["t"])
    with pytest.raises(ValueError, match="legacy_bot_id=111 is set but bot_id is not"):
        harvest_updates(_bot(cfg, "", legacy=PLANNER), [("t:0", reaction(7, 1, [], ["👍"]))], "getUpdates", ["t"])
    assert resume_offsets(planner) == {PLANNER: 1003, WORKER: 1002}
    # the old registry row is the planner's too: its reaction still labels the old run
    labels = labels_for_run_factory(cfg.ledger, cfg.mapping, cfg.registry, legacy_bot_id=PLANNER)
    assert labels("runOld")["run"]["feedback_score"] == 1.0 and labels.sources["legacy_bot_id"] == PLANNER


def test_two_bots_register_the_same_message_id_and_each_labels_its_own_run(cfg):
    record_batch(cfg.registry, 42, [5, 6], "runPlanner", "runPlanner:e", bot_id=PLANNER)
    record_batch(cfg.registry, 42, [6, 9], "runWorker", ["runWorker:e1", "runWorker:e2"], bot_id=WORKER)
    with pytest.raises(ValueError, match="chat 42 message 6 of bot 222 is already registered for run runWorker"):
        record_batch(cfg.registry, 42, [6], "runOther", "runOther:e", bot_id=WORKER)
    reg = read_registry(cfg.registry)
    assert (reg.find(42, 6, PLANNER).run_id, reg.find(42, 6, WORKER).run_id) == ("runPlanner", "runWorker")
    assert reg.find(42, 6) is None  # no unnamed bot sent it
    with pytest.raises(ValueError, match="holds rows of bots 111, 222"):
        record_batch(cfg.registry, 42, [70], "runX", "runX:e")
    _harvest(_bot(cfg, PLANNER), *PLANNER_UPS)  # 👍 on the planner's 5, ❤ on its 6: its last chunk
    _harvest(_bot(cfg, WORKER), *WORKER_UPS, reaction(1002, 77, [], ["👍"]))  # 👎 on 9, ❤ on 6; 77 an orphan
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry)
    runs = {r: lab["run"]["feedback"] for r, lab in doc["runs"].items()}
    assert (runs["runPlanner"]["score"], runs["runPlanner"]["reactions"]) == (3.0, {"👍": 1, "❤": 1})
    assert (runs["runWorker"]["score"], runs["runWorker"]["reactions"]) == (1.0, {"👎": 1, "❤": 1})
    rx, bots = doc["reactions"], doc["bots"]
    none = {"shared": 0, "for_other_bots": 0}  # a private chat: each bot's reactions join only its own messages
    assert bots == {PLANNER: {"rows": 2, "present": 2, "joined": 2, "orphans": 0, "ignored": 0, **none},
                    WORKER: {"rows": 3, "present": 3, "joined": 2, "orphans": 1, "ignored": 0, **none}}
    for k in ("present", "joined", "orphans", "ignored", "shared"):  # the per-bot counts add up to the totals
        assert sum(b[k] for b in bots.values()) == rx[k]
    assert rx["orphan_samples"] == [{"chat": hash_user(42), "message_id": 77, "emoji": "👍", "bot": WORKER}]
    assert doc["ledger"]["read"] == doc["ledger"]["usable"] + doc["ledger"]["unusable"] == 5


def test_the_audit_counts_each_bots_reactions_and_harvests(cfg):
    _harvest(_bot(cfg, PLANNER), *PLANNER_UPS)
    rep = _harvest(_bot(cfg, WORKER), *WORKER_UPS, reaction(1002, 9, ["👎"], [], at=60))
    today = parse_time(rep.time).date()  # the day the harvests were logged
    a = audit_day(cfg, dt.date(2026, 2, 25))
    assert {b: (x["rows_today"], x["added"], x["removed"]) for b, x in a["bots"].items()} == {
        PLANNER: (2, 2, 0), WORKER: (3, 2, 1)}
    assert "| 222 | 3 | 2 | 1 | 0 | 0 | 0 |" in to_markdown(a)  # no harvest ran on the reactions' day
    harvests = audit_day(cfg, today)["bots"]
    assert {b: (x["harvests"]["runs"], x["harvests"]["read"], x["harvests"]["added"]) for b, x in harvests.items()} == {
        PLANNER: (1, 2, 2), WORKER: (1, 3, 3)}


def test_one_webhook_receiver_per_bot_keeps_both_bots_updates(cfg):
    import threading

    from tests.feedback.test_webhook import SECRET, _post
    from tracebridge.feedback.webhook import WebhookServer

    servers = [WebhookServer(dataclasses.replace(_bot(cfg, b), webhook_port=0), SECRET) for b in (PLANNER, WORKER)]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        got = [_post(srv.url, ups[0], SECRET) for srv, ups in zip(servers, (PLANNER_UPS, WORKER_UPS))]
        again = _post(servers[1].url, WORKER_UPS[0], SECRET)  # Telegram re-sends the worker's update
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
    assert [code for code, _ in got] == [200, 200] and [b["added"] for _, b in got] == [1, 1]
    assert again == (200, {"ok": True, "added": 0, "duplicates": 1, "quarantined": 0})
    assert sorted((r.raw["bot_id"], r.message_id) for r in read_ledger(cfg.ledger).rows) == [(PLANNER, 5), (WORKER, 9)]


def test_export_labels_each_bots_run_with_its_own_reactions(cfg, tmp_path):
    """The planner bot's reply and the worker bot's reply went out as message 6 in the same private chat;
    the export labels each run with its own bot's reactions."""
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder
    from tracebridge.export.config import ExportConfig
    from tracebridge.export.labels import feedback_source
    from tracebridge.export.pipeline import export_traces
    from tracebridge.ops.samples import feedback_score

    events = {}
    for bot in (PLANNER, WORKER):
        with Recorder(tmp_path / "traces", goal=f"g{bot}", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
            root = run.emit("planner_input", role="planner", payload={"goal": f"g{bot}"})
            out = run.emit("planner_output", role="planner", parent=root,
                           payload={"plan": [{"index": 0, "description": f"d{bot}"}]})
            run.emit("episode_end", role="orchestrator", payload={"success": True})
        record_batch(cfg.registry, 42, [6], run.run_id, out, bot_id=bot)
        events[out] = bot
    _harvest(_bot(cfg, PLANNER), *PLANNER_UPS)  # ❤ on the planner's 6: +2
    _harvest(_bot(cfg, WORKER), reaction(1001, 6, [], ["👎"]))  # 👎 on the worker's 6: -1
    ecfg = ExportConfig()
    ecfg.feedback.ledger, ecfg.feedback.mapping, ecfg.feedback.registry = cfg.ledger, cfg.mapping, cfg.registry
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", ecfg, labels_for_run=feedback_source(ecfg.feedback))
    assert res.report["feedback"]["runs_labelled"] == res.report["feedback"]["runs_exported"] == 2
    scores: dict[str, set] = {}
    for p in sorted(res.path.rglob("*.jsonl")):
        for line in p.read_bytes().splitlines():
            meta = orjson.loads(line).get("meta") or {}
            for e in set(meta.get("event_ids") or []) & set(events):
                scores.setdefault(events[e], set()).add(feedback_score(meta.get("labels") or {}))
    assert scores == {PLANNER: {2.0}, WORKER: {-1.0}}


def test_chunks_record_takes_the_bot_from_the_command_line(cfg):
    def record(*extra: str):
        return CliRunner().invoke(app, ["feedback", "chunks", "record", "--chat", "42", "--message-ids", "6",
                                        "--run-id", "runP", "--event-id", "runP:e", "--registry", cfg.registry,
                                        "--json", *extra])

    planner = record(f"bot_id={PLANNER}")
    res = record(f"bot_id={WORKER}")  # the worker's own message 6 in the same run: a batch of its own
    assert res.exit_code == planner.exit_code == 0, res.output
    assert orjson.loads(res.output)["batch_id"] != orjson.loads(planner.output)["batch_id"]
    assert {(c.bot_id, c.run_id) for c in read_registry(cfg.registry).by_message.values()} == {(PLANNER, "runP"),
                                                                                             (WORKER, "runP")}
    res = record()
    assert res.exit_code == 2 and "holds rows of bots 111, 222" in res.output and "--message-ids" not in res.output
