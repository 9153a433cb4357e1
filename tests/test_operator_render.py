"""What the operator creates for each resource: golden files, and Kubernetes' own schemas.

The golden files under tests/golden/operator/ are the review surface: a change to a child shows
up there as a readable YAML diff. Refresh them with LITELONG_UPDATE_GOLDEN=1 pytest -k render.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import kmock
import kubernetes_validate
import pytest
import yaml

from litelong.api.crd import all_crds
from litelong_operator.config import SUPPORTED_MINORS, OperatorConfig
from litelong_operator.render import owner_of, render

from .conftest import REPO
from .operator_harness import MAX_INT32, as_stored

GOLDEN = Path(__file__).parent / "golden" / "operator"
KUBEFLOW_CRDS = Path(__file__).parent / "data" / "kubeflow-crds"
K8S_VERSION = "1.30"  # the oldest Kubernetes litelong supports
PVC = OperatorConfig()
OBJECT_STORE = OperatorConfig.model_validate(
    {
        "store": {"uri": "s3://team-bucket/litelong", "credentialsSecret": "store-credentials"},
        "podDefaults": {
            "*": {"serviceAccountName": "litelong-worker", "nodeSelector": {"pool": "cpu"}}
        },
    }
)


def sample(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "manifests" / "samples" / f"{name}.yaml").read_text())


def edited(name: str, **spec: Any) -> dict[str, Any]:
    document = copy.deepcopy(sample(name))
    document["spec"].update(spec)
    return document


CASES: dict[str, tuple[dict[str, Any], OperatorConfig]] = {
    "topicdebate-sample": (sample("topicdebate"), PVC),
    "topicdebate-endpoints-with-keys": (
        edited(
            "topicdebate",
            parallelism=4,
            judge={
                "endpoint": {
                    "baseURL": "http://vllm-judge:8000/v1",
                    "model": "gemma-3-1b-it",
                    "apiKeySecretRef": {"name": "llm-keys", "key": "judge"},
                }
            },
            pod={
                "resources": {"requests": {"cpu": 2, "memory": "4Gi"}},
                "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            },
        ),
        PVC,
    ),
    "bm25index-tantivy": (sample("bm25index"), PVC),
    "bm25index-manticore-managed": (
        edited(
            "bm25index",
            backend={
                "type": "manticore",
                "manticore": {"mode": "managed", "shards": 4, "storage": {"size": "200Gi"}},
            },
            chunks={"enabled": False},
        ),
        PVC,
    ),
    "bm25index-manticore-external": (
        edited(
            "bm25index",
            parallelism=8,
            backend={
                "type": "manticore",
                "manticore": {"mode": "external", "url": "http://manticore.search:9308"},
            },
            chunks={"enabled": False},
        ),
        PVC,
    ),
    "synthesisrun-object-store": (edited("synthesisrun", parallelism=16), OBJECT_STORE),
    "trainingjob-pytorchjob-4-nodes": (
        edited(
            "trainingjob",
            parallelism={"nodes": 4, "gpusPerNode": 8, "contextParallel": 2},
            pod={"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
        ),
        PVC,
    ),
    "trainingjob-trainjob": (edited("trainingjob", backend="trainjob"), PVC),
}


def children(case: str) -> list[dict[str, Any]]:
    document, config = CASES[case]
    document = copy.deepcopy(document)
    document["metadata"].update(namespace="ml", uid="0d9c6e2a-4f1b-4c55-9a7e-2f3c1d8b9e10")
    return render(owner_of(document), config)


class _Literal(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, and no anchors: golden files read like manifests."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Literal.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_children_match_their_golden_file(case: str) -> None:
    text = yaml.dump_all(children(case), Dumper=_Literal, sort_keys=False, width=100)
    path = GOLDEN / f"{case}.yaml"
    if os.environ.get("LITELONG_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no golden file: run LITELONG_UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(), (
        f"{case} changed: review, then refresh with LITELONG_UPDATE_GOLDEN=1"
    )


def _crd_schema(path: Path, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return served["schema"]["openAPIV3Schema"]


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields a structural schema does not declare: what the API server's strict field
    validation refuses (plain JSON Schema would let them through, then the server prunes them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                found += unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{path}.{key}")
            elif properties is not None:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_child_validates_against_kubernetes_or_its_crd(case: str) -> None:
    schemas = {
        "PyTorchJob": (KUBEFLOW_CRDS / "kubeflow.org_pytorchjobs.yaml", "v1"),
        "TrainJob": (KUBEFLOW_CRDS / "trainer.kubeflow.org_trainjobs.yaml", "v1alpha1"),
    }
    for child in children(case):
        if child["kind"] in schemas:
            path, version = schemas[child["kind"]]
            schema = _crd_schema(path, version)
            jsonschema.validate(child, schema)
            assert unknown_fields(child, schema) == []
        else:
            kubernetes_validate.validate(child, K8S_VERSION, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_mounted_spec_is_the_resource_a_laptop_runs(case: str) -> None:
    """`litelong stage --spec` in the pod reads the same resource: the same spec hash."""
    document, _ = CASES[case]
    (configmap,) = [c for c in children(case) if c["metadata"]["name"].endswith("-spec")]
    mounted = owner_of(yaml.safe_load(configmap["data"]["resource.yaml"]))
    assert mounted.spec_hash == owner_of(document).spec_hash
    assert all(
        c["metadata"]["labels"]["litelong.io/spec-hash"] == mounted.spec_hash
        for c in children(case)
    )


def test_children_of_a_long_name_fit_kubernetes_name_limits() -> None:
    document = sample("synthesisrun")
    document["metadata"]["name"] = "x" * 63
    for child in render(owner_of(document), PVC):
        assert len(child["metadata"]["name"]) <= 63
        assert not child["metadata"]["name"].startswith("-")


def test_pods_run_as_non_root_on_a_read_only_root_filesystem() -> None:
    for case in CASES:
        for child in children(case):
            spec = child.get("spec") or {}
            templates = [spec["template"]] if "template" in spec else []
            templates += [r["template"] for r in (spec.get("pytorchReplicaSpecs") or {}).values()]
            for template in templates:
                assert template["spec"]["securityContext"]["runAsNonRoot"] is True
                for container in template["spec"]["containers"]:
                    assert container["securityContext"]["readOnlyRootFilesystem"] is True
                    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_our_crds_describe_the_resources_the_goldens_start_from() -> None:
    kinds = {crd["spec"]["names"]["kind"] for crd in all_crds()}
    assert {document["kind"] for document, _ in CASES.values()} <= kinds


SUPPORTED = [f"1.{minor}" for minor in SUPPORTED_MINORS]


@pytest.mark.parametrize("version", SUPPORTED)
def test_a_failing_shard_has_a_retry_limit_the_server_of_each_version_keeps(version: str) -> None:
    """1.29+ limit retries per shard, and one shard out of them fails the Job at once;
    1.27/1.28 lack that field (the server drops it and would retry for ever), so one Job-wide
    limit scaled to the shards stands in for it."""
    document = edited("bm25index", parallelism=4)
    document["metadata"].update(namespace="ml", uid="u-1")
    job = render(owner_of(document), OperatorConfig(kubernetesVersion=version))[-1]
    # only fields this version's API knows (strict: an unknown field fails)
    kubernetes_validate.validate(job, version, strict=True)
    minor = int(version.split(".")[1])
    spec = as_stored(job, minor)["spec"]
    rules = spec["podFailurePolicy"]["rules"]
    if minor >= 29:
        assert spec["backoffLimitPerIndex"] == 3
        assert spec["maxFailedIndexes"] == 0, "one shard out of retries ends the Job"
        assert rules[0]["action"] == "FailIndex"
    else:
        assert "backoffLimitPerIndex" not in spec and "maxFailedIndexes" not in spec
        assert spec["backoffLimit"] == 3 * 4
        assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["values"] == [2], "invalid input is never retried"
    assert rules[1] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }


def test_max_failed_indexes_without_a_per_index_limit_is_refused_as_the_server_does() -> None:
    """The emulated 1.29+ server validates the pair as the Job API does, so a render that
    sets `maxFailedIndexes` alone fails the end-to-end tests as it would fail a cluster."""
    job = render(owner_of(sample("bm25index")), OperatorConfig(kubernetesVersion="1.32"))[-1]
    assert as_stored(job, 32)["spec"]["maxFailedIndexes"] == 0
    del job["spec"]["backoffLimitPerIndex"]
    with pytest.raises(kmock.KubernetesError, match="when maxFailedIndexes is specified"):
        as_stored(job, 32)


def test_a_per_index_limit_is_lost_on_1_28_as_the_emulated_server_models_it() -> None:
    """The fault the version-aware rendering avoids, as kmock's ApiServer reproduces it."""
    job = render(owner_of(sample("bm25index")), OperatorConfig(kubernetesVersion="1.32"))[-1]
    del job["spec"]["podFailurePolicy"]
    spec = as_stored(job, 28)["spec"]
    assert "backoffLimitPerIndex" not in spec and spec["backoffLimit"] == MAX_INT32
    with pytest.raises(kmock.KubernetesError, match="FailIndex"):
        as_stored(render(owner_of(sample("bm25index")), OperatorConfig())[-1], 28)
