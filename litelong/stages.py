"""Running stages: one way, whether a laptop runs a whole file or a pod runs one shard.

A stage builds one part of a resource's artifact in a staging folder; this module skips what is
already committed, commits the part, and commits the artifact once every part is in. The
operator's Jobs run `litelong stage KIND --shard I --of N`, which calls `run_shard` here, so the
local path is the cluster path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .api import KINDS
from .api.loading import AnyResource
from .corpus import SkipCounter
from .progress import NoProgress, Progress
from .store import Artifact, ArtifactStore, Manifest, NotCommitted

#: (resource, shard, of, staging folder, progress, store) -> (counts, skips)
BuildPart = Callable[
    [Any, int, int, Path, Progress, ArtifactStore], tuple[dict[str, int], SkipCounter]
]


def _registry() -> dict[str, BuildPart]:
    from .debate import build_part as debate_part
    from .index import build_part as index_part
    from .synth import build_part as synthesis_part

    return {"TopicDebate": debate_part, "BM25Index": index_part, "SynthesisRun": synthesis_part}


class StageUnavailable(RuntimeError):
    """No stage for this kind in this version of litelong."""


class UnresolvedRef(ValueError):
    """A resource names another that is neither in the same file nor committed in the store."""


class ShardOutcome(Enum):
    BUILT = "built"
    PART_ALREADY_COMMITTED = "part already committed"
    ARTIFACT_ALREADY_COMMITTED = "artifact already committed"


@dataclass
class ShardResult:
    outcome: ShardOutcome
    artifact: Artifact
    manifest: Manifest | None  # set when this shard's commit completed the artifact
    notes: dict[str, str] = field(default_factory=dict)  # e.g. {"report": uri}


AfterCommit = Callable[[Any, Artifact, ArtifactStore], str]


def _after_commit() -> dict[str, tuple[str, AfterCommit]]:
    """What a kind derives from its committed output, named: SynthesisRun writes its report."""
    from .synth import after_commit as synthesis_report

    return {"SynthesisRun": ("report", synthesis_report)}


def stage_for(kind: str) -> BuildPart:
    stages = _registry()
    if kind not in stages:
        available = ", ".join(stages)
        raise StageUnavailable(
            f"no stage for {kind} in this version of litelong (available: {available})"
        )
    return stages[kind]


def artifact_of(resource: AnyResource, store: ArtifactStore) -> Artifact:
    return store.artifact(resource.kind, resource.name, resource.spec_hash())


def run_shard(
    resource: AnyResource,
    store: ArtifactStore,
    shard: int,
    of: int,
    progress: Progress | None = None,
) -> ShardResult:
    """Build and commit one part; commit the artifact if this was the last part missing."""
    if not 0 <= shard < of:
        raise ValueError(f"shard {shard} is not in 0..{of - 1}")
    build = stage_for(resource.kind)
    artifact = artifact_of(resource, store)
    committed = artifact.committed_manifest()
    if committed is not None:
        return ShardResult(ShardOutcome.ARTIFACT_ALREADY_COMMITTED, artifact, committed)
    outcome = ShardOutcome.PART_ALREADY_COMMITTED
    if artifact.part(shard, of) is None:
        started = time.monotonic()
        with artifact.staging(shard, of) as folder:
            counts, skips = build(resource, shard, of, folder, progress or NoProgress(), store)
            artifact.commit_part(
                shard,
                of,
                folder,
                counts=counts,
                skipped=skips.counts,
                skipped_examples=skips.examples,
                seconds=round(time.monotonic() - started, 3),
            )
        outcome = ShardOutcome.BUILT
    manifest = _commit_if_complete(resource, artifact, of)
    result = ShardResult(outcome, artifact, manifest)
    if manifest is not None and resource.kind in (hooks := _after_commit()):
        name, derive = hooks[resource.kind]
        try:
            result.notes[name] = derive(resource, artifact, store)
        except Exception as exc:  # derived files never undo a committed output
            result.notes[name] = f"not written: {type(exc).__name__}: {exc}"
    return result


def _commit_if_complete(resource: AnyResource, artifact: Artifact, of: int) -> Manifest | None:
    """Commit the artifact when every part is recorded; None while parts are missing."""
    try:
        return artifact.commit(resource.spec.model_dump(mode="json", by_alias=True), of)
    except NotCommitted:
        return None


def order_by_dependency(resources: list[AnyResource]) -> list[AnyResource]:
    """Kinds only refer to earlier kinds, so kind order is a dependency order."""
    rank = {kind: position for position, kind in enumerate(KINDS)}
    return sorted(resources, key=lambda resource: rank[resource.kind])


def check_refs(
    resources: list[AnyResource], store_of: Callable[[AnyResource], ArtifactStore]
) -> None:
    """Every ref must name a resource of the file or a committed artifact in the store."""
    in_file = {(resource.kind, resource.name) for resource in resources}
    for resource in resources:
        store = store_of(resource)
        for kind, name in resource.refs():
            if (kind, name) in in_file:
                continue
            try:
                store.latest_committed(kind, name)
            except NotCommitted:
                raise UnresolvedRef(
                    f"{resource.kind}/{resource.name} refers to {kind}/{name}, which is neither "
                    f"in the file nor committed in {store.uri}"
                ) from None
