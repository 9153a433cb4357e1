"""The Python side of a BM25Index build, without tantivy's threads: litelong's reading
(`read_columns`: zstd, JSON, normalisation, digests, dedup) and its part writer's per-document
work, against the raw tantivy peer's loop (`bench/scale.py peer-child`: zstd, orjson,
`tantivy.Document`), both handing documents to a writer that drops them (issue 22, bench/README.md
"index: where the last tenth goes").

    python bench/index_python.py /work/scale/corpus/scale-00000.jsonl.zst --documents 100000

prints CPU s of each (best of `--repeat`, alternating) and the ratio. With `--instructions`,
each side runs under `valgrind --tool=callgrind` for N and 2N documents, and the difference
is printed per document: instructions, which the load of a shared machine does not change.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


class _DroppingWriter:
    """`tantivy.IndexWriter.add_document` without the index: the document is dropped."""

    def add_document(self, document: object) -> int:
        return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peer_side(path: Path, documents: int) -> tuple[int, float]:
    """The peer's loop over the first `documents` records; (documents, CPU s)."""
    import orjson
    import tantivy
    import zstandard

    writer, count = _DroppingWriter(), 0
    started = _cpu()
    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        for line in io.BufferedReader(reader, 1 << 20):
            if not line.strip():
                continue
            record = orjson.loads(line)
            writer.add_document(tantivy.Document(id=record["id"], text=record["text"], ord=count))
            count += 1
            if count >= documents:
                break
    return count, _cpu() - started


def litelong_side(path: Path, documents: int) -> tuple[int, float]:
    """litelong's reading and part writer over the first `documents` documents (a docs-only
    BM25Index's defaults: minChars 20, exact dedup, ids from the content); (documents, CPU s)."""
    import litelong.api
    from litelong.corpus import SkipCounter, read_columns
    from litelong.index.tantivy_backend import TantivyPartWriter

    resource_ = litelong.api.parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": "python-side"},
            "spec": {"corpus": [{"uri": str(path), "format": "jsonl"}], "minChars": 20},
        }
    )
    folder = Path(tempfile.mkdtemp(prefix="index-python-"))
    try:
        part = TantivyPartWriter(folder, resource_.spec.analysis)
        part._writer = _DroppingWriter()  # type: ignore[assignment]
        count = 0
        started = _cpu()
        for ids, texts in read_columns(resource_.spec, 0, 1, SkipCounter()):
            part.add_columns(ids, texts)
            count += len(ids)
            sum(map(len, texts))  # the stage's progress count
            if count >= documents:
                break
        part._flush_ids()
        seconds = _cpu() - started
        return count, seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _child(side: str, path: Path, documents: int) -> None:
    count, seconds = (peer_side if side == "peer" else litelong_side)(path, documents)
    print(json.dumps({"side": side, "documents": count, "cpu_s": round(seconds, 3)}))


def _instructions(side: str, path: Path, documents: int) -> int:
    """Instructions of the child under callgrind (the whole process: imports included)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        command += [sys.executable, __file__, "--child", side, str(path), str(documents)]
        subprocess.run(command, check=True, capture_output=True)
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path, nargs="?")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "PATH", "DOCUMENTS"))
    args = parser.parse_args(argv)
    if args.child:
        side, path, documents = args.child
        _child(side, Path(path), int(documents))
        return
    if args.path is None:
        parser.error("the corpus file is required")
    if args.instructions:
        result: dict[str, Any] = {}
        for side in ("litelong", "peer"):
            low = _instructions(side, args.path, args.documents)
            high = _instructions(side, args.path, 2 * args.documents)
            result[side] = (high - low) / args.documents
            print(f"{side:8s} {result[side]:12,.0f} instructions a document")
        print(f"peer / litelong: {result['peer'] / result['litelong']:.2f}")
        return
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for side in ("litelong", "peer"):
            command = [sys.executable, __file__, "--child", side, str(args.path)]
            output = subprocess.run(
                [*command, str(args.documents)], check=True, capture_output=True, text=True
            ).stdout
            figures = json.loads(output.splitlines()[-1])
            best[side] = min(best.get(side, float("inf")), figures["cpu_s"])
            print(f"{side:8s} {figures['documents']:,} documents {figures['cpu_s']:.2f} CPU s")
    print(f"best: litelong {best['litelong']:.2f}, peer {best['peer']:.2f} CPU s; ", end="")
    print(f"peer / litelong {best['peer'] / best['litelong']:.2f}")


if __name__ == "__main__":
    main()
