"""``data.prepared_cache``: the first trial of a key stores TRL's prepared SFT set, the next loads it
and trains on the same rows with the same loss curve; other data or arguments miss; damaged entries
are prepared again; concurrent trials of one key prepare once."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch

from tracebridge.train.config import SFTRecipeConfig
from tracebridge.train.data import load_role_data, to_sft_records
from tracebridge.train.models import tiny_model_and_tokenizer
from tracebridge.train.prepared import NOT_DATA_ARGS, PreparedCache, prepare_key
from tracebridge.train.sft import run_sft

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "train_views"


def _records(role: str = "verifier") -> list[dict]:
    d = load_role_data(FIXTURE, role)
    return to_sft_records(d.split(d.sft, "train"))


def _entries(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]


@pytest.mark.parametrize("packing", [False, True])
def test_second_trial_loads_what_the_first_prepared_and_trains_the_same(tmp_path: Path, packing: bool) -> None:
    cache, recs = tmp_path / "prepared", _records()
    rc = SFTRecipeConfig(max_steps=6, lr=3e-3, logging_steps=1, batch_size=4, packing=packing)
    plain_model, plain = run_sft(*tiny_model_and_tokenizer(), recs, rc, tmp_path / "plain")
    _, first = run_sft(*tiny_model_and_tokenizer(), recs, rc, tmp_path / "a", prepared_cache=str(cache))
    rc2 = SFTRecipeConfig(max_steps=6, lr=3e-3, logging_steps=1, batch_size=4, packing=packing)
    second_model, second = run_sft(*tiny_model_and_tokenizer(), recs, rc2, tmp_path / "b", seed=0,
                                   prepared_cache=str(cache))
    assert (plain.prepared, first.prepared, second.prepared) == ("", "stored", "loaded")
    assert len(_entries(cache)) == 1
    assert first.loss_curve == plain.loss_curve == second.loss_curve
    assert plain.rows_dropped == second.rows_dropped == 0  # packed rows hold several (seq_lengths), none lost
    for (n, a), b in zip(plain_model.named_parameters(), second_model.parameters()):
        assert torch.equal(a, b), n


def test_dpo_trials_share_the_prepared_pairs_and_train_the_same(tmp_path: Path) -> None:
    from tracebridge.train.config import DPORecipeConfig
    from tracebridge.train.data import to_pref_records
    from tracebridge.train.dpo import run_dpo

    d = load_role_data(FIXTURE, "worker")
    pairs, cache = to_pref_records(d.split(d.pref, "train")), str(tmp_path / "prepared")
    runs = {}
    for name, cached, precompute in (("plain", None, False), ("a", cache, False), ("b", cache, False),
                                     ("c", cache, True)):
        rc = DPORecipeConfig(max_steps=4, lr=2e-3, logging_steps=1, batch_size=4,
                             throughput={"precompute_ref": True} if precompute else {})
        model, res = run_dpo(tiny_model_and_tokenizer()[0], tiny_model_and_tokenizer()[1], pairs, rc,
                             tmp_path / name, prepared_cache=cached)
        runs[name] = (model, res)
    assert [runs[k][1].prepared for k in "abc"] == ["stored", "loaded", "loaded"]  # ref log-probs: not data
    assert runs["plain"][1].loss_curve == runs["a"][1].loss_curve == runs["b"][1].loss_curve
    for (n, x), y in zip(runs["plain"][0].named_parameters(), runs["b"][0].parameters()):
        assert torch.equal(x, y), n

    # a first trial with reference log-probs precomputed stores the set from before them (they depend
    # on the model), and stores it before computing them: the trials waiting on the key start at once
    other = tmp_path / "other"
    rc = DPORecipeConfig(max_steps=1, batch_size=4, throughput={"precompute_ref": True})
    _, res = run_dpo(*tiny_model_and_tokenizer(), pairs, rc, tmp_path / "d", prepared_cache=str(other))
    assert res.prepared == "stored"
    (entry,) = _entries(other)
    from datasets import load_from_disk

    cols = load_from_disk(str(entry)).column_names
    assert "chosen_ids" in cols and not [c for c in cols if "ref" in c], cols


def test_other_rows_tokenizer_or_data_arguments_miss_and_others_hit(tmp_path: Path) -> None:
    recs = _records()
    _, tok = tiny_model_and_tokenizer()
    args = {"max_length": 512, "packing": False, "learning_rate": 1e-3, "seed": 0}
    key = prepare_key("sft", recs, tok, args)
    assert prepare_key("sft", recs, tok, {**args, "learning_rate": 5e-4, "seed": 3}) == key  # not data args
    assert {"learning_rate", "seed"} <= NOT_DATA_ARGS
    assert prepare_key("sft", recs, tok, {**args, "max_length": 256}) != key
    assert prepare_key("sft", recs, tok, {**args, "packing": True}) != key
    assert prepare_key("sft", recs[:-1], tok, args) != key
    assert prepare_key("dpo", recs, tok, args) != key
    _, other_tok = tiny_model_and_tokenizer()
    assert prepare_key("sft", recs, other_tok, args) == key  # an equal tokenizer
    other_tok.add_tokens(["<extra_token>"])
    assert prepare_key("sft", recs, other_tok, args) != key
    tok.chat_template = (tok.chat_template or "") + " "
    assert prepare_key("sft", recs, tok, args) != key


def test_a_damaged_entry_is_prepared_again(tmp_path: Path) -> None:
    cache, recs = tmp_path / "prepared", _records()
    rc = SFTRecipeConfig(max_steps=2, logging_steps=1, batch_size=4)
    run_sft(*tiny_model_and_tokenizer(), recs, rc, tmp_path / "a", prepared_cache=str(cache))
    (entry,) = _entries(cache)
    for f in entry.glob("*.arrow"):
        f.write_bytes(b"torn")
    _, res = run_sft(*tiny_model_and_tokenizer(), recs, rc, tmp_path / "b", prepared_cache=str(cache))
    assert res.prepared == "stored"
    _, res = run_sft(*tiny_model_and_tokenizer(), recs, rc, tmp_path / "c", prepared_cache=str(cache))
    assert res.prepared == "loaded"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot create"):
        PreparedCache(tmp_path / "file" / "prepared")
    # unused for longer than the limit: deleted when another entry is stored
    pc = PreparedCache(cache)
    (entry,) = _entries(cache)
    os.utime(entry, (time.time() - 8 * 86400,) * 2)
    assert pc.evict() == [entry.name] and _entries(cache) == []
    assert PreparedCache("auto").root.name.startswith("tracebridge-prepared-")


def _trial(args: tuple[str, str]) -> str:
    out, cache = args
    torch.set_num_threads(1)
    rc = SFTRecipeConfig(max_steps=1, logging_steps=1, batch_size=4)
    return run_sft(*tiny_model_and_tokenizer(), _records(), rc, Path(out), prepared_cache=cache)[1].prepared


def test_concurrent_trials_of_one_key_prepare_once(tmp_path: Path) -> None:
    """Two trials of one key started at once: one prepares and stores, the other waits on the key's lock
    and loads (a third trial took the same path as the second, at the cost of one more interpreter)."""
    cache = str(tmp_path / "prepared")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.map(_trial, [(str(tmp_path / f"t{i}"), cache) for i in range(2)], chunksize=1)
    assert sorted(got) == ["loaded", "stored"]


def test_bench_prepare_smoke() -> None:
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, str(root / "scripts/bench_prepare.py"), "--smoke"], capture_output=True,
                         text=True, timeout=300, check=True, cwd=root)
    lines = res.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio prepare/load: \d+\.\d\d", lines[-1]), lines[-1]
    assert lines[0].startswith("input: 20 SFT rows of worker")
