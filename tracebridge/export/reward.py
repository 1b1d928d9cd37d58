"""Task-grounded rewards of the Agent Lightning triplets (seed 000, phase 2: "richer task-grounded
reward signals").

A triplet's reward is the weighted mean of the signals known for its turn, each in [0, 1]:

* ``outcome`` — the run's success (1 or 0), from the task's own checker (the simulator's
  ground truth) or the run's summary;
* ``step`` — what the turn itself achieved, by role. Planner: its plan matches the run's
  reference plan (label ``plan_matches_reference``) or, without one, the verifier closed the plan's
  cycle with ``end`` (1) or ``replan`` (0). Worker: its tool call succeeded (``tool_ok``), or its
  answer met the goal (``goal_met``). Verifier: its verdict is the ex-post one (``expected_verdict``);
* ``feedback`` — the reaction score joined to the row (``feedback_score``; the mapping's
  ``-feedback_scale..+feedback_scale`` mapped onto 0..1).

Unknown signals are left out and the weights of the known ones renormalised; with none known the
reward is None (an unrewarded transition, as in Agent Lightning). ``views.reward.step=0
views.reward.feedback=0`` gives back the binary outcome reward. Each triplet's
``metadata.reward_components`` lists the signals it used, so a trainer can recombine them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SIGNALS = ("outcome", "step", "feedback")


@dataclass
class RewardConfig:
    """Weights of the reward signals of ``agentlightning/triplets`` rows."""

    outcome: float = field(default=0.5, metadata={"help": "Weight of the run's success (1/0)."})
    step: float = field(default=0.3, metadata={
        "help": "Weight of the turn's own result: plan matches the reference (or cycle closed by end), tool "
                "call succeeded or answer met the goal, verdict agrees with the ex-post one."})
    feedback: float = field(default=0.2, metadata={"help": "Weight of the joined reaction score."})
    feedback_scale: float = field(default=2.0, metadata={
        "help": "Largest reaction score of the mapping (default mapping: -2..+2); scores are clipped to it."})

    def validate(self, prefix: str = "views.reward") -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        out = [f"{prefix}.{k}={getattr(self, k)}: must be >= 0" for k in SIGNALS if getattr(self, k) < 0]
        if not out and sum(getattr(self, k) for k in SIGNALS) <= 0:
            out.append(f"{prefix}: at least one of {', '.join(SIGNALS)} must be > 0")
        if self.feedback_scale <= 0:
            out.append(f"{prefix}.feedback_scale={self.feedback_scale}: must be > 0")
        return out


def _flag(v: Any) -> float | None:
    return float(v) if isinstance(v, bool) else None


def step_signal(role: str, labels: dict[str, Any]) -> float | None:
    """The turn's own result in [0, 1], by role (None: unknown)."""
    if role == "planner":
        match = _flag(labels.get("plan_matches_reference"))
        if match is not None:
            return match
        return {"end": 1.0, "replan": 0.0}.get(str(labels.get("cycle_verdict")))
    if role == "worker":
        ok = _flag(labels.get("tool_ok"))
        return ok if ok is not None else _flag(labels.get("goal_met"))
    expected, verdict = labels.get("expected_verdict"), labels.get("verdict")
    return float(verdict == expected) if isinstance(expected, str) and isinstance(verdict, str) else None


def reward(role: str, labels: dict[str, Any], success: bool | None, cfg: RewardConfig
           ) -> tuple[float | None, dict[str, float]]:
    """``(reward, components)`` of one turn: the weighted mean of its known signals."""
    fb = labels.get("feedback_score")
    parts: dict[str, float | None] = {
        "outcome": None if success is None else float(success),
        "step": step_signal(role, labels),
        "feedback": None if not isinstance(fb, (int, float)) or isinstance(fb, bool) else
        (max(-cfg.feedback_scale, min(cfg.feedback_scale, float(fb))) + cfg.feedback_scale) / (2 * cfg.feedback_scale),
    }
    known = {k: v for k, v in parts.items() if v is not None and getattr(cfg, k) > 0}
    weight = sum(getattr(cfg, k) for k in known)
    if not weight:
        return None, known
    return round(sum(getattr(cfg, k) * v for k, v in known.items()) / weight, 6), known
