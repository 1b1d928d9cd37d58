"""Model factory: a tokenizer and a causal LM from a ``ModelConfig``.

* ``init: random`` builds any transformers causal-LM architecture (``arch`` = a ``model_type``:
  qwen2, llama, mistral, phi3, gpt2 ...) from the config's shape with seeded random weights.
  The tokenizer is a byte-level BPE trained here with ``tokenizers`` on a built-in corpus, with
  the *same* normaliser and pre-tokenizer as transformers' ``Qwen2Tokenizer`` (so ids survive
  ``save_pretrained`` → ``AutoTokenizer``), or the one in ``path`` when given. Real shapes
  (``configs/model/qwen2.5-0.5b.yaml`` ...) set ``vocab_size`` to the real embedding size; rows
  past the tiny tokenizer stay unused.
* ``init: pretrained`` loads weights and tokenizer from ``path`` (a local directory, or a
  hub name where the user has a hub).

The ``tracebridge`` chat template is ChatML with ``{% generation %}`` markers around each
assistant turn (end-of-turn token inside, for assistant-only loss), renders assistant
``tool_calls`` exactly as ``tracebridge.schema.roles.tool_call_text`` does and lists a
``tools`` argument in the system turn. Heavy imports happen inside the functions.
"""

from __future__ import annotations

import copy
import functools
import logging
import random
from pathlib import Path
from typing import Any

from tracebridge.schema.roles import DEFAULT_SYSTEM_PROMPTS, VERDICTS, tool_call_text
from tracebridge.train.model_config import ModelConfig, ModelInit

log = logging.getLogger(__name__)

EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [PAD_TOKEN, "<|im_start|>", EOS_TOKEN]
TOOL_TOKENS = ["<tool_call>", "</tool_call>"]

