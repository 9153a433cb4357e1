"""TrainingJob: continued pre-training of a causal LM on a SynthesisRun's samples."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .bm25index import CorpusSource
from .meta import (
    CamelModel,
    OutputsBase,
    OutputSpec,
    PodOptions,
    Resource,
    ResourceName,
    StatusBase,
)


class ModelSource(CamelModel):
    name: str = Field(min_length=1, description="Hugging Face model name or path.")
    from_config: bool = Field(
        default=False,
        description="Build from the model's config with fresh weights (throughput runs).",
    )


class TrainingParallelism(CamelModel):
    """How the job spreads over GPUs. Runtime-only: scaling never invalidates a run."""

    nodes: int = Field(default=1, ge=1, le=1024, description="Nodes (PyTorchJob replicas).")
    gpus_per_node: int = Field(default=8, ge=1, le=16, description="GPUs (processes) per node.")
    context_parallel: int = Field(
        default=1, ge=1, le=64, description="GPUs sharing one sequence (Ulysses all-to-all)."
    )

    @model_validator(mode="after")
    def _cp_divides(self) -> TrainingParallelism:
        if (self.nodes * self.gpus_per_node) % self.context_parallel:
            raise ValueError("contextParallel must divide nodes * gpusPerNode")
        return self


EvalTask = Literal[
    "niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "cwe", "topical"
]
EVAL_TASKS: tuple[str, ...] = EvalTask.__args__  # type: ignore[attr-defined]
#: Every task but topical, which needs a topical haystack.
DEFAULT_EVAL_TASKS: list[EvalTask] = [
    "niah_single",
    "niah_multikey",
    "niah_multivalue",
    "niah_multiquery",
    "vt",
    "cwe",
]


class TopicalHaystack(CamelModel):
    """Where the topical task's on-topic documents come from: a query against a committed
    BM25Index, or a file of documents."""

    index_ref: ResourceName | None = Field(default=None, description="BM25Index to search.")
    query: str | None = Field(default=None, min_length=1, description="Topic query.")
    documents: int = Field(default=200, ge=1, description="Documents retrieved for the topic.")
    source: CorpusSource | None = Field(default=None, description="Or: documents from files.")

    @model_validator(mode="after")
    def _one_source(self) -> TopicalHaystack:
        if (self.source is None) == (self.index_ref is None or self.query is None):
            raise ValueError("give either indexRef and query, or source")
        return self


class Evaluation(CamelModel):
    """What `litelong eval` measures; in a TrainingJob, run once the training commits."""

    lengths: list[int] = Field(
        default_factory=list, description="Context lengths in tokens; empty: contextLength."
    )
    tasks: list[EvalTask] = Field(
        default_factory=lambda: list(DEFAULT_EVAL_TASKS),
        description="RULER-family tasks (topical needs `topical`).",
    )
    samples_per_task: int = Field(default=20, ge=1, description="Samples per task and length.")
    seed: int = Field(default=0, description="Seed of the generated tasks.")
    haystack: CorpusSource | None = Field(
        default=None, description="Filler documents of the niah tasks; unset: RULER's noise."
    )
    topical: TopicalHaystack | None = Field(default=None, description="The topical haystack.")
    perplexity: CorpusSource | None = Field(
        default=None, description="Long documents for perplexity by position."
    )
    perplexity_documents: int = Field(default=20, ge=1, description="Documents used at most.")
    decontamination_ngram: int = Field(
        default=13,
        ge=0,
        description="n of the n-gram overlap check with the training data; 0: off.",
    )

    @model_validator(mode="after")
    def _topical_needs_source(self) -> Evaluation:
        if "topical" in self.tasks and self.topical is None:
            raise ValueError("task topical needs `topical` (indexRef and query, or source)")
        if any(length < 64 for length in self.lengths):
            raise ValueError("lengths must be at least 64 tokens")
        return self


class TrainingJobSpec(CamelModel):
    """Long-context continued pre-training (bf16, FSDP2, context parallelism, document masking)."""

    synthesis_run_ref: ResourceName = Field(description="SynthesisRun whose samples to train on.")
    model: ModelSource = Field(description="Base model.")
    context_length: int = Field(default=131_072, ge=128, description="Tokens per sequence.")
    rope_theta: float | None = Field(
        default=None, gt=0, description="RoPE base; unset: raised for contextLength (2e8 at 128K)."
    )
    steps: int = Field(default=1000, ge=1, description="Optimizer steps.")
    learning_rate: float = Field(default=4.0e-5, gt=0, description="Peak learning rate (AdamW).")
    warmup_ratio: float = Field(default=0.2, ge=0, lt=1, description="Share of steps warming up.")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="Cosine floor / peak.")
    weight_decay: float = Field(default=0.1, ge=0, description="AdamW weight decay.")
    batch_tokens: int = Field(default=4_194_304, ge=128, description="Tokens per optimizer step.")
    document_masking: bool = Field(default=True, description="Attend only within a document.")
    activation_checkpointing: bool = Field(default=True, description="Recompute activations.")
    checkpoint_every: int = Field(default=200, ge=1, description="Steps between checkpoints.")
    seed: int = Field(default=0, description="Seed of data order and initialisation.")
    parallelism: TrainingParallelism = Field(
        default_factory=TrainingParallelism, description="GPUs and context parallelism."
    )
    backend: Literal["pytorchjob", "trainjob"] = Field(
        default="pytorchjob",
        description="pytorchjob (kubeflow.org/v1) or trainjob (Kubeflow Trainer v2).",
    )
    output: OutputSpec = Field(default_factory=OutputSpec, description="Where checkpoints go.")
    pod: PodOptions = Field(default_factory=PodOptions, description="Pod options in a cluster.")
    evaluation: Evaluation | None = Field(
        default=None, description="`litelong eval` of the trained model, run after training."
    )


class TrainingJobOutputs(OutputsBase):
    step: int | None = Field(default=None, description="Last checkpointed step.")
    checkpoint: str | None = Field(default=None, description="URI of the last checkpoint.")


class TrainingMetrics(CamelModel):
    """The latest step while training, from the run's metrics.jsonl in the store."""

    step: int = Field(ge=0, description="Last finished step.")
    loss: float | None = Field(default=None, description="Its training loss.")
    tokens_per_second: float | None = Field(
        default=None, description="Its throughput, all GPUs together."
    )
    eta_seconds: int | None = Field(
        default=None, ge=0, description="Time left at the recent steps' pace."
    )


class TrainingJobStatus(StatusBase):
    outputs: TrainingJobOutputs = Field(
        default_factory=TrainingJobOutputs, description="Checkpoints."
    )
    training: TrainingMetrics | None = Field(
        default=None, description="Step, loss, tokens/s and ETA while training."
    )


class TrainingJob(Resource[TrainingJobSpec, TrainingJobStatus]):
    """A long-context training run."""

    plural: ClassVar[str] = "trainingjobs"
    short_names: ClassVar[tuple[str, ...]] = ("tj",)
    progress_column: ClassVar[tuple[str, str, str]] = ("Step", ".status.outputs.step", "integer")
    #: evaluation reads the trained model; changing it never retrains
    runtime_fields: ClassVar[frozenset[str]] = Resource.runtime_fields | {"backend", "evaluation"}
    ref_fields: ClassVar[dict[str, str]] = {"synthesis_run_ref": "SynthesisRun"}

    kind: Literal["TrainingJob"] = Field(description="TrainingJob.")
