"""Index-build and query-latency benchmark: litelong vs raw tantivy vs bm25s.

For each corpus file (and for all of them together) it measures:

* litelong: the real BM25Index stage end to end (`litelong.stages.run_shard`): zstd, JSON,
  normalisation, dedup, tantivy indexing, commit;
* raw tantivy: the same documents, read into memory beforehand, fed straight to tantivy with
  litelong's schema and analyzer (the ceiling litelong can reach);
* bm25s: the same documents, tokenised (stop words, Snowball stemming) and indexed;
* single-query latency (p50/p95) of litelong and bm25s over BISAC-subject queries.

Run from the repository root:

    python bench/index_build.py ../shared/data/corpora --repeat 3

This is a benchmark, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import orjson
import Stemmer
import tantivy
import zstandard
from rich.console import Console
from rich.table import Table

import litelong.api
import litelong.stages
from litelong.api.v1alpha1.bm25index import Analysis
from litelong.corpus import content_digest, normalize_text
from litelong.index import Retriever, open_index
from litelong.index.tantivy_backend import ANALYZER, build_analyzer, build_schema
from litelong.store import ArtifactStore

MIN_CHARS = 20  # BM25IndexSpec.min_chars default
MAX_CHARS = 4_000_000  # BM25IndexSpec.max_chars default
TOP_KS = (100, 1000)
OVERLAP_AT = 10
TARGET_VS_TANTIVY = 0.85
TARGET_VS_BM25S = 1.0

console = Console(width=110)  # wide enough for the tables when piped to a file


@dataclass
class Corpus:
    """The documents litelong would index, already in memory."""

    name: str
    paths: list[Path]
    ids: list[str]
    texts: list[str]
    utf8_bytes: int

    @property
    def megabytes(self) -> float:
        return self.utf8_bytes / 1e6


@dataclass
class Timing:
    """Wall-clock seconds of N runs of one engine, and the documents it indexed."""

    engine: str
    documents: int
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Latency:
    """Per-query milliseconds of one engine at one k."""

    engine: str
    k: int
    millis: list[float]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.millis)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Result:
    """Everything measured on one corpus."""

    corpus: Corpus
    builds: dict[str, Timing]
    latencies: list[Latency]
    overlap: float


# -- reading -----------------------------------------------------------------------------------


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Decoded JSON objects of a zstd JSON Lines file."""
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        for line in io.BufferedReader(reader, 1 << 20):
            if line.strip():
                yield orjson.loads(line)


def load_corpus(name: str, paths: Sequence[Path]) -> Corpus:
    """Read, normalise, filter and exact-dedup documents the way litelong's reader does."""
    seen_content: set[bytes] = set()
    seen_ids: set[str] = set()
    ids: list[str] = []
    texts: list[str] = []
    nbytes = 0
    for path in paths:
        for record in iter_records(path):
            text = normalize_text(record["text"])
            if not MIN_CHARS <= len(text) <= MAX_CHARS:
                continue
            digest = content_digest(text)[:8]
            identifier = str(record["id"])
            if digest in seen_content:  # same order as litelong's read_shard
                continue
            seen_content.add(digest)
            if identifier in seen_ids:
                continue
            seen_ids.add(identifier)
            ids.append(identifier)
            texts.append(text)
            nbytes += len(text.encode("utf-8"))
    return Corpus(name, list(paths), ids, texts, nbytes)


def bisac_queries(csv_path: Path, count: int, seed: int = 0) -> list[str]:
    """Topic-like queries: the last two components of seeded-random BISAC subject paths."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    queries = []
    for row in random.Random(seed).sample(rows, min(count, len(rows))):
        parts = [row["heading"], *row["label"].split(" / ")]
        parts = [part for part in parts if part != "General"] or [row["heading"]]
        queries.append(" ".join(parts[-2:]).lower())
    return queries


# -- the three builds --------------------------------------------------------------------------


def bm25_resource(paths: Sequence[Path]) -> Any:
    """A BM25Index resource over `paths`, as a user's manifest would declare it."""
    corpus = [
        {"uri": str(path.resolve()), "format": "jsonl", "textField": "text", "idField": "id"}
        for path in paths
    ]
    return litelong.api.parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": "bench"},
            "spec": {"corpus": corpus},
        }
    )


def build_litelong(paths: Sequence[Path], folder: Path) -> tuple[float, Any]:
    """Seconds for run_shard(0, 1) into a fresh store in `folder`, and its ShardResult."""
    resource = bm25_resource(paths)
    store = ArtifactStore("file://" + str(folder))
    started = time.perf_counter()
    result = litelong.stages.run_shard(resource, store, 0, 1)
    return time.perf_counter() - started, result


def build_tantivy(corpus: Corpus, folder: Path) -> float:
    """Seconds to index the in-memory documents with litelong's schema and analyzer."""
    started = time.perf_counter()
    # the id as a raw text term (litelong's schema before `key`): how tantivy alone finds by id
    index = tantivy.Index(build_schema("id"), path=str(folder))
    index.register_tokenizer(ANALYZER, build_analyzer(Analysis()))
    writer = index.writer(512 * 1024 * 1024, 0)
    for identifier, text in zip(corpus.ids, corpus.texts, strict=True):
        writer.add_document(tantivy.Document(id=identifier, text=text))
    writer.commit()
    writer.wait_merging_threads()
    return time.perf_counter() - started


