"""`litelong run --jobs 1` against `--jobs 2`: the same resources, parallelism 2, this machine.

Setup (untimed): per arm, a fresh ArtifactStore holding a TopicDebate committed by hand (topics
are seeded BISAC subject titles, no LLM, as bench/synthesis.py does).

Timed, per arm, each as one `python -m litelong run FILE --store S --jobs J` process:

* index: a BM25Index (tantivy) of the corpora, `parallelism: 2`;
* synthesis: a SynthesisRun (mode litelong, 128K target, mds) over that index, `parallelism: 2`,
  commit and report included.

Wall time is the process's; CPU time is user + system of the process and its workers
(RUSAGE_CHILDREN, which counts the workers it waited for). Throughput: documents/s and MB/s
for the index, output tokens/s for the synthesis. ratio = jobs-1 wall / jobs-2 wall (> 1: two
processes are faster). Arms alternate (1, 2, 1, 2, ...) so drift in the machine's load hits both.
"""

from __future__ import annotations

import argparse
import os
import resource as rusage
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rule_topics import commit_rule_topics

from litelong.cores import usable_cores
from litelong.store import ArtifactStore


def commit_topics(store: ArtifactStore, name: str, count: int) -> None:
    """A TopicDebate of `count` seeded BISAC subjects (bench/rule_topics.py)."""
    commit_rule_topics(store, name, count)


def manifests(corpora: list[Path], target: int, per_topic: int) -> tuple[dict[str, Any], ...]:
    files = [f for c in corpora for f in (sorted(c.glob("*.jsonl.zst")) if c.is_dir() else [c])]
    if not files:
        raise SystemExit(f"no *.jsonl.zst corpus in {', '.join(map(str, corpora))}")
    corpus = [{"uri": str(p.resolve()), "format": "jsonl", "idField": "id"} for p in files]
    index = {"corpus": corpus, "parallelism": 2}
    synthesis = {
        "topicDebateRef": "topics",
        "indexRef": "corpora",
        "mode": "litelong",
        "targetTokens": target,
        "samplesPerTopic": per_topic,
        "output": {"format": "mds"},
        "parallelism": 2,
    }
    return tuple(
        {"apiVersion": "litelong.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": s}
        for kind, name, s in (("BM25Index", "corpora", index), ("SynthesisRun", "bench", synthesis))
    )


def timed_run(spec: Path, store: ArtifactStore, jobs: int) -> tuple[float, float]:
    """(wall s, CPU s of the litelong process and its workers) of one `litelong run`."""
    before = rusage.getrusage(rusage.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-m", "litelong", "run", str(spec), "--store", store.uri]
    result = subprocess.run([*command, "--jobs", str(jobs)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = rusage.getrusage(rusage.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpora",
        type=Path,
        nargs="+",
        default=[Path("../shared/data/corpora")],
        help="folders (their *.jsonl.zst) or files",
    )
    parser.add_argument("--topics", type=int, default=64)
    parser.add_argument("--samples-per-topic", type=int, default=1)
    parser.add_argument("--target", type=int, default=131072)
    parser.add_argument("--repeat", type=int, default=1, help="runs per arm; best kept")
    args = parser.parse_args()
    index, synthesis = manifests(args.corpora, args.target, args.samples_per_topic)
    rows: dict[tuple[str, int], list[tuple[float, float, dict[str, int]]]] = {}
    print(f"{usable_cores()} usable cores, {args.topics} topics, parallelism 2")
    with tempfile.TemporaryDirectory(prefix="litelong-bench-parallel-") as scratch:
        for number in range(args.repeat):
            for jobs in (1, 2):
                store = ArtifactStore(f"file://{scratch}/store-{number}-{jobs}")
                commit_topics(store, "topics", args.topics)
                for what, document in (("index", index), ("synthesis", synthesis)):
                    spec = Path(scratch) / f"{what}.yaml"
                    spec.write_text(yaml.safe_dump(document))
                    wall, cpu = timed_run(spec, store, jobs)
                    artifact = store.latest_committed(
                        document["kind"], document["metadata"]["name"]
                    )
                    counts = dict(artifact.manifest().counts)
                    counts["bytes"] = artifact.manifest().size
                    rows.setdefault((what, jobs), []).append((wall, cpu, counts))
                    print(f"  {what} --jobs {jobs}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    print()
    print("| stage | --jobs | wall s | CPU s | CPU / wall | throughput | ratio (jobs 1 / jobs) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for what in ("index", "synthesis"):
        best_one = min(wall for wall, _, _ in rows[(what, 1)])
        for jobs in (1, 2):
            wall, cpu, counts = min(rows[(what, jobs)], key=lambda row: row[0])
            if what == "index":
                rate = f"{counts['documents'] / wall:,.0f} docs/s"
            else:
                rate = f"{counts['tokens'] / wall:,.0f} tokens/s ({counts['samples']} samples)"
            print(
                f"| {what} | {jobs} | {wall:.1f} | {cpu:.1f} | {cpu / wall:.2f} | {rate} | "
                f"{best_one / wall:.2f}x |"
            )
    print(f"\nload average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
