"""The report's figures, counted while streaming metadata.parquet by record batch.

Only a few scalars per sample, a use count per document used (`UseCounter`: 16 bytes a
document, in numpy, never a string), fixed histogram bins and the samples chosen for coherence
are kept: memory grows with the run's samples and distinct documents, never with the index.
"""

from __future__ import annotations

import copy
import heapq
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...index.chunks import parent_of
from ..assembly.pieces import document_of
from .coherence import rank

_LENGTH_BINS = 40


@dataclass
class Tally:
    """Everything the report keeps while streaming the metadata."""

    target: int
    seed: int
    max_samples: int
    tokens: array[int] = field(default_factory=lambda: array("q"))
    docs: array[int] = field(default_factory=lambda: array("q"))
    headings: Counter[str] = field(default_factory=Counter)
    roles: Counter[str] = field(default_factory=Counter)
    uses: UseCounter = field(default_factory=lambda: UseCounter())
    nextlong: NegativeTally = field(default_factory=lambda: NegativeTally())
    duplicates: DuplicateTally = field(default_factory=lambda: DuplicateTally())
    #: a max-heap on rank (negated) of the samples ranked first: (-rank, id, distinct doc ids)
    _chosen: list[tuple[int, str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        top = max(self.target, 2)
        self.edges = np.unique(np.geomspace(1, top + 1, _LENGTH_BINS + 1).round().astype(np.int64))
        self.full_lengths = np.zeros(len(self.edges) - 1, np.int64)
        self.truncated_lengths = np.zeros(len(self.edges) - 1, np.int64)
        self.span_tokens = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.tokens.extend(batch.column("num_tokens").to_numpy(zero_copy_only=False).tolist())
        doc_ids = batch.column("doc_ids")
        self.docs.extend(pc.list_value_length(doc_ids).to_numpy(zero_copy_only=False).tolist())
        self.headings.update(h or "(no heading)" for h in batch.column("heading").to_pylist())
        self.roles.update(str(role) for role in pc.list_flatten(batch.column("roles")).to_pylist())
        starts = pc.list_flatten(batch.column("starts")).to_numpy(zero_copy_only=False)
        ends = pc.list_flatten(batch.column("ends")).to_numpy(zero_copy_only=False)
        lengths = ends.astype(np.int64) - starts
        self.span_tokens += int(lengths.sum())
        lengths = np.clip(lengths, 1, self.edges[-1] - 1)
        truncated = pc.list_flatten(batch.column("truncated")).to_numpy(zero_copy_only=False)
        self.full_lengths += np.histogram(lengths[~truncated], self.edges)[0]
        self.truncated_lengths += np.histogram(lengths[truncated], self.edges)[0]
        self._count_uses(doc_ids)
        if "scores" in batch.schema.names:
            self.nextlong.add(batch)
        self.duplicates.add(batch)
        roles = batch.column("roles")
        for row, sample_id in enumerate(batch.column("id").to_pylist()):
            self._choose(str(sample_id), doc_ids, roles, row)

    def _count_uses(self, doc_ids: pa.Array) -> None:
        """Add one use per sample to each document it holds, counted in Arrow: only the batch's
        distinct ids become Python strings."""
        pairs = pa.table({"row": pc.list_parent_indices(doc_ids), "id": pc.list_flatten(doc_ids)})
        samples_per_id = pc.value_counts(pairs.group_by(["row", "id"]).aggregate([])["id"])
        ids = samples_per_id.field("values").to_pylist()
        counts = samples_per_id.field("counts").to_numpy(zero_copy_only=False)
        self.uses.add(ids, counts)

    def _choose(self, sample_id: str, doc_ids: pa.Array, roles: pa.Array, row: int) -> None:
        """Keep the `max_samples` samples ranked first: the same choice however many parts.
        Only a chosen sample's document ids become a Python list: the documents of the index
        its spans come from (a piece's document; in mode nextlong, the meta-document's)."""
        if self.max_samples <= 0:
            return
        key = (-rank(self.seed, sample_id), sample_id)
        if len(self._chosen) >= self.max_samples and key <= self._chosen[0][:2]:
            return
        ids = doc_ids[row].values
        names = [str(i) for i in ids.to_pylist()] if ids is not None else []
        row_roles = roles[row].values.to_pylist() if roles[row].values is not None else []
        if "meta" in row_roles:
            names = [
                part
                for name, role in zip(names, row_roles, strict=True)
                if role == "meta"
                for part in _meta_documents(name)
            ]
        distinct = list(dict.fromkeys(document_of(name) for name in names))
        if len(self._chosen) < self.max_samples:
            heapq.heappush(self._chosen, (*key, distinct))
        else:
            heapq.heapreplace(self._chosen, (*key, distinct))

    def for_plots(self) -> Tally:
        """A copy holding only what the plots read (lengths, counts, bins, headings): what is
        sent to the process that draws them, without the use counts and the chosen samples."""
        plots = copy.copy(self)
        plots.roles, plots._chosen = Counter(), []
        plots.uses, plots.nextlong, plots.duplicates = (
            UseCounter(),
            NegativeTally(),
            DuplicateTally(),
        )
        return plots

    def chosen_samples(self) -> list[tuple[str, list[str]]]:
        return [(sample_id, ids) for _, sample_id, ids in sorted(self._chosen, reverse=True)]

    def figures(self) -> dict[str, Any]:
        tokens = np.asarray(self.tokens, np.int64)
        spans = int(self.full_lengths.sum() + self.truncated_lengths.sum())
        uses = self.uses
        by_uses = uses.by_uses()
        return {
            "samples": len(tokens),
            "tokens": {
                "target": self.target,
                "total": int(tokens.sum()),
                **_spread(tokens),
                "off_target": int((tokens != self.target).sum()),
            },
            "documents_per_sample": _spread(np.asarray(self.docs, np.int64)),
            "document_tokens": {
                "spans": spans,
                "truncated": int(self.truncated_lengths.sum()),
                "mean": _ratio(self.span_tokens, spans),
                "bin_edges": self.edges.tolist(),
                "whole_by_bin": self.full_lengths.tolist(),
                "truncated_by_bin": self.truncated_lengths.tolist(),
            },
            "duplicates": self.duplicates.figures(),
            "headings": dict(self.headings.most_common()),
            "roles": dict(self.roles.most_common()),
            **({"nextlong": self.nextlong.figures()} if self.nextlong.meta_chunks else {}),
            "reuse": {
                "documents": len(uses),
                "max_uses": max(by_uses, default=0),
                "mean_uses": _ratio(uses.total(), len(uses)),
                "reused_share": _ratio(len(uses) - by_uses[1], len(uses)),
                "documents_by_uses": {str(n): by_uses[n] for n in sorted(by_uses)},
            },
        }


class UseCounter:
    """How many times each key was counted, keyed by a 64-bit hash of it (Python's `hash` of
    the string: one process counts it all), in sorted numpy arrays merged a batch at a time:
    16 bytes per distinct key, against about 120 for a Counter of strings. A hash collision
    (about one in 10^19 per pair) would merge two documents' counts."""

    _MERGE = 1 << 20  # pending entries merged into the sorted arrays at once

    def __init__(self) -> None:
        self._keys = np.zeros(0, np.int64)
        self._counts = np.zeros(0, np.int64)
        self._pending_keys: list[np.ndarray] = []
        self._pending_counts: list[np.ndarray] = []
        self._pending = 0

    def add(self, keys: list[Any], counts: np.ndarray | None = None) -> None:
        hashed = np.fromiter((hash(str(key)) for key in keys), np.int64, len(keys))
        self._pending_keys.append(hashed)
        weights = np.ones(len(keys), np.int64) if counts is None else counts.astype(np.int64)
        self._pending_counts.append(weights)
        self._pending += len(keys)
        if self._pending >= self._MERGE:
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self._keys, *self._pending_keys])
        counts = np.concatenate([self._counts, *self._pending_counts])
        self._keys, where = np.unique(keys, return_inverse=True)
        self._counts = np.bincount(where, weights=counts, minlength=len(self._keys)).astype(
            np.int64
        )
        self._pending_keys, self._pending_counts, self._pending = [], [], 0

    def __len__(self) -> int:
        self._merge()
        return len(self._keys)

    def total(self) -> int:
        self._merge()
        return int(self._counts.sum())

    def by_uses(self) -> Counter[int]:
        """Keys by how many times each was counted: {uses: keys}."""
        self._merge()
        values, keys = np.unique(self._counts, return_counts=True)
        return Counter({int(v): int(n) for v, n in zip(values, keys, strict=True)})


