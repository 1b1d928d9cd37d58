"""The join: net reactions, the last-chunk policy and the other-chunk rules, labels per run/event."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import reaction
from tracebridge.feedback.chunks import read_registry, record_batch
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.join import labels_for_runs
from tracebridge.feedback.ledger import hash_user
from tracebridge.feedback.mapping import load_mapping, set_score


def _harvest(cfg, *updates):
    return harvest_updates(cfg, [(f"t:{i}", u) for i, u in enumerate(updates)], "getUpdates", ["test"])


def test_reaction_added_then_removed_nets_to_nothing(cfg):
    record_batch(cfg.registry, 42, [10], "run1", "run1:e1")
    _harvest(cfg, reaction(1, 10, [], ["👍"], at=0), reaction(2, 10, ["👍"], [], at=5))
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry) == {}
    _harvest(cfg, reaction(3, 10, [], ["👍"], at=9))  # added again later: present again
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["run1"]["run"]["feedback"]["score"] == 1.0


def test_last_chunk_reaction_labels_every_chunk_of_the_batch(cfg):
    record_batch(cfg.registry, 42, [100, 101, 102], "runA", ["runA:e1", "runA:e2", "runA:e3"])
    record_batch(cfg.registry, 42, [200], "runB", "runB:e1")
    _harvest(cfg, reaction(1, 102, [], ["❤️"]))
    labels = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)
    assert set(labels) == {"runA"}
    assert set(labels["runA"]["events"]) == {"runA:e1", "runA:e2", "runA:e3"}
    for lab in [labels["runA"]["run"], *labels["runA"]["events"].values()]:
        assert lab["feedback"] == {"score": 2.0, "reactions": {"❤": 1}, "unmapped": {}, "n": 1, "scope": "batch",
                                   "mapping_version": 1, "source": "telegram"}
        assert (lab["feedback_score"], lab["feedback_count"]) == (2.0, 1)


def test_other_chunk_rules(cfg):
    record_batch(cfg.registry, 42, [100, 101], "runA", ["runA:e1", "runA:e2"])
    _harvest(cfg, reaction(1, 100, [], ["👎"]))  # on the first chunk, not the last
    batch = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry, "batch")["runA"]
    assert set(batch["events"]) == {"runA:e1", "runA:e2"}
    chunk = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry, "chunk")["runA"]
    assert set(chunk["events"]) == {"runA:e1"} and chunk["events"]["runA:e1"]["feedback"]["scope"] == "chunk"
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry, "ignore") == {}


def test_scores_use_the_current_mapping_and_reactions_count_once(cfg):
    record_batch(cfg.registry, 42, [1, 2], "r", "r:e")  # both chunks share one event
    _harvest(cfg, reaction(1, 2, [], ["🔥"], user=1), reaction(2, 2, [], ["👍"], user=2),
             reaction(3, 1, [], ["👍"], user=3), reaction(4, 999, [], ["👍"], user=4))
    lab = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["r"]["events"]["r:e"]["feedback"]
    assert (lab["score"], lab["reactions"], lab["unmapped"], lab["n"]) == (2.0, {"👍": 2}, {"🔥": 1}, 3)
    set_score(cfg.mapping, "🔥", 3)
    assert load_mapping(cfg.mapping).version == 2
    lab = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["r"]["run"]["feedback"]
    assert lab["score"] == 5.0 and lab["mapping_version"] == 2


def test_registry_records_once_and_reports_bad_lines(cfg):
    b = record_batch(cfg.registry, 42, [1, 2], "r", "r:e")
    assert record_batch(cfg.registry, 42, [1, 2], "r", "r:e") == b
    with open(cfg.registry, "ab") as fh:
        fh.write(b'{"batch_id": "x", "message_id": 5}\n' + orjson.dumps({"batch_id": "y", "chat": 1, "message_id": 6,
                 "chunk_index": 3, "chunk_count": 2, "run_id": "r", "event_id": "e"}) + b"\n")
    reg = read_registry(cfg.registry)
    assert len(reg.by_message) == 2 and [c.chunk_index for c in reg.batches[b]] == [0, 1]
    assert len(reg.skipped) == 2 and ":3:" in reg.skipped[0] and "chunk_index" in reg.skipped[1]


def test_export_seam_merges_labels_into_rows(cfg):
    from tracebridge.export.labels import merge_feedback, safe_labels
    from tracebridge.feedback import labels_for_run_factory

    record_batch(cfg.registry, 42, [100, 101], "runA", ["runA:e1", "runA:e2"])
    _harvest(cfg, reaction(1, 101, [], ["👍"]))
    source = labels_for_run_factory(cfg.ledger, cfg.mapping, cfg.registry)
    assert source("runB") is None
    row = safe_labels(merge_feedback({"expected_verdict": "end"}, source("runA"), ["runA:e1"]))
    assert row["feedback_score"] == 1.0 and row["feedback_count"] == 1 and row["expected_verdict"] == "end"


def test_labels_command_reports_unusable_ledger_and_registry_lines(cfg):
    """``feedback labels`` said nothing about ledger or registry lines it could not use (the audit
    does); now it counts and locates them, and exits 0 like the audit."""
    import json

    from typer.testing import CliRunner

    from tracebridge.cli import app

    record_batch(cfg.registry, 42, [10], "run1", "run1:e1")
    _harvest(cfg, reaction(1, 10, [], ["👍"]))
    with open(cfg.ledger, "ab") as fh:
        fh.write(b'{"time": -1e20, "change": "added", "emoji": "x", "message_id": 1}\nnot json\n')
    with open(cfg.registry, "ab") as fh:
        fh.write(b'{"batch_id": "x", "message_id": 5}\n')
    args = ["feedback", "labels", "--ledger", cfg.ledger, "--registry", cfg.registry, "--mapping", cfg.mapping]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["runs"]["run1"]["run"]["feedback"]["score"] == 1.0
    ledger, registry = doc["ledger"], doc["registry"]
    assert (ledger["read"], ledger["usable"], ledger["unusable"]) == (3, 1, 2)
    assert ledger["skipped"][0] == f"{cfg.ledger}:2:time: missing or not ISO/epoch"
    assert ledger["skipped"][1].startswith(f"{cfg.ledger}:3:<line>: ")
    assert (registry["read"], registry["usable"], registry["unusable"]) == (2, 1, 1)
    assert registry["skipped"] == [f"{cfg.registry}:2:chunk_index: missing"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0
    assert f"ledger {cfg.ledger}: read 3, usable 1, unusable 2" in r.stdout
    assert f"  {cfg.ledger}:2:time: missing or not ISO/epoch" in r.stdout
    assert f"  {cfg.registry}:2:chunk_index: missing\n" in r.stdout


def test_the_export_join_follows_the_other_chunk_rule(cfg):
    """The export always joined with ``batch``: ``other_chunks=ignore`` (or ``chunk``) changed what
    ``feedback labels`` and the audit said, while the training rows still labelled the whole reply."""
    from tracebridge.export.config import ExportConfig
    from tracebridge.export.config import FeedbackConfig as ExportFeedback
    from tracebridge.export.labels import feedback_source

    record_batch(cfg.registry, 42, [100, 101, 102], "runA", ["runA:e1", "runA:e2", "runA:e3"])
    _harvest(cfg, reaction(1, 101, [], ["👎"]))  # on the middle chunk

    def source(rule):
        return feedback_source(ExportFeedback(cfg.ledger, cfg.mapping, cfg.registry, rule))("runA")

    assert set(source("batch")["events"]) == {"runA:e1", "runA:e2", "runA:e3"}
    assert set(source("chunk")["events"]) == {"runA:e2"}
    assert source("ignore") is None
    bad = ExportConfig()
    bad.feedback.other_chunks = "last"
    assert bad.validate() == ["feedback.other_chunks=last: use one of batch, chunk, ignore"]


def test_labels_account_for_every_reaction_and_name_the_orphans(cfg):
    """``feedback labels`` listed the runs it labelled and nothing else: a reaction in another chat on
    the same message id, or one in a chat whose registry was never recorded, vanished without a word."""
    from tracebridge.feedback.join import labels_report

    record_batch(cfg.registry, 42, [500, 501], "runA", "runA:e")
    _harvest(cfg, reaction(1, 501, [], ["👍"]), reaction(2, 500, [], ["👎"], chat=43, user=8),
             reaction(3, 500, [], ["❤"], user=9))
    doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry, "ignore")
    assert doc["reactions"] == {"present": 3, "joined": 1, "orphans": 1, "ignored": 1, "other_chunks": "ignore",
                                "orphan_samples": [{"chat": hash_user(43), "message_id": 500, "emoji": "👎"}],
                                "shared": 0, "joined_for_other_bots": 0, "shared_samples": []}
    assert doc["runs"]["runA"]["run"]["feedback"]["score"] == 1.0  # the 👎 of chat 43 is not runA's


def test_changes_in_one_second_replay_in_update_order(cfg):
    """Telegram dates are whole seconds. A 👍 made before the harvester ran (no row for it), then taken
    off and put back within one second, replayed as added-then-removed and labelled nothing: the
    update order (ids grow) says the 👍 is there."""
    record_batch(cfg.registry, 42, [10], "run1", "run1:e1")
    _harvest(cfg, reaction(5, 10, ["👍"], [], at=3), reaction(6, 10, [], ["👍"], at=3))
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["run1"]["run"]["feedback_score"] == 1.0


def test_one_users_reaction_on_every_chunk_of_a_reply_counts_once(cfg):
    record_batch(cfg.registry, 42, [100, 101, 102], "runA", ["runA:e1", "runA:e2", "runA:e3"])
    _harvest(cfg, *(reaction(i, 100 + i, [], ["👍"], user=7) for i in range(3)),  # one reader, 👍 on each chunk
             reaction(3, 102, [], ["👍"], user=8), reaction(4, 101, [], ["👎"], user=7))
    for rule in ("batch", "chunk"):
        labels = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry, rule)["runA"]
        run = labels["run"]["feedback"]
        if rule == "batch":  # the reply: user 7's 👍 once, user 8's 👍, user 7's 👎
            assert (run["score"], run["reactions"], run["n"]) == (1.0, {"👍": 2, "👎": 1}, 3)
            assert {e: lab["feedback_score"] for e, lab in labels["events"].items()} == dict.fromkeys(
                ["runA:e1", "runA:e2", "runA:e3"], 1.0)
        else:  # chunk scope: each chunk is its own message; the last chunk still labels the reply
            assert labels["events"]["runA:e1"]["feedback"]["reactions"] == {"👍": 2}
            assert labels["events"]["runA:e2"]["feedback"]["reactions"] == {"👍": 2, "👎": 1}


def test_bundle_manifest_names_the_feedback_files_it_was_labelled_with(cfg, tmp_path):
    import hashlib
    from pathlib import Path

    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder
    from tracebridge.export.config import ExportConfig
    from tracebridge.export.labels import feedback_source
    from tracebridge.export.pipeline import export_traces

    with Recorder(tmp_path / "traces", goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        out = run.emit("planner_output", role="planner", parent=root,
                       payload={"plan": [{"index": 0, "description": "d"}]})
        run.emit("episode_end", role="orchestrator", payload={"success": True})
    record_batch(cfg.registry, 42, [100, 101], run.run_id, out)
    _harvest(cfg, reaction(1, 101, [], ["👍"]))
    set_score(cfg.mapping, "🔥", 3)
    ecfg = ExportConfig()
    ecfg.feedback.ledger, ecfg.feedback.mapping, ecfg.feedback.registry = cfg.ledger, cfg.mapping, cfg.registry
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", ecfg, labels_for_run=feedback_source(ecfg.feedback))
    fb = orjson.loads((res.path / "manifest.json").read_bytes())["feedback"]
    for name in ("ledger", "mapping", "registry"):
        data = Path(getattr(cfg, name)).read_bytes()
        assert fb[name] == {"path": getattr(cfg, name), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert (fb["mapping_version"], fb["other_chunks"]) == (2, "batch")
    assert res.report["feedback"]["runs_labelled"] == 1


def test_a_message_registered_for_another_reply_is_refused_not_mixed(cfg):
    """Two bots sharing one registry: a private chat's id is the user's for both, and each bot numbers its
    own messages, so bot B's message 11 was silently skipped as a duplicate of bot A's and its reactions
    labelled bot A's run."""
    from pathlib import Path

    import pytest
    from typer.testing import CliRunner

    from tracebridge.cli import app

    record_batch(cfg.registry, 7, [10, 11], "runA", "runA:e1")
    before = Path(cfg.registry).read_bytes()
    with pytest.raises(ValueError, match="chat 7 message 11 is already registered for run runA"):
        record_batch(cfg.registry, 7, [11, 12], "runB", "runB:e1")
    res = CliRunner().invoke(app, ["feedback", "chunks", "record", "--chat", "7", "--message-ids", "12,11",
                                   "--run-id", "runB", "--event-id", "runB:e1", "--registry", cfg.registry])
    assert res.exit_code == 2 and "its own feedback files" in res.output
    assert Path(cfg.registry).read_bytes() == before  # nothing of the refused batch written
    assert record_batch(cfg.registry, 7, [10, 11], "runA", "runA:e1") == read_registry(cfg.registry).find(7, 10).batch_id
    record_batch(cfg.registry, 8, [11], "runB", "runB:e1")  # another chat: its own message ids
    assert read_registry(cfg.registry).find(8, 11).run_id == "runB"



