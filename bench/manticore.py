"""Manticore vs the embedded tantivy backend on the same documents, in the same run.

Both indexes are built by the real BM25Index stage (`litelong.stages.run_shard`): read,
normalise, dedup, then tantivy indexing or Manticore bulk loading, each into its own store
under the same resource name. It prints

* load: documents/s of each backend, and the ratio Manticore / tantivy;
* queries: q/s of single queries at topK (default 1000), one at a time and from `--clients`
  threads at once, and the ratio (issue 21's target: >= 0.5 on one shard);
* parity: the mean top-10 overlap of the two backends over the queries (issue 8's target:
  >= 0.80 over 200 queries): both are BM25 with k1=1.2, b=0.75, English stemming and stop words,
  so differences come from tokenisation, stop lists, accent folding and the stemmer;
* synthesis: the wall time of the same SynthesisRun (mode litelong, `--topics` BISAC subjects,
  `--target` tokens, 2 samples a topic) on each index, and the ratio Manticore / tantivy
  (issue 21's target: <= 1.5).

The queries are topic-like: the last two components of seeded-random BISAC subject labels from
the taxonomy shipped in the package, so it runs from a plain clone.

It needs a server: LITELONG_MANTICORE_URL (docs/manticore.md starts one). Run from the
repository root:

    LITELONG_MANTICORE_URL=http://127.0.0.1:9308 python bench/manticore.py \\
        --corpus builtin://wiki_vital_en.jsonl.zst --queries 200 --shards 1

This is a benchmark, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import litelong.api
import litelong.stages
from litelong.index import Retriever, open_index
from litelong.index.manticore import URL_ENV, ManticoreConnection, read_location
from litelong.store import ArtifactStore
from litelong.taxonomy import load_bisac

TARGET_OVERLAP = 0.80
TARGET_QUERY_RATIO = 0.5
TARGET_SYNTHESIS_RATIO = 1.5
OVERLAP_AT = 10
INDEX = "bench-index"


def resource(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return litelong.api.parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def index_spec(corpus: str, backend: dict[str, Any], loaders: int) -> Any:
    return resource(
        "BM25Index",
        INDEX,
        {
            "corpus": [{"uri": corpus, "idField": "id"}],
            "backend": backend,
            "parallelism": loaders,
            "writer": {"batchSize": 1000, "inFlight": 4},
        },
    )


def build(spec: Any, store: ArtifactStore, loaders: int) -> tuple[Retriever, int, float]:
    """(retriever, documents, seconds) of a full build, every loader in turn."""
    started = time.perf_counter()
    for shard in range(loaders):
        result = litelong.stages.run_shard(spec, store, shard, loaders)
    seconds = time.perf_counter() - started
    assert result.manifest is not None
    return open_index(result.artifact), result.manifest.counts["documents"], seconds


def bisac_titles(count: int, seed: int = 0) -> list[str]:
    """Topic-like text: the last two components of seeded-random BISAC subject labels."""
    subjects = list(load_bisac().subjects)
    titles = []
    for subject in random.Random(seed).sample(subjects, min(count, len(subjects))):
        parts = [p for p in subject.label.split(" / ")[1:] if p != "General"] or [subject.heading]
        titles.append(" ".join(parts[-2:]))
    return titles


def queries_per_second(search: Callable[[str], Any], queries: list[str], clients: int) -> float:
    """Queries per second from `clients` threads (1: one at a time), after a warm-up pass."""
    for query in queries[:10]:
        search(query)
    started = time.perf_counter()
    if clients == 1:
        for query in queries:
            search(query)
    else:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(search, queries))
    return len(queries) / (time.perf_counter() - started)


def overlap(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> float | None:
    """|top-k(a) ∩ top-k(b)| / k, None where both found nothing."""
    ids_a, ids_b = {doc for doc, _ in a}, {doc for doc, _ in b}
    size = max(len(ids_a), len(ids_b))
    return len(ids_a & ids_b) / size if size else None


def commit_topics(store: ArtifactStore, titles: list[str]) -> None:
    """A committed TopicDebate "bench-topics" whose topics and queries are `titles`."""
    debate = store.artifact("TopicDebate", "bench-topics", "000000000000")
    with debate.staging(0, 1) as folder:
        records = [
            {"subject_code": f"B{i:05d}", "heading": "Bench", "subject": t, "topic": t, "query": t}
            for i, t in enumerate(titles)
        ]
        (folder / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        debate.commit_part(0, 1, folder, counts={"topics": len(records)})
    debate.commit({}, 1)


def synthesis_seconds(store: ArtifactStore, titles: list[str], target: int) -> float:
    """Wall time of one SynthesisRun over `titles` on this store's index."""
    commit_topics(store, titles)
    run = resource(
        "SynthesisRun",
        "bench-synthesis",
        {
            "topicDebateRef": "bench-topics",
            "indexRef": INDEX,
            "mode": "litelong",
            "targetTokens": target,
            "samplesPerTopic": 2,
        },
    )
    started = time.perf_counter()
    result = litelong.stages.run_shard(run, store, 0, 1)
    assert result.manifest is not None, "nothing committed"
    return time.perf_counter() - started


