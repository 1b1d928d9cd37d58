"""Dedup fingerprints and clusters; the goal-family split and its leakage checks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.conftest import record_sample_run
from tracebridge.curate.config import LeakageConfig, SplitConfig
from tracebridge.curate.dedup import DedupIndex, _norm_json, fingerprint, key_steps_hash, normalise
from tracebridge.curate.split import LeakageTracker, assign_families


def _run(root: Path, **kw: object) -> tuple[list[dict], dict]:
    rid = record_sample_run(root, **kw)
    events = [json.loads(x) for x in (root / rid / "events.jsonl").read_text().splitlines()]
    return events, json.loads((root / rid / "session.json").read_text())


def _fp(events: list[dict], session: dict) -> str:
    return fingerprint(session["goal"]["goal_hash"], events, session)


def test_same_behaviour_same_fingerprint_despite_ids_and_times(tmp_path: Path) -> None:
    a, sa = _run(tmp_path / "a")
    b, sb = _run(tmp_path / "b")
    assert a[0]["event_id"] != b[0]["event_id"]
    assert _fp(a, sa) == _fp(b, sb)
    b[4]["payload"]["args"] = {"path": "  NOTES.txt "}  # normalised: case and whitespace
    a[4]["payload"]["args"] = {"path": "notes.txt"}
    assert key_steps_hash(a) == key_steps_hash(b)
    assert normalise({"q": " Select  *\nFROM t "}) == {"q": "select * from t"}


def test_different_steps_goal_or_outcome_differ(tmp_path: Path) -> None:
    base, s = _run(tmp_path / "a")
    other_steps, s2 = _run(tmp_path / "b", fail_tool=False)
    other_goal, s3 = _run(tmp_path / "c", goal="count words in notes.txt")
    assert len({_fp(base, s), _fp(other_steps, s2), _fp(other_goal, s3)}) == 3
    failed = [dict(e) for e in base]
    failed[-1] = {**failed[-1], "payload": {"success": False, "failure_class": "max_steps"}}
    assert _fp(failed, s) != _fp(base, s)


def test_index_keeps_first_and_reports_clusters() -> None:
    idx = DedupIndex()
    fp1, fp2 = "a" * 64, "b" * 64
    assert not idx.add(fp1, 0, "r0", {"worker_sft": 3})
    assert idx.add(fp1, 1, "r1", {"worker_sft": 3, "planner_sft": 1})
    assert idx.add(fp1, 2, "r2", {"worker_sft": 3})
    assert not idx.add(fp2, 3, "r3", {"worker_sft": 2})
    rep = idx.report(10, {0: "r0"})
    assert rep["removed_runs"] == 2 and rep["clusters_total"] == 1
    c = rep["clusters"][0]
    assert c["kept_run_id"] == "r0" and c["removed_runs"] == 2 and c["removed_rows_total"] == 7
    assert c["example_removed_run_ids"] == ["r1", "r2"] and idx.kept_ordinals(10) == {0}


def test_family_assignment_is_deterministic_and_fills_every_split() -> None:
    counts = {f: 10 for f in ("files", "sql", "calc", "docs")}
    cfg = SplitConfig()
    a = assign_families(counts, cfg)
    assert a == assign_families(dict(reversed(list(counts.items()))), cfg)
    assert Counter(a.values()) == {"train": 2, "validation": 1, "test": 1}
    many = {f"fam{i}": 10 + i for i in range(40)}
    b = assign_families(many, cfg)
    share = Counter()
    for f, s in b.items():
        share[s] += many[f]
    assert abs(share["train"] / sum(many.values()) - 0.8) < 0.05
    fixed = assign_families(counts, SplitConfig(assign={"files": "test"}))
    assert fixed["files"] == "test" and set(fixed.values()) == {"train", "validation", "test"}


def test_split_config_validation() -> None:
    assert SplitConfig(ratios={"train": 0.5, "validation": 0.2, "test": 0.2}).validate()
    assert SplitConfig(ratios={"train": 0.9, "holdout": 0.1}).validate()
    assert SplitConfig(assign={"x": "dev"}).validate()
    assert not SplitConfig().validate()


def test_a_train_or_test_share_of_zero_is_refused_unless_families_are_fixed_to_that_split() -> None:
    """train=0 leaves nothing to train on, test=0 nothing for trials to evaluate (data.eval_split=test): refused
    at config load, naming the key and both fixes; with families fixed to the split (split.assign) it is
    a held-out-families split and allowed; validation may be 0."""
    from tracebridge.curate.split import assign_families, unfilled_splits

    no_test = SplitConfig(ratios={"train": 0.9, "validation": 0.1, "test": 0.0})
    (msg,) = no_test.validate()
    assert msg.startswith("split.ratios.test=0: no run would be in the test split, which trials evaluate on")
    assert "split.ratios.test=0.1" in msg and "split.assign.FAMILY=test" in msg
    (msg,) = SplitConfig(ratios={"train": 0.0, "validation": 0.5, "test": 0.5}).validate()
    assert msg.startswith("split.ratios.train=0: no run would be in the train split")
    assert not SplitConfig(ratios={"train": 0.9, "validation": 0.0, "test": 0.1}).validate()
    held_out = SplitConfig(ratios={"train": 0.9, "validation": 0.1, "test": 0.0}, assign={"calc": "test"})
    assert not held_out.validate()
    counts = {"calc": 5, "docs": 4, "files": 6, "sql": 3}
    split = assign_families(counts, held_out)
    assert [f for f, s in split.items() if s == "test"] == ["calc"] and not unfilled_splits(held_out, split)
    absent = SplitConfig(ratios=held_out.ratios, assign={"arith": "test"})
    (msg,) = unfilled_splits(absent, assign_families(counts, absent))
    assert msg.startswith("split.ratios.test=0 and split.assign fixes arith to test, but the traces hold none of "
                          "them (families: calc, docs, files, sql): the test split is empty")


def test_leakage_exact_and_near_duplicates() -> None:
    t = LeakageTracker(LeakageConfig(num_perm=64, near_dup_threshold=0.6))
    t.add("train", "files", "1" * 64, "count the lines in the file notes.txt and report the number", "r1")
    t.add("test", "docs", "2" * 64, "count the lines in the file notes.txt and report the number now", "r2")
    t.add("test", "docs", "3" * 64, "which river flows through the capital of norway", "r3")
    rep = t.report()
    assert rep["passed"] and rep["near_duplicates"]["cross_split_near_duplicates"]["train~test"] == 1
    assert rep["near_duplicates"]["examples"][0] == {"split_a": "train", "run_a": "r1", "split_b": "test",
                                                     "run_b": "r2"}
    t.add("validation", "files", "1" * 64, "x", "r4")  # family and goal now in two splits
    rep = t.report()
    assert not rep["passed"] and rep["families_in_several_splits"] == ["files"]
    assert rep["goal_hashes_in_several_splits"] == 1


def test_minhash_sample_is_bounded() -> None:
    t = LeakageTracker(LeakageConfig(max_signatures_per_split=5))
    for i in range(200):
        t.add("train", "f", f"{i:064x}", f"prompt number {i} about topic {i * 7}", f"r{i}")
    near = t.near_duplicates()
    assert near["sampled"]["train"] == 5 and near["prompts"]["train"] == 200


def test_each_source_gets_its_share_of_every_split():
    """Many small OpenClaw families next to four large simulator families: split per source, the
    simulator's families (the only ones with planner/verifier rows) still reach validation and test."""
    from tracebridge.curate.config import SplitConfig
    from tracebridge.curate.split import assign_families

    counts = {f: 100 for f in ("calc", "docs", "files", "sql")} | {f"openclaw/telegram/{i:08x}": 3 for i in range(40)}
    groups = {f: ("openclaw" if f.startswith("openclaw") else "sim") for f in counts}
    mixed = assign_families(counts, SplitConfig())
    assert {mixed[f] for f in ("calc", "docs", "files", "sql")} != {"train", "validation", "test"}  # what this prevents
    per_source = assign_families(counts, SplitConfig(), groups)
    assert {per_source[f] for f in ("calc", "docs", "files", "sql")} == {"train", "validation", "test"}
    assert {per_source[f] for f in counts if f.startswith("openclaw")} == {"train", "validation", "test"}
    sim_only = assign_families({f: 100 for f in ("calc", "docs", "files", "sql")}, SplitConfig())
    assert {f: per_source[f] for f in sim_only} == sim_only  # a source's split does not depend on the others


