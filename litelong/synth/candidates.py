"""Where a sample's documents come from: a topic's retrieval (mode litelong) or a seeded random
draw from the whole index (mode standard), and the optional bound on document reuse.

Everything here depends only on the spec, the committed inputs and the seed, never on the shard
count, so the same spec gives the same samples whatever `parallelism` is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from ..api.v1alpha1.synthesisrun import SynthesisRunSpec
from ..index import Retriever
from ..store import Artifact


@dataclass(frozen=True)
class Topic:
    number: int  # position in the TopicDebate's output: what shards are dealt by
    topic: str = ""
    query: str = ""
    subject_code: str = ""
    heading: str = ""


def seed_of(*parts: object) -> int:
    """A 64-bit seed from any values, the same on every machine and Python version."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def debate_topics(debate: Artifact) -> list[Topic]:
    """The kept topics of a committed TopicDebate, numbered in part order."""
    topics: list[Topic] = []
    for part in debate.manifest().parts:
        with open(debate.local_part(part) / "topics.jsonl", "rb") as lines:
            for line in lines:
                record = orjson.loads(line)
                topics.append(
                    Topic(
                        number=len(topics),
                        topic=record["topic"],
                        query=record["query"],
                        subject_code=record["subject_code"],
                        heading=record["heading"],
                    )
                )
    return topics


def standard_topics(count: int) -> list[Topic]:
    """Mode standard's stand-ins for topics: numbered draws of random documents."""
    return [Topic(number=number) for number in range(count)]


class Candidates:
    """The ordered candidate ids of each topic."""

    def __init__(self, spec: SynthesisRunSpec, retriever: Retriever) -> None:
        self.spec = spec
        self.retriever = retriever
        self._all_ids: list[str] | None = None

    def __call__(self, topic: Topic) -> list[str]:
        if self.spec.mode == "standard":
            return self._random_draw(topic)
        hits = self.retriever.search(topic.query, self.spec.retrieval.top_k)
        ids = [doc_id for doc_id, _ in hits]
        if self.spec.retrieval.order == "shuffle":
            rng = np.random.default_rng(seed_of(self.spec.seed, topic.number, topic.query))
            ids = [ids[i] for i in rng.permutation(len(ids))]
        return ids

    def _random_draw(self, topic: Topic) -> list[str]:
        """`topK` documents of one seeded permutation of the index, the draw's slice of it."""
        if self._all_ids is None:
            ids = list(self.retriever.document_ids())
            order = np.random.default_rng(seed_of(self.spec.seed, "standard")).permutation(len(ids))
            self._all_ids = [ids[i] for i in order]
        every = self._all_ids
        size = min(self.spec.retrieval.top_k, len(every))
        start = (topic.number * size) % max(1, len(every))
        return [every[(start + i) % len(every)] for i in range(size)]


def reuse_allowance(
    topics: list[Topic], candidates: Candidates, limit: int, seed: int
) -> Iterator[tuple[int, list[str], int]]:
    """For `reuse.maxUsesPerDocument`: each topic's candidates that it may use, in order, and
    how many it may not.

    A document retrieved by more topics than `limit` is kept for the `limit` topics that rank
    first by a seeded hash of (topic, document). Every shard computes this over every topic
    (searching is cheap next to tokenizing), so the choice does not depend on the shard count.
    """
    claims: dict[str, list[tuple[int, int]]] = {}
    retrieved: dict[int, list[str]] = {}
    for topic in topics:
        ids = candidates(topic)
        retrieved[topic.number] = ids
        for doc_id in ids:
            claims.setdefault(doc_id, []).append(
                (seed_of(seed, topic.number, doc_id), topic.number)
            )
    winners = {doc_id: {n for _, n in sorted(c)[:limit]} for doc_id, c in claims.items()}
    for number, ids in retrieved.items():
        kept = [doc_id for doc_id in ids if number in winners[doc_id]]
        yield number, kept, len(ids) - len(kept)
