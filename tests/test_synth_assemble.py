"""Assembly: samples are exactly the budget, documents whole but the last, never padded."""

from __future__ import annotations

import numpy as np
import pytest

from litelong.corpus import content_digest
from litelong.synth.assembly import Separator, Tokenized, TokenizedDocuments, fill_samples
from litelong.tokenizer import load_tokenizer

TOKENIZER = load_tokenizer()
SEPARATOR = Separator(TOKENIZER, "\n\n")


def doc(doc_id: str, words: int, text: str | None = None) -> Tokenized:
    text = text or " ".join(f"{doc_id}word{i}" for i in range(words))
    encoding = TOKENIZER.encode(text, add_special_tokens=False)
    return Tokenized(
        doc_id,
        text,
        content_digest(text),
        np.asarray(encoding.ids, dtype=np.uint32),
    )


def test_every_sample_is_exactly_the_budget_and_spans_tile_it() -> None:
    documents = [doc(f"d{i}", 30) for i in range(40)]
    result = fill_samples(documents, wanted=3, target=500, separator=SEPARATOR)
    assert len(result.samples) == 3
    for sample in result.samples:
        assert sample.input_ids.dtype == np.uint32 and len(sample.input_ids) == 500
        assert sample.spans[0].start == 0 and sample.spans[-1].end == 500
        for left, right in zip(sample.spans, sample.spans[1:], strict=False):
            assert left.end == right.start


def test_whole_documents_keep_their_tokens_and_the_crossing_one_is_cut_and_marked() -> None:
    documents = [doc(f"d{i}", 30) for i in range(10)]
    (sample,) = fill_samples(documents, wanted=1, target=300, separator=SEPARATOR).samples
    *whole, last = sample.spans
    for span, document in zip(whole, documents, strict=False):
        expected = np.concatenate([document.ids, SEPARATOR.ids])
        assert np.array_equal(sample.input_ids[span.start : span.end], expected)
        assert not span.truncated
    assert last.truncated
    cut = documents[len(whole)]
    assert np.array_equal(sample.input_ids[last.start :], cut.ids[: last.end - last.start])
    assert sample.text.startswith(documents[0].text + "\n\n")
    assert cut.text.startswith(sample.text.rsplit("\n\n", 1)[-1])


def test_a_topics_samples_use_disjoint_documents_distinct_by_content() -> None:
    same_text = "an identical document that appears twice under two ids " * 3
    documents = [doc("a", 0, same_text), doc("b", 0, same_text)] + [
        doc(f"d{i}", 25) for i in range(30)
    ]
    result = fill_samples(documents, wanted=3, target=200, separator=SEPARATOR)
    used = [span.doc_id for sample in result.samples for span in sample.spans]
    assert len(used) == len(set(used))
    assert "b" not in used
    assert result.counts["skipped.duplicate_content"] == 1


