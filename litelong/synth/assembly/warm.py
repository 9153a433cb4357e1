"""The first topics' documents tokenized while the claim table is made.

Making the claims (`candidates.claims`) searches every topic (or draws every `standard` draw)
and ranks each document's claimers before any sample can start: a few seconds at the run's
start in which the process keeps about one core busy. Meanwhile a thread tokenizes the
documents the first topics will most likely take, their best-ranked candidates, into the
shared cache (`TokenizedDocuments.warm`), so the build starts on documents already tokenized.

Only whole documents are warmed (a length at most a piece's, known from the index: a longer
or unknown one may be cut into pieces with other names), and no more per topic than its
samples need at `PIECE_CHARS_PER_TOKEN` characters a token (fewer tokens than they take), so
little is tokenized that the run does not use. The cache is transparent: the samples, and the
count of documents tokenized, are the same with warming or without it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

from .assemble import FIRST_FETCH_BATCH, TokenizedDocuments
from .candidates import Candidates, Topic
from .pieces import PIECE_CHARS_PER_TOKEN


class WarmStart:
    """`with WarmStart(...): claims(...)`: warms `topics` in order on a thread until the block
    ends (it stops after the batch in hand), or all are warmed."""

    def __init__(
        self,
        documents: TokenizedDocuments,
        candidates: Candidates,
        topics: Sequence[Topic],
        tokens_per_topic: int,
        piece_chars: int | None,
    ) -> None:
        self._documents = documents
        self._candidates = candidates
        self._topics = topics
        self._chars = tokens_per_topic * PIECE_CHARS_PER_TOKEN
        self._piece_chars = piece_chars
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="warm-start", daemon=True)

    def __enter__(self) -> WarmStart:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            for topic in self._topics:
                ids = self._leading(topic)
                for start in range(0, len(ids), FIRST_FETCH_BATCH):
                    if self._stop.is_set():
                        return
                    self._documents.warm(ids[start : start + FIRST_FETCH_BATCH])
        except Exception:  # ahead of time only: the build does what is missed
            pass

    def _leading(self, topic: Topic) -> list[str]:
        """The topic's best-ranked whole documents, up to what its samples need."""
        ids: list[str] = []
        left = self._chars
        for doc_id, _, _, chars in self._candidates.ranked(topic):
            if self._stop.is_set() or left <= 0:
                break
            if chars is None or (self._piece_chars is not None and chars > self._piece_chars):
                continue
            ids.append(doc_id)
            left -= chars
        return ids
