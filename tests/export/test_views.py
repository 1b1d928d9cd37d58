"""The five views from one run: role contract, TRL formats, recovery cases, pairs, meta and labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import record_sample_run
from tracebridge.eval.metrics import failed_calls, message_call
from tracebridge.export.config import ViewsConfig
from tracebridge.export.labels import merge_feedback, safe_labels
from tracebridge.export.views import RunContext, build_views, strip_reasoning
from tracebridge.schema import roles


@pytest.fixture
def events(tmp_path: Path) -> list[dict]:
    rid = record_sample_run(tmp_path)
    return [json.loads(x) for x in (tmp_path / rid / "events.jsonl").read_text().splitlines()]


def ctx(**kw: object) -> RunContext:
    base = {"run_id": "r1", "family": "files", "split": "train", "source": "sim", "success": True,
            "tools": [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]}
    return RunContext(**{**base, **kw})  # type: ignore[arg-type]


def test_planner_and_verifier_rows_follow_the_role_contract(events: list[dict]) -> None:
    views, _ = build_views(events, ctx(), ViewsConfig())
    (p,) = views["planner_sft"]
    assert [m["role"] for m in p["messages"]] == ["system", "user", "assistant"]
    assert p["messages"][0]["content"] == roles.DEFAULT_SYSTEM_PROMPTS["planner"]
    assert p["messages"][1]["content"] == roles.planner_user_text(events[0]["payload"])
    plan = roles.parse_planner_reply(p["messages"][2]["content"])
    assert plan.plan[0].tool == "read_file" and plan.rationale == "one step"
    assert p["meta"] == {"run_id": "r1", "event_ids": [events[0]["event_id"], events[1]["event_id"]],
                         "goal_family": "files", "split": "train", "source": "sim",
                         "labels": {"run_success": True, "tool_mask": ["read_file", "count"],
                                    "cycle_verdicts": ["end"], "cycle_verdict": "end"}}
    (v,) = views["verifier_sft"]
    assert roles.parse_verifier_reply(v["messages"][-1]["content"]).verdict == "end"
    (pair,) = views["verifier_pref_pairs"]  # last verdict of a successful run: ex-post "end"
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
    assert roles.parse_verifier_reply(pair["chosen"][0]["content"]).verdict == "end"
    assert roles.parse_verifier_reply(pair["rejected"][0]["content"]).verdict == "continue"
    assert pair["meta"]["labels"]["pair_source"] == "observed_correct"


def test_worker_rows_and_recovery_case(events: list[dict]) -> None:
    views, _ = build_views(events, ctx(), ViewsConfig())
    first, second = views["worker_sft"]
    assert "Prior failure" not in first["messages"][1]["content"]
    assert "not_found" in second["messages"][1]["content"]  # the failed attempt is in the prompt
    call = second["messages"][-1]["tool_calls"][0]
    assert call["id"] == "c2" and isinstance(call["function"]["arguments"], str)  # Arrow-safe JSON string
    assert message_call(second["messages"][-1]).args == {"path": "./notes.txt"}
    assert json.loads(second["tools"])[0]["function"]["name"] == "read_file"
    (rec,) = views["worker_recovery_cases/sft"]
    assert rec is second and rec["meta"]["labels"]["recovery"] is True
    (pair,) = views["worker_recovery_cases/pairs"]
    assert message_call(pair["chosen"][0]).args == {"path": "./notes.txt"}
    assert message_call(pair["rejected"][0]).args == {"path": "notes.txt"}  # repeating the failure
    assert pair["prompt"] == second["messages"][:-1]
    assert "labels" in pair["meta"] and "recovery" not in first["meta"]["labels"]


def test_recovery_rows_name_the_failed_call_events(events: list[dict]) -> None:
    """The recovery row's event_ids are the recovering call's; the failed call it recovers from (shown in its
    prompt, repeated by the pair's rejected turn) was named nowhere in the row."""
    views, _ = build_views(events, ctx(), ViewsConfig())
    by_id = {e["event_id"]: e for e in events}
    first, second = views["worker_sft"]
    (pair,) = views["worker_recovery_cases/pairs"]
    failed = pair["meta"]["labels"]["failed_event_ids"]
    assert failed == second["meta"]["labels"]["failed_event_ids"]
    assert [by_id[i]["event_type"] for i in failed] == ["worker_action", "worker_tool_call", "worker_tool_result"]
    assert by_id[failed[1]]["payload"]["call_id"] == "c1" and by_id[failed[2]]["payload"]["ok"] is False
    assert not set(failed) & set(pair["meta"]["event_ids"])  # a label: feedback on the failure stays off it
    assert "failed_event_ids" not in first["meta"]["labels"]


def test_worker_rows_render_the_tool_block_the_worker_is_prompted_with(events: list[dict]) -> None:
    """A chat template renders ``tools`` as given (``tojson``); rows held them with sorted keys
    (``{"function": {"description", "name", ...}, "type"}``), so the tool block trained on was not the one the
    sim's model worker (``sim.backends``: the family's schemas as they are) is prompted with."""
    from tracebridge.sim.families import get_family
    from tracebridge.train.models import tiny_model_and_tokenizer

    served = [t.schema() for t in get_family("files").tools()]
    views, _ = build_views(events, ctx(tools=served), ViewsConfig())
    row = views["worker_sft"][0]
    assert json.loads(row["tools"]) == served
    _, tok = tiny_model_and_tokenizer()
    trained, prompted = (tok.apply_chat_template(row["messages"][:-1], tools=t, tokenize=False,
                                                 add_generation_prompt=True)
                         for t in (json.loads(row["tools"]), served))
    assert '"type": "function", "function": {"name": "list_dir"' in prompted and trained == prompted


def test_no_recovery_without_failure(tmp_path: Path) -> None:
    rid = record_sample_run(tmp_path, fail_tool=False)
    evs = [json.loads(x) for x in (tmp_path / rid / "events.jsonl").read_text().splitlines()]
    views, _ = build_views(evs, ctx(), ViewsConfig())
    assert len(views["worker_sft"]) == 1 and not views["worker_recovery_cases/pairs"]


def test_reasoning_is_left_out_unless_asked(events: list[dict]) -> None:
    evs = [dict(e) for e in events]
    for e in evs:
        if e["event_type"] == "worker_action":
            e["payload"] = {**e["payload"], "reasoning_summary": "I think the file is there"}
        if e["event_type"] == "verifier_output":
            e["payload"] = {**e["payload"], "feedback": "<think>hidden chain</think>done"}
    views, _ = build_views(evs, ctx(), ViewsConfig())
    targets = json.dumps([r["messages"][-1] for k in ("worker_sft", "verifier_sft") for r in views[k]])
    assert "I think" not in targets and "hidden chain" not in targets and "feedback: done" in targets
    views, _ = build_views(evs, ctx(), ViewsConfig(include_reasoning=True))
    assert views["worker_sft"][0]["messages"][-1]["content"] == "I think the file is there"
    assert "hidden chain" in views["verifier_sft"][0]["messages"][-1]["content"]
    assert strip_reasoning("<thinking>a\nb</thinking> answer") == "answer"


def test_system_prompts_and_object_arguments_are_configurable(events: list[dict]) -> None:
    cfg = ViewsConfig(system_prompts={"worker": "W!", "verifier": "V!"}, json_strings=False)
    views, _ = build_views(events, ctx(), cfg)
    assert views["worker_sft"][0]["messages"][0]["content"] == "W!"
    assert views["verifier_pref_pairs"][0]["prompt"][0]["content"] == "V!"
    assert views["worker_sft"][0]["messages"][-1]["tool_calls"][0]["function"]["arguments"] == {"path": "notes.txt"}
    assert isinstance(views["worker_sft"][0]["tools"], list)


def test_wrong_verdict_pair_and_ex_post_target(events: list[dict]) -> None:
    evs = [dict(e) for e in events]
    vo = next(e for e in evs if e["event_type"] == "verifier_output")
    vo["labels"] = {"expected_verdict": "replan"}
    views, _ = build_views(evs, ctx(), ViewsConfig())
    (pair,) = views["verifier_pref_pairs"]
    assert roles.parse_verifier_reply(pair["chosen"][0]["content"]).verdict == "replan"
    assert roles.parse_verifier_reply(pair["rejected"][0]["content"]).verdict == "end"  # what was said
    assert pair["meta"]["labels"]["pair_source"] == "observed_wrong"
    assert pair["chosen"][0]["content"] == "verdict: replan"  # bare verdict lines: differ in the verdict only
    views, _ = build_views(evs, ctx(), ViewsConfig(verifier_pair_text="canonical"))
    assert views["verifier_pref_pairs"][0]["chosen"][0]["content"].startswith("verdict: replan\nfeedback: ")
    views, _ = build_views(evs, ctx(), ViewsConfig(verifier_sft_target="ex_post"))
    assert roles.parse_verifier_reply(views["verifier_sft"][0]["messages"][-1]["content"]).verdict == "replan"


def test_unknown_ex_post_gives_sft_but_no_pair(events: list[dict]) -> None:
    views, stats = build_views(events, ctx(success=None), ViewsConfig())
    assert len(views["verifier_sft"]) == 1 and not views["verifier_pref_pairs"]
    assert stats["verdicts_without_ex_post"] == 1


def test_labels_are_arrow_stable_and_feedback_merges() -> None:
    lab = safe_labels({"expected_verdict": "end", "tool_mask": ["a"], "expected_plan": [{"tool": "x"}],
                       "expected_answer": 42, "recovery": "yes", "feedback_score": 1, "none": None})
    assert lab == {"expected_verdict": "end", "tool_mask": ["a"], "expected_plan": '[{"tool":"x"}]',
                   "expected_answer": "42", "recovery_json": '"yes"', "feedback_score": 1.0}
    fb = {"run": {"feedback_score": -1.0}, "events": {"e2": {"feedback_label": "thumbs_up"}}}
    assert merge_feedback({"a": 1}, fb, ["e1", "e2"]) == {"a": 1, "feedback_score": -1.0,
                                                          "feedback_label": "thumbs_up"}
    views, _ = build_views([], ctx(feedback=fb), ViewsConfig())
    assert all(not v for v in views.values())


def test_feedback_reaches_row_meta(events: list[dict]) -> None:
    ev_id = events[1]["event_id"]  # the planner_output
    fb = {"run": {"feedback_score": 0.5}, "events": {ev_id: {"feedback_label": "👍"}}}
    views, _ = build_views(events, ctx(feedback=fb), ViewsConfig())
    lab = views["planner_sft"][0]["meta"]["labels"]
    assert lab["feedback_score"] == 0.5 and lab["feedback_label"] == "👍"
    assert "feedback_label" not in views["verifier_sft"][0]["meta"]["labels"]


def test_worker_rows_match_eval_helpers(events: list[dict]) -> None:
    views, _ = build_views(events, ctx(), ViewsConfig())
    row = views["worker_sft"][1]
    # failures live in the user turn ("Prior failure: ..."), which eval reads for error recurrence
    assert failed_calls(row["messages"][:-1]) == [("read_file", '{"path": "notes.txt"}')]
    assert views["agentlightning/triplets"][0]["response"] == views["planner_sft"][0]["messages"][-1]


def _with_plan_labels(events: list[dict], **labels: object) -> list[dict]:
    out = [dict(e) for e in events]
    out[1] = {**out[1], "labels": {**(out[1].get("labels") or {}), **labels}}  # the planner_output
    return out


def test_planner_pairs_prefer_the_reference_plan_when_the_plan_made_was_bad(events: list[dict]) -> None:
    made = events[1]["payload"]["plan"]
    reference = [{"index": 0, "description": "count", "tool": "count", "args": {"path": "notes.txt"}}]
    faulty = _with_plan_labels(events, expected_plan=reference, fault="wrong_step_order", misled=False)
    (pair,) = build_views(faulty, ctx(), ViewsConfig())[0]["planner_pref_pairs"]
    assert pair["prompt"] == build_views(faulty, ctx(), ViewsConfig())[0]["planner_sft"][0]["messages"][:-1]
    chosen, rejected = (roles.parse_planner_reply(pair[k][0]["content"]) for k in ("chosen", "rejected"))
    assert [s.tool for s in chosen.plan] == ["count"] and [s.tool for s in rejected.plan] == ["read_file"]
    assert chosen.rationale == rejected.rationale == "" and chosen.confidence == rejected.confidence == 0.9
    assert pair["meta"]["labels"]["pair_source"] == "expected_plan"
    assert pair["meta"]["labels"]["pair_reason"] == "fault"
    # no fault label: a failed run, or a cycle the verifier closed with replan, is the evidence
    plain = _with_plan_labels(events, expected_plan=reference)
    assert not build_views(plain, ctx(), ViewsConfig())[0]["planner_pref_pairs"]  # it ended well
    (failed,) = build_views(plain, ctx(success=False), ViewsConfig())[0]["planner_pref_pairs"]
    assert failed["meta"]["labels"]["pair_reason"] == "run_failed"
    replanned = [dict(e) for e in plain]
    vo = next(i for i, e in enumerate(replanned) if e["event_type"] == "verifier_output")
    replanned[vo] = {**replanned[vo], "payload": {**replanned[vo]["payload"], "verdict": "replan"}}
    (rp,) = build_views(replanned, ctx(), ViewsConfig())[0]["planner_pref_pairs"]
    assert rp["meta"]["labels"]["pair_reason"] == "replan"
    assert rp["meta"]["labels"]["cycle_verdicts"] == ["replan"]
    # no pair: a misleading observation, the same steps, no reference, or the view turned off
    for evs, cfg in ((_with_plan_labels(events, expected_plan=reference, fault="x", misled=True), ViewsConfig()),
                     (_with_plan_labels(events, expected_plan=made, fault="x"), ViewsConfig()),
                     (_with_plan_labels(events, fault="x"), ViewsConfig()),
                     (faulty, ViewsConfig(planner_pairs=False))):
        assert not build_views(evs, ctx(success=False), cfg)[0]["planner_pref_pairs"]


def test_a_decision_after_a_successful_call_in_the_same_step_sees_its_result(tmp_path: Path) -> None:
    """A runtime worker that reads a file, then computes from it, then answers within one plan step: each
    row's prompt holds the results the decision read (it used to hold the step alone, so the rows taught
    a model to produce the sum and the answer without seeing the numbers)."""
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "total of the invoice"})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": 0, "description": "total the invoice"}]})
        parent = run.emit("worker_input", role="worker", parent=po,
                          payload={"plan_step": {"index": 0, "description": "total the invoice"}})
        for k, (tool, args, out) in enumerate([("read_file", {"path": "inv.txt"}, "a 12.5\nb 30"),
                                               ("calc", {"expr": "12.5 + 30"}, 42.5)]):
            act = run.emit("worker_action", role="worker", parent=parent,
                           payload={"action": "tool_call", "tool": tool, "args": args})
            call = run.emit("worker_tool_call", role="worker", parent=act,
                            payload={"call_id": f"c{k}", "tool": tool, "args": args})
            parent = run.emit("worker_tool_result", role="worker", parent=call,
                              payload={"call_id": f"c{k}", "ok": True, "output": out})
        act = run.emit("worker_action", role="worker", parent=parent, payload={"action": "respond"})
        wo = run.emit("worker_output", role="worker", parent=act, payload={"result": "The total is 42.5"})
        run.emit("episode_end", role="orchestrator", parent=wo, payload={"success": True})
    evs = [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]
    read, add, answer = build_views(evs, ctx(), ViewsConfig())[0]["worker_sft"]
    prompts = [r["messages"][1]["content"] for r in (read, add, answer)]
    first = 'Prior result: {"args": {"path": "inv.txt"}, "output": "a 12.5\\nb 30", "tool": "read_file"}'
    second = 'Prior result: {"args": {"expr": "12.5 + 30"}, "output": 42.5, "tool": "calc"}'
    assert "Prior result" not in prompts[0]
    assert prompts[1].endswith(first) and prompts[2].endswith(f"{first}\n{second}")
    assert answer["messages"][-1] == {"role": "assistant", "content": "The total is 42.5"}
    assert [r["meta"]["labels"]["failed_attempts"] for r in (read, add, answer)] == [0, 0, 0]


