"""How much text a BM25Index will hold, from file sizes and a sample of records.

Each file's record count comes from its size and the records per stored byte of its first
`PREFIX_BYTES` (decompressed here; exact when the prefix is the whole file; Parquet: the row
count in the footer). What share of records survive normalisation, the length filters and
dedup, and their mean UTF-8 size, come from the first `SAMPLE_RECORDS` records read by the
stage's own reader (`clean_documents`), so the filters are the stage's, not a copy.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from itertools import islice

import pyarrow.parquet as pq
import zstandard

from ..api.v1alpha1 import BM25IndexSpec
from ..corpus import SkipCounter
from ..corpus.reader import ReadOptions, clean_documents, corpus_files
from ..corpus.sources import CorpusFile

PREFIX_BYTES = 8 << 20
SAMPLE_RECORDS = 20_000


@dataclass
class CorpusSample:
    files: int
    stored_bytes: int  # as stored (compressed)
    records: float  # estimated raw records in all files
    kept_share: float  # share of sampled records kept (filters and in-sample dedup)
    text_bytes_per_document: float  # UTF-8 bytes of a kept document's normalised text
    sampled_records: int
    exact: bool  # every file was read whole

    @property
    def documents(self) -> float:
        return self.records * self.kept_share

    @property
    def text_bytes(self) -> float:
        return self.documents * self.text_bytes_per_document


def sample_corpus(spec: BM25IndexSpec) -> CorpusSample:
    files = corpus_files(spec)
    options = ReadOptions.from_spec(spec)
    stored = records = 0.0
    kept = seen = text = 0
    exact = True
    digests: set[int] = set()
    per_file = max(1, SAMPLE_RECORDS // len(files))
    for file in files:
        fs, path = file.open_fs()
        size = int(fs.size(path))
        stored += size
        count, whole = _record_count(file, size)
        records += count
        exact = exact and whole
        skips = SkipCounter()
        taken = 0
        for key, _, document in islice(clean_documents(file, options, skips), per_file):
            taken += 1
            if options.dedup and key in digests:
                continue
            digests.add(key)
            kept += 1
            text += len(document.text.encode())
        seen += taken + sum(skips.counts.values())
    share = kept / seen if seen else 0.0
    return CorpusSample(
        files=len(files),
        stored_bytes=int(stored),
        records=records,
        kept_share=share,
        text_bytes_per_document=text / kept if kept else 0.0,
        sampled_records=seen,
        exact=exact and seen >= records,
    )


def _record_count(file: CorpusFile, size: int) -> tuple[float, bool]:
    """(records in the file, whether that is a count rather than an extrapolation)."""
    fs, path = file.open_fs()
    if file.format == "parquet":
        with fs.open(path, "rb") as handle:
            return float(pq.ParquetFile(handle).metadata.num_rows), True
    with fs.open(path, "rb") as handle:
        prefix = handle.read(PREFIX_BYTES)
    whole = len(prefix) >= size
    name = path.lower()
    if name.endswith((".zst", ".zstd")):
        data = _unzstd(prefix)
    elif name.endswith(".gz"):
        data = zlib.decompressobj(wbits=47).decompress(prefix)
    else:
        data = prefix
    lines = sum(1 for line in data.split(b"\n") if line.strip())
    if not whole and not data.endswith(b"\n"):
        lines -= 1  # the last line is cut by the prefix
    return (lines if whole else lines * size / max(1, len(prefix))), whole


def _unzstd(prefix: bytes) -> bytes:
    """Whatever the prefix decodes to, across frames; a cut frame gives what it has."""
    out, rest = [], prefix
    while rest:
        frame = zstandard.ZstdDecompressor().decompressobj()
        out.append(frame.decompress(rest))
        if not frame.eof:
            break
        rest = frame.unused_data
    return b"".join(out)
