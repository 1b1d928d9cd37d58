"""Model factory: tiny tokenizer round trip, chat template contract, local save/load, real shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tracebridge.config import ConfigError, load_config
from tracebridge.schema import roles
from tracebridge.train.config import LoraConfig, ModelConfig, SFTRecipeConfig
from tracebridge.train.data import load_role_data, to_sft_records
from tracebridge.train.models import (
    CHAT_TEMPLATE,
    architecture_config,
    build_model_and_tokenizer,
    save_model_and_tokenizer,
    tiny_model_and_tokenizer,
)
from tracebridge.train.sft import run_sft

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
VIEWS = Path(__file__).resolve().parents[1] / "data" / "train_views"
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "read a file",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                          "required": ["path"]}}}]


def test_ids_survive_save_and_autotokenizer_load(tmp_path):
    from transformers import AutoTokenizer

    _, tok = tiny_model_and_tokenizer()
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = ("Plan progress: {\"completed\": 2}\nverdict: replan\n<tool_call>{\"name\": \"grep\"}</tool_call>"
            " héllo wörld 12345 😀\r\n\ttabs")
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.decode(again(text)["input_ids"]) == text
    assert again.chat_template == CHAT_TEMPLATE and again.eos_token == "<|im_end|>"
    assert tok.convert_tokens_to_ids("<tool_call>") != tok.unk_token_id


def test_assistant_mask_covers_reply_and_end_of_turn():
    _, tok = tiny_model_and_tokenizer()
    msgs = roles.messages("verifier", "Plan progress: {}", "verdict: end\nfeedback: done")
    out = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(masked) == "verdict: end\nfeedback: done<|im_end|>"
    # the generation prompt is a prefix of the full conversation (DPO and eval rely on it)
    prompt = tok.apply_chat_template(msgs[:-1], add_generation_prompt=True, tokenize=False)
    assert tok.apply_chat_template(msgs, tokenize=False).startswith(prompt)


def test_tool_calls_render_in_the_roles_format_and_tools_are_listed():
    _, tok = tiny_model_and_tokenizer()
    call = roles.tool_call_message("c1", "read_file", {"path": "a.txt", "n": 3})
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}, call,
            {"role": "tool", "content": {"ok": True}}, {"role": "assistant", "content": "3 lines"}]
    text = tok.apply_chat_template(msgs, tools=TOOLS, tokenize=False)
    assert "<|im_start|>assistant\n" + roles.tool_call_text("read_file", {"path": "a.txt", "n": 3}) + "<|im_end|>" in text
    assert '"name": "read_file", "description": "read a file"' in text
    # arguments given as a JSON string (how views avoid Arrow's struct unification) render the same
    call["tool_calls"][0]["function"]["arguments"] = '{"path": "a.txt", "n": 3}'
    assert tok.apply_chat_template(msgs, tools=TOOLS, tokenize=False) == text
    reply = roles.parse_worker_reply(roles.tool_call_text("read_file", {"path": "a.txt"}))
    assert reply.tool == "read_file" and reply.args == {"path": "a.txt"}


def test_pretrained_load_from_a_local_directory(tmp_path):
    model, tok = tiny_model_and_tokenizer(seed=3)
    save_model_and_tokenizer(model, tok, tmp_path / "m")
    cfg = ModelConfig(init="pretrained", path=str(tmp_path / "m"), name="local")
    assert cfg.validate() == []
    loaded, ltok = build_model_and_tokenizer(cfg)
    ids = torch.tensor([tok("verdict: end")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-6)
    assert ltok("verdict: end")["input_ids"] == ids[0].tolist()
    # random init is seeded: same seed, same weights; other seed, other weights
    a, _ = tiny_model_and_tokenizer(seed=3)
    b, _ = tiny_model_and_tokenizer(seed=4)
    wa, wb = a.get_input_embeddings().weight, b.get_input_embeddings().weight
    assert torch.equal(wa, model.get_input_embeddings().weight) and not torch.equal(wa, wb)


def test_every_model_yaml_validates_and_real_shapes_have_their_parameter_count():
    _, tok = tiny_model_and_tokenizer()
    expected = {"qwen2.5-0.5b": 494e6, "qwen2.5-1.5b": 1.54e9, "llama-3.2-1b": 1.24e9, "tiny": 0.14e6}
    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = load_config(ModelConfig, path)
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(architecture_config(cfg, tok))
        n = sum(p.numel() for p in model.parameters())
        assert n == pytest.approx(expected[cfg.name], rel=0.02), (cfg.name, n)


def test_llama_arch_builds_and_runs():
    model, tok = tiny_model_and_tokenizer(arch="llama")
    assert model.config.model_type == "llama"
    out = model(torch.tensor([tok("hello")["input_ids"]]))
    assert out.logits.shape[-1] == len(tok)


def test_bad_model_config_lists_every_problem():
    probs = ModelConfig(arch="gpt9", init="pretrained", dtype="float16", num_key_value_heads=3).validate()
    text = "\n".join(probs)
    for key in ("model.arch", "model.path", "model.dtype", "model.num_key_value_heads"):
        assert key in text


@pytest.mark.parametrize("arch,names", [
    ("gpt2", {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_inner": 128, "n_positions": 2048}),  # its own names
    ("mistral", {"hidden_size": 64, "num_key_value_heads": 2, "intermediate_size": 128, "head_dim": 16}),
    ("phi3", {"hidden_size": 64, "num_hidden_layers": 2, "num_key_value_heads": 2, "intermediate_size": 128}),
])
def test_other_architectures_train_save_and_load_as_pretrained(tmp_path, arch, names):
    """Random init of any causal LM: the shape lands on the config's own names, a real SFT step
    runs, and the saved folder loads back with init=pretrained to the same logits."""
    model, tok = tiny_model_and_tokenizer(arch=arch)
    assert model.config.model_type == arch and model.config.vocab_size == len(tok)
    assert {k: getattr(model.config, k) for k in names} == names
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    d = load_role_data(VIEWS, "verifier")
    rc = SFTRecipeConfig(max_steps=2, lr=3e-3, logging_steps=1, batch_size=4, max_length=256)
    model, res = run_sft(model, tok, to_sft_records(d.split(d.sft, "train")), rc, tmp_path / "sft")
    assert res.global_step == 2 and all(6 < p["loss"] < 8 for p in res.loss_curve)  # ~ln(1024) at init
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
    cfg = ModelConfig(arch=arch, init="pretrained", path=res.checkpoint_dir)
    assert cfg.validate() == []
    loaded, ltok = build_model_and_tokenizer(cfg)
    ids = torch.tensor([tok("verdict: end")["input_ids"]])
    model.eval()
    with torch.no_grad():
        assert type(loaded) is type(model) and torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-5)
    assert ltok("verdict: end")["input_ids"] == ids[0].tolist()


def test_unknown_or_non_causal_arch_is_a_config_error_that_names_valid_ones():
    (typo,) = ModelConfig(arch="mistrall").validate()
    assert "not a transformers model_type" in typo and "did you mean mistral" in typo and "gpt2" in typo
    (t5,) = ModelConfig(arch="t5").validate()
    assert "T5Config has no causal-LM class" in t5 and "qwen2, llama" in t5
    _, tok = tiny_model_and_tokenizer()
    with pytest.raises(ConfigError, match="model.arch=t5"):
        architecture_config(ModelConfig(arch="t5"), tok)


@pytest.mark.parametrize("arch, targets", [("gpt2", "all-linear"), ("qwen2", {"q_proj", "k_proj", "v_proj", "o_proj"})])
def test_lora_default_targets_fit_the_architecture(tmp_path, arch, targets):
    """The default LoRA targets are llama/qwen2's attention projections; a model without them (gpt2)
    gets adapters on every linear layer instead of peft's "target modules not found"."""
    from tracebridge.train.common import peft_config

    model, tok = tiny_model_and_tokenizer(arch=arch)
    assert peft_config(LoraConfig(enabled=True), model).target_modules == targets
    d = load_role_data(VIEWS, "verifier")
    rc = SFTRecipeConfig(max_steps=2, lr=3e-3, logging_steps=1, batch_size=4, max_length=256,
                         lora=LoraConfig(enabled=True))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model, res = run_sft(model, tok, to_sft_records(d.split(d.sft, "train")), rc, tmp_path / "sft")
    assert res.global_step == 2 and all(p["loss"] > 0 for p in res.loss_curve)
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p)]
    assert changed  # the adapters trained (merged back into the weights they wrap)
    explicit = peft_config(LoraConfig(enabled=True, target_modules=["q_proj"]), tiny_model_and_tokenizer(arch="gpt2")[0])
    assert explicit.target_modules == {"q_proj"}  # what a user names is kept (peft reports a miss)
