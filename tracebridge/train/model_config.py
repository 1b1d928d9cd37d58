"""The model factory's typed config (``ModelConfig``, YAML under ``configs/model/``, the ``model``
block of a trial): a random-init architecture or pretrained weights (``tracebridge.train.models``)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path

ARCHS = ("qwen2", "llama")


class ModelInit(enum.StrEnum):
    RANDOM = "random"
    PRETRAINED = "pretrained"


@dataclass
class ModelConfig:
    """What the model factory builds: a random-init architecture or pretrained weights."""

    name: str = field(default="tiny", metadata={"help": "Label stamped into reports (e.g. qwen2.5-0.5b)."})
    arch: str = field(default="qwen2", metadata={
        "help": "Random init: a transformers causal-LM model_type (qwen2, llama, mistral, phi3, gpt2 ...)."})
    init: str = field(default="random", metadata={"help": "random (from the shape below) | pretrained (from path)."})
    path: str | None = field(default=None, metadata={
        "help": "init=pretrained: a local directory (or hub name where the hub is reachable). "
                "init=random: an optional tokenizer directory; None = train the tiny BPE tokenizer."})
    vocab_size: int = field(default=0, metadata={
        "help": "Embedding rows; 0 = the tokenizer's size. Real shapes set it (151936 for Qwen2.5)."})
    tokenizer_vocab_size: int = field(default=1024, metadata={"help": "BPE size when the tokenizer is trained locally."})
    hidden_size: int = field(default=64, metadata={"help": "Model width."})
    intermediate_size: int = field(default=128, metadata={"help": "MLP width."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Query heads."})
    num_key_value_heads: int = field(default=2, metadata={"help": "KV heads (GQA)."})
    head_dim: int = field(default=0, metadata={"help": "0 = hidden_size / num_attention_heads."})
    max_position_embeddings: int = field(default=2048, metadata={"help": "Context length of the architecture."})
    rope_theta: float = field(default=10000.0, metadata={"help": "RoPE base (1e6 for Qwen2.5, 5e5 for Llama 3.2)."})
    tie_word_embeddings: bool = field(default=True, metadata={"help": "Share input and output embeddings."})
    dtype: str = field(default="float32", metadata={"help": "float32 | bfloat16 | auto (bf16 on CUDA, else fp32)."})
    attn_implementation: str | None = field(default=None, metadata={
        "help": "sdpa | eager | flash_attention_2; None = transformers' default."})
    chat_template: str = field(default="tracebridge", metadata={
        "help": "tracebridge (ChatML with generation markers and <tool_call> format of schema/roles.py) "
                "| native (keep a pretrained tokenizer's own template)."})
    seed: int = field(default=0, metadata={"help": "Seed of the random init (the tiny tokenizer's corpus is fixed)."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix``."""
        from tracebridge.train.models import arch_problems

        p = arch_problems(self.arch)  # imports transformers only for an arch outside ARCHS
        if self.init not in {m.value for m in ModelInit}:
            p.append(f"model.init={self.init}: use random or pretrained")
        if self.init == ModelInit.PRETRAINED and not self.path:
            p.append("model.path=None: init=pretrained needs a local directory or hub name")
        if self.dtype not in ("float32", "bfloat16", "auto"):
            p.append(f"model.dtype={self.dtype}: use float32, bfloat16 or auto (fp16 is not supported)")
        if self.chat_template not in ("tracebridge", "native"):
            p.append(f"model.chat_template={self.chat_template}: use tracebridge or native")
        for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "max_position_embeddings"):
            if getattr(self, k) <= 0:
                p.append(f"model.{k}={getattr(self, k)}: must be > 0")
        if self.num_attention_heads > 0 and self.num_key_value_heads > 0 and \
                self.num_attention_heads % self.num_key_value_heads:
            p.append(f"model.num_key_value_heads={self.num_key_value_heads}: must divide num_attention_heads")
        if self.head_dim == 0 and self.num_attention_heads > 0 and self.hidden_size % self.num_attention_heads:
            p.append(f"model.hidden_size={self.hidden_size}: must be divisible by num_attention_heads "
                     "(or set head_dim)")
        p += [f"model.{k}={getattr(self, k)}: must be >= 0 (0 = {zero})" for k, zero in (
            ("vocab_size", "the tokenizer's size"), ("head_dim", "hidden_size / num_attention_heads"))
            if getattr(self, k) < 0]
        if self.rope_theta <= 0:
            p.append(f"model.rope_theta={self.rope_theta}: must be > 0 (1e6 for Qwen2.5, 5e5 for Llama 3.2)")
        if self.tokenizer_vocab_size < 300:
            p.append(f"model.tokenizer_vocab_size={self.tokenizer_vocab_size}: must be >= 300 "
                     "(256 bytes + special tokens + merges)")
        return p


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "adapter_config.json")
VOCAB_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def model_folder_problem(path: Path, weights: bool = True) -> str | None:
    """What ``path`` lacks to be a folder ``save_pretrained`` wrote, or None: config.json with a model_type
    and a weights file (with ``weights``), tokenizer_config.json and a vocabulary (without one, transformers
    loads a tokenizer of one token and says nothing)."""
    if not path.is_dir():
        return "no such folder" if not path.exists() else "a file, not a folder"
    missing = []
    if weights:
        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type")
        except (OSError, ValueError, AttributeError):
            model_type = None
        missing += [] if model_type else ["config.json with a model_type"]
        missing += [] if any((path / w).is_file() for w in WEIGHT_FILES) else [f"weights ({', '.join(WEIGHT_FILES)})"]
    missing += [] if (path / "tokenizer_config.json").is_file() else ["tokenizer_config.json"]
    if not any((path / v).is_file() for v in VOCAB_FILES):
        missing.append(f"a tokenizer vocabulary ({', '.join(VOCAB_FILES)})")
    return f"not a saved model folder (missing: {'; '.join(missing)})" if missing else None


def chat_template_problem(path: Path) -> str | None:
    """Why the tokenizer saved in ``path`` has no chat template of its own (``chat_template.jinja``, or
    ``chat_template`` in tokenizer_config.json), or None: every row is rendered through it, and without
    one transformers raises at the first row, after the model loaded."""
    if any((path / name).is_file() for name in ("chat_template.jinja", "chat_template.json")):
        return None
    try:
        found = json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return None  # model_folder_problem names a missing or broken tokenizer_config.json
    if not isinstance(found, dict) or found.get("chat_template"):
        return None
    return "its tokenizer has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json)"


def model_path_problem(cfg: ModelConfig) -> str | None:
    """Why ``model.path`` (a local folder: not a hub name, ``name`` or ``org/name``) cannot give the model
    (``init=pretrained``) or the tokenizer (``init=random``), asked before a trial starts; else None."""
    path = cfg.path
    if not path or not (Path(path).exists() or path.startswith(("/", ".", "~")) or path.count("/") > 1):
        return None
    why = model_folder_problem(Path(path).expanduser(), weights=cfg.init == ModelInit.PRETRAINED)
    if why:
        return f"model.path={path}: {why}; give a folder save_pretrained wrote (a trial's checkpoint_dir)"
    if cfg.chat_template == "native" and (why := chat_template_problem(Path(path).expanduser())):
        return f"model.path={path}: {why}; set model.chat_template=tracebridge, or give a tokenizer with its own"
    return None
