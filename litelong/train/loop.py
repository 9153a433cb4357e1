"""The training loop a TrainingJob's pods run: every rank runs this same function.

Each optimizer step covers `batchTokens` (rounded down to whole sequences, at least one per
data-parallel replica): replica d reads sequence (step * accum + micro) * replicas + d of the
data order, the ranks of its context-parallel group each take a contiguous share of it.
Gradients are reduced once per step (FSDP2), clipped at norm 1, AdamW steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..api.v1alpha1 import TrainingJob
from ..progress import NoProgress, Progress
from ..store import Artifact, ArtifactStore
from . import parallel
from .attention import DocumentMask, document_ids
from .checkpoint import Checkpoints
from .data import Sequence, TrainingData
from .loading import load_model
from .metrics import MetricsLog, StepTimer, attended_pairs, peak_flops, peak_memory_gib, step_flops
from .model import AttentionBatch, CausalLM
from .optim import lr_factor, optimizer, set_lr

GRAD_CLIP = 1.0


class Sequences(Protocol):
    def sequence(self, index: int) -> Sequence: ...


@dataclass
class TrainResult:
    artifact: Artifact
    start_step: int  # the step resumed from (0: a fresh run)
    step: int  # the last step taken
    checkpoint: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)  # rank 0's metrics
    stopped: bool = False  # stopped early by `stop_after`: nothing committed


def train(
    job: TrainingJob,
    store: ArtifactStore,
    *,
    data: Sequences | None = None,
    stop_after: int | None = None,
    progress: Progress | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train, resuming from the artifact's last checkpoint; commit the artifact at the end.

    `data` replaces the SynthesisRun (benchmarks feed synthetic sequences); `stop_after` ends
    the run after that step without committing, as a pod killed there would (the last
    checkpoint is what a rerun resumes from)."""
    spec = job.spec
    progress = progress or NoProgress()
    world = parallel.start(spec.parallelism.context_parallel)
    from ..stages import resolve_inputs

    resolved = resolve_inputs([job], lambda _: store)[0]  # as is when already resolved
    assert isinstance(resolved, TrainingJob)
    job = resolved
    artifact = store.output_of(job)
    length = spec.context_length
    if data is None:
        source = store.input_of(job, "SynthesisRun")  # the exact samples its identity names
        data = TrainingData(source, length, spec.seed)
    model = load_model(
        spec.model, length, spec.rope_theta, spec.seed, spec.activation_checkpointing
    )
    config = model.config
    world.cp.check(config.num_heads, config.num_kv_heads, length)
    parallel.shard_model(model, world)  # in place: FSDP2 swaps the class, keeps the object
    opt = optimizer(model, spec.learning_rate, spec.weight_decay)
    checkpoints = Checkpoints(artifact)
    start_step = checkpoints.load(model, opt)
    log = MetricsLog(artifact, start_step) if world.is_main else None
    accum = max(1, spec.batch_tokens // (length * world.dp_size))
    warmup = round(spec.steps * spec.warmup_ratio)
    peak = peak_flops(world.device)
    timer = StepTimer(world.device)
    result = TrainResult(artifact, start_step, start_step, None)
    progress.start(spec.steps, "steps")
    progress.advance(start_step)
    model.train()
    for step in range(start_step, spec.steps):
        timer.start()
        lr = set_lr(opt, spec.learning_rate, lr_factor(step, spec.steps, warmup, spec.min_lr_ratio))
        # loss sum, labelled tokens, attended (query, key) pairs
        totals = torch.zeros(3, dtype=torch.float64, device=world.device)
        tokens = accum * world.dp_size * length
        read: list[str] = []
        for micro in range(accum):
            model.set_requires_gradient_sync(micro == accum - 1)  # type: ignore[operator]
            sequence = data.sequence((step * accum + micro) * world.dp_size + world.dp_rank)
            read.append(sequence.sample_id)
            loss_sum, labelled, pairs = _forward(
                model, sequence, world, spec.document_masking, length
            )
            # FSDP2 averages gradients over ranks: scale so the step's gradient is that of the
            # mean loss over every token of the step
            (loss_sum * (world.size / tokens)).backward()
            share = 1.0 / world.cp.size  # each rank of a CP group counts its share of the pairs
            totals += torch.tensor([loss_sum.item(), labelled, pairs * share], device=world.device)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        parallel.all_sum(totals)
        seconds = timer.seconds()
        flops = step_flops(config, tokens, int(totals[2].item()))
        row: dict[str, Any] = {
            "step": step + 1,
            "loss": totals[0].item() / totals[1].item(),
            "lr": lr,
            "grad_norm": float(
                grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
            ),
            "tokens": tokens,
            "seconds": round(seconds, 4),
            "tokens_per_s": tokens / seconds,
            "tokens_per_s_per_gpu": tokens / seconds / world.size,
            "tflops_per_gpu": flops / seconds / world.size / 1e12,
            "mfu": flops / seconds / world.size / peak if peak else None,
            "peak_memory_gib": peak_memory_gib(world.device),
            "sequences": read,
        }
        result.step = step + 1
        if (step + 1) % spec.checkpoint_every == 0 or step + 1 == spec.steps:
            result.checkpoint = checkpoints.save(step + 1, model, opt)
            row["checkpoint"] = result.checkpoint
        if log is not None:
            log.add(row)
            result.rows = log.rows
        progress.advance(1)
        if on_step is not None and world.is_main:
            on_step(row)
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"step {step + 1}: loss is {row['loss']}")
        if stop_after is not None and step + 1 >= stop_after:
            result.stopped = True
            return result
    if world.is_main and result.step == spec.steps:
        _commit(job, artifact, result, log)
    return result


def _forward(
    model: CausalLM, sequence: Sequence, world: parallel.World, masking: bool, length: int
) -> tuple[torch.Tensor, int, int]:
    """(this rank's summed loss, its labelled tokens, the sequence's attended pairs)."""
    ids = torch.from_numpy(sequence.tokens).to(world.device)
    inputs, labels = ids[:length], ids[1:]
    if labels.shape[0] < length:  # the sample's last window: its last token has no label
        labels = torch.cat([labels, labels.new_full((length - labels.shape[0],), -100)])
    positions = torch.arange(length, device=world.device)
    mask = None
    if masking:
        mask = DocumentMask(document_ids(sequence.spans, length).to(world.device))
    cp = world.cp
    loss_sum, labelled = model(
        cp.shard(inputs)[None],
        cp.shard(labels)[None],
        cp.shard(positions),
        AttentionBatch(mask, cp),
    )
    pairs = attended_pairs(sequence.spans if masking else None, length)
    return loss_sum, int(labelled.item()), pairs


def _commit(
    job: TrainingJob, artifact: Artifact, result: TrainResult, log: MetricsLog | None
) -> None:
    """The artifact's one part records the run; `_manifest.json` (written last) makes the last
    checkpoint the TrainingJob's output."""
    import json

    rows = log.rows if log is not None else []
    with artifact.staging(0, 1) as folder:
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "checkpoint.json").write_text(
            json.dumps({"step": result.step, "checkpoint": result.checkpoint})
        )
        counts = {"steps": result.step, "tokens": sum(int(r["tokens"]) for r in rows)}
        artifact.commit_part(0, 1, folder, counts=counts)
    artifact.commit(job.spec.model_dump(mode="json", by_alias=True), 1, job.inputs())
