"""Training throughput: tokens/s, MFU and peak memory of `litelong.train` on GPUs.

Runs the real training loop (`litelong.train.loop.train`: FSDP2, bf16, selective activation
checkpointing, chunked loss, AdamW) on synthetic sequences: random tokens cut into documents
whose lengths are drawn (seeded) from a log-normal with a median of 1,500 tokens, about what
web and Wikipedia documents give a SynthesisRun. Each configuration runs `--steps` optimizer
steps of one sequence per data-parallel replica; the first `--warmup` steps (kernel
compilation, allocator growth) are left out of the median. The peer in each table is the same
model unmasked (plain causal, SDPA flash attention), and for context parallelism the same code
on one GPU; ratios are printed against them.

    # one GPU: the ~1.2B Llama-3.2-1B shape at 32K, 64K, 128K, masked and unmasked
    python bench/train.py --lengths 32768 65536 131072 --out single.jsonl
    # two GPUs, context parallel, and one GPU at the same per-GPU sequence
    torchrun --nproc-per-node 2 bench/train.py --lengths 262144 524288 --cp 2 --out cp.jsonl
    python bench/train.py --lengths 131072 262144 --out one.jsonl
    python bench/train.py --compare one.jsonl cp.jsonl

MFU counts model FLOPs only (litelong/train/metrics.py): attention over the (query, key) pairs
the mask allows, so a masked run is credited with less work than a causal one.
This is a benchmark, not a test: it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MEDIAN_DOC_TOKENS = 1500


class SyntheticDocuments:
    """Sequence i: seeded random tokens, cut into log-normal document lengths."""

    def __init__(self, length: int, vocab: int, seed: int = 0) -> None:
        self.length, self.vocab, self.seed = length, vocab, seed

    def __len__(self) -> int:
        return 1 << 30

    def sequence(self, index: int) -> Any:
        from litelong.train.data import Sequence

        rng = np.random.default_rng([self.seed, index])
        tokens = rng.integers(0, self.vocab, self.length + 1, dtype=np.int64)
        spans, start = [], 0
        while start < self.length + 1:
            size = int(np.clip(rng.lognormal(np.log(MEDIAN_DOC_TOKENS), 1.0), 16, 65536))
            spans.append((start, min(start + size, self.length + 1)))
            start += size
        return Sequence(f"synthetic/{index}", tokens, spans)


def _job(model: str, length: int, masked: bool, cp: int, gpus: int) -> Any:
    from litelong.api import parse

    return parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": f"bench-{length}-{'masked' if masked else 'causal'}-cp{cp}"},
            "spec": {
                "synthesisRunRef": "synthetic",
                "model": {"name": model, "fromConfig": True},
                "contextLength": length,
                "steps": 1_000_000,  # no decay and no final checkpoint inside the timed steps
                "warmupRatio": 0.0,
                "batchTokens": length * gpus // cp,
                "documentMasking": masked,
                "checkpointEvery": 1_000_000,
                "parallelism": {"nodes": 1, "gpusPerNode": gpus, "contextParallel": cp},
            },
        }
    )


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    from litelong.store import ArtifactStore
    from litelong.train.loading import PRESETS
    from litelong.train.loop import train

    gpus = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    vocab = PRESETS[args.model].vocab_size if args.model in PRESETS else 32_000
    results = []
    with tempfile.TemporaryDirectory() as folder:
        store = ArtifactStore(f"file://{folder}")
        for length in args.lengths:
            for masked in (False, True):
                if (masked and args.unmasked_only) or (not masked and args.masked_only):
                    continue
                job = _job(args.model, length, masked, args.cp, gpus)
                data = SyntheticDocuments(length, vocab)
                try:
                    outcome = train(job, store, data=data, stop_after=args.steps)
                except torch.OutOfMemoryError:
                    results.append({"length": length, "masked": masked, "oom": True})
                    torch.cuda.empty_cache()
                    continue
                timed = outcome.rows[args.warmup :]
                if rank == 0:
                    row = _summary(timed, length, masked, args.cp, gpus)
                    row["losses"] = [r["loss"] for r in outcome.rows]
                    results.append(row)
                    print(json.dumps(row), flush=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    return results


def _summary(
    rows: list[dict[str, Any]], length: int, masked: bool, cp: int, gpus: int
) -> dict[str, Any]:
    import torch

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    return {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "gpus": gpus,
        "cp": cp,
        "length": length,
        "per_gpu_tokens": length // cp,
        "masked": masked,
        "steps_timed": len(rows),
        "seconds_per_step": median("seconds"),
        "tokens_per_s_per_gpu": median("tokens_per_s_per_gpu"),
        "tflops_per_gpu": median("tflops_per_gpu"),
        "mfu": median("mfu") if rows[0]["mfu"] is not None else None,
        "peak_memory_gib": max(r["peak_memory_gib"] or 0.0 for r in rows),
    }


def table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'gpus':>4} {'cp':>2} {'length':>7} {'mask':>6} {'s/step':>7} {'tok/s/GPU':>10} "
        f"{'TFLOP/s/GPU':>11} {'MFU':>6} {'peak GiB':>8} {'vs causal':>9}"
    )
    causal = {(r["length"], r["cp"]): r for r in results if not r.get("oom") and not r["masked"]}
    for r in results:
        if r.get("oom"):
            print(f"{'':>4} {'':>2} {r['length']:>7} {r['masked']!s:>6} out of memory")
            continue
        peer = causal.get((r["length"], r["cp"]))
        ratio = r["tokens_per_s_per_gpu"] / peer["tokens_per_s_per_gpu"] if peer else float("nan")
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(
            f"{r['gpus']:>4} {r['cp']:>2} {r['length']:>7} {'doc' if r['masked'] else 'causal':>6} "
            f"{r['seconds_per_step']:>7.2f} {r['tokens_per_s_per_gpu']:>10,.0f} "
            f"{r['tflops_per_gpu']:>11.1f} {mfu:>6} {r['peak_memory_gib']:>8.1f} {ratio:>8.2f}x"
        )


def compare(one: Path, cp: Path) -> None:
    """Scaling efficiency: TFLOP/s per GPU under context parallelism over one GPU's at the
    same tokens per GPU (model FLOPs, so the longer sequence's larger attention is credited)."""
    single = [json.loads(line) for line in one.read_text().splitlines()]
    parallel = [json.loads(line) for line in cp.read_text().splitlines()]
    base = {(r["per_gpu_tokens"], r["masked"]): r for r in single if not r.get("oom")}
    print(
        f"{'length':>7} {'cp':>2} {'mask':>6} {'TFLOP/s/GPU':>11} {'1 GPU':>7} {'efficiency':>10}"
    )
    for r in parallel:
        if r.get("oom"):
            continue
        peer = base.get((r["per_gpu_tokens"], r["masked"]))
        if peer is None:
            continue
        print(
            f"{r['length']:>7} {r['cp']:>2} {'doc' if r['masked'] else 'causal':>6} "
            f"{r['tflops_per_gpu']:>11.1f} {peer['tflops_per_gpu']:>7.1f} "
            f"{r['tflops_per_gpu'] / peer['tflops_per_gpu']:>9.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litelong/llama-1b")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32768, 65536, 131072])
    parser.add_argument("--cp", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--unmasked-only", action="store_true")
    parser.add_argument("--masked-only", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("ONE_GPU", "CP"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    results = run(args)
    if int(os.environ.get("RANK", "0")) == 0:
        table(results)
        if args.out:
            args.out.write_text("".join(json.dumps(r) + "\n" for r in results))


if __name__ == "__main__":
    main()
