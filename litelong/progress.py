"""Progress of long work, reported by stages and shown by whoever runs them."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def advance(self, items: int, nbytes: int = 0) -> None:
        """`items` more units done, `nbytes` more input bytes read."""


class NoProgress:
    def advance(self, items: int, nbytes: int = 0) -> None:
        pass
