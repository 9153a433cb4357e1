"""BM25 indexes: the Retriever protocol, the tantivy backend and the BM25Index stage."""

from .retriever import Retriever, UnknownDocument
from .stage import BackendUnavailable, build_part, open_index
from .tantivy_backend import TantivyPartWriter, TantivyRetriever

__all__ = [
    "BackendUnavailable",
    "Retriever",
    "TantivyPartWriter",
    "TantivyRetriever",
    "UnknownDocument",
    "build_part",
    "open_index",
]
