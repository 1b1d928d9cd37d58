"""The orchestrator of one episode: plan → work → verify → continue | replan | end, recorded
event by event through the ``Recorder`` as docs/trace-conventions.md lays a run out.

A cycle (one ``step``) is: [planner_input → planner_output → transition plan→work] when a plan
is needed, then worker_input → (worker_action → worker_tool_call → worker_tool_result
[→ env_observation])… → worker_output, then verifier_input → verifier_output → transition
verify→work|plan|end with the reason. Ground truth rides along in event ``labels``
(``expected_verdict`` on verifier_output, ``expected_tool``/``expected_args`` on worker_action,
``expected_plan`` on planner_output). Unparseable model output becomes an ``episode_error`` of
kind ``invalid_output`` carrying the model call; the episode goes on.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tracebridge.capture.recorder import Recorder
from tracebridge.sim.families.base import Family, Misleading, Task, read_answer
from tracebridge.sim.policies import (
    InvalidOutput,
    ModelCall,
    PlannerView,
    RoleSet,
    VerifierView,
    WorkerView,
)
from tracebridge.sim.tools import Toolbox
from tracebridge.sim.truth import Truth

log = logging.getLogger(__name__)
BRIEF_CHARS = 600
HISTORY = 6


def brief(value: Any) -> Any:
    """``value`` unchanged when its JSON is short, else its JSON cut to ``BRIEF_CHARS``."""
    text = json.dumps(value, sort_keys=True, default=str)
    return value if len(text) <= BRIEF_CHARS else text[:BRIEF_CHARS] + "…"


@dataclass
class Attempt:
    """What one worker attempt left behind."""

    event: str
    stop: bool = False
    done: bool = False
    result: Any = None
    failed_call: str | None = None


class Episode:
    """Runs one episode on an open ``Recorder``; see the module docstring.

    Args:
        rec: the open recorder of the run.
        family, task, toolbox, truth: the environment and its ground truth.
        roles: planner, worker and verifier policies.
        misleading: the false first observation, when this episode has one.
        max_steps: orchestrator cycles.
        max_attempts: worker calls per plan step.
    """

    def __init__(self, rec: Recorder, family: Family, task: Task, toolbox: Toolbox, truth: Truth, roles: RoleSet,
                 misleading: Misleading | None, max_steps: int, max_attempts: int) -> None:
        self.rec, self.family, self.task, self.toolbox, self.truth = rec, family, task, toolbox, truth
        self.roles, self.misleading = roles, misleading
        self.max_steps, self.max_attempts = max_steps, max_attempts
        self.plan: list[dict[str, Any]] = []
        self.idx, self.calls, self.planned = 0, 0, 0
        self.prev: Any = None
        self.history: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.types: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.expected: Counter[str] = Counter()
        self.correct = self.invalid = 0
        self.recovered = False  # a failed call, then a *different* call that succeeded, same plan step
        self.failed_calls: dict[str, tuple[str, Any]] = {}
        self.ended = False
        self.success = False
        self.failure_class: str | None = None
        self.last_event: str | None = None

    # ------------------------------------------------------------------ recording

    def emit(self, event_type: str, role: str, payload: dict[str, Any], parent: str | None,
             call: ModelCall | None = None, labels: dict[str, Any] | None = None) -> str:
        """Record one event (with its model call, if any) and return its id."""
        self.types[event_type] += 1
        llm = None
        if call is not None:
            usage = {k: v for k, v in call.usage.items() if k in ("input_tokens", "output_tokens", "cost_usd", "latency_ms")}
            llm = self.rec.llm_call(call.model, call.prompt, params=call.params, tools=call.tools,
                                    response=call.response, usage=usage)
        self.last_event = self.rec.emit(event_type, role=role, payload=payload, parent=parent, llm=llm,
                                        labels=labels)
        return self.last_event

    def invalid_output(self, role: str, exc: InvalidOutput, parent: str) -> str:
        """Record a reply the role could not parse as a recoverable ``episode_error`` with its
        model call; return the event id."""
        self.invalid += 1
        return self.emit("episode_error", role, {"kind": "invalid_output", "message": str(exc)[:500],
                                                 "recoverable": True}, parent, call=exc.call)

    def transition(self, src: str, dst: str, reason: str, parent: str) -> str:
        """Record an ``orchestrator_transition`` from ``src`` to ``dst``; return the event id."""
        return self.emit("orchestrator_transition", "orchestrator",
                         {"from_state": src, "to_state": dst, "reason": reason}, parent)

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Run cycles until a transition to ``end`` or ``max_steps``."""
        parent: str | None = None
        decision: str | None = None
        for cycle in range(self.max_steps):
            if cycle:
                self.rec.next_step()
            if decision is None:
                po = self.make_plan(parent)
                if po.startswith("!"):
                    last = cycle + 1 >= self.max_steps
                    err = po[1:]
                    parent = self.transition("plan", "end" if last else "plan", "planner output invalid; "
                                             + ("max_steps reached" if last else "asking again"), err)
                    if last:
                        return self.finish("max_steps reached", "max_steps", parent)
                    continue
                decision = po
            status, wo, evidence = self.work(decision)
            verdict, vo, feedback = self.verify(status, wo, evidence)
            dst, reason, fclass = self.route(verdict, status, feedback, cycle)
            tr = self.transition("verify", dst, reason, vo)
            self.history.append({"step": cycle, "plan_step": self.plan[self.idx]["description"],
                                 "status": status, "verdict": verdict})
            self.history = self.history[-HISTORY:]
            if dst == "end":
                return self.finish(reason, fclass, tr)
            if dst == "plan":
                parent, decision = tr, None
            else:
                self.idx += 1
                decision = vo

    def route(self, verdict: str | None, status: str, feedback: str, cycle: int) -> tuple[str, str, str | None]:
        """Next state, the transition's reason and the failure class if the episode ends."""
        left = len(self.plan) - self.idx - 1
        if verdict == "end":
            return "end", f"verifier: end ({feedback})", "premature_stop"
        if cycle + 1 >= self.max_steps:
            return "end", f"max_steps ({self.max_steps}) reached; verifier said {verdict}", "max_steps"
        if verdict == "replan":
            return "plan", f"verifier: replan ({feedback})", None
        if verdict == "continue":
            if left <= 0:
                return "end", "plan exhausted; verifier said continue", "plan_exhausted"
            return "work", f"verifier: continue with step {self.idx + 2} of {len(self.plan)}", None
        if status != "done":  # no usable verdict: the orchestrator's own rule
            return "plan", "verifier output invalid; the step failed, so replan", None
        if left <= 0:
            return "end", "verifier output invalid; plan exhausted", "plan_exhausted"
        return "work", "verifier output invalid; the step is done, so go on", None

    def finish(self, reason: str, fclass: str | None, parent: str) -> None:
        """Emit the closing events: episode_error for an unsatisfiable goal, then episode_end."""
        success = self.truth.goal_met()
        if not success and self.task.unsatisfiable:
            fclass = "unsatisfiable"
            kind = self.task.blocking[0] if self.task.blocking else "runtime_error"
            parent = self.emit("episode_error", "orchestrator", {
                "kind": str(kind), "recoverable": False,
                "message": f"goal cannot be met: {self.truth.witnessed or 'its precondition does not hold'}"}, parent)
        answer = read_answer(self.toolbox.sandbox)
        outcome = reason + (f"; answer {answer!r}" if answer is not None else "")
        self.success, self.failure_class = success, None if success else fclass
        self.emit("episode_end", "orchestrator", {"success": success, "outcome": outcome[:500],
                                                  "failure_class": self.failure_class}, parent)
        self.ended = True

    # ------------------------------------------------------------------ roles

    def make_plan(self, parent: str | None) -> str:
        """Planner turn; returns the planner_output id, or ``"!" + error id`` on invalid output."""
        misled = self.misleading if self.planned == 0 else None
        self.planned += 1
        obs = misled.observation if misled else self.family.observe(self.toolbox.sandbox, self.task)
        payload = {"goal": self.task.goal, "observation": obs, "history": list(self.history),
                   "tool_mask": self.toolbox.names}
        pi = self.emit("planner_input", "planner", payload, parent)
        truth_plan = self.truth.reference_plan()
        shown = [dict(s) for s in truth_plan]
        if misled and misled.step < len(shown):
            shown[misled.step]["args"] = misled.plan_args
        try:
            d = self.roles.planner.plan(PlannerView(payload, self.toolbox.schemas(), shown))
        except InvalidOutput as exc:
            return "!" + self.invalid_output("planner", exc, pi)
        self.plan = [{"index": i, "description": str(s.get("description", "")), "tool": s.get("tool"),
                      "args": s.get("args") if isinstance(s.get("args"), dict) else None} for i, s in enumerate(d.plan)]
        self.idx = 0
        labels: dict[str, Any] = {"expected_plan": truth_plan, "misled": misled is not None}
        if d.fault:
            labels["fault"] = d.fault
        po = self.emit("planner_output", "planner", {"plan": self.plan, "rationale": d.rationale,
                                                     "confidence": d.confidence}, pi, d.call, labels)
        self.transition("plan", "work", f"plan ready: {len(self.plan)} step(s)", po)
        return po

    def work(self, parent: str) -> tuple[str, str, list[dict[str, Any]]]:
        """Worker turn on the current plan step; returns status, worker_output id, evidence."""
        step = self.plan[self.idx]
        payload = {"plan_step": step, "state": {"prev": brief(self.prev), "completed_steps": self.idx},
                   "allowed_tools": self.toolbox.names, "prior_failures": self.failures[-3:]}
        last = self.emit("worker_input", "worker", payload, parent)
        attempts: list[dict[str, Any]] = []
        evidence: list[dict[str, Any]] = []
        retry_of, done, result = None, False, None
        for _ in range(self.max_attempts):
            a = self.attempt(payload, step, attempts, evidence, last, retry_of)
            last, retry_of = a.event, a.failed_call or retry_of
            if a.stop:
                done, result = a.done, a.result
                break
        status = "done" if done else "failed"
        if done:
            self.prev = result
        elif attempts:
            self.failures.append({"step": step["description"], "tool": attempts[-1].get("tool"),
                                  "error": attempts[-1]["error_kind"]})
        wo = self.emit("worker_output", "worker", {"result": brief(result), "status": status}, last)
        if not done:
            kind = attempts[-1]["error_kind"] if attempts else "runtime_error"
            self.emit("episode_error", "worker", {"kind": kind, "recoverable": True, "message":
                      f"plan step {self.idx + 1} failed after {len(attempts)} failed attempt(s)"}, wo)
        evidence.append({"worker_status": status, "result": brief(result)})
        return status, wo, evidence

    def attempt(self, payload: dict[str, Any], step: dict[str, Any], attempts: list[dict[str, Any]],
                evidence: list[dict[str, Any]], parent: str, retry_of: str | None) -> Attempt:
        """One worker decision and, for a tool call, the call and its result."""
        try:
            d = self.roles.worker.act(WorkerView(payload, self.toolbox.schemas(), self.prev, attempts))
        except InvalidOutput as exc:
            attempts.append({"error_kind": "invalid_output", "error_message": str(exc)[:200], "fault": None})
            return Attempt(self.invalid_output("worker", exc, parent))
        labels = dict(self.truth.expected_call(step.get("tool")) or {})
        if d.fault:
            labels["fault"] = d.fault
        act = self.emit("worker_action", "worker", {"action": d.action, "reasoning_summary": d.reasoning,
                                                     "tool": d.tool, "args": d.args}, parent, d.call, labels)
        if d.action != "tool_call" or not d.tool:
            return Attempt(act, stop=True, done=d.action == "respond", result=d.answer)
        call_id = f"s{self.rec.step}-c{self.calls}"
        self.calls += 1
        args = d.args if isinstance(d.args, dict) else {}
        tc = self.emit("worker_tool_call", "worker", {"call_id": call_id, "tool": d.tool, "args": args}, act)
        out = self.toolbox.call(d.tool, args)
        self.truth.record(d.tool, args, out)
        res = {"call_id": call_id, "ok": out.ok, "output": out.output, "retry_of": retry_of,
               "latency_ms": out.latency_ms, "error": out.error.model_dump(mode="json") if out.error else None}
        tr = self.emit("worker_tool_result", "worker", res, tc, labels={"injected": out.injected} if out.injected else None)
        evidence.append({"tool": d.tool, "args": args, "ok": out.ok,
                         **({"output": brief(out.output)} if out.ok else {"error": res["error"]})})
        spec = self.toolbox.by_name.get(d.tool)
        if not out.ok or (spec is not None and spec.mutates):
            self.emit("env_observation", "env", {"observation": self.family.observe(self.toolbox.sandbox, self.task),
                                                 "source": "sandbox"}, tr)
        if out.ok:
            self.recovered = self.recovered or (retry_of is not None and self.failed_calls[retry_of] != (d.tool, args))
            return Attempt(tr, stop=True, done=True, result=out.output)
        self.failed_calls[call_id] = (d.tool, args)
        attempts.append({"tool": d.tool, "args": args, "call_id": call_id, "fault": d.fault,
                         "error_kind": str(out.error.kind), "error_message": out.error.message})
        return Attempt(tr, failed_call=call_id)

    def verify(self, status: str, parent: str, evidence: list[dict[str, Any]]) -> tuple[str | None, str, str]:
        """Verifier turn; returns the verdict (None if invalid), the event id and the feedback."""
        left = len(self.plan) - self.idx - 1
        progress = {"completed": self.idx + (status == "done"), "total": len(self.plan), "current": self.idx,
                    "status": status}
        payload = {"plan_progress": progress, "evidence": evidence}
        vi = self.emit("verifier_input", "verifier", payload, parent)
        met = self.truth.goal_met()
        expected = self.truth.expected_verdict(status, left)
        self.expected[expected] += 1
        try:
            d = self.roles.verifier.judge(VerifierView(payload, expected, met))
        except InvalidOutput as exc:
            return None, self.invalid_output("verifier", exc, vi), ""
        labels: dict[str, Any] = {"expected_verdict": expected, "goal_met": met}
        if d.fault:
            labels["fault"] = d.fault
        vo = self.emit("verifier_output", "verifier", {"verdict": d.verdict, "feedback": d.feedback,
                                                       "risk_flags": d.risk_flags, "confidence": d.confidence},
                       vi, d.call, labels)
        self.verdicts[d.verdict] += 1
        self.correct += d.verdict == expected
        return d.verdict, vo, d.feedback
