"""GPU-hours, cluster nodes and the cost estimate of a report manifest, from where each trial ran
(its ``resources`` record, ``tracebridge.train.placement``) and not from the machine that writes
the report: a sweep driver on a CPU-only head node would otherwise report 0 GPU-hours.

Prices: ``window.prices`` (USD per hour per instance type, ``tracebridge.cluster.config``: the
table the GPU window's budget watchdog uses) divided by the GPUs of the instance that carries each
GPU type in ``infra/aws-gpu.yaml`` (``GPU_INSTANCES``). GPU time of the trials only: the head,
idle workers and start-up are not counted (the window's ``cost_usd_max`` bounds those). Pure.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# GPU type → (instance type in the price table, GPUs on that instance); infra/aws-gpu.yaml's workers
GPU_INSTANCES: dict[str, tuple[str, int]] = {"A10G": ("g5.xlarge", 1), "L4": ("g6.xlarge", 1),
                                             "A100": ("p4d.24xlarge", 8), "H100": ("p5.48xlarge", 8)}


def distinct_runs(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials less the copies of a run already listed: a sweep gives each grid cell a trial it trained once
    for several cells (``trained_as``, ``tracebridge.sweep.shared``), whose time and GPUs count once."""
    seen, out = set(), []
    for t in trials:
        run = t.get("trained_as")
        if run is None or run not in seen:
            out.append(t)
        seen.add(run)
    return out


def trial_gpus(trial: dict[str, Any]) -> float:
    """GPUs the trial was given (0 when it recorded none: CPU, or a result from before ``resources``)."""
    return float((trial.get("resources") or {}).get("gpus") or 0.0)


def trial_held_s(trial: dict[str, Any]) -> float:
    """The seconds the trial held its resources: its ``held_s`` over all its attempts (``sweep.tune_run.held``:
    a retried trial's lost attempts held them too) where longer than its own ``wall_s``."""
    return max(float(trial.get("wall_s") or 0.0), float(trial.get("held_s") or 0.0))


def trial_gpu_hours(trial: dict[str, Any]) -> float:
    """The trial's GPUs × the seconds it held them (``trial_held_s``) / 3600."""
    return trial_gpus(trial) * trial_held_s(trial) / 3600


def cluster_nodes(trials: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per node the trials ran on (host name; ``unknown`` for results without ``resources``):
    ``{"node_ip", "gpu_type", "gpus" (the most any of its trials held), "trials", "gpu_hours"}``."""
    nodes: dict[str, dict[str, Any]] = {}
    for t in trials:
        res = t.get("resources") or {}
        n = nodes.setdefault(str(res.get("node") or "unknown"), {"node_ip": res.get("node_ip"), "gpu_type": None,
                                                                 "gpus": 0.0, "trials": 0, "gpu_hours": 0.0})
        n["trials"] += 1
        n["gpus"] = max(n["gpus"], trial_gpus(t))
        n["gpu_type"] = n["gpu_type"] or res.get("gpu_type")
        n["gpu_hours"] += trial_gpu_hours(t)
    return nodes


def gpu_price(gpu_type: str | None, prices: dict[str, float]) -> tuple[float | None, str]:
    """USD per GPU-hour of a GPU type, and where it came from (or why there is none)."""
    if not gpu_type:
        return None, "a trial held GPUs of unrecorded type"
    if gpu_type not in GPU_INSTANCES:
        return None, (f"no price for GPU type {gpu_type} (priced: {', '.join(GPU_INSTANCES)}; "
                      "tracebridge.report.cost.GPU_INSTANCES maps a type to its instance)")
    instance, per = GPU_INSTANCES[gpu_type]
    if prices.get(instance) is None:
        return None, f"no price for {instance} (GPU type {gpu_type}) in the price table"
    return prices[instance] / per, f"{gpu_type} = {instance} at ${prices[instance]:g}/h ÷ {per} GPU(s)"


def _hours_by_type(trials: list[dict[str, Any]]) -> dict[str | None, float]:
    hours: dict[str | None, float] = defaultdict(float)
    for t in trials:
        if trial_gpu_hours(t):
            hours[(t.get("resources") or {}).get("gpu_type")] += trial_gpu_hours(t)
    return hours


def cost_estimate(trials: list[dict[str, Any]], prices: dict[str, float], table: str,
                  failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The GPU cost of the trials, the failed ones included (they held their GPUs too).

    Args:
        trials: results with ``resources`` and ``wall_s``.
        prices: USD per hour by instance type.
        table: where ``prices`` came from (``window.prices``), stamped into ``source``.
        failed: the failed trials, with ``resources`` and ``wall_s`` where their last report gave
            them (``sweep.tune_run.ran``); one without counts nothing.

    Returns:
        ``{"usd", "usd_failed", "per_gpu_hour": {gpu type: USD}, "source"}``: ``usd`` all trials,
        ``usd_failed`` the failed ones' share; both None, with a ``reason``, when a GPU type that was
        used has no price. No GPU time costs 0.
    """
    failed = failed or []
    hours = _hours_by_type([*trials, *failed])
    per: dict[str, float] = {}
    used, missing = [], []
    for g in sorted(hours, key=str):
        price, why = gpu_price(g, prices)
        if price is None:
            missing.append(why)
        else:
            per[str(g)] = price
            used.append(why)
    source = (f"{table} (USD/h per instance) ÷ GPUs per instance, trials' GPU time only"
              + (f": {'; '.join(used)}" if used else ": no GPU time"))
    if missing:
        return {"usd": None, "usd_failed": None, "per_gpu_hour": per, "source": source, "reason": "; ".join(missing)}
    return {"usd": sum(h * per[str(g)] for g, h in hours.items()),
            "usd_failed": sum(h * per[str(g)] for g, h in _hours_by_type(failed).items()),
            "per_gpu_hour": per, "source": source}
