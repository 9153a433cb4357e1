"""A committed TrainingJob as a Hugging Face model folder: `config.json` (with the RoPE base
the job trained with), `model.safetensors`, `generation_config.json` and the tokenizer of the
samples it trained on, with bos/eos/pad set from the base model so `generate()` stops at the end
of a text. `AutoModelForCausalLM.from_pretrained(folder)` loads it; its logits are
the trainer's own forward's (tests/test_eval.py checks it).

The last checkpoint is read in one process with torch.distributed.checkpoint, whatever number
of ranks wrote it (DCP reshards on load).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..api.v1alpha1 import TrainingJob
from ..store import ArtifactStore, NotCommitted
from .loading import load_model
from .model import CausalLM, ModelConfig


class ExportError(ValueError):
    """The TrainingJob has no committed checkpoint, or its model cannot be written as HF."""


def resolved(job: TrainingJob, store: ArtifactStore) -> TrainingJob:
    """The job carrying its input's identity (as recorded, else the newest committed
    SynthesisRun of its namespace): what names its output."""
    from ..stages import resolve_inputs

    if job.inputs() is not None:
        return job
    found = resolve_inputs([job], lambda _: store)[0]
    assert isinstance(found, TrainingJob)
    return found


def checkpoint_path(job: TrainingJob, store: ArtifactStore) -> str:
    """The store path of the committed job's last checkpoint."""
    artifact = store.output_of(resolved(job, store))
    manifest = artifact.committed_manifest()
    if manifest is None:
        raise NotCommitted(f"TrainingJob/{job.name} has no committed output in {store.uri}")
    (record,) = artifact.committed_parts(1)
    found = json.loads(Path(artifact.local_part(record), "checkpoint.json").read_text())
    uri: str = found["checkpoint"]
    return uri.split("://", 1)[1] if "://" in uri else uri


def load_trained(job: TrainingJob, store: ArtifactStore) -> CausalLM:
    """The model the job's last checkpoint holds, in float32 on the CPU."""
    import torch.distributed.checkpoint as dcp

    spec = job.spec
    path = checkpoint_path(job, store)  # "not committed" before any base weights load
    model = load_model(spec.model, spec.context_length, spec.rope_theta, spec.seed, False)
    if store.is_local:
        reader: Any = dcp.FileSystemReader(path)
    else:
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

        reader = FsspecReader(store.uri_of(path))
    state = {"model": model.state_dict()}
    dcp.load(state, storage_reader=reader)  # in place; no process group needed
    model.load_state_dict(state["model"])
    return model


#: End-of-text and beginning-of-text tokens by the names tokenizers give them.
EOS_NAMES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>")
BOS_NAMES = ("<|begin_of_text|>", "<s>", "<bos>")


def special_tokens(model_name: str, tokenizer_file: Path | None) -> dict[str, str]:
    """The bos, eos and pad tokens of the exported folder: the base model's own (its config
    or GGUF metadata) where the tokenizer holds them, else the tokenizer's end-of-text token
    by its usual name; pad falls back to eos. Without them `generate()` never stops at the
    end of a text."""
    if tokenizer_file is None:
        return {}
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    ids = _base_token_ids(model_name)
    found: dict[str, str] = {}
    for role, names in (("bos", BOS_NAMES), ("eos", EOS_NAMES), ("pad", ())):
        number = ids.get(role)
        token = tokenizer.id_to_token(number) if number is not None else None
        if token is None:
            token = next((n for n in names if tokenizer.token_to_id(n) is not None), None)
        if token is not None:
            found[role] = token
    if "pad" not in found and "eos" in found:
        found["pad"] = found["eos"]
    return found


def _base_token_ids(model_name: str) -> dict[str, int | None]:
    from .loading import PRESETS, _location

    if model_name in PRESETS:  # fresh weights: no config of their own
        return {}
    try:
        from transformers import AutoConfig

        where, extra = _location(model_name)
        config = AutoConfig.from_pretrained(where, **extra)
    except Exception:  # the base is gone since training: fall back to the tokenizer's names
        return {}
    return {
        role: _first_id(getattr(config, f"{role}_token_id", None)) for role in ("bos", "eos", "pad")
    }


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def hf_config(config: ModelConfig, context_length: int) -> Any:
    """The transformers config of the same architecture: Llama, or Qwen2 when q/k/v have
    biases (Llama's `attention_bias` would put one on o_proj too)."""
    from transformers import LlamaConfig, Qwen2Config

    common: dict[str, Any] = {
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "rms_norm_eps": config.rms_norm_eps,
        "tie_word_embeddings": config.tie_embeddings,
        "max_position_embeddings": context_length,
        "rope_theta": config.rope_theta,
        "torch_dtype": "float32",
    }
    if config.attention_bias:
        return Qwen2Config(**common)
    return LlamaConfig(head_dim=config.head_dim, attention_bias=False, **common)


def save_hf(
    model: CausalLM,
    context_length: int,
    tokenizer_file: Path | None,
    out: Path,
    special: dict[str, str] | None = None,
) -> Path:
    """Write the folder next to `out`, then move it into place: a crash leaves no half folder
    where `out` should be. `special` (role -> token, see `special_tokens`) sets bos/eos/pad in
    the tokenizer, config.json and generation_config.json alike."""
    from transformers import AutoModelForCausalLM, GenerationConfig

    special = special or {}
    ids = _token_ids(tokenizer_file, special)
    config = hf_config(model.config, context_length)
    for role, number in ids.items():
        setattr(config, f"{role}_token_id", number)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private
        hf = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
        missing, unexpected = hf.load_state_dict(state, strict=False)
        missing = [m for m in missing if not (config.tie_word_embeddings and m == "lm_head.weight")]
        if missing or unexpected:
            raise ExportError(
                f"weights do not map: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        if config.tie_word_embeddings:
            hf.tie_weights()
        hf.save_pretrained(staging, safe_serialization=True)
        generation = {f"{role}_token_id": number for role, number in ids.items()}
        GenerationConfig(do_sample=False, max_new_tokens=64, **generation).save_pretrained(staging)
        if tokenizer_file is not None:
            _save_tokenizer(tokenizer_file, staging, context_length, special)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _token_ids(tokenizer_file: Path | None, special: dict[str, str]) -> dict[str, int]:
    if tokenizer_file is None or not special:
        return {}
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    ids = {role: tokenizer.token_to_id(token) for role, token in special.items()}
    return {role: int(number) for role, number in ids.items() if number is not None}


def _save_tokenizer(
    tokenizer_file: Path, folder: Path, context_length: int, special: dict[str, str]
) -> None:
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file), **{f"{role}_token": t for role, t in special.items()}
    )
    tokenizer.model_max_length = context_length
    tokenizer.save_pretrained(folder)


def export(job: TrainingJob, store: ArtifactStore, out: Path, tokenizer_file: Path | None) -> Path:
    """`litelong export`: the committed job's last checkpoint as an HF folder at `out`."""
    model = load_trained(job, store)
    special = special_tokens(job.spec.model.name, tokenizer_file)
    return save_hf(model, job.spec.context_length, tokenizer_file, out, special)


def push_to_hub(folder: Path, repo_id: str, private: bool = True) -> str:
    """Upload an exported folder; needs a token (`HF_TOKEN` or `huggingface-cli login`)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    return str(getattr(info, "commit_url", repo_id))