@dataclass
class NegativeTally:
    """Mode nextlong: negatives per meta-chunk, their similarity to it, and whether any negative
    was used twice or came from its sample's own meta-document (both must be 0)."""

    meta_chunks: int = 0
    per_meta: array[int] = field(default_factory=lambda: array("q"))
    scores: array[float] = field(default_factory=lambda: array("d"))
    uses: UseCounter = field(default_factory=lambda: UseCounter())
    from_own_document: int = 0

    def add(self, batch: pa.RecordBatch) -> None:
        roles_flat: Any = pc.list_flatten(batch.column("roles"))
        if not pc.any(pc.equal(roles_flat, pa.scalar("meta"))).as_py():
            return  # another mode: no Python objects for its ids
        rows: Any = zip(
            batch.column("doc_ids").to_pylist(),
            batch.column("roles").to_pylist(),
            batch.column("scores").to_pylist(),
            strict=True,
        )
        for ids, roles, scores in rows:
            if "meta" not in roles:
                continue
            negatives = []
            own = {
                parent
                for doc_id, role in zip(ids, roles, strict=True)
                if role == "meta"
                for parent in _meta_documents(doc_id)
            }
            for doc_id, role, score in zip(ids, roles, scores, strict=True):
                if role == "meta":
                    self.meta_chunks += 1
                    self.per_meta.append(0)
                elif role == "negative":
                    self.per_meta[-1] += 1
                    negatives.append(doc_id)
                    self.from_own_document += parent_of(doc_id) in own
                    if score is not None:
                        self.scores.append(score)
            self.uses.add(negatives)

    def figures(self) -> dict[str, Any]:
        return {
            "meta_chunks": self.meta_chunks,
            "negatives": self.uses.total(),
            "negatives_per_meta_chunk": _spread(np.asarray(self.per_meta, np.int64)),
            "similarity": _spread(np.asarray(self.scores, np.float64)),
            "negatives_reused": sum(n for uses, n in self.uses.by_uses().items() if uses > 1),
            "negatives_from_own_document": self.from_own_document,
        }


