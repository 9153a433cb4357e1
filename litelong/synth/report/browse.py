"""The report's sample browser: the first line of the text behind a span's id.

A span names a document (`d`), a piece of a long one (`d#p3`, `pieces.py`), a chunk of the
chunk index (`d#3`, a NExtLong negative or meta-chunk) or the documents a meta-chunk holds lines
of (`a+b`). All are read back from the document index by re-cutting the document the way the
stage cut it, so the browser needs no copy of the samples' text.
"""

from __future__ import annotations

from ...api.v1alpha1 import SynthesisRunSpec
from ...index import Retriever, UnknownDocument, split_chunks
from ..assembly.pieces import PIECE_CHARS_PER_TOKEN, document_of, piece_bounds

LINE_CHARS = 120
_PIECE_MARK = "#p"


class FirstLines:
    """`lines(span_id, role)`: the first non-blank line of that text, at most LINE_CHARS."""

    def __init__(self, retriever: Retriever | None, spec: SynthesisRunSpec) -> None:
        self._retriever = retriever
        self._spec = spec
        piece_chars = spec.target_tokens * PIECE_CHARS_PER_TOKEN
        if spec.mode == "nextlong":
            piece_chars = int(spec.nextlong.meta_share * piece_chars) or 1
        self._piece_chars = piece_chars

    def __call__(self, span_id: str, role: str) -> str:
        if self._retriever is None:
            return ""
        name = span_id.split("+", 1)[0]
        try:
            text = self._text(name, role)
        except (UnknownDocument, IndexError, ValueError):
            return "(not in the index)"
        lines = text[: LINE_CHARS * 64].splitlines()
        line = next((line.strip() for line in lines if line.strip()), "")
        return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"

    def _text(self, name: str, role: str) -> str:
        assert self._retriever is not None
        if role in ("negative", "meta"):
            head, mark, number = name.rpartition("#")
            if mark and number.isdigit():  # a chunk: of a document, or of a piece of one
                whole = self._text(head, "doc")
                return split_chunks(whole, self._spec.nextlong.chunk_chars)[int(number)]
        document = document_of(name)
        (text,) = self._retriever.get([document])
        if document != name:  # a piece
            piece = int(name.rpartition(_PIECE_MARK)[2])
            begin, end = piece_bounds(text, self._piece_chars)[piece]
            return text[begin:end]
        return text
