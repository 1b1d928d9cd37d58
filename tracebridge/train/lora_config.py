"""The LoRA block of the SFT and DPO recipes (``train.lora``, ``dpo.lora``): adapters through peft, off = full
fine-tuning. Re-exported by ``tracebridge.train.config``, where it lived before that module reached its size cap."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # the tuned architectures; any causal LM builds (models.arch_problems)


@dataclass
class LoraConfig:
    """LoRA through peft; off = full fine-tuning."""

    enabled: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights."})
    r: int = field(default=8, metadata={"help": "Adapter rank."})
    alpha: int = field(default=16, metadata={"help": "Scaling numerator (scale = alpha / r)."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter input."})
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS), metadata={
        "help": "Linear layers that get adapters (default: the attention projections; on a model without "
                "them, every linear layer)."})

    def problems(self, prefix: str) -> list[str]:
        """Every problem of enabled adapters, as ``<prefix>.key=value: what; fix``."""
        p = [f"{prefix}.{k}={getattr(self, k)}: must be > 0 (typical r=8, alpha=16)"
             for k in ("r", "alpha") if getattr(self, k) <= 0]
        if not 0 <= self.dropout < 1:
            p.append(f"{prefix}.dropout={self.dropout}: must be in [0, 1) (0 = none; typical 0.05)")
        if not self.target_modules:
            p.append(f"{prefix}.target_modules=[]: no layer would get an adapter; name some "
                     f"(e.g. {prefix}.target_modules=[{','.join(DEFAULT_LORA_TARGETS)}])")
        return p
