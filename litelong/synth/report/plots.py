"""The report's plots and their one-line captions; matplotlib is imported only to save one,
and by default in a process of its own (`PlotWorker`) that draws them beside the rest of the
report."""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from .coherence import TOP_HITS
from .statistics import Tally

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOP_HEADINGS = 20
#: every plot's name, in report order (`plot_specs`)
PLOTS = ("sample_lengths", "docs_per_sample", "doc_lengths", "headings", "doc_reuse", "coherence")
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


def draw_plots(folder: Path, tally: Tally, figures: dict[str, Any], names: Iterable[str]) -> None:
    """Save the plots named (`<folder>/<name>.png`) that have a drawing: the same files
    whichever process calls it."""
    wanted = set(names)
    for name, _, draw in plot_specs(tally, figures):
        if name in wanted and draw is not None:
            save_plot(folder / f"{name}.png", draw)


class PlotWorker:
    """Draws plots in a child process while the caller goes on with the report.

    Drawing (matplotlib's import, layout and rendering: ~1 CPU s for a report's plots) was
    the longest serial stretch at the end of a run; in a process of its own it runs on
    another core, its import starting with the report. The child is a fresh interpreter
    (`subprocess`, not `multiprocessing`: the caller's main module is never imported again)
    reading pickled jobs on its stdin. `concurrent=False`, or a child that cannot start or
    fails, draws in the caller's process instead: the same files. `wait` returns once every
    plot asked for is saved.
    """

    def __init__(self, concurrent: bool = True) -> None:
        self._jobs: list[tuple[Path, Tally, dict[str, Any], list[str]]] = []
        self._child: subprocess.Popen[bytes] | None = None
        if concurrent:
            root = str(Path(__file__).resolve().parents[3])  # this litelong, whatever the cwd
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-c", _SERVE.format(root=root, module=__name__)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:
                self._child = None

    def alive(self) -> bool:
        return self._child is not None and self._child.poll() is None

    def draw(self, folder: Path, tally: Tally, figures: dict[str, Any], names: list[str]) -> None:
        """Have the plots `names` saved into `folder` (as `draw_plots`)."""
        job = (folder, tally.for_plots(), figures, names)
        if self._child is None:
            draw_plots(*job)
            return
        self._jobs.append(job)
        try:
            assert self._child.stdin is not None
            pickle.dump(job, self._child.stdin)
            self._child.stdin.flush()
        except OSError:  # it died: `wait` draws its jobs here
            pass

    def wait(self) -> None:
        """Every plot asked for saved: by the child, else (it failed) here."""
        child, self._child = self._child, None
        if child is None:
            return
        jobs, self._jobs = self._jobs, []
        if child.stdin is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()
        if child.wait() != 0:
            for job in jobs:
                draw_plots(*job)

    def close(self) -> None:
        """Stop the child without waiting for its plots (an error left the report unfinished)."""
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None

    def __enter__(self) -> PlotWorker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


_early: PlotWorker | None = None


def start_early() -> None:
    """Start the drawing process now, for the report this process writes later: a run calls
    it as it starts, when a core is idle, so matplotlib is imported by the time the report
    asks for plots. A process that writes no report leaves it waiting; it ends with this one
    (its stdin closes)."""
    global _early
    if _early is None:
        _early = PlotWorker()


def plot_worker(concurrent: bool = True) -> PlotWorker:
    """The process `start_early` started, else a new one (in this process: `concurrent`
    False)."""
    global _early
    if not concurrent:
        return PlotWorker(concurrent=False)
    worker, _early = _early, None
    if worker is not None and worker.alive():
        return worker
    return PlotWorker()


_SERVE = "import sys; sys.path.insert(0, {root!r}); import {module} as m; m._serve()"


def _serve() -> None:
    """The child's loop: import matplotlib at once, then draw each job read from stdin."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    while True:
        try:
            job = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        draw_plots(*job)


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
