"""The Indexed Job every CPU stage runs: one pod per shard, `litelong stage KIND`.

Pod i builds shard i ($JOB_COMPLETION_INDEX) and commits it; the pod that commits the last
missing part also commits the artifact, so no separate merge Job is needed. A retried pod
finds its part committed and exits at once.
"""

from __future__ import annotations

from typing import Any

from ..config import OperatorConfig
from .common import SPEC_FILE, Manifest, Owner, child_name, container, metadata, pod_spec, volumes


def stage_job(
    owner: Owner,
    config: OperatorConfig,
    *,
    shards: int,
    env: list[Manifest] | None = None,
    component: str | None = None,
) -> Manifest:
    spec: Any = owner.resource.spec
    options = config.pod_options(owner.kind, spec.pod)
    vols, mounts = volumes(owner, config)
    command = ["litelong", "stage", owner.kind, "--spec", SPEC_FILE, "--of", str(shards)]
    worker = container(
        owner,
        config,
        options,
        name="stage",
        image=config.images.worker,
        command=command,
        mounts=mounts,
        env=env,
    )
    component = component or owner.kind.lower()
    meta = metadata(owner, child_name(owner), component)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            "backoffLimitPerIndex": config.backoff_limit_per_index,
            "template": {
                "metadata": {"labels": dict(meta["labels"])},
                "spec": pod_spec(options, [worker], vols),
            },
        },
    }
