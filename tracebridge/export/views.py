"""The training views of DESIGN.md (its five, plus planner pairs), as pure functions of one run's events.

Every row is rendered through ``tracebridge.schema.roles`` (the same contract the simulator's
model-backed roles and evaluation use) in TRL's conversational formats, with no chat template
applied:

* ``planner_sft`` — ``{"messages": [system, user, assistant=plan JSON], "meta"}``;
* ``planner_pref_pairs`` — ``{"prompt", "chosen", "rejected", "meta"}`` for the planner scenarios
  where the better plan is known (seed 004: "preference data for Verifier and selected Planner
  scenarios"; "favor plans with high completion rate and low replan loops"): the run's reference
  plan (label ``expected_plan``) chosen over the plan made, when the two differ in tools, arguments
  or order and the plan made was bad by evidence: a planner fault label, a cycle the verifier
  closed with ``replan``, or a failed run. Plans made from a misleading observation (``misled``)
  give no pair: from that prompt the reference plan could not be read. Both sides are written with
  the plan made's confidence and no rationale (it may describe the plan made's steps), so they
  differ in the steps only (``views.planner_pairs``);
* ``worker_sft`` — ``{"messages": [system, user, assistant with tool_calls | answer], "tools", "meta"}``,
  one row per worker decision (see ``tracebridge.export.views_worker``); for conversational sources
  (``views.conversational_sources``, OpenClaw) one row per span of plain assistant turns in a user
  turn, the conversation so far as context and every turn from ``labels.context_messages`` on a
  target (``tracebridge.export.views_conversation``; ``target_turns`` lists them); for sources that
  record each model call's prompt (``views.llm_call_sources``, Agent Lightning) one row per call, the
  prompt as recorded and the reply (``tracebridge.export.views_llm``);
* ``verifier_sft`` — ``{"messages": [system, user, assistant=verdict + feedback], "meta"}``;
* ``verifier_pref_pairs`` — ``{"prompt", "chosen", "rejected", "meta"}``: chosen agrees with the
  ex-post verdict, rejected does not (the observed wrong verdict, else the tempting wrong one);
  both the bare ``verdict: X`` line (``views.verifier_pair_text=verdict``, what evaluation ranks)
  or both with a canonical feedback line (``canonical``), so they differ in the verdict only;
* ``worker_recovery_cases`` — failure → recovery decisions as SFT rows (``worker_recovery_cases/sft``)
  and as pairs, recovering call chosen over repeating the failed one (``worker_recovery_cases/pairs``).

``meta`` = run_id, event_ids, goal_family, split, source, labels (``tracebridge.export.labels``).
Thinking text (``<think>`` blocks, the worker's ``reasoning_summary``) stays out of assistant
targets unless ``views.include_reasoning``. The ex-post verdict is the event label
``expected_verdict`` when recorded, else ``end`` for the last verdict of a successful run, else
unknown (no pair).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracebridge.export.config import ViewsConfig
from tracebridge.export.labels import RunFeedback, merge_feedback, safe_labels
from tracebridge.export.reward import RewardConfig, reward
from tracebridge.schema import roles

# view key (file folder under views/) -> row kind
VIEW_KINDS: dict[str, str] = {
    "planner_sft": "sft", "planner_pref_pairs": "pref", "worker_sft": "sft", "verifier_sft": "sft",
    "verifier_pref_pairs": "pref", "worker_recovery_cases/sft": "sft", "worker_recovery_cases/pairs": "pref",
}
VIEWS = ("planner_sft", "planner_pref_pairs", "worker_sft", "verifier_sft", "verifier_pref_pairs",
         "worker_recovery_cases")
TRIPLETS = "agentlightning/triplets"
AL_PREFIX = "agentlightning/"  # Agent Lightning formats: bundle files <key>/<split>.jsonl, not under views/
# stats of rows written trimmed to a budget (views.context_max_chars, views.tool_output_max_chars), not of
# events that gave no row: the report keeps them apart (views.rows_trimmed)
TRIMMED = ("context_max_chars", "context_over_budget", "tool_output_max_chars")
# stats of the tool results cut to views.tool_output_max_chars, each counted once however many rows carry it,
# and the characters those cuts removed (report.json views.tool_outputs)
TOOL_OUTPUTS = ("tool_outputs_cut", "tool_output_chars_cut")
ALT_VERDICT = {"end": "continue", "continue": "end", "replan": "continue"}  # the tempting wrong answer
CANONICAL_FEEDBACK = {"continue": "the plan is progressing; go on with the next step",
                      "replan": "the current plan cannot reach the goal; make a new plan",
                      "end": "the goal is reached; stop"}
_SIDE = {"planner_input": "planner", "planner_output": "planner", "verifier_input": "verifier",
         "verifier_output": "verifier", "worker_input": "worker", "worker_action": "worker",
         "worker_tool_call": "worker", "worker_tool_result": "worker", "worker_output": "worker",
         "episode_error": "worker"}
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)\s*", re.DOTALL | re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """``text`` without ``<think>``/``<thinking>``/``<reasoning>`` blocks."""
    return _THINK.sub("", text).strip() if "<" in text else text


@dataclass
class RunContext:
    """What every row of a run shares."""

    run_id: str
    family: str
    split: str
    source: str
    success: bool | None
    failure_class: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_source: str = "inferred"
    feedback: RunFeedback | None = None
    branched: bool = False  # session.json runtime_config.extra.branches: the file holds abandoned paths
    leaf: str | None = None  # runtime_config.extra.leaf_entry_id of a branched session: where its path ends
    events_dropped: int = 0  # session.json capture.events_dropped, a run let through by quality.allow: rows say so

    def meta(self, event_ids: list[str], labels: dict[str, Any]) -> dict[str, Any]:
        """The row's lineage and labels (typed for Arrow, feedback merged)."""
        base = {**labels, "run_success": self.success, "failure_class": self.failure_class,
                "events_dropped": self.events_dropped or None}  # None: left out, the rows of a whole run unchanged
        return {"run_id": self.run_id, "event_ids": event_ids, "goal_family": self.family, "split": self.split,
                "source": self.source, "labels": safe_labels(merge_feedback(base, self.feedback, event_ids))}


