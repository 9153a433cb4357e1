"""Topical coherence: the number that says whether topic retrieval did its job.

For a sample, take up to 8 of its distinct documents (those ranked first by blake2b of the
seed, the sample id and the document id). Query the index with the 8 rarest terms (fewest
documents in the index) of the first 32 words of each one's text and take its top 20 hits
other than itself; the document scores the share of those hits that are documents of the
same sample (over the hits there are when fewer than 20 come back; 0 when none do). A
sample's coherence is the mean over its chosen documents, the dataset's the mean over up to 32
samples (those ranked first by blake2b of the seed and the sample id). Documents the index no
longer holds are left out and counted.

Baseline: the same measure on random samples with the same numbers of distinct documents,
drawn uniformly (seeded) from the index's documents (by ordinal, `Retriever.ids_at`, as mode
`standard` draws): what the paper's `standard` random concatenation scores on the
same corpus.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...index import Retriever, UnknownDocument
from ..threads import ordered_map

# Bounded in queries, and so in cost, whatever the run's size: 32 x 8 x 2 = 512 queries (the
# dataset's and the baseline's). A query's cost is its terms' posting lists: all 32 words took
# ~50 ms on 5M documents (the common ones hold millions of postings), while the rarest terms,
# which decide most of a BM25 ranking, have short lists (`Retriever.search`'s `max_terms`, as
# nextlong's negatives; bench/README.md's "Coherence queries").
QUERY_DOCS = 8
QUERY_WORDS = 32
QUERY_TERMS = 8
TOP_HITS = 20
MAX_SAMPLES = 32
_TEXT_BATCH = 4


def coherence_definition(max_samples: int = MAX_SAMPLES) -> str:
    """The definition printed in the report, in the words of the module docstring."""
    return (
        f"For a sample, up to {QUERY_DOCS} of its distinct documents (a seeded choice) each query "
        f"the index with the {QUERY_TERMS} rarest terms in the index of the first {QUERY_WORDS} "
        "words of their text; a document scores the share "
        f"of its top {TOP_HITS} hits other than itself that are documents of the same sample (over "
        "the hits there are when fewer come back). A sample's coherence is the mean over its "
        f"queried documents, the dataset's the mean over up to {max_samples} seeded samples. The "
        "baseline is the same measure on random samples with the same document counts, drawn "
        "uniformly (seeded) from the index's documents: what the paper's standard random "
        "concatenation scores on the same corpus."
    )


def rank(*keys: object) -> int:
    """A seeded order that depends on neither the number of parts nor the order of reading."""
    text = ":".join(str(key) for key in keys)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def measure_coherence(
    retriever: Retriever, samples: list[tuple[str, list[str]]], seed: int
) -> dict[str, Any]:
    """The dataset's coherence and the baseline's, as the module docstring defines them."""
    rng = random.Random(seed)
    pool = _random_documents(retriever, sum(len(ids) for _, ids in samples), rng)
    tally: dict[str, Any] = {"queries": 0, "missing_documents": 0, "per_sample": {}}
    dataset, baseline = [], []
    for sample_id, doc_ids in samples:
        own = _sample_coherence(retriever, sample_id, doc_ids, seed, tally)
        drawn = rng.sample(pool, min(len(doc_ids), len(pool)))
        other = _sample_coherence(retriever, f"baseline/{sample_id}", drawn, seed, tally)
        if own is not None:
            dataset.append(own)
        if other is not None:
            baseline.append(other)
    return {
        "dataset": round(float(np.mean(dataset)), 4) if dataset else None,
        "baseline": round(float(np.mean(baseline)), 4) if baseline else None,
        "samples": len(dataset),
        "baseline_samples": len(baseline),
        "index_documents": retriever.count(),
        **tally,
        "skipped": None,
    }


def _random_documents(retriever: Retriever, how_many: int, rng: random.Random) -> list[str]:
    """`how_many` distinct ids drawn uniformly from the index (all when it holds fewer), read
    by ordinal (`Retriever.ids_at`), in index order: a random subset of this pool is a random
    subset of the index. Costs the pool, never the index."""
    total = retriever.count()
    wanted = sorted(rng.sample(range(total), min(how_many, total)))
    return retriever.ids_at(wanted) if wanted else []


def _sample_coherence(
    retriever: Retriever, key: str, doc_ids: list[str], seed: int, tally: dict[str, Any]
) -> float | None:
    members = set(doc_ids)
    queried = sorted(members, key=lambda doc_id: rank(seed, key, doc_id))[:QUERY_DOCS]
    queries = _queries(retriever, queried)
    tally["missing_documents"] += len(queried) - len(queries)
    scores = []
    answers = ordered_map(
        lambda query: retriever.search(query, TOP_HITS + 1, QUERY_TERMS), queries.values()
    )
    for doc_id, found in zip(queries, answers, strict=True):
        hits = [hit for hit, _ in found if hit != doc_id][:TOP_HITS]
        scores.append(sum(hit in members for hit in hits) / len(hits) if hits else 0.0)
        tally["queries"] += 1
    per_sample = tally.setdefault("per_sample", {})
    if scores and not key.startswith("baseline/"):
        per_sample[key] = round(float(np.mean(scores)), 4)
    return float(np.mean(scores)) if scores else None


def query_text(text: str) -> str:
    """The first QUERY_WORDS words, read from a bounded prefix: a document may be a book."""
    return " ".join(text[: QUERY_WORDS * 64].split()[:QUERY_WORDS])


def _queries(retriever: Retriever, doc_ids: Sequence[str]) -> dict[str, str]:
    """The query of each id the index holds, texts read a few at a time (and then dropped), so
    a sample of books never holds all their texts at once."""
    found: dict[str, str] = {}
    for start in range(0, len(doc_ids), _TEXT_BATCH):
        batch = doc_ids[start : start + _TEXT_BATCH]
        try:
            found.update(zip(batch, map(query_text, retriever.get(batch)), strict=True))
        except UnknownDocument:
            for doc_id in batch:
                try:
                    found[doc_id] = query_text(retriever.get([doc_id])[0])
                except UnknownDocument:
                    continue
    return found
