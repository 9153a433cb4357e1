"""The Indexed Job every CPU stage runs: one pod per shard, `litelong stage KIND`.

Pod i builds shard i ($JOB_COMPLETION_INDEX) and commits it; the pod that commits the last
missing part also commits the artifact, so no separate merge Job is needed. A retried pod
finds its part committed and exits at once.

Retries are rendered for what the API server keeps (`retries`): a server that drops a field
does so silently, and a Job without a limit retries a failing shard for ever.
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
            **retries(config, shards),
            "template": {
                "metadata": {"labels": dict(meta["labels"])},
                "spec": pod_spec(options, [worker], vols),
            },
        },
    }


#: litelong's exit code for invalid input: a retry would fail the same way.
INVALID_INPUT_EXIT = 2


def retries(config: OperatorConfig, shards: int) -> Manifest:
    """How many times a failing shard runs again before the Job (and the resource) fails.

    1.29+: `backoffLimitPerIndex` per shard, and an invalid-input exit fails that index at
    once; `maxFailedIndexes: 0` ends the Job when one index has failed for good (without it
    the other shards run on and the Job fails only when all are done, yet one missing part
    means no output). 1.27/1.28 (no per-index limit): one `backoffLimit` for the whole Job,
    scaled to the shards, and an invalid-input exit fails the Job at once (`FailIndex` needs
    per-index limits). Either way, pods evicted or preempted (`DisruptionTarget`) do not count.
    """
    per_index = config.per_index_backoff
    fail = "FailIndex" if per_index else "FailJob"
    policy: dict[str, list[Manifest]] = {
        "rules": [
            {
                "action": fail,
                "onExitCodes": {
                    "containerName": "stage",
                    "operator": "In",
                    "values": [INVALID_INPUT_EXIT],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }
    if per_index:
        return {
            "backoffLimitPerIndex": config.backoff_limit_per_index,
            "maxFailedIndexes": 0,
            "podFailurePolicy": policy,
        }
    # 1.27/1.28's API marks onPodConditions required in every rule; empty means "not used"
    policy["rules"][0]["onPodConditions"] = []
    return {"backoffLimit": config.backoff_limit_per_index * shards, "podFailurePolicy": policy}
