"""Running stages: one way, whether a laptop runs a whole file or a pod runs one shard.

A stage builds one part of a resource's artifact in a staging folder; this module skips what is
already committed, commits the part, and commits the artifact once every part is in, unless it
would be empty. The operator's Jobs run `litelong stage KIND --shard I --of N`, which calls
`run_shard` here, so the local path is the cluster path. `resolve_inputs` fixes the identities
of every resource's inputs first: that is what makes a changed input rerun its dependents.
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
from .api.v1alpha1 import SynthesisRun
from .corpus import REASONS, SkipCounter
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
    return store.output_of(resource)


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
    resource = resolve_inputs([resource], lambda _: store)[0]  # as is when already resolved
    artifact = artifact_of(resource, store)
    committed = artifact.committed_manifest()
    if committed is not None:
        artifact.make_current()  # this spec is in force again (e.g. a revert)
        return ShardResult(ShardOutcome.ARTIFACT_ALREADY_COMMITTED, artifact, committed)
    outcome = ShardOutcome.PART_ALREADY_COMMITTED
    # a second run of this shard waits here, then finds the part (or the artifact) committed
    with artifact.lock(f"part-{shard}-of-{of}"):
        committed = artifact.committed_manifest()
        if committed is not None:
            artifact.make_current()
            return ShardResult(ShardOutcome.ARTIFACT_ALREADY_COMMITTED, artifact, committed)
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
    """Commit the artifact when every part is recorded; None while parts are missing.

    Raises EmptyOutput (nothing committed) when the output would be empty."""
    spec = resource.spec.model_dump(mode="json", by_alias=True)
    try:
        return artifact.commit(
            spec, of, resource.inputs() or {}, lambda manifest: empty_output(resource, manifest)
        )
    except NotCommitted:
        return None


def empty_output(resource: AnyResource, manifest: Manifest) -> str | None:
    """One line saying why the output is empty, or None when it is not."""
    count = resource.output_count
    if count is None or manifest.counts.get(count, 0) > 0:
        return None
    label = f"{resource.kind}/{resource.name}: empty output, 0 {count}"
    counts = manifest.counts
    if resource.kind == "SynthesisRun":
        topics = counts.get("topics", 0)
        if not topics:
            return f"{label}: the TopicDebate has no topics"
        without = counts.get("topics_without_hits", 0)
        if without:
            return f"{label}: {without:,} of {topics:,} topics had no hits in the index"
        target = manifest.spec.get("targetTokens", 0)
        best = (
            f"; the best topic's documents reach {counts['max_topic_tokens']:,} of the "
            f"{target:,} tokens a sample needs"
            if "max_topic_tokens" in counts
            else ""
        )
        return (
            f"{label}: every sample underfilled{best} (lower targetTokens or raise retrieval.topK)"
        )
    if manifest.skipped:
        reason, skipped = max(manifest.skipped.items(), key=lambda item: item[1])
        examples = manifest.skipped_examples.get(reason, [])
        where = f", e.g. {examples[0]}" if examples else ""
        meaning = REASONS.get(reason, reason)
        hint = _HINTS.get(reason, "")
        return f"{label}: {skipped:,} skipped as {reason} ({meaning}){where}{hint}"
    if resource.kind == "TopicDebate":
        proposed = counts.get("topics_proposed", 0)
        return f"{label}: all {proposed:,} proposed topics were rejected"
    return f"{label}: the corpus holds no records"


_HINTS = {
    "missing_text": "; is corpus[].textField right?",
}


def samples_shortfall(resource: AnyResource, manifest: Manifest) -> str | None:
    """A SynthesisRun that wrote under `minSamplesRatio` of the samples asked for, said loudly."""
    if not isinstance(resource, SynthesisRun):
        return None
    return resource.samples_shortfall(manifest.counts)


def order_by_dependency(resources: list[AnyResource]) -> list[AnyResource]:
    """Kinds only refer to earlier kinds, so kind order is a dependency order."""
    rank = {kind: position for position, kind in enumerate(KINDS)}
    return sorted(resources, key=lambda resource: rank[resource.kind])


def resolve_inputs(
    resources: list[AnyResource], store_of: Callable[[AnyResource], ArtifactStore]
) -> list[AnyResource]:
    """Every resource, in dependency order, carrying the identities of its inputs.

    A ref names a resource of the same files (its identity, computed first) or, failing that,
    the current committed output in the store (its `_current` pointer: the spec last run, not
    merely the newest output), in the same namespace. Inputs already carried
    (a pod's resource, written by the operator) are kept as they are.
    """
    known: dict[tuple[str, str, str], str] = {}
    resolved = []
    for resource in order_by_dependency(resources):
        if resource.refs() and resource.inputs() is None:
            store = store_of(resource)
            inputs = {}
            for kind, name in resource.refs():
                identity = known.get((resource.namespace, kind, name))
                if identity is None:
                    try:
                        identity = store.latest_committed(kind, name, resource.namespace).identity
                    except NotCommitted:
                        raise UnresolvedRef(
                            f"{resource.kind}/{resource.name} refers to {kind}/{name}, which "
                            f"is neither in the file nor committed in namespace "
                            f"{resource.namespace} of {store.uri}"
                        ) from None
                inputs[f"{kind}/{name}"] = identity
            resource = resource.with_inputs(inputs)
        known[(resource.namespace, resource.kind, resource.name)] = resource.identity()
        resolved.append(resource)
    return resolved


def why_rerun(resource: AnyResource, store: ArtifactStore) -> str | None:
    """Why a resource runs again when an earlier output of it is committed: which inputs
    changed (`input BM25Index/corpus changed a1b2c3d4 → e5f6a7b8`), else its spec."""
    try:
        previous = store.latest_committed(resource.kind, resource.name, resource.namespace)
    except NotCommitted:
        return None
    if previous.identity == resource.identity():
        return None
    before = previous.manifest().inputs
    changed = [
        f"input {key} changed {before[key][:8]} → {identity[:8]}"
        for key, identity in (resource.inputs() or {}).items()
        if key in before and before[key] != identity
    ]
    return "; ".join(changed) or f"spec changed since {previous.identity[:8]}"
