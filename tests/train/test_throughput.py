"""Throughput levers on CPU: config checks, packed attention and in-model unpadding against the
padded default path (and a planted bug they must catch), FLOPs by hand, the token meter, the
recipes wired to a throughput block, and the GPU benchmark's device script in smoke mode."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tracebridge.train import flops as fl
from tracebridge.train import packing, synth
from tracebridge.train.bench import TokenMeter, profile_summary
from tracebridge.train.equivalence import (
    compare,
    kernel_order_floor,
    packed_batch,
    padded_batch,
    token_logprobs,
)
from tracebridge.train.throughput import apply_throughput, parse_throughput, throughput_problems

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/model/tiny.yaml"
torch.set_num_threads(1)


def _model(std: float = 0.4):
    """A tiny model whose outputs depend strongly on attention (large init)."""
    return synth.model_from_yaml(TINY, "cpu", torch.float32, vocab_size=512, seed=0, init_std=std)


@pytest.fixture(scope="module")
def rows():
    return synth.synth_sft(5, 512, seed=3, min_len=24, max_len=160, median=70)


# ---------------------------------------------------------------------------- config
def test_unknown_and_bad_options_are_all_reported_with_a_fix():
    p = throughput_problems("sft", {"padding_fre": True, "liger": True})
    assert p == ["sft.throughput.padding_fre: unknown throughput option; did you mean padding_free?"]
    p = throughput_problems("sft", {"attention": "flash", "liger": True, "compile": True, "precompute_ref": True,
                                    "batch_size": -1})
    assert len(p) == 4 and any("attention=flash" in x for x in p) and any("liger/compile" in x for x in p)
    assert any("only the dpo recipe" in x for x in p) and any("batch_size=-1" in x for x in p)
    assert throughput_problems("dpo", {"precompute_ref": True}) == []
    with pytest.raises(ValueError, match="attention=flash"):
        parse_throughput("dpo", {"attention": "flash"})


def test_train_config_validation_covers_the_throughput_blocks():
    from tracebridge.train.config import TrainConfig

    cfg = TrainConfig()
    cfg.train.throughput = {"micro_batch_token": 8192}
    cfg.dpo.throughput = {"precompute_ref": True}
    assert cfg.validate() == [("train.throughput.micro_batch_token: unknown throughput option; "
                               "did you mean micro_batch_tokens?")]


def test_empty_block_changes_nothing_and_levers_change_the_trainer_arguments():
    m = _model()
    base = {"max_length": 1024, "per_device_train_batch_size": 8, "gradient_checkpointing": True}
    args, _ = apply_throughput("sft", base, m, {})
    assert args == base and m.tb_throughput == [] and m.config._attn_implementation == "sdpa"
    args, m = apply_throughput("sft", base, m, {"padding_free": True, "micro_batch_tokens": 4096,
                                                "gradient_checkpointing": False, "dataloader_workers": 2})
    assert args["packing"] and args["padding_free"] and args["packing_strategy"] == "bfd"
    assert args["max_length"] == 4096 and args["per_device_train_batch_size"] == 1
    assert args["gradient_checkpointing"] is False and args["dataloader_num_workers"] == 2
    assert m.config._attn_implementation == packing.SEGMENTS  # CPU: the exact per-sequence backend
    args, _ = apply_throughput("dpo", base, _model(), {"precompute_ref": True, "batch_size": 3})
    assert args["precompute_ref_log_probs"] and args["precompute_ref_batch_size"] == 6
    with pytest.raises(ValueError, match="micro_batch_tokens=512: smaller than max_length=1024"):
        apply_throughput("sft", base, _model(), {"padding_free": True, "micro_batch_tokens": 512})
    with pytest.raises(ValueError, match="varlen"):  # no CUDA here
        apply_throughput("sft", {}, _model(), {"padding_free": True, "attention": "varlen"})


# ---------------------------------------------------------------------------- packed attention
def test_packed_row_gives_the_padded_batch_logprobs_and_a_cross_sequence_leak_does_not(rows):
    m = _model()
    ref = token_logprobs(m, padded_batch(rows, "cpu"))
    opt = copy.deepcopy(m)
    apply_throughput("sft", {}, opt, {"padding_free": True})
    batch = packed_batch(rows, "cpu")
    got = token_logprobs(opt, batch)
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-4)
    n = batch["input_ids"].shape[1]  # planted bug: one long sequence, tokens see earlier rows
    leak = dict(batch, cu_seq_lens_q=torch.tensor([0, n], dtype=torch.int32), max_length_q=n)
    assert (token_logprobs(opt, leak) - ref).abs().mean() > 1e-2
    pos_only = {k: batch[k] for k in ("input_ids", "position_ids", "labels")}  # boundaries from position ids
    assert torch.allclose(token_logprobs(opt, pos_only), ref, atol=1e-4)


def test_unpadding_inside_the_model_matches_padded_forward_and_gradients(rows):
    m = _model()
    batch = padded_batch(rows, "cpu")
    ref = token_logprobs(m, batch)
    (-ref.mean()).backward()
    g_ref = {n: p.grad.clone() for n, p in m.named_parameters()}
    opt = copy.deepcopy(m)
    opt.zero_grad(set_to_none=True)
    apply_throughput("dpo", {}, opt, {"padding_free": True})
    got = token_logprobs(opt, batch)
    (-got.mean()).backward()
    assert packing.backbone_of(opt)._tb_unpadder.calls == 1
    assert torch.allclose(got, ref, atol=1e-4)
    for n, p in opt.named_parameters():
        assert torch.allclose(p.grad, g_ref[n], atol=1e-5, rtol=1e-4), n


def test_noise_floor_comes_from_kernel_order_not_only_a_rerun_and_the_check_keeps_its_power(rows):
    m = _model()
    batch = padded_batch(rows, "cpu")
    ref = token_logprobs(m, batch).detach()
    floor, used = kernel_order_floor(m, batch, ref)
    assert "sdpa_math" in used and 0 < floor["mean_abs"] <= floor["max_abs"] < 1e-3
    res = compare(m, "sft", {"padding_free": True}, rows)
    assert res["floor_perturbations"][:2] == ["one_row_batches", "sdpa_math"]
    assert res["floor"]["mean_abs"] == max(res["floor_rows"]["mean_abs"], res["floor_kernel"]["mean_abs"]) > 0
    assert res["ok"] and res["discriminative"], res  # a cross-sequence leak is still far outside


def test_generation_and_cached_forwards_pass_through_untouched(rows):
    m = _model()
    opt = copy.deepcopy(m)
    apply_throughput("dpo", {}, opt, {"padding_free": True})
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])  # left padding, as generate pads
    am = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    a = m.generate(input_ids=ids, attention_mask=am, max_new_tokens=4, do_sample=False, pad_token_id=0)
    b = opt.generate(input_ids=ids, attention_mask=am, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(a, b) and packing.backbone_of(opt)._tb_unpadder.calls == 0


def test_compile_lever_keeps_outputs(rows):
    m = _model()
    opt = copy.deepcopy(m)
    assert packing.compile_blocks(opt, backend="eager") == 3 * len(packing.backbone_of(opt).layers)
    batch = padded_batch(rows[:2], "cpu")
    assert torch.allclose(token_logprobs(opt, batch), token_logprobs(m, batch), atol=1e-5)


# ---------------------------------------------------------------------------- FLOPs, meter, profile
def test_flops_by_hand_and_against_the_real_qwen_shape():
    s = fl.Shape(hidden=4, intermediate=8, layers=2, heads=2, kv_heads=1, head_dim=2, vocab=10)
    assert s.block_params == 2 * (4 * 2 * 2 + 2 * 4 * 1 * 2 + 2 * 2 * 4 + 3 * 4 * 8) == 288
    st = fl.TokenStats.of_lengths([3, 5], loss_tokens=4)
    assert (st.tokens, st.sum_sq_len) == (8, 34)
    assert fl.train_flops(s, st) == 6 * 288 * 8 + 6 * 40 * 4 + 6 * 2 * 2 * 2 * 34
    assert fl.dpo_flops(s, st) == pytest.approx(4 / 3 * fl.train_flops(s, st))
    assert fl.mfu(989e12, 2.0, fl.peak_flops("NVIDIA H100 80GB HBM3")) == pytest.approx(0.5)
    assert fl.peak_flops("NVIDIA H200") == 989e12 and fl.peak_flops("NVIDIA H100 PCIe") == 756e12
    shape = synth.read_shape(ROOT / "configs/model/qwen2.5-0.5b.yaml")
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        m = AutoModelForCausalLM.from_config(synth.hf_config(shape))
    real = sum(p.numel() for n, p in m.model.layers.named_parameters() if p.dim() == 2)
    assert fl.Shape.from_config(m.config).block_params == real  # every layer matmul, nothing else


def test_token_meter_counts_real_tokens_of_padded_and_packed_batches(rows):
    meter = TokenMeter()
    meter.active = True
    pad, pack = padded_batch(rows, "cpu"), packed_batch(rows, "cpu")
    meter(None, (), pad)
    meter(None, (), pack)
    lens = [len(r["input_ids"]) for r in rows]
    scored = sum(sum(x != -100 for x in r["labels"][1:]) for r in rows)
    s = meter.stats()
    assert s.tokens == 2 * sum(lens) and s.sum_sq_len == 2 * sum(n * n for n in lens)
    assert s.sequences == 2 * len(rows) and s.loss_tokens == 2 * scored


def test_profile_summary_groups_operator_time():
    m = _model()
    with torch.profiler.profile() as prof:
        token_logprobs(m, padded_batch(synth.synth_sft(2, 512, min_len=20, max_len=60, median=40), "cpu"))
    p = profile_summary(prof, wall_s=10.0)
    assert p["share"]["matmul"] > 0 and abs(sum(p["share"].values()) - 1) < 1e-6 and p["top"]


# ---------------------------------------------------------------------------- data
def test_synthetic_data_is_deterministic_long_tailed_and_tokenizes_back():
    a = synth.synth_sft(40, 1000, seed=1, max_len=2048)
    assert a == synth.synth_sft(40, 1000, seed=1, max_len=2048) != synth.synth_sft(40, 1000, seed=2, max_len=2048)
    lens = sorted(len(r["input_ids"]) for r in a)
    assert 192 <= lens[0] and lens[-1] <= 2048 and lens[-1] > 2 * lens[len(lens) // 2]
    assert all(0 < sum(x != -100 for x in r["labels"]) < len(r["labels"]) for r in a)
    tok = synth.word_tokenizer(1000)
    pref = synth.synth_dpo(5, 1000, seed=1, max_len=512)
    for r in pref:
        ids = tok(r["prompt"] + r["chosen"])["input_ids"]
        assert len(ids) <= 512 and ids[-1] == tok.eos_token_id and r["chosen"].endswith(synth.EOS)
    assert tok(synth.ids_text([0, 7, 999, 1]))["input_ids"] == [0, 7, 999, 1]


# ---------------------------------------------------------------------------- recipes and device script
def test_recipes_train_with_a_throughput_block(tmp_path):
    from tracebridge.train.config import DPORecipeConfig, SFTRecipeConfig
    from tracebridge.train.dpo import run_dpo
    from tracebridge.train.gpu_check import synth_rows
    from tracebridge.train.models import tiny_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    model, tok = tiny_model_and_tokenizer()
    sft_rows, pref_rows = synth_rows("verifier", 12, 200)
    common = {"max_steps": 2, "batch_size": 4, "max_length": 256, "logging_steps": 1, "save_steps": 0}
    rc = SFTRecipeConfig(**common, throughput={"padding_free": True, "micro_batch_tokens": 1024,
                                               "gradient_checkpointing": False})
    model, res = run_sft(model, tok, sft_rows, rc, tmp_path / "sft")
    assert res.global_step == 2 and model.tb_throughput[-1] == "padding_free(attention=tb_segments)"
    rc = DPORecipeConfig(**common, throughput={"padding_free": True, "precompute_ref": True})
    model, res = run_dpo(model, tok, pref_rows, rc, tmp_path / "dpo")
    assert res.global_step == 2 and packing.backbone_of(model)._tb_unpadder.calls >= 3  # precompute + steps


REFUSE = """import importlib.abc, sys
class _Refuse(importlib.abc.MetaPathFinder):  # the GPU machine has none of these
    def find_spec(self, name, path, target=None):
        if "bench_train_gpu" in (sys.argv[0] if sys.argv else "") and name.split(".")[0] in REFUSED:
            raise ImportError("refused on the GPU path: " + name)
