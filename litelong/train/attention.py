"""Causal attention, optionally restricted to each token's own document.

Three kernels, one function: on a GPU the document mask is a FlexAttention block mask (blocks
wholly outside every document are skipped, so a sample of many short documents costs less than
a causal one); without masking, SDPA's flash kernel; on a CPU (tests), SDPA with a dense mask,
because FlexAttention has no CPU backward. All take the whole sequence: context parallelism
hands attention full sequences of a share of the heads (context_parallel.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


def document_ids(spans: list[tuple[int, int]], length: int) -> torch.Tensor:
    """Per-token document number for tokens [0, length) of a sample whose spans tile it.

    Tokens not covered by a span (none, for SynthesisRun output) get a document of their own
    after the last one, so they never attend into a real document."""
    ids = torch.full((length,), len(spans), dtype=torch.int32)
    for number, (start, end) in enumerate(spans):
        if start >= length:
            break
        ids[start : min(end, length)] = number
    return ids


class DocumentMask:
    """A sequence's per-token document ids ([S], int) and, built once on first use and shared
    by every layer, the FlexAttention block mask made from them."""

    def __init__(self, doc_ids: torch.Tensor) -> None:
        self.doc_ids = doc_ids
        self._block_mask: Any = None

    def block_mask(self) -> Any:
        if self._block_mask is None:
            from torch.nn.attention.flex_attention import create_block_mask

            length = self.doc_ids.shape[0]
            # compiled: evaluated block by block, never as a dense S x S boolean
            self._block_mask = create_block_mask(
                document_mask_mod(self.doc_ids),
                None,
                None,
                length,
                length,
                device=self.doc_ids.device,
                _compile=self.doc_ids.is_cuda,
            )
        return self._block_mask


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: DocumentMask | None
) -> torch.Tensor:
    """q [B, S, H, D], k and v [B, S, KV, D] -> [B, S, H, D]; causal, and within documents
    when a mask is given."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    gqa = q.shape[1] != k.shape[1]
    if mask is None:
        if gqa and q.is_cuda:  # whole heads keep SDPA on its flash kernel
            repeat = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
            gqa = False
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    elif q.is_cuda:
        out = _compiled_flex()(q, k, v, block_mask=mask.block_mask(), enable_gqa=gqa)
    else:
        doc_ids = mask.doc_ids
        same = doc_ids[:, None] == doc_ids[None, :]
        causal = torch.ones_like(same).tril()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=same & causal, enable_gqa=gqa)
    return out.transpose(1, 2)


def document_mask_mod(doc_ids: torch.Tensor) -> Callable[..., torch.Tensor]:
    """FlexAttention's mask: key not after query, and in the query's document."""

    def mask(b: Any, h: Any, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        return (q_idx >= kv_idx) & (doc_ids[q_idx] == doc_ids[kv_idx])

    return mask


@functools.cache
def _compiled_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def flex_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, doc_ids: torch.Tensor
) -> torch.Tensor:
    """The GPU path's mask through FlexAttention uncompiled (forward only on CPU): lets a CPU
    test check the mask FlexAttention is given, not only the dense fallback."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    length = q.shape[1]
    mask = create_block_mask(
        document_mask_mod(doc_ids), None, None, length, length, device=q.device
    )
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    out = flex_attention(q, k, v, block_mask=mask, enable_gqa=q.shape[1] != k.shape[1])
    assert isinstance(out, torch.Tensor)
    return out.transpose(1, 2)
