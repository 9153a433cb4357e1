"""BM25 indexes: the Retriever protocol, the tantivy and Manticore backends, the BM25Index stage."""

from .manticore_client import ManticoreError
from .retriever import Retriever, UnknownDocument
from .stage import BackendUnavailable, build_part, open_index
from .tantivy_backend import TantivyPartWriter, TantivyRetriever

__all__ = [
    "BackendUnavailable",
    "ManticoreError",
    "Retriever",
    "TantivyPartWriter",
    "TantivyRetriever",
    "UnknownDocument",
    "build_part",
    "open_index",
]