# Two samples are near-duplicates when they share at least this share of the smaller one's
# documents (or pieces).
NEAR_DUPLICATE_SHARE = 0.5


@dataclass
class DuplicateTally:
    """Exact duplicates (equal token hashes) and near-duplicates (a sample sharing at least
    half its documents with an earlier one), over the whole dataset, every part together."""

    hashes: Counter[str] = field(default_factory=Counter)
    near: int = 0
    _postings: dict[str, list[int]] = field(default_factory=dict)
    _sizes: list[int] = field(default_factory=list)

    def add(self, batch: pa.RecordBatch) -> None:
        if "token_hash" in batch.schema.names:
            self.hashes.update(str(h) for h in batch.column("token_hash").to_pylist() if h)
        for ids in batch.column("doc_ids").to_pylist():
            self._near(set(ids or ()))

    def _near(self, distinct: set[str]) -> None:
        shared: Counter[int] = Counter()
        for doc_id in distinct:
            shared.update(self._postings.get(doc_id, ()))
        number = len(self._sizes)
        if any(
            count >= NEAR_DUPLICATE_SHARE * min(len(distinct), self._sizes[other])
            for other, count in shared.items()
        ):
            self.near += 1
        for doc_id in distinct:
            self._postings.setdefault(doc_id, []).append(number)
        self._sizes.append(len(distinct))

    def figures(self) -> dict[str, Any]:
        return {
            "exact": sum(count - 1 for count in self.hashes.values()),
            "near": self.near,
            "near_share": NEAR_DUPLICATE_SHARE,
            "hashed": self.hashes.total(),
        }


def _meta_documents(meta_id: str) -> list[str]:
    """The documents a meta-chunk's name names (`nextlong._meta_id`)."""
    return [document_of(parent_of(part) or part) for part in meta_id.split("+")]


def _spread(values: np.ndarray) -> dict[str, int | float | None]:
    if not len(values):
        return {"min": None, "max": None, "mean": None, "median": None}
    if values.dtype.kind != "i":
        values = values.astype(np.float64).round(4)
    cast = int if values.dtype.kind == "i" else float
    return {
        "min": cast(values.min()),
        "max": cast(values.max()),
        "mean": round(float(values.mean()), 4),
        "median": float(np.median(values)),
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
