"""Cutting a long text at its strongest breaks: the one rule a BM25Index uses for documents
over `maxChars` and a SynthesisRun uses for documents longer than a sample
(`synth/assembly/pieces.py`).
"""

from __future__ import annotations

_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", " ")


def cut_bounds(text: str, max_chars: int) -> list[tuple[int, int]]:
    """[start, end) character ranges of at most `max_chars` that tile `text`, each ending at the
    strongest break (paragraph, line, sentence, space) in the second half of its window; the
    text itself when it fits. Only positions are made, never copies of the text."""
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    bounds: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > max_chars:
        window_end = start + max_chars
        end = window_end
        for mark in _BREAKS:
            found = text.rfind(mark, start + max_chars // 2, window_end)
            if found >= 0:
                end = found + len(mark)
                break
        bounds.append((start, end))
        start = end
    bounds.append((start, len(text)))
    return bounds