REFUSED = ("pydantic", "omegaconf", "ray")
sys.meta_path.insert(0, _Refuse())
"""


def test_device_script_runs_the_benchmark_and_the_gpu_check_in_smoke_mode(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(REFUSE)  # bench_train_gpu.py must not need pydantic/omegaconf/ray
    out = tmp_path / "out"
    env = dict(os.environ, SMOKE="1", OUT=str(out), PYTHON=str(ROOT / ".venv/bin/python"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(site), CHECK_ARGS="--help")  # gpu_check itself is tested in test_gpu_check.py
    if not Path(env["PYTHON"]).exists():
        env["PYTHON"] = "python3"
    r = subprocess.run(["bash", str(ROOT / "scripts/gpu_bench.sh")], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1].startswith("ratio optimized/TRL default tokens/s: dpo tiny")
    summary = json.loads((out / "summary.json").read_text())
    runs = [x for x in summary["results"] if "tokens_per_s" in x]
    assert all(x["tokens_per_s"] > 0 and x["timed_steps"] == 2 for x in runs)
    names = [x["case"] for x in runs]
    assert names[:4] == ["tiny sft TRL default", "tiny sft optimized", "tiny dpo TRL default", "tiny dpo optimized"]
    assert len(names) == 8 and names[-1] == "tiny sft + liger kernels"  # the ablation ladder, one lever per row
    assert runs[4]["levers"] == ["gradient_checkpointing=False"] and "packing" in runs[5]["levers"][-2]
    eq = [x for x in summary["results"] if "grad_cosine" in x]
    assert len(eq) == 2 and all(x["ok"] and x["discriminative"] for x in eq)
    assert summary["equivalence_ok"] and set(summary["ratios"]) == {"sft_tiny", "dpo_tiny"}
    assert "usage: " in (out / "gpu_check.log").read_text()  # invoked from the same device call



@pytest.mark.parametrize("argv, expect", [
    (["--cpu-smoke", "--recipes", "sfx"], "--recipes sfx: unknown sfx; choose from sft,dpo"),
    (["--shapes", "nope.yaml"], "--shapes: no such model YAML nope.yaml"),
    (["--cpu-smoke", "--steps", "0"], "argument --steps: 0: must be >= 1"),
])
def test_bench_script_refuses_a_bad_flag_before_any_case(argv, expect):
    """--recipes sfx ran every case then died on a KeyError in the report; --shapes nope.yaml was a
    FileNotFoundError traceback; --steps 0 timed nothing. Each now exits 2 naming the flag."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts/bench_train_gpu.py"), *argv], capture_output=True, text=True,
                       timeout=120, check=False, cwd=ROOT)
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
