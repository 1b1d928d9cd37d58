"""Model calls used by evaluation: batched greedy replies to chat prompts, and summed
log-probabilities of given continuations (verdict ranking, preference pairs).

Prompts are rendered with the tokenizer's chat template (``add_generation_prompt``), so what is
scored or generated is exactly what a trained role sees in training and in the simulator.
"""

from __future__ import annotations

import json
from typing import Any, Sequence


def _tools(tools: Any) -> Any:
    return json.loads(tools) if isinstance(tools, str) else tools


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]], tools: Any = None) -> str:
    """The prompt text a model continues (chat template + generation prompt)."""
    return tokenizer.apply_chat_template(messages, tools=_tools(tools), add_generation_prompt=True, tokenize=False)


def batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[list[int]]:
    """Indices grouped longest first: each batch holds up to ``batch_size`` rows and, padded to its
    longest, up to ``max_tokens`` tokens (a longer row goes alone). Rows of a length batch together, so
    padding is small, and attention memory (rows x longest²) stays bounded on long prompts."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < batch_size and (len(out[-1]) + 1) * lengths[out[-1][0]] <= max_tokens:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def generate_replies(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, Any]]],
                     tools: Sequence[Any] | None = None, max_new_tokens: int = 128,
                     batch_size: int = 16, max_batch_tokens: int = 1 << 62) -> list[str]:
    """Greedy replies (up to the end-of-turn token) to each chat prompt, in the prompts' order;
    batched by length (``batches``: ``max_batch_tokens`` counts prompt and new tokens)."""
    import torch

    texts = [render_prompt(tokenizer, p, tools[i] if tools else None) for i, p in enumerate(prompts)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    out: list[str] = [""] * len(texts)
    model.eval()
    for group in batches([len(r) + max_new_tokens for r in ids], batch_size, max_batch_tokens):
        width = len(ids[group[0]])  # the longest: batches() puts it first
        enc = torch.full((len(group), width), tokenizer.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(group), width), dtype=torch.long)
        for j, i in enumerate(group):  # left padding: every prompt ends where generation starts
            enc[j, width - len(ids[i]):], att[j, width - len(ids[i]):] = torch.tensor(ids[i]), 1
        with torch.no_grad():
            gen = model.generate(input_ids=enc.to(model.device), attention_mask=att.to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(group, gen[:, width:]):
            out[i] = tokenizer.decode(row, skip_special_tokens=True)
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def sequence_logprobs(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], batch_size: int = 16,
                      max_batch_tokens: int = 1 << 62) -> list[float]:
    """Summed log-probability of each ``continuation`` given its ``prefix`` text, in the pairs' order;
    batched by length (``batches``).

    The continuation's tokens are those of ``prefix + continuation`` past the longest common
    prefix with the tokenised ``prefix`` (robust to merges across the boundary).
    """
    import torch

    rows = []
    for prefix, cont in pairs:
        p_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        f_ids = tokenizer(prefix + cont, add_special_tokens=False)["input_ids"]
        rows.append((f_ids, max(1, _common_prefix(p_ids, f_ids))))
    scores: list[float] = [0.0] * len(rows)
    model.eval()
    pad = tokenizer.pad_token_id
    for group in batches([len(r) for r, _ in rows], batch_size, max_batch_tokens):
        batch = [rows[i] for i in group]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (r, _) in enumerate(batch):
            ids[i, :len(r)] = torch.tensor(r)
            att[i, :len(r)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=att.to(model.device)).logits
        for j, (i, (r, start)) in enumerate(zip(group, batch)):  # one row's log-softmax at a time, not the batch's
            logp = torch.log_softmax(logits[j, start - 1:len(r) - 1].float(), dim=-1)
            scores[i] = float(logp.gather(-1, torch.tensor(r[start:], device=logp.device).unsqueeze(-1)).sum())
    return scores


def verdict_by_likelihood(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, Any]]],
                          verdicts: Sequence[str], batch_size: int = 16, max_batch_tokens: int = 1 << 62) -> list[str]:
    """For each verifier prompt, the verdict whose ``verdict: X`` line is most likely."""
    texts = [render_prompt(tokenizer, p) for p in prompts]
    pairs = [(t, f"verdict: {v}") for t in texts for v in verdicts]
    scores = sequence_logprobs(model, tokenizer, pairs, batch_size, max_batch_tokens)
    k = len(verdicts)
    return [verdicts[max(range(k), key=lambda j: scores[i * k + j])] for i in range(len(texts))]


def pair_logprobs(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], batch_size: int = 16,
                  max_batch_tokens: int = 1 << 62) -> list[tuple[float, float]]:
    """``(log π(chosen), log π(rejected))`` of each prompt/chosen/rejected row, end-of-turn included."""
    pairs = []
    for r in rows:
        tools = _tools(r.get("tools"))
        prefix = tokenizer.apply_chat_template(r["prompt"], tools=tools, add_generation_prompt=True, tokenize=False)
        for k in ("chosen", "rejected"):
            full = tokenizer.apply_chat_template(r["prompt"] + r[k], tools=tools, tokenize=False)
            pairs.append((prefix, full[len(prefix):] if full.startswith(prefix) else full))
    s = sequence_logprobs(model, tokenizer, pairs, batch_size, max_batch_tokens)
    return [(s[2 * i], s[2 * i + 1]) for i in range(len(rows))]
