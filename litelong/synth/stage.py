"""The SynthesisRun stage: this shard's topics → committed long samples.

Topics are dealt to shards by number (topic i to shard i mod N); each topic's samples depend
only on the spec, the seed and the committed inputs, so N=1 and N=3 give the same dataset.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson

from ..api.v1alpha1.synthesisrun import SynthesisRun, SynthesisRunSpec
from ..dataset.sample import Sample
from ..dataset.writers import open_writer
from ..index import Retriever, open_chunk_index, open_index
from ..progress import Progress
from ..skips import SkipCounter
from ..store import Artifact, ArtifactStore, NotCommitted
from ..tokenizer import load_tokenizer
from .assembly import (
    PIECE_CHARS_PER_TOKEN,
    Built,
    Candidates,
    ClaimTable,
    Separator,
    TokenizedDocuments,
    Topic,
    claims,
    debate_topics,
    fill_samples,
    standard_topics,
)
from .assembly.assemble import DocumentStream
from .nextlong import (
    Bm25Negatives,
    ChunkSlicer,
    DenseNegatives,
    NegativeSource,
    Plan,
    TextSpill,
    claim,
    fill,
    plan_topics,
)
from .report import TOPICS_FILE
from .report.plots import start_early
from .threads import assembly_threads, ordered_map


class ModeUnavailable(RuntimeError):
    """The spec asks for a synthesis mode this build cannot run."""


def _negative_source(
    spec: SynthesisRunSpec, chunks: Retriever, store: ArtifactStore, index: Artifact
) -> NegativeSource:
    if spec.nextlong.negatives == "dense":
        return DenseNegatives(chunks, store, index, spec.nextlong.embedding_model)
    return Bm25Negatives(chunks)


def _nextlong_inputs(spec: SynthesisRunSpec) -> dict[str, str]:
    inputs: dict[str, str] = {"negatives": spec.nextlong.negatives}
    if spec.nextlong.negatives == "dense":
        from .nextlong import DEFAULT_MODEL

        inputs["embedding_model"] = spec.nextlong.embedding_model or DEFAULT_MODEL
    return inputs


def build_part(
    resource: SynthesisRun,
    shard: int,
    of: int,
    folder: Path,
    progress: Progress,
    store: ArtifactStore,
) -> tuple[dict[str, int], SkipCounter]:
    """Assemble this shard's samples into `folder`; returns (counts, skips)."""
    spec = resource.spec
    start_early()  # the report's plotting process imports matplotlib while a core is idle
    index = store.input_of(resource, "BM25Index")  # the exact identities it is made from
    debate = store.input_of(resource, "TopicDebate") if spec.topic_debate_ref else None
    retriever = open_index(index)
    chunks: Retriever | None = None
    pools: ClaimTable | None = None
    spill: TextSpill | None = None
    documents: TokenizedDocuments | None = None
    try:
        topics = _topics(spec, debate, retriever)
        candidates = Candidates(spec, retriever, draws=len(topics))
        mine = [topic for topic in topics if topic.number % of == shard]
        limit = spec.reuse.max_uses_per_document
        nextlong = spec.mode == "nextlong"
        pools = claims(topics, candidates, spec.seed)  # every topic's: how documents are shared
        piece_chars = spec.target_tokens * PIECE_CHARS_PER_TOKEN
        tokenizer = load_tokenizer(spec.tokenizer.name)
        # a document may come back (limit over 1) after the cache forgot it: keep its ids on disk
        documents = TokenizedDocuments(retriever, tokenizer, spill=limit != 1 and not nextlong)
        separator = Separator(tokenizer, spec.separator)
        counts: Counter[str] = Counter(
            topics=len(mine), samples_requested=len(mine) * spec.samples_per_topic
        )
        plans: dict[int, list[Plan]] = {}
        if nextlong:
            chunks, chunk_length = open_chunk_index(index, spec.nextlong.chunk_chars)
            source = _negative_source(spec, chunks, store, index)
            meta_piece_chars = int(spec.nextlong.meta_share * piece_chars) or 1

            def topic_pools() -> Iterator[tuple[Topic, DocumentStream, Counter[str]]]:
                """Every topic's pool (every shard plans every topic; counts only its own),
                read one after the other; a stream's counts are kept once the next is asked
                for, when planning has read it."""
                for topic in topics:
                    own = counts if topic.number % of == shard else Counter()
                    stream = documents.stream(pools[topic.number], meta_piece_chars, limit)
                    yield topic, stream, own
                    own.update(stream.counts)

            spill = TextSpill()
            slicer = ChunkSlicer.of(tokenizer)  # meta-chunks' ids cut from their documents'
            plans = plan_topics(
                spec, topic_pools(), source, chunk_length, spill=spill, slicer=slicer
            )
            every_plan = [plan for topic_plans in plans.values() for plan in topic_plans]
            claim(every_plan, spec.seed, chunks, spill)
            counts["chunks_embedded"] += getattr(source, "embedded", 0)
            chunk_documents = TokenizedDocuments(chunks, tokenizer)
        progress.start(len(mine), "topics")
        writer = open_writer(
            spec.output.format, folder, spec.output.shard_size_bytes, roles=nextlong
        )
        written: set[bytes] = set()  # token hashes: no sample is written twice
        per_topic: list[dict[str, object]] = []
        counts["samples_requested"] = len(mine) * spec.samples_per_topic

        def build_topic(topic: Topic) -> tuple[list[tuple[int, Built]], Counter[str]]:
            """One topic's samples and counts; runs in a worker thread (`ordered_map`)."""
            claimed = pools[topic.number]
            own: Counter[str] = Counter(hits=len(claimed))
            if nextlong:
                built = []
                for plan in plans[topic.number]:
                    filled = fill(
                        plan, tokenizer, chunk_documents, separator, spec.target_tokens, own, spill
                    )
                    if filled is not None:
                        built.append((plan.number, filled))
                return built, own
            stream = documents.stream(claimed, piece_chars, limit)
            result = fill_samples(stream, spec.samples_per_topic, spec.target_tokens, separator)
            own.update(result.counts)
            own["max_topic_tokens"] = result.leftover_tokens
            return list(enumerate(result.samples)), own

        with writer:
            # topics overlap (one's texts are read while another's are tokenized), and come
            # back in order, so the dataset is the same for any number of threads
            assembled = ordered_map(build_topic, mine, assembly_threads())
            for topic, (built, own) in zip(mine, assembled, strict=True):
                hits = own.pop("hits")
                top = max(counts["max_topic_tokens"], own.pop("max_topic_tokens", 0))
                counts.update(own)
                counts["max_topic_tokens"] = top
                counts["topics_without_hits"] += not hits
                samples = [(_sample(spec, topic, n, b), (n, b)) for n, b in built]
                new = [(s, b) for s, b in samples if _first_time(s.token_hash, written, counts)]
                counts["topics_underfilled"] += len(new) < spec.samples_per_topic
                for sample, _ in new:
                    writer.write(sample)
                per_topic.append(_topic_row(topic, hits, [b for _, b in new]))
                progress.advance(1)
        stats = writer.close()
        counts.update(samples=stats.samples, tokens=stats.tokens)
        counts["documents_tokenized"] = documents.tokenized
    finally:
        retriever.close()
        if documents is not None:
            documents.close()
        if pools is not None:
            pools.close()
        if chunks is not None:
            chunks.close()
        if spill is not None:
            spill.close()
    (folder / TOPICS_FILE).write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in per_topic))
    (folder / "inputs.json").write_bytes(
        orjson.dumps(
            {
                "index": index.uri,
                "topic_debate": debate.uri if debate else None,
                "identities": {
                    f"{kind}/{artifact.name}": artifact.identity
                    for kind, artifact in (("BM25Index", index), ("TopicDebate", debate))
                    if artifact is not None
                },
                "tokenizer": spec.tokenizer.name or "smollm2 (litelong default)",
                **(_nextlong_inputs(spec) if spec.mode == "nextlong" else {}),
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    return dict(sorted(counts.items())), SkipCounter(shard, of)


def _topic_row(topic: Topic, hits: int, built: list[tuple[int, Built]]) -> dict[str, object]:
    """What the report's per-topic table shows of one topic."""
    return {
        "number": topic.number,
        "subject_code": topic.subject_code,
        "topic": topic.topic,
        "query": topic.query,
        "hits": hits,
        "samples": len(built),
        "tokens": sum(len(sample.input_ids) for _, sample in built),
    }


def _first_time(digest: bytes, written: set[bytes], counts: Counter[str]) -> bool:
    """False (counted) for a sample whose tokens (`token_hash`) equal one this shard already
    wrote."""
    if digest in written:
        counts["skipped.duplicate_sample"] += 1
        return False
    written.add(digest)
    return True


def _topics(spec: SynthesisRunSpec, debate: Artifact | None, retriever: Retriever) -> list[Topic]:
    if spec.mode == "standard":
        if debate is not None:  # like for like: as many draws as the debate has topics
            return standard_topics(len(debate_topics(debate)))
        return standard_topics(max(1, retriever.count() // spec.retrieval.top_k))
    assert debate is not None  # the spec requires topicDebateRef outside mode standard
    return debate_topics(debate)


def _sample(spec: SynthesisRunSpec, topic: Topic, number: int, built: Built) -> Sample:
    prefix = topic.subject_code if spec.mode != "standard" else "standard"
    return Sample(
        id=f"{prefix}/{topic.number:06d}/{number}",
        input_ids=built.input_ids,
        text=built.text,
        spans=built.spans,
        topic=topic.topic,
        subject_code=topic.subject_code,
        heading=topic.heading,
        query=topic.query,
    )


def after_commit(resource: SynthesisRun, artifact: Artifact, store: ArtifactStore) -> str:
    """Write the run's report beside its parts (`<artifact>/report/report.html`); returns its
    URI. The report is derived from the committed files: `litelong report` rebuilds it."""
    from .report import write_report

    retriever: Retriever | None
    reason = ""
    try:
        retriever = open_index(store.input_of(resource, "BM25Index"))
    except NotCommitted as exc:
        retriever, reason = None, str(exc)
    try:
        if store.is_local:
            out = Path(artifact.path) / "report"
            write_report(artifact, retriever, out, no_retriever_reason=reason)
            return store.uri_of(str(out / "report.html"))
        with tempfile.TemporaryDirectory() as folder:
            write_report(artifact, retriever, Path(folder), no_retriever_reason=reason)
            store.fs.put(folder + "/", artifact.path + "/report", recursive=True)
        return store.uri_of(artifact.path + "/report/report.html")
    finally:
        if retriever is not None:
            retriever.close()
