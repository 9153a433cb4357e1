"""BM25Index: documents and bytes from the corpus, build time and size on disk from the rates.

    text bytes   = records x kept share x bytes per kept document   (corpus_sample.py)
    build time   = text bytes / text bytes per second + documents x seconds per document
                   + seconds per build
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
from .defaults import INDEX
from .estimate import Estimate


def estimate_index(resource: BM25Index, calibration: Calibration) -> Estimate:
    spec = resource.spec
    sample = sample_corpus(spec)
    key = "chunks" if spec.chunks.enabled else "plain"
    rates: IndexRates = calibration.index.get(key) or INDEX[key]
    source = calibration.label if key in calibration.index else "bench/README.md default"
    shards = spec.parallelism
    work = (
        sample.text_bytes / rates.text_bytes_per_s + sample.documents * rates.seconds_per_document
    )
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
        f"index rate {rates.text_bytes_per_s / 1e6:.2f} MB/s of text + "
        f"{rates.seconds_per_document * 1e6:.0f} µs per document + "
        f"{rates.fixed_seconds:.1f} s per build; {rates.disk_bytes_per_text_byte:.2f} bytes on "
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
    return Estimate(
        kind=resource.kind,
        name=resource.name,
        wall_seconds=work / shards + rates.fixed_seconds,
        bytes=round(size),
        cpu_hours=(work + rates.fixed_seconds * shards) * rates.cpu_per_wall / 3600,
        figures=figures,
        basis=basis,
        warnings=warnings,
    )


def corpus_of(resource: BM25Index) -> CorpusSample:
    return sample_corpus(resource.spec)
