"""Text normalisation shared by indexing and querying, so both see the same characters."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# C0/C1 controls except tab and newline, and zero-width characters that break tokenisers.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_CARRIAGE_RETURNS = re.compile("\r\n?")


def normalize_text(text: str) -> str:
    """Unicode NFC, newlines as \\n, control and zero-width characters removed, ends stripped."""
    if "\r" in text:
        text = _CARRIAGE_RETURNS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.strip()


def content_digest(text: str) -> bytes:
    """128-bit digest of normalised text: the default id and the exact-dedup key."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
