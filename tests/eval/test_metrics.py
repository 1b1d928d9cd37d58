"""Every offline metric against answers computed by hand on small fixtures."""

from __future__ import annotations

import json

import pytest

from tracebridge.eval import metrics as M
from tracebridge.eval.offline import collect
from tracebridge.eval.stats import ratio
from tracebridge.schema import roles

PLAN_REF = roles.planner_reply_text({"plan": [{"description": "a", "tool": "read_file"},
                                              {"description": "b", "tool": "count"}], "rationale": "r"})
USER = roles.planner_user_text({"goal": "g", "tool_mask": ["read_file", "count", "grep"]})


def plan(*tools):
    return json.dumps({"plan": [{"description": t, "tool": t} for t in tools], "rationale": ""})


def agg(items):
    return {k: ratio(n, d) for k, (n, d) in collect(items).items()}


def test_planner_validity_and_replan_proxy():
    replies = [
        plan("read_file", "count"),          # valid, covers the reference: no replan
        plan("count", "read_file"),          # wrong order: invalid
        plan("read_file", "rm_rf"),          # tool outside the mask: invalid
        "I would read the file",             # does not parse: invalid
        plan("read_file", "grep"),           # valid (order of shared tools ok) but misses count: replan
    ]
    got = agg([M.planner_item(r, PLAN_REF, USER) for r in replies])
    assert got["plan_validity"] == pytest.approx(2 / 5)
    assert got["replan_rate"] == pytest.approx(4 / 5)
    # the mask can come from labels instead of the prompt text
    assert M.planner_item(plan("x"), PLAN_REF, "", {"tool_mask": ["x"]})["plan_validity"] == (1.0, 1.0)


TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["path"], "additionalProperties": False}}}]


def test_worker_metrics_by_hand():
    prompt_ok = [{"role": "user", "content": "Step: read notes.txt"}]
    failed = roles.tool_call_message("c1", "read_file", {"path": "x.txt"})
    prompt_fail = prompt_ok + [failed, {"role": "tool", "content": json.dumps({"ok": False, "error": {"kind": "not_found"}})}]
    ref_call = roles.tool_call_message("c2", "read_file", {"path": "notes.txt"})
    ref_answer = {"role": "assistant", "content": "2 lines"}
    cases = [
        # valid call, matches, 1/1 arg grounded
        (roles.tool_call_text("read_file", {"path": "notes.txt"}), ref_call, prompt_ok),
        # unknown tool: invalid call, no match, arg "a" not in prompt (0/1)
        (roles.tool_call_text("grep", {"pattern": "a"}), ref_call, prompt_ok),
        # schema-invalid (n must be an integer, extra key), tool matches; args: notes.txt yes, "3" no, "q" no
        (roles.tool_call_text("read_file", {"path": "notes.txt", "n": "3", "zz": "q"}), ref_call, prompt_ok),
        # repeats the failed call: valid, matches, x.txt is in the prompt? no (only in assistant turns) -> 0/1
        (roles.tool_call_text("read_file", {"path": "x.txt"}), ref_call, prompt_fail),
        # a different call after a failure: no recurrence
        (roles.tool_call_text("read_file", {"path": "notes.txt"}), ref_call, prompt_fail),
        # text answer where the reference answers: matches, not a call
        ("2 lines", ref_answer, prompt_ok),
        # broken tool call: counts as an invalid call, no match
        ("<tool_call>{not json", ref_call, prompt_ok),
    ]
    # failures shown as "Prior failure:" lines of the user turn (how the export renders them)
    prior = [{"role": "user", "content": roles.worker_user_text({
        "plan_step": {"description": "read"}, "allowed_tools": ["read_file"],
        "prior_failures": [{"tool": "read_file", "args": {"path": "y.txt"}, "error_kind": "not_found"}]})}]
    cases += [(roles.tool_call_text("read_file", {"path": "y.txt"}), ref_call, prior),      # repeats: 0/1 grounded? y.txt is in the user turn -> 1/1
              (roles.tool_call_text("read_file", {"path": "notes.txt"}), ref_call, prior)]  # no repeat, notes.txt not in prompt -> 0/1
    got = agg([M.worker_item(r, ref, p, TOOLS) for r, ref, p in cases])
    assert got["tool_call_validity"] == pytest.approx(5 / 8)
    assert got["action_match"] == pytest.approx(7 / 9)
    assert got["arg_grounding"] == pytest.approx(4 / 9)
    assert got["error_recurrence"] == pytest.approx(2 / 4)


