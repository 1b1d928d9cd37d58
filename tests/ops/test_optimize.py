"""The optimize step's uplift: oriented by the metric's direction, so a gain is positive."""

from __future__ import annotations

import pytest

from tracebridge.ops.cycle import StepFailed
from tracebridge.ops.optimize import uplift_from_results
from tracebridge.ops.shadow_config import OptimizeConfig, ShadowConfig


def _results(name: str, base: float, opt: float, lo: float, hi: float) -> dict:
    return {"roles": {"worker": {
        "variants": {"baseline": {"metrics": {name: {"value": base}}},
                     "optimized": {"metrics": {name: {"value": opt}}}},
        "comparison": {name: {"value": opt - base, "lo": lo, "hi": hi, "n": 32}}}}}


def test_a_fall_of_a_lower_is_better_metric_is_a_positive_uplift():
    up = uplift_from_results(_results("error_recurrence", 0.40, 0.20, -0.3, -0.1), "worker/error_recurrence")
    assert up["higher_is_better"] is False
    assert up["uplift"] == pytest.approx(0.2)
    assert (up["lo"], up["hi"]) == (pytest.approx(0.1), pytest.approx(0.3))


def test_a_rise_of_a_lower_is_better_metric_is_a_negative_uplift():
    up = uplift_from_results(_results("error_recurrence", 0.20, 0.40, 0.1, 0.3), "worker/error_recurrence")
    assert up["uplift"] == pytest.approx(-0.2)


def test_a_higher_is_better_metric_keeps_optimized_minus_baseline():
    up = uplift_from_results(_results("action_match", 0.5, 0.7, 0.1, 0.3), "worker/action_match")
    assert up["higher_is_better"] is True
    assert up["uplift"] == pytest.approx(0.2)
    assert (up["lo"], up["hi"]) == (0.1, 0.3)


def test_a_lower_is_better_metric_without_a_comparison_is_oriented_too():
    res = _results("error_recurrence", 0.40, 0.20, 0, 0)
    del res["roles"]["worker"]["comparison"]
    assert uplift_from_results(res, "worker/error_recurrence")["uplift"] == pytest.approx(0.2)


def test_a_metric_of_unknown_direction_fails_the_step():
    with pytest.raises(StepFailed, match="no known direction"):
        uplift_from_results(_results("made_up", 0.4, 0.2, 0, 0), "worker/made_up")


@pytest.mark.parametrize("metric", ["worker/made_up", "action_match", "worker/", "/action_match"])
def test_an_unknown_optimize_metric_is_refused_before_the_cycle(metric):
    probs = ShadowConfig(optimize=OptimizeConfig(metric=metric)).problems()
    assert any(p.startswith(f"shadow.optimize.metric={metric}:") for p in probs)


@pytest.mark.parametrize("metric", ["worker/error_recurrence", "verifier/accuracy", "worker/cl_success"])
def test_known_optimize_metrics_pass(metric):
    assert ShadowConfig(optimize=OptimizeConfig(metric=metric)).problems() == []


def test_the_metric_is_not_checked_when_optimize_is_off():
    assert ShadowConfig(optimize=OptimizeConfig(mode="off", metric="x")).problems() == []
