"""The report's plots and their one-line captions; matplotlib is imported only to save one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .coherence import TOP_HITS
from .statistics import Tally

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOP_HEADINGS = 25
_MAX_BARS = 50

Draw = Callable[["Axes"], None]


def save_plot(path: Path, draw: Draw) -> None:
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


def plot_specs(tally: Tally, figures: dict[str, Any]) -> list[tuple[str, str, Draw]]:
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
            f"(min {fmt(tokens['min'])}, max {fmt(tokens['max'])}).",
            sample_lengths,
        ),
        (
            "docs_per_sample",
            f"Documents per sample (mean {fmt(docs['mean'])}, min {fmt(docs['min'])}, "
            f"max {fmt(docs['max'])}).",
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
            f"{pct(reuse['reused_share'])} of {reuse['documents']:,} documents appear in "
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


def fmt(value: Any) -> str:
    """A figure as captions and the report's tables print it: thousands separated, n/a for none."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
