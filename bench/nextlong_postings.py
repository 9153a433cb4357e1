"""Where a NExtLong BM25 negative's search time goes: postings scored, tantivy, and the Python.

Chunks of a committed BM25Index's chunk index (seeded) stand for meta-chunks, as in
`bench/nextlong_query.py`. For each postings budget (and the rule that keeps the first
`MIN_TERMS` terms whatever the budget, on and off), prints per search: the terms kept, the
postings they hold (the sum of their document frequencies: what tantivy scores, since its Python
search collects without pruning), the share of searches whose kept terms are over the budget,
tantivy's search alone (`Searcher.search` of the same boolean query, every segment), the whole
`search` call around it, and µs per thousand postings. Segments per part are printed first.
Every query is run once untimed first, so no variant pays for reading the index from disk.

    python bench/nextlong_postings.py /work/scale/store scale-1m --queries 200
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litelong.index import open_chunk_index, retriever
from litelong.index.tantivy_backend import TantivyRetriever
from litelong.store import ArtifactStore
from litelong.synth.nextlong import QUERY_POSTINGS, QUERY_TERMS

OWN = 8  # as mode nextlong's first search: k + the meta-document's own chunks
TIE_MARGIN = 32  # `TantivyRetriever`'s margin past k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="an ArtifactStore folder or URI")
    parser.add_argument("index", help="a committed BM25Index with a chunk index")
    parser.add_argument("--chunk-chars", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument(
        "--postings", type=int, nargs="+", default=[10_000, 25_000, 50_000, QUERY_POSTINGS]
    )
    parser.add_argument(
        "--min-terms",
        type=int,
        nargs="+",
        default=[retriever.MIN_TERMS, 0],
        help="terms kept whatever the budget (`MIN_TERMS`; 0: the budget bounds every search)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings: the fastest of these")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    uri = args.store if "://" in args.store else f"file://{Path(args.store).resolve()}"
    artifact = ArtifactStore(uri).latest_committed("BM25Index", args.index)
    chunks, _ = open_chunk_index(artifact, args.chunk_chars)
    assert isinstance(chunks, TantivyRetriever), "a tantivy chunk index"
    try:
        for number, searcher in enumerate(chunks._searchers):
            print(f"part {number}: {searcher.num_segments} segments, {searcher.num_docs:,} chunks")
        rng = random.Random(args.seed)
        ids = chunks.ids_at([rng.randrange(chunks.count()) for _ in range(args.queries)])
        texts = chunks.get(ids)
        for text in texts:  # every posting list any variant reads, paged in untimed
            chunks.search(text, args.k)
        print(f"{args.index}: {chunks.count():,} chunks, {len(ids)} queries, top {args.k}")
        print(
            f"{'min terms':>9} {'budget':>8} {'terms':>6} {'postings':>9} {'p90':>9} "
            f"{'over':>5} {'tantivy ms':>10} {'search ms':>10} {'µs/1K post.':>11}"
        )
        limit = args.k + OWN
        layout = chunks._layouts[0]
        for min_terms in args.min_terms:
            retriever.MIN_TERMS = min_terms
            for budget in args.postings:
                kept = [chunks._terms(text, QUERY_TERMS, budget) for text in texts]
                postings = [sum(chunks._doc_freq(term) for term in terms) for terms in kept]
                queries = [chunks._query(layout, terms, "text") for terms in kept]
                tantivy_ms = search_ms = float("inf")
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for query in queries:
                        for searcher in chunks._searchers:
                            searcher.search(query, limit=limit + TIE_MARGIN, count=False)
                    took = (time.perf_counter() - start) / len(texts) * 1000
                    tantivy_ms = min(tantivy_ms, took)
                    start = time.perf_counter()
                    for text in texts:
                        chunks._last.query = None  # each analysed as a first search is
                        chunks.search(text, limit, QUERY_TERMS, budget)
                    took = (time.perf_counter() - start) / len(texts) * 1000
                    search_ms = min(search_ms, took)
                mean = statistics.fmean(postings)
                p90 = sorted(postings)[int(0.9 * (len(postings) - 1))]
                over = sum(p > budget for p in postings) / len(postings)
                print(
                    f"{min_terms:>9} {budget:>8,} {statistics.fmean(map(len, kept)):>6.1f} "
                    f"{mean:>9,.0f} {p90:>9,} {over:>5.2f} {tantivy_ms:>10.2f} "
                    f"{search_ms:>10.2f} {tantivy_ms * 1e6 / mean:>11.1f}"
                )
    finally:
        chunks.close()


if __name__ == "__main__":
    main()
