"""Checkpoints with torch.distributed.checkpoint, every rank writing its own shards straight to
the store: `<artifact>/checkpoints/step-NNNNNNNN/`, then `checkpoints/latest.json` written
atomically by rank 0 once every rank has finished. A checkpoint without the pointer (a pod
killed mid-save) is never loaded, so resuming always starts from a complete one."""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from ..store import Artifact

LATEST = "latest.json"


class Checkpoints:
    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.store = artifact.store
        self.folder = f"{artifact.path}/checkpoints"

    def _writer(self, path: str) -> Any:
        if self.store.is_local:
            return dcp.FileSystemWriter(path)
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

        return FsspecWriter(self.store.uri_of(path))

    def _reader(self, path: str) -> Any:
        if self.store.is_local:
            return dcp.FileSystemReader(path)
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

        return FsspecReader(self.store.uri_of(path))

    def latest(self) -> dict[str, Any] | None:
        """{"step": N, "path": ...} of the last complete checkpoint, or None."""
        pointer = f"{self.folder}/{LATEST}"
        if not self.store.fs.exists(pointer):
            return None
        found: dict[str, Any] = json.loads(self.store.fs.cat_file(pointer))
        return found

    def save(self, step: int, model: nn.Module, opt: torch.optim.Optimizer) -> str:
        path = f"{self.folder}/step-{step:08d}"
        model_state, optim_state = get_state_dict(model, opt)
        dcp.save({"model": model_state, "optim": optim_state}, storage_writer=self._writer(path))
        dist.barrier()
        if dist.get_rank() == 0:
            self.store.write_atomic(
                f"{self.folder}/{LATEST}", json.dumps({"step": step, "path": path})
            )
        dist.barrier()
        return self.store.uri_of(path)

    def load(self, model: nn.Module, opt: torch.optim.Optimizer) -> int:
        """Restore the latest checkpoint into the (sharded) model and optimizer; its step, or
        0 where there is none."""
        latest = self.latest()
        if latest is None:
            return 0
        model_state, optim_state = get_state_dict(model, opt)
        dcp.load(  # in place, into the (sharded) tensors of both state dicts
            {"model": model_state, "optim": optim_state},
            storage_reader=self._reader(latest["path"]),
        )
        set_state_dict(model, opt, model_state_dict=model_state, optim_state_dict=optim_state)
        return int(latest["step"])
