"""TopicDebate benchmark: subjects per minute on the embedded LLM, at concurrency 1 and higher.

It runs the real TopicDebate stage (`litelong.stages.run_shard`) with both debaters and the judge
on `baseURL: local` (llama.cpp serving SmolLM2-135M-Instruct in-process), each configuration in a
fresh store so that nothing comes from the response cache. The peer is the same stage at
concurrency 1: the ratio is what concurrent requests (llama.cpp slots, continuous batching) buy.

    python bench/debate.py --subjects 8 --topics 4 --concurrency 1 4

This is a benchmark, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from litelong.api import parse
from litelong.api.v1alpha1 import TopicDebate
from litelong.stages import run_shard
from litelong.store import ArtifactStore


@dataclass
class Figures:
    concurrency: int
    seconds: float
    subjects: int
    failed: int
    kept: int
    tokens: int
    requests: int

    @property
    def per_minute(self) -> float:
        return (self.subjects + self.failed) / self.seconds * 60

    @property
    def tokens_per_topic(self) -> float:
        return self.tokens / self.kept if self.kept else float("nan")


def resource(subjects: int, topics: int, concurrency: int, max_tokens: int) -> TopicDebate:
    local = {"baseURL": "local", "model": "smollm2"}
    debate = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "TopicDebate",
            "metadata": {"name": f"bench-c{concurrency}"},
            "spec": {
                "taxonomy": {"include": ["SCI*"], "maxSubjects": subjects, "seed": 0},
                "debaters": [
                    {"name": "alpha", "endpoint": local},
                    {"name": "beta", "endpoint": local},
                ],
                "judge": {"endpoint": local},
                "topicsPerSubject": topics,
                "sampling": {"maxTokens": max_tokens},
                "concurrency": concurrency,
            },
        }
    )
    assert isinstance(debate, TopicDebate)
    return debate


def measure(subjects: int, topics: int, concurrency: int, max_tokens: int) -> Figures:
    with tempfile.TemporaryDirectory() as folder:
        store = ArtifactStore(f"file://{folder}")
        started = time.perf_counter()
        result = run_shard(resource(subjects, topics, concurrency, max_tokens), store, 0, 1)
        seconds = time.perf_counter() - started
        assert result.manifest is not None
        counts = result.manifest.counts
    tokens = sum(v for k, v in counts.items() if k.startswith(("tokens_in.", "tokens_out.")))
    return Figures(
        concurrency=concurrency,
        seconds=seconds,
        subjects=counts.get("subjects", 0),
        failed=counts.get("subjects_failed", 0),
        kept=counts.get("topics", 0),
        tokens=tokens,
        requests=counts.get("requests", 0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--topics", type=int, default=4, help="topicsPerSubject")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    console = Console(width=160)
    results = []
    for concurrency in args.concurrency:
        console.print(f"concurrency {concurrency}: {args.subjects} subjects ...")
        results.append(measure(args.subjects, args.topics, concurrency, args.max_tokens))
    table = Table(
        "concurrency", "seconds", "subjects/min", "vs c=1", "ok", "failed", "kept topics",
        "requests", "LLM tokens", "tokens/kept topic",
    )  # fmt: skip
    base = results[0].per_minute
    for r in results:
        table.add_row(
            str(r.concurrency),
            f"{r.seconds:.1f}",
            f"{r.per_minute:.2f}",
            f"{r.per_minute / base:.2f}x",
            str(r.subjects),
            str(r.failed),
            str(r.kept),
            str(r.requests),
            f"{r.tokens:,}",
            f"{r.tokens_per_topic:,.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
