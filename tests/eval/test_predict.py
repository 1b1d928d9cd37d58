"""``eval.predict`` on what real models and tokenizers bring: batched replies and scores equal one row at
a time (and a plain unpadded forward) for rotary and absolute-position architectures, in fp32 and bf16,
empty continuations included; a tokenizer without a pad token or padding on the right changes nothing;
a sequence past the model's positions keeps its last tokens instead of failing; scoring a batch of long
prompts costs the continuation's logits, not the whole batch's, under an address-space limit."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.test_context_fit import SYSTEM, TOOLS, conversation
from tracebridge.eval import predict as P

PROMPTS = [[SYSTEM, *conversation(t, seed=s)] for t, s in ((1, 0), (4, 1), (2, 2), (3, 3), (1, 4))]


def lively(arch: str = "qwen2", dtype: str = "float32", **shape):
    """A tiny random model whose greedy replies differ by prompt (at random init they are all newlines)."""
    import torch

    from tracebridge.train.models import tiny_model_and_tokenizer

    model, tok = tiny_model_and_tokenizer(seed=3, arch=arch, dtype=dtype, **shape)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)
    return model.eval(), tok


def plain_logprob(model, tok, prefix: str, cont: str) -> float:
    """The continuation's summed log-probability from one unpadded forward of the whole text."""
    import torch

    p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
    f_ids = tok(prefix + cont, add_special_tokens=False)["input_ids"]
    start = max(1, P._common_prefix(p_ids, f_ids))
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([f_ids])).logits[0].float()
    logp = torch.log_softmax(logits[start - 1:-1], -1)
    return float(logp.gather(-1, torch.tensor(f_ids[start:]).unsqueeze(-1)).sum()) if len(f_ids) > start else 0.0


@pytest.mark.parametrize("arch,dtype,tol", [("qwen2", "float32", {"abs": 1e-3}), ("gpt2", "float32", {"abs": 1e-3}),
                                            ("llama", "bfloat16", {"rel": 1e-2})])
def test_batched_replies_and_scores_equal_one_row_at_a_time(arch, dtype, tol):
    """gpt2 adds learned absolute positions: left padding is right only with positions from the mask. In
    bf16 another batch shape rounds differently (up to ~0.4% here), positions shifted by the padding more."""
    model, tok = lively(arch, dtype)
    tools = [TOOLS] * len(PROMPTS)
    texts = [P.render_prompt(tok, p, TOOLS) for p in PROMPTS]
    pairs = [(t, f"verdict: {v}") for t in texts for v in ("pass", "end")] + [(texts[1], ""), (texts[3], "")]
    one = P.sequence_logprobs(model, tok, pairs, batch_size=1)
    assert one == pytest.approx([plain_logprob(model, tok, *p) for p in pairs], **tol)
    assert one[-2:] == [0.0, 0.0] and len(set(one[:-2])) == len(pairs) - 2
    for kw in ({"batch_size": 16}, {"batch_size": 16, "max_batch_tokens": 2500}):
        assert P.sequence_logprobs(model, tok, pairs, **kw) == pytest.approx(one, **tol)
    if dtype == "float32":  # bf16 rounding can flip a greedy near-tie between batch shapes
        alone = P.generate_replies(model, tok, PROMPTS, tools, max_new_tokens=6, batch_size=1)
        assert len(set(alone)) == len(alone)  # replies differ: a row given another's padding would show
        assert P.generate_replies(model, tok, PROMPTS, tools, max_new_tokens=6, batch_size=8) == alone
        assert P.generate_replies(model, tok, PROMPTS, tools, max_new_tokens=6, batch_size=8,
                                  max_batch_tokens=1500) == alone


