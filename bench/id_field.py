"""What finding documents by id costs a tantivy build, apart from everything else: N documents
with content-hash ids (32 hex characters, as a BM25Index without `idField` has) and a
two-word text, indexed with no id at all, with the id as a raw text term (stored and indexed:
litelong before `key`, and the raw-tantivy peer), and with `key` (the id's CRC-32 as an
indexed integer, litelong now). CPU and wall seconds of each build, the layouts alternating
`--repeat` times; the id's cost is a build's time less the no-id build's.

    python bench/id_field.py --documents 1000000 --repeat 2
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import tempfile
import time
import zlib
from pathlib import Path

LAYOUTS = ("no id", "id term", "key")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(layout: str, ids: list[str], folder: Path) -> tuple[float, float]:
    """CPU and wall seconds to add every document, commit and wait for merges."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    if layout == "id term":
        builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    elif layout == "key":
        builder.add_integer_field("key", indexed=True)
    builder.add_text_field("text", stored=True, tokenizer_name="default", index_option="freq")
    builder.add_integer_field("ord", fast=True)
    index = tantivy.Index(builder.build(), path=str(folder), reuse=False)
    writer = index.writer(512 * 1024 * 1024, 0)
    make, add, crc32 = tantivy.Document, writer.add_document, zlib.crc32
    cpu, wall = cpu_seconds(), time.perf_counter()
    for ordinal, doc_id in enumerate(ids):
        if layout == "id term":
            add(make(id=doc_id, text="plants light", ord=ordinal))
        elif layout == "key":
            add(make(key=crc32(doc_id.encode()), text="plants light", ord=ordinal))
        else:
            add(make(text="plants light", ord=ordinal))
    writer.commit()
    writer.wait_merging_threads()
    return cpu_seconds() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    ids = [
        hashlib.blake2b(str(number).encode(), digest_size=16).hexdigest()
        for number in range(args.documents)
    ]
    cpu: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    wall: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    with tempfile.TemporaryDirectory() as temporary:
        for _ in range(args.repeat):
            for layout in LAYOUTS:
                folder = Path(temporary, layout.replace(" ", "-"))
                folder.mkdir()
                spent, elapsed = build(layout, ids, folder)
                shutil.rmtree(folder)
                cpu[layout].append(spent)
                wall[layout].append(elapsed)
    base = min(cpu["no id"])
    print(f"{args.documents:,} documents")
    print("| layout | CPU s (runs) | wall s (runs) | CPU s over no id (best) |")
    print("| --- | ---: | ---: | ---: |")
    for layout in LAYOUTS:
        runs = ", ".join(f"{value:.2f}" for value in cpu[layout])
        walls = ", ".join(f"{value:.2f}" for value in wall[layout])
        print(f"| {layout} | {runs} | {walls} | {min(cpu[layout]) - base:+.2f} |")


if __name__ == "__main__":
    main()
