"""``tracebridge eval --min/--max``: floors for metrics where higher is better, ceilings where lower is,
a bound on the wrong side refused naming the option that fits, and a metric with no value missing
its bound as "not measured"."""

from __future__ import annotations

import math

from tracebridge.eval.bounds import missed, parse_bounds


def test_a_floor_on_a_lower_is_better_metric_is_refused_naming_the_ceiling():
    floors, probs = parse_bounds(["worker/error_recurrence=0.2", "worker/action_match=0.5"], "worker", "--min")
    assert floors == {"worker/action_match": 0.5}
    assert probs == [("--min worker/error_recurrence: lower is better for error_recurrence, so a floor fails the "
                     "better model; give a ceiling: --max worker/error_recurrence=0.2")]
    ceilings, probs = parse_bounds(["worker/error_recurrence=0.2", "worker/cl_invalid_outputs_per_episode_hi=0.3"],
                                   "worker", "--max")
    assert ceilings == {"worker/error_recurrence": 0.2, "worker/cl_invalid_outputs_per_episode_hi": 0.3} and probs == []
    _, probs = parse_bounds(["verifier/accuracy=0.9", "verifier/majority_accuracy=0.5"], "verifier", "--max")
    assert [p.split(":")[0] for p in probs] == ["--max verifier/accuracy", "--max verifier/majority_accuracy"]
    assert "give a floor: --min verifier/accuracy=0.9" in probs[0]


def test_names_and_numbers_are_checked_before_any_evaluation():
    _, probs = parse_bounds(["verifier/acc=0.5", "verifier/accuracy=abc", "verifier/accuracy=inf", "accuracy=0.5"],
                            "verifier", "--min")
    assert len(probs) == 4
    assert probs[0].startswith("--min verifier/acc: not a verifier metric")
    assert probs[1] == probs[2].replace("inf", "abc") == "--min verifier/accuracy=abc: use metric=number, e.g. " \
                                                         "verifier/accuracy=0.6"
    assert probs[3].startswith("--min accuracy: not a verifier metric")


def test_missed_bounds_and_metrics_without_a_value():
    metrics = {"worker/action_match": 0.4, "worker/error_recurrence": 0.3, "worker/arg_grounding": math.nan,
               "worker/tool_call_validity": None}
    floors = {"worker/action_match": 0.5, "worker/arg_grounding": 0.1, "worker/tool_call_validity": 0.1,
              "worker/cl_success": 0.5}
    below, above, unmeasured = missed(metrics, floors, {"worker/error_recurrence": 0.25})
    assert below == {"worker/action_match": 0.4, "worker/arg_grounding": None, "worker/tool_call_validity": None,
                     "worker/cl_success": None}
    assert above == {"worker/error_recurrence": 0.3}
    assert unmeasured == ["worker/arg_grounding", "worker/cl_success", "worker/tool_call_validity"]
    assert missed(metrics, {"worker/action_match": 0.4}, {"worker/error_recurrence": 0.3}) == ({}, {}, [])


def test_another_roles_metric_is_refused_before_evaluation_not_reported_unmeasured_after():
    """``--min verifier/action_match=0.1`` was accepted (the names of every role were allowed), the whole
    evaluation ran, and the command then failed with the bound "not measured"."""
    bounds, probs = parse_bounds(["verifier/action_match=0.1", "verifier/cl_accuracy=0.5", "verifier/cl_success=0.5",
                                  "verifier/pref_accuracy=0.5", "verifier/uplift_vs_majority_lo=0"], "verifier", "--min")
    assert bounds == {"verifier/cl_success": 0.5, "verifier/pref_accuracy": 0.5, "verifier/uplift_vs_majority_lo": 0.0}
    assert [p.split(":")[0] for p in probs] == ["--min verifier/action_match", "--min verifier/cl_accuracy"]
    assert probs[0] == ("--min verifier/action_match: not a verifier metric; use verifier/<metric> with one of "
                        "accuracy, stop_precision, stop_recall, false_stop_rate, unnecessary_replan_rate, "
                        "majority_accuracy, uplift_vs_majority, pref_accuracy, reward_margin, or verifier/cl_<metric> "
                        "(the closed loop) with one of success, replan_rate, tool_success, action_efficiency, "
                        "verdict_accuracy, invalid_outputs_per_episode")
    _, probs = parse_bounds(["planner/error_recurrence=0.5", "worker/cl_error_recurrence=0.5"], "planner", "--max")
    assert [p.split(":")[0] for p in probs] == ["--max planner/error_recurrence", "--max worker/cl_error_recurrence"]
