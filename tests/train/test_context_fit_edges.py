"""``data.fit_context`` under real chat templates (TRL ships them) whose per-message costs do not add up:
every record comes back as brute force over exact lengths says (fits and over: the same object; fitted:
the longest context that fits), lengths are those of the template TRL tokenizes with, templates that
refuse a message out of its context still fit, a tool result never loses its call, and degenerate
records are left as they are."""

from __future__ import annotations

import copy
import json

import pytest
from test_context_fit import SYSTEM, TOOLS, _call, _text, conversation, window_row

from tracebridge.train import context_fit
from tracebridge.train.context_fit import fit_pref_records, fit_sft_records
from tracebridge.train.data import to_pref_records, to_sft_records


@pytest.fixture(scope="module")
def base_tok():
    from tracebridge.train.models import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer()[1]


def with_template(tok, name: str):
    """The tiny tokenizer with TRL's copy of a model's chat template (``tracebridge``: ours)."""
    from trl import chat_template_utils

    tok = copy.deepcopy(tok)
    if name != "tracebridge":
        tok.chat_template = getattr(chat_template_utils, f"{name}_chat_template")
    return tok


def tokens(tok, msgs: list[dict], tools: str | None) -> int:
    return len(tok.apply_chat_template(msgs, tools=json.loads(tools) if tools else None, tokenize=True,
                                       return_dict=True)["input_ids"])


def expected(tok, rec: dict, tails: list[list[dict]], max_length: int) -> list[dict] | None:
    """Brute force: the prompt with the longest context (the export cap's rule) whose exact length fits;
    None when the record is left as it is (it fits, or even its minimal context is over)."""
    p = rec["prompt"]
    n = next((i for i, m in enumerate(p) if m["role"] != "system"), len(p))
    for i, ctx in enumerate([p[n:], *context_fit._candidates(p[n:])]):
        if max(tokens(tok, [*p[:n], *ctx, *t], rec["tools"]) for t in tails) <= max_length:
            return None if i == 0 else [*p[:n], *ctx]
    return None


def agent(turns: int, par: int, think: bool, seed: int) -> list[dict]:
    """``turns`` user turns, each a call (the first turn's of ``par`` parallel calls), the results, then an
    answer (after a reasoning block with ``think``)."""
    msgs, k = [], seed * 100
    for t in range(turns):
        k += 1
        call = _call(k)
        call["tool_calls"] = [{**call["tool_calls"][0], "id": f"c{k}-{j}"} for j in range(par if t == 0 else 1)]
        answer = f"done {t}: {_text(k, 5)}"
        msgs += [{"role": "user", "content": f"turn {t}: {_text(k, 8)}"}, call,
                 *({"role": "tool", "content": _text(k + j, 30)} for j in range(len(call["tool_calls"]))),
                 {"role": "assistant", "content": f"<think>{_text(k, 40)}</think>\n{answer}" if think else answer}]
    return msgs


def rows(par: int, think: bool) -> list[dict]:
    """Window rows: first four of one short turn (estimates look exact), then longer ones, half of them
    with parallel calls."""
    out = [window_row(conversation(1, seed=s), _call(9)) for s in range(4)]
    for s in range(4):
        conv = agent(4, par if s % 2 else 1, think, 10 + s)
        out += [window_row(conv[:j], m) for j, m in enumerate(conv) if m["role"] == "assistant" and j > 6]
    return out


@pytest.mark.parametrize("name,par,think", [("tracebridge", 2, True), ("qwen2_5", 2, False), ("qwen3", 2, True),
                                            ("llama3_1", 1, False), ("deepseekv3", 2, False), ("gptoss", 2, False)])
