"""The embedded BM25 backend: tantivy indexes on local disk, one per index part.

Each document also gets its ordinal in the part as a numeric fast field, and the part keeps its
ids in `ids.arrow` (memory-mapped when searching): a search turns hits into ids through two
column reads instead of loading every hit's stored document, which matters at topK = 1000.
`ids.arrow` also holds each text's length in characters (`chars`), read the same way, so a
synthesis can tell a document it may not use from its length without reading its text (an
index written before that column has none: its lengths are unknown, `None`).

`get` finds texts by id through `key`, an indexed integer (the CRC-32 of the id), not through
the id itself: random content-hash ids made tantivy's term dictionary (an FST) the one part of
a build that grew faster than the documents (bench/README.md). Keys may collide, so a hit's
ordinal is checked against `ids.arrow` before its text is read. A part written before keys
indexes the id as text (`_ID_LAYOUT`) and is searched that way.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import threading
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..api.v1alpha1.bm25index import Analysis
from ..corpus import Document, normalize_text
from .retriever import UnknownDocument, rarest_terms

if TYPE_CHECKING:
    import tantivy

ANALYZER = "litelong"
_MAX_TOKEN_CHARS = 40  # longer "words" are base64, hashes, URLs: noise for BM25
_GET_BATCH = 512
_IDS_FILE = "ids.arrow"
_TIE_MARGIN = 32
_ID_LAYOUT = "id"  # parts written before `key`: the id indexed as a raw text term
_KEY_MARGIN = 16  # hits `get` asks for past one an id, for ids sharing a key
_IDS_FIELDS: list[pa.Field[Any]] = [pa.field("id", pa.string()), pa.field("chars", pa.int64())]
_IDS_SCHEMA = pa.schema(_IDS_FIELDS)
_IDS_BATCH = 65_536
_SCALAR_TAKE = 64  # ids at most read one by one (`_take`)
# Searches whose hits share one `fast_field_values` call (`_search_batch`): a batch keeps the
# maps it started with to its end, so a re-map (`_read`) lets go of the old pages only after
# at most this many searches; at 10.6M chunks the shared call costs ~0.06 ms a search.
_SEARCH_BATCH = 16
# The index's mapped pages a retriever lets stay resident before it maps its files afresh
# (`TantivyRetriever._read`), measured where the OS says (Linux: /proc/self/statm); elsewhere
# estimated by weighing reads in KB of pages they may touch: a text fetched about one compressed
# store block (32), a search its terms' postings (256), an id read by ordinal a page of ids (4).
MAPPED_BUDGET_MB = 256
_REMAP_READS = 65_536
_TEXT_WEIGHT = 32
_SEARCH_WEIGHT = 256
_ID_WEIGHT = 4
# Weighted reads (KB) between two measurements of the mapped pages: reading /proc costs ~15 µs,
# a tenth of a negative's search at 1M chunks when measured at every one; the budget may be
# overshot by what the reads between two measurements touch. Every 32 searches (8,192) let a 5M
# nextlong run's file-backed pages peak 300 MB above measuring at each (1,192 against 900 MiB,
# 1.52x the 1M run's RSS; bench/README.md, fifth run); every 4 searches costs ~4 µs a search.
_MEASURE_EVERY = 1024
# Terms whose document frequency a retriever remembers (`_doc_freq`); past it the memory is
# cleared: a few MB, however large the vocabulary a run's reduced queries touch.
_DOC_FREQ_CACHE = 131_072
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def mapped_bytes() -> int | None:
    """Bytes of file-backed (and shared) pages resident in this process: what the index's
    memory maps add to its RSS. None where the OS does not say (no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[2]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def build_analyzer(analysis: Analysis) -> tantivy.TextAnalyzer:
    """Lowercase, long-token removal, then English stop words and Snowball stemming as asked."""
    import tantivy

    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(_MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
    )
    if analysis.stopwords:
        builder = builder.filter(tantivy.Filter.stopword(analysis.language))
    if analysis.stem:
        builder = builder.filter(tantivy.Filter.stemmer(analysis.language))
    return builder.build()


def build_schema(layout: str = "key") -> tantivy.Schema:
    """The part's schema: `key` (what `get` searches) and the text; `_ID_LAYOUT` is the
    schema of parts written before keys, whose ids were indexed and stored as text."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    if layout == _ID_LAYOUT:
        builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    else:
        builder.add_integer_field("key", indexed=True)
    builder.add_text_field("text", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_integer_field("ord", fast=True)
    return builder.build()


def id_key(doc_id: str) -> int:
    """The indexed key of an id: its CRC-32, 32 bits spread evenly whatever the ids look
    like (content digests, URLs, counters). Two ids of a part share a key about once in 4
    billion pairs; `get` tells them apart by the ids in `ids.arrow`."""
    return zlib.crc32(doc_id.encode())


def part_layout(folder: Path) -> str:
    """`_ID_LAYOUT` for a part written before keys (its schema has an `id` field), else "key"."""
    with open(folder / "meta.json", "rb") as meta:
        fields = {field["name"] for field in json.load(meta)["schema"]}
    return _ID_LAYOUT if "id" in fields else "key"


class TantivyPartWriter:
    """Writes one index part; `commit` makes it durable and merges its segments."""

    def __init__(self, folder: Path, analysis: Analysis, heap_mb: int = 512, threads: int = 0):
        import tantivy

        self._index = tantivy.Index(build_schema(), path=str(folder), reuse=False)
        self._index.register_tokenizer(ANALYZER, build_analyzer(analysis))
        self._writer = self._index.writer(heap_mb * 1024 * 1024, threads)
        self._ids = pa.ipc.new_file(str(folder / _IDS_FILE), _IDS_SCHEMA)
        self._pending_ids: list[str] = []
        self._pending_chars: list[int] = []
        self.documents = 0

    def add(self, documents: Iterable[Document]) -> None:
        """Add documents in order."""
        ids: list[str] = []
        texts: list[str] = []
        for document in documents:
            ids.append(document.id)
            texts.append(document.text)
        self.add_columns(ids, texts)

    def add_columns(self, ids: list[str], texts: list[str]) -> None:
        """Add documents in order, given as columns (a batch: the loop looks up its callables
        once, and the ids file takes the batch's ids and lengths in two list extensions)."""
        import tantivy

        make, add_document, crc32 = tantivy.Document, self._writer.add_document, zlib.crc32
        ordinal = self.documents
        for doc_id, text in zip(ids, texts, strict=True):
            add_document(make(key=crc32(doc_id.encode()), text=text, ord=ordinal))  # `id_key`
            ordinal += 1
        self.documents = ordinal
        self._pending_ids += ids
        self._pending_chars += map(len, texts)
        while len(self._pending_ids) >= _IDS_BATCH:
            self._flush_ids()

    def _flush_ids(self) -> None:
        """Write up to `_IDS_BATCH` pending ids as one record batch of `ids.arrow`."""
        ids, chars = self._pending_ids[:_IDS_BATCH], self._pending_chars[:_IDS_BATCH]
        columns = [_string_array(ids), _int_array(chars)]
        self._ids.write_batch(pa.record_batch(columns, schema=_IDS_SCHEMA))
        del self._pending_ids[:_IDS_BATCH], self._pending_chars[:_IDS_BATCH]

    def commit(self) -> None:
        self._flush_ids()  # the rest (fewer than a batch; maybe none)
        self._ids.close()
        self._writer.commit()
        self._writer.wait_merging_threads()


def _string_array(values: list[str]) -> pa.Array:
    """`pa.array(values, pa.string())`, built from its buffers: the first `pa.array` of a
    list in a process imports pandas (0.3 s of an index build, bench/README.md)."""
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(value) for value in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.LargeStringArray.from_buffers(
        len(values), pa.py_buffer(offsets.tobytes()), data
    ).cast(pa.string())


def _int_array(values: list[int]) -> pa.Array:
    """An int64 array from its buffer (as `_string_array`, without importing pandas)."""
    data = pa.py_buffer(np.asarray(values, np.int64).tobytes())
    return pa.Array.from_buffers(pa.int64(), len(values), [None, data])


class _Lengths:
    """A part's `chars` column as memory-mapped numpy views, one per record batch: reading a
    length touches its page only, nothing is copied."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self._chunks = [  # from the buffer: `to_numpy` imports pandas
            np.frombuffer(chunk.buffers()[1], np.int64, len(chunk), chunk.offset * 8)  # type: ignore[call-overload]
            if len(chunk)
            else np.zeros(0, np.int64)
            for chunk in column.chunks
        ]
        self._starts = np.cumsum([0] + [len(chunk) for chunk in self._chunks], dtype=np.int64)

    def take(self, ordinals: np.ndarray) -> list[int]:
        """Fancy indexing per record batch, not a Python call per length: a search's 1,032
        lengths in ~40 against ~400 us."""
        ordinals = np.asarray(ordinals, np.int64)
        if len(self._chunks) == 1:
            return self._chunks[0][ordinals].tolist()
        chunks = np.searchsorted(self._starts, ordinals, side="right") - 1
        order = np.argsort(chunks, kind="stable")  # the ordinals grouped by record batch
        ends = np.searchsorted(chunks[order], np.arange(len(self._chunks)), side="right")
        found = np.empty(len(ordinals), np.int64)
        begin = 0
        for chunk, end in enumerate(ends.tolist()):
            if end > begin:
                rows = order[begin:end]
                found[rows] = self._chunks[chunk][ordinals[rows] - self._starts[chunk]]
            begin = end
        return found.tolist()


class _IdColumn:
    """A part's `id` column read an id at a time from its buffers (memory-mapped, nothing
    copied): 0.26 against 0.8 µs for a `ChunkedArray` scalar, which `get` pays for every hit."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self._column = column
        self._chunks: list[tuple[np.ndarray, memoryview]] = []
        starts = [0]
        if column.type == pa.string():
            for chunk in column.chunks:
                _, offsets, data = chunk.buffers()
                count = len(chunk)
                view = np.frombuffer(offsets, np.int32, count + 1, chunk.offset * 4)  # type: ignore[call-overload]
                self._chunks.append(
                    (view, memoryview(data) if data is not None else memoryview(b""))
                )
                starts.append(starts[-1] + count)
        self._starts = starts

    def at(self, ordinal: int) -> str:
        if not self._chunks:  # another string type: by scalar
            return str(self._column[ordinal].as_py())
        number = bisect_right(self._starts, ordinal) - 1
        offsets, data = self._chunks[number]
        local = ordinal - self._starts[number]
        return str(data[offsets[local] : offsets[local + 1]], "utf-8")


def _take(ids: pa.ChunkedArray, ordinals: np.ndarray) -> list[str]:
    """`ids[ordinals]`, chunk by chunk: `ChunkedArray.take` concatenates every chunk first,
    which costs the whole column (28 ms a call at 400K ids, growing with the index); taking
    from each chunk costs only the ids asked for. A search's few dozen ids are read one by
    one: 0.1 ms against 2.9 ms for a take from each of 33 chunks (2.1M ids)."""
    if len(ordinals) <= _SCALAR_TAKE:
        return [str(ids[int(ordinal)].as_py()) for ordinal in ordinals]
    if ids.num_chunks == 1:
        return [str(i) for i in ids.chunk(0).take(pa.array(ordinals, pa.int64())).to_pylist()]
    starts = np.cumsum([0] + [len(chunk) for chunk in ids.chunks], dtype=np.int64)
    chunks = np.searchsorted(starts, ordinals, side="right") - 1
    found = np.empty(len(ordinals), dtype=object)
    for number in np.unique(chunks):
        rows = np.flatnonzero(chunks == number)
        local = pa.array(ordinals[rows] - starts[number], pa.int64())
        found[rows] = ids.chunk(int(number)).take(local).to_pylist()
    return [str(doc_id) for doc_id in found]


class TantivyRetriever:
    """Searches one or more index parts and merges their hits by score."""

    def __init__(self, folders: Sequence[Path], analysis: Analysis) -> None:

        if not folders:
            raise ValueError("an index needs at least one part")
        self._analyzer = build_analyzer(analysis)
        self._folders = list(folders)
        self._layouts = [part_layout(folder) for folder in self._folders]
        self._schemas = {layout: build_schema(layout) for layout in set(self._layouts)}
        self._searchers: list[tantivy.Searcher] = []
        self._ids: list[pa.ChunkedArray] = []
        self._id_columns: list[_IdColumn] = []
        self._lengths: list[_Lengths | None] = []  # None: a part written before `chars`
        self._reads = 0  # weighted reads since the files were mapped (`_read`)
        self._measured = 0  # `_reads` when the mapped pages were last measured
        self._floor: int | None = None  # fewest mapped bytes seen since then
        self._doc_freqs: dict[str, int] = {}  # term → documents holding it, every part
        self._last = threading.local()  # each thread's last query and its terms (`_terms`)
        self._open()
        self._starts = np.cumsum([0] + [len(ids) for ids in self._ids], dtype=np.int64)

    def _open(self) -> None:
        """Map the parts' files afresh: the old maps go when their last reader lets go."""
        import tantivy

        searchers, ids, lengths = [], [], []
        for folder in self._folders:
            index = tantivy.Index.open(str(folder))
            index.register_tokenizer(ANALYZER, self._analyzer)
            searchers.append(index.searcher())
            table = pa.ipc.open_file(pa.memory_map(str(folder / _IDS_FILE))).read_all()
            ids.append(table.column("id"))
            has = "chars" in table.column_names
            lengths.append(_Lengths(table.column("chars")) if has else None)
        self._searchers, self._ids, self._lengths = searchers, ids, lengths
        self._id_columns = [_IdColumn(column) for column in ids]
        self._reads = self._measured = 0
        self._floor = mapped_bytes()

    def _read(self, weight: int) -> None:
        """Map the files afresh once the pages this process keeps resident from its maps have
        grown by MAPPED_BUDGET_MB since they were mapped (or, where that cannot be measured,
        past `_REMAP_READS` weighted reads). The pages a process touches in a map stay in its
        RSS (file-backed, reclaimable, but counted in RSS and in a cgroup's usage) until it is
        unmapped: the postings a run's searches read and the store blocks its texts come from
        would grow it towards the size of the index's files (1.2 GB at 5M documents,
        bench/README.md). Re-mapping costs a few milliseconds; the pages stay in page cache.
        The pages are measured once per `_MEASURE_EVERY` KB of weighted reads."""
        self._reads += weight
        if self._reads - self._measured < _MEASURE_EVERY and self._floor is not None:
            return
        self._measured = self._reads
        mapped = mapped_bytes()
        if mapped is None or self._floor is None:
            if self._reads >= _REMAP_READS:
                self._open()
            return
        self._floor = min(self._floor, mapped)  # maps other threads held have gone since
        if mapped - self._floor > MAPPED_BUDGET_MB * 1024 * 1024:
            self._open()

    def _query(self, layout: str, terms: Iterable[str | int], field: str) -> tantivy.Query:
        """A query on parts of `layout` (a query names its fields by their place in a
        schema, and the layouts place `text` alike only by chance)."""
        import tantivy

        schema = self._schemas[layout]
        clauses = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, field, term)) for term in terms
        ]
        return tantivy.Query.boolean_query(clauses)

    def _doc_freq(self, term: str) -> int:
        """Documents of every part holding `term` in the text field (the index is immutable,
        so the answer is remembered)."""
        found = self._doc_freqs.get(term)
        if found is None:
            found = sum(searcher.doc_freq("text", term) for searcher in self._searchers)
            if len(self._doc_freqs) >= _DOC_FREQ_CACHE:
                self._doc_freqs.clear()
            self._doc_freqs[term] = found
        return found

    def _terms(self, query: str, max_terms: int | None, max_postings: int | None) -> list[str]:
        """The query's distinct analysed terms; with `max_terms`, its rarest in the index
        (fewest documents, so highest IDF; ties: more frequent in the query, then
        alphabetical) within `max_postings` (`rarest_terms`), leaving out terms no document
        holds. A thread's last answer is remembered: a query asked again at once with a wider
        `k` is not analysed again (mode nextlong's second search of a meta-chunk, where it
        was the last of its `search_many` batch; others are analysed again, which is rare)."""
        asked = (query, max_terms, max_postings)
        last = getattr(self._last, "query", None)
        if last is not None and last[0] == asked:
            return list(last[1])
        analysed = self._analyzer.analyze(normalize_text(query))
        if max_terms is None or (max_postings is None and len(set(analysed)) <= max_terms):
            terms = list(dict.fromkeys(analysed))
        else:
            ranked = []
            for term, count in Counter(analysed).items():
                documents = self._doc_freq(term)
                if documents:
                    ranked.append((documents, -count, term))
            terms = rarest_terms(ranked, max_terms, max_postings)
        self._last.query = (asked, tuple(terms))
        return terms

    def search(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float]]:
        hits = self._search_many([query], k, max_terms, max_postings)[0]
        return [(doc_id, score) for doc_id, score, _ in hits]

    def search_lengths(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float, int | None]]:
        return self._search_many([query], k, max_terms, max_postings)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int,
        max_terms: int | None = None,
        max_postings: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        found = self._search_many(queries, k, max_terms, max_postings)
        return [[(doc_id, score) for doc_id, score, _ in hits] for hits in found]

    def _search_many(
        self, queries: Sequence[str], k: int, max_terms: int | None, max_postings: int | None
    ) -> list[list[tuple[str, float, int | None]]]:
        """Each query's best `k`, `_SEARCH_BATCH` queries at a time (`_search_batch`)."""
        found: list[list[tuple[str, float, int | None]]] = []
        for start in range(0, len(queries), _SEARCH_BATCH):
            batch = queries[start : start + _SEARCH_BATCH]
            found += self._search_batch(batch, k, max_terms, max_postings)
        return found

    def _search_batch(
        self, queries: Sequence[str], k: int, max_terms: int | None, max_postings: int | None
    ) -> list[list[tuple[str, float, int | None]]]:
        """Each query's best `k`. A part's hits are turned into ordinals by one
        `fast_field_values` call for all the queries: tantivy-py opens the `ord` column of
        every segment at each call, which costs ~0.9 ms at 10.6M chunks whatever the hits
        asked (0.07 ms at 2.1M), a third of a negative's search there (bench/README.md,
        "nextlong: search cost at scale"). Only hits scoring at least a query's k-th best in
        its part are read: none below it can be among the k best."""
        terms = [self._terms(query, max_terms, max_postings) for query in queries]
        found: list[list[tuple[str, float, int | None]]] = [[] for _ in queries]
        if k <= 0 or not any(terms):
            return found
        # a margin past k, so that documents tied at the cut are chosen by id, not by where
        # tantivy's indexing threads happened to put them
        limit = k + _TIE_MARGIN
        # this call's maps, whatever `_read` does meanwhile
        parts = list(
            zip(
                self._searchers,
                self._ids,
                self._id_columns,
                self._lengths,
                self._layouts,
                strict=True,
            )
        )
        for searcher, ids, column, lengths, layout in parts:
            owners: list[int] = []
            scores: list[float] = []
            addresses = []
            for number, kept in enumerate(terms):
                if not kept:
                    continue
                query = self._query(layout, kept, "text")
                hits = searcher.search(query, limit=limit, count=False).hits
                self._read(_SEARCH_WEIGHT)
                if len(hits) > k:
                    cut = sorted((score for score, _ in hits), reverse=True)[k - 1]
                    hits = [hit for hit in hits if hit[0] >= cut]
                owners += [number] * len(hits)
                scores += [float(score) for score, _ in hits]
                addresses += [address for _, address in hits]
            if not addresses:
                continue
            ordinals = np.asarray(searcher.fast_field_values("ord", addresses), np.int64)
            # a few dozen ids a query from the buffers: a third of a scalar's cost
            if len(ordinals) <= _SCALAR_TAKE * len(queries):
                names = [column.at(ordinal) for ordinal in ordinals.tolist()]
            else:
                names = _take(ids, ordinals)
            chars = lengths.take(ordinals) if lengths else [None] * len(names)
            for owner, hit in zip(owners, zip(names, scores, chars, strict=True), strict=True):
                found[owner].append(hit)
        return [self._best(hits, k) for hits in found]

    def _best(
        self, hits: list[tuple[str, float, int | None]], k: int
    ) -> list[tuple[str, float, int | None]]:
        if len(self._searchers) == 1:  # k of at most k + margin: a sort beats a heap of k
            # by (-score, id) in two stable sorts keyed in C: 0.12 against 0.28 ms a lambda
            hits.sort(key=itemgetter(0))
            hits.sort(key=itemgetter(1), reverse=True)
            return hits[:k]
        # parts of an index partitioned by files may each hold a copy of one document: its
        # best-scoring copy stands for it
        best: dict[str, tuple[str, float, int | None]] = {}
        for hit in hits:
            if hit[1] > best.get(hit[0], ("", -math.inf))[1]:
                best[hit[0]] = hit
        return heapq.nsmallest(k, best.values(), key=lambda hit: (-hit[1], hit[0]))

    def get(self, ids: Sequence[str]) -> list[str]:
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(ids))
        # this call's maps, whatever `_read` does meanwhile
        parts = list(zip(self._searchers, self._id_columns, self._layouts, strict=True))
        for start in range(0, len(wanted), _GET_BATCH):
            batch = wanted[start : start + _GET_BATCH]
            for searcher, names, layout in parts:
                if layout == _ID_LAYOUT:
                    self._get_by_id(searcher, batch, found)
                    continue
                asked = [doc_id for doc_id in batch if doc_id not in found]
                if asked:
                    self._get_by_key(searcher, names, asked, found)
        self._read(_TEXT_WEIGHT * len(wanted))
        missing = [identifier for identifier in ids if identifier not in found]
        if missing:
            raise UnknownDocument(f"not in the index: {', '.join(missing[:5])}")
        return [found[identifier] for identifier in ids]

    def _get_by_key(
        self,
        searcher: tantivy.Searcher,
        names: _IdColumn,
        asked: list[str],
        found: dict[str, str],
    ) -> None:
        """Texts of `asked` in one part: the documents holding their keys, less those whose id
        (read by ordinal from `ids.arrow`) is another that shares a key. The search asks for a
        margin past one hit an id, and again for more while it comes back full."""

        # one term query a key: a term set query walks the term dictionary (2x the CPU here)
        query = self._query("key", dict.fromkeys(map(id_key, asked)), "key")
        limit = len(asked) + _KEY_MARGIN
        while True:
            hits = searcher.search(query, limit=limit, count=False).hits
            if len(hits) < limit:
                break
            limit *= 2
        if not hits:
            return
        addresses = [address for _, address in hits]
        wanted, name_at = set(asked), names.at
        ordinals = searcher.fast_field_values("ord", addresses)
        for ordinal, address in zip(ordinals, addresses, strict=True):
            name = name_at(int(ordinal))  # type: ignore[arg-type]
            if name in wanted and name not in found:
                found[name] = str(searcher.doc(address).get_first("text"))

    def _get_by_id(
        self, searcher: tantivy.Searcher, batch: list[str], found: dict[str, str]
    ) -> None:
        """Texts of `batch` in a part written before keys: its ids are indexed terms."""
        query = self._query(_ID_LAYOUT, batch, "id")
        for _, address in searcher.search(query, limit=len(batch), count=False).hits:
            document = searcher.doc(address)
            found.setdefault(document["id"][0], document["text"][0])

    def count(self) -> int:
        return sum(searcher.num_docs for searcher in self._searchers)

    def document_ids(self) -> Iterator[str]:
        for ids in self._ids:
            for chunk in ids.chunks:
                yield from (str(doc_id) for doc_id in chunk.to_pylist())

    def ids_at(self, ordinals: Sequence[int]) -> list[str]:
        """Read from the memory-mapped `ids.arrow` columns: only the pages holding the asked
        ids are touched."""
        wanted = np.asarray(ordinals, dtype=np.int64)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self._starts[-1]):
            raise IndexError(f"ordinals must lie in [0, {int(self._starts[-1])})")
        parts = np.searchsorted(self._starts, wanted, side="right") - 1
        found = np.empty(len(wanted), dtype=object)
        columns = self._ids
        for part in np.unique(parts):
            rows = np.flatnonzero(parts == part)
            found[rows] = _take(columns[part], wanted[rows] - self._starts[part])
        self._read(_ID_WEIGHT * len(wanted))
        return [str(doc_id) for doc_id in found]

    def lengths_at(self, ordinals: Sequence[int]) -> list[int | None]:
        wanted = np.asarray(ordinals, dtype=np.int64)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self._starts[-1]):
            raise IndexError(f"ordinals must lie in [0, {int(self._starts[-1])})")
        parts = np.searchsorted(self._starts, wanted, side="right") - 1
        found: list[int | None] = [None] * len(wanted)
        for part in np.unique(parts).tolist():
            lengths = self._lengths[part]
            if lengths is None:
                continue
            rows = np.flatnonzero(parts == part)
            taken = lengths.take(wanted[rows] - self._starts[part])
            for row, length in zip(rows.tolist(), taken, strict=True):
                found[row] = length
        self._read(_ID_WEIGHT * len(wanted))
        return found

    def close(self) -> None:
        self._searchers = []
        self._ids = []
        self._id_columns = []
        self._lengths = []
