"""Chunks: NExtLong's unit of hard negatives, and the names they carry in a chunk index.

The same function cuts a meta-document in a SynthesisRun and the corpus in a BM25Index, so
meta-chunk `n` of document `d` is exactly the chunk `d#n` of the chunk index: a negative's
parent document is read from its id, and negatives never come from the meta-document itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..corpus import Document

CHUNKS_FOLDER = "chunks"
_SEPARATOR = "#"


def split_chunks(text: str, chunk_chars: int) -> list[str]:
    """Greedy line grouping (NExtLong): `\\n`-separated lines are added to a chunk while it
    stays within `chunk_chars`; a line longer than that is a chunk of its own. Joining the
    chunks with `\\n` gives the text back."""
    if chunk_chars <= 0:
        raise ValueError(f"chunk_chars must be positive, got {chunk_chars}")
    chunks: list[str] = []
    group: list[str] = []
    size = 0
    for line in text.split("\n"):
        added = len(line) + (1 if group else 0)
        if group and size + added > chunk_chars:
            chunks.append("\n".join(group))
            group, size = [], 0
            added = len(line)
        group.append(line)
        size += added
    if group:
        chunks.append("\n".join(group))
    return chunks


def chunk_id(doc_id: str, number: int) -> str:
    return f"{doc_id}{_SEPARATOR}{number}"


def parent_of(chunk: str) -> str:
    """The document a chunk id comes from (document ids may themselves contain `#`)."""
    return chunk.rpartition(_SEPARATOR)[0]


def document_chunks(
    documents: Iterable[Document], chunk_chars: int, min_chars: int
) -> Iterator[Document]:
    """Every chunk of `documents` with at least `min_chars` non-blank characters, named
    `<doc id>#<n>` by its position in the document (shorter ones keep their number)."""
    for document in documents:
        for number, text in enumerate(split_chunks(document.text, chunk_chars)):
            if len(text.strip()) >= max(1, min_chars):
                yield Document(chunk_id(document.id, number), text)
