"""Perplexity by position: the mean next-token loss in position buckets (0-1K, 1-2K, 2-4K, ...
up to the length) over long documents. A model that uses distant context keeps lowering its
loss in the late buckets; one that does not flattens out or rises past its trained length."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .models import LanguageModel
from .text import EvalTokenizer


def buckets(length: int, first: int = 1024) -> list[tuple[int, int]]:
    """[0, 1K), [1K, 2K), [2K, 4K), ... doubling, the last ending at `length`."""
    edges = [0]
    edge = min(first, length)
    while edge < length:
        edges.append(edge)
        edge *= 2
    edges.append(length)
    return list(itertools.pairwise(edges))


def by_position(
    model: LanguageModel, tokenizer: EvalTokenizer, texts: list[str], length: int, limit: int
) -> dict[str, object]:
    """Loss by position over the first `length` tokens of up to `limit` documents at least that
    long; shorter ones are counted, not used."""
    spans = buckets(length)
    sums = np.zeros(len(spans))
    counts = np.zeros(len(spans), dtype=np.int64)
    used = short = 0
    for text in texts:
        if used >= limit:
            break
        ids = tokenizer.encode(text)
        if len(ids) < length:
            short += 1
            continue
        _, nll = model.next_token_stats(ids[:length], 1)  # nll[j - 1]: token j given < j
        positions = np.arange(1, length)
        for b, (start, end) in enumerate(spans):
            inside = (positions >= start) & (positions < end)
            sums[b] += nll[inside].sum()
            counts[b] += int(inside.sum())
        used += 1
    rows = []
    for (start, end), total, count in zip(spans, sums, counts, strict=True):
        mean = float(total / count) if count else float("nan")
        rows.append(
            {
                "start": start,
                "end": end,
                "tokens": int(count),
                "mean_nll": mean,
                "perplexity": math.exp(mean) if count else float("nan"),
            }
        )
    return {"length": length, "documents": used, "skipped_shorter": short, "buckets": rows}
