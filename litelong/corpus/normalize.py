"""Text normalisation shared by indexing and querying, so both see the same characters."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# C0/C1 controls except tab and newline, and zero-width characters that break tokenisers.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_CARRIAGE_RETURNS = re.compile("\r\n?")
# What either rule changes: the ASCII ones (carriage return included) as bytes to delete, the
# rest as characters to look for.
_ASCII_RULED = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
_RULED = [*map(chr, _ASCII_RULED), *map(chr, range(0x80, 0xA0)), *"\u200b\u200c\u200d\u2060\ufeff"]


def needs_rules(text: str) -> bool:
    """Whether `text` holds a carriage return or an invisible character, tested without a
    regex: scanning every text with `_INVISIBLE` was the costliest step of reading a corpus,
    and almost no text has any. ASCII text is deleted from as bytes in one C loop and checked
    for a change in length; other text is searched for each character (memchr, fast)."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw.translate(None, _ASCII_RULED)) != len(raw)
    return any(character in text for character in _RULED)


def normalize_text(text: str) -> str:
    """Unicode NFC, newlines as \\n, control and zero-width characters removed, ends stripped."""
    if needs_rules(text):
        if "\r" in text:
            text = _CARRIAGE_RETURNS.sub("\n", text)
        text = _INVISIBLE.sub("", text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.strip()


def content_digest(text: str) -> bytes:
    """128-bit digest of normalised text: the default id and the exact-dedup key."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
