"""Two of our bots in one supergroup or channel (``tracebridge.feedback.join`` rule 4).

There message ids are the chat's, so both bots see one message under one id, and a reaction on it
is delivered to every bot that is an admin, each under its own update id. Before rule 4, each bot's
copy joined only messages that bot sent: the sender's copy labelled its run and the other bot's copy
was listed as an orphan (``present`` counted the reaction twice, the audit named a false orphan), and
a reaction harvested only by the bot that did not send the message (the sender no admin, or its
harvest behind) labelled nothing at all.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from tests.feedback.conftest import DATE, emoji, feedback_cli
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.join import labels_for_run_factory

PLANNER, WORKER = "111", "222"
GROUP, BASIC_GROUP = -1001234567890, -4001234567  # a supergroup (-100…) and a basic group


def _update(uid: int, mid: int, old: list[str], new: list[str], chat: int = GROUP, user: int = 7,
            at: int = 0) -> dict[str, Any]:
    """A ``message_reaction`` update as the Bot API delivers it in a group."""
    kind = "supergroup" if chat == GROUP else "group"
    return {"update_id": uid, "message_reaction": {
        "chat": {"id": chat, "title": "Team", "type": kind}, "message_id": mid,
        "user": {"id": user, "is_bot": False, "first_name": "Ada"}, "date": DATE + at,
        "old_reaction": [emoji(e) for e in old], "new_reaction": [emoji(e) for e in new]}}


def _counts(uid: int, mid: int, n: int) -> dict[str, Any]:
    """A ``message_reaction_count`` update (anonymous reactions in a channel)."""
    return {"update_id": uid, "message_reaction_count": {
        "chat": {"id": GROUP, "title": "News", "type": "channel"}, "message_id": mid, "date": DATE,
        "reactions": [{"type": emoji("👍"), "total_count": n}]}}


def _harvest(cfg, tmp_path: Path, bot: str, *updates: dict[str, Any]) -> dict[str, Any]:
    dump = tmp_path / f"getupdates-{bot}-{updates[0]['update_id']}.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": list(updates)}))
    _, doc = feedback_cli(cfg, "harvest", "--updates", str(dump), f"bot_id={bot}")
    [rep] = doc["harvests"]
    assert rep["read"] == rep["accepted"] + rep["quarantined"]
    return rep


def _labels(cfg) -> dict[str, Any]:
    _, doc = feedback_cli(cfg, "labels")
    rx = doc["reactions"]
    assert rx["present"] == rx["joined"] + rx["orphans"] + rx["ignored"] + rx["shared"]  # every copy accounted once
    for k in ("present", "joined", "orphans", "ignored", "shared"):
        assert sum(b[k] for b in doc["bots"].values()) == rx[k]
    return doc


def _runs(doc: dict[str, Any]) -> dict[str, tuple[Any, int, dict[str, int]]]:
    return {r: (lab["run"]["feedback_score"], lab["run"]["feedback_count"], lab["run"]["feedback"]["reactions"])
            for r, lab in doc["runs"].items()}


def _two_replies(cfg) -> None:
    """The planner sent message 500 of the supergroup, the worker message 501."""
    record_batch(cfg.registry, GROUP, [500], "runPlanner", "runPlanner:e", bot_id=PLANNER)
    record_batch(cfg.registry, GROUP, [501], "runWorker", "runWorker:e", bot_id=WORKER)


def test_both_bots_harvest_one_reaction_and_it_labels_the_senders_run_once(cfg, tmp_path):
    _two_replies(cfg)
    # Ada's 👍 on 500 and ❤ on 501 reach both bots, each under its own update ids
    assert _harvest(cfg, tmp_path, PLANNER, _update(9000, 500, [], ["👍"]), _update(9001, 501, [], ["❤"]))["added"] == 2
    assert _harvest(cfg, tmp_path, WORKER, _update(7000, 500, [], ["👍"]), _update(7001, 501, [], ["❤"]))["added"] == 2
    doc = _labels(cfg)
    assert _runs(doc) == {"runPlanner": (1.0, 1, {"👍": 1}), "runWorker": (2.0, 1, {"❤": 1})}
    rx = doc["reactions"]
    assert (rx["present"], rx["joined"], rx["orphans"], rx["shared"], rx["joined_for_other_bots"]) == (4, 2, 0, 2, 0)
    assert sorted((s["bot"], s["sent_by"], s["message_id"]) for s in rx["shared_samples"]) == [
        (PLANNER, WORKER, 501), (WORKER, PLANNER, 500)]
    assert {b: (x["joined"], x["shared"], x["orphans"]) for b, x in doc["bots"].items()} == {
        PLANNER: (1, 1, 0), WORKER: (1, 1, 0)}
    # the export's label source agrees: one reaction per run
    labels = labels_for_run_factory(cfg.ledger, cfg.mapping, cfg.registry)
    assert labels("runPlanner")["run"]["feedback_count"] == 1 and labels("runWorker")["run"]["feedback_count"] == 1
    # the audit lists the copies as shared, not as orphans, and passes (both harvests ran)
    day = dt.datetime.fromtimestamp(DATE, dt.UTC).date().isoformat()
    _, audit = feedback_cli(cfg, "audit", "--day", day)
    assert audit["orphans"] == [] and len(audit["shared"]) == 2 and sorted(audit["runs_labeled"]) == [
        "runPlanner", "runWorker"]
    assert "## Seen by several of our bots, counted once (2)" in Path(audit["files"]["markdown"]).read_text("utf-8")


def test_a_reaction_only_the_other_bot_harvested_labels_the_senders_run(cfg, tmp_path):
    """The planner is no admin of the group (or its harvest has not run yet): the worker's copy stands in,
    until the planner's own copy arrives; the label stays one reaction."""
    _two_replies(cfg)
    _harvest(cfg, tmp_path, WORKER, _update(7000, 500, [], ["👍"]))
    doc = _labels(cfg)
    assert _runs(doc) == {"runPlanner": (1.0, 1, {"👍": 1})}
    assert (doc["reactions"]["joined_for_other_bots"], doc["bots"][WORKER]["for_other_bots"]) == (1, 1)
    _harvest(cfg, tmp_path, PLANNER, _update(9000, 500, [], ["👍"]))
    doc = _labels(cfg)
    assert _runs(doc) == {"runPlanner": (1.0, 1, {"👍": 1})}
    assert (doc["reactions"]["joined_for_other_bots"], doc["reactions"]["shared"]) == (0, 1)
    assert doc["reactions"]["shared_samples"] == [{"chat": str(GROUP), "message_id": 500, "emoji": "👍",
                                                   "bot": WORKER, "sent_by": PLANNER}]


