"""Peak memory of a SynthesisRun on one 50 MB document against an ordinary run.

Setup (untimed): two BM25Indexes in a temporary ArtifactStore: `ordinary`, the shipped
Wikipedia sample (many documents of a few thousand characters), and `book`, one generated
document of `--megabytes` MB (numbered paragraphs of words; `maxChars` raised so it is kept).

Measured, each in a fresh child process (`--child`): `run_shard` of a SynthesisRun in mode
standard (one draw, `--samples` samples of `--target` tokens, output mds, the report
included), the child printing its VmHWM from /proc/self/status and its wall time. The peer is the
ordinary run; the ratio is book / ordinary (the issue's bound: at most 2).

    python bench/long_document_memory.py --megabytes 50 --target 32768 --samples 10
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import litelong.api
from litelong.stages import run_shard
from litelong.store import ArtifactStore

WORDS = ["river", "mountain", "harbour", "lantern", "orchard", "meadow", "granite", "quiet"]


def resource(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return litelong.api.parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def write_book(path: Path, megabytes: int) -> None:
    rng = random.Random(0)
    paragraphs, size, number = [], 0, 0
    while size < megabytes * 1_000_000:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160)))
        paragraph = f"Paragraph {number}. {words.capitalize()}."
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
        number += 1
    path.write_text(json.dumps({"id": "book", "text": "\n\n".join(paragraphs)}) + "\n")


def child(store_uri: str, index: str, target: int, samples: int) -> None:
    store = ArtifactStore(store_uri)
    spec = {
        "indexRef": index,
        "mode": "standard",
        "targetTokens": target,
        "samplesPerTopic": samples,
        "retrieval": {"topK": 100_000},
        "output": {"format": "mds"},
    }
    start = time.perf_counter()
    result = run_shard(resource("SynthesisRun", f"synth-{index}", spec), store, 0, 1)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    counts = result.manifest.counts if result.manifest else {}
    print(
        json.dumps(
            {"peak_mb": peak_kb / 1024, "seconds": seconds, "samples": counts.get("samples")}
        )
    )


def measure(store_uri: str, index: str, target: int, samples: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", store_uri, index, str(target), str(samples)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--target", type=int, default=32768)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--child", nargs=4, metavar=("STORE", "INDEX", "TARGET", "SAMPLES"))
    args = parser.parse_args()
    if args.child:
        store_uri, index, target, samples = args.child
        child(store_uri, index, int(target), int(samples))
        return
    with tempfile.TemporaryDirectory() as folder:
        store_uri = f"file://{folder}/store"
        store = ArtifactStore(store_uri)
        book = Path(folder) / "book.jsonl"
        write_book(book, args.megabytes)
        corpora = {
            "ordinary": {"corpus": [{"uri": "builtin://wiki_vital_en.jsonl.zst"}]},
            "book": {"corpus": [{"uri": str(book)}], "maxChars": args.megabytes * 2_000_000},
        }
        for name, spec in corpora.items():
            run_shard(resource("BM25Index", name, spec), store, 0, 1)
        figures = {name: measure(store_uri, name, args.target, args.samples) for name in corpora}
    for name, figure in figures.items():
        print(
            f"{name:>9}: peak RSS {figure['peak_mb']:8.1f} MB, {figure['seconds']:7.1f} s, "
            f"{figure['samples']} samples of {args.target:,} tokens"
        )
    ratio = figures["book"]["peak_mb"] / figures["ordinary"]["peak_mb"]
    print(f"peak RSS ratio, {args.megabytes} MB document / ordinary run: {ratio:.2f} (bound: 2)")


if __name__ == "__main__":
    main()
