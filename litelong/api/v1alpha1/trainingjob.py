"""TrainingJob: continued pre-training of a causal LM on a SynthesisRun's samples."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

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


class TrainingJobOutputs(OutputsBase):
    step: int | None = Field(default=None, description="Last checkpointed step.")
    checkpoint: str | None = Field(default=None, description="URI of the last checkpoint.")


class TrainingJobStatus(StatusBase):
    outputs: TrainingJobOutputs = Field(
        default_factory=TrainingJobOutputs, description="Checkpoints."
    )


class TrainingJob(Resource[TrainingJobSpec, TrainingJobStatus]):
    """A long-context training run."""

    plural: ClassVar[str] = "trainingjobs"
    short_names: ClassVar[tuple[str, ...]] = ("tj",)
    progress_column: ClassVar[tuple[str, str, str]] = ("Step", ".status.outputs.step", "integer")
    runtime_fields: ClassVar[frozenset[str]] = Resource.runtime_fields | {"backend"}
    ref_fields: ClassVar[dict[str, str]] = {"synthesis_run_ref": "SynthesisRun"}

    kind: Literal["TrainingJob"] = Field(description="TrainingJob.")
