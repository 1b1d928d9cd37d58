"""Evaluation on long prompts: batches bounded by padded tokens give the same answers as one row at a
time; with ``eval.fit_context`` a prompt whose reference does not fit loses its oldest context by the
training rule, the model is shown and scored on that prompt, and the counts reach the result."""

from __future__ import annotations

import pytest

from tests.train.test_context_fit import SYSTEM, TOOLS, _call, conversation, window_row
from tracebridge.eval import offline
from tracebridge.eval import predict as P
from tracebridge.train.config import EvalConfig, load_train_config


@pytest.fixture(scope="module")
def tiny():
    from tracebridge.train.models import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer(seed=3)


@pytest.mark.parametrize("lengths,rows,tokens,want", [
    ([5, 9, 7, 9], 8, 100, [[1, 3, 2, 0]]),  # longest first, ties in order
    ([5, 9, 7, 9], 2, 100, [[1, 3], [2, 0]]),  # the row cap
    ([5, 9, 7, 9], 8, 18, [[1, 3], [2, 0]]),  # 2 x 9 fits, 3 x 9 does not; 7 and 5 pad to 2 x 7
    ([5, 9, 7, 9], 8, 13, [[1], [3], [2], [0]]),
    ([50, 3], 8, 10, [[0], [1]]),  # a row over the budget goes alone
    ([], 8, 10, []),
])
def test_batches_hold_rows_and_padded_tokens_within_their_bounds(lengths, rows, tokens, want):
    got = P.batches(lengths, rows, tokens)
    assert got == want
    assert sorted(i for b in got for i in b) == list(range(len(lengths)))
    for b in got:
        assert len(b) == 1 or (len(b) <= rows and len(b) * max(lengths[i] for i in b) <= tokens)


def test_length_batching_changes_no_answer_and_keeps_the_order(tiny):
    model, tok = tiny
    prompts = [[SYSTEM, *conversation(t, seed=s)] for t, s in ((1, 0), (4, 1), (2, 2), (6, 3), (1, 4))]
    tools = [TOOLS] * len(prompts)
    alone = P.generate_replies(model, tok, prompts, tools, max_new_tokens=6, batch_size=1)
    assert P.generate_replies(model, tok, prompts, tools, max_new_tokens=6, batch_size=8) == alone
    assert P.generate_replies(model, tok, prompts, tools, max_new_tokens=6, batch_size=8, max_batch_tokens=900) == alone
    texts = [P.render_prompt(tok, p, TOOLS) for p in prompts]
    pairs = [(t, f"verdict: {v}") for t in texts for v in ("pass", "fail")]
    one = P.sequence_logprobs(model, tok, pairs, batch_size=1)
    assert P.sequence_logprobs(model, tok, pairs, batch_size=16, max_batch_tokens=2000) == pytest.approx(one, abs=1e-3)
    assert len(set(one)) > 2  # the rows really differ: an order mix-up would show


def test_a_prompt_whose_reference_does_not_fit_loses_its_oldest_context(tiny):
    _, tok = tiny
    long, short = [SYSTEM, *conversation(6, seed=1)], [SYSTEM, *conversation(1, seed=2)]
    ref = _call(9)
    counts: dict[str, int] = {}
    got = offline.fit_prompts(tok, [long, short], [ref, ref], [TOOLS, TOOLS], 600, counts)
    assert counts == {"prompts": 2, "fitted": 1, "over": 0, "refused": 0}
    assert got[1] is short  # fits: the same prompt
    kept = got[0]
    assert kept[0] == SYSTEM and kept[1]["role"] == "user" and kept[-1] == long[-1]  # the newest context stays
    assert long[-len(kept) + 1:] == kept[1:] and len(kept) < len(long)
    n = len(tok.apply_chat_template([*kept, ref], tools=TOOLS, tokenize=True, return_dict=True)["input_ids"])
    assert n <= 600
    assert offline.fit_prompts(tok, [long], [ref], [TOOLS], 0, counts) == [long]  # 0 = as they are


def test_the_worker_is_shown_and_scored_on_the_fitted_prompt(tiny, monkeypatch):
    model, tok = tiny
    # the oldest turn holds a failed call; a reply repeating it counts as error recurrence only when shown
    failed = [{"role": "user", "content": "turn 0: read it"},
              {"role": "assistant", "content": "", "tool_calls": [
                  {"id": "c0", "type": "function", "function": {"name": "read_file", "arguments": {"path": "f9.txt"}}}]},
              {"role": "tool", "content": "error: no such file f9.txt"},
              {"role": "assistant", "content": "it failed"}]
    row = window_row(failed + conversation(6, seed=1), _call(9), split="test")
    seen = []

    def replies(model, tok, prompts, **kw):
        seen.extend(prompts)
        return ['{"name": "read_file", "arguments": {"path": "f9.txt"}}'] * len(prompts)

    monkeypatch.setattr(P, "generate_replies", replies)
    cfg = EvalConfig(n_boot=100)
    _, whole = offline.eval_worker(model, tok, [row], cfg)
    n = len(seen)
    counts: dict[str, int] = {}
    _, fitted = offline.eval_worker(model, tok, [row], cfg, 600, counts)
    assert counts["prompts"] == n and counts["fitted"] > 0
    last = seen[-1]  # the last assistant turn: the test row's target, shown without the failed turn
    assert len(last) < len(seen[n - 1]) and failed[2] not in last
    assert whole["error_recurrence"][1][-1] == 1.0 and fitted["error_recurrence"][1][-1] == 0.0


