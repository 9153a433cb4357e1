"""The report of a SynthesisRun, as HTML and JSON: the figures counted from each part's
`metadata.parquet` (`statistics.py`), their plots (`plots.py`) and topical coherence
(`coherence.py`), on one page a reader can check the run by.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...api.v1alpha1 import SynthesisRunSpec
from ...index import Retriever
from ...plan.actual import compare_run, html_section
from ...store import Artifact, ArtifactStore
from .browse import FirstLines
from .coherence import MAX_SAMPLES, coherence_definition, measure_coherence
from .plots import PLOTS, fmt, pct, plot_specs, plot_worker
from .statistics import Tally

METADATA = "metadata.parquet"
TOPICS_FILE = "topics.jsonl"  # per part: each topic's hits, samples and tokens (the report's)
BROWSE_SAMPLES = 3
COLUMNS = ("id", "heading", "num_tokens", "doc_ids", "starts", "ends", "truncated", "roles")
OPTIONAL_COLUMNS = ("scores", "token_hash")  # scores: since mode nextlong; token_hash: since #16
# Rows per record batch: at 128K tokens a row holds some 400 document ids, so a batch of 256 is
# about 100K ids, whatever the size of the run.
_BATCH_ROWS = 256


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
    concurrent_plots: bool = True,
) -> ReportSummary:
    """Write `report.html`, `report.json` and `plots/*.png` of a committed SynthesisRun to `out`.

    Raises NotCommitted for an uncommitted artifact and UnreadableMetadata for a part without
    a usable metadata.parquet. Without a retriever, coherence is skipped and the report says
    why (`no_retriever_reason`). The plots are drawn in a process of their own while the rest
    is computed (`plots.PlotWorker`; `concurrent_plots=False`: in this one), the same files.
    """
    manifest = artifact.manifest()
    spec = SynthesisRunSpec.model_validate(manifest.spec)
    with plot_worker(concurrent_plots) as plotter:  # a process of its own draws the plots
        tally = Tally(spec.target_tokens, seed, max_samples)
        for part in manifest.parts:
            for batch in _batches(artifact.local_part(part) / METADATA, part.name):
                tally.add(batch)
        counted = tally.figures()
        (out / "plots").mkdir(parents=True, exist_ok=True)
        # every plot but coherence's needs only the counts: drawn while coherence is measured
        early = {**counted, "coherence": _NOT_MEASURED}
        plotter.draw(out / "plots", tally, early, [name for name in PLOTS if name != "coherence"])
        coherence: dict[str, Any] = (
            measure_coherence(retriever, tally.chosen_samples(), seed)
            if retriever is not None
            else {"dataset": None, "baseline": None, "skipped": no_retriever_reason}
        )
        coherence["definition"] = coherence_definition(max_samples)
        per_sample: dict[str, float] = dict(coherence.get("per_sample") or {})
        topics = _topic_rows(artifact, manifest.parts, per_sample)
        browse = _browse(artifact, manifest.parts, tally, spec, retriever)
        if "nextlong" in counted:
            counted["nextlong"]["similarity"]["measure"] = (
                "bm25" if spec.nextlong.negatives == "bm25" else "cosine"
            )
        figures = {
            "kind": artifact.kind,
            "name": artifact.name,
            "spec_hash": artifact.spec_hash,
            "uri": artifact.uri,
            "spec": manifest.spec,
            **counted,
            "outcome": _outcome(manifest.counts, counted),
            "topics": topics,
            "browse": browse,
            "coherence": coherence,
            "manifest": {"counts": manifest.counts, "skipped": manifest.skipped},
            "plan_vs_actual": compare_run(ArtifactStore(artifact.store.uri), artifact, _refs(spec)),
        }
        plotter.draw(out / "plots", tally, figures, ["coherence"])
        plots: dict[str, Path] = {}
        figures["plots"], figures["not_plotted"] = {}, {}
        for name, caption, draw in plot_specs(tally, figures):
            if draw is None:
                figures["not_plotted"][name] = caption
                continue
            plots[name] = out / "plots" / f"{name}.png"
            figures["plots"][name] = {"file": f"plots/{name}.png", "caption": caption}
        json_path = out / "report.json"
        json_path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        html_path = out / "report.html"
        html_path.write_text(_html(figures), encoding="utf-8")
        plotter.wait()  # every plot saved before the report is said to be written
    return ReportSummary(out, html_path, json_path, plots, figures)


#: what the plots drawn before coherence is measured see of it (they never read it)
_NOT_MEASURED: dict[str, Any] = {"dataset": None, "baseline": None, "skipped": "not yet"}


def compare_key_figures(a: ReportSummary, b: ReportSummary) -> list[tuple[str, str, str]]:
    """(label, A's value, B's value) for every key figure either run has, in A's order."""
    mine, theirs = dict(a.key_figures()), dict(b.key_figures())
    labels = [*mine, *(label for label in theirs if label not in mine)]
    return [(label, mine.get(label, "-"), theirs.get(label, "-")) for label in labels]