def test_a_topic_that_runs_out_of_documents_is_not_padded() -> None:
    documents = [doc(f"d{i}", 30) for i in range(5)]
    total = sum(len(d.ids) + len(SEPARATOR.ids) for d in documents)
    result = fill_samples(documents, wanted=4, target=total // 2 + 1, separator=SEPARATOR)
    assert len(result.samples) == 1  # the second would need text from outside the topic
    assert result.counts["samples_underfilled"] == 1
    assert len(result.samples[0].input_ids) == total // 2 + 1


def test_a_document_longer_than_the_budget_fills_one_sample_alone() -> None:
    documents = [doc("huge", 400), doc("small", 5)]
    result = fill_samples(documents, wanted=2, target=100, separator=SEPARATOR)
    first = result.samples[0]
    assert [(s.doc_id, s.truncated) for s in first.spans] == [("huge", True)]
    assert result.counts["documents_longer_than_budget"] == 1
    assert result.counts["documents_truncated"] == 1


@pytest.mark.parametrize("separator_text", ["", "\n\n", " <doc> "])
def test_any_separator_counts_toward_the_budget(separator_text: str) -> None:
    separator = Separator(TOKENIZER, separator_text)
    documents = [doc(f"d{i}", 20) for i in range(30)]
    (sample,) = fill_samples(documents, wanted=1, target=256, separator=separator).samples
    assert len(sample.input_ids) == 256
    assert sample.spans[1].start == len(documents[0].ids) + len(separator.ids)


class _Texts:
    """A retriever stand-in that only serves texts: the cache is what is tested here."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts
        self.asked: list[str] = []

    def get(self, ids: list[str]) -> list[str]:
        self.asked += ids
        return [self.texts[i] for i in ids]


def test_documents_are_tokenized_once_and_a_full_cache_never_loses_a_batch() -> None:
    texts = {f"d{i}": f"document number {i} " * 20 for i in range(300)}
    source = _Texts(texts)
    documents = TokenizedDocuments(source, TOKENIZER, capacity_tokens=500)  # type: ignore[arg-type]
    first = documents.fetch([f"d{i}" for i in range(100)])
    again = documents.fetch([f"d{i}" for i in range(95, 250)])  # d95-d99 cached, then evicted
    assert [d.doc_id for d in again] == [f"d{i}" for i in range(95, 250)]
    assert source.asked.count("d97") == 1  # still cached when the second batch began
    assert np.array_equal(first[97].ids, again[2].ids)
    assert documents.tokenized == 250


@pytest.mark.parametrize("spill", [False, True])
def test_a_forgotten_document_used_again_is_read_back_from_the_spill(spill: bool) -> None:
    """With reuse over 1, a document the memory cache forgot comes back from disk, not from
    the tokenizer; its ids, text and digest are those it was tokenized to."""
    texts = {f"d{i}": f"document number {i} " * 20 for i in range(300)}
    documents = TokenizedDocuments(
        _Texts(texts),  # type: ignore[arg-type]
        TOKENIZER,
        capacity_tokens=500,
        spill=spill,
    )
    units = [(doc_id, texts[doc_id]) for doc_id in texts]
    first = documents.tokenize(units[:150])
    again = documents.tokenize(units[:10])  # long evicted from memory
    assert [(d.doc_id, d.text, d.digest) for d in again] == [
        (d.doc_id, d.text, d.digest) for d in first[:10]
    ]
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(again, first, strict=False))
    assert documents.tokenized == (150 if spill else 160)
    documents.close()


def test_a_topic_tokenizes_little_more_than_its_samples_use() -> None:
    texts = {f"d{i}": f"document number {i} " * 20 for i in range(300)}
    documents = TokenizedDocuments(_Texts(texts), TOKENIZER)  # type: ignore[arg-type]
    result = fill_samples(documents.stream(list(texts)), wanted=2, target=1500, separator=SEPARATOR)
    used = sum(len(sample.spans) for sample in result.samples)
    assert len(result.samples) == 2
    assert used <= documents.tokenized <= used + 64 // 4  # not a whole batch of 64 more


def test_a_cut_document_keeps_the_exact_text_of_its_kept_tokens() -> None:
    text = "Prefix tokenization must agree with the whole document. " * 400 + "Ünïcode ☃ end."
    document = doc("long", 0, text)
    (sample,) = fill_samples([document], wanted=1, target=777, separator=SEPARATOR).samples
    encoding = TOKENIZER.encode(text, add_special_tokens=False)
    assert sample.text == text[: encoding.offsets[776][1]]
    assert sample.spans == [sample.spans[0]] and sample.spans[0].truncated


def test_a_cut_inside_a_characters_bytes_ends_the_text_at_a_whole_character() -> None:
    text = "🎉" * 600
    document = doc("emoji", 0, text)
    for room in (101, 333):
        (sample,) = fill_samples([document], wanted=1, target=room, separator=SEPARATOR).samples
        encoding = TOKENIZER.encode(text, add_special_tokens=False)
        assert sample.text == text[: encoding.offsets[room - 1][1]]
        assert "\ufffd" not in sample.text
