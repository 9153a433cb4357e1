"""The report's coherence queries: a document's first 32 words whole, against their 8 rarest
terms (what `synth/report/coherence.py` asks now), on a committed BM25Index.

Times both kinds of query over the same random documents, one after the other in this process,
and prints ms per query (wall and CPU) and their ratio, and how many of the whole query's top 20
hits the rare-term query also finds.

    python bench/coherence_queries.py /work/scratch/store scale-1m-docs --queries 200
"""

from __future__ import annotations

import argparse
import random
import time

from litelong.index import open_index
from litelong.store import ArtifactStore
from litelong.synth.report.coherence import QUERY_TERMS, TOP_HITS, query_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="a file:// store folder")
    parser.add_argument("index", help="a committed BM25Index's name")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    retriever = open_index(
        ArtifactStore(f"file://{args.store}").latest_committed("BM25Index", args.index)
    )
    rng = random.Random(args.seed)
    ids = retriever.ids_at(rng.sample(range(retriever.count()), args.queries))
    queries = [query_text(text) for text in retriever.get(ids)]
    answers: dict[str, list[set[str]]] = {}
    for name, terms in (("32 words", None), (f"{QUERY_TERMS} rarest terms", QUERY_TERMS)):
        wall, cpu = time.perf_counter(), time.process_time()
        answers[name] = [
            {doc_id for doc_id, _ in retriever.search(query, TOP_HITS + 1, terms)}
            for query in queries
        ]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        per = 1000 / len(queries)
        print(f"{name}: {wall * per:.1f} ms/query wall, {cpu * per:.1f} CPU")
    whole, rare = answers.values()
    shared = sum(len(a & b) for a, b in zip(whole, rare, strict=True)) / sum(map(len, whole))
    print(f"rare-term hits shared with the whole query's: {shared:.2f}")
    retriever.close()


if __name__ == "__main__":
    main()