def test_the_senders_copy_decides_when_the_other_bot_missed_a_removal(cfg, tmp_path):
    _two_replies(cfg)
    _harvest(cfg, tmp_path, WORKER, _update(7000, 500, [], ["👍"]))  # the worker's harvest stopped here
    _harvest(cfg, tmp_path, PLANNER, _update(9000, 500, [], ["👍"]), _update(9001, 500, ["👍"], [], at=5))
    doc = _labels(cfg)
    assert doc["runs"] == {}  # Ada took her 👍 back: the worker's stale copy labels nothing
    assert (doc["reactions"]["present"], doc["reactions"]["shared"], doc["reactions"]["joined"]) == (1, 1, 0)


def test_two_bots_anonymous_channel_counts_count_once(cfg, tmp_path):
    record_batch(cfg.registry, GROUP, [600], "runPost", "runPost:e", bot_id=PLANNER)
    _harvest(cfg, tmp_path, PLANNER, _counts(9000, 600, 3))
    _harvest(cfg, tmp_path, WORKER, _counts(7000, 600, 3))
    doc = _labels(cfg)
    assert _runs(doc) == {"runPost": (3.0, 3, {"👍": 3})}  # not 6
    assert (doc["reactions"]["joined"], doc["reactions"]["shared"]) == (1, 1)


def test_in_a_basic_group_each_bot_numbers_its_own_messages(cfg, tmp_path):
    """Basic groups (and private chats) number messages per member: the worker's message 500 of a basic
    group is not the planner's 500, so its reaction there stays an orphan."""
    record_batch(cfg.registry, BASIC_GROUP, [500], "runPlanner", "runPlanner:e", bot_id=PLANNER)
    _harvest(cfg, tmp_path, WORKER, _update(7000, 500, [], ["👍"], chat=BASIC_GROUP))
    doc = _labels(cfg)
    assert doc["runs"] == {}
    assert (doc["reactions"]["orphans"], doc["reactions"]["shared"]) == (1, 0)
