"""Generated CRDs: committed copies current, valid apiextensions/v1, structural, samples conform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from litelong.api import load_file
from litelong.api.crd import all_crds, crd_filename, to_yaml

from .conftest import REPO, SAMPLES

CRD_DIR = REPO / "manifests" / "crds"
GENERATED = {crd_filename(document): document for document in all_crds()}
K8S_VERSION = "1.30"  # the oldest Kubernetes litelong supports


def test_committed_crds_match_the_models() -> None:
    """Fails when a model changed and `litelong crds --out manifests/crds/` was not rerun."""
    committed = {
        path.name: path.read_text()
        for path in CRD_DIR.glob("*.yaml")
        if not path.name.startswith("kopf.dev_")  # kopf's peering CRDs, not generated
    }
    generated = {name: to_yaml(document) for name, document in GENERATED.items()}
    assert committed.keys() == generated.keys()
    stale = [name for name in generated if committed[name] != generated[name]]
    assert not stale, f"regenerate with `litelong crds --out manifests/crds/`: {stale}"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_crd_is_a_valid_apiextensions_v1_object(name: str) -> None:
    kubernetes_validate.validate(GENERATED[name], K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_crd_schema_is_structural(name: str) -> None:
    (version,) = GENERATED[name]["spec"]["versions"]
    assert structural_violations(version["schema"]["openAPIV3Schema"]) == []


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_crd_defaults_validate_against_their_schema(name: str) -> None:
    (version,) = GENERATED[name]["spec"]["versions"]
    for _path, node in walk(version["schema"]["openAPIV3Schema"]):
        if "default" in node:
            jsonschema.Draft4Validator(node).validate(node["default"])


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_crd_declares_status_columns_and_category(name: str) -> None:
    spec = GENERATED[name]["spec"]
    (version,) = spec["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[:2] == ["Ready", "Phase"] and columns[-1] == "Age"
    assert "litelong" in spec["names"]["categories"]
    assert spec["names"]["shortNames"]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_validate_against_the_generated_openapi_schema(path: Path) -> None:
    schemas = {doc["spec"]["names"]["kind"]: doc for doc in GENERATED.values()}
    for document in yaml.safe_load_all(path.read_text()):
        schema = schemas[document["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.Draft4Validator(schema).validate(document)
    assert load_file(path)  # and the pydantic models accept it


def test_schema_rejects_what_the_models_reject() -> None:
    """The CRD keeps enums and bounds, so `kubectl apply` refuses what `validate` refuses."""
    schema = GENERATED["litelong.io_bm25indexes.yaml"]["spec"]["versions"][0]["schema"]
    validator = jsonschema.Draft4Validator(schema["openAPIV3Schema"])
    bad = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "BM25Index",
        "metadata": {"name": "x"},
        "spec": {"corpus": [{"uri": "a", "format": "csv"}], "minChars": -1},
    }
    messages = sorted(error.message for error in validator.iter_errors(bad))
    assert messages == [
        "'csv' is not one of ['jsonl', 'parquet']",
        "-1 is less than the minimum of 0",
    ]


# -- the structural schema rules of Kubernetes, as its documentation states them -------------

JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def walk(node: dict[str, Any], path: str = "") -> Any:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def structural_violations(root: dict[str, Any]) -> list[str]:
    problems = []
    for path, node in walk(root):
        exempt = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        if not node.get("type") and not exempt:
            problems.append(f"{path or '<root>'}: no type")
        if "$ref" in node:
            problems.append(f"{path}: $ref")
        if any(junctor in node for junctor in JUNCTORS):
            problems.append(f"{path}: logical junctor")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties beside additionalProperties")
        if node.get("x-kubernetes-list-type") == "map":
            required = set(node["items"].get("required", ()))
            missing = set(node["x-kubernetes-list-map-keys"]) - required
            if missing:
                problems.append(f"{path}: list map keys not required: {missing}")
    metadata = root["properties"].get("metadata", {})
    if set(metadata) - {"type"}:
        problems.append("metadata: only name/generateName restrictions are allowed")
    return problems


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_kubectl_get_shows_ready_phase_and_progress_without_wide(name: str) -> None:
    (version,) = GENERATED[name]["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    assert [c["name"] for c in columns][:2] == ["Ready", "Phase"]
    assert "Progress" in [c["name"] for c in columns]
    assert all(c.get("priority", 0) == 0 for c in columns), "priority > 0 shows only with -o wide"
