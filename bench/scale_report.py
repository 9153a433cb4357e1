"""`bench/scale.py report`: Markdown tables, a plot and the cost of the paper's scale, from
`<work>/results/*.json` (every stage that has run; nothing is measured here).

Cost extrapolation assumptions: CPU time is linear in text bytes (indexing) and in output tokens
(synthesis), with the slope measured between the two largest scales run (the fixed cost is the
intercept); a pod keeps as many cores busy as the measured child did (CPU s / wall s, of the
machine's cores it ran on); the paper's corpora are counted in UTF-8 text bytes (958 GB / 190M
documents is ~5 KB a document: text, not compressed files).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CORPORA = {  # name: (documents, text bytes)
    "FineWeb-Edu": (190_000_000, 958e9),
    "Cosmopedia v2": (39_000_000, 212e9),
}
SYNTH_TOKENS = 4e9  # the synthesis to cost: 4B tokens of 128K samples
SYNTH_GOAL_CORE_HOURS = 5.0
MEMORY_GROWTH = 1.5  # peak RSS from 1M to 5M documents may grow at most this much
PEER_TARGET = 0.9  # litelong index wall vs raw tantivy: peer wall / litelong wall
BOUND_TARGET = 0.8  # synthesis output tokens/s vs the tokenize-only bound
TIMES = "\N{MULTIPLICATION SIGN}"
INDEX_KINDS = {"index": "BM25Index + chunks", "index-docs": "BM25Index", "tantivy": "raw tantivy"}

Results = dict[str, dict[str, Any]]


def load(work: Path) -> Results:
    folder = work / "results"
    if not folder.is_dir():
        raise SystemExit(f"no results in {folder}: run `bench/scale.py all` first")
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def documents_of(result: dict[str, Any]) -> int:
    if "documents" in result:
        return int(result["documents"])
    return int(result["corpus"]["documents"])


def scale_of(stage: str) -> str:
    """index-docs-1m → 1m, synth-1m-nextlong → 1m."""
    for prefix in ("index-docs-", "index-", "tantivy-", "read-"):
        if stage.startswith(prefix):
            return stage[len(prefix) :]
    return stage.split("-")[1]


def table(columns: str, rows: list[list[str]]) -> str:
    """A Markdown table; `columns` comma-separated, the first left-aligned."""
    names = columns.split(",")
    lines = ["| " + " | ".join(names) + " |"]
    lines.append("| " + " | ".join(["---"] + ["---:"] * (len(names) - 1)) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mark(ratio: float, target: float) -> str:
    return f"**{ratio:.2f}{TIMES}**" + ("" if ratio >= target else " (missed)")


# -- index ---------------------------------------------------------------------------------------


def index_rows(results: Results) -> list[dict[str, Any]]:
    rows = []
    for stage, result in results.items():
        kind = next((k for k in INDEX_KINDS if stage == f"{k}-{scale_of(stage)}"), None)
        if kind is None and not stage.startswith("read-"):
            continue
        if "corpus" not in result:  # measured before the corpus was counted: `report` says
            continue
        rows.append({**result, "kind": kind or "read", "scale": scale_of(stage)})
    order = [*INDEX_KINDS, "read"]
    return sorted(rows, key=lambda r: (documents_of(r), order.index(r["kind"])))


def index_table(results: Results) -> str:
    rows = []
    for row in index_rows(results):
        text = row["corpus"]["text_bytes"]
        peer = results.get(f"tantivy-{row['scale']}")
        ratio = "-"
        if row["kind"] == "index-docs" and peer:
            ratio = mark(peer["wall_s"] / row["wall_s"], PEER_TARGET)
        name = INDEX_KINDS.get(row["kind"], f"read (1 shard of {row['counts'].get('of', '?')})")
        rows.append(
            [
                row["scale"],
                name,
                f"{documents_of(row):,}",
                f"{text / 1e6:,.0f}",
                f"{row['wall_s']:,.1f}",
                f"{row['cpu_s']:,.1f}",
                f"{documents_of(row) / row['wall_s']:,.0f}",
                f"{text / 1e6 / row['wall_s']:,.1f}",
                f"{text / 1e6 / row['cpu_s']:,.1f}",
                f"{row['peak_rss_mib']:,.0f}",
                anon(row),
                f"{row['disk_bytes']:,}",
                ratio,
            ]
        )
    columns = "scale,stage,documents,text MB,wall s,CPU s,docs/s,MB/s,MB per CPU s"
    columns += ",peak RSS MiB,of it heap MiB,disk bytes,vs raw tantivy (≥ 0.9)"
    return table(columns, rows)


# -- synthesis -----------------------------------------------------------------------------------


def synth_rows(results: Results) -> list[dict[str, Any]]:
    """Each run with its bound: `bound` as measured after it, `compared` the figures it is
    compared with (`bound_figures`: the mean of the bounds before and after it where both were
    timed), None without a bound."""
    rows = []
    for stage, result in results.items():
        if stage.startswith("synth-"):
            key = stage.removeprefix("synth-")
            bound, before = results.get("bound-" + key), results.get(f"bound-{key}-before")
            compared = bound_figures(bound, before) if bound else None
            rows.append({**result, "scale": scale_of(stage), "bound": bound, "compared": compared})
    order = {"litelong": 0, "standard": 1, "nextlong": 2}
    return sorted(rows, key=lambda r: (r["documents"], order.get(r["mode"], 3)))


def bound_figures(after: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """The bound a run is compared with: the mean of the bound timed right before the run and
    the one right after it where both were (`bench/scale.py synth --bound around`), so that a
    drift of the machine's tokenizer throughput between those minutes cancels to first order;
    else the one after alone (results measured before `--bound around`). `after_s` and
    `after_cpu_s` keep the figure after alone: the old comparison."""
    timed = [b for b in (before, after) if b]
    return {
        "bound_s": sum(b["bound_s"] for b in timed) / len(timed),
        "bound_cpu_s": sum(b["bound_cpu_s"] for b in timed) / len(timed),
        "after_s": after["bound_s"],
        "after_cpu_s": after["bound_cpu_s"],
        "before_s": before["bound_s"] if before else None,
        "timed": "before+after" if before else "after",
        "same_documents": before is None or before.get("set_digest") == after.get("set_digest"),
    }


def synth_table(results: Results) -> str:
    rows = []
    for row in synth_rows(results):
        counts, bound = row["counts"], row["compared"]
        tokens = counts.get("tokens", 0)
        ratio = cpu_ratio = bound_rate = after = "-"
        if bound and tokens:
            bound_rate = f"{tokens / bound['bound_s']:,.0f}"
            ratio = mark(bound["bound_s"] / row["wall_s"], BOUND_TARGET)
            cpu_ratio = f"{bound['bound_cpu_s'] / row['cpu_s']:.2f}{TIMES}"
            after = f"{bound['after_s'] / row['wall_s']:.2f}{TIMES}"
        rows.append(
            [
                row["scale"],
                row["mode"],
                str(row["max_uses"]),
                f"{counts.get('samples', 0):,} / {counts.get('samples_requested', 0):,}",
                f"{tokens:,}",
                f"{row['wall_s']:,.1f}",
                f"{row['cpu_s']:,.1f}",
                f"{tokens / row['wall_s']:,.0f}",
                f"{row['peak_rss_mib']:,.0f}",
                anon(row),
                f"{row['disk_bytes']:,}",
                bound_rate,
                ratio,
                cpu_ratio,
                bound["timed"] if bound else "-",
                after,
            ]
        )
    columns = "scale,mode,max uses,samples / asked,output tokens,wall s,CPU s,tokens/s"
    columns += ",peak RSS MiB,of it heap MiB,disk bytes,bound tokens/s,run / bound (≥ 0.8)"
    columns += ",run / bound (CPU),bound timed,run / bound after alone"
    return table(columns, rows)


def bound_table(results: Results) -> str:
    rows = []
    for row in synth_rows(results):
        bound, compared = row["bound"], row["compared"]
        if not bound:
            continue
        before = compared["before_s"]
        rows.append(
            [
                row["scale"],
                row["mode"],
                f"{bound['distinct']:,}",
                f"{bound['subset']:,}",
                f"{bound['subset_tokens']:,}",
                f"{bound['subset_s']:,.1f}",
                f"{bound['subset_tokens'] / bound['subset_s']:,.0f}",
                f"{bound['bound_s']:,.1f}",
                "-" if before is None else f"{before:,.1f}",
                f"{compared['bound_s']:,.1f}",
                "yes" if compared["same_documents"] else "**no**",
            ]
        )
    columns = "scale,mode,distinct documents,timed subset,subset tokens,subset s"
    columns += ",tokenizer tokens/s,bound s (all distinct),bound s before the run"
    columns += ",bound s compared,same documents"
    return table(columns, rows)


def sittings_table(works: list[Path]) -> str:
    """The same synthesis measured in several work folders (sittings): each one's run / bound
    per scale and mode, the bound as compared and after alone, and the median over them."""
    ratios: dict[tuple[int, str], list[tuple[str, float, float]]] = {}
    for work in works:
        for row in synth_rows(load(work)):
            compared, tokens = row["compared"], row["counts"].get("tokens", 0)
            if compared and tokens:
                ratios.setdefault((row["documents"], row["mode"]), []).append(
                    (
                        work.name,
                        compared["bound_s"] / row["wall_s"],
                        compared["after_s"] / row["wall_s"],
                    )
                )
    rows = []
    for (documents, mode), found in sorted(ratios.items()):
        each = ", ".join(f"{name} {new:.2f}{TIMES} ({old:.2f}{TIMES})" for name, new, old in found)
        rows.append(
            [
                f"{documents:,}",
                mode,
                each,
                mark(median([new for _, new, _ in found]), BOUND_TARGET),
                f"{median([old for _, _, old in found]):.2f}{TIMES}",
            ]
        )
    if not rows:
        return "(no synthesis with its bound)"
    columns = "documents,mode,run / bound per sitting (after alone),median,median after alone"
    return table(columns, rows)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def anon(row: dict[str, Any]) -> str:
    """Peak anonymous RSS (heap), sampled; '-' for results measured before it was sampled.
    The rest of peak RSS is memory-mapped index files, which the kernel can drop."""
    value = row.get("peak_anon_mib")
    return f"{value:,.0f}" if value else "-"


def growth_table(results: Results) -> str:
    """Peak RSS between 1M and 5M documents (else the two largest scales run), per stage: the
    whole, and its heap (anonymous) part where it was sampled, since the rest is mapped index
    pages (clean page cache)."""
    families: dict[str, dict[int, dict[str, Any]]] = {}
    for row in index_rows(results):
        families.setdefault(INDEX_KINDS.get(row["kind"], "read"), {})[documents_of(row)] = row
    for row in synth_rows(results):
        families.setdefault(f"SynthesisRun {row['mode']}", {})[row["documents"]] = row
    rows = []
    for family, peaks in families.items():
        scales = sorted(peaks)
        if len(scales) < 2:
            continue
        low, high = (1_000_000, 5_000_000) if {1_000_000, 5_000_000} <= set(peaks) else scales[-2:]
        growth = peaks[high]["peak_rss_mib"] / peaks[low]["peak_rss_mib"]
        heaps = [peaks[scale].get("peak_anon_mib") for scale in (low, high)]
        heap_growth = heaps[1] / heaps[0] if all(heaps) else None
        rows.append(
            [
                family,
                f"{low:,} → {high:,}",
                f"{peaks[low]['peak_rss_mib']:,.0f}",
                f"{peaks[high]['peak_rss_mib']:,.0f}",
                f"{growth:.2f}{TIMES}",
                "yes" if growth <= MEMORY_GROWTH else "**no**",
                f"{heaps[0]:,.0f} → {heaps[1]:,.0f}" if heap_growth else "-",
                f"{heap_growth:.2f}{TIMES}" if heap_growth else "-",
                ("yes" if heap_growth <= MEMORY_GROWTH else "**no**") if heap_growth else "-",
            ]
        )
    if not rows:
        return "(needs two scales of a stage)"
    columns = (
        f"stage,documents,peak RSS MiB (low),peak RSS MiB (high),growth,within 1.5{TIMES},"
        f"heap MiB,heap growth,heap within 1.5{TIMES}"
    )
    return table(columns, rows)


# -- cost ----------------------------------------------------------------------------------------


def linear(points: list[tuple[float, float]]) -> Callable[[float], float]:
    """y(x) through the two largest x (slope and intercept), or through the origin from one."""
    points = sorted(points)
    if len(points) == 1 or points[-1][0] == points[-2][0]:
        x, y = points[-1]
        return lambda at: y / x * at
    (x0, y0), (x1, y1) = points[-2:]
    slope = (y1 - y0) / (x1 - x0)
    if slope <= 0:  # noise between the two scales: fall back to the largest's ratio
        return lambda at: y1 / x1 * at
    return lambda at: y0 + slope * (at - x0)


def cost(results: Results) -> str:
    lines = []
    index = index_rows(results)
    rows = []
    for kind, name in (("index", "BM25Index + chunks"), ("index-docs", "BM25Index")):
        measured = [r for r in index if r["kind"] == kind]
        if not measured:
            continue
        cpu = linear([(r["corpus"]["text_bytes"], r["cpu_s"]) for r in measured])
        largest = max(measured, key=documents_of)
        busy = largest["cpu_s"] / largest["wall_s"]
        for corpus, (_, text) in CORPORA.items():
            hours = cpu(text) / 3600
            rows.append(
                [
                    name,
                    corpus,
                    f"{text / 1e9:,.0f}",
                    f"{hours:,.0f}",
                    f"{busy:.2f} of {largest.get('cores') or os.cpu_count()}",
                    f"{math.ceil(hours / busy):,}",
                ]
            )
    if rows:
        columns = "index,corpus,text GB,CPU core-hours,cores busy per pod"
        lines.append(table(columns + ",pods (parallelism) for one hour", rows))
    reads = [r for r in index if r["kind"] == "read"]
    if reads:
        read_cpu = linear([(r["corpus"]["text_bytes"], r["cpu_s"]) for r in reads])
        notes = ", ".join(
            f"{corpus} {read_cpu(text) / 3600:,.1f} core-hours"
            + (" (over an hour)" if read_cpu(text) > 3600 else "")
            for corpus, (_, text) in CORPORA.items()
        )
        lines.append(
            "\nWith `partition: content` (the default: global exact dedup) every shard of a "
            "BM25Index reads (decompresses, parses, normalises, hashes) the whole corpus and "
            "keeps its share, so each pod pays the `read` cost of the whole corpus on top of "
            f"its share of the indexing: {notes} per pod (one reader process, measured as one "
            "shard of 1,024). Where that is over an hour, no number of pods builds the index "
            "in one hour that way; the shapes above are for `partition: files`, where each "
            "shard reads only its share of the corpus files (dedup within a shard)."
        )
    rows = []
    for mode in ("litelong", "standard", "nextlong"):
        measured = [r for r in synth_rows(results) if r["mode"] == mode and r["counts"]["tokens"]]
        if not measured:
            continue
        largest = max(measured, key=lambda r: r["documents"])
        per_token = largest["cpu_s"] / largest["counts"]["tokens"]
        hours = per_token * SYNTH_TOKENS / 3600
        busy = largest["cpu_s"] / largest["wall_s"]
        rows.append(
            [
                mode,
                f"{largest['documents']:,}",
                f"{per_token * 1e6:,.1f}",
                f"{hours:,.1f}",
                "yes" if hours <= SYNTH_GOAL_CORE_HOURS else "**no**",
                f"{busy:.2f} of {largest.get('cores') or os.cpu_count()}",
                f"{math.ceil(hours / busy):,}",
            ]
        )
    if rows:
        columns = "mode,measured at documents,CPU µs per output token,core-hours for 4B tokens"
        columns += ",≤ 5 core-hours,cores busy per pod,pods (parallelism) for one hour"
        lines.append("\n" + table(columns, rows))
    return "\n".join(lines)


# -- plot ----------------------------------------------------------------------------------------


def plot(results: Results, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rss, index_rate, synth_rate) = plt.subplots(1, 3, figsize=(15, 4.5))
    series: dict[str, list[tuple[int, float, float]]] = {}
    for row in index_rows(results):
        name = INDEX_KINDS.get(row["kind"], "read")
        rate = row["corpus"]["text_bytes"] / 1e6 / row["wall_s"]
        series.setdefault(name, []).append((documents_of(row), row["peak_rss_mib"], rate))
    for row in synth_rows(results):
        rate = row["counts"].get("tokens", 0) / 1e6 / row["wall_s"]
        series.setdefault(f"synth {row['mode']}", []).append(
            (row["documents"], row["peak_rss_mib"], rate)
        )
    for name, points in series.items():
        points.sort()
        xs = [p[0] for p in points]
        rss.plot(xs, [p[1] for p in points], marker="o", label=name)
        axis = synth_rate if name.startswith("synth") else index_rate
        axis.plot(xs, [p[2] for p in points], marker="o", label=name)
    for axis, title in (
        (rss, "peak RSS (MiB)"),
        (index_rate, "index: text MB/s (wall)"),
        (synth_rate, "synthesis: M output tokens/s (wall)"),
    ):
        axis.set_xscale("log")
        axis.set_xlabel("documents")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def report(work: Path, plot_file: Path, sittings: list[Path] | None = None) -> None:
    results = load(work)
    for stage, result in results.items():
        if stage.startswith(("index-", "tantivy-", "read-")) and "corpus" not in result:
            print(f"{stage}: left out, no corpus figures (`bench/scale.py index` adds them)\n")
    sections = [
        ("Index", index_table(results)),
        ("Synthesis", synth_table(results)),
        ("Tokenize-only bound: the timed subset", bound_table(results)),
        ("Peak RSS growth", growth_table(results)),
        ("Cost of the paper's scale (extrapolated)", cost(results)),
    ]
    if sittings:
        sections.append(("Synthesis over sittings", sittings_table([work, *sittings])))
    for title, body in sections:
        print(f"### {title}\n\n{body}\n")
    plot(results, plot_file)
    print(f"Plot: {plot_file}")
