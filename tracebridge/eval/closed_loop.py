"""Closed-loop evaluation: the trained role model plays its role in the simulator (the other
roles scripted) over a fixed benchmark set of goal families × seeds, and each episode becomes
one item. Baseline and optimized see the same episodes (same specs, same seeds, same scripted
mistakes), so their per-episode values pair up.

Metrics (ratios of sums over episodes): ``success`` (the checker's verdict), ``replan_rate``
(replan verdicts per cycle), ``tool_success`` (tool calls that returned ok, of all calls),
``action_efficiency`` (successes per tool call: fewer calls for the same success is better),
``verdict_accuracy`` (verdicts matching the simulator's ex-post expected verdict) and
``invalid_outputs_per_episode`` (replies of the trained role that did not parse).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from tracebridge.eval.offline import OfflineResult, collect
from tracebridge.eval.stats import bootstrap
from tracebridge.train.config import TrainConfig

log = logging.getLogger(__name__)


def benchmark_specs(cfg: TrainConfig) -> list[Any]:
    """The fixed episode specs of the benchmark (families × seeds), identical for every variant."""
    from tracebridge.sim.config import FailureProfile, SkillConfig
    from tracebridge.sim.episode import EpisodeSpec
    from tracebridge.sim.families import FAMILIES

    cl = cfg.eval.closed_loop
    fams = list(cl.families) or sorted(FAMILIES)
    return [EpisodeSpec(family=f, seed=s, mix=f"closed_loop_{cfg.role}", skill=SkillConfig(**cl.skill),
                        failure="closed_loop", profile=FailureProfile(**cl.failures), max_steps=cl.max_steps,
                        collection="closed_loop")
            for f in fams for s in cl.seeds]


def _tool_counts(run_dir: Path) -> tuple[int, int]:
    calls = ok = 0
    path = run_dir / "events.jsonl"
    if not path.is_file():
        return 0, 0
    for line in path.read_text().splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        if ev.get("event_type") == "worker_tool_result":
            calls += 1
            ok += bool(ev.get("payload", {}).get("ok"))
    return calls, ok


def episode_item(res: Any, calls: int, ok: int) -> dict[str, tuple[float, float]]:
    """One episode's metric values (pure)."""
    verdicts = sum(res.verdicts.values())
    return {
        "success": (float(res.success), 1.0),
        "replan_rate": (float(res.verdicts.get("replan", 0)), float(max(res.cycles, 1))),
        "tool_success": (float(ok), float(calls)),
        "action_efficiency": (float(res.success), float(max(calls, 1))),
        "verdict_accuracy": (float(res.verdicts_correct), float(verdicts)),
        "invalid_outputs_per_episode": (float(res.invalid_outputs), 1.0),
    }


def evaluate_closed_loop(model: Any, tok: Any, cfg: TrainConfig, trace_root: Path | None = None) -> OfflineResult:
    """Run the benchmark with ``model`` as ``cfg.role`` and score every episode.

    Args:
        model, tok: the trained role model and its tokenizer.
        cfg: the trial config (role, ``eval.closed_loop``, bootstrap settings).
        trace_root: where the episodes' traces go (default: a temp dir, removed).

    Returns:
        An ``OfflineResult`` whose metrics are prefixed ``cl_`` (``verifier/cl_success`` ...).
    """
    from tracebridge.sim.backends import TransformersBackend
    from tracebridge.sim.episode import run_episode
    from tracebridge.sim.model_policies import MODEL_ROLES
    from tracebridge.sim.policies import RoleSet
    from tracebridge.sim.scripted import scripted_roles

    model.eval()
    backend = TransformersBackend(model, tok, name=f"{cfg.model.name}:{cfg.variant}",
                                  max_new_tokens=cfg.eval.closed_loop.max_new_tokens)

    def roles(spec: Any):
        def build(rngs: dict[str, Any]) -> Any:
            rs = scripted_roles(spec.skill, rngs)
            rs[cfg.role] = MODEL_ROLES[cfg.role](backend, rngs[cfg.role])
            return RoleSet(**rs)
        return build

    tmp = tempfile.TemporaryDirectory(prefix="tb-closed-loop-") if trace_root is None else None
    root = Path(tmp.name if tmp else trace_root)
    per, ids = [], []
    try:
        for spec in benchmark_specs(cfg):
            res = run_episode(spec, root, roles(spec))
            calls, ok = _tool_counts(root / res.run_id)
            per.append(episode_item(res, calls, ok))
            ids.append(spec.key)
    finally:
        if tmp:
            tmp.cleanup()
    out = OfflineResult(cfg.role, item_ids=ids)
    out.items = {f"cl_{k}": v for k, v in collect(per).items()}
    out.estimates = {k: bootstrap(n, d, cfg.eval.n_boot, cfg.eval.ci, cfg.seed) for k, (n, d) in out.items.items()}
    out.extra = {"episodes": len(ids), "closed_loop": dataclasses.asdict(cfg.eval.closed_loop)}
    log.info("closed loop %s/%s: %d episodes, success %.3f", cfg.role, cfg.variant, len(ids),
             out.estimates["cl_success"].value if ids else float("nan"))
    return out
