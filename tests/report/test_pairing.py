"""The report pairs baseline and optimized items by item id, says when it cannot (different item
sets) or falls back to position (an older eval_items.json with repeated ids), and a guard the baseline
measured but the optimized model could not be measured on blocks the win; offline evaluation gives
every item a unique id that is the same for both variants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tracebridge.eval import offline
from tracebridge.report.results import build_results
from tracebridge.train.config import EvalConfig


def trial(tmp: Path, variant: str, role: str, items: dict, ids: list, seed: int = 0) -> dict:
    d = tmp / f"{role}-{variant}-{seed}"
    d.mkdir(parents=True)
    (d / "eval_items.json").write_text(json.dumps({"role": role, "item_ids": ids, "items": items}))
    return {"role": role, "variant": variant, "seed": seed, "eval_items_path": str(d / "eval_items.json")}


def verifier_items(acc: np.ndarray, order: np.ndarray | None = None) -> dict:
    order = np.arange(len(acc)) if order is None else order
    n = len(acc)
    return {"accuracy": [acc[order].tolist(), [1.0] * n], "false_stop_rate": [[0.0] * n, [1.0] * n]}


def test_items_pair_by_id_not_by_position(tmp_path):
    acc = (np.random.default_rng(0).random(100) < 0.5).astype(float)
    ids = [f"run-a#{i}" for i in range(100)]
    perm = np.random.default_rng(1).permutation(100)
    # the same verdicts, the baseline's stored in another order with its ids: no difference at all
    res = build_results([trial(tmp_path, "optimized", "verifier", verifier_items(acc), ids),
                         trial(tmp_path, "baseline", "verifier", verifier_items(acc, perm), [ids[i] for i in perm])],
                        n_boot=300)["roles"]["verifier"]
    d = res["comparison"]["accuracy"]
    assert d["value"] == 0.0 and d["lo"] == 0.0 and d["hi"] == 0.0  # position pairing would give a wide interval
    assert res["comparison_notes"] == [] and res["comparison_problems"] == []


def test_different_item_sets_are_a_problem_not_a_pairing(tmp_path):
    acc = np.ones(50)
    res = build_results([trial(tmp_path, "optimized", "verifier", verifier_items(acc), [f"r#{i}" for i in range(50)]),
                         trial(tmp_path, "baseline", "verifier", verifier_items(acc * 0), [f"r#{i + 5}" for i in range(50)])],
                        n_boot=300)["roles"]["verifier"]
    assert "accuracy" not in res["comparison"]
    assert any("different items (5 only in baseline, 5 only in optimized)" in p and "accuracy" in p
               for p in res["comparison_problems"])
    assert res["winner"] is None and "do not pair" in res["winner_reason"]


def test_old_repeated_ids_fall_back_to_position_and_say_so(tmp_path):
    acc = (np.arange(60) % 2).astype(float)
    better = np.ones(60)
    same = ["run-a"] * 60  # planner/verifier ids before they were unique: the run id of every row
    res = build_results([trial(tmp_path, "optimized", "verifier", verifier_items(better), same),
                         trial(tmp_path, "baseline", "verifier", verifier_items(acc), same)], n_boot=300)
    v = res["roles"]["verifier"]
    assert v["comparison"]["accuracy"]["value"] == pytest.approx(0.5)
    assert any("paired by position" in n for n in v["comparison_notes"])
    # repeated ids that differ between the variants cannot be paired at all
    res = build_results([trial(tmp_path / "x", "optimized", "verifier", verifier_items(better), same),
                         trial(tmp_path / "x", "baseline", "verifier", verifier_items(acc), ["run-b"] * 60)], n_boot=300)
    v = res["roles"]["verifier"]
    assert "accuracy" not in v["comparison"] and any("cannot pair" in p for p in v["comparison_problems"])


@pytest.mark.parametrize("drop_key", [False, True])
def test_guard_the_optimized_model_could_not_be_measured_on_blocks_its_win(tmp_path, drop_key):
    n = 80
    match = (np.arange(n) % 2).astype(float)

    def items(m: np.ndarray, calls: bool) -> dict:
        out = {"action_match": [m.tolist(), [1.0] * n], "error_recurrence": [[0.0] * n, [1.0] * n],
               "tool_call_validity": [[1.0 if calls else 0.0] * n, [1.0 if calls else 0.0] * n]}
        if drop_key and not calls:
            del out["tool_call_validity"]
        return out

    ids = [f"r#{i}/1" for i in range(n)]
    v = build_results([trial(tmp_path, "optimized", "worker", items(np.ones(n), calls=False), ids),
                       trial(tmp_path, "baseline", "worker", items(match, calls=True), ids)], n_boot=300)["roles"]["worker"]
    assert v["comparison"]["action_match"]["lo"] > 0  # a clear uplift on the primary metric ...
    assert v["winner"] is None  # ... that does not win: validity was measured only for the baseline
    assert "tool_call_validity" in v["winner_reason"] and "could not be measured" in v["winner_reason"]


def _rows(n: int, run_id: str = "run-1") -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "verdict: continue"}],
             "meta": {"run_id": run_id, "labels": {"expected_verdict": "continue"}}} for i in range(n)]


def test_offline_item_ids_are_unique_and_the_same_for_the_same_rows(monkeypatch):
    monkeypatch.setattr(offline, "predict_verdicts", lambda model, tok, prompts, cfg: ["continue"] * len(prompts))
    monkeypatch.setattr(offline, "eval_preferences", lambda model, tok, rows, cfg, ref, beta:
                        offline.collect([{"pref_accuracy": (1.0, 1.0)} for _ in rows]))
    pairs = [{"prompt": [], "chosen": [], "rejected": [], "meta": {"run_id": "run-1"}} for _ in range(12)]
    runs = [offline.evaluate_offline(None, None, "verifier", _rows(12), pairs, EvalConfig()) for _ in range(2)]
    res = runs[0]
    assert len(set(res.item_ids)) == 12 and len(set(res.extra["pair_ids"])) == 12  # one run id, 12 rows
    assert res.item_ids == runs[1].item_ids and res.extra["pair_ids"] == runs[1].extra["pair_ids"]
    assert res.item_ids[3] == "run-1#3"
    # worker turns: two rows of one run with different turns at the same position get different ids
    w = _rows(2)
    w[1]["messages"][1]["content"] = "other"
    got = [p[0] for p in offline.worker_points(w)]
    assert len(got) == len(set(got)) == 2


def test_trials_of_different_bundles_are_not_compared(tmp_path):
    """``tracebridge report`` of a baseline trained on one bundle and an optimized one on another (re-exported
    with other redaction or splits: the same row ids, other rows): their items were paired by id and a winner
    named. Such a pair is a comparison problem now; trials of one bundle still compare."""
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.5).astype(float)
    better = np.maximum(base, (rng.random(200) < 0.3).astype(float))
    ids = list(range(200))
    b = trial(tmp_path, "baseline", "verifier", verifier_items(base), ids) | {"bundle_id": "a" * 64}
    o = trial(tmp_path, "optimized", "verifier", verifier_items(better), ids) | {"bundle_id": "c" * 64}
    block = build_results([b, o], n_boot=200)["roles"]["verifier"]
    assert block["winner"] is None and block["comparison"] == {}
    assert block["comparison_problems"] == [
        ("optimized seed 0: trained and evaluated on bundle cccccccccccc, its baseline on aaaaaaaaaaaa "
         "(left out of the comparison)")]
    o["bundle_id"] = b["bundle_id"]
    assert build_results([b, o], n_boot=200)["roles"]["verifier"]["winner"] == "optimized"


def test_a_report_of_several_bundles_names_them_all_not_the_first(tmp_path):
    """Its manifest's bundle_id was the first trial's, a record that every trial trained on that bundle."""
    from tracebridge.report import write_report

    rng = np.random.default_rng(1)
    acc = (rng.random(50) < 0.5).astype(float)
    b = trial(tmp_path, "baseline", "verifier", verifier_items(acc), list(range(50))) | {"bundle_id": "a" * 64}
    o = trial(tmp_path, "optimized", "verifier", verifier_items(acc), list(range(50))) | {"bundle_id": "c" * 64}
    man = write_report([b, o], tmp_path / "rep", n_boot=100)
    assert man["bundle_id"] is None and man["bundle_ids"] == ["a" * 64, "c" * 64]
    assert "c" * 64 in (tmp_path / "rep" / "report.html").read_text()
    one = write_report([b], tmp_path / "rep1", n_boot=100)
    assert one["bundle_id"] == "a" * 64 and one["bundle_ids"] == ["a" * 64]
