"""Long documents as budget-sized pieces, and which pieces a topic may use.

A document longer than a sample's budget would otherwise give only its head; cut into pieces
(at a paragraph break, else a line break, else a sentence end, else a space), a book feeds many
samples. Pieces are cut by characters, never by tokenizing the whole text, so their bounds and
names (`<doc>#p<n>`) are known before anything is tokenized, the same on every shard, and a
50 MB document costs only the pieces a sample takes.

A document retrieved by several topics (or drawn by several `standard` draws) is shared out:
its claimers are ranked (where it ranks in each one's retrieval, then a seeded hash) and, when
it has at least as many pieces as claimers, claimer j takes pieces j, j+m, j+2m...; otherwise
claimer j takes piece j mod n, within `reuse.maxUsesPerDocument` uses of each piece. A short
document is one piece, so this is the same bound as before for ordinary documents.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...corpus.cutting import cut_bounds

# Characters per token a piece is sized by: below what English text gets from byte-level BPE
# (about 4), so a piece rarely holds more tokens than a sample's budget.
PIECE_CHARS_PER_TOKEN = 3
_PIECE_MARK = "#p"


@dataclass(frozen=True)
class Claim:
    """A topic's right to a retrieved document: its place among the claimers, and how many."""

    doc_id: str
    rank: int = 0
    claimers: int = 1
    score: float | None = None  # its retrieval score for this topic (BM25); None in standard
    chars: int | None = None  # its text's length in characters; None: unknown (read it)


def piece_bounds(text: str, max_chars: int) -> list[tuple[int, int]]:
    """The pieces of `text`: at most `max_chars` each, cut at its strongest breaks."""
    return cut_bounds(text, max_chars)


def piece_id(doc_id: str, number: int, pieces: int) -> str:
    """A whole document keeps its id; piece n of a longer one is `<doc>#p<n>`."""
    return doc_id if pieces == 1 else f"{doc_id}{_PIECE_MARK}{number}"


def pieces_for(claim: Claim, pieces: int, limit: int | None) -> list[int]:
    """The piece numbers a claimer may use (module docstring); [] when reuse forbids any."""
    if claim.claimers <= pieces:
        return list(range(claim.rank, pieces, claim.claimers))
    if limit is not None and claim.rank >= pieces * limit:
        return []
    return [claim.rank % pieces]


def unread_skip(claim: Claim, piece_chars: int | None, limit: int | None) -> bool:
    """Whether `pieces_for` will give this claim nothing, known from its length alone: a text
    of at most `piece_chars` characters (any text, when documents are not cut) is exactly one
    piece, so its text need not be read to find that out. False when the length is unknown,
    or when the text is longer (how many pieces it has depends on where its breaks are)."""
    if claim.chars is None or (piece_chars is not None and claim.chars > piece_chars):
        return False
    return not pieces_for(claim, 1, limit)


def document_of(unit_id: str) -> str:
    """The document a piece id names (`<doc>#p<n>` → `<doc>`); other ids unchanged."""
    head, mark, number = unit_id.rpartition(_PIECE_MARK)
    return head if mark and number.isdigit() else unit_id
