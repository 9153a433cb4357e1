"""The report of a SynthesisRun: figures, plots and topical coherence, as HTML and JSON.

Each part's `metadata.parquet` is read one record batch at a time; what is kept is a few scalars
per sample, a use count per document and the few samples chosen for coherence, so a report of a
large dataset needs no more memory than its document-id counter.

Topical coherence (the number that says whether topic retrieval did its job):

    For a sample, take up to 16 of its distinct documents (those ranked first by blake2b of the
    seed, the sample id and the document id). Query the index with the first 64 words of each
    one's text and take its top 20 hits other than itself; the document scores the share of
    those hits that are documents of the same sample (over the hits there are when fewer than 20
    come back; 0 when none do). A sample's coherence is the mean over its chosen documents, the
    dataset's the mean over up to 200 samples (those ranked first by blake2b of the seed and the
    sample id). Documents the index no longer holds are left out and counted.

    Baseline: the same measure on random samples with the same numbers of distinct documents,
    drawn uniformly (seeded) from the index's documents (`Retriever.document_ids`, what mode
    `standard` samples from): what the paper's `standard` random concatenation scores on the
    same corpus.
"""

from __future__ import annotations

import hashlib
import heapq
import html
import itertools
import json
import random
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..api.v1alpha1 import SynthesisRunSpec
from ..index import Retriever, UnknownDocument
from ..store import Artifact

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METADATA = "metadata.parquet"
COLUMNS = ("id", "heading", "num_tokens", "doc_ids", "starts", "ends", "truncated", "roles")
QUERY_DOCS = 16
QUERY_WORDS = 64
TOP_HITS = 20
MAX_SAMPLES = 200
TOP_HEADINGS = 25
_BATCH_ROWS = 8192
_LENGTH_BINS = 40
_MAX_BARS = 50


def coherence_definition(max_samples: int = MAX_SAMPLES) -> str:
    """The definition printed in the report, in the words of the module docstring."""
    return (
        f"For a sample, up to {QUERY_DOCS} of its distinct documents (a seeded choice) each query "
        f"the index with the first {QUERY_WORDS} words of their text; a document scores the share "
        f"of its top {TOP_HITS} hits other than itself that are documents of the same sample (over "
        "the hits there are when fewer come back). A sample's coherence is the mean over its "
        f"queried documents, the dataset's the mean over up to {max_samples} seeded samples. The "
        "baseline is the same measure on random samples with the same document counts, drawn "
        "uniformly (seeded) from the index's documents: what the paper's standard random "
        "concatenation scores on the same corpus."
    )


class UnreadableMetadata(RuntimeError):
    """A part's metadata.parquet is missing or lacks the columns the report reads."""


@dataclass(frozen=True)
class ReportSummary:
    """Where the report was written and every figure in it (the content of report.json)."""

    out: Path
    html: Path
    json: Path
    plots: dict[str, Path]
    figures: dict[str, Any]

    def key_figures(self) -> list[tuple[str, str]]:
        """The figures a reader looks at first, as (label, value) rows: the HTML table and the
        CLI print the same ones."""
        return _key_figures(self.figures)


def write_report(
    artifact: Artifact,
    retriever: Retriever | None,
    out: Path,
    *,
    seed: int = 0,
    max_samples: int = MAX_SAMPLES,
    no_retriever_reason: str = "no index was given",
) -> ReportSummary:
    """Write `report.html`, `report.json` and `plots/*.png` of a committed SynthesisRun to `out`.

    Raises NotCommitted for an uncommitted artifact and UnreadableMetadata for a part without
    a usable metadata.parquet. Without a retriever, coherence is skipped and the report says
    why (`no_retriever_reason`).
    """
    manifest = artifact.manifest()
    spec = SynthesisRunSpec.model_validate(manifest.spec)
    tally = _Tally(spec.target_tokens, seed, max_samples)
    for part in manifest.parts:
        for batch in _batches(artifact.local_part(part) / METADATA, part.name):
            tally.add(batch)
    coherence = (
        _coherence(retriever, tally.chosen_samples(), seed)
        if retriever is not None
        else {"dataset": None, "baseline": None, "skipped": no_retriever_reason}
    )
    coherence["definition"] = coherence_definition(max_samples)
    figures = {
        "kind": artifact.kind,
        "name": artifact.name,
        "spec_hash": artifact.spec_hash,
        "uri": artifact.uri,
        "spec": manifest.spec,
        **tally.figures(),
        "coherence": coherence,
        "manifest": {"counts": manifest.counts, "skipped": manifest.skipped},
    }
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots, figures["plots"] = {}, {}
    for name, caption, draw in _plot_specs(tally, figures):
        plots[name] = out / "plots" / f"{name}.png"
        _save_plot(plots[name], draw)
        figures["plots"][name] = {"file": f"plots/{name}.png", "caption": caption}
    json_path = out / "report.json"
    json_path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    html_path = out / "report.html"
    html_path.write_text(_html(figures), encoding="utf-8")
    return ReportSummary(out, html_path, json_path, plots, figures)