def test_key_step_args_compare_modulo_case_and_whitespace_with_a_pinned_digest() -> None:
    """Arguments that differ only in case and whitespace (raw, as JSON escapes, Unicode spaces, at a
    string's edges) give one key step; a changed word gives another. The digests are pinned: run
    caches and earlier bundles hold fingerprints made from them, so a faster normalisation must
    give the very same text."""
    def steps(args: dict) -> list[dict]:
        return [{"event_type": "worker_tool_call", "role": "worker", "payload": {"tool": "sh", "args": args}}]

    same = [{"cmd": "ls -la  /tmp\n", "note": "Two\u00a0words", "path": "C:\\new"},
            {"cmd": " LS\t-la\r\n/tmp", "note": "two \u3000 words ", "path": "c:\\NEW"}]
    assert {key_steps_hash(steps(a)) for a in same} == {
        "e5a204a7772206071bd0789d26d3a9755781ff1e348089c4f4485845889dfb72"}
    assert key_steps_hash(steps({"cmd": "ls -l /tmp", "note": "two words", "path": "c:\\new"})) == \
        "bec8cf83b5f6887dbb94dac4d207fa77d2f8c52724a7d3e28b3edd01f7b05052"


def test_families_that_differ_in_case_or_spacing_are_one_family_in_one_split(tmp_path: Path) -> None:
    """``CSV``, ``csv``, `` csv `` and ``Csv`` were four families: ``CSV`` went to validation while the
    others trained, and the leakage check passed (their goal hashes differ, the family being in them)."""
    from tracebridge.export.pipeline import export_traces

    root = tmp_path / "traces"
    variants = ["csv", "CSV", " csv ", "Csv"]
    for i, fam in enumerate([*variants, "sql", "docs", "files", "calc", "web", "mail"]):
        record_sample_run(root, goal={"text": f"count lines in file {i}", "family": fam})
    res = export_traces(root, tmp_path / "b")
    assert res.passed and res.report["split"]["family_runs"]["csv"] == 4
    assert not {f for f in res.report["split"]["assignment"] if f != f.lower().strip()}
    rows = [json.loads(x) for p in (res.path / "views" / "planner_sft").glob("*.jsonl")
            for x in p.read_text().splitlines()]
    csv = [r["meta"] for r in rows if r["meta"]["goal_family"] == "csv"]
    assert len(csv) == 4 and len({m["split"] for m in csv}) == 1
    assert {r["meta"]["goal_family"] for r in rows} == {"csv", "sql", "docs", "files", "calc", "web", "mail"}


