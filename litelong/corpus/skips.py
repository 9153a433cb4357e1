"""Counted skips: every record not indexed is counted by reason, with its first positions."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

EXAMPLES_PER_REASON = 5

#: Reasons a corpus record is skipped, with what they mean for the user.
REASONS = {
    "invalid_json": "the line is not valid JSON",
    "invalid_utf8": "the line is not valid UTF-8",
    "not_an_object": "the JSON value is not an object",
    "missing_text": "the text field is missing or null",
    "text_not_string": "the text field is not a string",
    "too_short": "shorter than minChars after normalisation (empty included)",
    "too_long": "longer than maxChars",
    "duplicate": "the same normalised text was already indexed",
    "duplicate_id": "the same id was already indexed with other text",
}


@dataclass
class SkipCounter:
    """Skips of one shard's reader, mergeable across files and shards.

    Every shard reads every line, so a line that never becomes a document (invalid JSON...)
    is counted only by the shard its position hashes to; `owned=True` marks a skip already
    decided by this shard (its document's content hashed here).
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
