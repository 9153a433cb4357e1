"""Training: document masking, context parallelism, weight loading, SynthesisRun data, and the
`litelong train` entrypoint under torchrun on two CPU processes, killed and resumed."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from litelong.api import parse  # noqa: E402
from litelong.api.v1alpha1.trainingjob import ModelSource  # noqa: E402
from litelong.dataset.sample import Sample, Span  # noqa: E402
from litelong.dataset.writers import open_writer  # noqa: E402
from litelong.stages import run_shard  # noqa: E402
from litelong.store import ArtifactStore  # noqa: E402
from litelong.train.attention import DocumentMask, attend, document_ids, flex_reference  # noqa: E402
from litelong.train.context_parallel import ContextParallel  # noqa: E402
from litelong.train.data import TrainingData, UnreadableSamples  # noqa: E402
from litelong.train.loading import PRESETS, load_model  # noqa: E402
from litelong.train.metrics import attended_pairs, step_flops  # noqa: E402
from litelong.train.model import AttentionBatch, CausalLM  # noqa: E402

from .conftest import Cli, bm25index, commit_topics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOPICS = [
    ("SCI004000", "Science", "Black holes", "Black holes astronomy"),
    ("HIS037000", "History", "The French Revolution", "French Revolution history"),
    ("MUS000000", "Music", "Baroque composers", "Baroque composers music"),
]


# -- document masking --------------------------------------------------------------------------


def _qkv(length: int, heads: int = 4, kv_heads: int = 2, dim: int = 16) -> list[Any]:
    return [
        torch.randn(1, length, h, dim, dtype=torch.float64) for h in (heads, kv_heads, kv_heads)
    ]


def test_document_masked_attention_equals_running_each_document_alone() -> None:
    spans = [(0, 37), (37, 40), (40, 101), (101, 128)]
    q, k, v = _qkv(128)
    mask = DocumentMask(document_ids(spans, 128))
    together = attend(q, k, v, mask)
    for start, end in spans:
        alone = attend(q[:, start:end], k[:, start:end], v[:, start:end], None)
        torch.testing.assert_close(together[:, start:end], alone)


def test_flex_attention_mask_matches_the_dense_mask() -> None:
    """The block mask the GPU path gives FlexAttention, checked on the CPU (forward only)."""
    spans = [(0, 200), (200, 230), (230, 256)]
    q, k, v = (t.float() for t in _qkv(256))
    mask = DocumentMask(document_ids(spans, 256))
    torch.testing.assert_close(
        flex_reference(q, k, v, mask.doc_ids), attend(q, k, v, mask), atol=1e-5, rtol=1e-4
    )


def test_masking_changes_attention_across_documents() -> None:
    q, k, v = _qkv(64)
    masked = attend(q, k, v, DocumentMask(document_ids([(0, 30), (30, 64)], 64)))
    causal = attend(q, k, v, None)
    torch.testing.assert_close(masked[:, :30], causal[:, :30])
    assert not torch.allclose(masked[:, 30:], causal[:, 30:])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention kernels need CUDA")
def test_compiled_flex_attention_on_gpu_matches_each_document_alone() -> None:
    spans = [(0, 1000), (1000, 1500), (1500, 2048)]
    q, k, v = (t.cuda().bfloat16() for t in _qkv(2048, 8, 2, 64))
    together = attend(q, k, v, DocumentMask(document_ids(spans, 2048).cuda()))
    for start, end in spans:
        alone = attend(q[:, start:end], k[:, start:end], v[:, start:end], None)
        torch.testing.assert_close(together[:, start:end], alone, atol=2e-2, rtol=2e-2)


def test_attention_flops_count_only_pairs_the_mask_allows() -> None:
    assert attended_pairs(None, 5) == 15
    assert attended_pairs([(0, 2), (2, 5)], 5) == 3 + 6
    config = PRESETS["litelong/tiny"]
    assert step_flops(config, 5, 9) < step_flops(config, 5, 15)


# -- context parallelism -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cp_worker(rank: int, size: int, port: int, out: str, device_type: str) -> None:
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size
    )
    device = torch.device(device_type, rank if device_type == "cuda" else 0)
    if device_type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    # head_dim 16: the smallest FlexAttention's GPU kernels take
    model = CausalLM(dataclasses.replace(PRESETS["litelong/tiny"], head_dim=16))
    model.init_weights(seed=1)
    # float64 on the CPU: exact to rounding; float32 through the GPU's FlexAttention kernels
    model = model.to(device, torch.float64 if device_type == "cpu" else torch.float32)
    length = 256
    ids = torch.randint(0, 1000, (length + 1,)).to(device)
    mask = DocumentMask(document_ids([(0, 70), (70, 190), (190, 257)], length).to(device))
    positions = torch.arange(length, device=device)
    whole, _ = model(
        ids[None, :-1], ids[None, 1:], positions, AttentionBatch(mask, ContextParallel())
    )
    whole.backward()
    reference = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    cp = ContextParallel(dist.group.WORLD, rank, size)
    part, _ = model(
        cp.shard(ids[:-1])[None],
        cp.shard(ids[1:])[None],
        cp.shard(positions),
        AttentionBatch(mask, cp),
    )
    part.backward()
    loss = part.detach().clone()
    dist.all_reduce(loss)
    errors = {"loss": abs(loss.item() - whole.item()) / abs(whole.item())}
    for name, param in model.named_parameters():
        grad = param.grad.clone()
        dist.all_reduce(grad)
        errors[name] = float((grad - reference[name]).norm() / reference[name].norm())
    if rank == 0:
        Path(out).write_text(json.dumps(errors))
    dist.destroy_process_group()


@pytest.mark.parametrize(
    ("device_type", "tolerance"),
    [
        ("cpu", 1e-12),
        pytest.param(
            "cuda",
            1e-4,
            marks=pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs"),
        ),
    ],
)
def test_context_parallel_forward_and_backward_equal_one_process(
    device_type: str, tolerance: float, tmp_path: Path
) -> None:
    """Two processes each holding half the sequence give the single-process loss and
    gradients (document-masked, grouped-query attention): relative errors."""
    out = tmp_path / "errors.json"
    mp.spawn(_cp_worker, args=(2, _free_port(), str(out), device_type), nprocs=2, join=True)
    errors = json.loads(out.read_text())
    assert max(errors.values()) < tolerance, errors


# -- loading weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_hugging_face_weights_give_the_hugging_face_model_s_loss(
    family: str, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    config_class = LlamaConfig if family == "llama" else Qwen2Config
    config = config_class(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=family == "qwen2",
    )
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    hf.save_pretrained(tmp_path)
    ours = load_model(ModelSource(name=str(tmp_path)), 128, None, 0, False).eval()
    ids = torch.randint(0, 256, (1, 128))
    labels = torch.cat([ids[:, 1:], torch.tensor([[-100]])], dim=1)
    with torch.no_grad():
        expected = hf(ids, labels=ids).loss  # HF shifts the labels itself
        total, count = ours(ids, labels, torch.arange(128), AttentionBatch(None, ContextParallel()))
    assert ours.config.attention_bias == (family == "qwen2")
    torch.testing.assert_close(total / count, expected, atol=1e-5, rtol=1e-5)


# -- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples_store(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    """A committed SynthesisRun `samples` (MDS, 1024 tokens each) made by the real stage."""
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('train')}")
    run_shard(bm25index("wiki", corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst"}]), store, 0, 1)
    commit_topics(store, TOPICS)
    synthesis = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "SynthesisRun",
            "metadata": {"name": "samples"},
            "spec": {
                "topicDebateRef": "topics",
                "indexRef": "wiki",
                "targetTokens": 1024,
                "samplesPerTopic": 2,
                "output": {"format": "mds"},
            },
        }
    )
    assert run_shard(synthesis, store, 0, 1).manifest is not None
    return store


def _committed(store: ArtifactStore, name: str, format: str, samples: list[Sample]) -> Any:
    artifact = store.artifact("SynthesisRun", name, "0" * 12)
    with artifact.staging(0, 1) as folder:
        with open_writer(format, folder, 1 << 20) as writer:  # type: ignore[arg-type]
            for sample in samples:
                writer.write(sample)
        artifact.commit_part(0, 1, folder)
    artifact.commit({}, 1)
    return artifact


def _sample(number: int, length: int, cuts: list[int]) -> Sample:
    ids = np.arange(number * 1000, number * 1000 + length, dtype=np.uint32)
    edges = [0, *cuts, length]
    spans = [Span(f"d{number}-{i}", a, b) for i, (a, b) in enumerate(itertools.pairwise(edges))]
    return Sample(f"s/{number}", ids, "x", spans)


@pytest.mark.parametrize("format", ["mds", "parquet"])
def test_samples_become_windows_with_spans_relative_to_the_window(
    format: str, store: ArtifactStore
) -> None:
    samples = [_sample(0, 33, [5, 20]), _sample(1, 17, [16])]
    data = TrainingData(_committed(store, format, format, samples), 16, seed=0)
    assert len(data) == 3  # 33 // 16 windows of sample 0, 17 // 16 of sample 1
    seen = {data.sequence(i).sample_id: data.sequence(i) for i in range(3)}
    second = seen["s/0@16"]
    assert second.tokens.tolist() == list(range(16, 33))
    assert second.spans == [(0, 4), (4, 17)]  # documents cut at the window's edges
    assert seen["s/0@0"].spans == [(0, 5), (5, 17)]
    assert seen["s/1@0"].spans == [(0, 16), (16, 17)]
    assert sorted(data.sequence(i).sample_id for i in range(3, 6)) == sorted(seen)  # epoch 2


def test_jsonl_output_is_refused_with_the_reason(store: ArtifactStore) -> None:
    with pytest.raises(UnreadableSamples, match="mds or parquet"):
        TrainingData(_committed(store, "j", "jsonl", [_sample(0, 33, [])]), 16, seed=0)


# -- the entrypoint ----------------------------------------------------------------------------


def test_train_without_a_committed_synthesis_run_exits_2(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "apiVersion: litelong.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: t}\n"
        "spec: {synthesisRunRef: missing, model: {name: litelong/tiny}}\n"
    )
    result = cli("train", "--spec", str(spec), "--store", f"file://{tmp_path}/store")
    assert result.code == 2
    assert "refers to SynthesisRun/missing, which is neither in the file nor committed" in (
        result.stderr.replace("\n", " ")
    )


def test_litelong_run_trains_a_trainingjob_here_on_its_exact_samples(
    cli: Cli, store: ArtifactStore, tmp_path: Path
) -> None:
    samples = _committed(store, "samples", "mds", [_sample(n, 300, [100, 200]) for n in range(4)])
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "apiVersion: litelong.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: tiny}\n"
        "spec: {synthesisRunRef: samples, model: {name: litelong/tiny}, contextLength: 128,\n"
        "  steps: 2, batchTokens: 128, checkpointEvery: 2, learningRate: 1.0e-3}\n"
    )
    result = cli("run", str(spec), "--store", store.uri)
    assert result.code == 0, result.stderr
    assert "step 2: loss" in result.stdout and "TrainingJob/tiny: committed at step 2" in (
        result.stdout
    )
    job = store.latest_committed("TrainingJob", "tiny")
    assert job.manifest().inputs == {"SynthesisRun/samples": samples.identity}
    again = cli("run", str(spec), "--store", store.uri)
    assert again.code == 0 and "TrainingJob/tiny: already committed at " in again.stdout


def _pythonpath() -> str:
    """This checkout first, so the processes run the code under test."""
    return os.pathsep.join([str(ROOT), str(ROOT / "operator"), os.environ.get("PYTHONPATH", "")])


def _operator_command(document: dict[str, Any], folder: Path) -> list[str]:
    """The command and mounted spec of the operator's PyTorchJob for `document`: the command
    as rendered, the spec file moved from /etc/litelong into `folder`."""
    from litelong_operator.config import OperatorConfig
    from litelong_operator.render import owner_of, render

    document = {
        **document,
        "metadata": {**document["metadata"], "namespace": "default", "uid": "u"},
    }
    children = render(owner_of(document), OperatorConfig())
    (configmap,) = [c for c in children if c["kind"] == "ConfigMap"]
    (job,) = [c for c in children if c["kind"] == "PyTorchJob"]
    template = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    command: list[str] = template["spec"]["containers"][0]["command"]
    spec_file = folder / "resource.yaml"
    spec_file.write_text(configmap["data"]["resource.yaml"])
    return [str(spec_file) if arg.endswith("/resource.yaml") else arg for arg in command]


def _torchrun(command: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    """`torchrun ...` as a PyTorchJob's pod runs it: node layout from the PET_* variables."""
    assert command[0] == "torchrun"
    env = {
        **os.environ,
        "PYTHONPATH": _pythonpath(),
        "OMP_NUM_THREADS": "1",
        "PET_NNODES": "1",
        "PET_NPROC_PER_NODE": "2",
        "PET_MASTER_PORT": str(_free_port()),
    }
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *command[1:], *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_operator_rendered_command_on_two_processes_resumes_after_a_kill_in_data_order(
    samples_store: ArtifactStore, tmp_path: Path
) -> None:
    document = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "tiny"},
        "spec": {
            "synthesisRunRef": "samples",
            "model": {"name": "litelong/tiny"},
            "contextLength": 256,
            "steps": 6,
            "learningRate": 1.0e-3,
            "batchTokens": 512,
            "checkpointEvery": 3,
            "parallelism": {"nodes": 1, "gpusPerNode": 2, "contextParallel": 2},
            "output": {"store": samples_store.uri},
        },
    }
    command = _operator_command(document, tmp_path)
    killed = _torchrun(command, "--stop-after", "5")  # checkpoint at 3; steps 4 and 5 are lost
    assert killed.returncode == 0, killed.stderr[-3000:]
    job_dir = next((Path(samples_store.root) / "default" / "trainingjob" / "tiny").iterdir())
    before = [json.loads(line) for line in (job_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in before] == [1, 2, 3, 4, 5]
    assert not (job_dir / "_manifest.json").exists()

    resumed = _torchrun(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from 3" in resumed.stdout
    after = [json.loads(line) for line in (job_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in after] == [1, 2, 3, 4, 5, 6]
    for redone in (3, 4):  # steps 4 and 5 again: same sequences, same weights and Adam state
        assert after[redone]["sequences"] == before[redone]["sequences"]
        assert after[redone]["loss"] == pytest.approx(before[redone]["loss"], rel=1e-6)
    assert len({tuple(row["sequences"]) for row in after}) == 6  # each step reads new windows
    manifest = json.loads((job_dir / "_manifest.json").read_text())
    assert manifest["counts"]["steps"] == 6
    assert (job_dir / "checkpoints" / "step-00000006" / ".metadata").exists()

    again = subprocess.run(
        [sys.executable, "-m", "litelong", "train", "--spec", command[-1]],
        env={**os.environ, "PYTHONPATH": _pythonpath()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "already committed" in again.stdout
