"""Progress of long work, reported by stages and shown by whoever runs them."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int | None, unit: str) -> None:
        """The work ahead: `total` units (None: unknown) named `unit` (docs, subjects...)."""

    def advance(self, items: int, nbytes: int = 0) -> None:
        """`items` more units done, `nbytes` more input bytes read."""

    def log(self, message: str) -> None:
        """A line worth keeping on screen (one per finished subject, say)."""


class NoProgress:
    def start(self, total: int | None, unit: str) -> None:
        pass

    def advance(self, items: int, nbytes: int = 0) -> None:
        pass

    def log(self, message: str) -> None:
        pass
