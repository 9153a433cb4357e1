"""The whole docs-only BM25Index build against raw tantivy, counted in instructions (issue 22).

Wall and CPU seconds of one build move by ±15% between runs on a shared VM; instructions do
not. Each build runs as a whole process under `valgrind --tool=callgrind --separate-threads=yes`
(every thread, process start, commit and checksums included; valgrind runs the threads one at a
time, which changes no count) at two corpus sizes cut from the head of one scale shard, so each
item splits into a fixed cost and a cost a document. Threads are told apart by what they run
(tantivy's indexing threads stem, its docstore compressors run lz4, the checksums libcrypto...);
the main thread is split by shared object. Run from the checkout whose code is counted:

    python bench/build_instructions.py /work/scale/corpus/scale-00000.jsonl.zst --work /tmp/bi

Caveats, printed with the table: valgrind hides SHA-NI, so the sha256 checksums count ~5x what
the CPU runs natively; rich's progress thread refreshes 10 times a second of valgrind's (slow)
clock, so it is left out of the cost a document; the kernel's work (reads, writes) is not
counted.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
PYTHON = os.path.realpath(sys.executable)  # not a pyenv shim: valgrind must run the interpreter
TIME_DRIVEN = "rich progress refresh thread"


def cut(shard: Path, out: Path, documents: int) -> None:
    """The first `documents` lines of a .jsonl.zst shard as a .jsonl.zst file of their own."""
    import zstandard

    lines: list[bytes] = []
    with open(shard, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        for line in io.BufferedReader(reader, 1 << 20):
            if line.strip():
                lines.append(line)
                if len(lines) == documents:
                    break
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(zstandard.ZstdCompressor(level=3).compress(b"".join(lines)))


def callgrind(command: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("cg.out*"):
        old.unlink()
    valgrind = ["valgrind", "--tool=callgrind", "--separate-threads=yes"]
    valgrind.append(f"--callgrind-out-file={out / 'cg.out'}")
    with open(out / "log", "wb") as log:
        subprocess.run([*valgrind, PYTHON, *command], stdout=log, stderr=log, check=True)


def annotate(path: Path) -> list[tuple[int, str, str]]:
    """(exclusive instructions, function, shared object) of every function of one thread."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in text.split("file:function", 1)[1].splitlines():
        found = re.match(r"^\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if found:
            rest = found.group(2)
            where = re.search(r"\[([^\]]+)\]\s*$", rest)
            rows.append(
                (
                    int(found.group(1).replace(",", "")),
                    rest.split(" [")[0],
                    where.group(1) if where else "?",
                )
            )
    return rows


def thread_class(rows: list[tuple[int, str, str]]) -> str:
    top = " ".join(f"{function} {where}" for _, function, where in rows[:5])
    if "frostem" in top or "postings" in top:
        return "tantivy indexing threads (incl. the commit's flush)"
    if "lz4_flex" in top:
        return "tantivy docstore compressors"
    if "libcrypto" in top:
        return "sha256 part checksums"
    if "blas_thread_server" in top:
        return "numpy's BLAS thread (idle)"
    if "ceval.c" in top:
        return TIME_DRIVEN
    return "tantivy's other threads (segment updater, merges)"


def main_group(function: str, where: str) -> str:
    """The group of one of the main thread's functions, by name and shared object (the
    specific ones first: unicodedata and blake2b live in libpython)."""
    if "blake2" in function:
        return "blake2b content digest"
    if "unicodedata" in function or "unicodedata" in where:
        return "unicodedata (NFC)"
    for name, group in (
        ("numpy", "numpy (classification, dedup keys)"),
        ("openblas", "numpy (classification, dedup keys)"),
        ("zstandard", "zstd decompression"),
        ("orjson", "orjson parsing"),
        ("tantivy", "tantivy's Python side (Document, add_document)"),
        ("arrow", "pyarrow (ids.arrow)"),
    ):
        if name in where:
            return group
    if "libpython" in where or "Python-3." in function:
        return "interpreter (bytecode, objects, imports)"
    if where.rsplit("/", 1)[-1].startswith(("libc.so", "ld-linux")):
        return "libc (malloc, memcpy)"
    return "other"


def split(folder: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Instructions by thread class, and the main thread's by group."""
    threads: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    for path in sorted(folder.glob("cg.out-*")):
        rows = annotate(path)
        if path.name.endswith("-01"):
            threads["main thread"] += sum(ir for ir, _, _ in rows)
            for ir, function, where in rows:
                groups[main_group(function, where)] += ir
        else:
            threads[thread_class(rows)] += sum(ir for ir, _, _ in rows)
    return threads, groups


def table(
    title: str, small: collections.Counter[str], big: collections.Counter[str], sizes: list[int]
) -> dict[str, tuple[float, float]]:
    """Print each item's fixed cost and cost a document; return them."""
    (n1, n2), found = sizes, {}
    print(f"\n{title}\n| item | {n1:,} docs | {n2:,} docs | a document | fixed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key in sorted(set(small) | set(big), key=lambda k: -big[k]):
        per = (big[key] - small[key]) / (n2 - n1)
        found[key] = (per, small[key] - per * n1)
        print(f"| {key} | {small[key]:,} | {big[key]:,} | {per:,.0f} | {found[key][1]:,.0f} |")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shard", type=Path, help="a .jsonl.zst scale shard")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--documents", type=int, nargs=2, default=[1000, 20000])
    parser.add_argument("--predict", type=int, default=1_000_000, help="documents to predict")
    parser.add_argument(
        "--tables-only", action="store_true", help="annotate the runs already in --work"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    from scale import index_manifest

    runs = []
    for documents in args.documents:
        corpus = args.work / f"corpus-{documents}"
        cut(args.shard, corpus / "scale-00000.jsonl.zst", documents)
        manifest = index_manifest(corpus, documents, False, documents)
        spec = args.work / f"docs-{documents}.yaml"
        spec.write_text(yaml.safe_dump_all([manifest], sort_keys=False))
        store = f"file://{args.work / f'store-{documents}'}"
        peer_out = args.work / f"peer-index-{documents}"
        peer_out.mkdir(parents=True, exist_ok=True)
        runs.append(
            (["-m", "litelong", "run", str(spec), "--store", store], args.work / f"lit-{documents}")
        )
        peer = [str(BENCH / "scale.py"), "peer-child", str(peer_out)]
        runs.append(
            ([*peer, str(corpus / "scale-00000.jsonl.zst")], args.work / f"peer-{documents}")
        )
    if not args.tables_only:
        for folder in args.work.glob("store-*"):  # a committed artifact would be skipped
            subprocess.run(["rm", "-rf", str(folder)], check=True)
        with ThreadPoolExecutor(2) as pool:  # valgrind runs one thread at a time
            list(pool.map(lambda run: callgrind(*run), runs))
    totals = {}
    for who in ("lit", "peer"):
        splits = [split(args.work / f"{who}-{n}") for n in args.documents]
        name = "litelong" if who == "lit" else "raw tantivy peer"
        threads = table(f"{name}: threads", splits[0][0], splits[1][0], args.documents)
        table(f"{name}: main thread by shared object", splits[0][1], splits[1][1], args.documents)
        per = sum(p for key, (p, _) in threads.items() if key != TIME_DRIVEN)
        fixed = sum(f for key, (_, f) in threads.items() if key != TIME_DRIVEN)
        totals[who] = (per, fixed)
    (lit_per, lit_fixed), (peer_per, peer_fixed) = totals["lit"], totals["peer"]
    n = args.predict
    print(f"\ninstructions a document (progress thread left out): litelong {lit_per:,.0f}, peer")
    print(f"{peer_per:,.0f}; peer / litelong at {n:,} documents, fixed costs included:")
    print(f"{(peer_per * n + peer_fixed) / (lit_per * n + lit_fixed):.3f}")


if __name__ == "__main__":
    main()