def payload(ev: dict[str, Any] | None) -> dict[str, Any]:
    """The event's ``payload`` when it is a dict, else ``{}`` (also for no event)."""
    p = (ev or {}).get("payload")
    return p if isinstance(p, dict) else {}


def event_labels(ev: dict[str, Any]) -> dict[str, Any]:
    """A copy of the event's ``labels`` when it is a dict, else ``{}``."""
    lab = ev.get("labels")
    return dict(lab) if isinstance(lab, dict) else {}


def _parent_of(ev: dict[str, Any], by_id: dict[str, dict[str, Any]], etype: str,
               fallback: dict[str, Any] | None) -> dict[str, Any] | None:
    parent = by_id.get(str(ev.get("parent_event_id")))
    return parent if parent is not None and parent.get("event_type") == etype else fallback


def _steps(plan: Any) -> list[tuple[Any, str]]:
    """What a plan does, for comparing plans: each step's tool and arguments, in order."""
    return [(st.get("tool"), orjson.dumps(st.get("args"), option=orjson.OPT_SORT_KEYS).decode())
            for st in plan if isinstance(st, dict)] if isinstance(plan, list) else []


def _bad_plan(labels: dict[str, Any], verdicts: list[str], success: bool | None) -> str | None:
    """Why a plan made is known to be worse than the reference plan (None: it is not)."""
    if labels.get("misled"):
        return None
    if labels.get("fault"):
        return "fault"
    return "replan" if verdicts and verdicts[-1] == "replan" else ("run_failed" if success is False else None)