@pytest.mark.parametrize("field, value, says", [
    ("message_id", "x", "message_id: 'x' is not an integer"),
    ("chunk_index", 0.5, "chunk_index: 0.5 is not an integer"),
    ("message_id", True, "message_id: True is not an integer"),
    ("run_id", None, "run_id: missing"),
])
def test_an_unusable_registry_row_names_its_field(cfg, field, value, says):
    # a number field that was not one was "row: missing or invalid"; true and 0.5 were taken as 1 and 0
    good = {"batch_id": "b", "chat": 1, "message_id": 5, "chunk_index": 0, "chunk_count": 1, "run_id": "r",
            "event_id": "r:e"}
    bad = {k: v for k, v in {**good, field: value}.items() if v is not None}
    path = Path(cfg.registry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(bad) + b"\n" + orjson.dumps({**good, "message_id": 6}) + b"\n")
    reg = read_registry(path)
    assert reg.skipped == [f"{path}:1:{says}"] and reg.read == 2 and len(reg.raws) == 1


@pytest.mark.parametrize("chat, why", [("@mychannel", "not an integer"), (4.2, "not an integer (a float)"),
                                       (True, "not an integer (a bool)"), (2**70, "out of range"),
                                       (None, "not an integer (a NoneType)")])
def test_record_batch_refuses_a_chat_that_is_no_telegram_id(cfg, chat, why):
    """The library took any chat (the command checked --chat): a float or a channel name made rows no
    reaction can join, 2**70 stopped the registry's writer. Nothing is written."""
    with pytest.raises(ValueError, match=re.escape(f"chat: {chat!r}: {why}")):
        record_batch(cfg.registry, chat, [10], "run1", "run1:e1")
    assert read_registry(cfg.registry).raws == []


