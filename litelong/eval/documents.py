"""Documents an evaluation reads: haystack filler, the topical haystack, long documents for
perplexity. Files are read as the BM25Index reads a corpus (JSONL plain/.gz/.zst or Parquet,
`textField`), and the topical haystack is retrieved from a committed index."""

from __future__ import annotations

from ..api.v1alpha1.bm25index import CorpusSource
from ..store import ArtifactStore


def read_texts(source: CorpusSource, limit: int | None = None) -> list[str]:
    """The texts of a source's files in file order; unusable records are skipped."""
    from ..corpus.records import read_records
    from ..corpus.skips import SkipCounter
    from ..corpus.sources import resolve

    texts: list[str] = []
    skips = SkipCounter()
    for file in resolve(source):
        for _, _, text in read_records(file, skips):
            if text.strip():
                texts.append(text)
            if limit is not None and len(texts) >= limit:
                return texts
    return texts


def retrieve(store: ArtifactStore, index_ref: str, query: str, k: int) -> list[str]:
    """The `k` best BM25 documents for `query` in a committed BM25Index, best first."""
    from ..index import open_index

    retriever = open_index(store.latest_committed("BM25Index", index_ref))
    try:
        ids = [doc_id for doc_id, _ in retriever.search(query, k)]
        return retriever.get(ids)
    finally:
        retriever.close()
