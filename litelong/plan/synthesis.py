"""SynthesisRun: samples, tokens, documents needed against available, time and bytes.

    documents per topic available = hits of the topic's query (top `topK`), from real queries
                                    when the index and the topics are committed, else topK;
                                    with `reuse.maxUsesPerDocument` k, a document retrieved by
                                    more topics counts for the k that rank it highest (the
                                    stage's sharing rule, synth/assembly/candidates.py `claims`)
    tokens per document           = text bytes per document x tokens per byte
    samples per topic             = min(samplesPerTopic, available tokens // targetTokens)
    tokens                        = samples x targetTokens
    tokenized                     = per topic: min(hits, max(16, samples x documents per
                                    sample + 4)) documents, whole, x tokens per document,
                                    x the share of first fetches that are distinct (real
                                    queries: a document is tokenized once per shard)
    build time                    = tokenized / tokenized tokens per second + seconds per run
    bytes                         = tokens x bytes per token + fixed bytes (report, metadata)

Rates are per mode and output format, measured by `--calibrate` with a real SynthesisRun of
the same mode, format and target length. Mode nextlong with dense negatives also embeds every
chunk of the index once: chunks / (chunks per GPU-second).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.v1alpha1 import BM25IndexSpec, SynthesisRun
from ..index import open_index
from ..store import Artifact, ArtifactStore, NotCommitted
from ..synth.assembly import FIRST_FETCH_BATCH, MIN_FETCH_BATCH, debate_topics
from .calibration import Calibration, SynthesisRates
from .corpus_sample import sample_corpus
from .defaults import EMBED_CHUNKS_PER_GPU_S, SYNTHESIS, TOKENS_PER_BYTE
from .estimate import Estimate, Plan

#: Topics queried at most when the index exists; the rest are taken to be like them.
QUERIED_TOPICS = 500


@dataclass
class Inputs:
    topics: int
    hits: list[int] | None  # per queried topic, when real queries were made
    documents: float
    text_bytes_per_document: float
    chunks: float
    basis: list[str]
    distinct: float = 1.0  # share of fetched documents not fetched by another topic before


def rates_key(resource: SynthesisRun) -> str:
    return f"{resource.spec.mode}/{resource.spec.output.format}"


def estimate_synthesis(
    resource: SynthesisRun, calibration: Calibration, store: ArtifactStore, plan: Plan
) -> Estimate:
    spec = resource.spec
    inputs = _inputs(resource, store, plan)
    key = rates_key(resource)
    rates: SynthesisRates = calibration.synthesis.get(key) or SYNTHESIS
    source = calibration.label if key in calibration.synthesis else "bench/README.md default"
    tokens_per_byte = calibration.tokens_per_byte or TOKENS_PER_BYTE
    doc_tokens = max(1.0, inputs.text_bytes_per_document * tokens_per_byte)
    share = spec.nextlong.meta_share if spec.mode == "nextlong" else 1.0
    needed = spec.target_tokens * share / doc_tokens  # documents per sample
    if spec.mode == "standard":
        fits = [spec.samples_per_topic]
        available = inputs.documents
    elif inputs.hits:
        fits = [min(spec.samples_per_topic, int(h / needed)) for h in inputs.hits]
        available = sum(inputs.hits) / len(inputs.hits)
    else:
        available = min(spec.retrieval.top_k, inputs.documents)
        fits = [min(spec.samples_per_topic, int(available / needed))]
    samples = round(sum(fits) * inputs.topics / len(fits))
    tokenized = (
        tokenized_tokens(fits, needed, available, doc_tokens)
        * inputs.topics
        / len(fits)
        * inputs.distinct
    )
    underfilled = round(sum(f < spec.samples_per_topic for f in fits) * inputs.topics / len(fits))
    tokens = samples * spec.target_tokens
    build = tokenized / rates.tokens_per_s
    wall = build / spec.parallelism + rates.fixed_seconds
    size = tokens * rates.bytes_per_token + rates.fixed_bytes
    basis = [
        *inputs.basis,
        f"{doc_tokens:,.0f} tokens per document ({inputs.text_bytes_per_document:,.0f} bytes x "
        f"{tokens_per_byte:.3f} tokens/byte); {needed:,.1f} documents per sample",
        f"{tokenized:,.0f} tokens tokenized (whole documents, fetched at least "
        f"{FIRST_FETCH_BATCH} at a time)",
        f"{rates.tokens_per_s:,.0f} tokenized tokens/s, {rates.fixed_seconds:.1f} s per run "
        f"(commit, report), {rates.bytes_per_token:.2f} bytes/token for {key} ({source})",
    ]
    gpu_hours = 0.0
    figures = {
        "topics": inputs.topics,
        "samples": samples,
        "tokens": tokens,
        "tokens_tokenized": round(tokenized),
        "documents_needed_per_sample": round(needed, 1),
        "documents_available_per_topic": round(available, 1),
        "topics_underfilled": underfilled,
        "format": spec.output.format,
    }
    if spec.mode == "nextlong" and spec.nextlong.negatives == "dense":
        gpu_hours = inputs.chunks / EMBED_CHUNKS_PER_GPU_S / 3600
        figures["chunks_embedded"] = round(inputs.chunks)
        basis.append(
            f"dense negatives: {inputs.chunks:,.0f} chunks at {EMBED_CHUNKS_PER_GPU_S:,.0f} "
            "chunks/s on one H100 (bench/README.md, all-MiniLM-L6-v2)"
        )
    warnings = []
    if samples == 0:
        warnings.append("no sample can be filled: the stage would fail (empty output)")
    return Estimate(
        kind=resource.kind,
        name=resource.name,
        wall_seconds=wall,
        bytes=round(size),
        cpu_hours=(build + rates.fixed_seconds * spec.parallelism) * rates.cpu_per_wall / 3600,
        gpu_hours=gpu_hours,
        figures=figures,
        basis=basis,
        warnings=warnings,
    )


def tokenized_tokens(fits: list[int], needed: float, available: float, doc_tokens: float) -> float:
    """Tokens the stage tokenizes for these topics (samples each in `fits`): every document it
    fetches is tokenized whole, the one cut at the budget included; a topic fetches at least
    `FIRST_FETCH_BATCH` documents, then batches sized to what is still needed (over-fetching
    about half the smallest batch), never more than its hits."""
    return sum(
        min(available, max(FIRST_FETCH_BATCH, n * needed + MIN_FETCH_BATCH / 2)) * doc_tokens
        for n in fits
    )


def _inputs(resource: SynthesisRun, store: ArtifactStore, plan: Plan) -> Inputs:
    """Topics and documents: committed artifacts first (read through the store), else the
    estimates of the resources planned before this one."""
    spec = resource.spec
    basis: list[str] = []
    index_plan = plan.find("BM25Index", spec.index_ref)
    try:
        index = store.latest_committed("BM25Index", spec.index_ref, resource.namespace)
    except NotCommitted:
        index = None
    if index is not None:
        manifest = index.manifest()
        documents = float(manifest.counts.get("documents", 0))
        chunks = float(manifest.counts.get("chunks", 0))
        per_doc = sample_corpus(BM25IndexSpec.model_validate(manifest.spec)).text_bytes_per_document
        basis.append(f"BM25Index/{spec.index_ref} committed: {documents:,.0f} documents")
    elif index_plan is not None:
        documents = float(index_plan.figures["documents"])
        chunks = float(index_plan.figures.get("chunks", 0))
        per_doc = index_plan.figures["text_bytes"] / max(1.0, documents)
        basis.append(f"BM25Index/{spec.index_ref} not built: {documents:,.0f} documents planned")
    else:
        raise NotCommitted(
            f"SynthesisRun/{resource.name}: indexRef {spec.index_ref!r} is neither in the files "
            f"nor committed in {store.uri}"
        )
    topics_count, queries = _topics(resource, store, plan, basis, documents)
    hits, distinct = None, 1.0
    if index is not None and queries is not None:
        hits, retrieved, distinct = _query(
            index, queries, spec.retrieval.top_k, spec.reuse.max_uses_per_document
        )
        if retrieved:
            per_doc = retrieved
        basis.append(
            f"{len(hits)} topic queries run against the index (top {spec.retrieval.top_k}); "
            f"their first {FIRST_FETCH_BATCH} hits hold {per_doc:,.0f} text bytes each, "
            f"{distinct:.0%} of them distinct"
        )
    return Inputs(topics_count, hits, documents, per_doc, chunks, basis, distinct)


def _query(
    index: Artifact, queries: list[str], top_k: int, max_uses: int | None = None
) -> tuple[list[int], float, float]:
    """Hits per query (those the topic may use under `max_uses`); the mean UTF-8 size of the
    documents a topic's first fetch gets (retrieval favours some lengths: the corpus mean is
    not what a sample is made of); and the
    share of those first fetches that are distinct (the stage tokenizes a document once and
    keeps its tokens for the next topic that retrieves it)."""
    retriever = open_index(index)
    try:
        hits, nbytes, fetched = [], 0, []
        ranks: dict[str, list[tuple[int, int]]] = {}  # document -> (rank, topic) of each query
        for topic, query in enumerate(queries):
            found = retriever.search(query, top_k)
            hits.append(len(found))
            for rank, (doc_id, _) in enumerate(found):
                ranks.setdefault(doc_id, []).append((rank, topic))
            first = [doc_id for doc_id, _ in found[:FIRST_FETCH_BATCH]]
            nbytes += sum(len(text.encode()) for text in retriever.get(first))
            fetched += first
    finally:
        retriever.close()
    if max_uses is not None:
        hits = [0] * len(queries)
        for claimers in ranks.values():
            for _, topic in sorted(claimers)[:max_uses]:
                hits[topic] += 1
    if not fetched:
        return hits, 0.0, 1.0
    return hits, nbytes / len(fetched), len(set(fetched)) / len(fetched)


def _topics(
    resource: SynthesisRun, store: ArtifactStore, plan: Plan, basis: list[str], documents: float
) -> tuple[int, list[str] | None]:
    spec = resource.spec
    if not spec.topic_debate_ref:  # mode standard without a debate
        count = max(1, int(documents) // spec.retrieval.top_k)
        basis.append(f"{count} random draws (documents / topK)")
        return count, None
    try:
        debate = store.latest_committed("TopicDebate", spec.topic_debate_ref, resource.namespace)
    except NotCommitted:
        debate = None
    if debate is not None:
        topics = debate_topics(debate)
        basis.append(f"TopicDebate/{spec.topic_debate_ref} committed: {len(topics)} topics")
        step = max(1, len(topics) // QUERIED_TOPICS)
        return len(topics), [t.query for t in topics[::step]][:QUERIED_TOPICS]
    debate_plan = plan.find("TopicDebate", spec.topic_debate_ref)
    if debate_plan is None:
        raise NotCommitted(
            f"SynthesisRun/{resource.name}: topicDebateRef {spec.topic_debate_ref!r} is neither "
            f"in the files nor committed in {store.uri}"
        )
    count = int(debate_plan.figures["topics"])
    basis.append(f"TopicDebate/{spec.topic_debate_ref} not run: {count} topics planned")
    return count, None
