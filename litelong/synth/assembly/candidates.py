"""Where a sample's documents come from: a topic's retrieval (mode litelong) or a seeded random
draw from the whole index (mode standard), and how topics that retrieve the same document share
it (`claims`, `pieces.py`).

Everything here depends only on the spec, the committed inputs and the seed, never on the shard
count, so the same spec gives the same samples whatever `parallelism` is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import orjson

from ...api.v1alpha1.synthesisrun import SynthesisRunSpec
from ...index import Retriever
from ...store import Artifact
from .pieces import Claim


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
    """The ordered candidate ids of each topic, with each one's retrieval rank."""

    def __init__(self, spec: SynthesisRunSpec, retriever: Retriever, draws: int = 1) -> None:
        self.spec = spec
        self.retriever = retriever
        self.draws = draws  # mode standard: how many draws share the index
        self._all_ids: list[str] | None = None

    def __call__(self, topic: Topic) -> list[str]:
        return [doc_id for doc_id, _, _ in self.ranked(topic)]

    def ranked(self, topic: Topic) -> list[tuple[str, int, float | None]]:
        """(id, rank by score or draw position, score) in the order the topic's samples use
        them."""
        if self.spec.mode == "standard":
            return [(doc_id, n, None) for n, doc_id in enumerate(self._random_draw(topic))]
        hits = self.retriever.search(topic.query, self.spec.retrieval.top_k)
        ranked: list[tuple[str, int, float | None]] = [
            (doc_id, n, score) for n, (doc_id, score) in enumerate(hits)
        ]
        if self.spec.retrieval.order == "shuffle":
            rng = np.random.default_rng(seed_of(self.spec.seed, topic.number, topic.query))
            ranked = [ranked[i] for i in rng.permutation(len(ranked))]
        return ranked

    def _random_draw(self, topic: Topic) -> list[str]:
        """`topK` documents of one seeded permutation of the index: draw i starts where draw
        i-1 ended, so draws are disjoint until the index is used up; when one draw holds the
        whole index, each draw starts one further on (and long documents are shared out by
        pieces, `pieces.py`)."""
        if self._all_ids is None:
            ids = list(self.retriever.document_ids())
            order = np.random.default_rng(seed_of(self.spec.seed, "standard")).permutation(len(ids))
            self._all_ids = [ids[i] for i in order]
        every = self._all_ids
        size = min(self.spec.retrieval.top_k, len(every))
        step = size if size < len(every) else max(1, len(every) // max(1, self.draws))
        start = (topic.number * step) % max(1, len(every))
        return [every[(start + i) % len(every)] for i in range(size)]


def claims(topics: list[Topic], candidates: Candidates, seed: int) -> dict[int, list[Claim]]:
    """Every topic's candidates as claims (`pieces.py`): a document retrieved by m topics is
    ranked among them by its retrieval rank in each, then by a seeded hash of (topic, document).

    Every shard computes this over every topic (searching is cheap next to tokenizing), so the
    sharing does not depend on the shard count.
    """
    retrieved = {topic.number: candidates.ranked(topic) for topic in topics}
    claimers: dict[str, list[tuple[int, int, int]]] = {}
    for number, ranked in retrieved.items():
        for doc_id, position, _ in ranked:
            key = (position, seed_of(seed, number, doc_id), number)
            claimers.setdefault(doc_id, []).append(key)
    order = {
        doc_id: {key[2]: place for place, key in enumerate(sorted(keys))}
        for doc_id, keys in claimers.items()
    }
    return {
        number: [
            Claim(doc_id, order[doc_id][number], len(claimers[doc_id]), score)
            for doc_id, _, score in ranked
        ]
        for number, ranked in retrieved.items()
    }