def write_comparison(a: ReportSummary, b: ReportSummary) -> Path:
    """`comparison.html` beside A's report: the key figures and spec of both runs side by
    side, with links to each full report."""
    names = [_run_name(summary) for summary in (a, b)]
    rows = [[label, x, y] for label, x, y in compare_key_figures(a, b)]
    links = (
        f"<p>Full reports: <a href='{html.escape(a.html.resolve().as_uri())}'>"
        f"{html.escape(names[0])}</a>, "
        f"<a href='{html.escape(b.html.resolve().as_uri())}'>{html.escape(names[1])}</a>.</p>"
    )
    title = f"SynthesisRun/{a.figures['name']} against SynthesisRun/{b.figures['name']}"
    page = (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{_grid(['', *names], rows)}\n{links}\n</body></html>\n"
    )
    path = a.out / "comparison.html"
    path.write_text(page, encoding="utf-8")
    return path


def _run_name(summary: ReportSummary) -> str:
    figures = summary.figures
    return f"{figures['name']} ({figures['spec'].get('mode')}, {figures['spec_hash']})"


# -- reading ---------------------------------------------------------------------------------


def _outcome(counts: dict[str, int], counted: dict[str, Any]) -> dict[str, int | None]:
    """What was asked for and what became of it."""
    requested = counts.get("samples_requested")
    written = counted["samples"]
    return {
        "requested": requested,
        "written": written,
        "dropped": None if requested is None else requested - written,
        "underfilled": counts.get("samples_underfilled", 0),
        "duplicates_not_written": counts.get("skipped.duplicate_sample", 0),
        "duplicates_written": counted["duplicates"]["exact"],
        "near_duplicates": counted["duplicates"]["near"],
    }


def _topic_rows(
    artifact: Artifact, parts: list[Any], per_sample: dict[str, float]
) -> list[dict[str, Any]]:
    """Each topic's row (the stage's topics.jsonl, older runs have none) with its coherence:
    the mean over its samples that coherence measured."""
    by_topic: dict[int, list[float]] = {}
    for sample_id, value in per_sample.items():
        fields = sample_id.split("/")
        if len(fields) == 3 and fields[1].isdigit():
            by_topic.setdefault(int(fields[1]), []).append(value)
    rows: list[dict[str, Any]] = []
    for part in parts:
        path = artifact.local_part(part) / TOPICS_FILE
        if path.is_file():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    for row in rows:
        values = by_topic.get(row["number"])
        row["coherence"] = round(sum(values) / len(values), 4) if values else None
    return sorted(rows, key=lambda row: row["number"])


