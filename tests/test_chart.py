"""The chart as `helm lint`, `helm template` and `helm install` see it (the real Helm library)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from litelong_operator.config import OperatorConfig

from .conftest import REPO

CHART = REPO / "charts" / "litelong"
K8S_VERSION = "1.30"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
#: None is the chart's defaults; then every documented values file.
CASES: list[Path | None] = [None, *VALUES_FILES]
#: Objects whose schema is a CRD of another project, checked for shape only.
FOREIGN_KINDS = {"ServiceMonitor"}


def case_id(path: Path | None) -> str:
    return "defaults" if path is None else path.name


def values_of(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(chart: helm.Chart, values: dict[str, Any] | None) -> dict[str, str]:
    return chart.render(values, name="litelong", namespace="litelong-system", is_install=True)


def objects(chart: helm.Chart, values: dict[str, Any] | None) -> list[dict[str, Any]]:
    rendered = render(chart, values)
    return [
        document
        for template, text in sorted(rendered.items())
        if not template.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document
    ]


def one(items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [item for item in items if item["kind"] == kind]
    return found


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema for every CRD the chart installs."""
    schemas = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def test_chart_version_follows_the_package() -> None:
    import litelong

    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    package = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert meta["version"] == meta["appVersion"] == package == litelong.__version__


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_helm_lint_is_clean(path: Path | None) -> None:
    report = helm.lint(CHART, values_of(path), strict=True, kube_version=f"v{K8S_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_every_rendered_object_validates_against_kubernetes(
    chart: helm.Chart, path: Path | None
) -> None:
    schemas = crd_schemas()
    rendered = objects(chart, values_of(path))
    assert {"Deployment", "ClusterRole", "ConfigMap"} <= {o["kind"] for o in rendered}
    for item in rendered:
        key = (item["apiVersion"], item["kind"])
        if key in schemas:  # our own CRDs (kopf's peering)
            jsonschema.Draft4Validator(schemas[key]).validate(item)
        elif item["kind"] in FOREIGN_KINDS:
            assert item["spec"]["endpoints"] and item["spec"]["selector"]["matchLabels"]
        else:
            kubernetes_validate.validate(item, K8S_VERSION, strict=True)


