"""The chunk-policy check tells a broken reaction join from no reactions: reactions in the ledger the export
joined, none of which reached a batch in the export, fail the review's ``chunk_policy``; no reactions leave it
not exercised (before, both read "not exercised")."""

from __future__ import annotations

import datetime as dt
import json

from tests.ops.test_review import NOW, good_set, lines
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.join import labels_for_run_factory
from tracebridge.feedback.ledger import hash_user
from tracebridge.ops.chunks import check_chunk_policy
from tracebridge.ops.config import ReviewConfig
from tracebridge.ops.review import review

DAY = NOW - dt.timedelta(days=1)  # inside the 3-day window


def _reaction(mid: int, at: dt.datetime, emoji: str = "👍", change: str = "added") -> dict:
    return {"time": at.isoformat(), "chat": 42, "message_id": mid, "user": "u:1", "emoji": emoji, "change": change,
            "count": 1, "source": "getUpdates", "key": f"{mid}:{emoji}:{change}:{at.isoformat()}"}


def _files(tmp_path, reactions, runs=("r1",)):
    """A registry with one two-chunk reply per run (messages 5-6, 7-8, ...), a ledger of ``reactions``, and an
    export bundle whose rows hold the events of run r1 only, unlabelled, with the manifest's ``feedback``
    block as the export writes it (``labels_for_run_factory``'s sources)."""
    fb = tmp_path / "memory"
    fb.mkdir()
    reg, ledger = fb / "chunks.jsonl", fb / "ledger.jsonl"
    for i, run in enumerate(runs):
        record_batch(reg, 42, [5 + 2 * i, 6 + 2 * i], run, [f"{run}-e1", f"{run}-e2"], time=DAY.isoformat())
    ledger.write_text("".join(json.dumps(r) + "\n" for r in reactions))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    src = labels_for_run_factory(str(ledger), str(fb / "mapping.json"), str(reg))
    (bundle / "manifest.json").write_text(json.dumps({"bundle_id": "b", "feedback": src.sources}))
    (bundle / "worker_sft.jsonl").write_text("".join(
        json.dumps({"messages": [], "meta": {"run_id": "r1", "event_ids": [e], "labels": {}}}) + "\n"
        for e in ("r1-e1", "r1-e2")))
    doc = tmp_path / "policy.md"
    doc.write_text("A reaction on the last chunk labels the whole batch.")
    return doc, reg, bundle, ledger


def _review(tmp_path, chunk):
    arts = tmp_path / "artifacts"
    good_set(arts, per_cycle={k: {"chunk": chunk} for k in range(3)})
    return lines(review(arts, ReviewConfig(), now=NOW))["chunk_policy"]


def test_reactions_on_messages_in_no_registered_batch_fail_the_review(tmp_path):
    # the ledger's message ids (99, 100) match no registered chunk (5, 6): every reaction is an orphan
    doc, reg, bundle, _ = _files(tmp_path, [_reaction(99, DAY), _reaction(100, DAY, "❤️")])
    res = check_chunk_policy(doc, reg, bundle)
    rx = res["reactions"]
    assert res["batches_labelled"] == 0 and res["applied"] is True
    assert (rx["present"], rx["joined"], rx["in_export"], rx["orphans"]) == (2, 0, 0, 2)
    assert rx["by_day"] == {DAY.date().isoformat(): {"present": 2, "joined": 0, "in_export": 0, "ignored": 0,
                                                     "orphans": 2}}
    line = _review(tmp_path, res)
    assert line.status == "fail", line
    assert "2 reactions in the ledger" in line.evidence and "0 to a batch in the export" in line.evidence
    u = hash_user(42)  # a private chat's id (the user's) is named by its pseudonym, never in the clear
    assert f"2 are on messages in no registered batch (chat {u} message 100, chat {u} message 99)" in line.evidence


def test_reactions_on_batches_of_runs_not_exported_fail_and_name_the_runs(tmp_path):
    # the reaction joins run r9's reply, but the export holds only r1: the registry's run ids are not the export's
    doc, reg, bundle, _ = _files(tmp_path, [_reaction(8, DAY)], runs=("r1", "r9"))
    res = check_chunk_policy(doc, reg, bundle)
    assert (res["reactions"]["joined"], res["reactions"]["in_export"]) == (1, 0)
    assert res["reactions"]["runs_not_in_export"] == ["r9"]
    line = _review(tmp_path, res)
    assert line.status == "fail" and "1 of them joined to a registered chunk" in line.evidence
    assert "runs not in the export (r9)" in line.evidence


def test_no_reactions_or_reactions_before_the_window_are_not_exercised(tmp_path):
    doc, reg, bundle, _ = _files(tmp_path, [])
    res = check_chunk_policy(doc, reg, bundle)
    assert res["reactions"]["present"] == 0
    assert _review(tmp_path, res).status == "not exercised"
    old = tmp_path / "old"
    old.mkdir()
    doc, reg, bundle, _ = _files(old, [_reaction(99, NOW - dt.timedelta(days=9))])
    res = check_chunk_policy(doc, reg, bundle)
    assert res["reactions"]["present"] == 1
    assert _review(old, res).status == "not exercised"


def test_a_reaction_removed_again_is_no_reaction(tmp_path):
    doc, reg, bundle, _ = _files(tmp_path, [_reaction(99, DAY), _reaction(99, DAY + dt.timedelta(minutes=1),
                                                                         change="removed")])
    res = check_chunk_policy(doc, reg, bundle)
    assert res["reactions"]["present"] == 0 and _review(tmp_path, res).status == "not exercised"


def test_a_joined_reaction_in_the_export_labels_and_passes(tmp_path):
    doc, reg, bundle, _ = _files(tmp_path, [_reaction(6, DAY), _reaction(99, DAY)])
    rows = [{"messages": [], "meta": {"run_id": "r1", "event_ids": [e], "labels": {"feedback_score": 1.0}}}
            for e in ("r1-e1", "r1-e2")]
    (bundle / "worker_sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = check_chunk_policy(doc, reg, bundle)
    assert (res["reactions"]["present"], res["reactions"]["in_export"], res["batches_labelled"]) == (2, 1, 1)
    assert _review(tmp_path, res).status == "pass"


def test_reactions_harvested_after_the_export_are_not_counted_against_it(tmp_path):
    # the cycle's harvest runs beside its export: rows it appends after the export read the ledger were not joined
    doc, reg, bundle, ledger = _files(tmp_path, [])
    with ledger.open("a") as fh:
        fh.write(json.dumps(_reaction(99, DAY)) + "\n")
    res = check_chunk_policy(doc, reg, bundle)
    assert res["reactions"]["as_exported"] is True and res["reactions"]["present"] == 0


def test_an_export_that_joined_no_ledger_counts_no_reactions(tmp_path):
    doc, reg, bundle, _ = _files(tmp_path, [_reaction(99, DAY)])
    (bundle / "manifest.json").write_text(json.dumps({"bundle_id": "b"}))
    res = check_chunk_policy(doc, reg, bundle)
    assert res["reactions"]["ledger"] is None and res["reactions"]["present"] == 0
