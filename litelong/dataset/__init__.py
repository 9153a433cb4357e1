"""The sample format: the contract between synthesis (which writes it), training and
evaluation (which read it).

A sample is exactly `targetTokens` token ids with the span, role and source of every document
in it (`sample`); a SynthesisRun's artifact holds them as MDS, Parquet or JSONL shards plus
`metadata.parquet` (`writers`, `writer_base`, `mds`). Reading needs numpy and pyarrow only:
no LLM client, no BM25 engine, no torch.
"""

from .mds import MDS_COLUMNS, MDS_INDEX, ROLES, mds_decode_sample, read_mds, span_roles
from .sample import Sample, Span, token_hash
from .writer_base import METADATA_FILE, SampleWriter, WriterStats
from .writers import FORMATS, Format, open_writer

__all__ = [
    "FORMATS",
    "MDS_COLUMNS",
    "MDS_INDEX",
    "METADATA_FILE",
    "ROLES",
    "Format",
    "Sample",
    "SampleWriter",
    "Span",
    "WriterStats",
    "mds_decode_sample",
    "open_writer",
    "read_mds",
    "span_roles",
    "token_hash",
]