def test_a_tokenizer_without_a_pad_token_or_padding_right_changes_nothing():
    model, tok = lively()
    tools = [TOOLS] * len(PROMPTS)
    texts = [P.render_prompt(tok, p, TOOLS) for p in PROMPTS]
    pairs = [(t, "verdict: pass") for t in texts]
    want = (P.generate_replies(model, tok, PROMPTS, tools, max_new_tokens=5), P.sequence_logprobs(model, tok, pairs))
    no_pad, pad_eos, right = copy.deepcopy(tok), copy.deepcopy(tok), copy.deepcopy(tok)
    no_pad.pad_token = None
    pad_eos.pad_token = tok.eos_token
    right.padding_side = "right"
    for t in (no_pad, pad_eos, right):
        got = (P.generate_replies(model, t, PROMPTS, tools, max_new_tokens=5), P.sequence_logprobs(model, t, pairs))
        assert got[0] == want[0] and got[1] == pytest.approx(want[1], abs=1e-4)
    assert no_pad.pad_token_id is None and pad_eos.pad_token_id == tok.eos_token_id


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_a_sequence_past_the_models_positions_keeps_its_last_tokens(arch):
    """gpt2's learned positions end at n_positions (an index error past it); the simulator's backend keeps
    the last tokens of such a prompt, and so does evaluation."""
    import torch

    model, tok = lively(arch, max_position_embeddings=256)
    long, short = PROMPTS[1], [SYSTEM, {"role": "user", "content": "read f1.txt"}]
    ids = tok(P.render_prompt(tok, long, TOOLS), add_special_tokens=False)["input_ids"]
    assert len(ids) > 256
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([ids[-(256 - 6):]]), max_new_tokens=6, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    want = tok.decode(out[0, 256 - 6:], skip_special_tokens=True)
    got = P.generate_replies(model, tok, [long, short], [TOOLS, TOOLS], max_new_tokens=6)
    assert got[0] == want and got[1] == P.generate_replies(model, tok, [short], [TOOLS], max_new_tokens=6)[0]
    text = tok.decode(ids)
    cont = "verdict: pass"
    tail = tok(text + cont, add_special_tokens=False)["input_ids"][-256:]
    n = len(tok(text + cont, add_special_tokens=False)["input_ids"]) - len(ids)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([tail])).logits[0, -n - 1:-1].float(), -1)
    expect = float(logp.gather(-1, torch.tensor(tail[-n:]).unsqueeze(-1)).sum())
    assert P.sequence_logprobs(model, tok, [(text, cont)]) == pytest.approx([expect], abs=1e-3)


def test_a_scoring_batch_holds_its_logits_positions_within_their_bound():
    """Rows x the longest tail (logits positions) stay within the bound; a row over it goes alone."""
    assert P.batches([9, 8, 7, 6], 8, 100, tails=[2, 5, 1, 1], max_tail_tokens=10) == [[0, 1], [2, 3]]
    assert P.batches([9, 8, 7, 6], 8, 100, tails=[20, 5, 1, 1], max_tail_tokens=10) == [[0], [1, 2], [3]]
    assert P.batches([9, 8, 7, 6], 8, 100) == [[0, 1, 2, 3]]


CHILD = """
import resource, sys, torch
torch.set_num_threads(1)
from tracebridge.eval import predict as P
from tracebridge.train.models import tiny_model_and_tokenizer
model, tok = tiny_model_and_tokenizer(vocab_size=65536)
prompts = [[{"role": "user", "content": " ".join(f"row{i} value {j}" for j in range(220))}] for i in range(4)]
pairs = [(P.render_prompt(tok, p), f"verdict: {v}") for p in prompts for v in ("pass", "fail")]
vm = int(next(ln for ln in open("/proc/self/status") if ln.startswith("VmSize")).split()[1]) * 1024
limit = vm + (1 << 30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
scores = P.sequence_logprobs(model, tok, pairs, batch_size=8, max_batch_tokens=16384)
answers = [(P.render_prompt(tok, [{"role": "user", "content": "answer"}]), " ".join(f"word{i} {j}" for j in range(150))) for i in range(6)]
scores += P.sequence_logprobs(model, tok, answers, batch_size=8, max_batch_tokens=16384)
replies = P.generate_replies(model, tok, prompts, max_new_tokens=4, batch_size=8, max_batch_tokens=16384)
print(len(scores), len(replies))
"""


def test_scoring_long_prompts_stays_within_a_gigabyte_of_address_space():
    """A 65,536-token vocabulary. Eight ~1,450-token rows in one batch: the whole batch's logits would take
    3 GB (at Qwen's vocabulary and the GPU profile's eval.max_batch_tokens, 20 GB), the continuations' a
    few MB. Four ~1,100-token answers: their logits together 1.2 GB, one at a time 0.3 GB."""
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, cwd=root,
                         check=False)
    assert res.returncode == 0 and res.stdout.split() == ["14", "4"], res.stderr[-2000:]
