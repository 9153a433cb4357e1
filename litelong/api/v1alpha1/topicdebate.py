"""TopicDebate: BISAC subjects → topics by two debater LLMs and a judge (arXiv 2509.15568)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .meta import (
    CamelModel,
    OutputsBase,
    OutputSpec,
    PodOptions,
    Resource,
    SecretKeyRef,
    StatusBase,
)

#: `baseURL: local` is the embedded llama.cpp server, which serves this one model.
LOCAL = "local"
LOCAL_MODEL = "smollm2"


class TaxonomySelection(CamelModel):
    """Which BISAC subjects to debate."""

    source: Literal["bisac"] = Field(default="bisac", description="The taxonomy (BISAC).")
    include: list[str] = Field(
        default_factory=list,
        description="Subject code globs (SCI*, MAT003000) or heading names; empty: all subjects.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Code globs or headings removed after `include`."
    )
    max_subjects: int | None = Field(
        default=None, ge=1, description="Deterministic sample of at most this many subjects."
    )
    seed: int = Field(default=0, description="Seed of the `maxSubjects` sample.")


class Endpoint(CamelModel):
    """An OpenAI-compatible chat endpoint (vLLM, llama.cpp, OpenAI...)."""

    base_url: str = Field(
        default="local",
        alias="baseURL",
        description='Base URL ending in /v1, or "local" for the embedded llama.cpp server.',
    )
    model: str = Field(default="smollm2", description="Model name the endpoint serves.")
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the API key, if the endpoint needs one."
    )
    timeout_seconds: float = Field(default=120.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(default=3, ge=0, le=20, description="Retries on transient errors.")

    @model_validator(mode="after")
    def _known_server(self) -> Endpoint:
        if self.base_url == LOCAL:
            if self.model != LOCAL_MODEL:
                raise ValueError(
                    f"baseURL: local serves only model {LOCAL_MODEL!r}, not {self.model!r}; "
                    "serve other models with vLLM and set baseURL to it"
                )
        elif not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f'baseURL must be "local" or an http(s) URL ending in /v1, not {self.base_url!r}'
            )
        return self


class Debater(CamelModel):
    """One of the two debaters."""

    name: str = Field(
        min_length=1, max_length=63, description="Label used in outputs (e.g. qwen, mistral)."
    )
    endpoint: Endpoint = Field(default_factory=Endpoint, description="Where the model runs.")


class Judge(CamelModel):
    """The judge that reads all topics with their critiques and rejects the weak ones."""

    endpoint: Endpoint = Field(default_factory=Endpoint, description="Where the model runs.")


class Sampling(CamelModel):
    """Sampling parameters for every request (the paper: temperature 0.6, top-p 0.95)."""

    temperature: float = Field(default=0.6, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(default=2048, ge=16, description="Maximum tokens per answer.")
    seed: int = Field(
        default=0, description="Sent with every request; servers that honour it answer alike."
    )


class TopicDebateSpec(CamelModel):
    """Select subjects, run the propose → cross-critique → judge debate, keep topics."""

    taxonomy: TaxonomySelection = Field(
        default_factory=TaxonomySelection, description="Which subjects to debate."
    )
    debaters: list[Debater] = Field(
        min_length=2, max_length=2, description="Exactly two debaters; each critiques the other."
    )
    judge: Judge = Field(default_factory=Judge, description="The judge.")
    topics_per_subject: int = Field(
        default=10, ge=1, le=100, description="Topics wanted per subject; each debater proposes 2x."
    )
    retention: Literal["filterReject", "keepAccepted", "keepFixedK"] = Field(
        default="filterReject",
        description=(
            "filterReject: all proposed minus the judge's rejections (best in the paper); "
            "keepAccepted: only critique-accepted; keepFixedK: a fixed number per subject."
        ),
    )
    fixed_k: int | None = Field(
        default=None,
        ge=1,
        description="Topics kept per subject by keepFixedK (default: topicsPerSubject).",
    )
    sampling: Sampling = Field(default_factory=Sampling, description="Sampling for all requests.")
    concurrency: int = Field(
        default=16, ge=1, le=1024, description="Requests in flight per endpoint."
    )
    parallelism: int = Field(
        default=1, ge=1, le=1024, description="Shards (Indexed Job completions)."
    )
    output: OutputSpec = Field(
        default_factory=OutputSpec, description="Where topics are committed."
    )
    pod: PodOptions = Field(default_factory=PodOptions, description="Pod options in a cluster.")

    @model_validator(mode="after")
    def _distinct_debaters(self) -> TopicDebateSpec:
        if self.debaters[0].name == self.debaters[1].name:
            raise ValueError("debaters must have distinct names")
        return self


class TopicDebateOutputs(OutputsBase):
    subjects: int | None = Field(default=None, description="Subjects debated.")
    topics: int | None = Field(default=None, description="Topics kept.")


class TopicDebateStatus(StatusBase):
    outputs: TopicDebateOutputs = Field(
        default_factory=TopicDebateOutputs, description="The committed topics."
    )


class TopicDebate(Resource[TopicDebateSpec, TopicDebateStatus]):
    """Topics from a multi-LLM debate over the BISAC taxonomy."""

    plural: ClassVar[str] = "topicdebates"
    short_names: ClassVar[tuple[str, ...]] = ("td",)
    progress_column: ClassVar[tuple[str, str, str]] = (
        "Topics",
        ".status.outputs.topics",
        "integer",
    )
    runtime_fields: ClassVar[frozenset[str]] = Resource.runtime_fields | {"concurrency"}
    output_count: ClassVar[str | None] = "topics"

    kind: Literal["TopicDebate"] = Field(description="TopicDebate.")
