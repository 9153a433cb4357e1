"""A meta-chunk's token ids cut out of its documents' ids, so a meta-document is tokenized once
(when planning measures it), not again as meta-chunks when filling.

Exact only where tokenizing the meta-chunk alone gives the same ids as the slice, which holds
for a byte-level BPE whose pre-tokenizer splits with GPT-2's pattern (GPT-2, SmolLM2) and only
at a boundary of the kind checked here. Chunks are whole `\\n`-separated lines; a piece of a
document that starts and ends with a character that is not whitespace, next to a `\\n` or the
text's end, is a pre-token boundary on both sides (none of the pattern's alternatives crosses
a `\\n` next to a non-space, and its one look-ahead, `\\s+(?!\\S)`, never reaches the piece's
end), so its ids are the document's ids between the tokens that end there; pieces of several
documents are joined by the ids of `\\n`. Anything else (another tokenizer, a normaliser, an
added token, a boundary next to whitespace) is left to the tokenizer: `None`.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from ..assembly.assemble import Tokenized

# GPT-2's split pattern, as GPT-2's ByteLevel (use_regex) and SmolLM2's Split use it.
_GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def _safe_pre_tokenizer(config: dict | None) -> bool:
    """GPT-2's pattern then byte-level bytes, no prefix space; digits may be split first."""
    if config is None:
        return False
    kind = config.get("type")
    if kind == "ByteLevel":
        return config.get("use_regex", True) and not config.get("add_prefix_space", False)
    if kind != "Sequence":
        return False
    steps = list(config.get("pretokenizers", []))
    if steps and steps[0].get("type") == "Digits":
        steps = steps[1:]
    if len(steps) != 2:
        return False
    split, byte_level = steps
    return (
        split.get("type") == "Split"
        and split.get("pattern") == {"Regex": _GPT2_PATTERN}
        and split.get("behavior") == "Isolated"
        and not split.get("invert", False)
        and byte_level.get("type") == "ByteLevel"
        and not byte_level.get("use_regex", True)
        and not byte_level.get("add_prefix_space", False)
    )


@dataclass
class _Lines:
    """A document's line starts, in characters and in UTF-8 bytes, and where its tokens end
    in bytes (`ends[i]`: after token i - 1); None where its ids do not spell its text."""

    chars: list[int]
    bytes: np.ndarray
    ends: np.ndarray | None

    def byte(self, text: str, char: int) -> int:
        """The UTF-8 offset of character `char` of `text`."""
        line = bisect_right(self.chars, char) - 1
        base = self.chars[line]
        if int(self.bytes[line]) == base and int(self.bytes[-1]) == self.chars[-1]:
            return char  # ASCII
        return int(self.bytes[line]) + len(text[base:char].encode("utf-8", "surrogatepass"))