def planner_rows(events: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], ctx: RunContext,
                 cfg: ViewsConfig, stats: Counter[str], cycles: dict[str, list[str]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``planner_sft`` rows (one per planner_output with its planner_input) and
    ``planner_pref_pairs``. Labels: the verifier's verdicts of the plan's cycle (``cycle_verdicts``,
    in order, up to the next plan; ``cycle_verdict`` = the last, the one that closed the cycle:
    ``replan``, ``end``, or ``continue`` when the run stopped first; absent when no verdict
    followed; ``cycles``: planner_output id → verdicts, from ``build_views``) and, in ``meta``,
    the run's final success."""
    rows, pairs, last_in = [], [], None
    system = cfg.system_prompts.get("planner")
    for ev in events:
        et = ev.get("event_type")
        if et == "planner_input":
            last_in = ev
        elif et == "planner_output":
            inp = _parent_of(ev, by_id, "planner_input", last_in)
            if inp is None:
                stats["planner_output_without_input"] += 1
                continue
            out = dict(payload(ev))
            if not cfg.include_reasoning and isinstance(out.get("rationale"), str):
                out["rationale"] = strip_reasoning(out["rationale"])
            user, reply = roles.planner_user_text(payload(inp)), roles.planner_reply_text(out)
            ids = [inp["event_id"], ev["event_id"]]
            verdicts = cycles.get(str(ev["event_id"]), [])
            labels = {**event_labels(ev), "tool_mask": list(payload(inp).get("tool_mask") or []),
                      "cycle_verdicts": verdicts, **({"cycle_verdict": verdicts[-1]} if verdicts else {})}
            reference = labels.get("expected_plan")
            matches = _steps(reference) == _steps(out.get("plan")) if reference else None
            if matches is not None:
                labels["plan_matches_reference"] = matches
            rows.append({"messages": roles.messages("planner", user, reply, system_prompt=system),
                         "meta": ctx.meta(ids, labels)})
            why = _bad_plan(labels, verdicts, ctx.success) if cfg.planner_pairs and reference else None
            if why and not matches:
                chosen, rejected = (roles.planner_reply_text({**out, "plan": plan, "rationale": ""})
                                    for plan in (reference, out.get("plan")))
                pairs.append({"prompt": roles.messages("planner", user, system_prompt=system),
                              "chosen": [{"role": "assistant", "content": chosen}],
                              "rejected": [{"role": "assistant", "content": rejected}],
                              "meta": ctx.meta(ids, {**labels, "pair_source": "expected_plan", "pair_reason": why})})
    return rows, pairs


def _verdict_text(verdict: str, fb: dict[str, Any], cfg: ViewsConfig) -> str:
    out = {"verdict": verdict, "feedback": fb.get("feedback") or "", "risk_flags": fb.get("risk_flags") or []}
    if not cfg.include_reasoning:
        out["feedback"] = strip_reasoning(str(out["feedback"]))
    return roles.verifier_reply_text(out)


def _pair_text(verdict: str, cfg: ViewsConfig) -> str:
    if cfg.verifier_pair_text == "verdict":
        return roles.verifier_reply_text({"verdict": verdict})
    return _verdict_text(verdict, {"feedback": CANONICAL_FEEDBACK[verdict]}, cfg)


def ex_post_verdict(ev: dict[str, Any], is_last: bool, success: bool | None) -> str | None:
    """The verdict that was right in hindsight, if it can be known."""
    exp = event_labels(ev).get("expected_verdict")
    if exp in roles.VERDICTS:
        return str(exp)
    return "end" if is_last and success else None


def verifier_rows(events: list[tuple[int, dict[str, Any]]], by_id: dict[str, dict[str, Any]], ctx: RunContext,
                  cfg: ViewsConfig, stats: Counter[str], last_work: int = -1
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``verifier_sft`` rows and ``verifier_pref_pairs`` of a run.

    Args:
        events: ``(position in the run, event)`` of its verifier events.
        last_work: position of the run's last worker_input (a verdict after it is the final one).
    """
    sft, pairs, last_in = [], [], None
    system = cfg.system_prompts.get("verifier")
    outputs = [i for i, e in events if e.get("event_type") == "verifier_output"]
    for i, ev in events:
        et = ev.get("event_type")
        if et == "verifier_input":
            last_in = ev
        if et != "verifier_output":
            continue
        inp = _parent_of(ev, by_id, "verifier_input", last_in)
        out = payload(ev)
        if inp is None or out.get("verdict") not in roles.VERDICTS:
            stats["verifier_output_without_input"] += 1
            continue
        user = roles.verifier_user_text(payload(inp))
        ids = [inp["event_id"], ev["event_id"]]
        observed = str(out["verdict"])
        expected = ex_post_verdict(ev, i == outputs[-1] and i > last_work, ctx.success)
        observed_text = _verdict_text(observed, out, cfg)
        target = observed_text
        if cfg.verifier_sft_target == "ex_post" and expected and expected != observed:
            target = _verdict_text(expected, {"feedback": CANONICAL_FEEDBACK[expected]}, cfg)
        labels = {**event_labels(ev), "verdict": observed, "expected_verdict": expected}
        sft.append({"messages": roles.messages("verifier", user, target, system_prompt=system),
                    "meta": ctx.meta(ids, labels)})
        if expected is None:
            stats["verdicts_without_ex_post"] += 1
            continue
        # both sides in the same wording, so the pair differs in the verdict only and no style
        # (observed vs written feedback) can stand in for being right
        wrong, source = (ALT_VERDICT[expected], "observed_correct") if observed == expected else \
            (observed, "observed_wrong")
        chosen, rejected = (_pair_text(v, cfg) for v in (expected, wrong))
        pair_labels = {**labels, "chosen_verdict": expected, "rejected_verdict": wrong, "pair_source": source}
        pairs.append({"prompt": roles.messages("verifier", user, system_prompt=system),
                      "chosen": [{"role": "assistant", "content": chosen}],
                      "rejected": [{"role": "assistant", "content": rejected}],
                      "meta": ctx.meta(ids, pair_labels)})
    return sft, pairs


def build_views(events: list[dict[str, Any]], ctx: RunContext, cfg: ViewsConfig
                ) -> tuple[dict[str, list[dict[str, Any]]], Counter[str]]:
    """Every view row of one run (pure).

    Returns:
        Rows per view key (``VIEW_KINDS``, plus ``TRIPLETS`` and Agent Lightning messages when
        enabled) and counts of events that gave no row, by reason (and of rows trimmed, ``TRIMMED``).
    """
    from tracebridge.export.views_conversation import conversation_rows
    from tracebridge.export.views_llm import llm_call_rows
    from tracebridge.export.views_worker import worker_rows

    stats: Counter[str] = Counter()
    by_id: dict[str, dict[str, Any]] = {}
    planner: list[dict[str, Any]] = []
    worker: list[dict[str, Any]] = []
    verifier: list[tuple[int, dict[str, Any]]] = []
    cycles: dict[str, list[str]] = {}  # planner_output id → the verifier's verdicts up to the next plan
    cycle: list[str] | None = None
    last_work = -1
    for i, ev in enumerate(events):  # one pass: each role's builder sees only its events
        eid, et = ev.get("event_id"), ev.get("event_type")
        if isinstance(eid, str):
            by_id[eid] = ev
        side = _SIDE.get(et)  # type: ignore[arg-type]
        if side == "planner":
            planner.append(ev)
            if et == "planner_output":
                cycle = cycles.setdefault(str(eid), [])
        elif side == "worker":
            worker.append(ev)
            last_work = i if et == "worker_input" else last_work
        elif side == "verifier":
            verifier.append((i, ev))
            if et == "verifier_output" and cycle is not None and isinstance(payload(ev).get("verdict"), str):
                cycle.append(payload(ev)["verdict"])
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in VIEW_KINDS}
    out["planner_sft"], out["planner_pref_pairs"] = planner_rows(planner, by_id, ctx, cfg, stats, cycles)
    out["verifier_sft"], out["verifier_pref_pairs"] = verifier_rows(verifier, by_id, ctx, cfg, stats, last_work)
    if ctx.source in cfg.conversational_sources:  # a chat agent: no worker_input, the conversation is the prompt
        out["worker_sft"], out["worker_recovery_cases/sft"], out["worker_recovery_cases/pairs"] = \
            conversation_rows(events, by_id, ctx, cfg, stats)
    elif ctx.source in cfg.llm_call_sources:  # an agent that builds its prompts: the recorded calls are the rows
        out["worker_sft"], out["worker_recovery_cases/sft"], out["worker_recovery_cases/pairs"] = \
            llm_call_rows(events, ctx, cfg, stats)
    else:
        out["worker_sft"], out["worker_recovery_cases/sft"], out["worker_recovery_cases/pairs"] = \
            worker_rows(worker, by_id, ctx, cfg, stats)
    if cfg.agentlightning:
        out[TRIPLETS] = triplets(out, ctx, cfg.reward)
        if cfg.agentlightning_messages:
            from tracebridge.export.views_agentlightning import MESSAGES, al_messages

            out[MESSAGES] = al_messages(out, ctx)
    return out, stats


def triplets(views: dict[str, list[dict[str, Any]]], ctx: RunContext,
             reward_cfg: RewardConfig | None = None) -> list[dict[str, Any]]:
    """Agent Lightning ``Triplet(prompt, response, reward, metadata)`` rows of the role SFT rows.

    The reward is task-grounded (``tracebridge.export.reward``): the weighted mean of the run's
    outcome, the turn's own result and its reactions, None when none is known; metadata keeps
    the lineage and ``reward_components`` (labels and tool schemas stay in the views, to keep the
    triplets small).
    """
    cfg = reward_cfg or RewardConfig()
    out = []
    for view in ("planner_sft", "worker_sft", "verifier_sft"):
        role = view.split("_")[0]
        for r in views[view]:
            m, msgs = r["meta"], r["messages"]
            value, parts = reward(role, m.get("labels") or {}, ctx.success, cfg)
            meta = {"run_id": m["run_id"], "event_ids": m["event_ids"], "role": role,
                    "split": m["split"], "goal_family": m["goal_family"], "source": m["source"],
                    "reward_components": parts}
            out += [{"prompt": msgs[:i], "response": msgs[i], "reward": value, "metadata": meta}
                    for i in target_turns(r)]
    return out


def target_turns(row: dict[str, Any]) -> list[int]:
    """Indices of the row's target messages: its last one, or for a conversation span
    (``labels.target_turns``) every assistant message from ``labels.context_messages`` on."""
    msgs, labels = row["messages"], row["meta"].get("labels") or {}
    if not labels.get("target_turns"):
        return [len(msgs) - 1]
    return [i for i in range(labels["context_messages"], len(msgs)) if msgs[i]["role"] == "assistant"]
