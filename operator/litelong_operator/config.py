"""Chart-wide defaults: images, pod options, the store, and how often status is re-read.

A resource's `spec.pod` wins over these; these win over built-in defaults. The Helm chart writes
them into a ConfigMap mounted at $LITELONG_OPERATOR_CONFIG (YAML, camelCase like the CRDs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from litelong.api.v1alpha1.meta import CamelModel, PodOptions

CONFIG_ENV = "LITELONG_OPERATOR_CONFIG"
#: Kubernetes minor versions (1.x) the children are rendered and tested for.
SUPPORTED_MINORS = range(27, 33)


class PVCStore(CamelModel):
    """A ReadWriteMany claim mounted into every stage pod (and read-only into the operator)."""

    claim_name: str = Field(min_length=1, description="PersistentVolumeClaim name.")
    mount_path: str = Field(default="/var/lib/litelong", description="Where pods mount it.")


class StoreConfig(CamelModel):
    """The artifact store as the stage pods see it: a PVC, or object storage URIs."""

    uri: str | None = Field(
        default=None,
        description="Store URI for pods (s3://bucket/litelong); unset with a PVC: its mount path.",
    )
    pvc: PVCStore | None = Field(default=None, description="Claim to mount; unset: none.")
    credentials_secret: str | None = Field(
        default=None,
        description="Secret whose keys become pod environment (AWS_ACCESS_KEY_ID, ...): "
        "object storage credentials, never read by the operator itself.",
    )

    @model_validator(mode="after")
    def _somewhere(self) -> StoreConfig:
        if self.uri is None and self.pvc is None:
            raise ValueError("store needs a uri, a pvc, or both")
        return self

    @property
    def pod_uri(self) -> str:
        if self.uri:
            return self.uri
        assert self.pvc is not None
        return f"file://{self.pvc.mount_path}"


class Images(CamelModel):
    worker: str = Field(
        default="ghcr.io/litelong/worker:0.1.0",
        description="CPU stages (debate, index, synthesis).",
    )
    trainer: str = Field(default="ghcr.io/litelong/trainer:0.1.0", description="CUDA training.")
    manticore: str = Field(
        default="manticoresearch/manticore:10.1.0", description="Managed Manticore pods."
    )


class OperatorConfig(CamelModel):
    """Everything the operator needs besides the resources themselves."""

    images: Images = Field(default_factory=Images)
    store: StoreConfig = Field(
        default_factory=lambda: StoreConfig(pvc=PVCStore(claim_name="litelong-store"))
    )
    pod_defaults: dict[str, PodOptions] = Field(
        default_factory=dict,
        description="Per kind (TopicDebate, ...) or '*': pod options a resource's spec.pod "
        "overrides field by field.",
    )
    backoff_limit_per_index: int = Field(default=3, ge=0, description="Retries of one shard.")
    kubernetes_version: str | None = Field(
        default=None,
        pattern=r"^1\.\d+$",
        description="The API server's version (1.27-1.32), which decides how a Job's retries "
        "are rendered; unset: read from the server's /version when the operator starts.",
    )
    manticore_memory: str = Field(default="4Gi", description="Memory limit per Manticore pod.")

    @property
    def per_index_backoff(self) -> bool:
        """Does the server keep a Job's `backoffLimitPerIndex`? Beta and on by default from
        1.29; alpha (off) in 1.28 and absent in 1.27, where the server silently drops it."""
        return self.kubernetes_version is None or int(self.kubernetes_version.split(".")[1]) >= 29

    def pod_options(self, kind: str, own: PodOptions) -> PodOptions:
        """The resource's own options over the kind's defaults over the '*' defaults."""
        merged: dict[str, Any] = {}
        for layer in (self.pod_defaults.get("*"), self.pod_defaults.get(kind), own):
            if layer is not None:
                merged.update(layer.model_dump(exclude_unset=True, exclude_defaults=True))
        return PodOptions.model_validate(merged)


def load_config(path: str | Path | None = None) -> OperatorConfig:
    """$LITELONG_OPERATOR_CONFIG's YAML, or built-in defaults when it is unset."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return OperatorConfig()
    data = yaml.safe_load(Path(path).read_text()) or {}
    return OperatorConfig.model_validate(data)
