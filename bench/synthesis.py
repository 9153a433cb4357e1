"""SynthesisRun benchmark: output tokens/s against the tokenize-only bound, and peak RSS.

Setup (untimed): a BM25Index of the corpora and a TopicDebate committed by hand (topics are
BISAC subject titles, no LLM) in a temporary ArtifactStore, then one small warm-up SynthesisRun.

Timed, per target size, `--repeat` times (best reported):

* run: `litelong.stages.run_shard(resource, store, 0, 1)` for a SynthesisRun (mode litelong,
  output mds): retrieval, fetching texts from the index, tokenizing, assembling, writing the MDS
  shards and metadata.parquet, the part checksums, the commit, and the report written after the
  commit. tokens/s = manifest counts["tokens"] / that wall time. "build" is the stage's
  build_part alone (`seconds` of the part record); the rest of the wall time is the part's
  sha256 checksums, the commit and the report.
* bound: the distinct documents of the run's samples (doc ids from its metadata.parquet, texts
  fetched from the index before the timer) tokenized once with the same tokenizer:
  `encode_batch(texts[i:i+64], add_special_tokens=False)`. Its output tokens/s is the run's
  output tokens divided by that time; ratio = run tokens/s / bound tokens/s.

Peak RSS: the stage (run_shard, report included) runs in a fresh child process (`--child`) per
topic count, at target 131072; the child reports its VmHWM from /proc/self/status. A baseline
child only imports litelong, loads the tokenizer and opens the index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from rule_topics import commit_rule_topics

import litelong.api
from litelong.index import open_index
from litelong.stages import run_shard
from litelong.store import ArtifactStore
from litelong.tokenizer import load_tokenizer

console = Console(width=None if sys.stdout.isatty() else 160)
TARGET_RATIO = 0.8
BATCH = 64  # the stage's FETCH_BATCH


def resource(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return litelong.api.parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def build_index(store: ArtifactStore, corpora: Path) -> None:
    files = sorted(corpora.glob("*.jsonl.zst"))
    if not files:
        raise SystemExit(f"no *.jsonl.zst corpus in {corpora}")
    corpus = [{"uri": str(p.resolve()), "format": "jsonl", "idField": "id"} for p in files]
    run_shard(resource("BM25Index", "corpora", {"corpus": corpus}), store, 0, 1)


def commit_topics(store: ArtifactStore, name: str, count: int) -> None:
    """A TopicDebate of `count` seeded BISAC subjects (bench/rule_topics.py)."""
    commit_rule_topics(store, name, count)


def synthesis(name: str, debate: str, target: int, per_topic: int) -> Any:
    return resource(
        "SynthesisRun",
        name,
        {
            "topicDebateRef": debate,
            "indexRef": "corpora",
            "mode": "litelong",
            "targetTokens": target,
            "samplesPerTopic": per_topic,
            "output": {"format": "mds"},
        },
    )


@dataclass
class Run:
    wall: float
    build: float
    counts: dict[str, int]
    part: Path


def run_synthesis(store: ArtifactStore, res: Any) -> Run:
    started = time.perf_counter()
    result = run_shard(res, store, 0, 1)
    wall = time.perf_counter() - started
    assert result.manifest is not None, "nothing committed"
    (part,) = result.manifest.parts
    return Run(wall, part.seconds, result.manifest.counts, result.artifact.local_part(part))


def used_texts(store: ArtifactStore, part: Path) -> list[str]:
    """Texts of the distinct documents in the run's samples, in order of first use."""
    ids = pq.read_table(part / "metadata.parquet", columns=["doc_ids"])["doc_ids"]
    distinct = list(dict.fromkeys(i for row in ids.to_pylist() for i in row or ()))
    retriever = open_index(store.latest_committed("BM25Index", "corpora"))
    try:
        return retriever.get(distinct)
    finally:
        retriever.close()


def tokenize_seconds(texts: list[str]) -> float:
    tokenizer = load_tokenizer()
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        tokenizer.encode_batch(texts[start : start + BATCH], add_special_tokens=False)
    return time.perf_counter() - started


# -- child process for peak RSS ----------------------------------------------------------------


def child(store_uri: str, debate: str, target: int, per_topic: int) -> None:
    store = ArtifactStore(store_uri)
    counts: dict[str, Any] = {}
    if debate == "-":  # baseline: what every run holds before building anything
        load_tokenizer().encode("warm", add_special_tokens=False)
        open_index(store.latest_committed("BM25Index", "corpora")).close()
    else:
        run = run_synthesis(store, synthesis(f"rss-{debate}", debate, target, per_topic))
        shutil.rmtree(run.part.parent)
        counts = {"seconds": run.wall, **run.counts}
    status = Path("/proc/self/status").read_text()
    (peak,) = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    print(json.dumps({"peak_kib": int(peak), **counts}))


