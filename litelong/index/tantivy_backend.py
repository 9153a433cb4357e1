"""The embedded BM25 backend: tantivy indexes on local disk, one per index part.

Each document also gets its ordinal in the part as a numeric fast field, and the part keeps its
ids in `ids.arrow` (memory-mapped when searching): a search turns hits into ids through two
column reads instead of loading every hit's stored document, which matters at topK = 1000.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from ..api.v1alpha1.bm25index import Analysis
from ..corpus import Document, normalize_text
from .retriever import UnknownDocument

if TYPE_CHECKING:
    import tantivy

ANALYZER = "litelong"
_MAX_TOKEN_CHARS = 40  # longer "words" are base64, hashes, URLs: noise for BM25
_GET_BATCH = 512
_IDS_FILE = "ids.arrow"
_TIE_MARGIN = 32
_IDS_SCHEMA = pa.schema([("id", pa.string())])
_IDS_BATCH = 65_536


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


def build_schema() -> tantivy.Schema:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("text", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_integer_field("ord", fast=True)
    return builder.build()


class TantivyPartWriter:
    """Writes one index part; `commit` makes it durable and merges its segments."""

    def __init__(self, folder: Path, analysis: Analysis, heap_mb: int = 512, threads: int = 0):
        import tantivy

        self._index = tantivy.Index(build_schema(), path=str(folder), reuse=False)
        self._index.register_tokenizer(ANALYZER, build_analyzer(analysis))
        self._writer = self._index.writer(heap_mb * 1024 * 1024, threads)
        self._ids = pa.ipc.new_file(str(folder / _IDS_FILE), _IDS_SCHEMA)
        self._pending_ids: list[str] = []
        self.documents = 0

    def add(self, documents: Iterable[Document]) -> None:
        import tantivy

        for document in documents:
            self._writer.add_document(
                tantivy.Document(id=document.id, text=document.text, ord=self.documents)
            )
            self._pending_ids.append(document.id)
            self.documents += 1
            if len(self._pending_ids) == _IDS_BATCH:
                self._flush_ids()

    def _flush_ids(self) -> None:
        self._ids.write_batch(
            pa.record_batch([pa.array(self._pending_ids, pa.string())], schema=_IDS_SCHEMA)
        )
        self._pending_ids = []

    def commit(self) -> None:
        self._flush_ids()
        self._ids.close()
        self._writer.commit()
        self._writer.wait_merging_threads()


class TantivyRetriever:
    """Searches one or more index parts and merges their hits by score."""

    def __init__(self, folders: Sequence[Path], analysis: Analysis) -> None:
        import tantivy

        if not folders:
            raise ValueError("an index needs at least one part")
        self._analyzer = build_analyzer(analysis)
        self._schema = build_schema()
        self._searchers = []
        self._ids: list[pa.ChunkedArray] = []
        for folder in folders:
            index = tantivy.Index.open(str(folder))
            index.register_tokenizer(ANALYZER, self._analyzer)
            self._searchers.append(index.searcher())
            ids_file = pa.ipc.open_file(pa.memory_map(str(folder / _IDS_FILE)))
            self._ids.append(ids_file.read_all().column("id"))

    def _query(self, terms: Iterable[str], field: str) -> tantivy.Query:
        import tantivy

        clauses = [
            (tantivy.Occur.Should, tantivy.Query.term_query(self._schema, field, term))
            for term in terms
        ]
        return tantivy.Query.boolean_query(clauses)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        terms = dict.fromkeys(self._analyzer.analyze(normalize_text(query)))
        if not terms or k <= 0:
            return []
        tantivy_query = self._query(terms, "text")
        hits: list[tuple[str, float]] = []
        # a margin past k, so that documents tied at the cut are chosen by id, not by where
        # tantivy's indexing threads happened to put them
        limit = k + _TIE_MARGIN
        for searcher, ids in zip(self._searchers, self._ids, strict=True):
            found = searcher.search(tantivy_query, limit=limit, count=False).hits
            if not found:
                continue
            ordinals = searcher.fast_field_values("ord", [address for _, address in found])
            names = [str(name) for name in ids.take(pa.array(ordinals, pa.int64())).to_pylist()]
            hits += zip(names, (float(score) for score, _ in found), strict=True)
        if len(self._searchers) == 1:
            return heapq.nsmallest(k, hits, key=lambda hit: (-hit[1], hit[0]))
        # parts of an index partitioned by files may each hold a copy of one document: its
        # best-scoring copy stands for it
        best: dict[str, float] = {}
        for name, score in hits:
            if score > best.get(name, -math.inf):
                best[name] = score
        return heapq.nsmallest(k, best.items(), key=lambda hit: (-hit[1], hit[0]))

    def get(self, ids: Sequence[str]) -> list[str]:
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), _GET_BATCH):
            batch = wanted[start : start + _GET_BATCH]
            query = self._query(batch, "id")
            for searcher in self._searchers:
                for _, address in searcher.search(query, limit=len(batch), count=False).hits:
                    document = searcher.doc(address)
                    found.setdefault(document["id"][0], document["text"][0])
        missing = [identifier for identifier in ids if identifier not in found]
        if missing:
            raise UnknownDocument(f"not in the index: {', '.join(missing[:5])}")
        return [found[identifier] for identifier in ids]

    def count(self) -> int:
        return sum(searcher.num_docs for searcher in self._searchers)

    def document_ids(self) -> Iterator[str]:
        for ids in self._ids:
            for chunk in ids.chunks:
                yield from (str(doc_id) for doc_id in chunk.to_pylist())

    def close(self) -> None:
        self._searchers.clear()
        self._ids.clear()
