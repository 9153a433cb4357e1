"""Corpus reading: formats, normalisation, dedup, sharding, and every kind of bad input."""

from __future__ import annotations

import itertools
import os
import unicodedata
from pathlib import Path

import pytest

from litelong.corpus import (
    CorpusReadError,
    InvalidCorpus,
    SkipCounter,
    content_digest,
    normalize_text,
    read_batches,
    read_shard,
)
from litelong.corpus.classify import SCANNED, classify
from litelong.corpus.normalize import (
    _CARRIAGE_RETURNS,
    _INVISIBLE,
    needs_rules,
    normalize_and_digest,
    normalize_batch,
)

from .conftest import bm25index, parquet_bytes, write_jsonl

LONG_ENOUGH = "a document that is comfortably longer than twenty characters"


def read(tmp_path: Path, records: list[object], name: str = "c.jsonl", **spec: object):
    path = write_jsonl(tmp_path / name, records)
    resource = bm25index(corpus=[{"uri": str(path), "idField": "id"}], **spec)
    skips = SkipCounter()
    return list(read_shard(resource.spec, 0, 1, skips)), skips


@pytest.mark.parametrize("name", ["c.jsonl", "c.jsonl.gz", "c.jsonl.zst"])
def test_reads_plain_gzip_and_zstd_jsonl(tmp_path: Path, name: str) -> None:
    docs, skips = read(tmp_path, [{"id": 1, "text": LONG_ENOUGH}], name=name)
    assert [(d.id, d.text) for d in docs] == [("1", LONG_ENOUGH)]
    assert skips.total == 0


