"""Children of a resource, rendered: resource body + operator config → Kubernetes manifests.

TopicDebate   → spec ConfigMap + Indexed Job (`litelong stage TopicDebate`)
BM25Index     → tantivy: spec ConfigMap + Indexed Job writing the index to the store
                manticore managed: + Manticore ConfigMap, headless Service, StatefulSet;
                the Job's pod i loads shard i into Manticore pod i
                manticore external: spec ConfigMap + loader Job pointed at the URL
SynthesisRun  → spec ConfigMap + Indexed Job
TrainingJob   → spec ConfigMap + PyTorchJob (or a Trainer v2 TrainJob)
"""

from __future__ import annotations

from typing import Any

from litelong.api import parse

from ..config import OperatorConfig
from .common import KIND_LABEL, SPEC_HASH_LABEL, Manifest, Owner, child_name, spec_config_map
from .manticore import manticore_cluster, shard_url_template
from .stage_job import stage_job
from .training import pytorch_job, train_job

__all__ = [
    "KIND_LABEL",
    "SPEC_HASH_LABEL",
    "Manifest",
    "Owner",
    "child_name",
    "owner_of",
    "render",
]


def owner_of(body: dict[str, Any]) -> Owner:
    """Validate a resource body the way the CLI does; raises pydantic's ValidationError."""
    meta = body.get("metadata", {})
    clean = {key: body[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in body}
    return Owner(
        resource=parse(clean),
        uid=meta.get("uid", ""),
        namespace=meta.get("namespace") or "default",
    )


def render(owner: Owner, config: OperatorConfig) -> list[Manifest]:
    """Every child, in the order to create them (what a pod mounts comes before the pod)."""
    spec: Any = owner.resource.spec
    children = [spec_config_map(owner)]
    if owner.kind == "TrainingJob":
        job = train_job if spec.backend == "trainjob" else pytorch_job
        return [*children, job(owner, config)]
    if owner.kind == "BM25Index" and spec.backend.type == "manticore":
        options = spec.backend.manticore
        if options.mode == "managed":
            template = shard_url_template(owner)
            return [
                *children,
                *manticore_cluster(owner, config, shards=options.shards),
                stage_job(
                    owner,
                    config,
                    shards=options.shards,
                    env=[{"name": "LITELONG_MANTICORE_SHARD_URL", "value": template}],
                ),
            ]
        url = [{"name": "LITELONG_MANTICORE_URL", "value": options.url}]
        return [*children, stage_job(owner, config, shards=spec.parallelism, env=url)]
    return [*children, stage_job(owner, config, shards=spec.parallelism)]
