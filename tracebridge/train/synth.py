"""Synthetic training data and models for throughput benchmarks (no network, no bundle).

* ``word_tokenizer``: a word-level tokenizer whose token ``t<i>`` is id ``i``, so text built from
  ids tokenizes back to exactly those ids (DPOTrainer only takes text; SFT takes ids).
* ``synth_sft`` / ``synth_dpo``: worker_sft-like agent conversations, deterministic by seed:
  system prompt, then (tool observation, assistant step) turns until a long-tailed target
  length (log-normal, a few hundred to a few thousand tokens); loss only on assistant turns.
  Token ids follow a Zipf law and assistant steps copy spans of earlier observations, so a
  model has something to learn beyond unigram frequencies and attention matters.
* ``model_from_yaml``: a random-init causal LM from a ``configs/model/*.yaml`` shape, built
  directly on the target device (pyyaml + transformers only; no pydantic/omegaconf).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

PAD, EOS = "<pad>", "<eos>"
FIRST_ID = 2  # ids 0 and 1 are pad and eos


def word_tokenizer(vocab_size: int) -> Any:
    """A fast tokenizer with vocabulary ``<pad>``=0, ``<eos>``=1, ``t2`` .. ``t{vocab_size-1}``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, EOS: 1} | {f"t{i}": i for i in range(FIRST_ID, vocab_size)}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token=EOS))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token=PAD, eos_token=EOS, unk_token=EOS)
    tok.model_max_length = 1 << 20
    return tok


def ids_text(ids: list[int]) -> str:
    """The text that ``word_tokenizer`` turns back into ``ids`` (leading space included)."""
    special = {0: PAD, 1: EOS}
    return "".join(f" {special[i]}" if i in special else f" t{i}" for i in ids)


class _Ids:
    """Zipf-distributed token ids from a seeded RNG."""

    def __init__(self, rng: random.Random, vocab_size: int, s: float = 1.1) -> None:
        self.rng = rng
        n = min(vocab_size - FIRST_ID, 50_000)
        weights = [1.0 / (r + 1) ** s for r in range(n)]
        total = sum(weights)
        acc, self.cdf = 0.0, []
        for w in weights:
            acc += w / total
            self.cdf.append(acc)
        perm = list(range(FIRST_ID, vocab_size))
        rng.shuffle(perm)
        self.rank_to_id = perm[:n]

    def draw(self, k: int) -> list[int]:
        import bisect

        r = self.rng.random
        last = len(self.cdf) - 1
        return [self.rank_to_id[min(bisect.bisect_left(self.cdf, r()), last)] for _ in range(k)]


def target_length(rng: random.Random, min_len: int, max_len: int, median: int = 900, sigma: float = 0.75) -> int:
    """A long-tailed (log-normal) length clipped to ``[min_len, max_len]``."""
    return max(min_len, min(max_len, int(rng.lognormvariate(math.log(median), sigma))))


