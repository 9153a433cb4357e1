"""What every child shares: names, labels, the owner reference, the pod template.

Pure functions of the resource and the operator's config: no API calls, so the golden files
under tests/golden/ show exactly what lands in a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from litelong.api.loading import AnyResource
from litelong.api.v1alpha1.meta import INPUTS_ANNOTATION, PodOptions, SecretKeyRef

from ..config import OperatorConfig

Manifest = dict[str, Any]

SPEC_HASH_LABEL = "litelong.io/spec-hash"
KIND_LABEL = "litelong.io/kind"
MANAGED_BY = "litelong-operator"
SPEC_MOUNT = "/etc/litelong"
SPEC_FILE = f"{SPEC_MOUNT}/resource.yaml"
CACHE_MOUNT = "/tmp"
MAX_NAME = 63
#: The account stage pods run as unless pod options name another (the chart creates it in
#: each of its workloadNamespaces).
WORKER_ACCOUNT = "litelong-worker"


@dataclass(frozen=True)
class Owner:
    """The parts of a resource's body that its children point back to."""

    resource: AnyResource
    uid: str
    namespace: str

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def spec_hash(self) -> str:
        """The identity naming children and the output: spec and inputs' identities (the
        reconciler resolves the inputs first); a preview render without them: the spec hash."""
        if self.resource.refs() and self.resource.inputs() is None:
            return self.resource.spec_hash()
        return self.resource.identity()


def child_name(owner: Owner, suffix: str = "") -> str:
    """`<name>-<hash8>[-suffix]`, the resource name cut so the whole fits a DNS-1123 label.

    The hash is in every name because Jobs are immutable: a changed spec needs new children, and
    a restarted operator must find the same name again (so creates are idempotent).
    """
    tail = f"-{owner.spec_hash[:8]}" + (f"-{suffix}" if suffix else "")
    return owner.name[: MAX_NAME - len(tail)].rstrip("-") + tail


def labels(owner: Owner, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "litelong",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "litelong",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        KIND_LABEL: owner.kind,
        SPEC_HASH_LABEL: owner.spec_hash,
    }


def metadata(owner: Owner, name: str, component: str) -> dict[str, Any]:
    """Name, namespace, labels and the controller owner reference (garbage collection)."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component),  # a fresh dict: callers copy it into pod templates
        "ownerReferences": [
            {
                "apiVersion": owner.resource.api_version,
                "kind": owner.kind,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def spec_config_map(owner: Owner) -> Manifest:
    """The resource as `litelong stage --spec` reads it: the same YAML a laptop runs."""
    document = owner.resource.model_dump(
        mode="json", by_alias=True, exclude_unset=True, exclude={"status"}
    )
    document["metadata"] = {"name": owner.name, "namespace": owner.namespace}
    inputs = owner.resource.metadata.annotations.get(INPUTS_ANNOTATION)
    if inputs is not None:  # the exact inputs the pods read, as the operator resolved them
        document["metadata"]["annotations"] = {INPUTS_ANNOTATION: inputs}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, child_name(owner, "spec"), "spec"),
        "data": {"resource.yaml": yaml.safe_dump(document, sort_keys=False)},
    }


def secret_refs(value: Any) -> list[SecretKeyRef]:
    """Every SecretKeyRef anywhere in a spec, in order, without repeats."""
    found: list[SecretKeyRef] = []
    if isinstance(value, SecretKeyRef):
        found.append(value)
    elif hasattr(value, "__pydantic_fields__"):
        for field in type(value).__pydantic_fields__:
            found.extend(secret_refs(getattr(value, field)))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(secret_refs(item))
    unique: list[SecretKeyRef] = []
    for ref in found:
        if ref not in unique:
            unique.append(ref)
    return unique


def environment(owner: Owner, config: OperatorConfig) -> list[dict[str, Any]]:
    """Store location, cache, and API keys as secretKeyRef: the operator never reads a value."""
    env: list[dict[str, Any]] = [
        {"name": "LITELONG_STORE", "value": config.store.pod_uri},
        {"name": "LITELONG_CACHE", "value": f"{CACHE_MOUNT}/litelong-cache"},
        {"name": "HOME", "value": CACHE_MOUNT},
    ]
    for ref in secret_refs(owner.resource.spec):
        env.append(
            {
                "name": ref.env_var(),
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    return env


def volumes(owner: Owner, config: OperatorConfig) -> tuple[list[Manifest], list[Manifest]]:
    """(volumes, mounts): the spec file, a writable /tmp, and the store claim if there is one."""
    vols: list[Manifest] = [
        {"name": "spec", "configMap": {"name": child_name(owner, "spec")}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[Manifest] = [
        {"name": "spec", "mountPath": SPEC_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": CACHE_MOUNT},
    ]
    if config.store.pvc is not None:
        vols.append(
            {"name": "store", "persistentVolumeClaim": {"claimName": config.store.pvc.claim_name}}
        )
        mounts.append({"name": "store", "mountPath": config.store.pvc.mount_path})
    return vols, mounts


CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def container(
    owner: Owner,
    config: OperatorConfig,
    options: PodOptions,
    *,
    name: str,
    image: str,
    command: list[str],
    mounts: list[Manifest],
    env: list[Manifest] | None = None,
) -> Manifest:
    resources = options.resources.model_dump(exclude_defaults=True)
    out: Manifest = {
        "name": name,
        "image": options.image or image,
        "command": command,
        "env": environment(owner, config) + (env or []),
        "volumeMounts": mounts,
        "securityContext": CONTAINER_SECURITY,
        # a failed stage's last log lines become the pod's termination message: the operator
        # copies it into the Failed condition without reading any logs itself
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if config.store.credentials_secret:
        out["envFrom"] = [{"secretRef": {"name": config.store.credentials_secret}}]
    if resources:
        out["resources"] = resources
    return out


def worker_account(options: PodOptions) -> str:
    return options.service_account_name or WORKER_ACCOUNT


def pod_spec(
    options: PodOptions,
    containers: list[Manifest],
    vols: list[Manifest],
    *,
    restart_policy: str = "Never",
) -> Manifest:
    spec: Manifest = {
        "restartPolicy": restart_policy,
        "serviceAccountName": worker_account(options),
        "automountServiceAccountToken": False,
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": vols,
    }
    if options.node_selector:
        spec["nodeSelector"] = options.node_selector
    if options.tolerations:
        spec["tolerations"] = options.tolerations
    return spec
