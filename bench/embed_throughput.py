"""Embedding throughput of the dense-negative model on one device, fp32 against fp16.

The dominant cost of NExtLong's dense negatives is encoding every corpus chunk once. This
times `SentenceTransformer.encode` on ~2,048-character chunks of the shipped Wikipedia sample
(five documents per chunk, as bench/nextlong_embed.py cuts them) and extrapolates to the
paper's 117.5M chunks against its 170 GPU-hours. It needs only sentence-transformers and
zstandard, so it runs on a bare GPU machine; bench/nextlong_embed.py measures litelong's own
path (chunk index, batching, resumable files) against this bare encode on the same machine.

    python bench/embed_throughput.py --model DIR --chunks 20000 --batch 256
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import torch
import zstandard
from sentence_transformers import SentenceTransformer

PAPER_CHUNKS = 117_500_000
PAPER_GPU_HOURS = 170.0
CORPUS = Path(__file__).resolve().parent.parent / "litelong" / "data" / "wiki_vital_en.jsonl.zst"


def chunks(count: int, per_chunk: int = 5) -> list[str]:
    with CORPUS.open("rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw)).readlines()
    texts = [json.loads(line)["text"] for line in lines]
    return [
        "\n".join(texts[(n * per_chunk + i) % len(texts)] for i in range(per_chunk))[:2048]
        for n in range(count)
    ]


def rate(model: SentenceTransformer, texts: list[str], batch: int) -> float:
    model.encode(texts[: batch * 2], batch_size=batch)  # warm-up: kernels, allocator
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    model.encode(texts, batch_size=batch, convert_to_numpy=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="sentence-transformers model folder")
    parser.add_argument("--chunks", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    on = "cuda" if torch.cuda.is_available() else "cpu"
    texts = chunks(args.chunks)
    name = torch.cuda.get_device_name() if on == "cuda" else "cpu"
    print(f"device: {name}; {len(texts):,} chunks, batch {args.batch}")
    results = {}
    for dtype in (torch.float32, torch.float16) if on == "cuda" else (torch.float32,):
        model = SentenceTransformer(args.model, device=on, local_files_only=True)
        model.to(dtype)
        results[str(dtype)] = rate(model, texts, args.batch)
        hours = PAPER_CHUNKS / results[str(dtype)] / 3600
        print(
            f"{dtype}: {results[str(dtype)]:9.1f} chunks/s (max {model.max_seq_length} tokens); "
            f"117.5M chunks: {hours:7.2f} device-hours = {hours / PAPER_GPU_HOURS:.4f}x "
            f"the paper's {PAPER_GPU_HOURS:.0f} GPU-hours"
        )
    if len(results) == 2:
        speedup = results["torch.float16"] / results["torch.float32"]
        print(f"ratio fp16 / fp32 throughput: {speedup:.2f}")


if __name__ == "__main__":
    main()
