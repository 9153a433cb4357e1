"""A TrainingJob as a Kubeflow PyTorchJob (kubeflow.org/v1) or Trainer v2 TrainJob.

Every node runs `torchrun -m litelong train`; torchrun reads the node count, rank and master
address from the PET_* variables both Kubeflow controllers inject, so the command is the same
on one GPU, one node or many.
"""

from __future__ import annotations

import copy
from typing import Any

from litelong.api.v1alpha1 import TrainingJobSpec

from ..config import OperatorConfig
from .common import (
    SPEC_FILE,
    Manifest,
    Owner,
    child_name,
    container,
    labels,
    metadata,
    pod_spec,
    volumes,
)

TRAIN_COMMAND = ["torchrun", "-m", "litelong", "train", "--spec", SPEC_FILE]
#: NCCL moves tensors between processes through /dev/shm; the container default (64 MiB) is
#: far too small for 8 GPUs.
SHM_VOLUME = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
SHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}
GPU = "nvidia.com/gpu"


def _node_container(owner: Owner, config: OperatorConfig, name: str) -> tuple[Manifest, Any]:
    spec: TrainingJobSpec = owner.resource.spec
    options = config.pod_options(owner.kind, spec.pod)
    vols, mounts = volumes(owner, config)
    node = container(
        owner,
        config,
        options,
        name=name,
        image=config.images.trainer,
        command=TRAIN_COMMAND,
        mounts=[*mounts, SHM_MOUNT],
    )
    gpus = str(spec.parallelism.gpus_per_node)
    resources = node.setdefault("resources", {})
    resources.setdefault("limits", {})[GPU] = gpus
    resources.setdefault("requests", {})[GPU] = gpus
    return node, (options, [*vols, SHM_VOLUME])


def pytorch_job(owner: Owner, config: OperatorConfig) -> Manifest:
    """Master (node rank 0) plus nodes-1 Workers; the container must be named `pytorch`."""
    spec: TrainingJobSpec = owner.resource.spec
    node, (options, vols) = _node_container(owner, config, "pytorch")
    meta = metadata(owner, child_name(owner), "training")
    template = {
        "metadata": {"labels": dict(meta["labels"])},
        "spec": pod_spec(options, [node], vols, restart_policy="OnFailure"),
    }
    replicas: dict[str, Any] = {
        "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template}
    }
    if spec.parallelism.nodes > 1:
        replicas["Worker"] = {
            "replicas": spec.parallelism.nodes - 1,
            "restartPolicy": "OnFailure",
            "template": copy.deepcopy(template),
        }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": meta,
        "spec": {
            "nprocPerNode": str(spec.parallelism.gpus_per_node),
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3},
            "pytorchReplicaSpecs": replicas,
        },
    }


def train_job(owner: Owner, config: OperatorConfig) -> Manifest:
    """A Trainer v2 TrainJob on the `torch-distributed` ClusterTrainingRuntime."""
    spec: TrainingJobSpec = owner.resource.spec
    node, (options, vols) = _node_container(owner, config, "node")
    pod = pod_spec(options, [], vols)
    override: dict[str, Any] = {
        "targetJobs": [{"name": "node"}],
        "metadata": {"labels": labels(owner, "training")},
        "spec": {
            "serviceAccountName": pod["serviceAccountName"],
            "securityContext": pod["securityContext"],
            "volumes": vols,
            "containers": [
                {
                    "name": "node",
                    "volumeMounts": node["volumeMounts"],
                    "securityContext": node["securityContext"],
                }
            ],
        },
    }
    for key in ("nodeSelector", "tolerations"):
        if key in pod:
            override["spec"][key] = pod[key]
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": metadata(owner, child_name(owner), "training"),
        "spec": {
            "runtimeRef": {
                "name": "torch-distributed",
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
            },
            "trainer": {
                "image": node["image"],
                "command": node["command"],
                "numNodes": spec.parallelism.nodes,
                "numProcPerNode": spec.parallelism.gpus_per_node,
                "resourcesPerNode": node["resources"],
                "env": node["env"],
            },
            "podTemplateOverrides": [override],
        },
    }
