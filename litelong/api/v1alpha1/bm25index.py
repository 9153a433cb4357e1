"""BM25Index: a corpus of short documents → a BM25 full-text index."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from .meta import CamelModel, OutputsBase, OutputSpec, PodOptions, Resource, StatusBase


class CorpusSource(CamelModel):
    """One set of corpus files."""

    uri: str = Field(
        min_length=1,
        description=(
            "fsspec URI or glob (s3://bucket/fineweb/*.parquet, ./data/*.jsonl.zst); "
            "builtin://wiki_vital_en.jsonl.zst is the sample shipped with litelong."
        ),
    )
    format: Literal["jsonl", "parquet"] | None = Field(
        default=None,
        description="jsonl (plain, .gz or .zst) or parquet; unset: from the file extension.",
    )
    text_field: str = Field(default="text", min_length=1, description="Field holding the text.")
    id_field: str | None = Field(
        default=None, description="Field holding a document id; unset: a hash of the text."
    )


class Analysis(CamelModel):
    """How text is split into terms (the paper: English stemming and stop words)."""

    language: Literal["english"] = Field(default="english", description="Analyzer language.")
    stem: bool = Field(default=True, description="Snowball stemming.")
    stopwords: bool = Field(default=True, description="Drop stop words.")


class ManticoreStorage(CamelModel):
    size: str = Field(default="100Gi", description="PVC size per Manticore pod.")
    storage_class_name: str | None = Field(default=None, description="StorageClass of the PVCs.")
    retention: Literal["Delete", "Retain"] = Field(
        default="Delete",
        description="Delete: the PVCs go with their StatefulSet (the index deleted, or an "
        "earlier spec replaced by a successful rerun); Retain: they stay until deleted by hand. "
        "Runtime-only: read when the StatefulSet is created.",
    )


class ManticoreOptions(CamelModel):
    """A Manticore Search cluster run by the operator (managed) or already running (external)."""

    mode: Literal["managed", "external"] = Field(
        default="managed", description="managed: the operator runs it; external: use `url`."
    )
    shards: int = Field(default=1, ge=1, le=256, description="Pods, each holding 1/shards.")
    replicas: int = Field(
        default=1,
        ge=1,
        le=1,
        description="Copies of each shard: 1 (Manticore replication is not managed yet; a "
        "lost pod is rebuilt by rerunning the index).",
    )
    storage: ManticoreStorage = Field(default_factory=ManticoreStorage, description="Volumes.")
    url: str | None = Field(default=None, description="HTTP URL of an external Manticore.")


class Backend(CamelModel):
    """The engine that holds the index."""

    type: Literal["tantivy", "manticore"] = Field(
        default="tantivy", description="tantivy: embedded, on disk; manticore: a cluster."
    )
    manticore: ManticoreOptions | None = Field(
        default=None, description="Manticore options when type is manticore."
    )

    @model_validator(mode="after")
    def _manticore_needs_options(self) -> Backend:
        if self.type == "manticore":
            options = self.manticore or ManticoreOptions()
            if options.mode == "external" and not options.url:
                raise ValueError("manticore.url is required when manticore.mode is external")
            self.manticore = options
        return self


class Writer(CamelModel):
    """Index writer resources. Runtime-only."""

    threads: int = Field(default=0, ge=0, le=256, description="Writer threads; 0: automatic.")
    heap_mb: int = Field(default=512, ge=16, description="Writer memory budget in MiB.")
    readers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Processes parsing corpus files in parallel; 0: one. Worth raising only "
        "on many-core machines with many files.",
    )
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Manticore: documents per bulk request (NDJSON lines).",
    )
    in_flight: int = Field(
        default=4, ge=1, le=64, description="Manticore: bulk requests in flight per loader."
    )


class ChunkIndex(CamelModel):
    """A second index of the corpus cut into chunks: what NExtLong's hard negatives come from.

    Built once per corpus, next to the document index, and shared by every SynthesisRun in
    mode nextlong whose `nextlong.chunkChars` matches.
    """

    enabled: bool = Field(default=False, description="Also index the corpus cut into chunks.")
    chunk_chars: int = Field(
        default=2048,
        ge=64,
        description="Chunk size in characters: `\\n`-separated lines grouped greedily while "
        "within it; a longer line is a chunk of its own (NExtLong: 2048).",
    )


class BM25IndexSpec(CamelModel):
    """Read, clean, deduplicate and index a corpus."""

    corpus: list[CorpusSource] = Field(min_length=1, description="Corpus files to index.")
    min_chars: int = Field(
        default=20, ge=0, description="Shorter documents are skipped (the paper: 20)."
    )
    max_chars: int = Field(
        default=4_000_000,
        ge=1,
        description="Longer documents are cut into parts of at most this many characters (at "
        "paragraph, line or sentence breaks), ids `<id>#part<n>`; or skipped (tooLong: drop).",
    )
    too_long: Literal["split", "drop"] = Field(
        default="split",
        description="What happens to a document over maxChars: split into parts, or drop it "
        "(counted as too_long).",
    )
    dedup: Literal["none", "exact"] = Field(
        default="exact", description="exact: drop documents whose normalised text repeats."
    )
    partition: Literal["content", "files"] = Field(
        default="content",
        description="How shards split the corpus. content: every shard reads every file and "
        "keeps the documents whose content hash falls in it, so exact dedup is global; "
        "files: shard i of N reads only its share of the files (balanced by size) and dedups "
        "within that share, so an exact duplicate in two shards' files stays twice. files "
        "needs at least as many files as parallelism; choose it for many files at cluster "
        "scale, content for global exact dedup.",
    )
    analysis: Analysis = Field(default_factory=Analysis, description="Term analysis.")
    backend: Backend = Field(default_factory=Backend, description="Search engine.")
    chunks: ChunkIndex = Field(
        default_factory=ChunkIndex, description="Chunk index for NExtLong hard negatives."
    )
    writer: Writer = Field(default_factory=Writer, description="Writer resources (runtime).")
    parallelism: int = Field(
        default=1, ge=1, le=1024, description="Index parts built in parallel (Indexed Job)."
    )
    output: OutputSpec = Field(default_factory=OutputSpec, description="Where the index goes.")
    pod: PodOptions = Field(default_factory=PodOptions, description="Pod options in a cluster.")

    @model_validator(mode="after")
    def _bounds(self) -> BM25IndexSpec:
        if self.max_chars <= self.min_chars:
            raise ValueError("maxChars must be greater than minChars")
        if self.chunks.enabled and self.backend.type == "manticore":
            raise ValueError(
                "chunks.enabled: the chunk index (NExtLong's hard negatives) is built by the "
                "tantivy backend only; use backend.type tantivy for a nextlong index"
            )
        return self


class BM25IndexOutputs(OutputsBase):
    documents: int | None = Field(default=None, description="Documents indexed.")
    parts: int | None = Field(default=None, description="Index parts.")
    skipped: int | None = Field(default=None, description="Corpus records skipped, all reasons.")
    documents_per_shard: list[int] | None = Field(
        default=None, description="Manticore: documents in each shard, in shard order."
    )


def shard_count_key(shard: int) -> str:
    """The manifest count of documents a Manticore index holds in `shard`."""
    return f"shard-{shard}/documents"


def documents_per_shard(counts: dict[str, int]) -> list[int] | None:
    """Per-shard document counts from a manifest's counts; None for a tantivy index."""
    shards = sum(1 for key in counts if key.startswith("shard-") and key.endswith("/documents"))
    if not shards:
        return None
    return [counts.get(shard_count_key(shard), 0) for shard in range(shards)]


class BM25IndexStatus(StatusBase):
    outputs: BM25IndexOutputs = Field(
        default_factory=BM25IndexOutputs, description="The committed index."
    )


class BM25Index(Resource[BM25IndexSpec, BM25IndexStatus]):
    """A BM25 index of a corpus."""

    plural: ClassVar[str] = "bm25indexes"
    short_names: ClassVar[tuple[str, ...]] = ("bm25",)
    progress_column: ClassVar[tuple[str, str, str]] = (
        "Docs",
        ".status.outputs.documents",
        "integer",
    )
    runtime_fields: ClassVar[frozenset[str]] = Resource.runtime_fields | {
        "writer",
        "backend.manticore.storage.retention",
    }
    output_count: ClassVar[str | None] = "documents"

    kind: Literal["BM25Index"] = Field(description="BM25Index.")

    def _canonical_spec(self) -> dict[str, Any]:
        spec = super()._canonical_spec()
        if spec.get("partition") == "content":  # the default, as before the field existed:
            del spec["partition"]  # indexes committed then keep their identity
        return spec
