"""Repeat a JSON Lines corpus, with variation, to reach millions of documents (bench/scale.py).

The largest offline corpus (`../shared/data/corpora/large`, 97,157 documents) is repeated until
the wanted count. Copy 0 is the corpus as it is. Copy k ≥ 1 of a document gets the id
`<id>~k`, ` (copy k)` after its first line, and drops each later line with probability 0.1
(seeded by copy and id): exact dedup keeps every copy, and BM25 scores differ between copies as
they would between similar documents of a real crawl. Documents are written in that order
(every copy-0 document, then every copy-1 document, ...) to shards of `--per-shard` documents,
`scale-NNNNN.jsonl.zst`, so the first N/per-shard shards hold the first N documents: the
benchmark's 100K, 1M and 5M corpora are prefixes of one stream. A shard already written (its
final name exists) is kept, so an interrupted run resumes.

    python bench/scale_corpus.py ../shared/data/corpora/large /tmp/scale-corpus --documents 5000000
"""

from __future__ import annotations

import argparse
import os
import random
import time
import zlib
from pathlib import Path

import orjson
import zstandard

DROP = 0.1


def source_documents(folder: Path) -> list[bytes]:
    """Every line of every `*.jsonl.zst` in `folder`, in file order (kept compressed-small:
    the large corpus is ~340 MB of JSON)."""
    lines: list[bytes] = []
    for path in sorted(folder.glob("*.jsonl.zst")):
        with zstandard.open(path, "rb") as handle:
            lines += [line for line in handle.read().split(b"\n") if line.strip()]
    return lines


def varied(line: bytes, copy: int) -> bytes:
    """Copy `copy` of one JSON line (module docstring)."""
    if copy == 0:
        return line
    record = orjson.loads(line)
    doc_id = str(record["id"])
    rng = random.Random(zlib.crc32(f"{copy}:{doc_id}".encode()))
    first, *rest = str(record["text"]).split("\n")
    kept = [first + f" (copy {copy})"]
    kept += [text for text in rest if rng.random() >= DROP]
    record["id"] = f"{doc_id}~{copy}"
    record["text"] = "\n".join(kept)
    return orjson.dumps(record)


def write(source: Path, out: Path, documents: int, per_shard: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    lines = source_documents(source)
    shards = -(-documents // per_shard)
    written: list[Path] = []
    compressor = zstandard.ZstdCompressor(level=3)
    started = time.perf_counter()
    for shard in range(shards):
        path = out / f"scale-{shard:05d}.jsonl.zst"
        written.append(path)
        if path.exists():
            continue
        first = shard * per_shard
        count = min(per_shard, documents - first)
        body = b"\n".join(
            varied(lines[n % len(lines)], n // len(lines)) for n in range(first, first + count)
        )
        partial = path.with_suffix(".partial")
        partial.write_bytes(compressor.compress(body + b"\n"))
        os.replace(partial, path)
        seconds = time.perf_counter() - started
        print(f"{path.name}: {count:,} documents, {path.stat().st_size:,} bytes, {seconds:.0f} s")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of *.jsonl.zst (the large corpus)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--documents", type=int, default=5_000_000)
    parser.add_argument("--per-shard", type=int, default=100_000)
    args = parser.parse_args()
    write(args.source, args.out, args.documents, args.per_shard)


if __name__ == "__main__":
    main()
