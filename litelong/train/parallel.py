"""Processes, devices and sharding: what torchrun (or a PyTorchJob through torchrun's PET_*
variables) started, arranged as data-parallel replicas of context-parallel groups, with the
parameters FSDP2-sharded over every rank."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .context_parallel import ContextParallel, ParallelismError


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: torch.device
    cp: ContextParallel

    @property
    def dp_rank(self) -> int:
        """Which sequence this rank works on: ranks of one CP group share one."""
        return self.rank // self.cp.size

    @property
    def dp_size(self) -> int:
        return self.size // self.cp.size

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start(context_parallel: int) -> World:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR...); one
    process without them. NCCL with one GPU per local rank where CUDA is, else gloo."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if size % context_parallel:
        raise ParallelismError(f"contextParallel={context_parallel} must divide {size} processes")
    if not dist.is_initialized():
        timeout = datetime.timedelta(minutes=30)
        if size == 1:  # one process: same code path (FSDP2, DCP), no rendezvous needed
            dist.init_process_group(
                backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout
            )
        else:
            dist.init_process_group(backend, rank=rank, world_size=size, timeout=timeout)
    cp = ContextParallel()
    if context_parallel > 1:
        groups = [
            list(range(first, first + context_parallel))
            for first in range(0, size, context_parallel)
        ]
        mine = None
        for members in groups:  # every rank must create every group, in the same order
            group = dist.new_group(members)
            if rank in members:
                mine = group
        cp = ContextParallel(mine, rank % context_parallel, context_parallel)
    return World(rank, size, device, cp)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_model(model: nn.Module, world: World) -> None:
    """FSDP2 over every rank: one unit per transformer block plus the root (embeddings, final
    norm, head). bf16 compute with fp32 master weights and fp32 gradient reduction on GPUs;
    fp32 throughout on CPUs."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy()
    if world.device.type == "cuda":
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    model.to(world.device)
    for layer in model.model.layers:  # type: ignore[union-attr]
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def all_sum(value: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(value)
    return value
