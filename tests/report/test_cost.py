"""The manifest's GPU-hours, cluster nodes and cost estimate come from where each trial ran (its
``resources``), not from the machine that writes the report; GPU time is priced per GPU type from
the window's instance price table, and an unpriced type gives no dollar figure, with a reason."""

from __future__ import annotations

import json
import socket

import pytest

from tracebridge.cluster.config import DEFAULT_PRICES
from tracebridge.report import verify_report, write_report
from tracebridge.report.cost import cost_estimate, gpu_price
from tracebridge.report.manifest import build_manifest


def trial(node: str, gpus: float, wall_s: float, gpu_type: str | None, seed: int = 0) -> dict:
    return {"role": "verifier", "variant": "baseline", "seed": seed, "wall_s": wall_s, "model": "tiny",
            "resources": {"node": node, "node_ip": "10.0.0.1", "gpus": gpus, "gpu_type": gpu_type, "workers": 1}}


def test_gpu_hours_and_cost_sum_over_trials_on_their_nodes(tmp_path):
    trials = [trial("gpu-a", 1, 3600, "A10G", 0), trial("gpu-b", 2, 1800, "A10G", 1)]
    man = build_manifest(tmp_path, [], {"sweep_id": "sw-1"}, trials, wall_s=4000.0, prices={"g5.xlarge": 1.5})
    assert man["gpu_hours"] == 2.0  # 1 GPU × 1 h + 2 GPUs × 0.5 h, whatever the writing machine has
    assert man["sweep_id"] == "sw-1" and man["trial_wall_s"] == 5400
    assert man["cluster"]["nodes"] == {
        "gpu-a": {"node_ip": "10.0.0.1", "gpu_type": "A10G", "gpus": 1.0, "trials": 1, "gpu_hours": 1.0},
        "gpu-b": {"node_ip": "10.0.0.1", "gpu_type": "A10G", "gpus": 2.0, "trials": 1, "gpu_hours": 1.0}}
    assert man["cluster"]["driver"] == socket.gethostname()
    cost = man["cost_estimate"]
    assert cost["usd"] == pytest.approx(3.0) and cost["per_gpu_hour"] == {"A10G": 1.5}
    assert "window.prices" in cost["source"] and "g5.xlarge" in cost["source"] and "reason" not in cost
    assert [(t["node"], t["gpus"], t["wall_s"]) for t in man["trials"]] == [("gpu-a", 1, 3600), ("gpu-b", 2, 1800)]


def test_eight_gpu_instances_are_priced_per_gpu_from_the_default_table():
    price, why = gpu_price("H100", DEFAULT_PRICES)
    assert price == pytest.approx(DEFAULT_PRICES["p5.48xlarge"] / 8) and "p5.48xlarge" in why
    cost = cost_estimate([trial("n", 8, 900, "H100")], DEFAULT_PRICES, "DEFAULT_PRICES")
    assert cost["usd"] == pytest.approx(DEFAULT_PRICES["p5.48xlarge"] * 0.25)


def test_unknown_gpu_type_gives_no_cost_and_says_why(tmp_path):
    trials = [trial("gpu-a", 1, 3600, "A10G"), trial("gpu-x", 1, 3600, "MI300X")]
    man = build_manifest(tmp_path, [], {}, trials, wall_s=1.0)
    assert man["gpu_hours"] == 2.0 and man["sweep_id"] is None
    cost = man["cost_estimate"]
    assert cost["usd"] is None and "MI300X" in cost["reason"] and "GPU_INSTANCES" in cost["reason"]
    assert cost["per_gpu_hour"] == {"A10G": DEFAULT_PRICES["g5.xlarge"]}  # the priced type is still shown
    untyped = cost_estimate([trial("n", 1, 60, None)], DEFAULT_PRICES, "t")
    assert untyped["usd"] is None and "unrecorded type" in untyped["reason"]
    unpriced = cost_estimate([trial("n", 1, 60, "L4")], {"m5.xlarge": 0.192}, "window.prices")
    assert unpriced["usd"] is None and "g6.xlarge" in unpriced["reason"]


def test_cpu_only_and_unrecorded_trials_cost_nothing(tmp_path):
    old = {"role": "verifier", "variant": "baseline", "seed": 1, "wall_s": 50.0}  # a result from before `resources`
    man = build_manifest(tmp_path, [], {}, [trial("cpu-1", 0, 7200, None), old], wall_s=1.0)
    assert man["gpu_hours"] == 0.0
    assert man["cost_estimate"]["usd"] == 0.0 and "no GPU time" in man["cost_estimate"]["source"]
    assert {k: v["trials"] for k, v in man["cluster"]["nodes"].items()} == {"cpu-1": 1, "unknown": 1}


def test_report_page_states_gpu_hours_and_cost_and_still_verifies(tmp_path):
    from tests.report.test_report import trials as fake_trials

    trials = fake_trials(tmp_path / "t", uplift=20)
    for i, t in enumerate(trials):
        t["resources"] = {"node": f"gpu-{i % 2}", "gpus": 1.0, "gpu_type": "L4"}
        t["wall_s"] = 1800.0
    man = write_report(trials, tmp_path / "r", config={"sweep_id": "sw-page"}, n_boot=200,
                       prices={"g6.xlarge": 0.8})
    assert man["gpu_hours"] == pytest.approx(4.0) and man["cost_estimate"]["usd"] == pytest.approx(3.2)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "sweep <code>sw-page</code> · 8 trial(s) on 2 node(s) · GPU-hours 4.000 · cost estimate $3.20" in html
    assert "cluster.nodes.gpu-0" in html
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["cost_estimate"]["usd"] == pytest.approx(3.2)
    assert verify_report(tmp_path / "r") == []