CHAT_TEMPLATE = (
    "{%- macro tools_block() -%}"
    "{%- if tools -%}{{- '\\nTools:' -}}{%- for t in tools -%}{{- '\\n' + (t | tojson) -}}{%- endfor -%}"
    "{%- endif -%}{%- endmacro -%}"
    "{%- if messages and messages[0].role == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0].content + tools_block() + '<|im_end|>\\n' -}}"
    "{%- elif tools -%}{{- '<|im_start|>system' + tools_block() + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' and loop.first -%}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}"
    "{%- if message.content -%}{{- message.content -}}{%- endif -%}"
    "{%- for tc in (message.tool_calls or []) -%}"
    "{%- set f = tc.function if tc.function is defined else tc -%}"
    "{{- '<tool_call>{\"name\": ' + (f.name | tojson) + ', \"arguments\": ' -}}"
    "{%- if f.arguments is string -%}{{- f.arguments -}}{%- else -%}{{- f.arguments | tojson -}}{%- endif -%}"
    "{{- '}</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{%- set c = message.content if message.content is string else (message.content | tojson) -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + c + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

_WORDS = (  # noqa: SIM905 - a word list reads best as one string
    "read write file files path line lines count sum total value values column row rows table data "
    "query select from where group order limit join database sqlite csv json text note notes report "
    "move copy create delete rename list directory folder grep search find match pattern word words "
    "convert unit meters feet kilograms pounds celsius fahrenheit seconds minutes hours days price "
    "tax rate percent average median maximum minimum number numbers result answer question document "
    "documents lookup author title year city country capital population river mountain company "
    "product order customer invoice amount date name email address status done failed retry error "
    "timeout permission denied not found unknown tool bad args runtime invalid output step steps plan "
    "goal progress evidence feedback risk risks verdict continue replan end observation history state "
    "allowed available suggested prior failure success outcome confidence rationale description "
    "the a an of to in on for with by and or but not is are was were be been has have had it its this "
    "that these those then than when while after before because so if else each every all any some "
    "first second third next last one two three four five six seven eight nine ten zero calculate "
    "evaluate expression compute multiply divide add subtract check verify inspect open close save "
    "load fetch get set update insert key keys arguments name tools call calls message messages"
).split()


def _corpus(seed: int, n_lines: int = 3000) -> list[str]:
    """Varied text in the role formats: system prompts, replies, tool calls, JSON, numbers."""
    rng = random.Random(seed)
    lines = list(DEFAULT_SYSTEM_PROMPTS.values())
    punct = [".", ",", ":", ";", "?", "!", "-", "_", "/", "=", "+", "*", "(", ")", "[", "]", "'", '"']
    for i in range(n_lines):
        words = rng.sample(_WORDS, rng.randint(3, 12))
        kind = i % 6
        if kind == 0:
            lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!"]))
        elif kind == 1:
            lines.append(f"verdict: {rng.choice(VERDICTS)}\nfeedback: {' '.join(words)}")
        elif kind == 2:
            args = {w: rng.choice([rng.randint(0, 999), f"{w}_{rng.randint(0, 99)}.txt", w.upper()])
                    for w in words[:rng.randint(1, 3)]}
            lines.append(tool_call_text(words[0] + "_" + words[1], args))
        elif kind == 3:
            lines.append('{"plan": [{"description": "%s", "tool": "%s", "args": {"%s": %d}}], '  # noqa: UP031 - JSON braces read best with %
                         '"rationale": "%s", "confidence": 0.%d}'
                         % (" ".join(words[:4]), words[0], words[1], rng.randint(0, 500),
                            " ".join(words[4:]), rng.randint(1, 9)))
        elif kind == 4:
            lines.append(" ".join(f"{w}{rng.choice(punct)}{rng.randint(0, 10 ** rng.randint(1, 6))}"
                                  for w in words))
        else:
            lines.append(f"Plan progress: {{\"completed\": {rng.randint(0, 5)}, \"total\": {rng.randint(1, 6)}}}"
                         f"\nEvidence: {' '.join(words)}\nStep: {words[0]}\nAllowed tools: "
                         f"{', '.join(words[1:4])}")
    return lines


def train_tiny_tokenizer(vocab_size: int = 1024, seed: int = 0, extra_texts: list[str] | None = None) -> Any:
    """Train a byte-level BPE with Qwen2's splitting rules and wrap it as a ``Qwen2Tokenizer``.

    Args:
        vocab_size: target size including the 256 byte symbols and special tokens.
        seed: seed of the generated corpus.
        extra_texts: more training text (e.g. rendered view rows).

    Returns:
        A ``transformers`` tokenizer with the ``tracebridge`` chat template, eos ``<|im_end|>``
        and pad ``<|endoftext|>``.
    """
    import json

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    raw = Tokenizer(models.BPE())
    raw.normalizer = normalizers.NFC()
    raw.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + TOOL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(_corpus(seed) + list(extra_texts or []), trainer)
    model_json = json.loads(raw.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model_json["merges"]]
    tok = Qwen2Tokenizer(vocab=model_json["vocab"], merges=merges, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                         unk_token=None, extra_special_tokens=["<|im_start|>"])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    tok.chat_template = CHAT_TEMPLATE
    tok.model_max_length = 1 << 20
    return tok


@functools.lru_cache(maxsize=4)
def _cached_tiny_tokenizer(vocab_size: int, seed: int) -> Any:
    return train_tiny_tokenizer(vocab_size, seed)


def _torch_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def build_tokenizer(cfg: ModelConfig) -> Any:
    """The tokenizer for ``cfg``: from ``path`` when given, else the (cached) tiny BPE."""
    if cfg.path:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(cfg.path)
    else:
        tok = copy.deepcopy(_cached_tiny_tokenizer(cfg.tokenizer_vocab_size, 0))
    if cfg.chat_template == "tracebridge":
        missing = [t for t in SPECIAL_TOKENS if t not in tok.get_vocab()]
        if missing:
            tok.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
        tok.chat_template = CHAT_TEMPLATE
        tok.eos_token = EOS_TOKEN
    if tok.pad_token is None:
        tok.pad_token = PAD_TOKEN if PAD_TOKEN in tok.get_vocab() else tok.eos_token
    return tok


# Other names of a shape knob in configs whose ``attribute_map`` does not alias it (gpt2: n_inner).
_KNOB_ALIASES = {"intermediate_size": ("n_inner", "ffn_dim", "d_ff"), "num_key_value_heads": ("num_kv_heads",)}


def arch_problems(arch: str) -> list[str]:
    """Why ``arch`` cannot be built at random init: not a transformers ``model_type``, or one
    without a causal-LM class. Empty for the tuned architectures without importing transformers.

    Args:
        arch: a transformers ``model_type`` (``qwen2``, ``llama``, ``mistral``, ``gpt2`` ...).

    Returns:
        ``model.arch=...: what; fix`` lines (empty when buildable).
    """
    from tracebridge.train.model_config import ARCHS

    if arch in ARCHS:
        return []
    import difflib

    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL

    some = ", ".join([*ARCHS, "mistral", "phi3", "gemma", "gpt2", "gpt_neox"])
    if arch not in CONFIG_MAPPING_NAMES:
        near = difflib.get_close_matches(arch, list(CAUSAL), n=3)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        return [f"model.arch={arch}: not a transformers model_type; {hint}use a causal LM such as {some}"]
    if arch not in CAUSAL:
        return [(f"model.arch={arch}: {CONFIG_MAPPING_NAMES[arch]} has no causal-LM class "
                 f"(AutoModelForCausalLM); use a causal LM such as {some}")]
    return []


def _knob_name(defaults: Any, knob: str) -> str | None:
    """``knob``'s name in this config: its ``attribute_map`` target, itself, or an alias; None = absent."""
    own = type(defaults).attribute_map.get(knob)
    if own:
        return own
    fields = defaults.to_dict()
    return next((k for k in (knob, *_KNOB_ALIASES.get(knob, ())) if k in fields), None)


def architecture_config(cfg: ModelConfig, tokenizer: Any) -> Any:
    """The transformers config of a random-init model of ``cfg``'s shape, for any causal-LM
    ``cfg.arch``: each shape knob goes to the config's own name for it (gpt2: ``n_embd``,
    ``n_layer``, ``n_head``, ``n_inner``, ``n_positions``); knobs the architecture lacks (gpt2 has
    no KV heads or RoPE) are left out and logged.

    Raises:
        tracebridge.config.ConfigError: ``cfg.arch`` is unknown or not a causal LM.
    """
    from transformers import AutoConfig

    problems = arch_problems(cfg.arch)
    if problems:
        from tracebridge.config import ConfigError

        raise ConfigError(problems)
    defaults = AutoConfig.for_model(cfg.arch)
    knobs = {"vocab_size": max(cfg.vocab_size, len(tokenizer)), "hidden_size": cfg.hidden_size,
             "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.num_hidden_layers,
             "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
             "max_position_embeddings": cfg.max_position_embeddings}
    if cfg.head_dim or _knob_name(defaults, "head_dim"):  # gemma's default is 256, not width / heads
        knobs["head_dim"] = cfg.head_dim or cfg.hidden_size // cfg.num_attention_heads
    common: dict[str, Any] = {}
    for knob, value in knobs.items():  # head_dim is read with getattr by configs that do not list it (qwen2)
        name = _knob_name(defaults, knob) or ("head_dim" if knob == "head_dim" else None)
        if name is None:
            log.info("model.arch=%s has no %s: model.%s=%s is not used", cfg.arch, knob, knob, value)
        else:
            common[name] = value
    if "rope_parameters" in defaults.to_dict():  # keep an architecture's own RoPE extras (partial rotary ...)
        common["rope_parameters"] = {"rope_type": "default", **(defaults.rope_parameters or {}),
                                     "rope_theta": cfg.rope_theta}
    common.update(tie_word_embeddings=cfg.tie_word_embeddings, bos_token_id=None,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return AutoConfig.for_model(cfg.arch, **common)


def build_model(cfg: ModelConfig, tokenizer: Any) -> Any:
    """A causal LM for ``cfg``: seeded random init of the shape, or pretrained from ``path``."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = _torch_dtype(cfg.dtype)
    kw: dict[str, Any] = {"dtype": dtype}
    if cfg.attn_implementation:
        kw["attn_implementation"] = cfg.attn_implementation
    if cfg.init == ModelInit.PRETRAINED:
        model = AutoModelForCausalLM.from_pretrained(cfg.path, **kw)
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
    else:
        torch.manual_seed(cfg.seed)
        model = AutoModelForCausalLM.from_config(architecture_config(cfg, tokenizer), **kw)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    log.info("built %s (%s, %s): %.2fM parameters", cfg.name, cfg.arch, cfg.init,
             sum(p.numel() for p in model.parameters()) / 1e6)
    return model


def build_model_and_tokenizer(cfg: ModelConfig) -> tuple[Any, Any]:
    """Build ``(model, tokenizer)`` for ``cfg`` (see the module docstring)."""
    tok = build_tokenizer(cfg)
    return build_model(cfg, tok), tok


def tiny_model_and_tokenizer(seed: int = 0, **shape: Any) -> tuple[Any, Any]:
    """A fresh tiny random-init model and a copy of the cached tiny tokenizer (for tests).

    The tokenizer is trained once per process; every call returns a new model, so tests can
    train it without affecting each other.

    Args:
        seed: random-init seed.
        **shape: ``ModelConfig`` fields to change (e.g. ``hidden_size=32``).
    """
    return build_model_and_tokenizer(ModelConfig(seed=seed, **shape))


def save_model_and_tokenizer(model: Any, tokenizer: Any, path: str | Path) -> Path:
    """``save_pretrained`` both into ``path`` (loadable with ``init: pretrained``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