def test_steps_run_in_parallel_threads_keep_their_own_calls(tmp_path: Path) -> None:
    """Two plan steps of one run interleave in the file (a runtime ran them in threads); each call is
    the decision of the step its parents lead to, not of the worker_input written last."""
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "read a and b"})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": 0, "description": "read a"}, {"index": 1, "description": "read b"}]})
        last = {p: run.emit("worker_input", role="worker", parent=po,
                            payload={"plan_step": {"index": i, "description": f"read {p}"}}) for i, p in enumerate("ab")}
        for etype in ("worker_action", "worker_tool_call", "worker_tool_result"):
            for p in "ab":  # a's event, then b's: the two steps alternate line by line
                body = {"worker_action": {"action": "tool_call"},
                        "worker_tool_call": {"call_id": p, "tool": "read_file", "args": {"path": p}},
                        "worker_tool_result": {"call_id": p, "ok": p == "b", "output": p.upper(),
                                               "error": None if p == "b" else {"kind": "not_found", "message": p}}}
                last[p] = run.emit(etype, role="worker", parent=last[p], payload=body[etype])
        for p in "ab":
            last[p] = run.emit("worker_output", role="worker", parent=last[p], payload={"result": p.upper()})
        run.emit("episode_end", role="orchestrator", parent=last["b"], payload={"success": True})
    evs = [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]
    rows = build_views(evs, ctx(), ViewsConfig())[0]["worker_sft"]
    got = [(r["messages"][1]["content"].splitlines()[0], message_call(r["messages"][-1]).args,
            r["meta"]["labels"]["tool_ok"]) for r in rows]
    assert got == [("Step: read a", {"path": "a"}, False), ("Step: read b", {"path": "b"}, True)]