# -- reading ---------------------------------------------------------------------------------


def _batches(path: Path, part: str) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnreadableMetadata(f"{part}: cannot read {METADATA}: {exc}") from exc
    missing = [name for name in COLUMNS if name not in parquet.schema_arrow.names]
    if missing:
        raise UnreadableMetadata(f"{part}/{METADATA} lacks column(s) {', '.join(missing)}")
    yield from parquet.iter_batches(batch_size=_BATCH_ROWS, columns=list(COLUMNS))


def _rank(*keys: object) -> int:
    text = ":".join(str(key) for key in keys)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass
class _Tally:
    """Everything the report keeps while streaming the metadata."""

    target: int
    seed: int
    max_samples: int
    tokens: array[int] = field(default_factory=lambda: array("q"))
    docs: array[int] = field(default_factory=lambda: array("q"))
    headings: Counter[str] = field(default_factory=Counter)
    roles: Counter[str] = field(default_factory=Counter)
    uses: Counter[str] = field(default_factory=Counter)
    #: a max-heap on rank (negated) of the samples ranked first: (-rank, id, distinct doc ids)
    _chosen: list[tuple[int, str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        top = max(self.target, 2)
        self.edges = np.unique(np.geomspace(1, top + 1, _LENGTH_BINS + 1).round().astype(np.int64))
        self.full_lengths = np.zeros(len(self.edges) - 1, np.int64)
        self.truncated_lengths = np.zeros(len(self.edges) - 1, np.int64)
        self.span_tokens = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.tokens.extend(batch.column("num_tokens").to_numpy(zero_copy_only=False).tolist())
        doc_ids = batch.column("doc_ids")
        self.docs.extend(pc.list_value_length(doc_ids).to_numpy(zero_copy_only=False).tolist())
        self.headings.update(h or "(no heading)" for h in batch.column("heading").to_pylist())
        self.roles.update(str(role) for role in pc.list_flatten(batch.column("roles")).to_pylist())
        starts = pc.list_flatten(batch.column("starts")).to_numpy(zero_copy_only=False)
        ends = pc.list_flatten(batch.column("ends")).to_numpy(zero_copy_only=False)
        lengths = ends.astype(np.int64) - starts
        self.span_tokens += int(lengths.sum())
        lengths = np.clip(lengths, 1, self.edges[-1] - 1)
        truncated = pc.list_flatten(batch.column("truncated")).to_numpy(zero_copy_only=False)
        self.full_lengths += np.histogram(lengths[~truncated], self.edges)[0]
        self.truncated_lengths += np.histogram(lengths[truncated], self.edges)[0]
        for sample_id, ids in zip(batch.column("id").to_pylist(), doc_ids.to_pylist(), strict=True):
            distinct: list[str] = list(dict.fromkeys(ids or ()))
            self.uses.update(distinct)
            self._choose(str(sample_id), distinct)

    def _choose(self, sample_id: str, doc_ids: list[str]) -> None:
        """Keep the `max_samples` samples ranked first: the same choice however many parts."""
        if self.max_samples <= 0:
            return
        entry = (-_rank(self.seed, sample_id), sample_id, doc_ids)
        if len(self._chosen) < self.max_samples:
            heapq.heappush(self._chosen, entry)
        elif entry > self._chosen[0]:
            heapq.heapreplace(self._chosen, entry)

    def chosen_samples(self) -> list[tuple[str, list[str]]]:
        return [(sample_id, ids) for _, sample_id, ids in sorted(self._chosen, reverse=True)]

    def figures(self) -> dict[str, Any]:
        tokens = np.asarray(self.tokens, np.int64)
        spans = int(self.full_lengths.sum() + self.truncated_lengths.sum())
        uses = self.uses
        by_uses = Counter(uses.values())
        return {
            "samples": len(tokens),
            "tokens": {
                "target": self.target,
                "total": int(tokens.sum()),
                **_spread(tokens),
                "off_target": int((tokens != self.target).sum()),
            },
            "documents_per_sample": _spread(np.asarray(self.docs, np.int64)),
            "document_tokens": {
                "spans": spans,
                "truncated": int(self.truncated_lengths.sum()),
                "mean": _ratio(self.span_tokens, spans),
                "bin_edges": self.edges.tolist(),
                "whole_by_bin": self.full_lengths.tolist(),
                "truncated_by_bin": self.truncated_lengths.tolist(),
            },
            "headings": dict(self.headings.most_common()),
            "roles": dict(self.roles.most_common()),
            "reuse": {
                "documents": len(uses),
                "max_uses": max(uses.values(), default=0),
                "mean_uses": _ratio(uses.total(), len(uses)),
                "reused_share": _ratio(len(uses) - by_uses[1], len(uses)),
                "documents_by_uses": {str(n): by_uses[n] for n in sorted(by_uses)},
            },
        }


def _spread(values: np.ndarray) -> dict[str, int | float | None]:
    if not len(values):
        return {"min": None, "max": None, "mean": None, "median": None}
    return {
        "min": int(values.min()),
        "max": int(values.max()),
        "mean": round(float(values.mean()), 4),
        "median": float(np.median(values)),
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- coherence -------------------------------------------------------------------------------


def _coherence(
    retriever: Retriever, samples: list[tuple[str, list[str]]], seed: int
) -> dict[str, Any]:
    """The dataset's coherence and the baseline's, as the module docstring defines them."""
    rng = random.Random(seed)
    pool = _random_documents(retriever, sum(len(ids) for _, ids in samples), rng)
    tally: dict[str, Any] = {"queries": 0, "missing_documents": 0}
    dataset, baseline = [], []
    for sample_id, doc_ids in samples:
        own = _sample_coherence(retriever, sample_id, doc_ids, seed, tally)
        drawn = rng.sample(pool, min(len(doc_ids), len(pool)))
        other = _sample_coherence(retriever, f"baseline/{sample_id}", drawn, seed, tally)
        if own is not None:
            dataset.append(own)
        if other is not None:
            baseline.append(other)
    return {
        "dataset": round(float(np.mean(dataset)), 4) if dataset else None,
        "baseline": round(float(np.mean(baseline)), 4) if baseline else None,
        "samples": len(dataset),
        "baseline_samples": len(baseline),
        "index_documents": retriever.count(),
        **tally,
        "skipped": None,
    }


def _random_documents(retriever: Retriever, how_many: int, rng: random.Random) -> list[str]:
    """`how_many` distinct ids drawn uniformly from the index (all when it holds fewer), in one
    pass over its ids: a random subset of this pool is a random subset of the index."""
    total = retriever.count()
    wanted = set(rng.sample(range(total), min(how_many, total)))
    ids = itertools.islice(retriever.document_ids(), max(wanted, default=-1) + 1)
    return [doc_id for position, doc_id in enumerate(ids) if position in wanted]


def _sample_coherence(
    retriever: Retriever, key: str, doc_ids: list[str], seed: int, tally: dict[str, Any]
) -> float | None:
    members = set(doc_ids)
    queried = sorted(members, key=lambda doc_id: _rank(seed, key, doc_id))[:QUERY_DOCS]
    texts = _texts(retriever, queried)
    tally["missing_documents"] += len(queried) - len(texts)
    scores = []
    for doc_id, text in texts.items():
        query = " ".join(text.split()[:QUERY_WORDS])
        found = retriever.search(query, TOP_HITS + 1)
        hits = [hit for hit, _ in found if hit != doc_id][:TOP_HITS]
        scores.append(sum(hit in members for hit in hits) / len(hits) if hits else 0.0)
        tally["queries"] += 1
    return float(np.mean(scores)) if scores else None


def _texts(retriever: Retriever, doc_ids: Sequence[str]) -> dict[str, str]:
    """Texts of the ids the index holds; one request unless some are missing."""
    try:
        return dict(zip(doc_ids, retriever.get(doc_ids), strict=True))
    except UnknownDocument:
        found = {}
        for doc_id in doc_ids:
            try:
                found[doc_id] = retriever.get([doc_id])[0]
            except UnknownDocument:
                continue
        return found


# -- plots -----------------------------------------------------------------------------------

Draw = Callable[["Axes"], None]


def _save_plot(path: Path, draw: Draw) -> None:
    """Agg straight onto a Figure: no pyplot state, no display, safe in any thread.

    matplotlib is imported here, not at the top, so other commands do not pay for it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure.subplots())
    figure.savefig(path, dpi=100)


def _nothing(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def _integer_bars(ax: Axes, values: np.ndarray, counts: np.ndarray) -> None:
    """One bar per integer value, integer ticks: a histogram with bins of width one."""
    from matplotlib.ticker import MaxNLocator

    gap = int(np.diff(values).min()) if len(values) > 1 else 1
    ax.bar(values, counts, width=0.8 * gap)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _plot_specs(tally: _Tally, figures: dict[str, Any]) -> list[tuple[str, str, Draw]]:
    """(file name, one-line caption, drawing) of every plot, in report order."""
    tokens, docs = figures["tokens"], figures["documents_per_sample"]
    lengths, reuse, coherence = figures["document_tokens"], figures["reuse"], figures["coherence"]
    token_values = np.asarray(tally.tokens, np.int64)
    doc_values = np.asarray(tally.docs, np.int64)

    def sample_lengths(ax: Axes) -> None:
        if not len(token_values):
            _nothing(ax, "no samples")
            return
        values, counts = np.unique(token_values, return_counts=True)
        if len(values) <= _MAX_BARS:
            _integer_bars(ax, values, counts)
        else:
            ax.hist(token_values, bins=_MAX_BARS)
        ax.axvline(tally.target, color="black", linestyle="--", label=f"target {tally.target:,}")
        ax.set(xlabel="tokens per sample", ylabel="samples")
        ax.legend()

    def docs_per_sample(ax: Axes) -> None:
        if not len(doc_values):
            _nothing(ax, "no samples")
            return
        _integer_bars(ax, *np.unique(doc_values, return_counts=True))
        ax.set(xlabel="documents per sample", ylabel="samples")

    def doc_lengths(ax: Axes) -> None:
        if not lengths["spans"]:
            _nothing(ax, "no documents")
            return
        edges = tally.edges
        widths = np.diff(edges)
        ax.bar(edges[:-1], tally.full_lengths, widths, align="edge", label="whole")
        ax.bar(
            edges[:-1],
            tally.truncated_lengths,
            widths,
            bottom=tally.full_lengths,
            align="edge",
            label="truncated to fit",
        )
        ax.set_xscale("log")
        ax.set(xlabel="tokens of a document in a sample", ylabel="documents")
        ax.legend()

    def headings(ax: Axes) -> None:
        from matplotlib.ticker import MaxNLocator

        top = list(tally.headings.most_common(TOP_HEADINGS))[::-1]
        if not top:
            _nothing(ax, "no samples")
            return
        ax.barh([heading for heading, _ in top], [count for _, count in top])
        ax.tick_params(axis="y", labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="samples")

    def doc_reuse(ax: Axes) -> None:
        by_uses = reuse["documents_by_uses"]
        if not by_uses:
            _nothing(ax, "no documents")
            return
        _integer_bars(ax, np.array([int(u) for u in by_uses]), np.array(list(by_uses.values())))
        ax.set_yscale("log")
        ax.set(xlabel="samples a document appears in", ylabel="documents")

    def topical_coherence(ax: Axes) -> None:
        if coherence["skipped"] or coherence["dataset"] is None:
            _nothing(ax, f"coherence not measured: {coherence['skipped'] or 'no samples'}")
            return
        values = [coherence["dataset"], coherence["baseline"] or 0.0]
        bars = ax.bar(["this dataset", "random baseline"], values, color=["C0", "C7"])
        ax.bar_label(bars, fmt="%.3f")
        ax.set(ylabel=f"share of top-{TOP_HITS} hits in the same sample", ylim=(0, 1))

    exact = "every sample is" if tokens["off_target"] == 0 else "NOT every sample is"
    return [
        (
            "sample_lengths",
            f"Tokens per sample: {exact} exactly targetTokens = {tally.target:,} "
            f"(min {_fmt(tokens['min'])}, max {_fmt(tokens['max'])}).",
            sample_lengths,
        ),
        (
            "docs_per_sample",
            f"Documents per sample (mean {_fmt(docs['mean'])}, min {_fmt(docs['min'])}, "
            f"max {_fmt(docs['max'])}).",
            docs_per_sample,
        ),
        (
            "doc_lengths",
            f"Tokens of each document within its sample (its span, separator included; log "
            f"scale); {lengths['truncated']:,} of {lengths['spans']:,} were truncated to fit.",
            doc_lengths,
        ),
        (
            "headings",
            f"Samples per BISAC heading (top {TOP_HEADINGS} of {len(tally.headings)}).",
            headings,
        ),
        (
            "doc_reuse",
            f"Samples each document appears in: at most {reuse['max_uses']:,}; "
            f"{_pct(reuse['reused_share'])} of {reuse['documents']:,} documents appear in "
            "more than one.",
            doc_reuse,
        ),
        (
            "coherence",
            f"Topical coherence: the share of a document's top-{TOP_HITS} BM25 neighbours that "
            "are in its own sample, for this dataset and for random samples of the same sizes "
            "(definition below).",
            topical_coherence,
        ),
    ]


# -- HTML ------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _key_figures(figures: dict[str, Any]) -> list[tuple[str, str]]:
    tokens, docs = figures["tokens"], figures["documents_per_sample"]
    lengths, reuse, coherence = figures["document_tokens"], figures["reuse"], figures["coherence"]
    rows = [
        ("samples", _fmt(figures["samples"])),
        ("tokens", _fmt(tokens["total"])),
        ("tokens per sample (min / max)", f"{_fmt(tokens['min'])} / {_fmt(tokens['max'])}"),
        ("samples not at targetTokens", _fmt(tokens["off_target"])),
        ("documents per sample (mean)", _fmt(docs["mean"])),
        ("documents per sample (min / max)", f"{_fmt(docs['min'])} / {_fmt(docs['max'])}"),
        ("truncated documents", f"{lengths['truncated']:,} of {lengths['spans']:,}"),
        ("distinct documents", _fmt(reuse["documents"])),
        ("max uses of a document", _fmt(reuse["max_uses"])),
        ("documents used more than once", _pct(reuse["reused_share"])),
    ]
    if coherence["skipped"]:
        rows.append(("topical coherence", f"not measured: {coherence['skipped']}"))
    else:
        rows.append(("topical coherence", _fmt(coherence["dataset"])))
        rows.append(("random baseline", _fmt(coherence["baseline"])))
    return rows


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.8rem; font-variant-numeric: tabular-nums; }
figure { margin: 1.5rem 0; } img { max-width: 100%; } figcaption { color: #555; }
"""


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{html.escape(_fmt(value))}</td></tr>"
        for label, value in rows
    )
    return f"<table>{body}</table>"


def _html(figures: dict[str, Any]) -> str:
    spec = figures["spec"]
    title = f"SynthesisRun/{figures['name']} report"
    spec_rows = [
        ("mode", spec.get("mode")),
        ("indexRef", spec.get("indexRef")),
        ("topicDebateRef", spec.get("topicDebateRef") or "-"),
        ("targetTokens", spec.get("targetTokens")),
        ("samplesPerTopic", spec.get("samplesPerTopic")),
        ("retrieval", json.dumps(spec.get("retrieval"))),
        ("reuse", json.dumps(spec.get("reuse"))),
        ("tokenizer", (spec.get("tokenizer") or {}).get("name") or "default"),
        ("seed", spec.get("seed")),
        ("spec hash", figures["spec_hash"]),
        ("artifact", figures["uri"]),
    ]
    plots = "".join(
        f'<figure><img src="{html.escape(plot["file"])}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(plot['caption'])}</figcaption></figure>"
        for name, plot in figures["plots"].items()
    )
    coherence = figures["coherence"]
    measured = (
        f"<p>Not measured: {html.escape(coherence['skipped'])}.</p>"
        if coherence["skipped"]
        else f"<p>{coherence['samples']:,} samples, {coherence['queries']:,} queries, "
        f"baseline drawn from the index's {coherence['index_documents']:,} documents; "
        f"{coherence['missing_documents']:,} documents not found in the index.</p>"
    )
    manifest = figures["manifest"]
    skipped = (
        "<h3>Skipped</h3>" + _table(sorted(manifest["skipped"].items()))
        if manifest["skipped"]
        else ""
    )
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f"<h2>Spec</h2>{_table(spec_rows)}\n"
        f"<h2>Key figures</h2>{_table(_key_figures(figures))}\n"
        f"<h2>Plots</h2>{plots}\n"
        f"<h2>Topical coherence</h2><p>{html.escape(coherence['definition'])}</p>{measured}\n"
        f"<h2>Manifest counters</h2>{_table(sorted(manifest['counts'].items()))}{skipped}\n"
        "<p>All figures: <a href='report.json'>report.json</a>.</p>\n</body></html>\n"
    )
