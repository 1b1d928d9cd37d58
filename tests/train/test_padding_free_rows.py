"""``throughput.padding_free`` keeps the objective: each row is still cut at the recipe's ``max_length`` and
dropped when that leaves it no trainable token, then packed into ``micro_batch_tokens`` rows. Before, TRL's
``max_length`` became ``micro_batch_tokens`` and its packing skips the per-row cut: rows between the two
trained whole, and rows whose target lies past ``max_length`` trained instead of being dropped."""

from __future__ import annotations

from collections import Counter

import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from tracebridge.train.common import base_args
from tracebridge.train.config import SFTRecipeConfig
from tracebridge.train.models import tiny_model_and_tokenizer
from tracebridge.train.sft import row_cut_trainer_class, run_sft
from tracebridge.train.throughput import apply_throughput

torch.set_num_threads(1)
WORDS = ["read", "the", "file", "and", "count", "the", "rows", "of", "the", "table", "then", "report", "the", "total"]


def rows() -> list[dict]:
    """Short rows, rows longer than max_length=64 (cut inside the answer) and rows whose answer starts past it."""
    out = []
    for i, n in enumerate((3, 8, 30, 45, 90, 120, 5, 60)):
        user = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(n))
        answer = " ".join(WORDS[(i + 2 * j) % len(WORDS)] for j in range(12))
        out.append({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                    "tools": None})
    return out


def sequences(ds: Dataset) -> Counter:
    """The (input_ids, labels) sequences of a prepared set, packed or not."""
    got: Counter = Counter()
    for r in ds:
        lengths = r.get("seq_lengths") or [len(r["input_ids"])]
        start = 0
        for n in lengths:
            got[(tuple(r["input_ids"][start:start + n]), tuple(r["labels"][start:start + n]))] += 1
            start += n
    return got


def test_padding_free_packs_the_rows_the_unpacked_recipe_trains(tmp_path):
    rc = SFTRecipeConfig(max_steps=1, batch_size=2, max_length=64, logging_steps=1, save_steps=0)
    kwargs = base_args(rc, tmp_path / "a", 0) | {"packing": False, "assistant_only_loss": True, "padding_free": False}
    model, tok = tiny_model_and_tokenizer()
    ds = Dataset.from_list(rows())
    plain = SFTTrainer(model=model, args=SFTConfig(**kwargs), train_dataset=ds, processing_class=tok)
    want = sequences(plain.train_dataset)
    assert 0 < sum(want.values()) < len(ds)  # some rows are dropped: their answer starts past 64 tokens
    assert all(len(ids) <= 64 for ids, _ in want)
    pf, _ = apply_throughput("sft", kwargs, tiny_model_and_tokenizer()[0], {"padding_free": True, "micro_batch_tokens": 256})
    assert pf["max_length"] == 256
    cls = row_cut_trainer_class()
    packed = cls(model=model, args=SFTConfig(**pf), train_dataset=ds, processing_class=tok, row_max_length=64)
    assert "seq_lengths" in packed.train_dataset.column_names and len(packed.train_dataset) < sum(want.values())
    assert sequences(packed.train_dataset) == want
    assert packed.args.max_length == 256  # the packed rows' length is left as it was
    # what TRL's packing alone gave: every row, whole up to 256 tokens
    old = cls(model=model, args=SFTConfig(**pf), train_dataset=ds, processing_class=tok, row_max_length=None)
    assert sum(sequences(old.train_dataset).values()) == len(ds) and sequences(old.train_dataset) != want


def test_a_padding_free_trial_counts_the_rows_it_drops(tmp_path):
    model, tok = tiny_model_and_tokenizer()
    rc = SFTRecipeConfig(max_steps=1, batch_size=2, max_length=64, logging_steps=1, save_steps=0,
                         throughput={"padding_free": True, "micro_batch_tokens": 256})
    plain = SFTTrainer(model=model, args=SFTConfig(**base_args(rc, tmp_path / "p", 0) | {"assistant_only_loss": True}),
                       train_dataset=Dataset.from_list(rows()), processing_class=tok)
    dropped = len(rows()) - len(plain.train_dataset)
    _, res = run_sft(model, tok, rows(), rc, tmp_path / "sft", max_dropped=1.0)
    assert res.rows == len(rows()) and res.rows_dropped == dropped > 0