def test_calls_made_in_parallel_in_one_step_do_not_see_each_others_results(tmp_path: Path) -> None:
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "read a and b"})
        po = run.emit("planner_output", role="planner", parent=pi, payload={"plan": [{"index": 0, "description": "read"}]})
        wi = run.emit("worker_input", role="worker", parent=po, payload={"plan_step": {"index": 0, "description": "read"}})
        calls = {}
        for p in "ab":  # the model asked for both before either came back
            act = run.emit("worker_action", role="worker", parent=wi, payload={"action": "tool_call"})
            calls[p] = run.emit("worker_tool_call", role="worker", parent=act,
                                payload={"call_id": p, "tool": "read_file", "args": {"path": p}})
        last = wi
        for p in "ab":
            last = run.emit("worker_tool_result", role="worker", parent=calls[p],
                            payload={"call_id": p, "ok": True, "output": p.upper()})
        act = run.emit("worker_action", role="worker", parent=last, payload={"action": "respond"})
        wo = run.emit("worker_output", role="worker", parent=act, payload={"result": "A and B"})
        run.emit("episode_end", role="orchestrator", parent=wo, payload={"success": True})
    evs = [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]
    a, b, answer = (r["messages"][1]["content"] for r in build_views(evs, ctx(), ViewsConfig())[0]["worker_sft"])
    assert "Prior result" not in a and "Prior result" not in b
    assert answer.count("Prior result") == 2


