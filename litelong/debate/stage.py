"""The TopicDebate stage: one shard of the selected subjects → topics, candidates, transcripts.

Subjects are dealt to shards by position in the (deterministic) selection. Subjects run
concurrently; every answer is cached in the store as it arrives, so a killed shard reruns for
free and yields the same topics. The embedded servers answer one request at a time each, so a
seeded request is answered alike at any concurrency and its topics depend on the spec and seed
alone; other endpoints
promise that only if they batch deterministically (vLLM does not by default). Files of a part:

- `topics.jsonl`: the kept topics, one per line, with their query and every verdict;
- `candidates.jsonl`: every proposed topic, kept or not, and why not (for the ablations);
- `transcripts.jsonl`: every exchange with a model;
- `failures.jsonl`: subjects whose answers stayed unusable, with the raw answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..api.v1alpha1.topicdebate import Endpoint, TopicDebate, TopicDebateSpec
from ..llm import LOCAL, EndpointPool, LocalServer, ResponseCache
from ..llm.local import usable_cpus
from ..progress import Progress
from ..skips import SkipCounter
from ..store import ArtifactStore
from ..taxonomy import Subject, load_bisac
from .protocol import Debate, SubjectOutcome, all_or_none, topic_record

MAX_LOCAL_SERVERS = 8


def subjects_of_shard(spec: TopicDebateSpec, shard: int, of: int) -> list[Subject]:
    return load_bisac().select(spec.taxonomy)[shard::of]


def build_part(
    resource: TopicDebate,
    shard: int,
    of: int,
    folder: Path,
    progress: Progress,
    store: ArtifactStore,
) -> tuple[dict[str, int], SkipCounter]:
    """Debate this shard's subjects into `folder`; returns (counts, skips)."""
    spec = resource.spec
    subjects = subjects_of_shard(spec, shard, of)
    progress.start(len(subjects), "subjects")
    with _local_servers(spec) as local_urls:
        outcomes = asyncio.run(_debate(spec, subjects, store, local_urls, progress))
    return _write_part(outcomes, folder, SkipCounter(shard, of))


@contextlib.contextmanager
def _local_servers(spec: TopicDebateSpec) -> Iterator[list[str]]:
    """The embedded servers' URLs, started only if an endpoint asks for them.

    One request per server, one thread each: llama.cpp batching several requests in one server
    changes their arithmetic with what they are batched with, and so the sampled answers, while
    a server that answers one request at a time gives a seeded request the same answer whatever
    else runs. Several servers keep the cores busy instead."""
    if not any(endpoint.base_url == LOCAL for endpoint in _endpoints(spec)):
        yield []
        return
    count = min(spec.concurrency, MAX_LOCAL_SERVERS, usable_cpus())
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LocalServer(slots=1, threads=1)) for _ in range(count)]
        yield [server.base_url for server in servers]


async def _debate(
    spec: TopicDebateSpec,
    subjects: list[Subject],
    store: ArtifactStore,
    local_urls: list[str],
    progress: Progress,
) -> list[SubjectOutcome]:
    local_url = local_urls[0] if local_urls else ""
    pool = EndpointPool(
        spec.concurrency,
        ResponseCache(store),
        resolve_url=lambda endpoint: local_url if endpoint.base_url == LOCAL else endpoint.base_url,
        replicas={local_url: local_urls} if local_urls else None,
    )
    taxonomy = load_bisac()
    debate = Debate(
        spec,
        [pool.client(debater.endpoint) for debater in spec.debaters],
        pool.client(spec.judge.endpoint),
        taxonomy.siblings,
    )
    remote = sorted({pool.client(e).base_url for e in _endpoints(spec) if e.base_url != LOCAL})
    if remote:
        progress.log(
            f"note: the topics are reproducible only as far as {', '.join(remote)} answers a "
            "seeded request alike under any load (vLLM's batching does not promise it); "
            "answers already cached are reused as they are"
        )
    # each subject has at most two requests in flight; keep every endpoint's slots busy
    in_flight = asyncio.Semaphore(max(1, spec.concurrency))

    async def one(subject: Subject) -> SubjectOutcome:
        async with in_flight:
            outcome = await debate.run(subject)
        progress.advance(1)
        progress.log(_summary(outcome))
        return outcome

    try:
        return await all_or_none(*(one(subject) for subject in subjects))
    finally:
        await pool.aclose()


def _endpoints(spec: TopicDebateSpec) -> list[Endpoint]:
    return [debater.endpoint for debater in spec.debaters] + [spec.judge.endpoint]


def _summary(outcome: SubjectOutcome) -> str:
    subject = outcome.subject
    if outcome.failed:
        return f"[red]✗[/] {subject.code} {subject.label}: failed: {outcome.failed}"
    cached = all(exchange.cached for exchange in outcome.exchanges)
    note = " (cached)" if cached else ""
    return (
        f"[green]✓[/] {subject.code} {subject.label}: {len(outcome.candidates)} proposed, "
        f"{len(outcome.kept)} kept{note}"
    )


def _write_part(
    outcomes: list[SubjectOutcome], folder: Path, skips: SkipCounter
) -> tuple[dict[str, int], SkipCounter]:
    counts: Counter[str] = Counter()
    with (
        open(folder / "topics.jsonl", "wb") as topics,
        open(folder / "candidates.jsonl", "wb") as candidates,
        open(folder / "transcripts.jsonl", "wb") as transcripts,
        open(folder / "failures.jsonl", "wb") as failures,
    ):
        for outcome in outcomes:
            counts.update(_counts(outcome))
            for exchange in outcome.exchanges:
                transcripts.write(_line(exchange.__dict__))
            if outcome.failed:
                skips.skip(
                    "subject_failed", f"{outcome.subject.code}: {outcome.failed}", owned=True
                )
                failures.write(
                    _line(
                        {
                            "subject_code": outcome.subject.code,
                            "subject": outcome.subject.label,
                            "reason": outcome.failed,
                            "raw_answers": outcome.raw_answers,
                        }
                    )
                )
                continue
            for candidate in outcome.candidates:
                record = topic_record(outcome, candidate)
                candidates.write(_line(record))
                if candidate.kept:
                    topics.write(_line(record))
    return dict(sorted(counts.items())), skips


def _counts(outcome: SubjectOutcome) -> Counter[str]:
    """Flat counters, summed over parts: subjects, topics, rejections, requests, tokens."""
    counts: Counter[str] = Counter()
    for exchange in outcome.exchanges:
        counts["requests"] += 1
        counts["requests_cached"] += exchange.cached
        counts["repairs"] += exchange.repair
        counts[f"tokens_in.{exchange.role}"] += exchange.prompt_tokens
        counts[f"tokens_out.{exchange.role}"] += exchange.completion_tokens
    if outcome.failed:
        counts["subjects_failed"] += 1
        return counts
    counts["subjects"] += 1
    counts["topics"] += len(outcome.kept)
    counts["topics_proposed"] += len(outcome.candidates)
    for reason, count in outcome.dropped_on_proposal.items():
        counts[f"proposal_dropped.{reason}"] += count
    for candidate in outcome.candidates:
        counts[f"critique.{candidate.critique}"] += 1
        if candidate.judge == "rejected":
            counts[f"judge_rejected.{candidate.judge_category}"] += 1
        if candidate.dropped:
            counts[f"dropped.{candidate.dropped}"] += 1
    return counts


def _line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"