def test_args_valid_rules():
    schema = TOOLS[0]["function"]["parameters"]
    assert M.args_valid({"path": "a"}, schema)
    assert not M.args_valid({}, schema)
    assert not M.args_valid({"path": 1}, schema)
    assert not M.args_valid({"path": "a", "other": 1}, schema)
    assert M.args_valid({"path": "a", "n": 2}, schema) and not M.args_valid({"path": "a", "n": True}, schema)
    assert M.args_valid({"anything": 1}, None)
    assert not M.args_valid({"u": "x"}, {"properties": {"u": {"type": "string", "enum": ["m", "ft"]}}})


def test_verifier_metrics_by_hand():
    pairs = [("end", "end"), ("end", "continue"), ("continue", "continue"), ("replan", "continue"),
             ("replan", "replan"), (None, "end"), ("continue", "end"), ("end", "replan")]
    got = agg([M.verifier_item(p, e) for p, e in pairs])
    assert got["accuracy"] == pytest.approx(3 / 8)
    assert got["stop_precision"] == pytest.approx(1 / 3)          # predicted end: 3, correct 1
    assert got["stop_recall"] == pytest.approx(1 / 3)             # expected end: 3, found 1
    assert got["false_stop_rate"] == pytest.approx(2 / 5)         # expected not end: 5, predicted end 2
    assert got["unnecessary_replan_rate"] == pytest.approx(1 / 6)  # expected not replan: 6, predicted replan 1


def test_expected_verdict_prefers_ex_post_label():
    assert M.expected_verdict("verdict: continue", {"expected_verdict": "replan"}) == "replan"
    assert M.expected_verdict("verdict: end\nfeedback: ok", {}) == "end"


def test_preference_metrics_by_hand():
    items = [M.preference_item(-10, -12, -11, -11, beta=0.5),   # margin 0.5*((1)-(-1)) = 1.0
             M.preference_item(-15, -12, -14, -12, beta=0.5)]   # margin 0.5*((-1)-(0)) = -0.5
    got = agg(items)
    assert got["pref_accuracy"] == pytest.approx(1 / 2)
    assert got["reward_margin"] == pytest.approx(0.25)
    assert "reward_margin" not in M.preference_item(-1, -2)


def test_failed_tool_results_named_by_the_rows_label_count_for_error_recurrence():
    """A conversation row's tool result may fail without saying "error" (OpenClaw's isError on
    "Command exited with code 1"): the row's ``labels.failed_tool_calls`` names it by call id."""
    call = roles.tool_call_message("c2", "read_file", {"path": "x.txt"})
    prompt = [{"role": "user", "content": "show x.txt"},
              {**call, "tool_calls": [roles.tool_call_message("c1", "read_file", {"path": "y.txt"})["tool_calls"][0],
                                      call["tool_calls"][0]]},
              {"role": "tool", "tool_call_id": "c1", "name": "read_file", "content": "fine"},
              {"role": "tool", "tool_call_id": "c2", "name": "read_file", "content": "Command exited with code 1"}]
    rows = [{"messages": prompt, "meta": {"run_id": "r1", "labels": {"failed_tool_calls": '["c2"]'}}},
            {"messages": prompt, "meta": {"run_id": "r2", "labels": {"failed_tool_calls": ["c9"]}}},
            {"messages": prompt, "meta": {"run_id": "r3", "labels": {}}}]
    failed = M.failed_tool_calls(rows)
    assert failed == {"r1": frozenset({"c2"}), "r2": frozenset({"c9"})}  # by run: ids are unique in a run only
    assert M.failed_calls(prompt) == []  # the text alone does not say it failed
    assert M.failed_calls(prompt, failed["r1"]) == [("read_file", '{"path": "x.txt"}')]  # the second call, by id
    repeat = roles.tool_call_text("read_file", {"path": "x.txt"})
    ref = roles.tool_call_message("c3", "read_file", {"path": "z.txt"})
    assert M.worker_item(repeat, ref, prompt, TOOLS, failed["r1"])["error_recurrence"] == (1.0, 1.0)
    assert M.worker_item(repeat, ref, prompt, TOOLS, failed.get("r3", ()))["error_recurrence"] == (0.0, 0.0)
    # eval fits a prompt by dropping its oldest messages: the id still names the result
    assert M.failed_calls(prompt[1:], failed["r1"]) == [("read_file", '{"path": "x.txt"}')]