def _browse(
    artifact: Artifact,
    parts: list[Any],
    tally: Tally,
    spec: SynthesisRunSpec,
    retriever: Retriever | None,
) -> list[dict[str, Any]]:
    """A few samples (the first the seeded choice ranks), each with its topic and, for every
    document, its role, score and first line."""
    wanted = [sample_id for sample_id, _ in tally.chosen_samples()[:BROWSE_SAMPLES]]
    rows: dict[str, dict[str, Any]] = {}
    columns = ["id", "topic", "query", "doc_ids", "roles", "scores"]
    for part in parts:
        path = artifact.local_part(part) / METADATA
        names = pq.ParquetFile(path).schema_arrow.names
        table = pq.read_table(path, columns=[name for name in columns if name in names])
        chosen = table.filter(pc.is_in(table["id"], pa.array(wanted, pa.string())))
        rows.update((row["id"], row) for row in chosen.to_pylist())
    lines = FirstLines(retriever, spec)
    browse = []
    for sample_id in wanted:
        row = rows[sample_id]
        scores = row.get("scores") or [None] * len(row["doc_ids"])
        documents = [
            {"id": doc_id, "role": role, "score": score, "first_line": lines(doc_id, role)}
            for doc_id, role, score in zip(row["doc_ids"], row["roles"], scores, strict=True)
        ]
        browse.append(
            {"id": sample_id, "topic": row["topic"], "query": row["query"], "documents": documents}
        )
    return browse


def _batches(path: Path, part: str) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnreadableMetadata(f"{part}: cannot read {METADATA}: {exc}") from exc
    missing = [name for name in COLUMNS if name not in parquet.schema_arrow.names]
    if missing:
        raise UnreadableMetadata(f"{part}/{METADATA} lacks column(s) {', '.join(missing)}")
    optional = [name for name in OPTIONAL_COLUMNS if name in parquet.schema_arrow.names]
    yield from parquet.iter_batches(batch_size=_BATCH_ROWS, columns=[*COLUMNS, *optional])


# -- HTML ------------------------------------------------------------------------------------


