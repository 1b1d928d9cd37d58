"""Scripted role policies with tunable skill.

Each starts from what a perfect policy would do (the reference plan, the intended call, the
ground-truth verdict) and makes the mistakes of its ``SkillConfig`` at the configured rates:
wrong step order (planner); bad arguments and unknown tools, with a chance to recover on retry
(worker); premature stop, missed stop and needless replan (verifier). Each policy draws from its
own seeded ``random.Random``, so an episode is a pure function of its seed.
"""

from __future__ import annotations

import random
from typing import Any

from tracebridge.sim.config import SkillConfig
from tracebridge.sim.families.base import resolve_refs
from tracebridge.sim.policies import (
    PlanDecision,
    PlannerView,
    VerdictDecision,
    VerifierView,
    WorkerDecision,
    WorkerView,
)

DECOY_TOOLS = ("run_shell", "search_web", "read", "query_db", "http_get", "python_exec")
PATHLIKE = ("path", "src", "dst", "name", "table", "pattern", "query")
RETRYABLE = ("timeout", "runtime_error")


class ScriptedPlanner:
    """Writes the reference plan; swaps two adjacent steps with ``wrong_step_order``."""

    prompt_source = "scripted:planner"

    def __init__(self, skill: SkillConfig, rng: random.Random) -> None:
        self.skill, self.rng = skill, rng
        self.name = "scripted-planner"
        self.params = {"wrong_step_order": skill.wrong_step_order}

    def plan(self, view: PlannerView) -> PlanDecision:
        """The open reference steps as the plan (a report step when none is left), two adjacent
        steps swapped with probability ``wrong_step_order``."""
        steps = [dict(s) for s in view.reference_plan]
        fault = None
        if not steps:
            steps = [{"description": "nothing left to do; report the result", "tool": None, "args": None}]
        if len(steps) >= 2 and self.rng.random() < self.skill.wrong_step_order:
            i = self.rng.randrange(len(steps) - 1)
            steps[i], steps[i + 1] = steps[i + 1], steps[i]
            fault = "wrong_step_order"
        for i, s in enumerate(steps):
            s["index"] = i
        tools = [s["tool"] for s in steps if s.get("tool")]
        rationale = f"{len(steps)} step(s): " + " → ".join(tools or ["report"])
        return PlanDecision(steps, rationale, round(self.rng.uniform(0.6, 0.95), 2), fault=fault)


