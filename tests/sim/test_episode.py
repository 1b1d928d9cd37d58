"""Episodes end to end: layout and lineage, ground-truth labels, recovery, skills, determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.sim.conftest import HARD, NOVICE, read_run, spec
from tracebridge.schema.events import EVENT_TYPES
from tracebridge.schema.validate import Thresholds, validate_root
from tracebridge.sim.config import FailureProfile, SkillConfig
from tracebridge.sim.episode import run_episode
from tracebridge.sim.families import FAMILIES
from tracebridge.sim.hashing import content_hash


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    """Novice policies in a hard environment, every family: 48 episodes."""
    root = tmp_path_factory.mktemp("chaos")
    results = [run_episode(spec(f, s, NOVICE, HARD), root) for f in FAMILIES for s in range(12)]
    return root, results


def test_chaos_runs_are_valid_and_cover_every_event_type(chaos):
    root, results = chaos
    rep = validate_root(root, Thresholds(100.0, 100.0, 0.0))
    assert rep.passed, rep.problems[:5]
    assert rep.runs_complete == len(results) and rep.events_lineage_valid == rep.events_total
    seen = Counter()
    for r in results:
        seen.update(r.event_types)
        assert not r.crashed and r.capture_errors == 0
    assert set(seen) == set(EVENT_TYPES)


def test_every_verdict_carries_its_ground_truth(chaos):
    root, results = chaos
    agree = total = 0
    for r in results:
        events, session = read_run(root, r.run_id)
        for e in events:
            if e["event_type"] == "verifier_output":
                exp = e["labels"]["expected_verdict"]
                assert exp in ("continue", "replan", "end") and isinstance(e["labels"]["goal_met"], bool)
                total += 1
                agree += exp == e["payload"]["verdict"]
                if "fault" not in e["labels"]:
                    assert e["payload"]["verdict"] == exp  # scripted verifier errs only through its skill
            if e["event_type"] == "worker_action" and e["payload"]["action"] == "tool_call":
                assert "expected_tool" in e["labels"] or e["labels"] == {}
        assert session["source"]["kind"] == "sim" and session["runtime_config"]["seed_kind"] == "fixed"
        assert session["labels"]["unsatisfiable"] == r.unsatisfiable
    assert total and 0.6 < agree / total < 1.0


def test_recovery_is_a_failed_call_then_a_successful_retry_in_the_same_step(chaos):
    root, results = chaos
    recovered = [r for r in results if r.recovery]
    assert recovered and len(recovered) < len(results)
    for r in recovered:
        events, session = read_run(root, r.run_id)
        calls = {e["payload"]["call_id"]: e for e in events if e["event_type"] == "worker_tool_result"}
        ok_retries = [e for e in calls.values() if e["payload"]["ok"] and e["payload"]["retry_of"]]
        assert ok_retries and session["labels"]["recovery"] is True
        args = {e["payload"]["call_id"]: (e["payload"]["tool"], e["payload"]["args"])
                for e in events if e["event_type"] == "worker_tool_call"}
        for e in ok_retries:
            failed = calls[e["payload"]["retry_of"]]
            assert not failed["payload"]["ok"] and failed["step"] == e["step"]
        assert any(args[e["payload"]["call_id"]] != args[e["payload"]["retry_of"]] for e in ok_retries)


def test_unsatisfiable_episode_ends_with_error_and_failure_class(chaos):
    root, results = chaos
    unsat = [r for r in results if r.unsatisfiable]
    assert unsat
    for r in unsat:
        events, session = read_run(root, r.run_id)
        assert not r.success and session["summary"]["success"] is False
        assert events[-1]["event_type"] == "episode_end"
        if r.failure_class == "unsatisfiable":
            err = events[-2]
            assert err["event_type"] == "episode_error" and err["payload"]["recoverable"] is False


def test_perfect_skill_in_a_clean_world_always_succeeds(tmp_path):
    for f in FAMILIES:
        for s in range(5):
            r = run_episode(spec(f, s), tmp_path)
            assert r.success and r.failure_class is None and not r.recovery
            assert r.verdicts_correct == sum(r.verdicts.values())
            assert r.verdicts.get("replan", 0) == 0 and r.verdicts["end"] == 1


def test_verifier_skills_shift_verdicts(tmp_path):
    always_stop = SkillConfig(premature_stop=1.0)
    r = run_episode(spec("sql", 0, always_stop), tmp_path)  # 3-step plan: stops after step 1
    assert r.verdicts == {"end": 1} and not r.success and r.failure_class == "premature_stop"
    assert r.expected_verdicts == {"continue": 1}
    never_stop = SkillConfig(missed_stop=1.0)
    r = run_episode(spec("calc", 1, never_stop), tmp_path)
    assert r.success and r.failure_class is None and r.verdicts.get("end", 0) == 0  # plan exhausted
    replanner = SkillConfig(needless_replan=1.0)
    r = run_episode(spec("docs", 2, replanner, max_steps=4), tmp_path)
    assert r.verdicts.get("replan", 0) >= 1 and r.verdicts_correct < sum(r.verdicts.values())


def test_wrong_step_order_and_bad_args_are_labelled(tmp_path):
    r = run_episode(spec("files", 0, SkillConfig(wrong_step_order=1.0)), tmp_path)
    events, _ = read_run(tmp_path, r.run_id)
    plans = [e for e in events if e["event_type"] == "planner_output"]
    assert plans[0]["labels"]["fault"] == "wrong_step_order" and r.verdicts.get("replan", 0) >= 1
    assert plans[0]["payload"]["plan"] != plans[0]["labels"]["expected_plan"]
    r = run_episode(spec("files", 0, SkillConfig(bad_args=1.0, recover=1.0)), tmp_path)
    events, _ = read_run(tmp_path, r.run_id)
    actions = [e for e in events if e["event_type"] == "worker_action"]
    assert [a["labels"].get("fault") for a in actions] == ["bad_args", None] * (len(actions) // 2)
    assert r.recovery and r.success


def test_same_seed_same_content_and_different_seed_differs(tmp_path):
    profile = FailureProfile(flaky_rate=0.3, slow_rate=0.2, slow_ms=2000, misleading_rate=0.5,
                             unsatisfiable_rate=0.3)
    for f in FAMILIES:
        a = run_episode(spec(f, 7, NOVICE, profile), tmp_path / "a")
        b = run_episode(spec(f, 7, NOVICE, profile), tmp_path / "b")
        c = run_episode(spec(f, 8, NOVICE, profile), tmp_path / "c")
        assert a.run_id != b.run_id
        ha, hb, hc = (content_hash(tmp_path / d / r.run_id) for d, r in (("a", a), ("b", b), ("c", c)))
        assert ha == hb and ha != hc


def test_max_steps_bounds_the_episode(tmp_path):
    r = run_episode(spec("docs", 0, SkillConfig(needless_replan=1.0), max_steps=2), tmp_path)
    events, session = read_run(tmp_path, r.run_id)
    assert r.cycles == 2 and r.failure_class == "max_steps" and session["summary"]["steps"] == 2
    assert "max_steps" in [e for e in events if e["event_type"] == "orchestrator_transition"][-1]["payload"]["reason"]