def test_record_batch_reads_a_chat_id_given_as_text_as_the_integer_reactions_carry(cfg):
    assert record_batch(cfg.registry, " -1001234 ", [10], "run1", "run1:e1")
    (row,) = read_registry(cfg.registry).raws
    assert row["chat"] == -1001234 and row["key"] == "-1001234:10"


def test_a_skin_tone_is_the_same_reaction_and_score(cfg):
    """👍🏽 was unmapped (only U+FE0F was dropped): no score, and a user's 👍🏽 → 👍 read as a change."""
    assert load_mapping(cfg.mapping).score("👍🏽") == 1.0 and load_mapping(cfg.mapping).score("❤︎") == 2.0
    assert load_mapping(cfg.mapping).score("❤‍🔥") is None  # a ZWJ sequence is its own emoji
    record_batch(cfg.registry, 42, [10], "run1", "run1:e1")
    _harvest(cfg, reaction(1, 10, [], ["👍🏽"]))
    lab = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["run1"]["run"]["feedback"]
    assert (lab["score"], lab["reactions"], lab["unmapped"]) == (1.0, {"👍": 1}, {})
    rep = _harvest(cfg, reaction(2, 10, ["👍🏽"], ["👍"], at=3), reaction(1, 10, [], ["👍🏽"]))  # a re-delivery too
    assert (rep.added, rep.quarantined, rep.applied) == (0, 0, 0)
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["run1"]["run"]["feedback_score"] == 1.0


