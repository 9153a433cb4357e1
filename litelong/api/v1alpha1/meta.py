"""Shared by the four kinds: metadata, status with KEP-1623 conditions, store and pod options.

Field names are the YAML names (camelCase); Python attributes are snake_case. Every field has a
description because the generated CRDs turn them into `kubectl explain` text.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "litelong.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: A DNS-1123 label: children (Jobs, Services) are named after the resource, so the stricter rule.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Where a resource carries the identities of the committed inputs it is made from, as JSON
#: `{"BM25Index/corpus": "<identity>"}`: set by `litelong run` and by the operator, read by stages.
INPUTS_ANNOTATION = "litelong.io/inputs"
DEFAULT_NAMESPACE = "default"


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )


def _quantity(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


#: A Kubernetes quantity ("4", "500m", "16Gi"); YAML integers are accepted and kept as strings.
Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]

ResourceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description="Name of another litelong resource in the same namespace.",
    ),
]


class ObjectMeta(BaseModel):
    """The metadata litelong reads; the rest (managedFields, uid...) is ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description="DNS-1123 label: lowercase letters, digits and '-', at most 63 characters.",
    )
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description=(
            "Namespace in a cluster; locally, the store folder the output lives in (default "
            "`default`). A DNS-1123 label, as Kubernetes requires, so it is never a path."
        ),
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    generation: int | None = Field(default=None, description="Set by the API server.")

    @field_validator("namespace", mode="before")
    @classmethod
    def _empty_namespace_is_unset(cls, value: Any) -> Any:
        """`namespace: ""` means "the default" to kubectl, so it does here too."""
        return None if value == "" else value


class OutputSpec(CamelModel):
    """Where a stage commits its outputs."""

    store: str | None = Field(
        default=None,
        description=(
            "Artifact store URI (fsspec): file://, s3://, gs://... Unset: the runtime's default "
            "(`--store`, LITELONG_STORE, or file://./litelong-data)."
        ),
    )


class ResourceRequirements(CamelModel):
    """Container resources, as in a Pod spec."""

    requests: dict[str, Quantity] = Field(default_factory=dict, description="e.g. cpu: 4.")
    limits: dict[str, Quantity] = Field(default_factory=dict, description="e.g. memory: 16Gi.")


class PodOptions(CamelModel):
    """How the stage's pods run in a cluster. Runtime-only: never part of the spec hash."""

    image: str | None = Field(default=None, description="Container image; chart default if unset.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="Requests and limits per pod."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Pod tolerations, as in a Pod spec."
    )
    service_account_name: str | None = Field(
        default=None, description="ServiceAccount for the pods; chart default if unset."
    )


class SecretKeyRef(CamelModel):
    """A key of a Secret in the resource's namespace; its value never appears in logs or status."""

    name: str = Field(description="Secret name.")
    key: str = Field(description="Key inside the Secret.")

    def env_var(self) -> str:
        """The variable a pod (or a laptop) carries the key in: LITELONG_SECRET_<NAME>_<KEY>."""
        return "LITELONG_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{self.name}_{self.key}".upper())


class Condition(CamelModel):
    """A KEP-1623 condition (metav1.Condition)."""

    type: str = Field(
        description="Ready, Progressing, Failed or Waiting; RefsPresent for kinds with refs."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="CamelCase reason, for machines.",
    )
    message: str = Field(default="", max_length=32768, description="What happened, for people.")
    last_transition_time: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When the status last changed.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was set for."
    )


Phase = Literal["Pending", "Waiting", "Running", "Succeeded", "Failed"]


class Progress(CamelModel):
    """How far the work is: `done` of `total` `unit`s."""

    done: int = Field(default=0, ge=0, description="Units finished.")
    total: int | None = Field(default=None, ge=0, description="Units in all, when known.")
    unit: str = Field(default="shards", description="What is counted (shards, steps...).")
    summary: str = Field(default="", description="Short form shown by kubectl, e.g. 3/16.")


class PlanStatus(CamelModel):
    """What `litelong plan` estimates, written when the resource is created, and the ETA."""

    wall_seconds: float | None = Field(default=None, description="Estimated wall time.")
    cpu_hours: float | None = Field(default=None, description="Estimated CPU-hours.")
    gpu_hours: float | None = Field(default=None, description="Estimated GPU-hours.")
    bytes: int | None = Field(default=None, description="Estimated bytes written.")
    fits: bool | None = Field(
        default=None, description="TrainingJob: whether it fits in GPU memory."
    )
    summary: str = Field(default="", description="The headline figures, for people.")
    eta: str | None = Field(default=None, description="Time left, e.g. 4.5 min (kubectl column).")
    eta_seconds: int | None = Field(default=None, ge=0, description="Time left in seconds.")


