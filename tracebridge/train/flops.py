"""Model FLOPs of decoder-only training, counted honestly, and MFU.

Per token, for a transformer with ``n`` layers, width ``h``, ``Hq`` query heads and ``Hkv``
key/value heads of size ``d``, MLP width ``I`` and vocabulary ``V``::

    P_block   = n * (h*Hq*d + 2*h*Hkv*d + Hq*d*h + 3*h*I)      # q, k, v, o and gate/up/down matmuls
    train     = 6 * P_block * tokens                             # forward 2, backward 4 FLOPs per weight
              + 6 * V * h * loss_tokens                          # LM head, only where a label is scored
              + 6 * n * Hq * d * sum(L_i^2)                       # causal attention: QK^T and PV over
                                                                 #   L_i^2/2 pairs each, 2 FLOPs per MAC, x3
    forward   = train / 3                                        # e.g. a DPO reference pass

``tokens`` are real (non-padding) tokens: work spent on padding is waste and never counted, so
a padded baseline shows a low MFU. The embedding lookup, norms, RoPE, biases, softmax and the
optimizer are not counted (a few percent). Attention counts only the causal half; the PaLM
convention (``12 * n * h * L`` per token) would count twice as much for it. MFU = counted FLOPs /
(seconds * peak); the peak is dense bf16 without sparsity: 989 TFLOP/s for H100 SXM and H200
(same tensor cores), 756 for H100 PCIe.
"""

from __future__ import annotations

from dataclasses import dataclass

H100_SXM_BF16 = 989e12
H100_PCIE_BF16 = 756e12


@dataclass(frozen=True)
class Shape:
    """The dimensions that set a decoder's FLOPs."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, cfg: object) -> Shape:
        """From a transformers config (or anything with the same attribute names)."""
        heads = int(cfg.num_attention_heads)
        hidden = int(cfg.hidden_size)
        head_dim = int(getattr(cfg, "head_dim", 0) or hidden // heads)
        return cls(hidden=hidden, intermediate=int(cfg.intermediate_size),
                   layers=int(cfg.num_hidden_layers), heads=heads,
                   kv_heads=int(getattr(cfg, "num_key_value_heads", heads) or heads), head_dim=head_dim,
                   vocab=int(cfg.vocab_size))

    @property
    def block_params(self) -> int:
        """Matmul weights of all decoder layers (no embedding, no LM head, no norms/biases)."""
        h, d = self.hidden, self.head_dim
        attn = h * self.heads * d + 2 * h * self.kv_heads * d + self.heads * d * h
        return self.layers * (attn + 3 * h * self.intermediate)

    @property
    def head_params(self) -> int:
        """The LM head matmul (tied or not, it is computed)."""
        return self.vocab * self.hidden


@dataclass
class TokenStats:
    """What a run processed: real tokens, scored tokens and the sum of squared sequence lengths."""

    tokens: int = 0
    loss_tokens: int = 0
    sum_sq_len: int = 0
    sequences: int = 0

    def __add__(self, other: TokenStats) -> TokenStats:
        return TokenStats(self.tokens + other.tokens, self.loss_tokens + other.loss_tokens,
                          self.sum_sq_len + other.sum_sq_len, self.sequences + other.sequences)

    @classmethod
    def of_lengths(cls, lengths: list[int], loss_tokens: int) -> TokenStats:
        """Stats of sequences with these lengths and ``loss_tokens`` scored positions."""
        return cls(sum(lengths), loss_tokens, sum(n * n for n in lengths), len(lengths))


def train_flops(shape: Shape, stats: TokenStats) -> float:
    """Model FLOPs of one forward + backward over ``stats`` (see the module docstring)."""
    return (6.0 * shape.block_params * stats.tokens + 6.0 * shape.head_params * stats.loss_tokens
            + 6.0 * shape.layers * shape.heads * shape.head_dim * stats.sum_sq_len)


def forward_flops(shape: Shape, stats: TokenStats) -> float:
    """Model FLOPs of a forward pass only (a third of ``train_flops``)."""
    return train_flops(shape, stats) / 3.0


def dpo_flops(shape: Shape, stats: TokenStats) -> float:
    """DPO: policy forward + backward plus the reference forward over the same pairs."""
    return train_flops(shape, stats) + forward_flops(shape, stats)


def peak_flops(device_name: str) -> float:
    """Dense bf16 peak of a device by name: 989e12 for H100 SXM/H200, 756e12 for H100 PCIe.

    Raises:
        ValueError: an unknown device (pass the peak explicitly).
    """
    name = device_name.upper()
    if "H100" in name and "PCIE" in name:
        return H100_PCIE_BF16
    if "H100" in name or "H200" in name or "GH200" in name:
        return H100_SXM_BF16
    raise ValueError(f"no bf16 peak known for {device_name!r}; pass --peak-tflops")


def mfu(flops: float, seconds: float, peak: float) -> float:
    """Model FLOPs utilisation in [0, 1] (0 when nothing was timed)."""
    return flops / seconds / peak if seconds > 0 and peak > 0 else 0.0
