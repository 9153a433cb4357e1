"""A Llama-architecture causal LM whose attention composes document masking with context
parallelism.

Parameter names are Hugging Face's (`model.layers.N.self_attn.q_proj.weight`, ...), so the
weights of a Llama, Qwen2 or SmolLM checkpoint load with a plain `load_state_dict`; only the
attention differs, and that is the point: it takes per-token document ids and a context-parallel
group, which HF's attention modules do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import DocumentMask, attend
from .context_parallel import ContextParallel


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10_000.0
    rms_norm_eps: float = 1e-5
    tie_embeddings: bool = False
    attention_bias: bool = False  # Qwen2 has biases on q, k and v

    @classmethod
    def from_hf(cls, config: Any) -> ModelConfig:
        """From a transformers config of the Llama family (Llama, Qwen2, SmolLM, Mistral)."""
        heads = config.num_attention_heads
        rope = getattr(config, "rope_theta", None)
        if rope is None:  # transformers 5 keeps it in rope_parameters
            rope = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10_000.0)
        return cls(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_layers=config.num_hidden_layers,
            num_heads=heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            rope_theta=float(rope),
            rms_norm_eps=float(getattr(config, "rms_norm_eps", 1e-5)),
            tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            attention_bias=bool(
                getattr(config, "attention_bias", False) or config.model_type == "qwen2"
            ),
        )

    def parameter_count(self, embeddings: bool = True) -> int:
        attn = self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        mlp = 3 * self.hidden_size * self.intermediate_size
        layers = self.num_layers * (attn + mlp + 2 * self.hidden_size)
        head = self.vocab_size * self.hidden_size
        embed = 0 if self.tie_embeddings else self.vocab_size * self.hidden_size
        return layers + head + self.hidden_size + (embed if embeddings else 0)


def rope_tables(
    positions: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, [S, head_dim], in float32 whatever the model's dtype (bf16 loses positions
    past a few thousand)."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=positions.device) / head_dim)
    angles = positions.float()[:, None] * inv[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    wide = _wide(x)
    return (x.to(wide) * cos.to(wide) + rotated.to(wide) * sin.to(wide)).to(x.dtype)


def _wide(x: torch.Tensor) -> torch.dtype:
    """At least float32 for norms, rotations and the loss; float64 stays float64 (tests)."""
    return torch.promote_types(x.dtype, torch.float32)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.to(_wide(x))
        variance = wide.pow(2).mean(-1, keepdim=True)
        return (wide * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, h, kv, hd = config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim
        self.heads, self.kv_heads, self.head_dim = h, kv, hd
        self.q_proj = nn.Linear(d, h * hd, bias=config.attention_bias)
        self.k_proj = nn.Linear(d, kv * hd, bias=config.attention_bias)
        self.v_proj = nn.Linear(d, kv * hd, bias=config.attention_bias)
        self.o_proj = nn.Linear(h * hd, d, bias=False)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], batch: AttentionBatch
    ) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim)
        cos, sin = rope
        q, k = _rotate(q, cos[:, None], sin[:, None]), _rotate(k, cos[:, None], sin[:, None])
        out = batch.cp.attention(q, k, v, lambda q, k, v: attend(q, k, v, batch.mask))
        return self.o_proj(out.reshape(b, s, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, i = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, i, bias=False)
        self.up_proj = nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


@dataclass
class AttentionBatch:
    """What attention needs besides the hidden states: the whole sequence's document mask
    (None: plain causal) and how the sequence is split over ranks."""

    mask: DocumentMask | None
    cp: ContextParallel


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], batch: AttentionBatch
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, batch)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class CausalLM(nn.Module):
    """Forward returns the summed next-token loss and the number of tokens it covers, so ranks
    holding different shares of a sequence combine exactly."""

    def __init__(self, config: ModelConfig, activation_checkpointing: bool = False) -> None:
        super().__init__()
        self.config = config
        self.model = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.activation_checkpointing = activation_checkpointing

    def init_weights(self, seed: int) -> None:
        """Fresh weights (from-config runs): normal(0, 0.02), norms at one."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.endswith("norm.weight"):
                    param.fill_(1.0)
                elif name.endswith(".bias"):
                    param.zero_()
                else:
                    values = torch.randn(param.shape, generator=generator) * 0.02
                    param.copy_(values.to(param.dtype))

    def hidden_states(
        self, input_ids: torch.Tensor, positions: torch.Tensor, batch: AttentionBatch
    ) -> torch.Tensor:
        x = self.model.embed_tokens(input_ids)
        rope = rope_tables(positions, self.config.head_dim, self.config.rope_theta)
        for layer in self.model.layers:
            if self.activation_checkpointing and self.training:
                x = checkpoint(
                    layer, x, rope, batch, use_reentrant=False, context_fn=_keep_attention
                )
            else:
                x = layer(x, rope, batch)
        return self.model.norm(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        positions: torch.Tensor,
        batch: AttentionBatch,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.hidden_states(input_ids, positions, batch)
        return chunked_cross_entropy(hidden, self.lm_head.weight, labels)


def _attention_ops() -> set[Any]:
    ops = set()
    for name in (
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_efficient_attention",
    ):
        if hasattr(torch.ops.aten, name):
            ops.add(getattr(torch.ops.aten, name).default)
    flex = getattr(torch.ops.higher_order, "flex_attention", None)
    if flex is not None:
        ops.add(flex)
    return ops


def _keep_attention() -> Any:
    """Selective activation checkpointing: a block's activations are recomputed in the backward
    pass except the attention kernels' outputs, which are kept. At 128K tokens attention is
    most of a block's work and its output is one hidden-sized tensor per layer: recomputing
    it would cost a third more attention FLOPs for little memory."""
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    keep = _attention_ops()

    def policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
        if op in keep:
            return CheckpointPolicy.MUST_SAVE
        return CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


#: Tokens per slice of the vocabulary projection: 128K tokens x 128K vocabulary would be 32 GiB
#: of bf16 logits; slices are recomputed in the backward pass instead of stored.
LOSS_CHUNK = 8192


def _chunk_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = hidden @ weight.t()
    logits = logits.to(_wide(logits))
    return F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")


def chunked_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of token losses, count of labelled tokens); labels of -100 are not counted."""
    hidden = hidden.reshape(-1, hidden.shape[-1])
    labels = labels.reshape(-1)
    total = hidden.new_zeros((), dtype=_wide(hidden))
    for start in range(0, hidden.shape[0], LOSS_CHUNK):
        part = slice(start, start + LOSS_CHUNK)
        total = total + checkpoint(
            _chunk_loss, hidden[part], weight, labels[part], use_reentrant=False
        )
    return total, (labels != -100).sum()
