"""NExtLong BM25 negatives: a meta-chunk's rarest terms against the whole meta-chunk as the query.

Chunks drawn from a committed BM25Index's chunk index (seeded) stand for meta-chunks. Each is
searched as mode nextlong searches it, `search(text, k + own, max_terms=N)` with its own
document's chunks left out, for several N, and by its peer, the whole chunk's text
(`max_terms` unset), in the same run. Prints ms per search, the speed-up over the whole-text
query, and the share of the whole-text query's top k (own document left out) that the reduced
query also finds, and "score kept": the reduced query's negatives' BM25 scores against the
whole meta-chunk over those of the whole query's own top k (how hard the negatives stay by the
paper's measure, when near-duplicate chunks make "the same chunks" too strict). Every query is
run once untimed first, so no variant pays for reading the index from disk.

    python bench/nextlong_query.py /work/scale/store scale-1m --queries 200
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litelong.index import open_chunk_index, parent_of, retriever
from litelong.store import ArtifactStore
from litelong.synth.nextlong import QUERY_POSTINGS, QUERY_TERMS

OWN = 8  # candidates past k, for the own document's chunks to be left out of
SCORED = 1000


def negatives(
    search: Callable[[str, int], list[tuple[str, float]]], chunk: str, text: str, k: int
) -> list[str]:
    return [hit for hit, _ in search(text, k + OWN) if parent_of(hit) != parent_of(chunk)][:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="an ArtifactStore folder or URI")
    parser.add_argument("index", help="a committed BM25Index with a chunk index")
    parser.add_argument("--chunk-chars", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=6, help="2 x k of a typical sample (k = 3)")
    parser.add_argument("--terms", type=int, nargs="+", default=[8, 16, QUERY_TERMS, 32, 48])
    parser.add_argument(
        "--postings",
        type=int,
        nargs="+",
        default=[20_000, QUERY_POSTINGS, 200_000],
        help="budgets tried with QUERY_TERMS terms (`max_postings`; mode nextlong's default)",
    )
    parser.add_argument(
        "--min-terms",
        type=int,
        nargs="+",
        default=[retriever.MIN_TERMS],
        help="terms a budget row keeps whatever its postings (`MIN_TERMS`; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    uri = args.store if "://" in args.store else f"file://{Path(args.store).resolve()}"
    artifact = ArtifactStore(uri).latest_committed("BM25Index", args.index)
    chunks, _ = open_chunk_index(artifact, args.chunk_chars)
    try:
        rng = random.Random(args.seed)
        ids = chunks.ids_at([rng.randrange(chunks.count()) for _ in range(args.queries)])
        texts = chunks.get(ids)
        for text in texts:  # every posting list any variant reads, paged in untimed
            chunks.search(text, args.k)
        print(f"{args.index}: {chunks.count():,} chunks, {len(ids)} queries, top {args.k}")

        def timed(
            max_terms: int | None, max_postings: int | None = None, min_terms: int | None = None
        ) -> tuple[float, list[list[str]]]:
            retriever.MIN_TERMS = args.min_terms[0] if min_terms is None else min_terms

            def search(text: str, k: int) -> list[tuple[str, float]]:
                return chunks.search(text, k, max_terms, max_postings)

            start = time.perf_counter()
            found = [negatives(search, c, t, args.k) for c, t in zip(ids, texts, strict=True)]
            return (time.perf_counter() - start) / len(ids) * 1000, found

        whole_ms, whole = timed(None)
        # each chunk's BM25 score against the whole meta-chunk, for the best SCORED chunks;
        # a chunk past them is given the last one's score (so "score kept" is an upper bound)
        scored = [dict(chunks.search(text, SCORED)) for text in texts]

        def score_kept(found: list[list[str]]) -> float:
            ratios = []
            for hits, best, scores in zip(found, whole, scored, strict=True):
                floor = min(scores.values(), default=0.0)
                if best:
                    got = sum(scores.get(hit, floor) for hit in hits)
                    ratios.append(got / sum(scores[hit] for hit in best))
            return sum(ratios) / len(ratios)

        header = f"{'terms (min. terms)':>26} {'ms/search':>10} {'speed-up':>9} {'top-k found':>12}"
        print(f"{header} {'score kept':>11}")
        print(f"{'whole':>26} {whole_ms:>10.1f} {1.0:>8.1f}x {1.0:>12.3f} {1.0:>11.3f}")
        variants = [(str(terms), terms, None, None) for terms in args.terms] + [
            (f"{QUERY_TERMS} <= {budget:,} post. ({least})", QUERY_TERMS, budget, least)
            for least in args.min_terms
            for budget in args.postings
        ]
        for label, terms, budget, least in variants:
            ms, found = timed(terms, budget, least)
            shared = [len(set(a) & set(b)) / len(b) for a, b in zip(found, whole, strict=True) if b]
            kept = sum(shared) / len(shared)
            print(
                f"{label:>26} {ms:>10.1f} {whole_ms / ms:>8.1f}x {kept:>12.3f} "
                f"{score_kept(found):>11.3f}"
            )
    finally:
        chunks.close()


if __name__ == "__main__":
    main()
