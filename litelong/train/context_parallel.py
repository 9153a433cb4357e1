"""Context parallelism by all-to-all (DeepSpeed-Ulysses): each of `size` ranks holds a
contiguous 1/size of the sequence for everything but attention; around attention, one
all-to-all trades sequence shards for head shards, so each rank attends over the whole sequence
with 1/size of the heads, then a second all-to-all trades back.

Why this and not ring attention: the attention kernel sees whole sequences, so the document
mask, FlexAttention's block sparsity and flash kernels work unchanged, causal work is balanced
without zig-zag sharding, and it runs on gloo (CPU tests) as well as NCCL. The cost: heads (and
key/value heads, which are repeated when too few) must divide by the group size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


class ParallelismError(ValueError):
    """The model or sequence cannot be split over the context-parallel group."""


Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class _AllToAll(torch.autograd.Function):
    """[B, S/n, H, D] sharded by sequence <-> [B, S, H/n, D] sharded by heads. The backward
    of one direction is the other direction."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any, to_heads: bool) -> torch.Tensor:
        ctx.group, ctx.to_heads = group, to_heads
        return _exchange(x, group, to_heads)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return _exchange(grad.contiguous(), ctx.group, not ctx.to_heads), None, None


def _exchange(x: torch.Tensor, group: Any, to_heads: bool) -> torch.Tensor:
    n = dist.get_world_size(group)
    b, s, h, d = x.shape
    if to_heads:  # send head group j to rank j; receive every rank's sequence shard
        send = x.reshape(b, s, n, h // n, d).permute(2, 0, 1, 3, 4).contiguous()
        recv = torch.empty_like(send)
        dist.all_to_all_single(recv, send, group=group)
        return recv.permute(1, 0, 2, 3, 4).reshape(b, n * s, h // n, d)
    send = x.reshape(b, n, s // n, h, d).permute(1, 0, 2, 3, 4).contiguous()
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)
    return recv.permute(1, 2, 0, 3, 4).reshape(b, s // n, n * h, d)


@dataclass(frozen=True)
class ContextParallel:
    """This rank's place in its context-parallel group; size 1 is no parallelism at all."""

    group: Any = None
    rank: int = 0
    size: int = 1

    def shard(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """This rank's contiguous share of a whole-sequence tensor."""
        if self.size == 1:
            return x
        return x.chunk(self.size, dim=dim)[self.rank]

    def check(self, heads: int, kv_heads: int, length: int) -> None:
        if heads % self.size:
            raise ParallelismError(
                f"contextParallel={self.size} must divide the model's {heads} attention heads"
            )
        if length % self.size:
            raise ParallelismError(
                f"contextParallel={self.size} must divide contextLength={length}"
            )
        del kv_heads  # repeated up to a multiple when needed

    def attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attend: Attention
    ) -> torch.Tensor:
        """Run `attend` (whole sequences) over sequence-sharded q, k, v [B, S/n, H, D]."""
        if self.size == 1:
            return attend(q, k, v)
        if k.shape[2] % self.size:
            repeat = q.shape[2] // k.shape[2]
            k, v = k.repeat_interleave(repeat, dim=2), v.repeat_interleave(repeat, dim=2)
        q, k, v = (_AllToAll.apply(t, self.group, True) for t in (q, k, v))
        out = attend(q, k, v)
        result: torch.Tensor = _AllToAll.apply(out, self.group, False)
        return result
