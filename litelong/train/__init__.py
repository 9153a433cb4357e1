"""Long-context continued pre-training: what a TrainingJob's PyTorchJob pods run
(`torchrun -m litelong train --spec FILE`).

Modules, one job each: `loading` (which model), `model` (Llama-architecture LM), `attention`
(document masking), `context_parallel` (all-to-all sequence sharding), `parallel` (processes,
FSDP2), `data` (SynthesisRun windows), `optim`, `checkpoint` (DCP), `metrics`, `loop`.
Importing this package does not import torch; `train` does.
"""

from __future__ import annotations

from typing import Any


def train(*args: Any, **kwargs: Any) -> Any:
    """See `litelong.train.loop.train`."""
    from .loop import train as run

    return run(*args, **kwargs)
