"""``tracebridge eval``'s pass/fail bounds: ``--min metric=value`` floors for metrics where higher is
better, ``--max metric=value`` ceilings for those where lower is better (``HIGHER_IS_BETTER``), and
which of them a run's metrics miss. A bound on the wrong side of its metric (a floor on
``error_recurrence``: any model with fewer repeated errors "fails") is refused up front, naming the
option that fits, as is a name that is not a metric of the role (a typo, or another role's metric,
would otherwise only show as an unmet bound, "not measured", after the whole evaluation)."""

from __future__ import annotations

import math
from typing import Any

from tracebridge.eval.metrics import HIGHER_IS_BETTER

# what each role's evaluation measures (tracebridge.eval.offline; the verifier's majority-class baseline and
# its uplift too), the preference pairs' metrics of every role, and the closed loop's (``cl_``, closed_loop.py)
ROLE_METRICS = {
    "planner": ("plan_validity", "replan_rate"),
    "worker": ("tool_call_validity", "action_match", "arg_grounding", "error_recurrence"),
    "verifier": ("accuracy", "stop_precision", "stop_recall", "false_stop_rate", "unnecessary_replan_rate",
                 "majority_accuracy", "uplift_vs_majority"),
}
PAIR_METRICS = ("pref_accuracy", "reward_margin")
CLOSED_LOOP_METRICS = ("success", "replan_rate", "tool_success", "action_efficiency", "verdict_accuracy",
                       "invalid_outputs_per_episode")


def _known(role: str, key: str) -> tuple[str, ...]:
    """The metric names ``key`` may end in: the closed loop's for a ``cl_`` key, else the role's offline ones."""
    if key.startswith(f"{role}/cl_"):
        return CLOSED_LOOP_METRICS
    return (*ROLE_METRICS.get(role, ()), *PAIR_METRICS)


def metric_name(key: str, role: str) -> str:
    """The bare metric of ``<role>/[cl_]<metric>[_lo|_hi]``."""
    return key.removeprefix(f"{role}/").removeprefix("cl_").removesuffix("_lo").removesuffix("_hi")


def parse_bounds(items: list[str], role: str, option: str) -> tuple[dict[str, float], list[str]]:
    """``option`` (``--min`` or ``--max``) ``metric=value`` items as ``{metric: bound}``, and the problem
    with each bad one (``--min k: what; fix``)."""
    higher = option == "--min"
    out: dict[str, float] = {}
    probs: list[str] = []
    for it in items:
        k, sep, v = it.partition("=")
        try:
            bound = float(v)
        except ValueError:
            bound = math.nan
        name = metric_name(k, role)
        if not sep or math.isnan(bound) or math.isinf(bound):
            probs.append(f"{option} {it}: use metric=number, e.g. {role}/accuracy=0.6")
        elif not k.startswith(f"{role}/") or name not in _known(role, k):
            probs.append(f"{option} {k}: not a {role} metric; use {role}/<metric> with one of "
                         f"{', '.join(_known(role, role + '/'))}, or {role}/cl_<metric> (the closed loop) with one of "
                         f"{', '.join(CLOSED_LOOP_METRICS)}")
        elif HIGHER_IS_BETTER.get(name, True) != higher:
            other = "--max" if higher else "--min"
            probs.append(f"{option} {k}: {'lower' if higher else 'higher'} is better for {name}, so a "
                         f"{'floor' if higher else 'ceiling'} fails the better model; give a "
                         f"{'ceiling' if higher else 'floor'}: {other} {k}={v}")
        else:
            out[k] = bound
    return out, probs


def missed(metrics: dict[str, Any], floors: dict[str, float], ceilings: dict[str, float]
           ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The floors not met (``{metric: value}``), the ceilings exceeded, and the bounded metrics this run
    did not measure (absent, e.g. cl_* without the closed loop, or null/NaN: no eval item has it), which
    miss their bound too."""
    def value(k: str) -> float | None:
        v = metrics.get(k)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    below = {k: value(k) for k, b in floors.items() if value(k) is None or value(k) < b}
    above = {k: value(k) for k, b in ceilings.items() if value(k) is None or value(k) > b}
    unmeasured = sorted(k for k in (*floors, *ceilings) if value(k) is None)
    return below, above, unmeasured
