"""Realistic mixes of Bot API updates through ``feedback harvest``: every update is read once and accepted
(applied or ignored with its reason) or quarantined, and the labels are those the reactions make."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.feedback.conftest import DATE, emoji, feedback_cli, reaction

GROUP = -1001234567890
CHANNEL = -1009876543210


def test_a_reaction_of_nobody_is_quarantined_not_stored_as_a_null_user(cfg, tmp_path):
    """A message_reaction names its reactor in ``user`` or ``actor_chat``; one with neither (or an id that is no
    number) was applied as a row of user null, which the join counts up like an anonymous count."""
    nobody = reaction(2, 10, [], ["👍"], chat=GROUP)
    del nobody["message_reaction"]["user"]
    odd = reaction(3, 10, [], ["👎"], chat=GROUP)
    odd["message_reaction"]["user"] = {"id": "ann_smith", "first_name": "Ann"}
    admin = reaction(4, 10, [], ["🙈"], chat=GROUP)  # an anonymous admin: the group itself reacted
    admin["message_reaction"]["actor_chat"] = admin["message_reaction"].pop("user") | {"id": GROUP, "type": "supergroup"}
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps([reaction(1, 10, [], ["❤"], chat=GROUP), nobody, odd, admin]))
    code, doc = feedback_cli(cfg, "harvest", "--updates", str(dump))
    [h] = doc["harvests"]
    assert code == 0 and (h["read"], h["accepted"], h["applied"], h["quarantined"], h["added"]) == (4, 2, 2, 2, 2)
    assert h["read"] == h["accepted"] + h["quarantined"]
    assert [q.split(": ", 1)[0].rsplit(":", 1)[-1] for q in h["quarantine_samples"]] == ["user", "user"]
    assert "ann_smith" not in Path(cfg.quarantine).read_text() + Path(cfg.harvest_log).read_text()
    rows = [orjson.loads(line) for line in Path(cfg.ledger).read_bytes().splitlines()]
    assert all(r["user"] and r["user"].startswith("u:") for r in rows)


def test_a_day_of_mixed_updates_reconciles_and_labels_what_the_reactions_say(cfg, tmp_path):
    ann = {"id": 5550001, "is_bot": False, "first_name": "Ann", "username": "ann_smith"}

    def mr(uid, mid, old, new, at=0, **who):
        upd = reaction(uid, mid, old, new, chat=GROUP, at=at)
        upd["message_reaction"].pop("user")
        upd["message_reaction"].update(who)
        return upd

    def counts(uid, at, **totals):
        return {"update_id": uid, "message_reaction_count": {
            "chat": {"id": CHANNEL, "type": "channel"}, "message_id": 50, "date": DATE + at,
            "reactions": [{"type": emoji(e), "total_count": n} for e, n in totals.items()]}}

    ups = [mr(1, 10, [], ["👍"], user=ann), mr(2, 10, ["👍"], ["❤"], at=5, user=ann),  # changed
           mr(3, 11, [], ["👎"], user={"id": 777}), mr(4, 11, ["👎"], [], at=9, user={"id": 777}),  # removed
           mr(5, 10, [], ["🙈"], actor_chat={"id": GROUP, "type": "supergroup", "title": "Ops"}),
           counts(6, 0, **{"👍": 3, "👎": 1}), counts(7, 60, **{"👍": 2}), counts(6, 0, **{"👍": 3, "👎": 1}),
           {"update_id": 8, "channel_post": {"message_id": 51, "chat": {"id": CHANNEL, "type": "channel"}, "date": DATE}},
           {"update_id": 9, "edited_message": {"message_id": 10, "chat": {"id": GROUP, "type": "supergroup"},
                                               "date": DATE, "edit_date": DATE + 3}},
           mr(1, 10, [], ["👍"], user=ann)]  # a re-delivery
    for chat, mids, run in ((GROUP, "9,10", "runA"), (GROUP, "11", "runB"), (CHANNEL, "50", "runC")):
        assert feedback_cli(cfg, "chunks", "record", "--chat", str(chat), "--message-ids", mids, "--run-id", run,
                            "--event-id", f"{run}:e")[0] == 0
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": ups}))
    code, doc = feedback_cli(cfg, "harvest", "--updates", str(dump))
    [h] = doc["harvests"]
    assert code == 0 and h["read"] == h["accepted"] + h["quarantined"] == 11 and h["quarantined"] == 0
    assert h["accepted"] == h["applied"] + sum(h["ignored"].values()) and h["applied"] == 7
    assert h["ignored"] == {"already harvested (a repeated delivery)": 1, "not a reaction update (channel_post)": 1,
                            "not a reaction update (edited_message)": 1,
                            "reaction counts unchanged, or not newer than counts already applied": 1}
    _, lab = feedback_cli(cfg, "labels")
    runs = {k: v["run"]["feedback"] for k, v in lab["runs"].items()}
    assert runs["runA"]["reactions"] == {"❤": 1, "🙈": 1} and runs["runA"]["score"] == 0.0  # +2 and -2
    assert "runB" not in runs  # the 👎 was taken back
    assert (runs["runC"]["reactions"], runs["runC"]["n"]) == ({"👍": 2}, 2)  # the counts' last totals
    assert lab["reactions"]["orphans"] == 0