def _key_figures(figures: dict[str, Any]) -> list[tuple[str, str]]:
    tokens, docs = figures["tokens"], figures["documents_per_sample"]
    lengths, reuse, coherence = figures["document_tokens"], figures["reuse"], figures["coherence"]
    outcome = figures.get("outcome") or {}
    near = f"near-duplicate samples (≥ {figures['duplicates']['near_share']:.0%} shared documents)"
    rows = [
        ("samples requested", fmt(outcome.get("requested"))),
        ("samples written", fmt(figures["samples"])),
        ("samples dropped (requested - written)", fmt(outcome.get("dropped"))),
        ("samples underfilled (ran out of documents)", fmt(outcome.get("underfilled"))),
        ("duplicate samples not written", fmt(outcome.get("duplicates_not_written"))),
        ("duplicate samples written (must be 0)", fmt(outcome.get("duplicates_written"))),
        (near, fmt(outcome.get("near_duplicates"))),
        ("tokens", fmt(tokens["total"])),
        ("tokens per sample (min / max)", f"{fmt(tokens['min'])} / {fmt(tokens['max'])}"),
        ("samples not at targetTokens", fmt(tokens["off_target"])),
        ("documents per sample (mean)", fmt(docs["mean"])),
        ("documents per sample (min / max)", f"{fmt(docs['min'])} / {fmt(docs['max'])}"),
        ("truncated documents", f"{lengths['truncated']:,} of {lengths['spans']:,}"),
        ("distinct documents", fmt(reuse["documents"])),
        ("max uses of a document", fmt(reuse["max_uses"])),
        ("documents used more than once", pct(reuse["reused_share"])),
    ]
    if nextlong := figures.get("nextlong"):
        per_meta, similarity = nextlong["negatives_per_meta_chunk"], nextlong["similarity"]
        rows += [
            ("meta-chunks / negatives", f"{nextlong['meta_chunks']:,} / {nextlong['negatives']:,}"),
            (
                "negatives per meta-chunk (mean / min / max)",
                f"{fmt(per_meta['mean'])} / {fmt(per_meta['min'])} / {fmt(per_meta['max'])}",
            ),
            (
                f"negative similarity, {similarity['measure']} (mean / median)",
                f"{fmt(similarity['mean'])} / {fmt(similarity['median'])}",
            ),
            (
                "negatives from anywhere in the chunk index (hard ones ran short)",
                fmt(figures["manifest"]["counts"].get("negatives_from_reserve", 0)),
            ),
            ("negatives used more than once (must be 0)", fmt(nextlong["negatives_reused"])),
            (
                "negatives from their own meta-document (must be 0)",
                fmt(nextlong["negatives_from_own_document"]),
            ),
        ]
    if coherence["skipped"]:
        rows.append(("topical coherence", f"not measured: {coherence['skipped']}"))
    else:
        rows.append(("topical coherence", fmt(coherence["dataset"])))
        rows.append(("random baseline", fmt(coherence["baseline"])))
    return rows


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.8rem; font-variant-numeric: tabular-nums; }
figure { margin: 1.5rem 0; } img { max-width: 100%; } figcaption { color: #555; }
th { text-align: left; padding: 0.2rem 0.8rem; border-bottom: 2px solid #999; }
.browse li { margin: 0.1rem 0; } .role { color: #555; font-size: 0.9em; }
"""
TOPIC_ROWS = 200  # the HTML's per-topic table; report.json has every topic


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{html.escape(fmt(value))}</td></tr>"
        for label, value in rows
    )
    return f"<table>{body}</table>"


def _refs(spec: SynthesisRunSpec) -> dict[str, str]:
    """The inputs whose plan the report puts beside their actuals (plan.actual)."""
    refs = {"TopicDebate": spec.topic_debate_ref, "BM25Index": spec.index_ref}
    return {kind: name for kind, name in refs.items() if name}


def _grid(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(value))}</td>" for value in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _topics_html(topics: list[dict[str, Any]]) -> str:
    if not topics:
        return "<p>No per-topic figures: this run was made before the stage recorded them.</p>"
    header = ["#", "topic", "query", "hits", "samples", "tokens", "coherence"]
    keys = ["number", "topic", "query", "hits", "samples", "tokens", "coherence"]
    rows = [[t[key] if t[key] != "" else "-" for key in keys] for t in topics[:TOPIC_ROWS]]
    more = f"<p>First {TOPIC_ROWS} of {len(topics):,}.</p>" if len(topics) > TOPIC_ROWS else ""
    return _grid(header, rows) + more


def _browse_html(browse: list[dict[str, Any]]) -> str:
    blocks = []
    for sample in browse:
        items = "".join(
            f"<li><span class='role'>{html.escape(d['role'])}{_score(d['score'])}</span> "
            f"<code>{html.escape(d['id'])}</code>: {html.escape(d['first_line'])}</li>"
            for d in sample["documents"]
        )
        topic = sample["topic"] or "(random draw)"
        blocks.append(
            f"<h3>{html.escape(sample['id'])}: {html.escape(topic)}</h3>"
            f"<p>query: {html.escape(sample['query'] or '-')}</p><ol class='browse'>{items}</ol>"
        )
    return "".join(blocks) or "<p>No samples.</p>"


def _score(score: float | None) -> str:
    return "" if score is None else f", score {score:.3g}"


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
    plots += "".join(
        f"<p>{html.escape(caption)} (One value: not plotted.)</p>"
        for caption in figures["not_plotted"].values()
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
        f"<h2>Topics</h2>{_topics_html(figures['topics'])}\n"
        f"<h2>Sample browser</h2>{_browse_html(figures['browse'])}\n"
        f"<h2>Plots</h2>{plots}\n"
        f"<h2>Topical coherence</h2><p>{html.escape(coherence['definition'])}</p>{measured}\n"
        f"{html_section(figures.get('plan_vs_actual'))}"
        f"<h2>Manifest counters</h2>{_table(sorted(manifest['counts'].items()))}{skipped}\n"
        "<p>All figures: <a href='report.json'>report.json</a>.</p>\n</body></html>\n"
    )