class ChunkSlicer:
    """Meta-chunks' ids from their documents' ids, for a tokenizer where that is exact
    (`of`)."""

    def __init__(self, tokenizer: Tokenizer, token_bytes: np.ndarray) -> None:
        self._tokenizer = tokenizer
        self._token_bytes = token_bytes  # UTF-8 bytes each token id spells; -1: unknown
        self._newline = np.asarray(tokenizer.encode("\n", add_special_tokens=False).ids, np.uint32)

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> ChunkSlicer | None:
        """A slicer, or None where the tokenizer is not one slicing is exact for."""
        config = json.loads(tokenizer.to_str())
        model = config.get("model") or {}
        if (
            config.get("normalizer") is not None
            or model.get("type") != "BPE"
            or model.get("dropout")
        ):
            return None
        if not _safe_pre_tokenizer(config.get("pre_tokenizer")):
            return None
        added = {token["id"] for token in config.get("added_tokens") or []}
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        token_bytes = np.full(max(vocab.values(), default=0) + 1, -1, np.int64)
        for token, number in vocab.items():
            if number not in added:  # a byte-level token is one character per byte
                token_bytes[number] = len(token)
        return cls(tokenizer, token_bytes)

    def token_ids(
        self, documents: Sequence[Tokenized], chunks: Sequence[str]
    ) -> list[np.ndarray | None]:
        """Each chunk's ids (`slices`, their heads and tails tokenized in one batch); None
        for a chunk that must be tokenized whole."""
        edges = self.slices(documents, chunks)
        ends = [text for edge in edges if edge is not None for text in (edge.head, edge.tail)]
        wanted = [text for text in ends if text]
        encoded = (
            self._tokenizer.encode_batch_fast(wanted, add_special_tokens=False) if wanted else []
        )
        made = iter(encoding.ids for encoding in encoded)
        found: list[np.ndarray | None] = []
        for edge in edges:
            if edge is None:
                found.append(None)
                continue
            head = next(made) if edge.head else []
            tail = next(made) if edge.tail else []
            found.append(edge.ids(head, tail))
        return found

    def _lines(self, document: Tokenized) -> _Lines:
        text = document.text
        lines = text.split("\n")
        chars = np.cumsum([0] + [len(line) + 1 for line in lines]).tolist()
        if text.isascii():
            sizes = np.asarray(chars, np.int64)
        else:
            lengths = [len(line.encode("utf-8", "surrogatepass")) + 1 for line in lines]
            sizes = np.cumsum([0, *lengths])
        ids = document.ids
        ends: np.ndarray | None = None
        if len(ids) and int(ids.max()) < len(self._token_bytes):
            spelled = self._token_bytes[ids]
            if not (spelled < 0).any():
                ends = np.concatenate([[0], np.cumsum(spelled)])
                if ends[-1] != sizes[-1] - 1:  # not this text's ids (truncated, or another)
                    ends = None
        return _Lines(chars, sizes, ends)

    def slices(self, documents: Sequence[Tokenized], chunks: Sequence[str]) -> list[Edges | None]:
        """How to make each of `chunks` (the leading chunks of `split_chunks` of the documents'
        texts joined by `\\n`) from its documents' ids (`Edges`); None where slicing might
        differ from tokenizing the chunk."""
        found: list[Edges | None] = []
        lines: dict[int, _Lines] = {}
        starts = np.cumsum([0] + [len(document.text) + 1 for document in documents]).tolist()
        offset = number = 0  # the chunk's first character in the joined text; its document
        for chunk in chunks:
            while starts[number + 1] <= offset:
                number += 1
            found.append(self._edges(documents, starts, lines, number, offset, chunk))
            offset += len(chunk) + 1
        return found

    def _edges(
        self,
        documents: Sequence[Tokenized],
        starts: list[int],
        lines: dict[int, _Lines],
        number: int,
        offset: int,
        chunk: str,
    ) -> Edges | None:
        head, tail = _head_end(chunk), _tail_start(chunk)
        if head is None or tail is None or head >= tail:
            return None
        parts: list[np.ndarray] = []
        low, high = offset + head, offset + tail  # the middle, in the joined text
        for each in range(number, len(documents)):
            begin, end = starts[each], starts[each + 1] - 1  # the text; `end`: its join
            if begin >= high:
                break
            document = documents[each]
            text = document.text
            first, last = max(low, begin), min(high, end)
            # a piece next to a join of two documents must end (start) a text without
            # whitespace there, for the join's `\\n` to be a pre-token of its own
            if (first == begin and first > low and text[:1].isspace()) or (
                last == end and last < high and text[-1:].isspace()
            ):
                return None
            if first < last:
                if each not in lines:
                    lines[each] = self._lines(document)
                piece = _slice(document, lines[each], first - begin, last - begin)
                if piece is None:
                    return None
                parts.append(piece)
            if low <= end < high:
                parts.append(self._newline)
        if not parts:
            return None
        return Edges(chunk[:head], np.concatenate(parts).astype(np.uint32), chunk[tail:])


@dataclass(frozen=True)
class Edges:
    """A chunk's ids: `head` and `tail` tokenized alone, the middle's ids cut from its
    documents'; `ids(head_ids, tail_ids)` joins them."""

    head: str
    middle: np.ndarray
    tail: str

    def ids(self, head: Sequence[int], tail: Sequence[int]) -> np.ndarray:
        if not len(head) and not len(tail):
            return self.middle
        return np.concatenate(
            [np.asarray(head, np.uint32), self.middle, np.asarray(tail, np.uint32)]
        )


def _head_end(chunk: str) -> int | None:
    """Where the chunk's head ends: 0 where it starts with a non-space; else at its first
    `\\n` after a non-space (a pre-token boundary whatever comes before or after)."""
    if chunk[:1] and not chunk[0].isspace():
        return 0
    at = chunk.find("\n", 1)
    while at != -1:
        if not chunk[at - 1].isspace():
            return at
        at = chunk.find("\n", at + 1)
    return None


def _tail_start(chunk: str) -> int | None:
    """Where the chunk's tail starts: its end where that is a non-space; else after its last
    `\\n` before a non-space."""
    if chunk[-1:] and not chunk[-1].isspace():
        return len(chunk)
    at = chunk.rfind("\n", 0, len(chunk) - 1)
    while at != -1:
        if not chunk[at + 1].isspace():
            return at + 1
        at = chunk.rfind("\n", 0, at)
    return None


def _slice(document: Tokenized, lines: _Lines, start: int, stop: int) -> np.ndarray | None:
    """The document's ids spelling text[start:stop], where tokens end at both."""
    if lines.ends is None:
        return None
    low, high = lines.byte(document.text, start), lines.byte(document.text, stop)
    begin, end = np.searchsorted(lines.ends, [low, high])
    if begin >= len(lines.ends) or end >= len(lines.ends):
        return None
    if lines.ends[begin] != low or lines.ends[end] != high:
        return None
    return document.ids[begin:end]