def test_reads_parquet_with_field_mapping(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    path.write_bytes(parquet_bytes({"body": [LONG_ENOUGH, None, "x" * 30], "key": ["a", "b", "c"]}))
    resource = bm25index(corpus=[{"uri": str(path), "textField": "body", "idField": "key"}])
    skips = SkipCounter()
    docs = list(read_shard(resource.spec, 0, 1, skips))
    assert [d.id for d in docs] == ["a", "c"]
    assert skips.counts == {"missing_text": 1}
    assert skips.examples["missing_text"] == [f"{path}:row 2"]


def test_parquet_without_the_text_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    path.write_bytes(parquet_bytes({"content": [LONG_ENOUGH]}))
    resource = bm25index(corpus=[{"uri": str(path)}])
    with pytest.raises(InvalidCorpus, match=r"no column text \(columns: content\)"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


def test_bad_lines_are_counted_by_reason_with_positions(tmp_path: Path) -> None:
    records = [
        {"id": "ok", "text": LONG_ENOUGH},
        b'{"id": "broken", "text": ',
        b'{"id": "latin1", "text": "caf\xe9 au lait, longer than twenty"}',
        {"id": "no-text", "body": LONG_ENOUGH},
        {"id": "null-text", "text": None},
        {"id": "number", "text": 42},
        ["not", "an", "object"],
        {"id": "empty", "text": ""},
        {"id": "short", "text": "too short"},
        {"id": "spaces", "text": "   \u200b\u200b  \x00  "},
        {"id": "copy", "text": LONG_ENOUGH},
        {"id": "ok", "text": "another text, with the same id as the first one"},
    ]
    docs, skips = read(tmp_path, records)
    assert [d.id for d in docs] == ["ok"]
    assert skips.counts == {
        "invalid_json": 1,
        "invalid_utf8": 1,
        "missing_text": 2,
        "text_not_string": 1,
        "not_an_object": 1,
        "too_short": 3,
        "duplicate": 1,
        "duplicate_id": 1,
    }
    path = tmp_path / "c.jsonl"
    assert skips.examples["invalid_json"] == [f"{path}:2"]
    assert skips.examples["too_short"] == [f"{path}:8", f"{path}:9", f"{path}:10"]


def test_a_20_mb_document_is_skipped_as_too_long_when_the_spec_says_drop(tmp_path: Path) -> None:
    huge = "word " * (4 * 1024 * 1024)  # 20 MiB on one line
    records = [{"id": "huge", "text": huge}, {"id": "ok", "text": LONG_ENOUGH}]
    docs, skips = read(tmp_path, records, tooLong="drop")
    assert [d.id for d in docs] == ["ok"]
    assert skips.counts == {"too_long": 1}


def test_a_document_over_max_chars_is_split_into_parts_at_paragraph_breaks(
    tmp_path: Path,
) -> None:
    paragraphs = [f"Paragraph {n} of the book, long enough to count." for n in range(400)]
    book = "\n\n".join(paragraphs)  # about 20,000 characters
    docs, skips = read(tmp_path, [{"id": "book", "text": book}], maxChars=4000)
    assert skips.counts == {}
    assert [d.id for d in docs] == [f"book#part{n}" for n in range(len(docs))]
    assert len(docs) >= 5 and all(len(d.text) <= 4000 for d in docs)
    assert "".join(d.text for d in docs) == book  # nothing lost
    assert all(d.text.endswith("\n\n") for d in docs[:-1])  # cut between paragraphs


def test_max_chars_is_configurable(tmp_path: Path) -> None:
    docs, skips = read(tmp_path, [{"id": "a", "text": LONG_ENOUGH}], maxChars=30, tooLong="drop")
    assert docs == [] and skips.counts == {"too_long": 1}


def test_id_defaults_to_the_content_hash(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": LONG_ENOUGH}])
    resource = bm25index(corpus=[{"uri": str(path)}])
    (doc,) = read_shard(resource.spec, 0, 1, SkipCounter())
    assert doc.id == content_digest(LONG_ENOUGH).hex()


def test_dedup_none_keeps_repeats(tmp_path: Path) -> None:
    records = [{"id": "a", "text": LONG_ENOUGH}, {"id": "b", "text": LONG_ENOUGH}]
    docs, skips = read(tmp_path, records, dedup="none")
    assert [d.id for d in docs] == ["a", "b"] and skips.total == 0


def test_normalisation() -> None:
    decomposed = "Cafe\u0301\r\nzero\u200bwidth\x07 bell\ttab\ufeff"
    assert normalize_text(decomposed) == "Café\nzerowidth bell\ttab"
    assert normalize_text("  padded  ") == "padded"


def _regex_path(text: str) -> str:
    """`normalize_text` as every text took it before `needs_rules`: both regexes, always."""
    text = _CARRIAGE_RETURNS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    return unicodedata.normalize("NFC", text).strip()


# one text per rule, each needing only that rule, and texts that need none of them
NEEDS_A_RULE = {
    "carriage returns": "one\r\ntwo\rthree",
    "C0 control": "a bell\x07, a nul\x00, a form feed\x0c",
    "DEL and C1 controls": "del\x7f, next line\x85, \x80 and \x9f",
    "C1 in non-ASCII text": "caf\u00e9\x9c",
    "zero-width": "zero\u200bwidth\u200c\u200d\u2060 and a BOM\ufeff",
    "zero-width in UCS-4 text": "\U0001f600\u200b",
}
NEEDS_NONE = {
    "ASCII": "plain text\twith a tab\nand newlines, ~!@#$%^&*()_+{}|:<>?",
    "Latin-1": "d\u00e9j\u00e0 vu \u00a9 \u00a0no-break space\u00ad soft hyphen",
    "BMP": "\u201cquoted\u201d \u2014 dash \u2009 \u6f22\u5b57 \u00c2\u00a0 (0xC2 bytes, no C1)",
    "UCS-4": "emoji \U0001f600 and a tag \U000e0001",
    "NFC only": "Cafe\u0301",
    "strip only": "  padded \n",
}


@pytest.mark.parametrize("name", sorted(NEEDS_A_RULE))
def test_a_text_that_needs_a_rule_is_normalised_as_by_the_regexes(name: str) -> None:
    text = NEEDS_A_RULE[name]
    assert needs_rules(text)
    assert normalize_text(text) == _regex_path(text) != text
    assert normalize_and_digest(text) == (_regex_path(text), content_digest(_regex_path(text)))


@pytest.mark.parametrize("name", sorted(NEEDS_NONE))
def test_a_text_that_needs_no_rule_skips_the_regexes_with_the_same_result(name: str) -> None:
    text = NEEDS_NONE[name]
    assert not needs_rules(text)
    assert normalize_text(text) == _regex_path(text)
    assert normalize_and_digest(text) == (_regex_path(text), content_digest(_regex_path(text)))


def test_needs_rules_finds_every_character_the_rules_change_and_no_other() -> None:
    """Every BMP character and some astral ones, alone and inside ASCII and non-ASCII text:
    `needs_rules` is true exactly for those the regexes change."""
    astral = [0x1F600, 0x1D173, 0xE0001, 0xF0000, 0x10FFFF]
    for code in [*range(0x10000), *astral]:
        character = chr(code)
        changed = character == "\r" or _INVISIBLE.search(character) is not None
        for text in (character, f"ab{character}cd", f"\u00e9{character}", f"\u2019{character}"):
            assert needs_rules(text) is changed, (hex(code), text)


def test_normalize_and_digest_agrees_with_the_regexes_on_every_character() -> None:
    """`normalize_and_digest` writes its tests out rather than calling `needs_rules`: every
    BMP character and some astral ones, alone and inside ASCII and non-ASCII text, with a
    carriage return and padding around some, give the regexes' text and its digest."""
    astral = [0x1F600, 0x1D173, 0xE0001, 0xF0000, 0x10FFFF]
    for code in [*range(0x10000), *astral]:
        character = chr(code)
        contexts = (f"ab{character}cd", f"\u00e9{character}", f" \u2019{character}\r\n")
        for text in (character, *contexts):
            expected = _regex_path(text)
            assert normalize_and_digest(text) == (expected, content_digest(expected)), hex(code)


def test_a_batch_is_normalised_as_text_by_text_for_every_character() -> None:
    """`normalize_batch` finds the texts the rules or NFC may change for a whole batch at
    once (`classify.py`) and leaves the others as they are: every code point (astral ones
    and lone surrogates included), alone, after a letter it may compose with, before a
    combining mark, after a Hangul leading consonant, and padded with a carriage return,
    in batches of 4,096, gives what `normalize_text` gives text by text, and its digest."""
    codes = [code for code in range(0x110000) if code < 0x30000 or code >= 0xE0000]
    texts: list[str] = []
    for code in codes:
        character = chr(code)
        texts += [character, f"e{character}", f"{character}\u0301x", f"\u1100{character}"]
        if code % 7 == 0:
            texts.append(f" \u2019{character}\r\n")
    for start in range(0, len(texts), 4096):
        batch = texts[start : start + 4096]
        clean, digests = normalize_batch(batch)
        for text, got, digest in zip(batch, clean, digests, strict=True):
            expected = normalize_text(text)
            assert (got, digest) == (expected, content_digest(expected)), ascii(text)


def test_the_classifier_table_scans_every_code_point_nfc_may_touch() -> None:
    """`classify._table` looks only at `SCANNED` for combining classes and canonical
    decompositions; no other code point has either in this interpreter's Unicode data."""
    scanned = {code for block in SCANNED for code in block}
    for code in range(0x300, 0x110000):
        if code in scanned:
            continue
        character = chr(code)
        decomposition = unicodedata.decomposition(character)
        assert not unicodedata.combining(character), hex(code)
        assert not decomposition or decomposition.startswith("<"), hex(code)


def test_the_batch_classifier_names_exactly_the_texts_that_need_a_rule() -> None:
    """A text with a control character, a C1 control or a zero-width character is named
    wherever it sits in the batch; an ASCII text with tabs and newlines, and a text of
    characters NFC leaves as they are, is in neither set."""
    plain = ["tab\there\nand newlines", "\u201cquoted\u201d \u2014 caf\u00e9 \U0001f600"]
    ruled = ["bell\x07", "cr\r\n", "del\x7f", "c1 \u0085", "zw\u200bx", "bom\ufeff"]
    batch = plain * 10 + ruled + ["Cafe\u0301"] + plain * 10
    need_rules, need_nfc = classify([text.encode("utf-8") for text in batch])
    assert need_rules == set(range(20, 26))
    assert need_nfc == {26}


def test_dedup_sees_through_normalisation(tmp_path: Path) -> None:
    records = [
        {"id": "a", "text": LONG_ENOUGH + " caf\u00e9"},
        {"id": "b", "text": LONG_ENOUGH + " cafe\u0301\u200b"},
    ]
    docs, skips = read(tmp_path, records)
    assert [d.id for d in docs] == ["a"] and skips.counts == {"duplicate": 1}


@pytest.mark.parametrize("id_field", ["id", None])
def test_read_batches_gives_the_first_copies_in_order_a_batch_at_a_time(
    tmp_path: Path, id_field: str | None
) -> None:
    """The index stage takes documents a batch at a time (`read_batches`): across batch and
    file boundaries, with repeated texts and (with an idField) repeated ids, it keeps the
    first copy of each in corpus order and counts the others, as `read_shard` does."""
    texts = [f"{LONG_ENOUGH} number {i}" for i in range(3000)]
    first = [{"id": f"a{i}", "text": texts[i]} for i in range(2500)]
    # repeats of texts 0-99 (dropped), new texts under ids already used (dropped with an
    # idField), and new texts under new ids (kept), past the 1,024 of a batch
    second = [{"id": f"b{i}", "text": texts[i]} for i in range(100)]
    second += [{"id": f"a{i}", "text": texts[2500 + i]} for i in range(200)]
    second += [{"id": f"c{i}", "text": texts[2700 + i]} for i in range(300)]
    write_jsonl(tmp_path / "c1.jsonl", first)
    write_jsonl(tmp_path / "c2.jsonl.zst", second)
    source = {"uri": str(tmp_path / "c*"), **({"idField": id_field} if id_field else {})}
    resource = bm25index(corpus=[source])
    skips = SkipCounter()
    batches = list(read_batches(resource.spec, 0, 1, skips))
    assert all(0 < len(batch) <= 1024 for batch in batches) and len(batches) > 2
    documents = [document for batch in batches for document in batch]
    kept = first + second[100:] if id_field is None else first + second[300:]
    assert [d.text for d in documents] == [record["text"] for record in kept]
    if id_field:
        assert [d.id for d in documents] == [record["id"] for record in kept]
        assert skips.counts == {"duplicate": 100, "duplicate_id": 200}
    else:
        assert [d.id for d in documents] == [content_digest(d.text).hex() for d in documents]
        assert skips.counts == {"duplicate": 100}
    assert list(read_shard(resource.spec, 0, 1, SkipCounter())) == documents


def test_shards_partition_the_corpus_and_count_each_skip_once(tmp_path: Path) -> None:
    records: list[object] = [
        {"id": str(i), "text": f"{LONG_ENOUGH} number {i}"} for i in range(200)
    ]
    records += [b"not json"] * 7 + [{"id": "s", "text": "short"}] + records[:5]
    path = write_jsonl(tmp_path / "c.jsonl", records)
    resource = bm25index(corpus=[{"uri": str(path), "idField": "id"}])
    whole = {d.id for d in read_shard(resource.spec, 0, 1, SkipCounter())}
    parts, totals = [], SkipCounter()
    for shard in range(3):
        skips = SkipCounter(shard, 3)
        parts.append({d.id for d in read_shard(resource.spec, shard, 3, skips)})
        totals.merge(skips)
    assert set().union(*parts) == whole and sum(map(len, parts)) == len(whole) == 200
    assert all(parts)
    assert totals.counts == {"invalid_json": 7, "too_short": 1, "duplicate": 5}


def test_parallel_readers_give_the_same_documents_in_the_same_order(tmp_path: Path) -> None:
    uris = []
    for n in range(4):
        records = [{"id": f"{n}-{i}", "text": f"{LONG_ENOUGH} {i % 50}"} for i in range(300)]
        uris.append(str(write_jsonl(tmp_path / f"c{n}.jsonl.zst", records)))
    resource = bm25index(corpus=[{"uri": str(tmp_path / "c*.jsonl.zst"), "idField": "id"}])
    serial_skips, parallel_skips = SkipCounter(), SkipCounter()
    serial = list(read_shard(resource.spec, 0, 1, serial_skips, readers=1))
    parallel = list(read_shard(resource.spec, 0, 1, parallel_skips, readers=3))
    assert serial == parallel and len(serial) == 50
    assert serial_skips == parallel_skips


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    resource = bm25index(corpus=[{"uri": str(tmp_path / "nope.jsonl")}])
    with pytest.raises(InvalidCorpus, match=r"nope\.jsonl: no such file"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path: Path) -> None:
    resource = bm25index(corpus=[{"uri": str(tmp_path / "*.parquet")}])
    with pytest.raises(InvalidCorpus, match="the glob matches no file"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


def test_an_unknown_extension_asks_for_the_format(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("x")
    resource = bm25index(corpus=[{"uri": str(path)}])
    with pytest.raises(InvalidCorpus, match="set `format`"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": LONG_ENOUGH}])
    path.chmod(0)
    resource = bm25index(corpus=[{"uri": str(path)}])
    with pytest.raises(CorpusReadError, match="cannot read"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


def test_a_corrupt_compressed_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl.zst", [{"text": LONG_ENOUGH}] * 100)
    path.write_bytes(path.read_bytes()[:20] + b"\xff" * 40)
    resource = bm25index(corpus=[{"uri": str(path)}])
    with pytest.raises(CorpusReadError, match=r"c\.jsonl\.zst: cannot read"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


def _zstd_frames(path: Path, pieces: list[bytes]) -> Path:
    import zstandard

    path.write_bytes(b"".join(zstandard.ZstdCompressor().compress(piece) for piece in pieces))
    return path


def test_a_multi_frame_zstd_file_is_read_whole_with_lines_across_frames(tmp_path: Path) -> None:
    lines = [f'{{"id": {n}, "text": "{LONG_ENOUGH} {n}"}}\n'.encode() for n in range(2000)]
    data = b"".join(lines)
    # frames cut mid-line, one of them empty, and no newline at the end of the file
    cuts = [0, 17, 17, 40_000, 90_001, len(data) - 1]
    pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
    path = _zstd_frames(tmp_path / "c.jsonl.zst", pieces)
    resource = bm25index(corpus=[{"uri": str(path), "idField": "id"}])
    docs = list(read_shard(resource.spec, 0, 1, SkipCounter()))
    assert [d.id for d in docs] == [str(n) for n in range(2000)]
    assert docs[-1].text == f"{LONG_ENOUGH} 1999"


def test_a_truncated_zstd_file_is_an_error_not_a_short_file(tmp_path: Path) -> None:
    data = b"".join(f'{{"text": "{LONG_ENOUGH} {n}"}}\n'.encode() for n in range(2000))
    path = _zstd_frames(tmp_path / "c.jsonl.zst", [data[:50_000], data[50_000:]])
    path.write_bytes(path.read_bytes()[:-20])
    resource = bm25index(corpus=[{"uri": str(path)}])
    with pytest.raises(CorpusReadError, match="truncated or corrupt"):
        list(read_shard(resource.spec, 0, 1, SkipCounter()))


def test_the_builtin_sample_is_shipped() -> None:
    resource = bm25index(corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst", "idField": "id"}])
    skips = SkipCounter()
    docs = list(read_shard(resource.spec, 0, 1, skips))
    assert len(docs) + skips.total == 10_033
    assert docs[0].id == "wiki-0"


def test_the_dedup_key_set_spills_to_disk_and_still_finds_every_repeat(tmp_path: Path) -> None:
    """At most `memory_keys` keys in memory; the rest in sorted runs on disk, merged so that
    there are about log2(n / memory_keys) of them; answers equal a plain set's."""
    import random

    from litelong.corpus.keyset import SpillingKeySet

    rng = random.Random(0)
    keys = [rng.randrange(-(1 << 63), 1 << 64) for _ in range(3000)]
    stream = keys + rng.sample(keys, 1000) + [rng.randrange(1 << 64) for _ in range(1000)]
    rng.shuffle(stream)
    plain: set[int] = set()
    expected = []
    for key in stream:
        masked = key & ((1 << 64) - 1)
        expected.append(masked not in plain)
        plain.add(masked)
    with SpillingKeySet(memory_keys=64, folder=tmp_path) as seen:
        answers: list[bool] = []
        for start in range(0, len(stream), 100):
            answers += seen.first_seen(stream[start : start + 100])
            assert len(seen._recent) < 64  # spilled once the batch that filled it was answered
        assert answers == expected
        assert len(seen) == len(plain)
        assert 1 <= seen.runs <= 8  # 4,000 keys / 64 in memory: ~62 spills, merged to ≤ log2
        assert list(tmp_path.glob("litelong-keys-*/run-*"))
    assert not list(tmp_path.glob("litelong-keys-*"))  # closed: its files are gone


def test_dedup_finds_repeats_that_spilled_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litelong.corpus import keyset

    monkeypatch.setattr(keyset, "MEMORY_KEYS", 8)
    records: list[object] = [{"id": str(i), "text": f"{LONG_ENOUGH} {i}"} for i in range(100)]
    records += [{"id": f"again-{i}", "text": f"{LONG_ENOUGH} {i}"} for i in range(0, 100, 7)]
    records += [{"id": "3", "text": f"{LONG_ENOUGH} new text, old id"}]
    docs, skips = read(tmp_path, records)
    assert [d.id for d in docs] == [str(i) for i in range(100)]
    assert skips.counts == {"duplicate": 15, "duplicate_id": 1}
