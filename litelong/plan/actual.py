"""After the run: the plan beside what the run took, so the planner's error is visible.

`litelong plan` keeps each resource's estimate at `<store>/_plans/<kind>.<name>.<spec-hash>.json`
(outside every artifact; the spec hash ties it to the output it describes). Once the output is
committed, `compare` reads both: build time (the parts' recorded seconds; the shards of a local
run add up, a cluster's run side by side, so the longest shard is the wall time there) and
committed bytes, with the kind's own counts.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from ..api import API_VERSION, InvalidManifest, parse
from ..api.loading import AnyResource
from ..store import Artifact, ArtifactStore, NotCommitted, StoreFiles
from .estimate import Estimate, Plan

FOLDER = "_plans"
#: The kind's own figure in the estimate and the manifest count it is checked against.
COUNTS = {
    "TopicDebate": ("requests", "topics"),
    "BM25Index": ("documents",),
    "SynthesisRun": ("samples", "tokens"),
}


def _path(store: StoreFiles, kind: str, name: str, spec_hash: str) -> str:
    return store.join(FOLDER, f"{kind.lower()}.{name}.{spec_hash}.json")


def keep(store: ArtifactStore, plan: Plan, resources: list[AnyResource]) -> None:
    """Write each resource's estimate beside the store's artifacts, atomically."""
    for resource in resources:
        estimate = plan.find(resource.kind, resource.name)
        if estimate is not None:
            path = _path(store, resource.kind, resource.name, resource.spec_hash())
            store.write_atomic(path, json.dumps(estimate.as_dict(), indent=2))


def _spec_hash(artifact: Artifact) -> str | None:
    """The spec hash of what a committed artifact was made from (plans are kept by spec hash:
    `litelong plan` runs before the inputs, and so the identity, exist)."""
    manifest = artifact.committed_manifest()
    if manifest is None:
        return None
    document = {
        "apiVersion": API_VERSION,
        "kind": artifact.kind,
        "metadata": {"name": artifact.name},
        "spec": manifest.spec,
    }
    try:
        return parse(document).spec_hash()
    except InvalidManifest:  # written by hand (a bench's or a probe's topics): no kept plan
        return None


def kept(artifact: Artifact) -> Estimate | None:
    spec_hash = _spec_hash(artifact)
    if spec_hash is None:
        return None
    path = _path(artifact.store, artifact.kind, artifact.name, spec_hash)
    try:
        raw = artifact.store.fs.cat_file(path)
    except FileNotFoundError:
        return None
    return Estimate(**json.loads(raw))


def compare(artifact: Artifact) -> dict[str, Any] | None:
    """{"stage", "rows": [(figure, planned, actual, actual / planned)]}, or None without a
    kept plan or a committed output."""
    estimate = kept(artifact)
    if estimate is None:
        return None
    try:
        manifest = artifact.manifest()
    except NotCommitted:
        return None
    seconds = [part.seconds for part in manifest.parts]
    rows = [
        ("wall seconds (build)", estimate.wall_seconds, sum(seconds)),
        ("bytes", float(estimate.bytes), float(manifest.size)),
    ]
    for name in COUNTS.get(artifact.kind, ()):
        if name in estimate.figures and name in manifest.counts:
            rows.append((name, float(estimate.figures[name]), float(manifest.counts[name])))
    return {
        "stage": f"{artifact.kind}/{artifact.name}",
        "rows": [
            [label, round(p, 3), round(a, 3), round(a / p, 3) if p else None]
            for label, p, a in rows
        ],
    }


def compare_run(
    store: ArtifactStore, artifact: Artifact, refs: dict[str, str]
) -> list[dict[str, Any]]:
    """The run and the committed inputs it names (`{kind: name}`): one entry per stage that
    has a kept plan. The report's plan-vs-actual section."""
    stages = []
    for kind, name in refs.items():
        try:
            found = store.latest_committed(kind, name)
        except NotCommitted:
            continue
        if (entry := compare(found)) is not None:
            stages.append(entry)
    if (entry := compare(artifact)) is not None:
        stages.append(entry)
    return stages


def html_section(stages: list[dict[str, Any]] | None) -> str:
    """The report's "Plan and actual" section; empty when no plan was kept."""
    if not stages:
        return ""
    rows = "".join(
        f"<tr><td>{escape(stage['stage'])}</td><td>{escape(label)}</td><td>{planned:,.1f}</td>"
        f"<td>{actual:,.1f}</td><td>{'-' if ratio is None else f'{ratio:.2f}'}</td></tr>"
        for stage in stages
        for label, planned, actual, ratio in stage["rows"]
    )
    return (
        "<h2>Plan and actual</h2><p>What <code>litelong plan</code> estimated for each stage "
        "and what the run took (actual / planned).</p><table><tr><th>stage</th><th>figure</th>"
        f"<th>planned</th><th>actual</th><th>ratio</th></tr>{rows}</table>\n"
    )
