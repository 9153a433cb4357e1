"""Text normalisation shared by indexing and querying, so both see the same characters."""

from __future__ import annotations

import ctypes
import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from .classify import classify

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

    Called on every corpus record, a batch at a time: which texts the rules or NFC may
    change is found for the whole batch at once (`classify.py`), and only those are
    scanned and changed; the loops look their callables up once. `tests/test_corpus.py`
    checks it against `normalize_text`."""
    raws: list[bytes] = []
    keep_utf8 = _KEEP_UTF8
    for text in texts:
        if keep_utf8 is not None and not text.isascii():
            try:  # noqa: SIM105 (suppress() costs a context manager a text)
                keep_utf8(text, None)
            except UnicodeError:  # a lone surrogate: encoded below with surrogatepass
                pass
        raws.append(text.encode("utf-8", "surrogatepass"))
    if len(texts) >= _CLASSIFY_AT:
        ruled, unstable = classify(raws)
    else:
        ruled, unstable = _scan(texts, raws)
    clean_texts: list[str] = []
    digests: list[bytes] = []
    blake2b, nfc = hashlib.blake2b, unicodedata.normalize
    for number, (text, raw) in enumerate(zip(texts, raws, strict=True)):
        clean = text
        if number in ruled:
            clean = _ruled(clean)
            if not clean.isascii():
                clean = nfc("NFC", clean)
        elif number in unstable:
            clean = nfc("NFC", clean)
        clean = clean.strip()
        if clean is not text:
            raw = clean.encode("utf-8", "surrogatepass")
        clean_texts.append(clean)
        digests.append(blake2b(raw, digest_size=16).digest())
    return clean_texts, digests


#: texts from which `normalize_batch` classifies a batch with numpy (`classify.py`); fewer
#: are scanned one by one, which costs less than numpy's calls
_CLASSIFY_AT = 16


def _scan(texts: list[str], raws: list[bytes]) -> tuple[set[int], set[int]]:
    """`classify`, one text at a time: the texts that hold what the rules change
    (`_holds_ruled`), and the texts NFC may change (all but ASCII)."""
    pairs = enumerate(zip(texts, raws, strict=True))
    ruled = {number for number, (text, raw) in pairs if _holds_ruled(text, raw)}
    unstable = {n for n, text in enumerate(texts) if not text.isascii()}
    return ruled, unstable


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()
