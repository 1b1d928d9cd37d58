"""Task-grounded triplet rewards (``views.reward``): outcome, the turn's own result, reactions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import record_sample_run
from tracebridge.export.config import ExportConfig, ViewsConfig
from tracebridge.export.reward import RewardConfig, reward, step_signal
from tracebridge.export.views import RunContext, build_views


def test_step_signal_by_role() -> None:
    assert step_signal("planner", {"plan_matches_reference": False, "cycle_verdict": "end"}) == 0.0
    assert step_signal("planner", {"cycle_verdict": "end"}) == 1.0
    assert step_signal("planner", {"cycle_verdict": "replan"}) == 0.0
    assert step_signal("planner", {"cycle_verdict": "continue"}) is None  # the run stopped mid-plan
    assert step_signal("worker", {"tool_ok": True}) == 1.0 and step_signal("worker", {"tool_ok": False}) == 0.0
    assert step_signal("worker", {"goal_met": True}) == 1.0 and step_signal("worker", {}) is None
    assert step_signal("verifier", {"verdict": "end", "expected_verdict": "end"}) == 1.0
    assert step_signal("verifier", {"verdict": "continue", "expected_verdict": "end"}) == 0.0
    assert step_signal("verifier", {"verdict": "end"}) is None


def test_reward_is_the_weighted_mean_of_the_known_signals() -> None:
    cfg = RewardConfig(outcome=0.5, step=0.3, feedback=0.2)
    value, parts = reward("worker", {"tool_ok": False, "feedback_score": 1.0}, True, cfg)
    assert parts == {"outcome": 1.0, "step": 0.0, "feedback": 0.75}  # -2..+2 → 0..1
    assert value == pytest.approx(0.5 * 1.0 + 0.3 * 0.0 + 0.2 * 0.75)
    value, parts = reward("worker", {"tool_ok": True}, None, cfg)  # unknown outcome, no reaction: step alone
    assert (value, parts) == (1.0, {"step": 1.0})
    assert reward("worker", {}, None, cfg) == (None, {})  # nothing known: an unrewarded transition
    assert reward("worker", {"feedback_score": -9.0}, None, cfg)[1] == {"feedback": 0.0}  # clipped to the scale
    binary = RewardConfig(step=0, feedback=0)  # the outcome reward of before
    assert reward("verifier", {"verdict": "end", "expected_verdict": "continue", "feedback_score": 2.0}, False,
                  binary) == (0.0, {"outcome": 0.0})


def test_reward_weights_are_validated() -> None:
    assert ExportConfig(views=ViewsConfig(reward=RewardConfig(step=-1))).validate() == [
        "views.reward.step=-1: must be >= 0"]
    assert ExportConfig(views=ViewsConfig(reward=RewardConfig(outcome=0, step=0, feedback=0))).validate() == [
        "views.reward: at least one of outcome, step, feedback must be > 0"]


def test_triplets_carry_the_reward_and_its_components(tmp_path: Path) -> None:
    rid = record_sample_run(tmp_path)
    events = [json.loads(x) for x in (tmp_path / rid / "events.jsonl").read_text().splitlines()]
    ctx = RunContext(run_id="r1", family="files", split="train", source="sim", success=True, tools=[])
    views, _ = build_views(events, ctx, ViewsConfig())
    by_role: dict[str, list[dict]] = {}
    for t in views["agentlightning/triplets"]:
        by_role.setdefault(t["metadata"]["role"], []).append(t)
    (plan,) = by_role["planner"]  # its cycle was closed by "end" in a successful run
    assert plan["reward"] == 1.0 and plan["metadata"]["reward_components"] == {"outcome": 1.0, "step": 1.0}
    failed, recovered = by_role["worker"]  # the first call failed (not_found), the retry succeeded
    assert failed["metadata"]["reward_components"] == {"outcome": 1.0, "step": 0.0}
    assert failed["reward"] == pytest.approx(0.5 / 0.8) and recovered["reward"] == 1.0
    only_outcome = build_views(events, ctx, ViewsConfig(reward=RewardConfig(step=0, feedback=0)))[0]
    assert {t["reward"] for t in only_outcome["agentlightning/triplets"]} == {1.0}