def test_recorded_calls_whose_arguments_are_not_a_json_object_are_scored_not_a_crash():
    """A model's broken JSON arguments reach a bundle as written (views_llm keeps them); the worker
    eval parsed them with json.loads and the whole trial failed with JSONDecodeError."""
    def call(cid, args):
        return {"role": "assistant", "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": "read_file", "arguments": args}}]}
    broken = call("c1", '{"path": "x.txt"')
    prompt = [{"role": "user", "content": "Step: read x.txt"}, broken,
              {"role": "tool", "tool_call_id": "c1", "content": "error: bad arguments"},
              {"role": "user", "content": "again"}]
    got = M.worker_item(roles.tool_call_text("read_file", {"path": "x.txt"}), call("c2", "[1, 2]"), prompt, TOOLS)
    # matches the reference by its tool; the failure is shown (1 item) but the well-formed call repeats nothing
    assert got["action_match"] == (1.0, 1.0) and got["error_recurrence"] == (0.0, 1.0)
    assert M.failed_calls(prompt) == [("read_file", json.dumps({"_raw": '{"path": "x.txt"'}))]
    assert M.message_call(call("c3", "")).args == {} and M.message_call(call("c4", "[1, 2]")).args == {"_raw": [1, 2]}


def test_a_json_object_answer_is_an_answer_not_a_broken_tool_call():
    """A worker that answers with a JSON object (``{"total": 3}``), as its reference does, was scored as an
    unparseable tool call: action_match 0 of 1 and tool_call_validity 0 of 1."""
    ref = {"role": "assistant", "content": '{"total": 3}'}
    got = M.worker_item('{"total": 3}', ref, [], TOOLS)
    assert got["action_match"] == (1.0, 1.0) and got["tool_call_validity"] == (0.0, 0.0)
    assert roles.parse_worker_reply(' {"total": 3, "items": [1]} ').answer == '{"total": 3, "items": [1]}'
    # an untagged object with a name or arguments is still a tool call, or a malformed one
    assert roles.parse_worker_reply('{"name": "read_file", "arguments": {"path": "a"}}').tool == "read_file"
    assert M.worker_item('{"arguments": {"path": "a"}}', ref, [], TOOLS)["tool_call_validity"] == (0.0, 1.0)
    assert M.worker_item('<tool_call>{"total": 3}</tool_call>', ref, [], TOOLS)["action_match"] == (0.0, 1.0)


def test_prior_failures_without_arguments_count_no_error_recurrence_item():
    """The simulator carries a failed step into the next step's prompt as ``Prior failure: {"step", "tool",
    "error"}``, without arguments: read as ``(tool, {})`` it made the item count in the denominator though no
    repeat of it can be seen, pulling error_recurrence toward 0."""
    user = ('Step: read y\nAllowed tools: read_file\n'
            'Prior failure: {"step": "read x", "tool": "read_file", "error": "not_found"}')
    prompt = [{"role": "user", "content": user}]
    ref = roles.tool_call_message("c3", "read_file", {"path": "y.txt"})
    got = M.worker_item(roles.tool_call_text("read_file", {"path": "y.txt"}), ref, prompt, TOOLS)
    assert M.failed_calls(prompt) == [] and got["error_recurrence"] == (0.0, 0.0)
    # with its arguments (this step's earlier attempt) a failure counts, and a repeat of it is seen
    with_args = user + '\nPrior failure: {"tool": "read_file", "args": {"path": "x.txt"}, "error_kind": "not_found"}'
    prompt = [{"role": "user", "content": with_args}]
    repeat = M.worker_item(roles.tool_call_text("read_file", {"path": "x.txt"}), ref, prompt, TOOLS)
    assert repeat["error_recurrence"] == (1.0, 1.0)
    assert M.worker_item(roles.tool_call_text("read_file", {}), ref, prompt, TOOLS)["error_recurrence"] == (0.0, 1.0)
