"""SynthesisRun: topics x index → long-context samples of exactly `targetTokens` tokens."""

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

#: 4 Mi tokens: far beyond any model's context today, and a typo (an extra digit) is caught.
MAX_TARGET_TOKENS = 4_194_304


class Tokenizer(CamelModel):
    name: str | None = Field(
        default=None,
        description="Hugging Face tokenizer name or path; unset: the offline default (SmolLM2's).",
    )


class Retrieval(CamelModel):
    top_k: int = Field(
        default=1000, ge=1, le=100_000, description="Candidates retrieved per topic."
    )
    order: Literal["shuffle", "score"] = Field(
        default="shuffle", description="Order of documents in a sample: seeded shuffle or by score."
    )


class Reuse(CamelModel):
    max_uses_per_document: int | None = Field(
        default=1,
        ge=1,
        description="Samples a document (or a piece of a long one) may appear in: 1 draws "
        "without replacement across the dataset; null: unbounded.",
    )


class NExtLong(CamelModel):
    """Hard-negative extension (NExtLong, arXiv 2501.12766)."""

    chunk_chars: int = Field(default=2048, ge=64, description="Meta-chunk size in characters.")
    negatives: Literal["bm25", "dense"] = Field(
        default="bm25", description="How hard negatives are retrieved for a meta-chunk."
    )
    expansion: float = Field(default=1.5, gt=0, description="w in k = (T*E*w - S) / (p*s).")
    meta_share: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="Share of targetTokens the meta-document takes: a topic's retrieved "
        "documents, one per line, until it is reached; the rest are hard negatives.",
    )
    embedding_model: str | None = Field(
        default=None, description="sentence-transformers model for dense; unset: all-MiniLM-L6-v2."
    )


class SynthesisOutput(OutputSpec):
    format: Literal["jsonl", "parquet", "mds"] = Field(
        default="mds", description="mds (mosaicml-streaming, for training), parquet or jsonl."
    )
    shard_size_bytes: int = Field(
        default=1 << 27, ge=1 << 16, description="Target size of each output shard file."
    )


class SynthesisRunSpec(CamelModel):
    """Retrieve documents per topic and concatenate them into long samples."""

    topic_debate_ref: ResourceName | None = Field(
        default=None, description="TopicDebate giving the topics (not used by mode standard)."
    )
    index_ref: ResourceName = Field(description="BM25Index to retrieve from.")
    mode: Literal["litelong", "nextlong", "standard"] = Field(
        default="litelong",
        description=(
            "litelong: topic retrieval; nextlong: plus hard negatives; "
            "standard: random concatenation (the paper's baseline)."
        ),
    )
    tokenizer: Tokenizer = Field(
        default_factory=Tokenizer, description="Tokenizer counting tokens."
    )
    target_tokens: int = Field(
        default=131_072, ge=16, le=MAX_TARGET_TOKENS, description="Exact tokens per sample."
    )
    samples_per_topic: int = Field(default=4, ge=1, le=10_000, description="Samples per topic.")
    retrieval: Retrieval = Field(default_factory=Retrieval, description="Topic retrieval.")
    separator: str | None = Field(
        default=None,
        description="What follows each document. Unset: the tokenizer's end-of-text token "
        "(ProLong's packing), so a sample's text tokenizes back to exactly its input_ids; a "
        "text (e.g. two newlines) is tokenized on its own and the text then tokenizes to about "
        "as many tokens, not exactly the same ids.",
    )
    reuse: Reuse = Field(default_factory=Reuse, description="Document reuse across the dataset.")
    nextlong: NExtLong = Field(default_factory=NExtLong, description="Options of mode nextlong.")
    seed: int = Field(default=0, description="Seed for shuffles and sampling.")
    min_samples_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "Warn (CLI and status) when fewer than this share of the samples asked for "
            "(topics x samplesPerTopic) could be filled. A check, not part of the identity."
        ),
    )
    parallelism: int = Field(default=1, ge=1, le=4096, description="Shards of topics.")
    output: SynthesisOutput = Field(default_factory=SynthesisOutput, description="Output format.")
    pod: PodOptions = Field(default_factory=PodOptions, description="Pod options in a cluster.")

    @model_validator(mode="after")
    def _topics_needed(self) -> SynthesisRunSpec:
        if self.mode != "standard" and not self.topic_debate_ref:
            raise ValueError(f"topicDebateRef is required in mode {self.mode}")
        return self


class SynthesisRunOutputs(OutputsBase):
    samples: int | None = Field(default=None, description="Samples written.")
    samples_requested: int | None = Field(
        default=None, description="Samples asked for: topics x samplesPerTopic."
    )
    tokens: int | None = Field(default=None, description="Tokens written.")


class SynthesisRunStatus(StatusBase):
    outputs: SynthesisRunOutputs = Field(
        default_factory=SynthesisRunOutputs, description="The committed dataset."
    )


class SynthesisRun(Resource[SynthesisRunSpec, SynthesisRunStatus]):
    """Long-context training samples made from topics and an index."""

    plural: ClassVar[str] = "synthesisruns"
    short_names: ClassVar[tuple[str, ...]] = ("synth",)
    progress_column: ClassVar[tuple[str, str, str]] = (
        "Samples",
        ".status.outputs.samples",
        "integer",
    )
    ref_fields: ClassVar[dict[str, str]] = {
        "topic_debate_ref": "TopicDebate",
        "index_ref": "BM25Index",
    }
    runtime_fields: ClassVar[frozenset[str]] = Resource.runtime_fields | {"minSamplesRatio"}
    output_count: ClassVar[str | None] = "samples"

    kind: Literal["SynthesisRun"] = Field(description="SynthesisRun.")

    def samples_shortfall(self, counts: dict[str, int]) -> str | None:
        """What to say when the committed counts hold under `minSamplesRatio` of the samples
        asked for (topics x samplesPerTopic); None when enough were filled."""
        asked = counts.get("samples_requested", 0)
        written = counts.get("samples", 0)
        ratio = self.spec.min_samples_ratio
        if not asked or written >= ratio * asked:
            return None
        short = (
            f"only {written:,} of {asked:,} samples asked for ({written / asked:.0%}, under "
            f"minSamplesRatio {ratio:.0%})"
        )
        if "samples_underfilled" not in counts:
            return short
        return (
            f"{short}: {counts['samples_underfilled']:,} underfilled, "
            f"{counts.get('topics_without_hits', 0):,} topics without hits"
        )
