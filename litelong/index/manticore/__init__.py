"""The Manticore Search backend of BM25Index: loading shards into real-time tables, and the
retriever that queries them. Importing it does not import the `manticoresearch` client; the
first connection does (the `litelong[manticore]` extra)."""

from .backend import (
    ManticoreRetriever,
    TablesOutOfSync,
    open_committed,
    read_location,
    write_location,
)
from .client import ManticoreConnection, ManticoreError, RetryPolicy
from .shards import SHARD_URL_ENV, URL_ENV, Shard, shard_layout, table_name
from .stage import load_part

__all__ = [
    "SHARD_URL_ENV",
    "URL_ENV",
    "ManticoreConnection",
    "ManticoreError",
    "ManticoreRetriever",
    "RetryPolicy",
    "Shard",
    "TablesOutOfSync",
    "load_part",
    "open_committed",
    "read_location",
    "shard_layout",
    "table_name",
    "write_location",
]
