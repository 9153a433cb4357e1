"""What a step cost and how fast it went: tokens/s, model FLOPs utilisation and peak memory,
one JSON line per step in `<artifact>/metrics.jsonl`.

MFU counts the model's FLOPs only (no recomputation from activation checkpointing): 6 per
parameter per token for the matrix products (the vocabulary projection included, the embedding
lookup not), plus attention over the (query, key) pairs the mask actually allows: S(S+1)/2 per
sequence when causal, the sum of l(l+1)/2 over its documents when document-masked. Counting
masked attention as if it were causal would flatter a masked run.
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from ..store import Artifact
from .model import ModelConfig

#: Dense bf16 tensor-core peaks (FLOP/s) by device name: the MFU denominator.
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "B200": 2250e12}


def attended_pairs(spans: list[tuple[int, int]] | None, length: int) -> int:
    """(query, key) pairs a causal sequence of `length` tokens attends over."""
    if spans is None:
        return length * (length + 1) // 2
    covered = [(max(0, a), min(b, length)) for a, b in spans if a < length and b > 0]
    pairs = sum((b - a) * (b - a + 1) // 2 for a, b in covered)
    rest = length - sum(b - a for a, b in covered)  # uncovered tokens: one document of their own
    return pairs + rest * (rest + 1) // 2


def step_flops(config: ModelConfig, tokens: int, pairs: int) -> float:
    """Training FLOPs (forward + backward = 3x forward) for `tokens` tokens whose sequences
    attend over `pairs` (query, key) pairs in all."""
    matmul_params = config.parameter_count(embeddings=False)
    dense = 6.0 * matmul_params * tokens
    # per layer and pair: q.k and p.v, 2 FLOPs per multiply-add, over every head's dimensions
    attention = 3 * 4.0 * config.num_layers * config.num_heads * config.head_dim * pairs
    return dense + attention


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


class MetricsLog:
    """Rank 0's per-step records, rewritten whole (atomically) after each step. A resumed run
    drops the records after the checkpoint it resumed from, then appends."""

    def __init__(self, artifact: Artifact, resume_step: int) -> None:
        self.store = artifact.store
        self.path = f"{artifact.path}/metrics.jsonl"
        self.rows: list[dict[str, Any]] = []
        if self.store.fs.exists(self.path):
            for line in self.store.fs.cat_file(self.path).decode().splitlines():
                row = json.loads(line)
                if row["step"] <= resume_step:
                    self.rows.append(row)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.store.write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.rows))


class StepTimer:
    """Wall time of a step, the device synchronised at both ends."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.started = 0.0

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.started = time.perf_counter()

    def seconds(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - self.started


def peak_memory_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30
