"""Gates pass and fail on constructed samples, for the right reason."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.conftest import MODEL_STACK
from tracebridge.capture.recorder import Recorder
from tracebridge.ops.canary import CanaryRouter
from tracebridge.ops.config import CanaryConfig, GateConfig
from tracebridge.ops.gates import FAIL, NOT_GATED, PASS, evaluate_gates
from tracebridge.ops.samples import (
    Sample,
    SampleSet,
    collect_from_traces,
    load_samples_file,
    write_samples,
)


def make_samples(n=200, seed=0, success=(0.7, 0.7), tokens=(1000, 1000), cost=(0.01, 0.01),
                 latency=(2000, 2000), tail=(1.0, 1.0), reaction=(1.0, 1.0), n_react=60,
                 verdict_acc=(0.8, 0.8)) -> SampleSet:
    """Baseline and candidate samples; each tuple is (baseline, candidate)."""
    rng = np.random.default_rng(seed)
    ss = SampleSet()
    for i, arm in enumerate(("baseline", "candidate")):
        for j in range(n):
            lat = float(rng.lognormal(np.log(latency[i]), 0.3))
            if j % 10 == 0:
                lat *= 3 * tail[i]  # the slow tail that p95 sees
            ss.add(Sample(
                session_id=f"{arm}-{j}", arm=arm, policy=f"{arm}-policy",
                success=bool(rng.random() < success[i]), tokens=int(rng.normal(tokens[i], tokens[i] * 0.1)),
                cost_usd=float(max(0.0, rng.normal(cost[i], cost[i] * 0.1))), latency_ms=lat,
                reaction_score=float(np.clip(rng.normal(reaction[i], 0.8), -2, 2)) if j < n_react else None,
                verdicts_correct=int(rng.binomial(2, verdict_acc[i])), verdicts_total=2))
            ss.read += 1
    return ss


def _check(rep, name):
    return next(c for c in rep.checks if c.name == name)


def test_equal_arms_pass():
    rep = evaluate_gates(make_samples(), GateConfig())
    assert rep.passed, rep.reasons
    assert {c.name: c.status for c in rep.checks} == {
        "sample_size": PASS, "success_rate": PASS, "verifier_accuracy": PASS, "reaction_score": PASS,
        "tokens_per_session": PASS, "usd_per_session": PASS, "latency_p50": PASS, "latency_p95": PASS,
        "fallback_rate": NOT_GATED}
    assert rep.policies == {"baseline": "baseline-policy", "candidate": "candidate-policy"}
    # reproducible: same samples, same report id and intervals
    again = evaluate_gates(make_samples(), GateConfig())
    assert again.report_id == rep.report_id and again.checks == rep.checks


@pytest.mark.parametrize("kw, failing, words", [
    ({"success": (0.7, 0.5)}, "success_rate", "significantly lower"),
    ({"verdict_acc": (0.85, 0.6)}, "verifier_accuracy", "dropped"),
    ({"reaction": (1.0, 0.2)}, "reaction_score", "mean dropped"),
    ({"tokens": (1000, 1300)}, "tokens_per_session", "mean up"),
    ({"cost": (0.01, 0.013)}, "usd_per_session", "mean up"),
    ({"latency": (2000, 2600)}, "latency_p50", "p50 up"),
    ({"tail": (1.0, 2.0)}, "latency_p95", "p95 up"),
])
def test_each_regression_fails_its_own_gate(kw, failing, words):
    rep = evaluate_gates(make_samples(**kw), GateConfig())
    assert not rep.passed
    chk = _check(rep, failing)
    assert chk.status == FAIL and words in chk.reason, chk
    assert any(r.startswith(failing) for r in rep.reasons)


def test_small_drop_within_margin_but_significant_fails():
    # 2000 sessions per arm: a 4-point drop is significant even under a 5-point margin
    cfg = GateConfig(success=dataclasses.replace(GateConfig().success, max_drop=0.05))
    rep = evaluate_gates(make_samples(n=2000, success=(0.70, 0.66), n_react=0), cfg)
    assert _check(rep, "success_rate").status == FAIL
    assert "significantly lower" in _check(rep, "success_rate").reason
    assert "dropped" not in _check(rep, "success_rate").reason


def test_minimum_sample_sizes():
    rep = evaluate_gates(make_samples(n=20), GateConfig())
    assert not rep.passed
    assert _check(rep, "sample_size").reason == "insufficient samples: candidate has 20 sessions < 50"
    assert all(c.status != PASS for c in rep.checks)
    # too few reactions: reported, not gated (reaction_score.required is false by default)
    rep = evaluate_gates(make_samples(n_react=5), GateConfig())
    assert rep.passed and _check(rep, "reaction_score").status == NOT_GATED
    cfg = GateConfig(reaction_score=dataclasses.replace(GateConfig().reaction_score, required=True))
    rep = evaluate_gates(make_samples(n_react=5), cfg)
    assert not rep.passed and "insufficient samples" in _check(rep, "reaction_score").reason


def test_absolute_budgets():
    rep = evaluate_gates(make_samples(), GateConfig(max_usd_per_session=0.005, max_p95_ms=1000))
    assert "over budget" in _check(rep, "usd_per_session").reason
    assert "over ceiling" in _check(rep, "latency_p95").reason


def test_samples_file_quarantines_bad_lines(tmp_path):
    p = tmp_path / "s.jsonl"
    ss = make_samples(n=3)
    write_samples(p, [s for arm in ss.by_arm.values() for s in arm])
    with open(p, "ab") as fh:
        fh.write(b'{"session_id": "x", "arm": "treatment"}\n{"session_id": "y", "arm": "baseline", "colour": 1}\n'
                 b"not json\n")
    got = load_samples_file(p)
    assert got.counts()["baseline"] == 3 and got.counts()["candidate"] == 3
    assert got.read == 9 and got.counts()["skipped"] == 3
    wheres = [s["where"] for s in got.skipped]
    assert wheres == [f"{p}:7:arm", f"{p}:8:colour", f"{p}:9"]


def test_samples_from_router_traces(tmp_path):
    cfg = CanaryConfig(fraction=0.5, salt="g", baseline_policy="b1", candidate_policy="c1")
    with CanaryRouter(baseline=lambda: "b", candidate=lambda: "c", config=cfg) as router:
        for i in range(12):
            with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2},
                          run_id=f"run-{i:02d}", strict=True) as run:
                router.call(run.run_id, recorder=run)
                run.emit("verifier_output", role="verifier", payload={"verdict": "end"})
                run.emit("episode_end", role="orchestrator", payload={"success": i % 3 != 0})
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "events.jsonl").write_text("")
    ss = collect_from_traces(tmp_path)
    c = ss.counts()
    assert c["read"] == 13 and c["baseline"] + c["candidate"] == 12 and c["skipped"] == 1
    assert c["skipped_by_reason"] == {"incomplete": 1}
    assert ss.policies() == {"baseline": "b1", "candidate": "c1"}
    s = ss.by_arm["candidate"][0]
    assert s.verdicts_total == 1 and s.verdicts_correct == int(bool(s.success)) and s.latency_ms is not None
