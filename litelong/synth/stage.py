"""The SynthesisRun stage: this shard's topics → committed long samples.

Topics are dealt to shards by number (topic i to shard i mod N); each topic's samples depend
only on the spec, the seed and the committed inputs, so N=1 and N=3 give the same dataset.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import orjson

from ..api.v1alpha1.synthesisrun import SynthesisRun, SynthesisRunSpec
from ..index import Retriever, open_index
from ..progress import Progress
from ..skips import SkipCounter
from ..store import Artifact, ArtifactStore, NotCommitted
from .assemble import Built, Separator, TokenizedDocuments, fill_samples
from .candidates import Candidates, Topic, debate_topics, reuse_allowance, standard_topics
from .sample import Sample
from .tokenizer import load_tokenizer
from .writers import open_writer


class ModeUnavailable(RuntimeError):
    """The spec asks for a synthesis mode this build cannot run."""


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
    if spec.mode == "nextlong":
        raise ModeUnavailable(
            f"SynthesisRun/{resource.name}: mode nextlong is not available in this version of "
            "litelong; use mode litelong or standard"
        )
    index = store.latest_committed("BM25Index", spec.index_ref)
    debate = (
        store.latest_committed("TopicDebate", spec.topic_debate_ref)
        if spec.topic_debate_ref
        else None
    )
    retriever = open_index(index)
    try:
        topics = _topics(spec, debate, retriever)
        candidates = Candidates(spec, retriever)
        mine = [topic for topic in topics if topic.number % of == shard]
        limited = (  # every topic is retrieved; this shard keeps its own topics' lists
            {
                number: (ids, excluded)
                for number, ids, excluded in reuse_allowance(topics, candidates, limit, spec.seed)
                if number % of == shard
            }
            if (limit := spec.reuse.max_uses_per_document)
            else {}
        )
        tokenizer = load_tokenizer(spec.tokenizer.name)
        documents = TokenizedDocuments(retriever, tokenizer)
        separator = Separator(tokenizer, spec.separator)
        counts: Counter[str] = Counter(topics=len(mine))
        progress.start(len(mine), "topics")
        writer = open_writer(spec.output.format, folder, spec.output.shard_size_bytes)
        with writer:
            for topic in mine:
                if topic.number in limited:
                    ids, excluded = limited[topic.number]
                    counts["skipped.reuse_limited"] += excluded
                else:
                    ids = candidates(topic)
                result = fill_samples(
                    documents.stream(ids), spec.samples_per_topic, spec.target_tokens, separator
                )
                counts.update(result.counts)
                counts["topics_without_hits"] += not ids
                counts["topics_underfilled"] += len(result.samples) < spec.samples_per_topic
                for number, built in enumerate(result.samples):
                    writer.write(_sample(spec, topic, number, built))
                progress.advance(1)
        stats = writer.close()
        counts.update(samples=stats.samples, tokens=stats.tokens)
        counts["documents_tokenized"] = documents.tokenized
    finally:
        retriever.close()
    (folder / "inputs.json").write_bytes(
        orjson.dumps(
            {
                "index": index.uri,
                "topic_debate": debate.uri if debate else None,
                "tokenizer": spec.tokenizer.name or "smollm2 (litelong default)",
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    return dict(sorted(counts.items())), SkipCounter(shard, of)


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
        retriever = open_index(store.latest_committed("BM25Index", resource.spec.index_ref))
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
