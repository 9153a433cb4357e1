"""`TantivyRetriever.get` through the id as an indexed text term (parts written before `key`)
against through `key` (the CRC-32 of the id, checked against `ids.arrow`): the same documents,
the same asked ids, CPU microseconds per id.

Both parts are built untimed from the first `--documents` records of a corpus file, with
content-hash ids as a BM25Index without `idField` has; then each layout answers the same seeded
random batches, the two alternating `--repeat` times, after one untimed pass each (page cache).

    python bench/get_by_id.py /work/scale/corpus/scale-00000.jsonl.zst --documents 100000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import zstd_lines

from litelong.api.v1alpha1.bm25index import Analysis
from litelong.corpus import Document
from litelong.corpus.normalize import normalize_and_digest
from litelong.index import TantivyPartWriter, TantivyRetriever
from litelong.index.tantivy_backend import (
    _IDS_FILE,
    _IDS_SCHEMA,
    ANALYZER,
    _int_array,
    _string_array,
    build_analyzer,
    build_schema,
)


def read_documents(path: Path, count: int) -> list[Document]:
    documents: dict[str, Document] = {}
    for line in zstd_lines(path):
        text, digest = normalize_and_digest(orjson.loads(line)["text"])
        documents.setdefault(digest.hex(), Document(digest.hex(), text))
        if len(documents) == count:
            break
    return list(documents.values())


def write_id_layout(folder: Path, documents: list[Document]) -> None:
    """A part as the writer before `key` made it: the id indexed and stored as raw text."""
    import tantivy

    index = tantivy.Index(build_schema("id"), path=str(folder), reuse=False)
    index.register_tokenizer(ANALYZER, build_analyzer(Analysis()))
    writer = index.writer(512 * 1024 * 1024, 0)
    for ordinal, document in enumerate(documents):
        writer.add_document(tantivy.Document(id=document.id, text=document.text, ord=ordinal))
    writer.commit()
    writer.wait_merging_threads()
    ids = [document.id for document in documents]
    chars = [len(document.text) for document in documents]
    batch = pa.record_batch([_string_array(ids), _int_array(chars)], schema=_IDS_SCHEMA)
    with pa.ipc.new_file(str(folder / _IDS_FILE), _IDS_SCHEMA) as sink:
        sink.write_batch(batch)


def write_key_layout(folder: Path, documents: list[Document]) -> None:
    writer = TantivyPartWriter(folder, Analysis())
    writer.add(documents)
    writer.commit()


def timed(retriever: TantivyRetriever, batches: list[list[str]]) -> tuple[float, float]:
    """CPU and wall seconds to `get` every batch."""
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        retriever.get(batch)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a .jsonl.zst file of {id, text} records")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--ids", type=int, default=20_000, help="ids asked per size and pass")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 512])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    documents = read_documents(args.corpus, args.documents)
    ids = [document.id for document in documents]
    with tempfile.TemporaryDirectory() as temporary:
        folders = {"id term": Path(temporary, "id"), "key": Path(temporary, "key")}
        for folder in folders.values():
            folder.mkdir()
        write_id_layout(folders["id term"], documents)
        write_key_layout(folders["key"], documents)
        retrievers = {name: TantivyRetriever([f], Analysis()) for name, f in folders.items()}
        print(f"{len(documents):,} documents; {args.ids:,} ids a size and pass")
        print("| batch | layout | CPU µs per id (passes) | wall µs per id (best) | vs id term |")
        print("| ---: | --- | ---: | ---: | ---: |")
        for size in args.sizes:
            draw = random.Random(size)
            asked = [draw.choice(ids) for _ in range(args.ids)]
            batches = [asked[start : start + size] for start in range(0, len(asked), size)]
            texts = {name: r.get(asked[:size]) for name, r in retrievers.items()}
            assert texts["key"] == texts["id term"], "the layouts disagree"
            for retriever in retrievers.values():
                timed(retriever, batches)  # untimed pass: page cache
            cpu: dict[str, list[float]] = {name: [] for name in retrievers}
            wall: dict[str, list[float]] = {name: [] for name in retrievers}
            for _ in range(args.repeat):
                for name, retriever in retrievers.items():
                    spent, elapsed = timed(retriever, batches)
                    cpu[name].append(spent * 1e6 / len(asked))
                    wall[name].append(elapsed * 1e6 / len(asked))
            for name in retrievers:
                ratio = min(cpu["id term"]) / min(cpu[name])
                passes = ", ".join(f"{value:.1f}" for value in cpu[name])
                print(f"| {size} | {name} | {passes} | {min(wall[name]):.1f} | {ratio:.2f}x |")
        for retriever in retrievers.values():
            retriever.close()


if __name__ == "__main__":
    main()
