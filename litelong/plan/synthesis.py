"""SynthesisRun: samples, tokens, documents needed against available, time and bytes.

    documents per topic available = hits of the topic's query (top `topK`), from real queries
                                    when the index and the topics are committed, else topK;
                                    with `reuse.maxUsesPerDocument` k, a document retrieved by
                                    more topics counts for the k that rank it highest (the
                                    stage's sharing rule, synth/assembly/candidates.py `claims`)
    tokens per document           = text bytes per document x tokens per byte (with real
                                    queries, per topic: the mean size of the 16 documents it
                                    fetches first, shuffled or by score as the stage does)
    samples per topic             = min(samplesPerTopic, available / documents per sample)
    tokens                        = samples x targetTokens
    tokenized                     = per topic: min(hits, max(16, samples x documents per
                                    sample + 4)) documents, whole; when it cannot fill its
                                    samples, all its hits, or with real queries those read
                                    before the stage gives the last sample up (what is left,
                                    at GIVE_UP times, short of what it needs: the stage's
                                    rule, synth/assembly/assemble.py); with real queries the
                                    distinct ones of
                                    all topics (a document is tokenized once per shard) x their
                                    mean size x tokens per byte
    CPU seconds                   = tokenized / tokens per CPU second + per run + report (per
                                    run + per sample); wall time: each over its cores
    bytes                         = tokens x bytes per token + fixed bytes (report, metadata)

Rates are per mode and output format, measured by `--calibrate` with a real SynthesisRun of
the same mode, format and target length. Mode nextlong with dense negatives also embeds every
chunk of the index once: chunks / (chunks per GPU-second).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..api.v1alpha1 import BM25IndexSpec, SynthesisRun
from ..index import open_index
from ..store import Artifact, ArtifactStore, NotCommitted
from ..synth.assembly import (
    FETCH_BATCH,
    FIRST_FETCH_BATCH,
    GIVE_UP,
    MIN_FETCH_BATCH,
    debate_topics,
)
from ..synth.report.coherence import MAX_SAMPLES
from .calibration import Calibration, SynthesisRates
from .corpus_sample import sample_corpus
from .deadline import Scaling, per_shard_cores
from .defaults import EMBED_CHUNKS_PER_GPU_S, SYNTHESIS, TOKENS_PER_BYTE
from .estimate import Estimate, Plan

#: Topics queried at most when the index exists; the rest are taken to be like them.
QUERIED_TOPICS = 500
#: Documents beyond the first fetches whose size is read, for the mean of those tokenized.
SIZED_DOCUMENTS = 2000


@dataclass
class Inputs:
    topics: int
    hits: list[int] | None  # per queried topic, when real queries were made
    documents: float
    text_bytes_per_document: float
    chunks: float
    basis: list[str]
    ranked: list[list[str]] | None = None  # per queried topic, the documents it may use
    sizes: dict[str, int] | None = None  # UTF-8 bytes of a sample of the ranked documents


def rates_key(resource: SynthesisRun) -> str:
    return f"{resource.spec.mode}/{resource.spec.output.format}"


def estimate_synthesis(
    resource: SynthesisRun,
    calibration: Calibration,
    store: ArtifactStore,
    plan: Plan,
) -> Estimate:
    spec = resource.spec
    inputs = _inputs(resource, store, plan)
    key = rates_key(resource)
    rates: SynthesisRates = calibration.synthesis.get(key) or SYNTHESIS
    source = calibration.label if key in calibration.synthesis else "bench/README.md default"
    tokens_per_byte = calibration.tokens_per_byte or TOKENS_PER_BYTE
    doc_tokens = max(1.0, inputs.text_bytes_per_document * tokens_per_byte)
    meta = spec.nextlong.meta_share if spec.mode == "nextlong" else 1.0
    needed = spec.target_tokens * meta / doc_tokens  # documents per sample
    if spec.mode == "standard":
        fits = [spec.samples_per_topic]
        available = inputs.documents
    elif inputs.hits:
        per_topic = topic_needs(inputs, needed, spec.target_tokens * meta / tokens_per_byte)
        fits = [
            min(spec.samples_per_topic, int(h / n))
            for h, n in zip(inputs.hits, per_topic, strict=True)
        ]
        available = sum(inputs.hits) / len(inputs.hits)
    else:
        available = min(spec.retrieval.top_k, inputs.documents)
        fits = [min(spec.samples_per_topic, int(available / needed))]
    samples = round(sum(fits) * inputs.topics / len(fits))
    if not inputs.hits or spec.mode == "standard":
        per_topic = [needed] * len(fits)
    if inputs.ranked is not None and len(inputs.ranked) == len(fits):
        tokenized, fetched = distinct_tokens(
            inputs.ranked,
            inputs.sizes or {},
            fits,
            per_topic,
            spec.samples_per_topic,
            spec.target_tokens * meta / tokens_per_byte,
        )
        tokenized = tokenized * tokens_per_byte * inputs.topics / len(fits)
        fetched_line = f"{fetched:.0%} of the documents fetched by the queried topics distinct"
    else:
        hits = [round(available)] * len(fits)
        tokenized = (
            tokenized_tokens(fits, hits, needed, doc_tokens, spec.samples_per_topic)
            * inputs.topics
            / len(fits)
        )
        fetched_line = "topics taken to fetch distinct documents"
    underfilled = round(sum(f < spec.samples_per_topic for f in fits) * inputs.topics / len(fits))
    tokens = samples * spec.target_tokens
    shards = spec.parallelism
    build_cpu = tokenized / rates.tokens_per_cpu_s
    per_run = rates.build_cpu_seconds / rates.build_cores + report_seconds(rates, samples)
    wall = build_cpu / rates.build_cores / shards + per_run
    size = tokens * rates.bytes_per_token + rates.fixed_bytes
    basis = [
        *inputs.basis,
        f"{doc_tokens:,.0f} tokens per document ({inputs.text_bytes_per_document:,.0f} bytes x "
        f"{tokens_per_byte:.3f} tokens/byte); {needed:,.1f} documents per sample",
        f"{tokenized:,.0f} tokens tokenized (whole documents, fetched at least "
        f"{FIRST_FETCH_BATCH} at a time; a topic that cannot fill its samples reads until what "
        f"is left, at {GIVE_UP}x, cannot fill the last (all its hits without real queries); "
        f"{fetched_line})",
        f"build {rates.tokens_per_cpu_s:,.0f} tokenized tokens per CPU second + "
        f"{rates.build_cpu_seconds:.2f} CPU s per run, on {rates.build_cores:.2f} cores; "
        f"commit and report {rates.report_cpu_seconds:.2f} CPU s per run + "
        f"{rates.report_cpu_seconds_per_sample * 1e3:.0f} ms per sample (at most "
        f"{MAX_SAMPLES}), on {rates.report_cores:.2f} cores; {rates.bytes_per_token:.2f} "
        f"bytes/token for {key} ({source})",
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
    build_cores = per_shard_cores(rates.build_cores)
    report_cores = per_shard_cores(rates.report_cores)
    report_cpu = per_run_cpu(rates, samples, 1) - rates.build_cpu_seconds
    scaling = Scaling(
        unit="cores",
        work=build_cpu,
        fixed_seconds=rates.build_cpu_seconds / build_cores + report_cpu / report_cores,
        per_shard=build_cores,
        max_shards=max(1, inputs.topics),
    )
    warnings = []
    if samples == 0:
        warnings.append("no sample can be filled: the stage would fail (empty output)")
    return Estimate(
        kind=resource.kind,
        name=resource.name,
        wall_seconds=wall,
        bytes=round(size),
        cpu_hours=(build_cpu + per_run_cpu(rates, samples, shards)) / 3600,
        gpu_hours=gpu_hours,
        figures=figures,
        basis=basis,
        warnings=warnings,
        scaling=scaling,
    )


def tokenized_tokens(
    fits: list[int], hits: list[int], needed: float, doc_tokens: float, wanted: int
) -> float:
    """Tokens the stage tokenizes for these topics (samples each in `fits`, of `wanted`; hits
    each in `hits`): every document it fetches is tokenized whole, the one cut at the budget
    included; a topic fetches at least `FIRST_FETCH_BATCH` documents, then batches sized to
    what is still needed (over-fetching about half the smallest batch), never more than its
    hits; a topic that cannot fill all its samples reads all its hits trying."""
    return sum(
        fetch_count(h, n, needed, wanted) * doc_tokens for n, h in zip(fits, hits, strict=True)
    )


def fetch_count(
    hits: int,
    fits: int,
    needed: float,
    wanted: int,
    sizes: list[float] | None = None,
    sample_bytes: float = 0.0,
) -> int:
    """Documents a topic with `hits` hits fetches (and so tokenizes) for `fits` samples of the
    `wanted`: at least `FIRST_FETCH_BATCH`, then batches sized to what is still needed
    (over-fetching about half the smallest batch). One that cannot fill them all reads on for
    the sample that runs out until the stage gives it up (`read_before_giving_up`, from its
    documents' `sizes` in rank order), or all its hits where their sizes are not known."""
    if fits >= wanted:
        return min(hits, math.ceil(max(FIRST_FETCH_BATCH, fits * needed + MIN_FETCH_BATCH / 2)))
    if sizes is None or sample_bytes <= 0:
        return hits
    full = min(hits, math.ceil(fits * needed))
    rest = sizes[full:hits]
    return full + read_before_giving_up(rest, sample_bytes, nothing_read=full == 0)


def read_before_giving_up(sizes: list[float], sample_bytes: float, nothing_read: bool) -> int:
    """Documents (of `sizes` bytes, in order) read for a sample of `sample_bytes` that they
    cannot fill, as the stage reads them (synth/assembly/assemble.py `DocumentStream`): the
    first batch of a topic unchecked (nothing is known of its density yet), then before each
    batch the sample is given up once the bytes left, at `GIVE_UP` times, are short of what
    it still needs."""
    read, still, left = 0, sample_bytes, sum(sizes)
    mean = left / len(sizes) if sizes else 1.0
    while read < len(sizes) and still > 0:
        if nothing_read and read == 0:
            batch = FIRST_FETCH_BATCH
        elif left * GIVE_UP < still:
            break
        else:
            batch = max(MIN_FETCH_BATCH, min(FETCH_BATCH, math.ceil(still / mean) + 2))
        taken = sizes[read : read + batch]
        read += len(taken)
        still -= sum(taken)
        left -= sum(taken)
    return read


def topic_needs(inputs: Inputs, needed: float, sample_bytes: float) -> list[float]:
    """Documents per sample for each queried topic: a sample's text bytes over the mean size
    of the documents the topic fetches first (topics retrieve documents of very different
    lengths: short manual pages, long chapters); `needed`, the mean's, where none is sized."""
    sizes = inputs.sizes or {}
    found = []
    for ids in inputs.ranked or [[] for _ in inputs.hits or []]:
        sized = [sizes[d] for d in ids[:FIRST_FETCH_BATCH] if d in sizes]
        found.append(sample_bytes / (sum(sized) / len(sized)) if sized and sum(sized) else needed)
    return found


def distinct_tokens(
    ranked: list[list[str]],
    sizes: dict[str, int],
    fits: list[int],
    needed: list[float],
    wanted: int,
    sample_bytes: float = 0.0,
) -> tuple[float, float]:
    """Text bytes the stage tokenizes for the queried topics (a document once, however many
    topics fetch it: the stage keeps its tokens), and the share of fetches that are distinct.
    The bytes per document are the mean of the sized ones among those fetched (and stand for
    an unsized one where a topic that cannot fill its samples is followed to where the stage
    gives its last sample up)."""
    known = list(sizes.values())
    mean = sum(known) / len(known) if known else 0.0
    fetched: set[str] = set()
    total = 0
    for ids, n, per_sample in zip(ranked, fits, needed, strict=True):
        ordered = [float(sizes.get(doc_id, mean)) for doc_id in ids] if n < wanted else None
        count = fetch_count(len(ids), n, per_sample, wanted, ordered, sample_bytes)
        fetched.update(ids[:count])
        total += count
    sized = [sizes[doc_id] for doc_id in fetched if doc_id in sizes]
    per_document = sum(sized) / len(sized) if sized else 0.0
    return len(fetched) * per_document, len(fetched) / total if total else 1.0


def report_seconds(rates: SynthesisRates, samples: float) -> float:
    """Wall seconds of the commit and report of a run of `samples` samples."""
    cpu = rates.report_cpu_seconds + rates.report_cpu_seconds_per_sample * min(samples, MAX_SAMPLES)
    return cpu / rates.report_cores


def per_run_cpu(rates: SynthesisRates, samples: float, shards: int) -> float:
    """CPU seconds every shard pays whatever its share: opening the index and the tokenizer,
    and the report (written once, by the shard that commits the run)."""
    report = rates.report_cpu_seconds + rates.report_cpu_seconds_per_sample * min(
        samples, MAX_SAMPLES
    )
    return rates.build_cpu_seconds * shards + report


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
    hits, ranked, sizes = None, None, None
    if index is not None and queries is not None:
        shuffled = spec.retrieval.order == "shuffle"
        ranked, sizes, retrieved = _query(
            index, queries, spec.retrieval.top_k, spec.reuse.max_uses_per_document, shuffled
        )
        hits = [len(ids) for ids in ranked]
        if retrieved:
            per_doc = retrieved
        basis.append(
            f"{len(hits)} topic queries run against the index (top {spec.retrieval.top_k}); "
            f"the first {FIRST_FETCH_BATCH} documents each fetches "
            f"({'shuffled' if shuffled else 'by score'}) hold {per_doc:,.0f} text bytes each"
        )
    return Inputs(topics_count, hits, documents, per_doc, chunks, basis, ranked, sizes)


def _query(
    index: Artifact,
    queries: list[str],
    top_k: int,
    max_uses: int | None = None,
    shuffled: bool = False,
) -> tuple[list[list[str]], dict[str, int], float]:
    """Per query, the documents its topic may use under `max_uses`, in the order the stage
    fetches them (by score, or shuffled as `retrieval.order: shuffle` does); the UTF-8 size of
    its first `FIRST_FETCH_BATCH` and of up to `SIZED_DOCUMENTS` others drawn from all hits; and
    the mean size of those first fetches (retrieval favours some lengths, short documents at
    the top: the corpus mean is not what a sample is made of)."""
    retriever = open_index(index)
    try:
        ranked: list[list[str]] = []
        ranks: dict[str, list[tuple[int, int]]] = {}  # document -> (rank, topic) of each query
        for topic, query in enumerate(queries):
            found = [doc_id for doc_id, _ in retriever.search(query, top_k)]
            ranked.append(found)
            for rank, doc_id in enumerate(found):
                ranks.setdefault(doc_id, []).append((rank, topic))
        if max_uses is not None:  # the topics that rank a document highest claim it
            kept: list[list[tuple[int, str]]] = [[] for _ in queries]
            for doc_id, claimers in ranks.items():
                for rank, topic in sorted(claimers)[:max_uses]:
                    kept[topic].append((rank, doc_id))
            ranked = [[doc_id for _, doc_id in sorted(ids)] for ids in kept]
        if shuffled:
            rng = random.Random(0)
            ranked = [rng.sample(ids, len(ids)) for ids in ranked]
        first = list(dict.fromkeys(d for ids in ranked for d in ids[:FIRST_FETCH_BATCH]))
        rest = sorted(set(ranks) - set(first))
        drawn = random.Random(0).sample(rest, min(SIZED_DOCUMENTS, len(rest)))
        sized = first + drawn
        texts = retriever.get(sized)
        sizes = {d: len(t.encode()) for d, t in zip(sized, texts, strict=True)}
    finally:
        retriever.close()
    firsts = [sizes[d] for ids in ranked for d in ids[:FIRST_FETCH_BATCH]]
    return ranked, sizes, (sum(firsts) / len(firsts) if firsts else 0.0)


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