def test_prior_results_obey_the_tool_output_budget_and_name_their_events(tmp_path: Path) -> None:
    """A 200 KB file read early in a step went whole into every later row of the step; with
    ``views.tool_output_max_chars`` it is cut as conversational rows cut theirs, and each row's
    ``meta.event_ids`` names the result events its prompt shows."""
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    big = "x" * 200_000 + "END"
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "summarise the log"})
        po = run.emit("planner_output", role="planner", parent=pi, payload={"plan": [{"index": 0, "description": "sum"}]})
        wi = run.emit("worker_input", role="worker", parent=po, payload={"plan_step": {"index": 0, "description": "sum"}})
        act = run.emit("worker_action", role="worker", parent=wi, payload={"action": "tool_call"})
        call = run.emit("worker_tool_call", role="worker", parent=act,
                        payload={"call_id": "c0", "tool": "read_file", "args": {"path": "log"}})
        res = run.emit("worker_tool_result", role="worker", parent=call, payload={"call_id": "c0", "ok": True, "output": big})
        act = run.emit("worker_action", role="worker", parent=res, payload={"action": "respond"})
        wo = run.emit("worker_output", role="worker", parent=act, payload={"result": "one long line"})
        run.emit("episode_end", role="orchestrator", parent=wo, payload={"success": True})
    evs = [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]
    for limit, longest in ((0, 200_000), (3000, 3_300)):
        views, stats = build_views(evs, ctx(), ViewsConfig(tool_output_max_chars=limit))
        read, answer = views["worker_sft"]
        prompt = answer["messages"][1]["content"]
        assert big[:1000] in prompt and "END" in prompt
        assert (len(prompt) > longest) if not limit else (len(prompt) < longest and "characters cut" in prompt)
        assert stats["tool_output_max_chars"] == (1 if limit else 0)
        # the result is cut once (both rows of the step show that one cut) and counted once
        assert (stats["tool_outputs_cut"], stats["tool_output_chars_cut"]) == ((1, len(big) - limit) if limit else (0, 0))
        assert res in answer["meta"]["event_ids"] and res in read["meta"]["event_ids"]  # its shown result, its own