def drop_tables(store: ArtifactStore, url: str) -> None:
    committed = store.latest_committed("BM25Index", INDEX)
    part = committed.local_part(committed.manifest().parts[0])
    connection = ManticoreConnection(url)
    for shard in read_location(part):
        connection.sql(f"DROP TABLE IF EXISTS {shard.table}")
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="builtin://wiki_vital_en.jsonl.zst")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=1, help="Manticore shards (tables)")
    parser.add_argument("--loaders", type=int, default=1, help="stage shards run in turn")
    parser.add_argument("--clients", type=int, default=4, help="threads querying at once")
    parser.add_argument("--topics", type=int, default=32, help="synthesis topics; 0: skip")
    parser.add_argument("--target", type=int, default=32768, help="synthesis target tokens")
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
        tantivy_store = ArtifactStore(f"file://{folder}/tantivy")
        mc_store = ArtifactStore(f"file://{folder}/manticore")
        tantivy, documents, tantivy_s = build(
            index_spec(args.corpus, {"type": "tantivy"}, args.loaders), tantivy_store, args.loaders
        )
        mc, mc_documents, mc_s = build(
            index_spec(args.corpus, manticore, args.loaders), mc_store, args.loaders
        )
        try:
            queries = [title.lower() for title in bisac_titles(args.queries)]
            print(f"corpus {args.corpus}: {documents} documents, {len(queries)} queries")
            print(
                f"load        tantivy {documents / tantivy_s:9.0f} docs/s   "
                f"manticore {mc_documents / mc_s:9.0f} docs/s   "
                f"ratio {tantivy_s / mc_s:.2f}"
            )
            for clients in sorted({1, args.clients}):
                tq = queries_per_second(lambda q: tantivy.search(q, args.top_k), queries, clients)
                mq = queries_per_second(lambda q: mc.search(q, args.top_k), queries, clients)
                verdict = "meets" if mq / tq >= TARGET_QUERY_RATIO else "misses"
                print(
                    f"query@{args.top_k} x{clients}  tantivy {tq:9.1f} q/s      "
                    f"manticore {mq:9.1f} q/s      ratio {mq / tq:.2f} "
                    f"({verdict} the {TARGET_QUERY_RATIO:.1f} target)"
                )
            scores = [
                overlap(tantivy.search(q, OVERLAP_AT), mc.search(q, OVERLAP_AT)) for q in queries
            ]
            found = [score for score in scores if score is not None]
            mean = statistics.fmean(found) if found else 0.0
            verdict = "meets" if mean >= TARGET_OVERLAP else "misses"
            print(
                f"parity      mean top-{OVERLAP_AT} overlap {mean:.3f} over {len(found)} queries "
                f"({verdict} the {TARGET_OVERLAP:.2f} target); "
                f"min {min(found, default=0):.2f}"
            )
            if args.topics:
                titles = bisac_titles(args.topics, seed=1)
                ts = synthesis_seconds(tantivy_store, titles, args.target)
                ms = synthesis_seconds(mc_store, titles, args.target)
                verdict = "meets" if ms / ts <= TARGET_SYNTHESIS_RATIO else "misses"
                print(
                    f"synthesis   {len(titles)} topics x2 at {args.target} tokens: "
                    f"tantivy {ts:.1f} s   manticore {ms:.1f} s   ratio {ms / ts:.2f} "
                    f"({verdict} the {TARGET_SYNTHESIS_RATIO:.1f} target)"
                )
        finally:
            mc.close()
            tantivy.close()
            drop_tables(mc_store, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
