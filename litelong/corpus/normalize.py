"""Text normalisation shared by indexing and querying, so both see the same characters."""

from __future__ import annotations

import ctypes
import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Any

# C0/C1 controls except tab and newline, and zero-width characters that break tokenisers.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_CARRIAGE_RETURNS = re.compile("\r\n?")
# What either rule changes, looked for without `_INVISIBLE` (`needs_rules`): the ASCII ones,
# carriage return included, as bytes; C1 controls as their UTF-8 form; the zero-width ones.
_ASCII_RULED = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def _utf8_keeper() -> Callable[[str, Any], Any] | None:
    """CPython's `PyUnicode_AsUTF8AndSize`, which keeps a text's UTF-8 in the text: a text
    that is not ASCII is then encoded once for its digest and for the index writer
    (tantivy reads a text through the same call), not once each: ~1.2 us of a 3 KB text,
    about 1% of an index build (bench/README.md, "where the last tenth goes"). None where
    the interpreter has no such call (then each encodes)."""
    try:
        prototype = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p)
        keeper: Callable[[str, Any], Any] = prototype(("PyUnicode_AsUTF8AndSize", ctypes.pythonapi))
        return keeper
    except (AttributeError, OSError, ValueError):
        return None


_KEEP_UTF8 = _utf8_keeper()


def needs_rules(text: str) -> bool:
    """Whether `text` holds a carriage return or a character `_INVISIBLE` removes."""
    return _holds_ruled(text, text.encode("utf-8", "surrogatepass"))


def _holds_ruled(text: str, raw: bytes) -> bool:
    """`needs_rules`, given the text's UTF-8 bytes. Scanning every text with `_INVISIBLE` was
    the costliest step of reading a corpus (about 14 us a 3 KB document), and almost no text
    needs it; these tests are a few C loops: ASCII controls deleted from the bytes change
    their length, a C1 control's bytes start with 0xC2 (memchr first), and each zero-width
    character is a memchr."""
    if len(raw.translate(None, _ASCII_RULED)) != len(raw):
        return True
    if text.isascii():
        return False
    if b"\xc2" in raw and _C1_UTF8.search(raw):
        return True
    return any(character in text for character in _ZERO_WIDTH)


def normalize_text(text: str) -> str:
    """Unicode NFC, newlines as \\n, control and zero-width characters removed, ends stripped."""
    return _normalized(text, needs_rules(text))


def _normalized(text: str, ruled: bool) -> str:
    if ruled:
        text = _ruled(text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.strip()


def _ruled(text: str) -> str:
    """The carriage-return and invisible-character rules (the text needs them)."""
    if "\r" in text:
        text = _CARRIAGE_RETURNS.sub("\n", text)
    return _INVISIBLE.sub("", text)


def content_digest(text: str) -> bytes:
    """128-bit digest of normalised text: the default id and the exact-dedup key."""
    return _digest(text.encode("utf-8", "surrogatepass"))


def normalize_and_digest(text: str) -> tuple[str, bytes]:
    """`normalize_text(text)` and its `content_digest` (`normalize_batch` of one text)."""
    texts, digests = normalize_batch([text])
    return texts[0], digests[0]


def normalize_batch(texts: list[str]) -> tuple[list[str], list[bytes]]:
    """`normalize_text` of each text and its `content_digest`, encoding each text to UTF-8
    once when normalising leaves it as it is (most texts: NFC and `strip` return the very
    object then); otherwise the normalised text is encoded again.

    Called on every corpus record, a batch at a time, so `_holds_ruled` and `_normalized`
    are written out in one loop with its callables looked up once: a Python call a record
    is ~0.1 s of a 1M-document index build (bench/README.md). `tests/test_corpus.py` checks
    it against `normalize_text`."""
    clean_texts: list[str] = []
    digests: list[bytes] = []
    blake2b, nfc, ruled, c1 = hashlib.blake2b, unicodedata.normalize, _ruled, _C1_UTF8.search
    keep_utf8 = _KEEP_UTF8
    for text in texts:
        ascii_text = text.isascii()
        if not ascii_text and keep_utf8 is not None:
            try:  # noqa: SIM105 (suppress() costs a context manager a text)
                keep_utf8(text, None)
            except UnicodeError:  # a lone surrogate: encoded below with surrogatepass
                pass
        raw = text.encode("utf-8", "surrogatepass")
        clean = text
        if len(raw.translate(None, _ASCII_RULED)) != len(raw) or (
            not ascii_text
            and (
                (b"\xc2" in raw and c1(raw) is not None)
                or "\u200b" in text  # _ZERO_WIDTH, one by one: no generator
                or "\u200c" in text
                or "\u200d" in text
                or "\u2060" in text
                or "\ufeff" in text
            )
        ):
            clean = ruled(clean)
            ascii_text = clean.isascii()
        if not ascii_text:
            clean = nfc("NFC", clean)
        clean = clean.strip()
        if clean is not text:
            raw = clean.encode("utf-8", "surrogatepass")
        clean_texts.append(clean)
        digests.append(blake2b(raw, digest_size=16).digest())
    return clean_texts, digests


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()
