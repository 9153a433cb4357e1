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

TOP_HEADINGS = 20
_MAX_BARS = 50
_LABEL_SIZE = 10

Draw = Callable[["Axes"], None]


def save_plot(path: Path, draw: Draw) -> None:
    """Agg straight onto a Figure: no pyplot state, no display, safe in any thread.

    matplotlib is imported here, not at the top, so other commands do not pay for it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.tick_params(labelsize=_LABEL_SIZE)
    axes.xaxis.label.set_fontsize(_LABEL_SIZE + 1)
    axes.yaxis.label.set_fontsize(_LABEL_SIZE + 1)
    draw(axes)
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


def plot_specs(tally: Tally, figures: dict[str, Any]) -> list[tuple[str, str, Draw | None]]:
    """(file name, one-line caption, drawing) of every plot, in report order. The drawing is
    None where a plot would show nothing a sentence does not (one bar: every sample has the
    same length); the caption then says it."""
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
        ax.tick_params(axis="y", labelsize=_LABEL_SIZE - 1)
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
            why = coherence["skipped"] or "none of the samples' documents is in the index"
            _nothing(ax, f"coherence not measured: {why}")
            return
        per_sample = np.asarray(list((coherence.get("per_sample") or {}).values()), np.float64)
        baseline = coherence["baseline"] or 0.0
        top = max(float(per_sample.max(initial=0.0)), coherence["dataset"], baseline)
        top = top * 1.15 or 1.0  # the axis fits the values: 0.009 and 0.004 look different
        if len(per_sample) > 1:
            ax.hist(per_sample, bins=np.linspace(0, top, 21).tolist(), color="C0", alpha=0.8)
            ax.set(xlabel="coherence of a sample", ylabel="samples", xlim=(0, top))
            line: Callable[..., Any] = ax.axvline
        else:
            ax.bar(["this dataset"], [coherence["dataset"]], color="C0")
            ax.set(ylabel=f"share of top-{TOP_HITS} hits in the same sample", ylim=(0, top))
            line = ax.axhline
        line(
            coherence["dataset"],
            color="C0",
            linestyle="-",
            label=f"mean {coherence['dataset']:.3g}",
        )
        line(baseline, color="black", linestyle="--", label=f"random baseline {baseline:.3g}")
        ax.legend()

    exact = "every sample is" if tokens["off_target"] == 0 else "NOT every sample is"
    one_length = len(np.unique(token_values)) == 1
    one_count = len(np.unique(doc_values)) == 1
    return [
        (
            "sample_lengths",
            f"Tokens per sample: {exact} exactly targetTokens = {tally.target:,} "
            f"(min {fmt(tokens['min'])}, max {fmt(tokens['max'])}).",
            None if one_length else sample_lengths,
        ),
        (
            "docs_per_sample",
            f"Documents per sample (mean {fmt(docs['mean'])}, min {fmt(docs['min'])}, "
            f"max {fmt(docs['max'])}).",
            None if one_count else docs_per_sample,
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
            "are in its own sample, per measured sample, against random samples of the same "
            "sizes (dashed; definition below). In mode nextlong, of the meta-document.",
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
