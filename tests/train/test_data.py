"""Bundle views: row checks and quarantine, counts that reconcile, curation, TRL records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tracebridge.train.config import DataConfig
from tracebridge.train.data import (
    BundleError,
    curate,
    load_role_data,
    read_view,
    to_pref_records,
    to_sft_records,
    verify_bundle_dir,
)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "train_views"


def test_fixture_bundle_verifies_and_loads_every_role():
    manifest = verify_bundle_dir(FIXTURE)
    assert manifest["bundle_id"]
    for role, has_pref in (("planner", False), ("worker", True), ("verifier", True)):
        d = load_role_data(FIXTURE, role)
        c = d.counts()
        assert c["read"] == c["accepted"] + c["quarantined"] and c["quarantined"] == 0
        assert d.split(d.sft, "train") and d.split(d.sft, "test")
        assert bool(d.pref) == has_pref


def test_bad_rows_are_quarantined_with_file_line_field(tmp_path):
    lines = (FIXTURE / "verifier_sft.jsonl").read_text().splitlines()[:3]
    bad = json.loads(lines[1])
    bad["meta"]["split"] = "holdout"
    nometa = json.loads(lines[2])
    del nometa["meta"]
    (tmp_path / "verifier_sft.jsonl").write_text("\n".join([lines[0], json.dumps(bad), "{oops", json.dumps(nometa),
                                                             json.dumps({"messages": [{"role": "user", "content": "x"}],
                                                                         "meta": json.loads(lines[0])["meta"]})]) + "\n")
    v = read_view(tmp_path, "verifier_sft")
    assert v.read == 5 and len(v.rows) == 1 and len(v.quarantined) == 4
    where = [q.where for q in v.quarantined]
    assert where[0].endswith("verifier_sft.jsonl:2:meta.split")
    assert where[1].endswith(":3:row") and where[2].endswith(":4:meta")
    assert "no assistant turn" in v.quarantined[3].reason
    assert v.quarantined[1].raw == "{oops"  # the raw line is kept


def test_invalid_utf8_reads_with_replacement_and_gc_comes_back(tmp_path):
    import gc

    first = (FIXTURE / "verifier_sft.jsonl").read_bytes().splitlines()[0]
    row = json.loads(first)
    row["messages"][-1]["content"] = "verdict: end \udcff"
    broken = json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogateescape")  # a raw 0xff byte
    assert b"\xff" in broken
    (tmp_path / "verifier_sft.jsonl").write_bytes(first + b"\n" + broken + b"\n" + b"{oops \xff\n")
    v = read_view(tmp_path, "verifier_sft")
    assert v.read == 3 and len(v.rows) == 2 and len(v.quarantined) == 1
    assert v.rows[1]["messages"][-1]["content"] == "verdict: end \ufffd"  # as a text-mode reader gives it
    assert v.quarantined[0].where.endswith(":3:row") and v.quarantined[0].raw == "{oops \ufffd"
    assert gc.isenabled()


def test_tampered_bundle_is_refused(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "b")
    with (tmp_path / "b" / "verifier_sft.jsonl").open("a") as fh:
        fh.write("\n")
    with pytest.raises(BundleError, match="verifier_sft.jsonl does not match"):
        verify_bundle_dir(tmp_path / "b")
    (tmp_path / "b" / "manifest.json").unlink()
    with pytest.raises(BundleError, match="no manifest"):
        verify_bundle_dir(tmp_path / "b")


def row(text, split="train", **labels):
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}],
            "meta": {"run_id": text, "split": split, "labels": labels}}


def test_curation_dedups_drops_negative_and_upweights():
    rows = [row("a"), row("a"), row("b", recovery=True), row("c", feedback_score=-1),
            row("d", feedback={"score": 1}), row("e", recovery=True, feedback_score=2)]
    out, rep = curate(rows, DataConfig(recovery_weight=3, feedback_weight=2))
    texts = [r["messages"][0]["content"] for r in out]
    assert texts == ["a", "b", "b", "b", "d", "d"] + ["e"] * 6
    assert rep == {"in": 6, "duplicates": 1, "negative_feedback": 1, "positive_feedback": 2, "recovery": 2, "out": 12}
    assert curate(rows, DataConfig(dedup=False, recovery_weight=1, feedback_weight=1))[1]["out"] == 5


def test_records_serialise_tool_arguments_and_tools_as_json():
    d = load_role_data(FIXTURE, "worker")
    rec = to_sft_records(d.split(d.sft, "train"))[0]
    call = next(m for m in rec["messages"] if m["tool_calls"])
    assert isinstance(call["tool_calls"][0]["function"]["arguments"], str)
    assert isinstance(rec["tools"], str) and json.loads(rec["tools"])[0]["type"] == "function"
    pref = to_pref_records(d.split(d.pref, "train"))[0]
    assert set(pref) == {"prompt", "chosen", "rejected", "tools"}


def test_equal_messages_of_a_role_share_one_object_and_read_the_same():
    d = load_role_data(FIXTURE, "worker")
    plain = [r for r in read_view(FIXTURE, "worker_sft").rows if r["_kind"] == "sft"]
    assert [r["messages"] for r in d.sft] == [r["messages"] for r in plain]  # the same rows, value for value
    systems = [r["messages"][0] for r in d.sft + d.recovery_sft]
    assert len(systems) > 2 and len({id(m) for m in systems}) == 1  # one system prompt object for all rows
    assert len({id(r["messages"][0]) for r in plain}) == len(plain)  # without sharing, one per row
    recs = to_sft_records(d.sft + d.recovery_sft)
    assert len({id(r["messages"][0]) for r in recs}) == 1  # the normalised message is shared too
    assert recs == to_sft_records(plain + [r for r in read_view(FIXTURE, "worker_recovery_cases").rows
                                           if r["_kind"] == "sft"])
