"""TrainingJob: tokens, steps, FLOPs, GPU-hours, memory per GPU, and whether it fits.

Memory per GPU, in bytes, for litelong/train (bf16 compute, fp32 master weights, FSDP2 over
every GPU, selective activation checkpointing, sliced loss, Ulysses context parallelism with
S_cp = contextLength / contextParallel tokens per GPU outside attention):

    states    = 16 P / GPUs                        fp32 weights, gradients, two AdamW moments
    gathered  = 2 (P_root + 2 P_layer)             bf16 all-gathered: root unit, block + prefetch
    saved     = 2 L S_cp (d + H hd)                per block: its input (the checkpoint) and the
                                                   attention output (kept by selective AC)
    recompute = 2 S_cp (4 I + 4 d) (+ 8 S_cp H hd causal: repeated K/V and fp32 dQ)
                                                   one block's activations rebuilt in backward
    loss      = 6 C V + 4 S_cp d                   one C-token slice of bf16 + fp32 logits
    peak      = states + gathered + saved + max(recompute, loss)

It fits when the peak is at most `FIT_SHARE` of the GPU's memory (allocator slack).
FLOPs are those `litelong.train.metrics.step_flops` credits: 6 P_matmul per token plus
12 L H hd per attended (query, key) pair; document-masked pairs per token are about
(mean document tokens + 1) / 2. GPU-hours = FLOPs / (MFU x peak FLOP/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..api.v1alpha1 import TrainingJob
from .calibration import Calibration, GpuRates
from .deadline import Scaling
from .defaults import GPU
from .estimate import Estimate, Plan
from .models import Shape, shape_of

GIB = 2**30
#: Tokens per slice of the vocabulary projection (litelong.train.model.LOSS_CHUNK).
LOSS_CHUNK = 8192
FIT_SHARE = 0.95
#: bench/README.md, one H100, 1.24B model: MFU by (document-masked, length).
BENCH_MFU = {
    (True, 32_768): 0.262,
    (True, 65_536): 0.258,
    (True, 131_072): 0.265,
    (False, 32_768): 0.312,
    (False, 65_536): 0.334,
    (False, 131_072): 0.345,
}
#: Mean document tokens when the samples are not known (bench/train.py's median).
DEFAULT_DOCUMENT_TOKENS = 1500.0


@dataclass(frozen=True)
class Memory:
    states: float
    gathered: float
    saved: float
    recompute: float
    loss: float

    @property
    def peak(self) -> float:
        return self.states + self.gathered + self.saved + max(self.recompute, self.loss)

    def as_gib(self) -> dict[str, float]:
        parts = {k: getattr(self, k) for k in ("states", "gathered", "saved", "recompute", "loss")}
        return {k: round(v / GIB, 2) for k, v in {**parts, "peak": self.peak}.items()}


def memory_per_gpu(shape: Shape, length: int, gpus: int, cp: int, masked: bool = True) -> Memory:
    """Peak bytes on one GPU for one sequence of `length` tokens per CP group."""
    p = shape.parameters()
    d, hd, heads = shape.hidden_size, shape.head_dim, shape.num_heads
    tokens = length / cp
    root = shape.vocab_size * d * (1 if shape.tie_embeddings else 2) + d
    recompute = 2 * tokens * (4 * shape.intermediate_size + 4 * d)
    if not masked:
        recompute += 8 * tokens * heads * hd
    return Memory(
        states=16 * p / gpus,
        gathered=2 * (root + 2 * shape.layer_parameters()),
        saved=2 * shape.num_layers * tokens * (d + heads * hd),
        recompute=recompute,
        loss=6 * min(LOSS_CHUNK, tokens) * shape.vocab_size + 4 * tokens * d,
    )


def fits(memory: Memory, gpu_gib: float) -> bool:
    return memory.peak <= FIT_SHARE * gpu_gib * GIB


def smallest_cp(
    shape: Shape, length: int, gpus: int, gpu_gib: float, masked: bool
) -> tuple[int, int] | None:
    """(CP degree, GPUs) of the smallest context-parallel degree that fits: CP must divide the
    heads and the length; the job gets at least CP GPUs (a multiple of CP)."""
    for cp in range(1, 65):
        if shape.num_heads % cp or length % cp:
            continue
        world = max(gpus, cp)
        world += (-world) % cp
        if fits(memory_per_gpu(shape, length, world, cp, masked), gpu_gib):
            return cp, world
    return None


def estimate_training(resource: TrainingJob, calibration: Calibration, plan: Plan) -> Estimate:
    spec = resource.spec
    shape = shape_of(spec.model.name)
    gpu: GpuRates = calibration.gpu or GPU
    par = spec.parallelism
    gpus = par.nodes * par.gpus_per_node
    cp = par.context_parallel
    length = spec.context_length
    masked = spec.document_masking
    dp = gpus // cp
    accum = max(1, spec.batch_tokens // (length * dp))
    step_tokens = accum * dp * length
    tokens = spec.steps * step_tokens
    doc_tokens = _document_tokens(resource, plan, calibration)
    per_token_pairs = (min(doc_tokens, length) + 1) / 2 if masked else (length + 1) / 2
    flops = 6 * shape.parameters(embeddings=False) * tokens + (
        12 * shape.num_layers * shape.num_heads * shape.head_dim * tokens * per_token_pairs
    )
    mfu, mfu_source = _mfu(calibration, masked, length)
    gpu_hours = flops / (mfu * gpu.peak_tflops * 1e12) / 3600
    memory = memory_per_gpu(shape, length, gpus, cp, masked)
    fit = fits(memory, gpu.memory_gib)
    smallest = smallest_cp(shape, length, gpus, gpu.memory_gib, masked)
    checkpoints = math.ceil(spec.steps / spec.checkpoint_every)
    checkpoint_bytes = 12 * shape.parameters()
    samples = _samples(resource, plan)
    figures = {
        "parameters": shape.parameters(),
        "gpus": gpus,
        "context_parallel": cp,
        "steps": spec.steps,
        "tokens_per_step": step_tokens,
        "tokens": tokens,
        "flops": flops,
        "mfu": mfu,
        "memory_gib": memory.as_gib(),
        "gpu_memory_gib": gpu.memory_gib,
        "fits": fit,
        "smallest_fitting_cp": None
        if smallest is None
        else {"cp": smallest[0], "gpus": smallest[1]},
        "checkpoint_bytes": checkpoint_bytes,
        "checkpoints": checkpoints,
    }
    if samples:
        figures["epochs"] = round(tokens / (samples * length), 2)
    basis = [
        f"{spec.model.name}: {shape.parameters() / 1e9:.2f}B parameters, {shape.num_layers} "
        f"layers, d {shape.hidden_size}, {shape.num_heads}/{shape.num_kv_heads} heads",
        f"{step_tokens:,} tokens/step ({accum} x {dp} sequences of {length:,}); "
        f"{'document-masked' if masked else 'causal'} attention, "
        f"{per_token_pairs:,.0f} attended pairs per token",
        f"MFU {mfu:.1%} ({mfu_source}) of {gpu.peak_tflops:,.0f} TFLOP/s ({gpu.name})",
        f"memory per GPU {memory.peak / GIB:.1f} GiB of {gpu.memory_gib:.0f} GiB "
        f"(fits at <= {FIT_SHARE:.0%})",
    ]
    warnings = []
    if not fit:
        if smallest is None:
            warnings.append(f"does not fit on {gpu.name} at any context-parallel degree up to 64")
        else:
            warnings.append(
                f"does not fit: {memory.peak / GIB:.1f} GiB per GPU > {gpu.memory_gib:.0f} GiB; "
                f"contextParallel {smallest[0]} on {smallest[1]} GPU(s) would"
            )
    alone = smallest_cp(shape, length, 1, gpu.memory_gib, masked)  # the fewest GPUs that fit
    scaling = Scaling(
        unit="gpus",
        work=gpu_hours * 3600,
        fixed_seconds=0.0,
        min_units=alone[1] if alone else gpus,
        multiple=alone[0] if alone else cp,
    )
    return Estimate(
        kind=resource.kind,
        name=resource.name,
        wall_seconds=gpu_hours * 3600 / gpus,
        bytes=checkpoints * checkpoint_bytes,
        gpu_hours=gpu_hours,
        figures=figures,
        basis=basis,
        warnings=warnings,
        scaling=scaling,
    )


def _mfu(calibration: Calibration, masked: bool, length: int) -> tuple[float, str]:
    if calibration.gpu is not None and calibration.gpu.mfu is not None:
        return calibration.gpu.mfu, calibration.label
    nearest = min((k for k in BENCH_MFU if k[0] == masked), key=lambda k: abs(k[1] - length))
    return BENCH_MFU[nearest], f"bench/README.md, 1.24B model at {nearest[1]:,}"


def _document_tokens(resource: TrainingJob, plan: Plan, calibration: Calibration) -> float:
    synthesis = plan.find("SynthesisRun", resource.spec.synthesis_run_ref)
    if synthesis is not None and synthesis.figures.get("documents_needed_per_sample"):
        sample_tokens = synthesis.figures["tokens"] / max(1, synthesis.figures["samples"])
        return float(sample_tokens / synthesis.figures["documents_needed_per_sample"])
    return DEFAULT_DOCUMENT_TOKENS


def _samples(resource: TrainingJob, plan: Plan) -> int:
    synthesis = plan.find("SynthesisRun", resource.spec.synthesis_run_ref)
    return int(synthesis.figures["samples"]) if synthesis is not None else 0