class StatusBase(CamelModel):
    """Status common to the four kinds; each kind adds typed `outputs`."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status describes."
    )
    phase: Phase = Field(default="Pending", description="Pending, Waiting, Running, ...")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="KEP-1623 conditions, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    progress: Progress = Field(default_factory=Progress, description="Work done so far.")
    spec_hash: str | None = Field(
        default=None,
        description="Identity naming the output folder: the spec and the identities of its inputs.",
    )
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="Identities of the committed inputs the output is made from, by Kind/name.",
    )
    plan: PlanStatus | None = Field(
        default=None, description="Estimated cost (docs/plan.md) and time left."
    )


class OutputsBase(CamelModel):
    """Where the committed artifact is."""

    uri: str | None = Field(default=None, description="URI of the committed artifact folder.")


SpecT = TypeVar("SpecT", bound=CamelModel)
StatusT = TypeVar("StatusT", bound=StatusBase)


class Resource(CamelModel, Generic[SpecT, StatusT]):
    """A litelong custom resource: the same object in a YAML file and in a cluster."""

    #: Per kind: the short names, plural and printer column that the CRD declares.
    plural: ClassVar[str]
    short_names: ClassVar[tuple[str, ...]]
    #: (header, JSONPath, type) of the kind's own progress column.
    progress_column: ClassVar[tuple[str, str, str]]
    #: Spec fields (dotted YAML paths) that change how a stage runs, not what it makes.
    runtime_fields: ClassVar[frozenset[str]] = frozenset({"parallelism", "output.store", "pod"})
    #: Spec fields naming other resources, with the kind they name.
    ref_fields: ClassVar[dict[str, str]] = {}
    #: The manifest count that must not be 0 for the output to be committed (None: no check).
    output_count: ClassVar[str | None] = None

    api_version: Literal["litelong.io/v1alpha1"] = Field(
        alias="apiVersion", description="litelong.io/v1alpha1."
    )
    kind: str = Field(description="The resource kind.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: SpecT = Field(description="What to make.")
    status: StatusT | None = Field(default=None, description="What has been made (operator-set).")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """Where the output lives in the store: `metadata.namespace`, else `default`."""
        return self.metadata.namespace or DEFAULT_NAMESPACE

    def spec_hash(self) -> str:
        """12 hex digits of sha256 over the canonical spec, runtime-only fields left out.

        Defaults are included, so the hash names what would be made, not how it was written.
        """
        return _digest(self._canonical_spec())

    def identity(self) -> str:
        """The name of this resource's output: its spec hash and its inputs' identities.

        A resource without refs is its spec hash. With refs, the identities of the committed
        inputs (`inputs()`) enter the hash, so a changed input gives a new identity and every
        dependent reruns. Before its inputs are resolved, a resource with refs has no identity.
        """
        if not self.refs():
            return self.spec_hash()
        inputs = self.inputs()
        if inputs is None:
            raise UnresolvedInputs(f"{self.kind}/{self.name}: inputs not resolved yet")
        return _digest({"spec": self._canonical_spec(), "inputs": inputs})

    def inputs(self) -> dict[str, str] | None:
        """`{"Kind/name": identity}` of the committed inputs, when resolved; else None."""
        raw = self.metadata.annotations.get(INPUTS_ANNOTATION)
        if raw is None:
            return None
        value = json.loads(raw)
        return {str(key): str(item) for key, item in value.items()}

    def with_inputs(self, inputs: dict[str, str]) -> Any:
        """A copy carrying the identities of its inputs (what makes `identity()` known)."""
        annotations = {
            **self.metadata.annotations,
            INPUTS_ANNOTATION: json.dumps(dict(sorted(inputs.items())), separators=(",", ":")),
        }
        metadata = self.metadata.model_copy(update={"annotations": annotations})
        return self.model_copy(update={"metadata": metadata})

    def _canonical_spec(self) -> dict[str, Any]:
        spec = self.spec.model_dump(mode="json", by_alias=True)
        for dotted in self.runtime_fields:
            *parents, leaf = dotted.split(".")
            node: Any = spec
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(leaf, None)
        return spec

    def refs(self) -> list[tuple[str, str]]:
        """The resources this one needs, as (kind, name) pairs."""
        named = ((kind, getattr(self.spec, field)) for field, kind in self.ref_fields.items())
        return [(kind, name) for kind, name in named if name]

    def ref_keys(self) -> list[str]:
        """The refs as `Kind/name`, the keys of `inputs()`."""
        return [f"{kind}/{name}" for kind, name in self.refs()]


class UnresolvedInputs(RuntimeError):
    """An identity was asked of a resource whose inputs' identities are not known yet."""


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
