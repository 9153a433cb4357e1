"""BM25 indexes: the Retriever protocol, the tantivy and Manticore backends, the BM25Index stage."""

from .chunks import chunk_id, parent_of, split_chunks
from .manticore import ManticoreError
from .retriever import Retriever, UnknownDocument
from .stage import BackendUnavailable, ChunksUnavailable, build_part, open_chunk_index, open_index
from .tantivy_backend import TantivyPartWriter, TantivyRetriever

__all__ = [
    "BackendUnavailable",
    "ChunksUnavailable",
    "ManticoreError",
    "Retriever",
    "TantivyPartWriter",
    "TantivyRetriever",
    "UnknownDocument",
    "build_part",
    "chunk_id",
    "open_chunk_index",
    "open_index",
    "parent_of",
    "split_chunks",
]
