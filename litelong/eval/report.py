"""The results of an evaluation as files people read: `results.json` (everything), and
`report.html` (one self-contained page: score by length per task with 95% intervals, the
answers' loss by length, perplexity by position, and what overlapped the training data)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RESULTS = "results.json"
REPORT = "report.html"


def write(folder: Path, results: dict[str, Any]) -> None:
    (folder / RESULTS).write_text(json.dumps(results, indent=2) + "\n")
    (folder / REPORT).write_text(_html(results))


def write_folder(out: Path, results: dict[str, Any]) -> Path:
    """Into `out` atomically: built beside it, then renamed into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private
        write(staging, results)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Task rows by length columns: `score [low-high]`; the last row is the average."""
    lengths = results["lengths"]
    header = ["task", *[_k(length) for length in lengths]]
    by_task: dict[str, dict[int, dict[str, Any]]] = {}
    for row in results["scores"]:
        by_task.setdefault(row["task"], {})[row["length"]] = row
    rows = []
    for task, cells in by_task.items():
        rows.append([task, *[_cell(cells.get(length)) for length in lengths]])
    n = results["scores"][0]["n"] if results["scores"] else 0
    rows.append(
        [f"average (n={n} each)", *[f"{results['average'][str(length)]:.3f}" for length in lengths]]
    )
    return header, rows


def _k(length: int) -> str:
    return f"{length // 1024}K" if length % 1024 == 0 else str(length)


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    low, high = row["ci95"]
    return f"{row['score']:.2f} [{low:.2f}-{high:.2f}]"


def _png(draw: Callable[[Axes], None]) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    draw(figure.add_subplot())
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _img(draw: Callable[[Axes], None]) -> str:
    return f'<img src="data:image/png;base64,{_png(draw)}">'


def _scores_plot(results: dict[str, Any], key: str, label: str) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        by_task: dict[str, list[dict[str, Any]]] = {}
        for row in results["scores"]:
            by_task.setdefault(row["task"], []).append(row)
        for task, rows in by_task.items():
            xs = [r["length"] for r in rows]
            ys = [r[key] for r in rows]
            if key == "score":
                low = [r["score"] - r["ci95"][0] for r in rows]
                high = [r["ci95"][1] - r["score"] for r in rows]
                ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=task)
            else:
                ax.plot(xs, ys, marker="o", label=task)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)

    return draw


def _perplexity_plot(results: dict[str, Any]) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        rows = [b for b in results["perplexity"]["buckets"] if b["tokens"]]
        ax.plot(
            [(b["start"] + b["end"]) / 2 for b in rows], [b["mean_nll"] for b in rows], marker="o"
        )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("position (bucket centre, tokens)")
        ax.set_ylabel("mean next-token loss (nats)")

    return draw


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(results: dict[str, Any]) -> str:
    header, rows = table_rows(results)
    parts = [
        f"<h1>Evaluation of {html.escape(results['model'])}</h1>",
        "<p>Greedy decoding per task and length (exact match for one answer; for several, "
        "the fraction given, in any order), with 95% Wilson intervals "
        f"(haystack: {html.escape(results['haystack'])}).</p>",
        _table(header, rows),
    ]
    if results["scores"]:
        parts.append(_img(_scores_plot(results, "score", "score (answers given)")))
        parts.append(_img(_scores_plot(results, "answer_nll", "answer loss (nats/token)")))
    if "perplexity" in results:
        ppl = results["perplexity"]
        parts.append(
            f"<h2>Perplexity by position ({ppl['documents']} documents of "
            f"{ppl['length']} tokens)</h2>"
        )
        parts.append(
            _table(
                ["positions", "tokens", "mean loss", "perplexity"],
                [
                    [
                        f"{b['start']}-{b['end']}",
                        b["tokens"],
                        f"{b['mean_nll']:.4f}",
                        f"{b['perplexity']:.2f}",
                    ]
                    for b in ppl["buckets"]
                ],
            )
        )
        if ppl["documents"]:
            parts.append(f'<img src="data:image/png;base64,{_png(_perplexity_plot(results))}">')
    if "decontamination" in results:
        dec = results["decontamination"]
        parts.append(
            f"<h2>Overlap with the training data ({dec['ngram']}-grams of "
            f"{dec['training_tokens']:,} tokens)</h2>"
        )
        parts.append(
            _table(
                ["task", "samples", "with overlap", "needles found", "first overlapping text"],
                [
                    [
                        t,
                        e["samples"],
                        e["contaminated"],
                        e["needles_found"],
                        (e["examples"] or [""])[0],
                    ]
                    for t, e in dec["tasks"].items()
                ],
            )
        )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>litelong eval</title><style>{style}</style>"
        + "\n".join(parts)
    )