def test_chart_crds_are_the_generated_ones() -> None:
    for generated in sorted((REPO / "manifests" / "crds").glob("*.yaml")):
        assert (CHART / "crds" / generated.name).read_text() == generated.read_text(), (
            f"charts/litelong/crds/{generated.name} drifted: run "
            "`litelong crds --out charts/litelong/crds/`"
        )
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(crd, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"operator": {"replicas": 0}}, "/operator/replicas"),
        ({"operatr": {}}, "'operatr' not allowed"),
        ({"store": {"pvc": {"enabled": False}}}, "/store"),
        ({"store": {"uri": "bucket/litelong"}}, "/store/uri"),
        ({"podDefaults": {"Pod": {}}}, "'Pod'"),
        ({"llm": {"endpoints": [{"name": "qwen"}]}}, "missing property 'model'"),
        ({"operator": {"logLevel": "chatty"}}, "/operator/logLevel"),
        ({"images": {"worker": {"repository": ""}}}, "/images/worker/repository"),
    ],
)
def test_bad_values_fail_install_naming_the_value(
    chart: helm.Chart, values: dict[str, Any], says: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as failure:
        render(chart, values)
    assert says in str(failure.value)


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_the_operator_loads_the_config_the_chart_writes(
    chart: helm.Chart, path: Path | None
) -> None:
    values = values_of(path) or {}
    configmap = one(objects(chart, values), "ConfigMap")
    config = OperatorConfig.model_validate(yaml.safe_load(configmap["data"]["operator.yaml"]))
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    worker = values.get("images", {}).get("worker", {})
    assert config.images.worker == f"{worker.get('repository', 'ghcr.io/litelong/worker')}:" + (
        worker.get("tag") or app_version
    )
    assert config.pod_options("BM25Index", config.pod_defaults["*"]).service_account_name == (
        "litelong-worker"
    )
    if path is None:  # the chart's defaults are the operator's own
        assert config.images == OperatorConfig().images
    store = values.get("store", {})
    if store.get("uri"):
        assert config.store.uri == store["uri"] and config.store.pvc is None
        assert config.store.credentials_secret == store["credentialsSecret"]
    else:
        assert config.store.pvc is not None and config.store.pvc.claim_name == "litelong-store"


def test_a_values_change_rolls_the_operator(chart: helm.Chart) -> None:
    def checksum(values: dict[str, Any] | None) -> str:
        deployment = one(objects(chart, values), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(None) != checksum({"manticore": {"memory": "16Gi"}})
    assert checksum(None) == checksum({"operator": {"replicas": 3}})


def test_chart_rbac_is_the_audited_cluster_role(chart: helm.Chart) -> None:
    """manifests/rbac is what the operator tests audit every API call against."""
    audited = [
        d
        for d in yaml.safe_load_all((REPO / "manifests/rbac/rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    ]
    assert one(objects(chart, None), "ClusterRole")["rules"] == audited[0]["rules"]


def test_the_operator_pod_is_hardened(chart: helm.Chart) -> None:
    deployment = one(objects(chart, None), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/litelong/operator:0.1.0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "--all-namespaces" in container["command"]
    store = [m for m in container["volumeMounts"] if m["name"] == "store"]
    assert store and store[0]["readOnly"] is True


def test_watching_namespaces_switches_kopf_to_namespaced_peering(chart: helm.Chart) -> None:
    values = values_of(CHART / "ci" / "namespaced-values.yaml")
    rendered = objects(chart, values)
    (container,) = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--namespace=ml-data" in container["command"]
    assert "--all-namespaces" not in container["command"]
    assert "--verbose" in container["command"]
    peerings = [o for o in rendered if o["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["ml-data", "ml-train"]
    assert not [o for o in rendered if o["kind"] == "ClusterKopfPeering"]
    rules = one(rendered, "ClusterRole")["rules"]
    assert any("kopfpeerings" in rule["resources"] for rule in rules)
    workers = [o for o in rendered if o["kind"] == "ServiceAccount" and "worker" in str(o)]
    assert sorted(w["metadata"]["namespace"] for w in workers) == ["ml-data", "ml-train"]
    assert all(w["automountServiceAccountToken"] is False for w in workers)
    claims = [o for o in rendered if o["kind"] == "PersistentVolumeClaim"]
    assert sorted(c["metadata"]["namespace"] for c in claims) == ["ml-data", "ml-train"]
    # the operator's own namespace has no claim, so it mounts none
    assert all(
        v["name"] != "store"
        for v in one(rendered, "Deployment")["spec"]["template"]["spec"]["volumes"]
    )


def test_object_storage_needs_no_claim(chart: helm.Chart) -> None:
    rendered = objects(chart, values_of(CHART / "ci" / "object-store-values.yaml"))
    assert not [o for o in rendered if o["kind"] == "PersistentVolumeClaim"]


def test_llm_endpoints_become_services_the_notes_name(chart: helm.Chart) -> None:
    values = values_of(CHART / "ci" / "llm-values.yaml")
    rendered = objects(chart, values)
    services = {o["metadata"]["name"] for o in rendered if o["kind"] == "Service"}
    assert {"litelong-llm-qwen", "litelong-llm-mistral", "litelong-llm-judge"} <= services
    qwen = next(
        o
        for o in rendered
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "litelong-llm-qwen"
    )
    (server,) = qwen["spec"]["template"]["spec"]["containers"]
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in server["args"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/huggingface/token"} in server["env"]
    notes = next(t for n, t in render(chart, values).items() if n.endswith("NOTES.txt"))
    assert "http://litelong-llm-qwen.litelong-system:8000/v1" in notes


def test_notes_tell_the_next_commands(chart: helm.Chart) -> None:
    notes = next(t for n, t in render(chart, None).items() if n.endswith("NOTES.txt"))
    assert "kubectl -n litelong-system rollout status deployment/litelong-operator" in notes
    assert "kubectl -n litelong-system apply -f manifests/samples/topicdebate.yaml" in notes
    assert "get litelong --watch" in notes


@pytest.mark.cluster
def test_the_chart_installs_on_a_real_api_server() -> None:
    """`helm install` through the library into $KUBECONFIG's cluster; the CRDs and samples are in
    test_cluster.py."""
    import os

    if not os.environ.get("KUBECONFIG"):
        pytest.skip("KUBECONFIG is unset: no Kubernetes API server to install the chart into")
    with helm.Config(
        kubeconfig_path=os.environ["KUBECONFIG"], namespace="litelong-chart"
    ) as config:
        # no wait: the images need not be pullable for the objects themselves to be accepted
        release = config.install(str(CHART), "litelong", create_namespace=True, timeout=300)
        try:
            assert release["info"]["status"] == "deployed"
        finally:
            config.uninstall("litelong")


def test_each_release_has_its_own_kopf_peering(chart: helm.Chart) -> None:
    """A second release with default values must not share (and fail on) the first's peering."""
    peerings = []
    for release in ("litelong", "team-b"):
        rendered = chart.render(None, name=release, namespace=release, is_install=True)
        items = [
            d
            for t, text in rendered.items()
            if t.endswith(".yaml")
            for d in yaml.safe_load_all(text)
            if d
        ]
        (peering,) = [o for o in items if o["kind"] == "ClusterKopfPeering"]
        (container,) = one(items, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert f"--peering={peering['metadata']['name']}" in container["command"]
        peerings.append(peering["metadata"]["name"])
    assert peerings == ["litelong", "team-b-litelong"]


def test_the_operator_starts_without_a_read_write_many_claim(chart: helm.Chart) -> None:
    """kind, minikube and other RWO-only clusters: the operator mounts no claim (it would stay
    Pending for it) and its config still names the claim the stage pods mount."""
    rendered = objects(chart, {"store": {"pvc": {"accessModes": ["ReadWriteOnce"]}}})
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["config", "tmp"]
    assert one(rendered, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    config = yaml.safe_load(one(rendered, "ConfigMap")["data"]["operator.yaml"])
    assert OperatorConfig.model_validate(config).store.pvc is not None
    rwx = one(objects(chart, None), "Deployment")["spec"]["template"]["spec"]
    assert "store" in [v["name"] for v in rwx["volumes"]], "an RWX store is read for the counts"


def test_the_chart_states_the_kubernetes_versions_the_operator_renders_for() -> None:
    from litelong_operator.config import SUPPORTED_MINORS

    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    first, last = SUPPORTED_MINORS[0], SUPPORTED_MINORS[-1]
    assert meta["kubeVersion"] == f">=1.{first}.0-0"
    assert meta["annotations"]["litelong.io/kubernetes-versions"] == f"1.{first}-1.{last}"
