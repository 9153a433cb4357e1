"""Manticore vs the embedded tantivy backend on the same documents, in the same run.

Both indexes are built by the real BM25Index stage (`litelong.stages.run_shard`): read,
normalise, dedup, then tantivy indexing or Manticore bulk loading. It prints

* load: documents/s of each backend, and the ratio Manticore / tantivy;
* queries: q/s of single queries at topK (default 1000), and the ratio;
* parity: the mean top-10 overlap of the two backends over the queries (issue 8's target:
  >= 0.80 over 200 queries): both are BM25 with k1=1.2, b=0.75, English stemming and stop words,
  so differences come from tokenisation, stop lists and the stemmer (Porter vs Snowball).

It needs a server: LITELONG_MANTICORE_URL (docs/manticore.md starts one). Run from the
repository root:

    LITELONG_MANTICORE_URL=http://127.0.0.1:9308 python bench/manticore.py \\
        --corpus builtin://wiki_vital_en.jsonl.zst --queries 200 --shards 1

This is a benchmark, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import litelong.api
import litelong.stages
from litelong.index import Retriever, open_index
from litelong.index.manticore.backend import read_location
from litelong.index.manticore.client import ManticoreConnection
from litelong.index.manticore.shards import URL_ENV
from litelong.store import ArtifactStore

TARGET_OVERLAP = 0.80
OVERLAP_AT = 10


def resource(corpus: str, backend: dict[str, Any], loaders: int) -> Any:
    return litelong.api.parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": "bench-" + backend["type"]},
            "spec": {
                "corpus": [{"uri": corpus, "idField": "id"}],
                "backend": backend,
                "parallelism": loaders,
                "writer": {"batchSize": 1000, "inFlight": 4},
            },
        }
    )


def build(spec: Any, store: ArtifactStore, loaders: int) -> tuple[Retriever, int, float]:
    """(retriever, documents, seconds) of a full build, every loader in turn."""
    started = time.perf_counter()
    for shard in range(loaders):
        result = litelong.stages.run_shard(spec, store, shard, loaders)
    seconds = time.perf_counter() - started
    assert result.manifest is not None
    return open_index(result.artifact), result.manifest.counts["documents"], seconds


def bisac_queries(count: int, seed: int = 0) -> list[str]:
    """Topic-like queries: the last two components of seeded-random BISAC subject paths."""
    path = Path(__file__).resolve().parents[2] / "shared/data/bisac/bisac-subjects.csv"
    if not path.exists():
        path = Path("/work/shared/data/bisac/bisac-subjects.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    queries = []
    for row in random.Random(seed).sample(rows, min(count, len(rows))):
        parts = [row["heading"], *row["label"].split(" / ")]
        parts = [part for part in parts if part != "General"] or [row["heading"]]
        queries.append(" ".join(parts[-2:]).lower())
    return queries


def time_queries(search: Callable[[str], Any], queries: list[str]) -> float:
    """Queries per second, one at a time (after one warm-up pass over 10 queries)."""
    for query in queries[:10]:
        search(query)
    started = time.perf_counter()
    for query in queries:
        search(query)
    return len(queries) / (time.perf_counter() - started)


def overlap(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> float | None:
    """|top-k(a) ∩ top-k(b)| / k, None where both found nothing."""
    ids_a, ids_b = {doc for doc, _ in a}, {doc for doc, _ in b}
    size = max(len(ids_a), len(ids_b))
    return len(ids_a & ids_b) / size if size else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="builtin://wiki_vital_en.jsonl.zst")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=1, help="Manticore shards (tables)")
    parser.add_argument("--loaders", type=int, default=1, help="stage shards run in turn")
    args = parser.parse_args()
    url = os.environ.get(URL_ENV)
    if not url:
        print(f"bench/manticore.py needs a Manticore server: set {URL_ENV} (docs/manticore.md)")
        return 2
    manticore = {
        "type": "manticore",
        "manticore": {"mode": "external", "url": url, "shards": args.shards},
    }
    with tempfile.TemporaryDirectory() as folder:
        store = ArtifactStore(f"file://{folder}/store")
        tantivy, documents, tantivy_s = build(
            resource(args.corpus, {"type": "tantivy"}, args.loaders), store, args.loaders
        )
        spec = resource(args.corpus, manticore, args.loaders)
        mc, mc_documents, mc_s = build(spec, store, args.loaders)
        try:
            queries = bisac_queries(args.queries)
            print(f"corpus {args.corpus}: {documents} documents, {len(queries)} queries")
            print(
                f"load      tantivy {documents / tantivy_s:9.0f} docs/s   "
                f"manticore {mc_documents / mc_s:9.0f} docs/s   "
                f"ratio {tantivy_s / mc_s:.2f}"
            )
            tq = time_queries(lambda q: tantivy.search(q, args.top_k), queries)
            mq = time_queries(lambda q: mc.search(q, args.top_k), queries)
            print(
                f"query@{args.top_k}  tantivy {tq:9.1f} q/s      manticore {mq:9.1f} q/s      "
                f"ratio {mq / tq:.2f}"
            )
            scores = [
                overlap(tantivy.search(q, OVERLAP_AT), mc.search(q, OVERLAP_AT)) for q in queries
            ]
            found = [score for score in scores if score is not None]
            mean = statistics.fmean(found) if found else 0.0
            verdict = "meets" if mean >= TARGET_OVERLAP else "misses"
            print(
                f"parity    mean top-{OVERLAP_AT} overlap {mean:.3f} over {len(found)} queries "
                f"({verdict} the {TARGET_OVERLAP:.2f} target); "
                f"min {min(found, default=0):.2f}"
            )
        finally:
            committed = store.latest_committed("BM25Index", "bench-manticore")
            part = committed.local_part(committed.manifest().parts[0])
            connection = ManticoreConnection(url)
            for shard in read_location(part):
                connection.sql(f"DROP TABLE IF EXISTS {shard.table}")
            connection.close()
            mc.close()
            tantivy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
