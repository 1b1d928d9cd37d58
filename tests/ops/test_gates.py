"""Gates pass and fail on constructed samples, for the right reason."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import MODEL_STACK
from tracebridge.capture.recorder import Recorder
from tracebridge.cli import app
from tracebridge.config import ConfigError, load_config
from tracebridge.ops.canary import CanaryRouter
from tracebridge.ops.config import CanaryConfig, GateConfig, QualityGate, SafetyGate
from tracebridge.ops.gates import FAIL, NOT_GATED, PASS, check_score, evaluate_gates
from tracebridge.ops.samples import (
    Sample,
    SampleSet,
    collect_from_traces,
    load_samples_file,
    write_samples,
)

ROOT = Path(__file__).resolve().parents[2]


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
        "error_rate": PASS, "tool_error_rate": PASS, "risk_flag_rate": PASS, "fallback_rate": PASS}
    assert [c.name for c in rep.checks if c.group == "safety"] == [
        "error_rate", "tool_error_rate", "risk_flag_rate", "fallback_rate"]
    assert all(c.group for c in rep.checks)
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
    cfg = CanaryConfig(fraction=0.5, max_fraction=0.5, salt="g", baseline_policy="b1", candidate_policy="c1")
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
    import shutil  # a run copied under another folder name is the same session: read once

    shutil.copytree(tmp_path / "run-03", tmp_path / "run-03-copy")
    c = collect_from_traces(tmp_path).counts()
    assert c["read"] == 14 and c["baseline"] + c["candidate"] == 12 and c["skipped_by_reason"] == {
        "incomplete": 1, "duplicate": 1}
    s = ss.by_arm["candidate"][0]
    assert s.verdicts_total == 1 and s.verdicts_correct == int(bool(s.success)) and s.latency_ms is not None


# --------------------------------------------------------------------------- safety gates


def mark(ss: SampleSet, arm: str, attr: str, k: int) -> SampleSet:
    """Give the first ``k`` sessions of ``arm`` one ``attr`` event each (errors, fallbacks, ...)."""
    for s in ss.by_arm[arm][:k]:
        setattr(s, attr, 1)
    return ss


@pytest.mark.parametrize("name, attr, base_k", [
    ("error_rate", "errors", 2), ("tool_error_rate", "tool_errors", 4),
    ("risk_flag_rate", "risk_flags", 2), ("fallback_rate", "fallbacks", 0),
])
def test_safety_regression_fails_naming_metric_and_values(name, attr, base_k):
    ss = mark(mark(make_samples(), "baseline", attr, base_k), "candidate", attr, base_k + 12)
    rep = evaluate_gates(ss, GateConfig())
    chk = _check(rep, name)
    assert not rep.passed and chk.status == FAIL and chk.group == "safety"
    rc, rb = (base_k + 12) / 200, base_k / 200
    assert (chk.candidate, chk.baseline) == (rc, rb)
    assert f"{name}: rose {rc - rb:.4f} > " in "\n".join(rep.reasons)
    assert f"(candidate {rc:.4f} vs baseline {rb:.4f})" in chk.reason
    others = {c.name for c in rep.checks if c.status == FAIL}
    assert others == {name}, rep.reasons


def test_safety_within_limits_passes():
    ss = make_samples()
    for attr, base_k, cand_k in (("errors", 2, 3), ("tool_errors", 4, 7), ("risk_flags", 1, 2), ("fallbacks", 0, 3)):
        mark(mark(ss, "baseline", attr, base_k), "candidate", attr, cand_k)
    rep = evaluate_gates(ss, GateConfig())
    assert rep.passed, rep.reasons
    assert (_check(rep, "fallback_rate").candidate, _check(rep, "fallback_rate").baseline) == (0.015, 0.0)
    assert (_check(rep, "tool_error_rate").candidate, _check(rep, "tool_error_rate").baseline) == (0.035, 0.02)
    # the same candidate fails once the operator tightens the fallback limit below its rate
    tight = GateConfig(safety=SafetyGate(max_fallback_increase=0.01))
    assert [r.split(":")[0] for r in evaluate_gates(ss, tight).reasons] == ["fallback_rate"]


def test_significant_error_increase_within_limit_fails_but_fallbacks_are_not_tested():
    # 2000 sessions per arm: 18 errored candidate sessions (+0.9 points, under the 1-point limit)
    # against none is significant; the same fallback rate is only held to its limit
    ss = make_samples(n=2000, n_react=0)
    mark(ss, "candidate", "errors", 18)
    mark(ss, "candidate", "fallbacks", 18)
    rep = evaluate_gates(ss, GateConfig())
    err, fb = _check(rep, "error_rate"), _check(rep, "fallback_rate")
    assert err.status == FAIL and "significantly higher" in err.reason and "rose" not in err.reason
    assert fb.status == PASS and fb.p_value is None


def test_safety_config_is_validated():
    assert GateConfig(safety=SafetyGate(max_error_increase=-0.1)).validate() == [
        "safety.max_error_increase=-0.1: must be in [0, 1] (a share of sessions); typical 0.01..0.05"]
    cfg = load_config(GateConfig, ROOT / "configs/gates/default.yaml", ["safety.max_fallback_increase=0.05"])
    assert cfg.safety.max_fallback_increase == 0.05 and cfg.safety.max_error_increase == 0.01
    with pytest.raises(ConfigError, match="safety.max_risk_flag_increase=2.0"):
        load_config(GateConfig, ROOT / "configs/gates/default.yaml", ["safety.max_risk_flag_increase=2"])


def test_safety_counts_from_router_traces(tmp_path):
    cfg = CanaryConfig(fraction=0.5, max_fraction=0.5, salt="g")
    with CanaryRouter(baseline=lambda: "b", candidate=lambda: None, config=cfg) as router:  # candidate always invalid
        for i in range(8):
            with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2},
                          run_id=f"run-{i:02d}", strict=True) as run:
                router.call(run.run_id, recorder=run)
                run.emit("worker_tool_result", role="worker", payload={
                    "call_id": "s0-c0", "ok": False, "error": {"kind": "not_found", "message": "no file"}})
                run.emit("worker_tool_result", role="worker", payload={"call_id": "s0-c1", "ok": True})
                run.emit("verifier_output", role="verifier", payload={"verdict": "end", "risk_flags": ["pii"]})
                if i % 2:
                    run.emit("episode_error", role="orchestrator", payload={
                        "kind": "runtime_error", "message": "crash", "recoverable": False})
                run.emit("episode_end", role="orchestrator", payload={"success": True})
    ss = collect_from_traces(tmp_path)
    got = {s.session_id: s for arm in ss.by_arm.values() for s in arm}
    assert len(got) == 8 and ss.by_arm["candidate"] and ss.by_arm["baseline"]
    for i in range(8):
        s = got[f"run-{i:02d}"]
        # the router's own episode_error for a fallback counts as a fallback, not as an error
        assert (s.errors, s.tool_errors, s.risk_flags) == (i % 2, 1, 1)
        assert s.fallbacks == (1 if s.arm == "candidate" else 0)


def test_gate_json_lists_safety_checks(tmp_path):
    ss = mark(make_samples(), "candidate", "fallbacks", 10)
    p = tmp_path / "s.jsonl"
    write_samples(p, [s for arm in ss.by_arm.values() for s in arm])
    r = CliRunner().invoke(app, ["gate", "--samples", str(p), "--config", str(ROOT / "configs/gates/default.yaml"),
                                 "--json"], catch_exceptions=False)
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    safety = {c["name"]: c for c in out["checks"] if c["group"] == "safety"}
    assert set(safety) == {"error_rate", "tool_error_rate", "risk_flag_rate", "fallback_rate"}
    fb = safety["fallback_rate"]
    assert (fb["status"], fb["candidate"], fb["baseline"], fb["threshold"]) == ("fail", 0.05, 0.0, "increase <= 0.02")
    assert out["reasons"] == [f"fallback_rate: {fb['reason']}"]
    assert safety["error_rate"]["status"] == "pass" and out["gate_config"]["safety"]["max_error_increase"] == 0.01


def test_an_increase_exactly_at_its_limit_passes():
    # 110 vs 100 tokens and dollars is +10%, which "increase <= 10%" allows; the mean of 100 sessions'
    # dollars gives 0.1000000000000018 in floats, and the gate said "mean up +10.00% > +10%"
    ss = SampleSet()
    for arm, tokens in (("baseline", 100), ("candidate", 110)):
        for j in range(100):
            ss.add(Sample(session_id=f"{arm}-{j}", arm=arm, success=True, tokens=tokens, cost_usd=tokens * 1e-6,
                          latency_ms=1000.0, verdicts_correct=1, verdicts_total=1))
    rep = evaluate_gates(ss, GateConfig(max_token_increase=0.10, max_cost_increase=0.10, min_reactions=0))
    assert _check(rep, "usd_per_session").status == PASS, _check(rep, "usd_per_session").reason
    assert _check(rep, "tokens_per_session").status == PASS
    rep = evaluate_gates(ss, GateConfig(max_token_increase=0.09, max_cost_increase=0.09, min_reactions=0))
    assert _check(rep, "usd_per_session").status == FAIL and _check(rep, "tokens_per_session").status == FAIL


def test_a_drop_exactly_at_its_limit_passes():
    # 70 of 100 candidate sessions succeeded against 72 of 100: a drop of 0.02, which "drop <= 0.02" allows
    # (and far from significant); 0.72 - 0.70 is 0.020000000000000018 in floats, and the gate failed the
    # candidate with "dropped 0.0200 > 0.02"
    ss = SampleSet()
    for arm, ok in (("baseline", 72), ("candidate", 70)):
        for j in range(100):
            ss.add(Sample(session_id=f"{arm}-{j}", arm=arm, success=j < ok, tokens=100, cost_usd=1e-4,
                          latency_ms=1000.0, verdicts_correct=1, verdicts_total=1))
    rep = evaluate_gates(ss, GateConfig(min_reactions=0))
    assert _check(rep, "success_rate").status == PASS, _check(rep, "success_rate").reason
    assert rep.passed, rep.reasons
    assert _check(evaluate_gates(ss, GateConfig(min_reactions=0, success=QualityGate(max_drop=0.019))),
                  "success_rate").status == FAIL
    # a mean score 0.9 -> 0.7 drops 0.20000000000000007: at reaction_score.max_drop 0.2 it is no drop beyond it
    cfg = GateConfig(alpha=0.0)  # the drop alone decides here
    assert check_score("reaction_score", [0.7] * 30, [0.9] * 30, cfg.reaction_score, 20, cfg).status == PASS
    assert check_score("reaction_score", [0.69] * 30, [0.9] * 30, cfg.reaction_score, 20, cfg).status == FAIL


def test_a_mean_cost_exactly_at_the_budget_passes():
    # every session cost the budget, $0.01: the mean of 100 of them is 0.010000000000000007 in floats, and the
    # gate said "mean 0.01 over budget 0.01"
    ss = SampleSet()
    for arm in ("baseline", "candidate"):
        for j in range(100):
            ss.add(Sample(session_id=f"{arm}-{j}", arm=arm, success=True, tokens=100, cost_usd=0.01,
                          latency_ms=1000.0, verdicts_correct=1, verdicts_total=1))
    rep = evaluate_gates(ss, GateConfig(min_reactions=0, max_usd_per_session=0.01, max_p95_ms=1000.0))
    assert _check(rep, "usd_per_session").status == PASS, _check(rep, "usd_per_session").reason
    assert rep.passed, rep.reasons
    rep = evaluate_gates(ss, GateConfig(min_reactions=0, max_usd_per_session=0.0099, max_p95_ms=999.0))
    assert _check(rep, "usd_per_session").status == FAIL and _check(rep, "latency_p95").status == FAIL


def test_an_arm_pooling_two_policies_is_not_gated():
    # the canary's candidate was switched mid-period: the report named the most common policy and
    # gated it on the other's sessions too
    ss = make_samples()
    for s in ss.by_arm["candidate"][:80]:
        s.policy = "cand-v3"
    rep = evaluate_gates(ss, GateConfig())
    assert not rep.passed
    size = _check(rep, "sample_size")
    assert size.status == FAIL and "the candidate arm mixes policies candidate-policy (120), cand-v3 (80)" in size.reason
    assert all(c.status != PASS for c in rep.checks)
    assert evaluate_gates(make_samples(), GateConfig()).passed  # one policy per arm: unchanged


def test_a_session_read_twice_is_skipped_as_a_duplicate_not_weighed_twice(tmp_path):
    """A samples file with a session twice (two files concatenated, a line repeated) counted that session
    twice in every gate, silently; now the second is skipped with where both were read (read = baseline +
    candidate + skipped still), and so is a trace run whose session another run already gave."""
    rows = [{"session_id": "s1", "arm": "candidate", "tokens": 10}, {"session_id": "s2", "arm": "baseline"},
            {"session_id": "s1", "arm": "candidate", "tokens": 99}]
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ss = load_samples_file(p)
    assert [s.tokens for s in ss.by_arm["candidate"]] == [10]
    assert ss.skipped == [{"where": f"{p}:3:session_id", "reason": f"duplicate: session s1 already read at {p}:1:session_id"}]
    assert ss.counts() == {"read": 3, "baseline": 1, "candidate": 1, "skipped": 1, "skipped_by_reason": {"duplicate": 1}}


def test_no_sessions_fail_readably_with_no_nan(tmp_path):
    """With no sessions the cost checks passed on nan ("nan vs nan (+nan%, p=1)") and were flipped to FAIL,
    and promote repeated the nan: each always-gated check now fails saying what each arm had and what is
    needed, while an optional quality metric (reaction_score) stays not_gated; the JSON holds no NaN."""
    rep = evaluate_gates(SampleSet(), GateConfig())
    assert not rep.passed and "nan" not in json.dumps(rep.to_dict()).lower()
    status = {c.name: c.status for c in rep.checks}
    assert status.pop("reaction_score") == NOT_GATED and set(status.values()) == {FAIL}
    assert _check(rep, "tokens_per_session").reason == \
        "no sessions in the candidate arm (0 candidate, 0 baseline); needs >= 50 sessions per arm (min_sessions)"
    assert _check(rep, "latency_p95").reason.startswith("no sessions with a latency in the candidate arm (0 candidate")
    one = make_samples(n=20)  # an arm with too few but some sessions: a pass below the sample size fails, saying why
    one.by_arm["candidate"] = one.by_arm["candidate"][:3]
    chk = _check(evaluate_gates(one, GateConfig()), "usd_per_session")
    assert chk.status == FAIL and chk.reason.startswith(
        "fails on too few sessions (3 candidate, 20 baseline; needs >= 50 per arm): "), chk.reason
    (tmp_path / "traces").mkdir()
    out = tmp_path / "g.json"
    res = CliRunner().invoke(app, ["gate", "--traces", str(tmp_path / "traces"), "--out", str(out)])
    assert res.exit_code == 1 and "nan" not in res.output.lower() and "NaN" not in out.read_text()
    res = CliRunner().invoke(app, ["promote", "--report", str(out), "--state", str(tmp_path / "state")])
    assert res.exit_code != 0 and "nan" not in res.output.lower() and "no sessions in the candidate arm" in res.output
