"""Which texts of a batch normalisation can change, found in a few numpy passes over their
UTF-8 bytes at once instead of per-text scans (bench/README.md, "where the last tenth goes").

Per text, the scans cost more than anything else of reading a corpus but its digest: NFC's
quick check (~30 instructions a character of every text that is not ASCII) and the
control-character test (`bytes.translate`, ~10 a byte). Here a batch's UTF-8 is joined once,
one vectorised pass finds the bytes that are not printable ASCII (a few in a hundred), and
(1) the ASCII characters the rules remove are found among those, and (2) every
character outside ASCII is decoded from its bytes and looked up in a table of code points:
C1 controls and zero-width characters (the rules remove them) and the characters NFC may
change or compose with what precedes them (`_nfc_unstable`). A text with none of them is
already normalised but for `strip`.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import numpy as np

_ZERO_WIDTH = (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)
_HANGUL_VOWELS_AND_TRAILS = ((0x1161, 0x1176), (0x11A8, 0x11C3))  # compose algorithmically
#: the only code points with a combining class or a canonical decomposition (planes 0-2 and 14;
#: `tests/test_corpus.py` checks the others): looking at 0.2M, not 1.1M, builds the table in
#: ~0.03 s
SCANNED = (range(0x300, 0x30000), range(0xE0000, 0xE1000))
RULES, NFC = 1, 2  # flags of a code point in `_table`


def classify(raws: list[bytes]) -> tuple[set[int], set[int]]:
    """(texts that need the rules, texts that may need NFC), as positions in `raws`: the
    UTF-8 of each text. Any text in neither set is unchanged by the rules and by NFC."""
    if not raws:
        return set(), set()
    joined = np.frombuffer(b"".join([*raws, b"\0\0\0"]), np.uint8)  # padded: `_code_points`
    data = joined[:-3]
    ends = np.cumsum([len(raw) for raw in raws])
    # one pass over the batch finds every byte but printable ASCII (wrapping uint8: controls
    # become 0xE0-0xFF, DEL 0x5F, bytes past ASCII 0x60 and more): newlines, tabs and the
    # bytes of characters past ASCII, a few in a hundred; the tests below look at those only
    special = np.flatnonzero(np.subtract(data, 0x20, dtype=np.uint8) > 0x5E)
    values = data[special]
    ruled = ((values < 0x20) & (values != 0x0A) & (values != 0x09)) | (values == 0x7F)
    rules = _texts(special[ruled], ends) if ruled.any() else set()
    leads = special[values >= 0xC2]  # the first byte of every character past ASCII
    if not len(leads):
        return rules, set()
    flags = _table()[_code_points(joined, leads)]
    rules.update(_texts(leads[(flags & RULES) != 0], ends))
    return rules, _texts(leads[(flags & NFC) != 0], ends)


def _texts(places: np.ndarray, ends: np.ndarray) -> set[int]:
    """The texts holding these byte positions."""
    found: set[int] = set(np.searchsorted(ends, places, side="right").tolist())
    return found


def _code_points(joined: np.ndarray, leads: np.ndarray) -> np.ndarray:
    """The code points whose UTF-8 starts at `leads` (well-formed: Python encoded it)."""
    b0 = joined[leads].astype(np.int32)
    b1 = joined[leads + 1].astype(np.int32) & 0x3F
    b2 = joined[leads + 2].astype(np.int32) & 0x3F
    b3 = joined[leads + 3].astype(np.int32) & 0x3F
    two = ((b0 & 0x1F) << 6) | b1
    three = ((b0 & 0x0F) << 12) | (b1 << 6) | b2
    four = ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3
    return np.where(b0 < 0xE0, two, np.where(b0 < 0xF0, three, four))


@cache
def _table() -> np.ndarray:
    """Flags of every code point: RULES for C1 controls and zero-width characters; NFC for
    those NFC may change (combining class not 0, or NFC of the character alone differs:
    singletons, exclusions) or that may compose with a character before them (the second
    of a canonical pair, Hangul vowels and trailing consonants). A superset of what
    Unicode's NFC quick check does not pass, from the interpreter's own Unicode data
    (built once); below U+0300 no character is flagged NFC."""
    table = np.zeros(0x110000, np.uint8)
    table[0x80:0xA0] = RULES
    table[list(_ZERO_WIDTH)] |= RULES
    combining, decomposition, normalize = (
        unicodedata.combining,
        unicodedata.decomposition,
        unicodedata.normalize,
    )
    unstable: list[int] = []
    for code in (code for scanned in SCANNED for code in scanned):
        character = chr(code)
        if combining(character):
            unstable.append(code)
        parts = decomposition(character)
        if parts and not parts.startswith("<"):  # canonical
            pair = parts.split()
            if len(pair) == 2:
                unstable.append(int(pair[1], 16))
            if normalize("NFC", character) != character:
                unstable.append(code)
    table[unstable] |= NFC
    for start, end in _HANGUL_VOWELS_AND_TRAILS:
        table[start:end] |= NFC
    return table
