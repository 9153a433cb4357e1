"""CustomResourceDefinitions generated from the pydantic models (never written by hand).

Kubernetes wants *structural* OpenAPI v3 schemas: every node typed, no `$ref`, no `anyOf` over
types, `nullable` instead of a null type, no `additionalProperties` beside `properties`. This
module turns pydantic's JSON Schema into that, keeping descriptions, enums, bounds and defaults,
and fails loudly when a model uses a construct Kubernetes would reject.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .v1alpha1 import GROUP, KINDS, VERSION, Resource

_DROPPED_KEYS = {"title", "$defs"}


class SchemaNotStructural(ValueError):
    """A model uses a JSON Schema construct that has no structural OpenAPI form."""


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, every `$ref` inlined."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(schema, schema.get("$defs", {}), path=model.__name__)


def _structural(
    node: dict[str, Any], defs: dict[str, Any], path: str, overlay: bool = False
) -> dict[str, Any]:
    """Convert one schema node; `overlay` marks the sibling keys of a `$ref` or `anyOf`."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        resolved = _structural(target, defs, path)
        resolved.update(
            _structural(node, defs, path, overlay=True)
        )  # the field's own description wins
        return resolved
    if "allOf" in node and len(node["allOf"]) == 1:
        resolved = _structural(node.pop("allOf")[0], defs, path)
        resolved.update(_structural(node, defs, path, overlay=True))
        return resolved
    if "anyOf" in node:
        options = node.pop("anyOf")
        non_null = [option for option in options if option.get("type") != "null"]
        if len(non_null) != 1 or len(options) != 2:
            raise SchemaNotStructural(f"{path}: a union other than Optional[X] ({options})")
        resolved = _structural(non_null[0], defs, path)
        resolved.update(_structural(node, defs, path, overlay=True))
        resolved["nullable"] = True
        if resolved.get("default", "absent") is None:
            del resolved["default"]
        return resolved
    if "oneOf" in node or "not" in node or "allOf" in node:
        raise SchemaNotStructural(f"{path}: oneOf/allOf/not have no structural form")

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {
                name: _structural(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key == "items":
            out[key] = _structural(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _structural(value, defs, f"{path}.*")
            # False: Kubernetes prunes unknown fields itself and forbids it beside `properties`.
        elif key == "default" and value is None:
            continue
        else:
            out[key] = value
    if "properties" in out:
        _default_empty_objects(out)
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    if overlay:
        return out
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaNotStructural(f"{path}: untyped schema {node}")
    return out


def _default_empty_objects(schema: dict[str, Any]) -> None:
    """Give sub-objects with defaults `default: {}` so the API server fills their defaults too.

    `Optional[X]` fields lose the `nullable` mark here: Kubernetes prunes a null, which leaves
    the field unset, and unset is what None means in the models.
    """
    required = set(schema.get("required", ()))
    for name, child in schema["properties"].items():
        optional = child.pop("nullable", False)
        defaulted = name not in required and "default" not in child and not optional
        is_object = child.get("type") == "object" and "properties" in child
        if defaulted and is_object and not child.get("required"):
            child["default"] = {}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def crd(resource: type[Resource]) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CRD of one kind."""
    fields = resource.model_fields
    spec_model = fields["spec"].annotation
    status_model = _strip_optional(fields["status"].annotation)
    kind = resource.__name__
    header, json_path, column_type = resource.progress_column
    schema = {
        "type": "object",
        "description": (resource.__doc__ or kind).strip(),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "litelong.io/v1alpha1."},
            "kind": {"type": "string", "description": kind + "."},
            "metadata": {"type": "object"},
            "spec": openapi_schema(spec_model),  # type: ignore[arg-type]
            "status": openapi_schema(status_model),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "litelong",
                "app.kubernetes.io/part-of": "litelong",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": resource.plural,
                "singular": kind.lower(),
                "shortNames": list(resource.short_names),
                "categories": ["litelong"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
                        _column("Phase", ".status.phase"),
                        _column(header, json_path, column_type),
                        _column("Progress", ".status.progress.summary"),
                        _column("ETA", ".status.plan.eta"),
                        _column("Age", ".metadata.creationTimestamp", "date"),
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _column(name: str, path: str, kind: str = "string") -> dict[str, Any]:
    """A printer column `kubectl get` shows by default (no `priority`: not only with -o wide)."""
    return {"name": name, "type": kind, "jsonPath": path}


def _strip_optional(annotation: Any) -> type[BaseModel]:
    args = [arg for arg in getattr(annotation, "__args__", ()) if arg is not type(None)]
    return args[0] if args else annotation


def all_crds() -> list[dict[str, Any]]:
    return [crd(resource) for resource in KINDS.values()]


def crd_filename(document: dict[str, Any]) -> str:
    """kubebuilder's naming: <group>_<plural>.yaml."""
    spec = document["spec"]
    return f"{spec['group']}_{spec['names']['plural']}.yaml"


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def write_crds(directory: Path) -> list[Path]:
    """Write one file per CRD; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for document in all_crds():
        path = directory / crd_filename(document)
        path.write_text(to_yaml(document))
        written.append(path)
    return written
