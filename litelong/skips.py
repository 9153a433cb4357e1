"""Counted skips: every input record a stage does not use is counted by reason, with the first
few positions, and the counts are merged across files and shards into the output's manifest."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

EXAMPLES_PER_REASON = 5


@dataclass
class SkipCounter:
    """Skips of one shard's reader, mergeable across files and shards.

    When every shard reads every line (a BM25Index partitioned by content), a line that never
    becomes a document (invalid JSON...) is counted only by the shard its position hashes to;
    `owned=True` marks a skip already decided by this shard (its document's content hashed
    here). A shard that alone reads its lines counts them all (`of=1`).
    """

    shard: int = 0
    of: int = 1
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, position: str, owned: bool = False) -> None:
        if not owned and self.of > 1 and zlib.crc32(position.encode()) % self.of != self.shard:
            return
        self.counts[reason] = self.counts.get(reason, 0) + 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < EXAMPLES_PER_REASON:
            kept.append(position)

    def merge(self, other: SkipCounter) -> None:
        for reason, count in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + count
            kept = self.examples.setdefault(reason, [])
            kept.extend(other.examples.get(reason, [])[: EXAMPLES_PER_REASON - len(kept)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())