def test_a_users_reaction_added_twice_counts_once(cfg):
    """The removal between two adds was lost (getUpdates keeps 24 hours): the user's ❤ counted 2, +4."""
    record_batch(cfg.registry, 42, [10], "run1", "run1:e1")
    _harvest(cfg, reaction(5, 10, [], ["❤"], user=9), reaction(7, 10, [], ["❤"], user=9, at=10),
             reaction(8, 10, [], ["❤"], user=10, at=11))
    lab = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["run1"]["run"]["feedback"]
    assert (lab["score"], lab["reactions"], lab["n"]) == (4.0, {"❤": 2}, 2)  # two users, one ❤ each
    _harvest(cfg, reaction(9, 10, ["❤"], [], user=9, at=20))  # one removal takes the user's ❤ away
    assert labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)["run1"]["run"]["feedback_score"] == 2.0


def test_conflicting_reactions_of_two_users_cancel_and_both_are_listed(cfg):
    """As docs/feedback-chunk-policy.md rule 4 says: 👍 + 👎 is 0, ❤️ + 🙈 is 0, each reaction listed."""
    record_batch(cfg.registry, 42, [10], "run1", "run1:e1")
    record_batch(cfg.registry, 42, [11], "run2", "run2:e1")
    _harvest(cfg, reaction(1, 10, [], ["👍"], user=1), reaction(2, 10, [], ["👎"], user=2),
             reaction(3, 11, [], ["❤️"], user=1), reaction(4, 11, [], ["🙈"], user=2))
    labels = labels_for_runs(cfg.ledger, cfg.mapping, cfg.registry)
    one, two = labels["run1"]["run"]["feedback"], labels["run2"]["run"]["feedback"]
    assert (one["score"], one["reactions"], one["n"]) == (0.0, {"👍": 1, "👎": 1}, 2)
    assert (two["score"], two["reactions"], two["n"]) == (0.0, {"❤": 1, "🙈": 1}, 2)


