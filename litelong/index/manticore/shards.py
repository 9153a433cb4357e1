"""Where documents live in a sharded Manticore index, and how per-shard hits are merged.

A document's shard is a stable hash of its id (the same on every machine and in every run,
unlike Python's `hash`), so a loader can send any document to its shard and `get` goes straight
to the one shard that holds it. Manticore's ids are 64-bit integers; ours are strings, so each
document gets a 63-bit hash of its id as its Manticore id and keeps its own id in `doc_id`.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

SHARD_URL_ENV = "LITELONG_MANTICORE_SHARD_URL"  # per pod, `{shard}` in it: set by the operator
URL_ENV = "LITELONG_MANTICORE_URL"
_TABLE_CHARS = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class Shard:
    """One table on one server."""

    url: str
    table: str


def _digest(doc_id: str) -> int:
    raw = hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little")


def numeric_id(doc_id: str) -> int:
    """A positive 63-bit Manticore id for a document id (collisions are checked on `get`)."""
    return (_digest(doc_id) >> 1) or 1


def shard_of(doc_id: str, shards: int) -> int:
    """The shard holding `doc_id`: uniform, stable across runs, machines and Python versions."""
    return _digest(doc_id) % shards


def table_name(name: str, spec_hash: str) -> str:
    """A valid Manticore table name, unique per resource and spec: a changed spec loads anew."""
    clean = _TABLE_CHARS.sub("_", name.lower()).strip("_")[:40] or "index"
    return f"litelong_{clean}_{spec_hash[:12]}"


def shard_layout(
    table: str, shards: int, url: str | None, env: Mapping[str, str] | None = None
) -> list[Shard]:
    """Shard i's server and table.

    In a cluster the operator gives loader pods a URL template with `{shard}` (one Manticore pod
    per shard, each holding a table named `table`); otherwise one server (the environment's
    LITELONG_MANTICORE_URL, else `url`) holds the N shards as tables `table_s0` ... `table_sN-1`.
    """
    env = os.environ if env is None else env
    template = env.get(SHARD_URL_ENV)
    if template:
        return [
            Shard(template.replace("{shard}", str(i)).rstrip("/"), table) for i in range(shards)
        ]
    server = env.get(URL_ENV) or url
    if not server:
        raise LookupError(
            f"no Manticore server: set {URL_ENV} (or backend.manticore.url with mode: external); "
            "mode: managed gets its servers from the operator"
        )
    if shards == 1:
        return [Shard(server.rstrip("/"), table)]
    return [Shard(server.rstrip("/"), f"{table}_s{i}") for i in range(shards)]


Hit = TypeVar("Hit", tuple[str, float], tuple[str, float, int | None])


def merge_hits(per_shard: Iterable[list[Hit]], k: int) -> list[Hit]:
    """The k best hits over all shards: by score, then by id, as the Retriever promises (a
    hit may carry more after its score: its length)."""
    hits = (hit for shard in per_shard for hit in shard)
    return heapq.nsmallest(k, hits, key=lambda hit: (-hit[1], hit[0]))