def test_split_assign_keys_match_families_whatever_their_case() -> None:
    counts = {"csv": 5, "sql": 5, "docs": 5, "files": 5}
    held = SplitConfig(ratios={"train": 0.9, "validation": 0.1, "test": 0.0}, assign={"CSV ": "test"})
    assert not held.validate() and assign_families(counts, held)["csv"] == "test"
    (msg,) = SplitConfig(assign={"CSV": "test", "csv": "train"}).validate()
    assert msg == ("split.assign.csv=train and split.assign.CSV=test: one family ('csv': case and spaces are "
                   "ignored) fixed to two splits; keep one")
    assert not SplitConfig(assign={"CSV": "test", "csv": "test"}).validate()


def test_a_split_assign_key_that_names_no_family_is_reported(tmp_path: Path) -> None:
    """``split.assign.CVS=test`` (a typo of csv) fixed nothing, and nothing said so: csv went where the ratios
    put it while the user believed it held out."""
    from tracebridge.export.config import ExportConfig
    from tracebridge.export.pipeline import export_traces

    root = tmp_path / "traces"
    for i, fam in enumerate(["csv", "sql", "docs", "files"]):
        record_sample_run(root, goal={"text": f"count lines in file {i}", "family": fam})
    cfg = ExportConfig()
    cfg.split.assign = {"CVS": "test", "Docs": "validation"}
    res = export_traces(root, tmp_path / "b", cfg)
    assert res.passed and res.report["split"]["assign_unmatched"] == ["CVS"]
    assert res.manifest["split"]["assign_unmatched"] == ["CVS"] and res.report["split"]["assignment"]["docs"] == "validation"
    assert "split.assign names no family of these traces, so it fixed nothing: CVS." in (res.path / "report.md").read_text()
    cfg.split.assign = {"csv": "test"}
    assert "assign_unmatched" not in export_traces(root, tmp_path / "c", cfg).report["split"]