def test_every_record_is_what_exact_lengths_say_under_real_templates(base_tok, name, par, think):
    """Qwen groups parallel tool results into one user turn, Qwen3 re-renders older assistant turns without
    their thinking, DeepSeek-V3 renders the first call and result of a conversation apart, Llama 3.1 puts
    the tools in the first user turn, gpt-oss names a result by its call: estimates go wrong both ways."""
    tok = with_template(base_tok, name)
    recs = to_sft_records(rows(par, think))
    pairs = to_pref_records([{"prompt": r["prompt"], "chosen": r["completion"][:1], "rejected": [
        {"role": "assistant", "content": _text(i, 30)}], "tools": TOOLS, "meta": {}} for i, r in enumerate(recs)])
    full = [tokens(tok, r["prompt"] + r["completion"][:1], r["tools"]) for r in recs]
    grouped = next((i for i, r in enumerate(recs)  # the first with parallel results: it just fits the last
                    if any(a["role"] == b["role"] == "tool" for a, b in zip(r["prompt"], r["prompt"][1:]))), 0)
    for max_length in (sorted(full)[len(full) // 2], sorted(full)[-3], full[grouped]):
        for fit, records, tails_of in ((fit_sft_records, recs, lambda r: [r["completion"][:1]]),
                                       (fit_pref_records, pairs, lambda r: [r["chosen"], r["rejected"]])):
            out, rep = fit(records, tok, max_length)
            want = [expected(tok, r, tails_of(r), max_length) for r in records]
            assert [len(g["prompt"]) for g in out] == [len(w or r["prompt"]) for r, w in zip(records, want)]
            for rec, got, w in zip(records, out, want):
                if w is None:
                    assert got is rec
                else:
                    assert got["prompt"] == w and all(got[k] is rec[k] for k in rec if k != "prompt")
            assert rep.fitted == sum(w is not None for w in want)


def test_sft_lengths_are_counted_with_the_template_trl_trains_with(base_tok, tmp_path):
    """A template without ``{% generation %}`` markers is swapped for its training variant by SFTTrainer
    (assistant-only loss); Qwen3's renders every older assistant turn with an empty thinking block, so a
    prompt fitted under the tokenizer's own template is over max_length under the one TRL applies."""
    from tracebridge.train.config import SFTRecipeConfig
    from tracebridge.train.models import tiny_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    tok = with_template(base_tok, "qwen3")
    recs = to_sft_records([window_row(conversation(8, words=8), _call(99)),
                           window_row(conversation(1, seed=3), _call(9))])
    rc = SFTRecipeConfig(max_steps=1, batch_size=2, max_length=850)
    res = run_sft(tiny_model_and_tokenizer()[0], tok, recs, rc, tmp_path / "t", fit_context=True)[1]
    assert (res.rows_fitted, res.rows_dropped) == (1, 0)


def norm(msgs: list[dict]) -> list[dict]:
    return to_sft_records([{"messages": msgs, "meta": {}}])[0]["messages"]


def test_a_completion_that_opens_with_a_tool_result_keeps_its_call(base_tok):
    """The context's last call answers the completion's first message: no cut may leave it behind."""
    conv = norm([SYSTEM, *conversation(3), _call(50), {"role": "tool", "content": _text(3, 30)},
                 {"role": "assistant", "content": "fin"}])
    rec = {"prompt": conv[:-2], "completion": conv[-2:], "tools": json.dumps(TOOLS)}
    last_user = max(i for i, m in enumerate(conv) if m["role"] == "user")
    minimal = [conv[0], conv[last_user], conv[-3]]  # the last user message, then the call
    max_length = tokens(base_tok, minimal + rec["completion"], rec["tools"])
    out, rep = fit_sft_records([rec], base_tok, max_length)
    assert rep.fitted == 1 and out[0]["prompt"] == minimal and out[0]["completion"] is rec["completion"]
    out, rep = fit_sft_records([rec], base_tok, max_length - 1)  # the last user message alone would fit
    assert out[0] is rec and rep.over == 1


def test_degenerate_records_are_left_as_they_are(base_tok):
    """No user turn in the context, a context of system turns only, an empty prompt, a completion with no
    assistant turn, a max_length below the tools header: nothing to cut, nothing cut, no error."""
    sys_, call, result, answer = norm([SYSTEM, _call(1), {"role": "tool", "content": _text(1, 200)},
                                       {"role": "assistant", "content": _text(2, 50)}])
    long = to_sft_records([window_row(conversation(3), _call(9))])[0]
    tools = json.dumps(TOOLS)
    recs = [{"prompt": [sys_, call, result], "completion": [answer], "tools": tools},
            {"prompt": [sys_, {**sys_, "content": _text(1, 300)}], "completion": [answer], "tools": tools},
            {"prompt": [], "completion": [answer], "tools": tools},
            {"prompt": long["prompt"], "completion": [result], "tools": tools},
            long]
    out, rep = fit_sft_records(recs, base_tok, 40)
    assert all(a is b for a, b in zip(out, recs)) and rep.fitted == 0
    assert tokens(base_tok, [sys_, {"role": "user", "content": "x"}], tools) > 40  # the header alone is over


def test_tools_as_a_list_fit_as_the_same_tools_as_a_json_string(base_tok):
    recs = to_sft_records([window_row(conversation(6, seed=s), _call(9)) for s in range(6)])
    listed = [{**r, "tools": json.loads(r["tools"])} for r in recs]
    a, b = fit_sft_records(recs, base_tok, 700)[0], fit_sft_records(listed, base_tok, 700)[0]
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b] and sum(x is not y for x, y in zip(a, recs)) >= 3
