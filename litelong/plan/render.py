"""A plan as people read it (a table, headline first) and as scripts read it (JSON)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .estimate import Estimate, Plan, duration, headline, size


def _key_figures(estimate: Estimate) -> str:
    f = estimate.figures
    if estimate.kind == "TopicDebate":
        tokens = sum(f["tokens_in"].values()) + sum(f["tokens_out"].values())
        return (
            f"{f['subjects']:,} subjects, {f['requests']:,} requests, {tokens:,} tokens, "
            f"~{f['topics']:,} topics"
        )
    if estimate.kind == "BM25Index":
        return f"{f['documents']:,} documents, {size(f['text_bytes'])} text ({f['backend']})"
    if estimate.kind == "SynthesisRun":
        return (
            f"{f['samples']:,} samples, {f['tokens']:,} tokens, "
            f"{f['documents_needed_per_sample']:,} docs/sample needed, "
            f"{f['documents_available_per_topic']:,} per topic available"
        )
    memory = f["memory_gib"]["peak"]
    fit = "fits" if f["fits"] else "DOES NOT FIT"
    return (
        f"{f['tokens']:,} tokens, {f['steps']:,} steps, {f['flops']:.2e} FLOPs, "
        f"{memory:.1f} GiB/GPU ({fit})"
    )


def _within(estimate: Estimate) -> str:
    """`--within`: the shape that meets the duration, e.g. `4 cores, parallelism 4`."""
    w = estimate.within
    if w is None:
        return ""
    if w["gpus"] is not None:
        p = w["parallelism"]
        gpus = f"{w['gpus']} GPU{'s' if w['gpus'] != 1 else ''}"
        shape = f"{gpus} ({p['nodes']} x {p['gpusPerNode']}, CP {p['contextParallel']})"
    elif w["cores"] is not None:
        cores = f"{w['cores']} core{'s' if w['cores'] != 1 else ''}"
        shape = f"{cores}, parallelism {w['parallelism']}"
    else:
        shape = f"parallelism {w['parallelism']}"
    late = "" if w["meets"] else f", still {duration(w['wall_seconds'])}"
    return shape + late


def print_plan(plan: Plan, console: Console, verbose: bool = True) -> None:
    sized = any(e.within is not None for e in plan.estimates)
    columns = ["resource", "wall", "CPU-h", "GPU-h", "bytes"]
    if sized:
        seconds = next(e.within["seconds"] for e in plan.estimates if e.within is not None)
        columns.append(f"within {duration(seconds)}")
    table = Table(*columns, "figures", box=None)
    for e in plan.estimates:
        cells = [
            f"{e.kind}/{e.name}",
            duration(e.wall_seconds),
            f"{e.cpu_hours:,.3f}",
            f"{e.gpu_hours:,.3f}",
            size(e.bytes),
        ]
        if sized:
            cells.append(_within(e))
        table.add_row(*cells, Text(_key_figures(e)))
    console.print(Text(f"plan: {headline(plan)}", style="bold"))
    console.print(table)
    for e in plan.estimates:
        for warning in e.warnings:
            console.print(Text(f"{e.kind}/{e.name}: {warning}", style="red"), soft_wrap=True)
    if verbose:
        for e in plan.estimates:
            console.print(Text(f"{e.kind}/{e.name}", style="bold"))
            for line in e.basis:
                console.print(Text(f"  {line}"), soft_wrap=True)
    console.print(Text(f"rates: {plan.calibration}"), soft_wrap=True)


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.as_dict(), indent=2, default=str) + "\n"
