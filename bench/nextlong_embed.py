"""NExtLong dense negatives: chunks embedded per second, and what that means at the paper's scale.

Times litelong's embedding path (`ChunkEmbeddings.load`: chunk texts read from the chunk index,
encoded in batches, normalised, saved to the store as resumable files) against its peer, a bare
`SentenceTransformer.encode` of the same texts held in memory, on the same device in the same
run. Chunks are ~2,048 characters (the shipped Wikipedia sample, documents joined five to a
line group, then cut as a BM25Index with `chunks` cuts them), like the paper's.
Extrapolates to 117.5M chunks, the LiteLong+NExtLong embedding job, against its 170 GPU-hours.

    python bench/nextlong_embed.py                 # CPU here; on a GPU machine it uses cuda
    python bench/nextlong_embed.py --chunks 20000 --batch 256
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litelong.api import parse
from litelong.index import open_chunk_index
from litelong.stages import run_shard
from litelong.store import ArtifactStore
from litelong.synth.nextlong.embeddings import ChunkEmbeddings, device, encoder, load_model

PAPER_CHUNKS = 117_500_000
PAPER_GPU_HOURS = 170.0


def corpus(path: Path, chunks: int, per_document: int = 5) -> None:
    """`chunks` documents of ~2,048 characters: wiki documents joined `per_document` a group."""
    source = files("litelong") / "data" / "wiki_vital_en.jsonl.zst"
    with source.open("rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw)).readlines()
    texts = [json.loads(line)["text"] for line in lines]
    out = []
    for n in range(chunks):
        group = [texts[(n * per_document + i) % len(texts)] for i in range(per_document)]
        text = "\n".join(group)[:2048]
        out.append(json.dumps({"id": f"d{n}", "text": text}))
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--model", default=None, help="sentence-transformers model or folder")
    args = parser.parse_args()

    on = device()
    model = load_model(args.model, on)
    encode = encoder(model, args.batch)
    with tempfile.TemporaryDirectory() as folder:
        store = ArtifactStore(f"file://{folder}/store")
        corpus(Path(folder) / "c.jsonl", args.chunks)
        index = parse(
            {
                "apiVersion": "litelong.io/v1alpha1",
                "kind": "BM25Index",
                "metadata": {"name": "bench"},
                "spec": {
                    "corpus": [{"uri": f"{folder}/c.jsonl", "idField": "id"}],
                    "dedup": "none",
                    "chunks": {"enabled": True},
                },
            }
        )
        artifact = run_shard(index, store, 0, 1).artifact
        chunks, mean_chars = open_chunk_index(artifact, 2048)
        ids = list(chunks.document_ids())
        texts = chunks.get(ids)
        encode(texts[: args.batch])  # warm-up: kernels, allocator

        started = time.perf_counter()
        model.encode(texts, batch_size=args.batch, convert_to_numpy=True)
        if on == "cuda":
            import torch

            torch.cuda.synchronize()
        peer = time.perf_counter() - started

        started = time.perf_counter()
        embeddings = ChunkEmbeddings(store, artifact, chunks, args.model, encode)
        _, vectors = embeddings.load()
        ours = time.perf_counter() - started
        assert embeddings.computed == len(ids) == vectors.shape[0]

    name = args.model or "all-MiniLM-L6-v2"
    print(f"device: {on}" + (f" ({torch.cuda.get_device_name()})" if on == "cuda" else ""))
    print(f"model: {name} (max {model.max_seq_length} tokens), batch {args.batch}")
    print(f"chunks: {len(ids):,}, mean {mean_chars:,.0f} characters")
    for label, seconds in (("litelong ChunkEmbeddings", ours), ("peer: bare encode", peer)):
        rate = len(ids) / seconds
        hours = PAPER_CHUNKS / rate / 3600
        print(
            f"{label:26s} {seconds:8.2f} s  {rate:9.1f} chunks/s  "
            f"117.5M chunks: {hours:10.1f} device-hours ({hours / PAPER_GPU_HOURS:.2f}x the "
            f"paper's {PAPER_GPU_HOURS:.0f} GPU-hours)"
        )
    print(f"ratio litelong / peer throughput: {peer / ours:.3f}")


if __name__ == "__main__":
    main()
