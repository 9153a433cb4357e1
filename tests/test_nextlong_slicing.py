"""Meta-chunks' token ids cut from their documents' ids (`synth/nextlong/slicing.py`): the
same ids as tokenizing each meta-chunk, for the tokenizers where that holds, and nothing cut
for any other."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
import zstandard
from tokenizers import Tokenizer, models, pre_tokenizers

from litelong.corpus.sources import builtin_path
from litelong.index import split_chunks
from litelong.synth.assembly import Tokenized
from litelong.synth.nextlong import ChunkSlicer
from litelong.tokenizer import load_tokenizer

# texts whose lines start or end with whitespace, blank lines, digits, accents, an added token
TRICKY = [
    "a\n  b\nc",
    "x  \ny\n\nz\n",
    "1234\n5678 9\n10",
    "héllo wörld\n  ünï\ncodé ✓\nnext",
    "<|endoftext|> hi\nthere",
    "\n\nlead\nline",
    "tab\tend\t\nnext\n\tindented\nlast",
    " sp\n\n\n x\ny ",
    "ab\n\ncd\n \nef",
    "def f():\n    return 1\n\nclass A:\n    pass",
]


def wiki_texts(count: int) -> list[str]:
    with open(builtin_path("wiki_vital_en.jsonl.zst"), "rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), "utf-8")
        return [json.loads(line)["text"] for _, line in zip(range(count), lines, strict=False)]


def tokenized(tokenizer: Tokenizer, texts: list[str]) -> list[Tokenized]:
    encoded = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    return [
        Tokenized(str(n), text, b"", np.asarray(e.ids, np.uint32))
        for n, (text, e) in enumerate(zip(texts, encoded, strict=True))
    ]


def test_cut_ids_are_the_ids_of_each_meta_chunk_tokenized_alone() -> None:
    """Meta-documents of several documents (wiki paragraphs, code, whitespace at line ends,
    stripped and not) cut at several chunk sizes: every chunk the slicer cuts has exactly the
    ids tokenizing it gives, most chunks are cut, and some of them needed a head or a tail
    tokenized (a chunk starting or ending next to whitespace, where a token of the document
    crosses the boundary: 'ĊĠ' in '\\n ')."""
    tokenizer = load_tokenizer(None)
    slicer = ChunkSlicer.of(tokenizer)
    assert slicer is not None
    texts = wiki_texts(60) + TRICKY * 3
    rng = random.Random(0)
    cut = total = with_edges = 0
    for _ in range(120):
        meta = [t.strip() if rng.random() < 0.7 else t for t in rng.sample(texts, 4)]
        documents = tokenized(tokenizer, meta)
        for chunk_chars in (8, 64, 2048):
            chunks = split_chunks("\n".join(meta), chunk_chars)[: rng.randint(1, 40)]
            edges = slicer.slices(documents, chunks)
            for chunk, ids, edge in zip(
                chunks, slicer.token_ids(documents, chunks), edges, strict=True
            ):
                total += 1
                if ids is None:
                    continue
                cut += 1
                assert edge is not None
                with_edges += bool(edge.head or edge.tail)
                expected = tokenizer.encode(chunk, add_special_tokens=False).ids
                assert ids.tolist() == expected, chunk
    assert cut > 0.8 * total and with_edges > 10, (cut, total, with_edges)


def test_a_tokenizer_slicing_is_not_exact_for_is_left_to_tokenize() -> None:
    """Only a byte-level BPE with GPT-2's split pattern is sliced: a normaliser, another
    pre-tokenizer (Llama 3's pattern takes a line's `\\n` into the word before it) or model
    gets no slicer, so its meta-chunks are tokenized whole as before."""
    smollm2 = load_tokenizer(None)
    assert ChunkSlicer.of(smollm2) is not None
    config = json.loads(smollm2.to_str())
    normalised = {**config, "normalizer": {"type": "NFKC"}}
    assert ChunkSlicer.of(Tokenizer.from_str(json.dumps(normalised))) is None
    llama3 = json.loads(json.dumps(config))
    llama3["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = (
        r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    assert ChunkSlicer.of(Tokenizer.from_str(json.dumps(llama3))) is None
    words = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    assert ChunkSlicer.of(words) is None


def test_ids_that_do_not_spell_the_text_are_never_cut() -> None:
    """A document whose ids are not its text's (truncated, or another text's) cuts nothing."""
    tokenizer = load_tokenizer(None)
    slicer = ChunkSlicer.of(tokenizer)
    assert slicer is not None
    (document,) = tokenized(tokenizer, ["first line\nsecond line\nthird line"])
    short = Tokenized("0", document.text, b"", document.ids[:-1])
    chunks = split_chunks(document.text, 12)
    assert all(ids is not None for ids in slicer.token_ids([document], chunks))
    assert slicer.token_ids([short], chunks) == [None] * len(chunks)


@pytest.mark.parametrize("text", TRICKY)
def test_every_chunk_of_a_tricky_text_is_cut_right_or_not_at_all(text: str) -> None:
    tokenizer = load_tokenizer(None)
    slicer = ChunkSlicer.of(tokenizer)
    assert slicer is not None
    documents = tokenized(tokenizer, [text, text.strip() or "x"])
    for chunk_chars in (1, 4, 16):
        chunks = split_chunks("\n".join(d.text for d in documents), chunk_chars)
        for chunk, ids in zip(chunks, slicer.token_ids(documents, chunks), strict=True):
            if ids is not None:
                assert ids.tolist() == tokenizer.encode(chunk, add_special_tokens=False).ids