def build_bm25s(corpus: Corpus, stemmer: Any) -> tuple[float, bm25s.BM25]:
    """Seconds to tokenise and index the in-memory documents with bm25s, and the retriever."""
    started = time.perf_counter()
    tokens = bm25s.tokenize(corpus.texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index(tokens, show_progress=False)
    return time.perf_counter() - started, retriever


def warm_up(corpus: Corpus, workdir: Path, stemmer: Any) -> None:
    """One untimed build per engine, so the first corpus does not pay for cold caches."""
    for build in (lambda f: build_litelong(corpus.paths, f), lambda f: build_tantivy(corpus, f)):
        folder = fresh_dir(workdir, "warmup")
        build(folder)
        shutil.rmtree(folder)
    build_bm25s(corpus, stemmer)


def fresh_dir(workdir: Path, label: str) -> Path:
    """An empty folder under the benchmark's scratch directory."""
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=workdir))


# -- queries -----------------------------------------------------------------------------------


def litelong_search(retriever: Retriever, k: int) -> Callable[[str], list[str]]:
    """One query → ranked doc ids, through litelong's retriever."""
    return lambda query: [doc_id for doc_id, _ in retriever.search(query, k)]


def bm25s_search(
    retriever: bm25s.BM25, ids: Sequence[str], stemmer: Any, k: int
) -> Callable[[str], list[str]]:
    """One query → ranked doc ids (matching documents only), through bm25s."""

    def search(query: str) -> list[str]:
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, show_progress=False)
        docs, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [ids[d] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    return search


def time_queries(
    search: Callable[[str], list[str]], queries: Sequence[str]
) -> tuple[list[float], list[list[str]]]:
    """Milliseconds per query (after a short warm-up) and each query's ranked ids."""
    for query in queries[:10]:
        search(query)
    millis, rankings = [], []
    for query in queries:
        started = time.perf_counter()
        ranking = search(query)
        millis.append((time.perf_counter() - started) * 1000)
        rankings.append(ranking)
    return millis, rankings


def top_overlap(left: Sequence[list[str]], right: Sequence[list[str]], at: int) -> float:
    """Mean |top-`at` ∩ top-`at`| / `at` over queries where either engine found something."""
    shares = [
        len(set(a[:at]) & set(b[:at])) / min(at, max(len(a), len(b)))
        for a, b in zip(left, right, strict=True)
        if a or b
    ]
    return statistics.fmean(shares) if shares else float("nan")


# -- one corpus --------------------------------------------------------------------------------


def bench_corpus(
    corpus: Corpus, queries: Sequence[str], repeat: int, workdir: Path, stemmer: Any
) -> Result:
    """All builds `repeat` times, then query latency on the last litelong and bm25s indexes."""
    timings = {
        "litelong": Timing("litelong", 0),
        "raw tantivy": Timing("raw tantivy", len(corpus.texts)),
        "bm25s": Timing("bm25s", len(corpus.texts)),
    }
    result = retriever_bm25s = None
    for run in range(repeat):
        last = run == repeat - 1
        folder = fresh_dir(workdir, "litelong")
        seconds, result = build_litelong(corpus.paths, folder)
        timings["litelong"].seconds.append(seconds)
        timings["litelong"].documents = result.manifest.counts["documents"]
        if not last:
            shutil.rmtree(folder)
        folder = fresh_dir(workdir, "tantivy")
        timings["raw tantivy"].seconds.append(build_tantivy(corpus, folder))
        shutil.rmtree(folder)
        seconds, retriever_bm25s = build_bm25s(corpus, stemmer)
        timings["bm25s"].seconds.append(seconds)
        if not last:
            del retriever_bm25s
    assert result is not None and retriever_bm25s is not None
    latencies, overlap = bench_queries(
        open_index(result.artifact), retriever_bm25s, corpus, queries, stemmer
    )
    return Result(corpus, timings, latencies, overlap)


def bench_queries(
    litelong_retriever: Retriever,
    bm25s_retriever: bm25s.BM25,
    corpus: Corpus,
    queries: Sequence[str],
    stemmer: Any,
) -> tuple[list[Latency], float]:
    """p50/p95 inputs for both engines at each k, and their top-10 overlap at the first k."""
    latencies: list[Latency] = []
    overlap = float("nan")
    for k in TOP_KS:
        k_eff = min(k, len(corpus.texts))  # bm25s refuses k above the corpus size
        ours, our_rankings = time_queries(litelong_search(litelong_retriever, k_eff), queries)
        peer = bm25s_search(bm25s_retriever, corpus.ids, stemmer, k_eff)
        theirs, their_rankings = time_queries(peer, queries)
        latencies += [Latency("litelong", k_eff, ours), Latency("bm25s", k_eff, theirs)]
        if k == TOP_KS[0]:
            overlap = top_overlap(our_rankings, their_rankings, OVERLAP_AT)
    litelong_retriever.close()
    return latencies, overlap


# -- output ------------------------------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


def print_result(result: Result, repeat: int) -> None:
    """One table of build throughput and one of query latency for a corpus."""
    corpus = result.corpus
    build = Table(
        title=f"{corpus.name}: {len(corpus.texts):,} docs, {corpus.megabytes:.2f} MB text "
        f"(best of {repeat})",
        title_justify="left",
    )
    for column in ("engine", "docs", "best s", "median s", "docs/s", "MB/s"):
        build.add_column(column, justify="left" if column == "engine" else "right")
    for timing in result.builds.values():
        build.add_row(
            timing.engine,
            f"{timing.documents:,}",
            f"{timing.best:.3f}",
            f"{timing.median:.3f}",
            f"{timing.documents / timing.best:,.0f}",
            f"{corpus.megabytes / timing.best:.2f}",
        )
    console.print(build)
    ours = result.builds["litelong"].best
    console.print(
        f"  litelong / raw tantivy: {ratio(result.builds['raw tantivy'].best, ours)} "
        f"(target ≥ {TARGET_VS_TANTIVY})   "
        f"litelong / bm25s: {ratio(result.builds['bm25s'].best, ours)} "
        f"(target ≥ {TARGET_VS_BM25S})"
    )
    latency = Table(title=f"{corpus.name}: single-query latency, ms", title_justify="left")
    for column in ("k", "litelong p50", "litelong p95", "bm25s p50", "bm25s p95", "bm25s/litelong"):
        latency.add_column(column, justify="right")
    pairs = zip(result.latencies[::2], result.latencies[1::2], strict=True)
    for ours_lat, theirs_lat in pairs:
        latency.add_row(
            str(ours_lat.k),
            f"{ours_lat.percentile(0.5):.2f}",
            f"{ours_lat.percentile(0.95):.2f}",
            f"{theirs_lat.percentile(0.5):.2f}",
            f"{theirs_lat.percentile(0.95):.2f}",
            ratio(theirs_lat.percentile(0.5), ours_lat.percentile(0.5)) + " (p50)",
        )
    console.print(latency)
    console.print(f"  top-{OVERLAP_AT} overlap litelong vs bm25s: {result.overlap:.1%}\n")


def print_summary(results: Sequence[Result]) -> None:
    """Throughput ratios and latency for every corpus side by side."""
    summary = Table(title="Summary (throughput ratios: higher is better for litelong)")
    for column in (
        "corpus",
        "litelong MB/s",
        "vs tantivy",
        "vs bm25s",
        "p50 ms k=100 litelong / bm25s",
        "top-10 overlap",
    ):
        summary.add_column(column, justify="left" if column == "corpus" else "right")
    for result in results:
        builds = result.builds
        ours = builds["litelong"].best
        first_ours, first_theirs = result.latencies[0], result.latencies[1]
        summary.add_row(
            result.corpus.name,
            f"{result.corpus.megabytes / ours:.2f}",
            mark(builds["raw tantivy"].best / ours, TARGET_VS_TANTIVY),
            mark(builds["bm25s"].best / ours, TARGET_VS_BM25S),
            f"{first_ours.percentile(0.5):.2f} / {first_theirs.percentile(0.5):.2f}",
            f"{result.overlap:.1%}",
        )
    console.print(summary)


def mark(value: float, target: float) -> str:
    """A ratio, flagged when it misses its target."""
    return f"{value:.2f}x" + ("" if value >= target else " (below target)")


# -- main --------------------------------------------------------------------------------------


def corpus_sets(folder: Path, only: str | None) -> list[tuple[str, list[Path]]]:
    """(name, files) for each corpus file, plus all of them together when there are several."""
    files = sorted(folder.glob("*.jsonl.zst"))
    if only:
        files = [path for path in files if only in (path.name, path.name.split(".")[0])]
    if not files:
        raise SystemExit(f"no *.jsonl.zst corpus in {folder}" + (f" named {only}" if only else ""))
    sets = [(path.name.split(".")[0], [path]) for path in files]
    if len(files) > 1:
        sets.append(("all", files))
    return sets


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="?", default="../shared/data/corpora", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="builds per engine; best reported")
    parser.add_argument("--queries", type=int, default=200, help="queries for latency")
    parser.add_argument(
        "--bisac", type=Path, default=Path("../shared/data/bisac/bisac-subjects.csv")
    )
    parser.add_argument("--only", help="one corpus file (name or stem)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    queries = bisac_queries(args.bisac, args.queries)
    stemmer = Stemmer.Stemmer("english")
    results = []
    with tempfile.TemporaryDirectory(prefix="litelong-bench-") as scratch:
        for number, (name, paths) in enumerate(corpus_sets(args.corpora, args.only)):
            corpus = load_corpus(name, paths)
            if number == 0:
                warm_up(corpus, Path(scratch), stemmer)
            results.append(bench_corpus(corpus, queries, args.repeat, Path(scratch), stemmer))
            print_result(results[-1], args.repeat)
    print_summary(results)


if __name__ == "__main__":
    main()