def test_too_few_families_fill_train_and_test_before_validation() -> None:
    """Two families went to train and validation: the test split, which trials evaluate on, was empty and every
    trial on the bundle failed. With fewer families than splits, train and test come first."""
    assert sorted(assign_families({"csv": 5, "sql": 5}, SplitConfig()).values()) == ["test", "train"]
    assert sorted(assign_families({"csv": 50, "sql": 5}, SplitConfig()).values()) == ["test", "train"]
    assert assign_families({"csv": 5}, SplitConfig()) == {"csv": "train"}
    three = assign_families({"csv": 5, "sql": 5, "docs": 5}, SplitConfig())  # enough: one each, as before
    assert sorted(three.values()) == ["test", "train", "validation"]
    no_test = SplitConfig(ratios={"train": 0.9, "validation": 0.1, "test": 0.0}, assign={"calc": "test"})
    assert sorted(assign_families({"csv": 5, "sql": 5}, no_test).values()) == ["train", "validation"]


def test_one_goal_under_family_spellings_is_one_goal_for_dedup_and_the_goal_split(tmp_path: Path) -> None:
    """``goal_hash`` hashes the family as written: the same goal and steps under ``CSV`` and ``csv`` were two
    goals, so dedup kept both, and a source split by goal put them in two split families."""
    from tracebridge.export.families import split_family
    from tracebridge.export.pipeline import export_traces

    root = tmp_path / "traces"
    for fam in ["csv", "CSV", "sql", "docs", "files"]:
        record_sample_run(root, goal={"text": f"count lines in {fam.lower()}.txt", "family": fam})
    res = export_traces(root, tmp_path / "b")
    assert res.passed and res.report["runs"]["duplicates"] == 1 and res.report["runs"]["exported"] == 4
    sessions = [json.loads((p / "session.json").read_text()) for p in sorted(root.iterdir())]
    pair = [s for s in sessions if s["goal"]["family"].lower() == "csv"]
    assert pair[0]["goal"]["goal_hash"] != pair[1]["goal"]["goal_hash"]  # as recorded
    for s in pair:
        s["source"] = {"kind": "agentlightning", "ref": "x"}
    (a, b) = (split_family(s, ["agentlightning"]) for s in pair)
    assert a == b and a.startswith("csv/")


def test_a_goal_hash_that_is_no_hex_is_a_goal_not_a_crash(tmp_path: Path) -> None:
    """A runtime that writes its own task id as ``goal.goal_hash`` (the schema asks a string) ended the export
    with a ValueError from the leakage check; such ids are goals like any other (leaks still found)."""
    from tracebridge.export.pipeline import export_traces

    root = tmp_path / "traces"
    runs = [record_sample_run(root, goal={"text": f"count lines in file {i}", "family": f}, fail_tool=i != 1)
            for i, f in enumerate(["csv", "sql", "docs", "files"])]  # other steps: no duplicates
    for rid in runs[:2]:  # one task id in two families, so in two splits: a goal leak
        path = root / rid / "session.json"
        session = json.loads(path.read_text())
        session["goal"]["goal_hash"] = "task-0042-from-my-runtime"
        path.write_text(json.dumps(session))
    res = export_traces(root, tmp_path / "b")
    assert res.report["runs"]["exported"] == 4
    assert res.report["split"]["assignment"]["csv"] != res.report["split"]["assignment"]["sql"]
    assert res.report["leakage"]["goal_hashes_in_several_splits"] == 1 and not res.passed


def test_unicode_spaces_collapse_in_the_key_steps_text_whether_or_not_an_ascii_space_is_there():
    """``x<no-break space>y`` and ``x y`` are one argument to dedup (``normalise`` collapses every ``\\s``); the
    one-pass text returned a text with no ASCII space or backslash as it was, so the no-break space stayed and the
    two key steps differed (a near-duplicate kept). Each variant's text now equals that of its normalised value."""
    for s in ("x\u00a0y", "x\u2003\u2003y", "\u3000x", "x\u00a0", "a\u00a0b c", "x\u200by", "caf\u00e9"):
        assert _norm_json({"a": s}) == _norm_json({"a": normalise(s)}), s
    assert _norm_json({"a": "X\u00a0Y"}) == _norm_json({"a": "x y"}) == '{"a":"x y"}'