def measure_rss(store: ArtifactStore, debate: str, target: int, per_topic: int) -> dict[str, Any]:
    """A fresh child process runs the stage and reports its VmHWM (peak RSS, KiB) and counts.

    Not ru_maxrss: Linux folds the RSS of the process image replaced by exec into the child's
    ru_maxrss, so a child forked from this (large) parent would report at least its size."""
    command = [sys.executable, __file__, "--child", store.uri, debate, str(target), str(per_topic)]
    done = subprocess.run(command, stdout=subprocess.PIPE, check=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


# -- main ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/data/corpora"))
    parser.add_argument("--target", type=int, nargs="+", default=[32768, 131072])
    parser.add_argument("--topics", type=int, default=64, help="topics of the timed runs")
    parser.add_argument("--samples-per-topic", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per target; best kept")
    parser.add_argument(
        "--rss-topics",
        type=int,
        nargs="+",
        default=[64, 256, 1024, 4096],
        help="topic counts of the peak-RSS children (target 131072)",
    )
    parser.add_argument(
        "--child",
        nargs=4,
        metavar=("STORE", "DEBATE", "TARGET", "PER_TOPIC"),
        help=argparse.SUPPRESS,
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        store_uri, debate, target, per_topic = args.child
        child(store_uri, debate, int(target), int(per_topic))
        return
    with tempfile.TemporaryDirectory(prefix="litelong-bench-synth-") as scratch:
        store = ArtifactStore("file://" + scratch)
        build_index(store, args.corpora)
        retriever = open_index(store.latest_committed("BM25Index", "corpora"))
        console.print(
            f"litelong from {Path(litelong.__file__).parent}; index of {retriever.count():,} "
            f"documents; {os.cpu_count()} cores"
        )
        retriever.close()
        for count in {args.topics, 8, *args.rss_topics}:
            commit_topics(store, f"topics-{count}", count)
        run_synthesis(store, synthesis("warmup", "topics-8", 4096, 1))  # imports, tokenizer
        throughput(store, args)
        peak_rss(store, args)


RUN_COLUMNS = "target,samples,output tokens,run s,run tok/s,bound s,bound tok/s,run / bound (≥ 0.8)"
DETAIL_COLUMNS = (
    "target,build s,commit + report s,build tok/s,build / bound,docs used,"
    "docs tokenized by run,bound docs/s"
)


def table(title: str, columns: str) -> Table:
    result = Table(title=title, title_justify="left")
    for column in columns.split(","):
        result.add_column(column, justify="right")
    return result


def throughput(store: ArtifactStore, args: argparse.Namespace) -> None:
    setup = f"{args.topics} topics, samplesPerTopic {args.samples_per_topic}, best of {args.repeat}"
    runs_table = table(f"SynthesisRun vs tokenize-only bound ({setup})", RUN_COLUMNS)
    detail = table("Where the run's time goes, and the bound's documents", DETAIL_COLUMNS)
    for target in args.target:
        runs, bounds = [], []
        for number in range(args.repeat):
            res = synthesis(
                f"t{target}-{number}", f"topics-{args.topics}", target, args.samples_per_topic
            )
            runs.append(run_synthesis(store, res))
            texts = used_texts(store, runs[-1].part)  # fetched before the bound's timer
            shutil.rmtree(runs[-1].part.parent)  # the output is not needed any more
            bounds.append(tokenize_seconds(texts))
        best, build, bound = (
            min(runs, key=lambda r: r.wall),
            min(r.build for r in runs),
            min(bounds),
        )
        tokens = best.counts["tokens"]
        if not tokens:
            console.print(f"target {target:,}: no sample filled; nothing to compare")
            continue
        ratio = bound / best.wall  # (tokens / wall) / (tokens / bound)
        runs_table.add_row(
            f"{target:,}",
            f"{best.counts['samples']:,}",
            f"{tokens:,}",
            f"{best.wall:.2f}",
            f"{tokens / best.wall:,.0f}",
            f"{bound:.2f}",
            f"{tokens / bound:,.0f}",
            f"{ratio:.2f}x" + ("" if ratio >= TARGET_RATIO else " (missed)"),
        )
        detail.add_row(
            f"{target:,}",
            f"{build:.2f}",
            f"{best.wall - best.build:.2f}",
            f"{tokens / build:,.0f}",
            f"{bound / build:.2f}x",
            f"{len(texts):,}",
            f"{best.counts['documents_tokenized']:,}",
            f"{len(texts) / bound:,.0f}",
        )
    console.print(runs_table, detail)


def peak_rss(store: ArtifactStore, args: argparse.Namespace) -> None:
    title = (
        f"Peak RSS of a child running the stage (target 131,072, {args.samples_per_topic}/topic)"
    )
    rss = table(title, "topics,samples,output tokens,docs tokenized,run s,peak RSS MiB")
    baseline = measure_rss(store, "-", 0, 0)
    rss.add_row("baseline", "-", "-", "-", "-", f"{baseline['peak_kib'] / 1024:,.0f}")
    for count in args.rss_topics:
        counts = measure_rss(store, f"topics-{count}", 131072, args.samples_per_topic)
        rss.add_row(
            f"{count:,}",
            f"{counts['samples']:,}",
            f"{counts['tokens']:,}",
            f"{counts['documents_tokenized']:,}",
            f"{counts['seconds']:.1f}",
            f"{counts['peak_kib'] / 1024:,.0f}",
        )
    console.print(rss)


if __name__ == "__main__":
    main()
