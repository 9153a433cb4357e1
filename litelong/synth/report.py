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
import pyarrow.parquet as pq

from ..api.v1alpha1 import SynthesisRunSpec
from ..index import Retriever
from ..plan.actual import compare_run, html_section
from ..store import Artifact
from .coherence import MAX_SAMPLES, coherence_definition, measure_coherence
from .plots import fmt, pct, plot_specs, save_plot
from .statistics import Tally

METADATA = "metadata.parquet"
COLUMNS = ("id", "heading", "num_tokens", "doc_ids", "starts", "ends", "truncated", "roles")
OPTIONAL_COLUMNS = ("scores",)  # written since mode nextlong: negatives' similarity
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
) -> ReportSummary:
    """Write `report.html`, `report.json` and `plots/*.png` of a committed SynthesisRun to `out`.

    Raises NotCommitted for an uncommitted artifact and UnreadableMetadata for a part without
    a usable metadata.parquet. Without a retriever, coherence is skipped and the report says
    why (`no_retriever_reason`).
    """
    manifest = artifact.manifest()
    spec = SynthesisRunSpec.model_validate(manifest.spec)
    tally = Tally(spec.target_tokens, seed, max_samples)
    for part in manifest.parts:
        for batch in _batches(artifact.local_part(part) / METADATA, part.name):
            tally.add(batch)
    coherence = (
        measure_coherence(retriever, tally.chosen_samples(), seed)
        if retriever is not None
        else {"dataset": None, "baseline": None, "skipped": no_retriever_reason}
    )
    coherence["definition"] = coherence_definition(max_samples)
    counted = tally.figures()
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
        "coherence": coherence,
        "manifest": {"counts": manifest.counts, "skipped": manifest.skipped},
        "plan_vs_actual": compare_run(artifact.store, artifact, _refs(spec)),
    }
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots, figures["plots"] = {}, {}
    for name, caption, draw in plot_specs(tally, figures):
        plots[name] = out / "plots" / f"{name}.png"
        save_plot(plots[name], draw)
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
    optional = [name for name in OPTIONAL_COLUMNS if name in parquet.schema_arrow.names]
    yield from parquet.iter_batches(batch_size=_BATCH_ROWS, columns=[*COLUMNS, *optional])


# -- HTML ------------------------------------------------------------------------------------


def _key_figures(figures: dict[str, Any]) -> list[tuple[str, str]]:
    tokens, docs = figures["tokens"], figures["documents_per_sample"]
    lengths, reuse, coherence = figures["document_tokens"], figures["reuse"], figures["coherence"]
    rows = [
        ("samples", fmt(figures["samples"])),
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
"""


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
        f"{html_section(figures.get('plan_vs_actual'))}"
        f"<h2>Manifest counters</h2>{_table(sorted(manifest['counts'].items()))}{skipped}\n"
        "<p>All figures: <a href='report.json'>report.json</a>.</p>\n</body></html>\n"
    )
