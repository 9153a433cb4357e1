"""Mode nextlong's BM25 negatives as a run asks them: CPU a search, and a digest of the answers.

Chunks of a committed BM25Index's chunk index (seeded) stand for meta-chunks, in groups as a
meta-document's (`--group`), each searched by `Bm25Negatives` for k negatives outside its own
document after one untimed pass. Prints wall and CPU ms per search (the fastest of
`--repeats`) and a digest of every answer: run it from two checkouts back to back, and the
same digest says both chose the same negatives.

    python bench/nextlong_negatives.py /work/scale/store scale-5m
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litelong.index import open_chunk_index, parent_of
from litelong.store import ArtifactStore
from litelong.synth.nextlong.negatives import QUERY_POSTINGS, QUERY_TERMS, Bm25Negatives, Query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="an ArtifactStore folder or URI")
    parser.add_argument("index", help="a committed BM25Index with a chunk index")
    parser.add_argument("--chunk-chars", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--group", type=int, default=60, help="meta-chunks a meta-document")
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postings", type=int, default=QUERY_POSTINGS, help="the budget")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    uri = args.store if "://" in args.store else f"file://{Path(args.store).resolve()}"
    artifact = ArtifactStore(uri).latest_committed("BM25Index", args.index)
    chunks, _ = open_chunk_index(artifact, args.chunk_chars)
    try:
        rng = random.Random(args.seed)
        ids = chunks.ids_at([rng.randrange(chunks.count()) for _ in range(args.queries)])
        texts = chunks.get(ids)
        # own_chunks 100: the first search asks for k + 8, as at 128K tokens
        queries = [
            Query(frozenset({parent_of(i)}), t, 100) for i, t in zip(ids, texts, strict=True)
        ]
        groups = [queries[at : at + args.group] for at in range(0, len(queries), args.group)]
        negatives = Bm25Negatives(chunks, QUERY_TERMS, args.postings)
        first = [negatives(group, args.k) for group in groups]  # pages read untimed
        wall = cpu = float("inf")
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            found = [negatives(group, args.k) for group in groups]
            wall = min(wall, (time.perf_counter() - start) / len(queries) * 1000)
            cpu = min(cpu, (time.process_time() - start_cpu) / len(queries) * 1000)
            assert found == first
        digest = hashlib.blake2b(repr(first).encode(), digest_size=6).hexdigest()
        print(
            f"{args.index} within {args.postings:,} postings: {len(queries)} searches, "
            f"wall {wall:.3f} ms, CPU {cpu:.3f} ms a search, answers {digest}"
        )
    finally:
        chunks.close()


if __name__ == "__main__":
    main()