def test_rows_without_update_ids_replay_in_ledger_order_within_a_second():
    """OpenClaw rows have no update id and whole-second times: a 👍 removed and added again within a second
    replayed as added, then removed (the old tie-break), and read as gone."""
    from tracebridge.feedback.join import net_reactions
    from tracebridge.feedback.ledger import check_row

    def row(t: str, change: str) -> object:
        return check_row({"time": t, "chat": "session:s", "message_id": 9, "user": "u:1", "emoji": "👍",
                          "change": change, "source": "openclaw", "update_id": None})

    t0, t1 = "2026-03-01T10:00:00Z", "2026-03-01T10:00:05Z"
    assert len(net_reactions([row(t0, "added"), row(t1, "removed"), row(t1, "added")])) == 1
    assert net_reactions([row(t1, "added"), row(t1, "removed")]) == {}


def test_a_mapping_giving_one_reaction_two_scores_is_refused(tmp_path):
    """❤️ and ❤ (or 👍🏽 and 👍) are one reaction: with two scores, the one written last won in silence."""
    from tracebridge.feedback.mapping import parse_mapping

    with pytest.raises(ValueError, match=r"m.json:mapping.👍🏽: 👍🏽 and 👍 are one reaction .* two scores, 3 and 1"):
        parse_mapping({"version": 2, "mapping": {"👍": 1, "👍🏽": 3}}, "m.json")
    assert parse_mapping({"mapping": {"❤️": 2, "❤": 2}}, "m.json").score("❤") == 2.0  # the defaults: one score