def test_fit_lengths_follow_data_fit_context_unless_eval_says_otherwise():
    cfg = load_train_config(None, ["train.max_length=900", "dpo.max_length=700"])
    assert offline.fit_lengths(cfg) == (0, 0)
    assert offline.fit_lengths(load_train_config(None, ["data.fit_context=true", "train.max_length=900",
                                                        "dpo.max_length=700"])) == (900, 700)
    assert offline.fit_lengths(load_train_config(None, ["eval.fit_context=true", "eval.max_length=1500"])) == (1500, 1500)
    assert offline.fit_lengths(load_train_config(None, ["data.fit_context=true", "eval.fit_context=false"])) == (0, 0)


@pytest.mark.parametrize("override,message", [
    ("eval.max_length=10", "eval.max_length=10: must be 0 (train.max_length) or >= 32"),
    ("eval.max_length=-1", "eval.max_length=-1"),
    ("eval.max_batch_tokens=0", "eval.max_batch_tokens=0: must be > 0"),
])
def test_bad_eval_lengths_are_config_errors(override, message):
    from tracebridge.config import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_train_config(None, [override])


def test_bench_eval_smoke() -> None:
    """The script's smoke mode runs (it must not rot): one line per way, then the ratio."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, str(root / "scripts/bench_eval.py"), "--smoke"], capture_output=True,
                         text=True, timeout=300, check=True, cwd=root)
    lines = res.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines[1:4]] == ["before", "bounded", "fitted"], res.stdout
    assert all(" items, " in ln for ln in lines[1:4]) and lines[-1].startswith("ratio time fitted/before: ")
    # prompts and pairs apart, each of its total (it printed their sum as 'N prompts fitted')
    assert "items, fitted 0 of 21 prompts, 0 of 4 pairs" in lines[3] and "as exported" in lines[1], res.stdout


def test_a_reference_the_template_refuses_leaves_its_prompt_as_it_is(tiny):
    """Llama 3's template allows one tool call a message; the model never sees the reference, so a turn
    with parallel calls must not fail the evaluation: that prompt is evaluated as it is, the others fit."""
    import copy

    from trl import chat_template_utils

    tok = copy.deepcopy(tiny[1])
    tok.chat_template = chat_template_utils.llama3_2_chat_template
    long = [SYSTEM, *conversation(6, seed=1)]
    parallel = _call(9)
    parallel["tool_calls"] = parallel["tool_calls"] + [{**parallel["tool_calls"][0], "id": "c10"}]
    counts: dict[str, int] = {}
    got = offline.fit_prompts(tok, [long, long], [parallel, _call(9)], [TOOLS, TOOLS], 1200, counts)
    assert counts == {"prompts": 2, "fitted": 1, "over": 0, "refused": 1}
    assert got[0] is long and len(got[1]) < len(long) and got[1][-1] == long[-1]


def test_a_plan_is_checked_against_its_tasks_tools_when_the_prompt_is_fitted(tiny, monkeypatch):
    """Without labels.tool_mask the tools a plan may use are the task's first user turn; fitting may drop
    that turn from what the model is shown, not from what the plan is checked against."""
    import json

    model, tok = tiny
    plan = json.dumps({"plan": [{"description": "read it", "tool": "read_file", "args": {"path": "f1.txt"}}],
                       "rationale": ""})
    msgs = [{"role": "system", "content": "You are the planner."},
            {"role": "user", "content": "Goal: read the notes\nAvailable tools: read_file"},
            {"role": "assistant", "content": plan}]
    for t in range(6):
        msgs += [{"role": "user", "content": f"Observation: step {t} " + " ".join(["notes report"] * 60)},
                 {"role": "assistant", "content": plan}]
    row = {"messages": msgs, "meta": {"run_id": "p1", "labels": {}}}
    monkeypatch.setattr(P, "generate_replies", lambda model, tok, prompts, **kw: [plan] * len(prompts))
    cfg = EvalConfig(n_boot=100)
    counts: dict[str, int] = {}
    _, whole = offline.eval_planner(model, tok, [row], cfg)
    _, fitted = offline.eval_planner(model, tok, [row], cfg, 400, counts)
    assert counts["fitted"] == 1
    assert whole["plan_validity"] == fitted["plan_validity"] == ([1.0], [1.0])


def test_the_worker_eval_counts_a_repeat_of_a_result_the_row_labels_failed(tiny, monkeypatch):
    """OpenClaw's failed results read as plain text ("Command exited with code 1"): the row's
    ``failed_tool_calls`` label is what makes a repeat of that call an error recurrence."""
    model, tok = tiny
    msgs = [{"role": "user", "content": "turn 0: run it"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": "read_file", "arguments": {"path": "f9.txt"}}}]},
            {"role": "tool", "content": "Command exited with code 1", "tool_call_id": "c0"}]
    labelled = window_row(msgs, _call(9), split="test", failed_tool_calls='["c0"]')
    plain = window_row(msgs, _call(9), split="test")
    monkeypatch.setattr(P, "generate_replies", lambda model, tok, prompts, **kw:
                        ['{"name": "read_file", "arguments": {"path": "f9.txt"}}'] * len(prompts))
    # items: the call at turn 2 (no failure shown yet), then the target at turn 4 (after the failed result)
    _, items = offline.eval_worker(model, tok, [labelled], EvalConfig(n_boot=100))
    assert items["error_recurrence"] == ([0.0, 1.0], [0.0, 1.0])
    _, items = offline.eval_worker(model, tok, [plain], EvalConfig(n_boot=100))
    assert items["error_recurrence"] == ([0.0, 0.0], [0.0, 0.0])