def test_failed_trials_gpu_time_counts_in_hours_cost_and_nodes(tmp_path):
    """A failed trial held its GPUs until it failed: its reported time counts (before: only the finished
    trials were priced, so a sweep whose trials mostly failed looked nearly free)."""
    trials = [trial("gpu-a", 1, 3600, "A10G", 0)]
    failed = [{"trial_id": "verifier-optimized-s0", "error": "CUDA out of memory", "wall_s": 1800.0,
               "resources": {"gpus": 2.0, "gpu_type": "A10G", "node": "gpu-b"}},
              {"trial_id": "verifier-optimized-s1", "error": "not run"}]  # reported nothing: counts nothing
    man = build_manifest(tmp_path, [], {"sweep_id": "sw-1"}, trials, wall_s=4000.0, prices={"g5.xlarge": 1.5},
                         failed=failed)
    assert man["gpu_hours"] == 2.0 and man["gpu_hours_failed"] == 1.0
    assert man["trial_wall_s"] == 3600 and man["failed_trial_wall_s"] == 1800
    assert man["cost_estimate"]["usd"] == pytest.approx(3.0)
    assert man["cost_estimate"]["usd_failed"] == pytest.approx(1.5)
    assert man["cluster"]["nodes"]["gpu-b"]["gpu_hours"] == 1.0
    assert [t["node"] for t in man["trials"]] == ["gpu-a"]  # the trials list stays the finished ones

    out = tmp_path / "report"
    write_report(trials, out, {"sweep_id": "sw-1"}, wall_s=4000.0, prices={"g5.xlarge": 1.5}, failed=failed)
    page = (out / "report.html").read_text()
    assert "GPU-hours 2.000 (1.000 in failed trials)" in page and "$3.00 ($1.50 in failed trials)" in page
    assert verify_report(out) == []


def test_a_retried_trials_lost_attempts_count_in_its_gpu_time(tmp_path):
    """A trial Tune retried after its node died held its GPUs in the lost attempt too: its time is the sum
    over its attempts (``held_s``, ``sweep.tune_run.held``, from the rows Tune kept), where longer than
    the last attempt's own ``wall_s`` (before: a node loss halfway through cost nothing)."""
    import pandas as pd

    from tracebridge.sweep.tune_run import held

    class Result:  # what collect_results reads of a ray.tune.Result: its reported rows
        def __init__(self, rows):
            self.metrics_dataframe = pd.DataFrame(rows)

    # attempt 1 reported at 600 s and 1200 s, then its node died; attempt 2 (resumed) ran 1800 s to the end
    rows = [{"time_since_restore": t, "iterations_since_restore": i, "loss": 1.0}
            for t, i in ((600.0, 1), (1200.0, 2), (900.0, 1), (1800.0, 2))]
    assert held(Result(rows)) == {"held_s": 3000.0, "attempts": 2}
    assert held(Result([])) == {} and held(object()) == {}  # no rows kept: nothing to add
    t = {**trial("gpu-a", 2, 1800, "A10G"), **held(Result(rows))}
    man = build_manifest(tmp_path, [], {"sweep_id": "sw-1"}, [t], wall_s=4000.0, prices={"g5.xlarge": 1.5})
    assert man["gpu_hours"] == pytest.approx(2 * 3000 / 3600)  # 2 GPUs × both attempts
    assert man["trials"][0]["held_s"] == 3000.0 and man["trials"][0]["attempts"] == 2
    write_report([t], tmp_path / "report", {"sweep_id": "sw-1"}, wall_s=4000.0, prices={"g5.xlarge": 1.5})
    page = (tmp_path / "report" / "report.html").read_text()
    assert "1 trial(s) (1 retried: every attempt counts in the GPU-hours)" in page and "GPU-hours 1.667" in page
    # a trial that ran once: its own wall_s, when its rows stop before its end (the final packing)
    once = {**trial("gpu-a", 1, 3600, "A10G"), **held(Result(rows[:2]))}
    assert build_manifest(tmp_path, [], {}, [once], None, prices={"g5.xlarge": 1.5})["gpu_hours"] == 1.0
    # a row without Tune's timing (None, NaN) is skipped, not a crash
    assert held(Result([*rows[:2], {"time_since_restore": None, "iterations_since_restore": None}])) == \
        {"held_s": 1200.0, "attempts": 1}
    # a trial that failed after retries: Tune's time_total_s (its wall_s) went back to its checkpoint
    failed = [{"trial_id": "t1", "error": "node died", "wall_s": 1800.0, **held(Result(rows)),
               "resources": {"gpus": 1.0, "gpu_type": "A10G", "node": "gpu-b"}}]
    man = build_manifest(tmp_path, [], {}, [], None, prices={"g5.xlarge": 1.5}, failed=failed)
    assert man["failed_trial_wall_s"] == 3000.0 and man["gpu_hours_failed"] == pytest.approx(3000 / 3600)