def _conversation(ids: _Ids, rng: random.Random, length: int) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of one agent conversation of exactly ``length`` tokens."""
    seq, lab = [], []
    system = ids.draw(rng.randint(40, 160))
    seq += system
    lab += [-100] * len(system)
    observations: list[list[int]] = []
    while len(seq) < length:
        obs = ids.draw(rng.randint(30, max(40, min(700, length // 3))))
        observations.append(obs)
        seq += obs
        lab += [-100] * len(obs)
        step = ids.draw(rng.randint(10, 60))
        src = rng.choice(observations)
        if len(src) > 12:  # copy a span of an earlier observation: attention has something to do
            a = rng.randrange(0, len(src) - 8)
            step += src[a:a + rng.randint(4, min(64, len(src) - a))]
        step.append(1)  # end of turn (eos) is trained
        seq += step
        lab += step
    seq, lab = seq[:length], lab[:length]
    if all(x == -100 for x in lab):
        lab[-1] = seq[-1]
    return seq, lab


def synth_sft(n: int, vocab_size: int, seed: int = 0, min_len: int = 192, max_len: int = 4096,
              median: int = 900) -> list[dict[str, list[int]]]:
    """``n`` pre-tokenized SFT rows ``{"input_ids", "labels"}`` (labels -100 off assistant turns)."""
    rng = random.Random(seed)
    ids = _Ids(rng, vocab_size)
    rows = []
    for _ in range(n):
        seq, lab = _conversation(ids, rng, target_length(rng, min_len, max_len, median))
        rows.append({"input_ids": seq, "labels": lab})
    return rows


def synth_dpo(n: int, vocab_size: int, seed: int = 0, min_len: int = 192, max_len: int = 4096,
              median: int = 900) -> list[dict[str, str]]:
    """``n`` preference rows ``{"prompt", "chosen", "rejected"}`` as ``word_tokenizer`` text.

    The prompt is a conversation prefix (long-tailed length); chosen and rejected are two
    different assistant steps of 20..400 tokens (at most ``max_len/4``); prompt + completion fits ``max_len``.
    """
    rng = random.Random(seed + 1)
    ids = _Ids(rng, vocab_size)
    rows = []
    for _ in range(n):
        lens = [rng.randint(min(20, max_len // 8), max(min(400, max_len // 4), 2)) for _ in range(2)]
        plen = max(min_len // 2, target_length(rng, min_len, max_len, median) - max(lens))
        plen = max(8, min(plen, max_len - max(lens) - 1))
        prompt, _ = _conversation(ids, rng, plen)
        chosen, rejected = (ids.draw(k - 1) + [1] for k in lens)
        rows.append({"prompt": ids_text(prompt), "chosen": ids_text(chosen), "rejected": ids_text(rejected)})
    return rows


def read_shape(path: str | Path) -> dict[str, Any]:
    """The fields of a ``configs/model/*.yaml`` file (header comments ignored)."""
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}


def hf_config(shape: dict[str, Any], vocab_size: int | None = None, pad_id: int = 0, eos_id: int = 1) -> Any:
    """A transformers ``Qwen2Config``/``LlamaConfig`` of ``shape`` (same fields as the model factory)."""
    from transformers import LlamaConfig, Qwen2Config

    kw = {"vocab_size": vocab_size or shape["vocab_size"], "hidden_size": shape["hidden_size"],
          "intermediate_size": shape["intermediate_size"], "num_hidden_layers": shape["num_hidden_layers"],
          "num_attention_heads": shape["num_attention_heads"],
          "num_key_value_heads": shape["num_key_value_heads"],
          "max_position_embeddings": shape.get("max_position_embeddings", 32768),
          "tie_word_embeddings": shape.get("tie_word_embeddings", True),
          "rope_parameters": {"rope_type": "default", "rope_theta": float(shape.get("rope_theta", 1e6))},
          "bos_token_id": None, "eos_token_id": eos_id, "pad_token_id": pad_id}
    if shape.get("head_dim"):
        kw["head_dim"] = shape["head_dim"]
    return (LlamaConfig if shape.get("arch") == "llama" else Qwen2Config)(**kw)


def model_from_yaml(path: str | Path, device: str, dtype: Any, vocab_size: int | None = None, seed: int = 0,
                    attn: str = "sdpa", init_std: float | None = None) -> Any:
    """A seeded random-init causal LM of the YAML's shape, created directly on ``device``.

    Args:
        path: a ``configs/model`` YAML.
        device: ``"cuda"`` or ``"cpu"``.
        dtype: torch dtype of the weights.
        vocab_size: embedding rows (default: the YAML's ``vocab_size``, else 1024).
        seed: init seed.
        attn: transformers attention implementation.
        init_std: ``initializer_range`` override (a larger one makes a tiny model's outputs
            depend strongly on attention, for equivalence tests).
    """
    import torch
    from transformers import AutoModelForCausalLM

    shape = read_shape(path)
    cfg = hf_config(shape, vocab_size or shape.get("vocab_size") or 1024)
    if init_std is not None:
        cfg.initializer_range = init_std
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)
    return model
