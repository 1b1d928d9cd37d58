"""Model calls used by evaluation: batched greedy replies to chat prompts, and summed
log-probabilities of given continuations (verdict ranking, preference pairs).

Prompts are rendered with the tokenizer's chat template (``add_generation_prompt``), so what is
scored or generated is exactly what a trained role sees in training and in the simulator.

Memory: rows are batched by length within a padded-token bound (``batches``), left-padded so every row
ends at the same position. Scoring asks the model for the logits of the continuation positions only
(``logits_to_keep``): rows x (longest continuation + 1) x vocabulary, not rows x longest x vocabulary
(at Qwen's 151,936 tokens, 20 GB in bf16 for a 65,536-token batch); a batch whose logits would take more
memory than its hidden states is split (``_logits_budget``). A sequence longer than the model's
``max_position_embeddings`` (prompts: less the tokens to generate) keeps its last tokens, as the
simulator's backend does (``sim.backends.TransformersBackend``): past them, learned absolute positions
(gpt2) fail with an index error and rotary ones run where the model never trained.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def _tools(tools: Any) -> Any:
    return json.loads(tools) if isinstance(tools, str) else tools


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]], tools: Any = None) -> str:
    """The prompt text a model continues (chat template + generation prompt)."""
    return tokenizer.apply_chat_template(messages, tools=_tools(tools), add_generation_prompt=True, tokenize=False)


def batches(lengths: Sequence[int], batch_size: int, max_tokens: int, tails: Sequence[int] | None = None,
            max_tail_tokens: int = 1 << 62) -> list[list[int]]:
    """Indices grouped longest first: each batch holds up to ``batch_size`` rows and, padded to its
    longest, up to ``max_tokens`` tokens (a longer row goes alone). Rows of a length batch together, so
    padding is small; activations, KV cache and (where attention materialises its scores, e.g. SDPA's
    math kernel on CPU with a padding mask) the scores, rows x heads x longest² <= ``max_tokens`` x heads
    x longest, stay bounded on long prompts. With ``tails`` (scoring: each row's logits positions), a
    batch also holds rows x its longest tail <= ``max_tail_tokens``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    tail = 0  # the longest tail of the last batch
    for i in order:
        own = tails[i] if tails else 0
        n = len(out[-1]) + 1 if out else 0
        if out and n <= batch_size and n * lengths[out[-1][0]] <= max_tokens and n * max(tail, own) <= max_tail_tokens:
            out[-1].append(i)
            tail = max(tail, own)
        else:
            out.append([i])
            tail = own
    return out


def _pad_id(tokenizer: Any) -> int:
    """What padded (masked) positions hold: the pad token, else end-of-sequence (as ``generate`` falls
    back to), else 0."""
    for t in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if isinstance(t, (list, tuple)):
            t = t[0] if t else None
        if t is not None:
            return int(t)
    return 0


def _position_limit(model: Any) -> int:
    """The model's positions (``max_position_embeddings``; gpt2's ``n_positions``), 0 = unknown."""
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return n if isinstance(n, int) and n > 0 else 0


def _logits_budget(model: Any, max_batch_tokens: int) -> int:
    """Logits positions a scoring forward may hold: as much memory as the hidden states of
    ``max_batch_tokens`` tokens (x hidden size / vocabulary; Qwen2.5-0.5B: 16,384 tokens -> 96 positions)."""
    cfg = getattr(model, "config", None)
    hidden, vocab = getattr(cfg, "hidden_size", 0), getattr(cfg, "vocab_size", 0)
    if not (isinstance(hidden, int) and isinstance(vocab, int) and hidden > 0 and vocab > 0):
        return max_batch_tokens
    return max(1, max_batch_tokens * hidden // vocab)


def _accepts(model: Any, name: str) -> bool:
    """Whether ``model.forward`` takes ``name`` (by name, or through ``**kwargs``)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _left_padded(rows: list[list[int]], pad: int) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` of the rows, left-padded to the longest."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for j, r in enumerate(rows):
        if r:
            ids[j, width - len(r):], att[j, width - len(r):] = torch.tensor(r, dtype=torch.long), 1
    return ids, att


def _cut(ids: list[int], keep: int) -> list[int]:
    return ids[len(ids) - keep:] if keep and len(ids) > keep else ids


def generate_replies(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, Any]]],
                     tools: Sequence[Any] | None = None, max_new_tokens: int = 128,
                     batch_size: int = 16, max_batch_tokens: int = 1 << 62) -> list[str]:
    """Greedy replies (up to the end-of-turn token) to each chat prompt, in the prompts' order;
    batched by length (``batches``: ``max_batch_tokens`` counts prompt and new tokens). A prompt longer
    than the model's positions less ``max_new_tokens`` keeps its last tokens (module docstring)."""
    import torch

    texts = [render_prompt(tokenizer, p, tools[i] if tools else None) for i, p in enumerate(prompts)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    limit = _position_limit(model)
    keep = max(limit - max_new_tokens, 1) if limit else 0
    cut = sum(len(r) > keep for r in ids) if keep else 0
    if cut:
        log.warning("%d of %d prompts are longer than the model's %d positions less %d new tokens: each keeps "
                    "its last %d tokens", cut, len(ids), limit, max_new_tokens, keep)
        ids = [_cut(r, keep) for r in ids]
    out: list[str] = [""] * len(texts)
    pad = _pad_id(tokenizer)
    model.eval()
    for group in batches([len(r) + max_new_tokens for r in ids], batch_size, max_batch_tokens):
        # left padding: every prompt ends where generation starts (generate derives positions from the mask)
        enc, att = _left_padded([ids[i] for i in group], pad)
        with torch.no_grad():
            gen = model.generate(input_ids=enc.to(model.device), attention_mask=att.to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
        for i, row in zip(group, gen[:, enc.shape[1]:]):
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
    batched by length (``batches``), logits of the continuation positions only (module docstring).

    The continuation's tokens are those of ``prefix + continuation`` past the longest common
    prefix with the tokenised ``prefix`` (robust to merges across the boundary); an empty one scores
    0. A sequence longer than the model's positions keeps its last tokens.
    """
    import torch

    rows, limit, cut = [], _position_limit(model), 0
    for prefix, cont in pairs:
        p_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        f_ids = tokenizer(prefix + cont, add_special_tokens=False)["input_ids"]
        kept = _cut(f_ids, limit)
        cut += len(kept) < len(f_ids)
        rows.append((kept, max(1, _common_prefix(p_ids, f_ids) - (len(f_ids) - len(kept)))))
    if cut:
        log.warning("%d of %d scored sequences are longer than the model's %d positions: each keeps its last %d "
                    "tokens", cut, len(rows), limit, limit)
    scores: list[float] = [0.0] * len(rows)
    model.eval()
    pad = _pad_id(tokenizer)
    todo = [i for i, (r, start) in enumerate(rows) if len(r) > start]  # an empty continuation scores 0
    for sub in batches([len(rows[i][0]) for i in todo], batch_size, max_batch_tokens,
                       [len(rows[i][0]) - rows[i][1] + 1 for i in todo], _logits_budget(model, max_batch_tokens)):
        group = [todo[k] for k in sub]
        batch = [rows[i] for i in group]
        keep = max(len(r) - start for r, start in batch) + 1  # the positions that predict a continuation token
        ids, att = _left_padded([r for r, _ in batch], pad)
        kw: dict[str, Any] = {}
        if _accepts(model, "position_ids"):  # left padding: absolute positions (gpt2) must start at each row
            kw["position_ids"] = (att.cumsum(-1) - 1).clamp(min=0).to(model.device)
        if _accepts(model, "logits_to_keep"):
            kw["logits_to_keep"] = keep
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=att.to(model.device), **kw).logits[:, -keep:]
        for j, (i, (r, start)) in enumerate(zip(group, batch)):  # one row's log-softmax at a time, not the batch's
            n = len(r) - start
            logp = torch.log_softmax(logits[j, keep - n - 1:keep - 1].float(), dim=-1)
            target = torch.tensor(r[start:], dtype=torch.long, device=logp.device)
            scores[i] = float(logp.gather(-1, target.unsqueeze(-1)).sum())
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
            pairs.append((prefix, full.removeprefix(prefix)))
    s = sequence_logprobs(model, tokenizer, pairs, batch_size, max_batch_tokens)
    return [(s[2 * i], s[2 * i + 1]) for i in range(len(rows))]
