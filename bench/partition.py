"""What one BM25Index shard reads: `partition: content` against `partition: files`.

Reading is the part of an index build that `partition` changes: by content every shard reads
every file (and keeps 1/N of the documents), by files each shard reads only its share. This
times `read_shard` alone (read, normalise, filter, dedup; no index writer) for every shard of N
under both partitions, one shard after another in this process, and prints per shard the
seconds, the stored bytes of the files it opened and the documents it kept. ratio = the slowest
content shard / the slowest files shard (> 1: a files shard finishes sooner; about N when the
files split evenly). Arms alternate (content, files, content, ...) over `--repeat` rounds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from litelong.api.loading import parse
from litelong.api.v1alpha1 import BM25Index
from litelong.corpus import SkipCounter, read_shard, shard_files
from litelong.corpus.partition import file_size


def index(files: list[str], partition: str, shards: int) -> BM25Index:
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": "bench"},
            "spec": {
                "corpus": [{"uri": uri} for uri in files],
                "partition": partition,
                "parallelism": shards,
            },
        }
    )
    assert isinstance(resource, BM25Index)
    return resource


def time_shard(resource: BM25Index, shard: int, of: int) -> tuple[float, int, int]:
    """(seconds, stored bytes opened, documents kept) of one shard's read."""
    opened = sum(file_size(file) for file in shard_files(resource.spec, shard, of))
    started = time.perf_counter()
    documents = sum(1 for _ in read_shard(resource.spec, shard, of, SkipCounter(shard, of)))
    return time.perf_counter() - started, opened, documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="corpus files (at least --shards of them)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    files = [str(Path(f).resolve()) for f in args.files]
    slowest: dict[str, list[float]] = {"content": [], "files": []}
    for round_ in range(args.repeat):
        for partition in ("content", "files"):
            resource = index(files, partition, args.shards)
            times = []
            for shard in range(args.shards):
                seconds, opened, documents = time_shard(resource, shard, args.shards)
                times.append(seconds)
                print(
                    f"round {round_} {partition:7} shard {shard}/{args.shards}: {seconds:6.2f} s, "
                    f"{opened / 1e6:6.1f} MB stored opened, {documents:,} documents",
                    flush=True,
                )
            slowest[partition].append(max(times))
    content, files_ = min(slowest["content"]), min(slowest["files"])
    print(
        f"slowest shard (best of {args.repeat}): content {content:.2f} s, files {files_:.2f} s; "
        f"ratio content/files {content / files_:.2f}"
    )


if __name__ == "__main__":
    main()
