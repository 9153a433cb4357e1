"""Where a sample's documents come from: a topic's retrieval (mode litelong) or a seeded random
draw from the whole index (mode standard), and how topics that retrieve the same document share
it (`claims`, `pieces.py`).

Everything here depends only on the spec, the committed inputs and the seed, never on the shard
count, so the same spec gives the same samples whatever `parallelism` is.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ...api.v1alpha1.synthesisrun import SynthesisRunSpec
from ...index import Retriever
from ...store import Artifact
from ..threads import ordered_map
from .permutation import Permutation
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


# (document id, retrieval rank or draw position, BM25 score or None, text length in characters
# or None where the index does not store it)
Ranked = tuple[str, int, float | None, int | None]


class Candidates:
    """The ordered candidate ids of each topic, with each one's retrieval rank and length."""

    def __init__(self, spec: SynthesisRunSpec, retriever: Retriever, draws: int = 1) -> None:
        self.spec = spec
        self.retriever = retriever
        self.draws = draws  # mode standard: how many draws share the index

    def __call__(self, topic: Topic) -> list[str]:
        return [doc_id for doc_id, _, _, _ in self.ranked(topic)]

    def ranked(self, topic: Topic) -> list[Ranked]:
        """(id, rank by score or draw position, score, length) in the order the topic's samples
        use them."""
        if self.spec.mode == "standard":
            ids, chars = self._random_draw(topic)
            return [
                (doc_id, n, None, c) for n, (doc_id, c) in enumerate(zip(ids, chars, strict=True))
            ]
        hits = self.retriever.search_lengths(topic.query, self.spec.retrieval.top_k)
        ranked: list[Ranked] = [
            (doc_id, n, score, chars) for n, (doc_id, score, chars) in enumerate(hits)
        ]
        if self.spec.retrieval.order == "shuffle":
            rng = np.random.default_rng(seed_of(self.spec.seed, topic.number, topic.query))
            ranked = [ranked[i] for i in rng.permutation(len(ranked))]
        return ranked

    def _random_draw(self, topic: Topic) -> tuple[list[str], list[int | None]]:
        """`topK` documents of a seeded shuffle of the index: draw i starts where draw i-1
        ended, so draws are disjoint until the index is used up. Past that, each pass over the
        index (an epoch) is shuffled afresh, so draw i + len(index)/topK is another random set,
        not draw i again (which would only give its samples twice); a draw that crosses into
        the next pass takes the new shuffle's first documents. When one draw holds the whole
        index, each draw starts one further on (and long documents are shared out by pieces,
        `pieces.py`). The shuffle is evaluated at the draw's positions only (`permutation.py`)
        and the ids (and lengths) read by ordinal, so no list of the index is held."""
        total = self.retriever.count()
        size = min(self.spec.retrieval.top_k, total)
        if not size:
            return [], []
        if size == total:
            order = self._order_of(0)
            start = topic.number * max(1, total // max(1, self.draws)) % total
            return self._at(order((start + np.arange(size)) % total).tolist())
        positions = topic.number * size + np.arange(size, dtype=np.int64)
        epochs, offsets = np.divmod(positions, total)
        ordinals = np.empty(size, np.int64)
        for epoch in np.unique(epochs):
            inside = epochs == epoch
            ordinals[inside] = self._order_of(int(epoch))(offsets[inside])
        return self._at(ordinals.tolist())

    def _at(self, ordinals: list[int]) -> tuple[list[str], list[int | None]]:
        return self.retriever.ids_at(ordinals), self.retriever.lengths_at(ordinals)

    def _order_of(self, epoch: int) -> Permutation:
        """Pass `epoch`'s shuffle of the index (the first is seeded as it always was). Made
        per draw (a hash and four keys): draws run in several threads (`ClaimTable`)."""
        seed = seed_of(self.spec.seed, "standard", *([epoch] if epoch else []))
        return Permutation(self.retriever.count(), seed)


def claims(
    topics: list[Topic], candidates: Candidates, seed: int, folder: Path | None = None
) -> ClaimTable:
    """Every topic's candidates as claims (`pieces.py`): a document retrieved by m topics is
    ranked among them by its retrieval rank in each, then by a seeded hash of (topic, document).

    Every shard computes this over every topic (searching is cheap next to tokenizing), so the
    sharing does not depend on the shard count. The table lives on disk (`ClaimTable`).
    """
    return ClaimTable(topics, candidates, seed, folder)


_ID_FIELDS: list[pa.Field[Any]] = [
    pa.field("id", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("chars", pa.int64()),  # null: unknown
]
_ID_SCHEMA = pa.schema(_ID_FIELDS)


class ClaimTable:
    """The claims of every topic, held on disk in a temporary folder (removed by `close`).

    One entry per (topic, retrieved document): its id and score in an Arrow file (one record
    batch per topic), its retrieval position in a flat file. Ranking a document's claimers is
    a sort (numpy lexsort) of the ids as numbers (Arrow's dictionary encoding), positions and,
    only where a document and position are shared, a seeded tie hash; each entry's rank and
    claimer count go back to disk. What stays in memory is a few integers per topic; the sort
    needs about 100 bytes per entry while it runs, the ids' text included (topics x topK
    entries: ~100 MB for 1,000 topics at topK 1000, freed when it ends, before any text is
    read), and `self[n]` builds one topic's claims on demand. Nothing here grows with the
    index, only with the run; the files take about 50 bytes per entry of temporary disk.
    """

    def __init__(
        self, topics: list[Topic], candidates: Candidates, seed: int, folder: Path | None = None
    ) -> None:
        self._temp = tempfile.TemporaryDirectory(prefix="litelong-claims-", dir=folder)
        self._folder = Path(self._temp.name)
        self._batches: dict[int, int] = {}  # topic number → its record batch
        bounds = [0]  # batch b's entries are [bounds[b], bounds[b + 1])
        with (
            open(self._folder / "position", "wb") as positions,
            pa.OSFile(str(self._folder / "ids.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, _ID_SCHEMA) as writer,
        ):
            retrieved = ordered_map(candidates.ranked, topics)  # searches overlap
            for batch, (topic, ranked) in enumerate(zip(topics, retrieved, strict=True)):
                self._batches[topic.number] = batch
                bounds.append(bounds[-1] + len(ranked))
                # the main thread transposes every topic's hits while the searches wait on it:
                # one zip (in C), not a list comprehension per column
                ids, places, scores, chars = list(zip(*ranked, strict=True)) or ((), (), (), ())
                writer.write_batch(_id_batch(ids, scores, chars))
                positions.write(np.asarray(places, np.int32).tobytes())
        self._bounds = np.asarray(bounds, np.int64)
        self.entries = entries = int(self._bounds[-1])
        self._ids = pa.ipc.open_file(pa.memory_map(str(self._folder / "ids.arrow")))
        self._rank, self._claimers = self._rank_claimers(entries, seed)

    def _document_codes(self, column: pa.Array) -> np.ndarray:
        """Each entry's document as a number (equal ids, equal numbers): what groups a
        document's claimers. Which number a document gets does not matter, only equality."""
        encoded = pc.dictionary_encode(column)
        assert isinstance(encoded, pa.DictionaryArray)
        return np.asarray(encoded.indices, np.int64)

    def _rank_claimers(self, entries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Each entry's place among its document's claimers, and how many there are: sorted by
        (document, position, tie hash, topic), as `claims` ranks them. The tie hash (a seeded
        hash of topic and document: a Python call per entry) is computed only for the entries
        whose document and position another entry shares, the only ones it can order."""
        if not entries:
            empty = np.zeros(0, np.int32)
            return empty, empty
        column = self._ids.read_all().column("id").combine_chunks()
        document = self._document_codes(column)
        position = np.memmap(self._folder / "position", dtype=np.int32, mode="r", shape=(entries,))
        numbers = np.empty(len(self._batches), np.int32)
        numbers[list(self._batches.values())] = list(self._batches)
        topic = np.repeat(numbers, np.diff(self._bounds))
        order = np.lexsort((topic, position, document))
        same = (document[order][1:] == document[order][:-1]) & (
            position[order][1:] == position[order][:-1]
        )
        if same.any():  # ties: order those by the seeded hash, then by topic
            tied = np.zeros(entries, bool)
            tied[order[1:][same]] = tied[order[:-1][same]] = True
            tie = np.zeros(entries, np.uint64)
            where = np.flatnonzero(tied)
            names = column.take(where).to_pylist()  # one take, not one per entry
            tie[where] = np.fromiter(
                (
                    seed_of(seed, number, str(name))
                    for number, name in zip(topic[where].tolist(), names, strict=True)
                ),
                np.uint64,
                len(names),
            )
            order = np.lexsort((topic, tie, position, document))
            del tie, tied, where, names
        del topic, same, column
        sorted_document = document[order]
        new = np.ones(entries, bool)
        new[1:] = sorted_document[1:] != sorted_document[:-1]
        del sorted_document, document
        group = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        sizes = np.diff(np.append(starts, entries))
        rank = self._output("rank", entries)
        claimers = self._output("claimers", entries)
        rank[order] = np.arange(entries) - starts[group]
        claimers[order] = sizes[group]
        return rank, claimers

    def _output(self, name: str, entries: int) -> np.ndarray:
        if not entries:
            return np.zeros(0, np.int32)
        return np.memmap(self._folder / name, dtype=np.int32, mode="w+", shape=(entries,))

    def __getitem__(self, number: int) -> list[Claim]:
        batch = self._batches[number]
        first = int(self._bounds[batch])
        record = self._ids.get_batch(batch)
        ids = record.column("id").to_pylist()
        scores = record.column("score").to_pylist()
        chars = record.column("chars").to_pylist()
        ranks = self._rank[first : first + len(ids)].tolist()
        claimers = self._claimers[first : first + len(ids)].tolist()
        return [
            Claim(str(doc_id), int(r), int(c), score, length)
            for doc_id, r, c, score, length in zip(ids, ranks, claimers, scores, chars, strict=True)
        ]

    def __contains__(self, number: object) -> bool:
        return number in self._batches

    def close(self) -> None:
        self._rank = self._claimers = np.zeros(0, np.int32)
        self._ids = None  # type: ignore[assignment]
        self._temp.cleanup()

    def __enter__(self) -> ClaimTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _id_batch(ids: Sequence[Any], scores: Sequence[Any], chars: Sequence[Any]) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(ids, pa.string()), pa.array(scores, pa.float64()), pa.array(chars, pa.int64())],
        schema=_ID_SCHEMA,
    )