def _corrupt(args: dict[str, Any], schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Break ``args``: drop a required key, give a key the wrong type, garble a path-like
    value, or add an unknown key."""
    out = dict(args)
    required = [k for k in schema.get("required", []) if k in out]
    pathlike = [k for k in out if k in PATHLIKE and isinstance(out[k], str)]
    choice = rng.choice(("drop", "type", "garble")) if required else "extra"
    if choice == "garble" and pathlike:
        k = rng.choice(pathlike)
        out[k] = out[k][:-1] + "x" + out[k][-1] if len(out[k]) > 1 else out[k] + "x"
    elif choice in ("drop", "garble"):
        out.pop(rng.choice(required))
    elif choice == "type":
        k = rng.choice(required)
        out[k] = [out[k]]
    else:
        out["verbose"] = True
    return out


class ScriptedWorker:
    """Calls the plan step's tool with its arguments resolved; see the module docstring."""

    prompt_source = "scripted:worker"

    def __init__(self, skill: SkillConfig, rng: random.Random) -> None:
        self.skill, self.rng = skill, rng
        self.name = "scripted-worker"
        self.params = {k: getattr(skill, k) for k in ("bad_args", "unknown_tool", "recover")}

    def act(self, view: WorkerView) -> WorkerDecision:
        """Call the step's tool with ``$prev`` resolved (no tool: answer with the previous
        output), making the skill's mistakes on the first try; after a failed call, retry at rate
        ``recover`` (own fault or transient error) or give up."""
        step = view.payload["plan_step"]
        tool = step.get("tool")
        if not tool:
            return WorkerDecision("respond", answer=_text(view.prev), reasoning="no tool needed; report the result")
        args = resolve_refs(step.get("args") or {}, view.prev)
        schemas = {t["function"]["name"]: t["function"]["parameters"] for t in view.tools}
        if not view.attempts:
            r = self.rng.random()
            if r < self.skill.unknown_tool:
                return WorkerDecision("tool_call", self.rng.choice(DECOY_TOOLS), args,
                                      reasoning=f"use a tool for: {step['description']}", fault="unknown_tool")
            if r < self.skill.unknown_tool + self.skill.bad_args:
                bad = _corrupt(args, schemas.get(tool, {}), self.rng)
                return WorkerDecision("tool_call", tool, bad, reasoning=f"call {tool}", fault="bad_args")
            return WorkerDecision("tool_call", tool, args, reasoning=f"call {tool} for: {step['description']}")
        last = view.attempts[-1]
        own_fault = last.get("fault") is not None
        retryable = last.get("error_kind") in RETRYABLE and (
            last.get("error_kind") == "timeout" or "transient" in last.get("error_message", ""))
        if (own_fault or retryable) and self.rng.random() < self.skill.recover:
            why = "fix the call" if own_fault else "retry after a transient error"
            return WorkerDecision("tool_call", tool, args, reasoning=f"{why}: {tool}")
        return WorkerDecision("give_up", reasoning=f"{tool} failed with {last.get('error_kind')}; cannot fix it here")


def _text(value: Any) -> str:
    if value is None:
        return "done"
    return value if isinstance(value, str) else str(value)


_FEEDBACK = {
    "continue": "step {current} of {total} done; go on with the next step",
    "replan": "the plan cannot reach the goal as it stands ({why}); make a new plan",
    "end": "{why}",
}


class ScriptedVerifier:
    """Returns the ground-truth verdict, with the skill's mistakes."""

    prompt_source = "scripted:verifier"

    def __init__(self, skill: SkillConfig, rng: random.Random) -> None:
        self.skill, self.rng = skill, rng
        self.name = "scripted-verifier"
        self.params = {k: getattr(skill, k) for k in ("premature_stop", "missed_stop", "needless_replan")}

    def judge(self, view: VerifierView) -> VerdictDecision:
        """The expected verdict, turned into a premature stop, needless replan or missed stop at
        the skill's rates."""
        truth, verdict, fault = view.expected_verdict, view.expected_verdict, None
        r = self.rng.random()
        if truth == "continue" and r < self.skill.premature_stop:
            verdict, fault = "end", "premature_stop"
        elif truth == "continue" and r < self.skill.premature_stop + self.skill.needless_replan:
            verdict, fault = "replan", "needless_replan"
        elif truth == "end" and view.goal_met and r < self.skill.missed_stop:
            verdict, fault = "continue", "missed_stop"
        progress = view.payload.get("plan_progress") or {}
        status = progress.get("status", "done")
        why = ("the goal is met" if view.goal_met and verdict == "end" else
               f"the last step {status}" if status == "failed" else
               "the plan is used up without meeting the goal" if verdict == "replan" else
               "the goal cannot be met with these tools and data" if truth == "end" else "stopping here")
        feedback = _FEEDBACK[verdict].format(current=progress.get("current", 0) + 1, total=progress.get("total", 0),
                                             why=why)
        risks = ["step_failed"] if status == "failed" else []
        conf = round(self.rng.uniform(0.75, 0.98) if fault is None else self.rng.uniform(0.4, 0.7), 2)
        return VerdictDecision(verdict, feedback, risks, conf, fault=fault)


def scripted_roles(skill: SkillConfig, rngs: dict[str, random.Random]) -> dict[str, Any]:
    """The three scripted policies, each on its own rng."""
    return {"planner": ScriptedPlanner(skill, rngs["planner"]), "worker": ScriptedWorker(skill, rngs["worker"]),
            "verifier": ScriptedVerifier(skill, rngs["verifier"])}


__all__ = ["ScriptedPlanner", "ScriptedVerifier", "ScriptedWorker", "scripted_roles"]
