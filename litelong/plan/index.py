"""BM25Index: documents and bytes from the corpus, build time and size on disk from the rates.

    text bytes   = records x kept share x bytes per kept document   (corpus_sample.py)
    CPU seconds  = text bytes / text bytes per CPU second + documents x CPU s per document
                   + CPU s per build
    wall time    = CPU seconds / cores (CPU seconds per wall second the probes measured)
    size on disk = text bytes x bytes per text byte + documents x bytes per document

The calibrated rate is the whole stage on this machine (read, normalise, dedup, index, commit),
measured with the chunk index when the spec builds one. With `parallelism` N, each shard
indexes 1/N of the documents (with `partition: content` every shard still reads every file;
with `partition: files` only its share) and runs on its own pod.
"""

from __future__ import annotations

from ..api.v1alpha1 import BM25Index
from .calibration import Calibration, IndexRates
from .corpus_sample import CorpusSample, sample_corpus
from .deadline import Scaling, per_shard_cores
from .defaults import INDEX
from .estimate import Estimate


def estimate_index(resource: BM25Index, calibration: Calibration) -> Estimate:
    spec = resource.spec
    sample = sample_corpus(spec)
    key = "chunks" if spec.chunks.enabled else "plain"
    rates: IndexRates = calibration.index.get(key) or INDEX[key]
    source = calibration.label if key in calibration.index else "bench/README.md default"
    shards = spec.parallelism
    cores = rates.cores
    work = rates.cpu_seconds(sample.text_bytes, sample.documents)  # CPU seconds, shards divide
    size = (
        sample.text_bytes * rates.disk_bytes_per_text_byte
        + sample.documents * rates.disk_bytes_per_document
    )
    counted = "counted" if sample.exact else "extrapolated from the first 8 MiB of each file"
    basis = [
        f"{sample.files} file(s), {sample.stored_bytes:,} bytes stored; records {counted}",
        f"{sample.kept_share:.1%} of {sample.sampled_records:,} sampled records kept "
        f"(minChars {spec.min_chars}, maxChars {spec.max_chars}, dedup {spec.dedup}), "
        f"{sample.text_bytes_per_document:,.0f} text bytes each",
        f"index {rates.text_bytes_per_cpu_s / 1e6:.2f} MB of text per CPU second + "
        f"{rates.cpu_seconds_per_document * 1e6:.0f} CPU µs per document + "
        f"{rates.fixed_cpu_seconds:.2f} CPU s per build, on {rates.cores:.2f} cores; "
        f"{rates.disk_bytes_per_text_byte:.2f} bytes on "
        f"disk per text byte + {rates.disk_bytes_per_document:.0f} per document "
        f"({'with' if key == 'chunks' else 'without'} chunk index; {source})",
    ]
    warnings = []
    if spec.backend.type == "manticore":
        basis.append(
            "manticore: no measured rate yet (bench/README.md has no Manticore figures); "
            "tantivy's rate and size stand in"
        )
        warnings.append("Manticore figures are tantivy's, not measured")
    if spec.partition == "files" and sample.files < shards:
        warnings.append(
            f"partition files: {sample.files} corpus file(s) for {shards} shards; "
            "the run will refuse it (lower parallelism or use partition content)"
        )
    figures = {
        "documents": round(sample.documents),
        "text_bytes": round(sample.text_bytes),
        "stored_bytes": sample.stored_bytes,
        "skip_share": round(1 - sample.kept_share, 4),
        "backend": spec.backend.type,
        "index_bytes": {"tantivy": round(size), "manticore": round(size)},
        "shards": shards,
    }
    if spec.chunks.enabled:
        figures["chunks"] = round(sample.text_bytes / spec.chunks.chunk_chars)
    per_shard = per_shard_cores(rates.cores)
    scaling = Scaling(
        unit="cores",
        work=work,
        fixed_seconds=rates.fixed_cpu_seconds / per_shard,
        per_shard=per_shard,
        max_shards=max(1, round(sample.documents)),
    )
    return Estimate(
        kind=resource.kind,
        name=resource.name,
        wall_seconds=(work / shards + rates.fixed_cpu_seconds) / cores,
        bytes=round(size),
        cpu_hours=(work + rates.fixed_cpu_seconds * shards) / 3600,
        figures=figures,
        basis=basis,
        warnings=warnings,
        scaling=scaling,
    )


def corpus_of(resource: BM25Index) -> CorpusSample:
    return sample_corpus(resource.spec)
