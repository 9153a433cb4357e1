"""AdamW with linear warmup then cosine decay to `minLrRatio` of the peak: the schedule of
long-context continued pre-training recipes (ProLong, LiteLong's own runs)."""

from __future__ import annotations

import math

import torch
from torch import nn


def lr_factor(step: int, steps: int, warmup: int, floor: float) -> float:
    """Multiplier of the peak rate for optimizer step `step` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Norms and biases get no weight decay. The rate is set per step by `set_lr`, a pure
    function of the step, so a resumed run needs no scheduler state."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        (plain if param.ndim < 2 or "norm" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    on_gpu = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=on_gpu)


def set_lr(opt: torch.optim.Optimizer, peak: float, factor: float) -> float:
    for group in opt.param_groups:
        group["lr"] = peak * factor
    return peak * factor
