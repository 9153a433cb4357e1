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


def print_plan(plan: Plan, console: Console, verbose: bool = True) -> None:
    table = Table("resource", "wall", "CPU-h", "GPU-h", "bytes", "figures", box=None)
    for e in plan.estimates:
        table.add_row(
            f"{e.kind}/{e.name}",
            duration(e.wall_seconds),
            f"{e.cpu_hours:,.3f}",
            f"{e.gpu_hours:,.3f}",
            size(e.bytes),
            Text(_key_figures(e)),
        )
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
