"""Mode nextlong's meta-chunk ids: cut from the documents' ids (`ChunkSlicer.token_ids`, what
planning does now) against tokenizing the meta-chunks (what filling did), on the same
meta-documents, in one process. Prints CPU seconds, tokens and the ratio.

    python bench/nextlong_slicing.py /work/scale/corpus/scale-00007.jsonl.zst --documents 4000
"""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
import zstandard

from litelong.index import split_chunks
from litelong.synth.assembly import Tokenized
from litelong.synth.nextlong import ChunkSlicer
from litelong.tokenizer import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a .jsonl.zst file of {'text': ...} records")
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--per-meta", type=int, default=80, help="documents a meta-document")
    parser.add_argument("--chunk-chars", type=int, default=2048)
    args = parser.parse_args()
    texts: list[str] = []
    with open(args.corpus, "rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), "utf-8")
        for _, line in zip(range(args.documents), lines, strict=False):
            texts.append(json.loads(line)["text"])
    tokenizer = load_tokenizer()
    slicer = ChunkSlicer.of(tokenizer)
    assert slicer is not None
    encoded = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    documents = [
        Tokenized(str(n), text, b"", np.asarray(e.ids, np.uint32))
        for n, (text, e) in enumerate(zip(texts, encoded, strict=True))
    ]
    metas = [documents[i : i + args.per_meta] for i in range(0, len(documents), args.per_meta)]
    chunked = [split_chunks("\n".join(d.text for d in m), args.chunk_chars) for m in metas]
    tokenizer.encode_batch_fast(chunked[0], add_special_tokens=False)  # warm
    started = time.process_time()
    tokens = sum(
        len(e.ids)
        for chunks in chunked
        for e in tokenizer.encode_batch_fast(chunks, add_special_tokens=False)
    )
    tokenizing = time.process_time() - started
    started = time.process_time()
    cut = uncut = 0
    for meta, chunks in zip(metas, chunked, strict=True):
        for ids in slicer.token_ids(meta, chunks):
            cut += ids is not None
            uncut += ids is None
    cutting = time.process_time() - started
    chunks_total = sum(len(chunks) for chunks in chunked)
    print(f"{len(metas)} meta-documents, {chunks_total:,} meta-chunks, {tokens:,} tokens")
    print(f"tokenizing: {tokenizing:.2f} CPU s ({tokenizing / tokens * 1e6:.3f} us a token)")
    print(f"cutting:    {cutting:.2f} CPU s ({cutting / tokens * 1e6:.3f} us a token)")
    print(
        f"cut {cut:,}, left to tokenize {uncut:,}; cutting / tokenizing {cutting / tokenizing:.3f}"
    )


if __name__ == "__main__":
    main()
