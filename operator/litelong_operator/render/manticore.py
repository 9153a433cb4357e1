"""A managed Manticore Search cluster: one StatefulSet pod per shard, a headless Service.

Pod i holds shard i's real-time table: the documents whose id hashes to i. Loaders send each
document to its shard's pod through the stable DNS name `<statefulset>-i.<service>`, which the
stage builds from LITELONG_MANTICORE_SHARD_URL by replacing `{shard}`; the committed index
records those addresses for the synthesis stage.

searchd runs directly (not the image's entrypoint, which needs root and a writable root
filesystem): HTTP on 9308 for the client, MySQL protocol on 9306 for people, the binary API on
9312 for distributed tables' agents; Buddy is off (nothing litelong sends needs it); no query log
(topK 1000 queries would flood it). The config follows Manticore's RT-mode rules, which
`rt_mode_problems` checks: `data_dir` set, no table sections, and no `binlog_path` (RT mode
keeps the binlog in `<data_dir>/binlog` and creates that folder; a path of one's own must
already exist, and on a fresh volume it does not, so searchd stops at start).

The claims follow their StatefulSet (`persistentVolumeClaimRetentionPolicy`): deleted with the
index and with a StatefulSet of an earlier spec once a rerun succeeds, unless the spec's
`storage.retention` is `Retain`.
"""

from __future__ import annotations

import re

from ..config import OperatorConfig
from .common import CONTAINER_SECURITY, Manifest, Owner, child_name, labels, metadata

HTTP_PORT = 9308
SQL_PORT = 9306
API_PORT = 9312
DATA_DIR = "/var/lib/manticore"
CONFIG = "/etc/manticoresearch/manticore.conf"

MANTICORE_CONF = f"""\
searchd {{
    listen = {SQL_PORT}:mysql41
    listen = {HTTP_PORT}:http
    listen = {API_PORT}
    data_dir = {DATA_DIR}
    pid_file = /var/run/manticore/searchd.pid
    log = /dev/stdout
    buddy_path =
}}
"""


def rt_mode_problems(conf: str, mounted: set[str]) -> list[str]:
    """What in a manticore.conf breaks Manticore's documented real-time-mode rules, or the
    pod it runs in (`mounted`: writable folders); [] when searchd can start on an empty volume."""
    sections = re.findall(r"^\s*(\w+)(?:\s+\w+)?\s*\{", conf, flags=re.MULTILINE)
    settings: dict[str, list[str]] = {}
    for key, value in re.findall(r"^\s*(\w+)\s*=[ \t]*(.*?)\s*$", conf, flags=re.MULTILINE):
        settings.setdefault(key, []).append(value)
    problems = [
        f"a `{name}` section: RT mode defines tables by SQL only"
        for name in sections
        if name != "searchd"
    ]
    data_dir = (settings.get("data_dir") or [""])[0]
    if not data_dir:
        problems.append("no data_dir: that is plain mode, where CREATE TABLE is refused")
    elif data_dir not in mounted:
        problems.append(f"data_dir {data_dir} is not on a mounted volume")
    for binlog in settings.get("binlog_path", []):
        if binlog and binlog != data_dir:
            problems.append(
                f"binlog_path = {binlog}: searchd does not create it and stops at start on a "
                "fresh volume; leave it out (RT mode uses <data_dir>/binlog)"
            )
    listeners = settings.get("listen", [])
    for port, protocol in ((HTTP_PORT, "http"), (SQL_PORT, "mysql41"), (API_PORT, "")):
        wanted = f"{port}:{protocol}" if protocol else str(port)
        if wanted not in listeners:
            problems.append(f"no `listen = {wanted}`")
    for path_key in ("pid_file",):
        folder = (settings.get(path_key) or ["/"])[0].rsplit("/", 1)[0]
        if path_key not in settings or folder not in mounted:
            problems.append(f"{path_key} must be set in a mounted writable folder")
    return problems


def cluster_name(owner: Owner) -> str:
    return child_name(owner, "manticore")


def shard_url_template(owner: Owner) -> str:
    name = cluster_name(owner)
    return f"http://{name}-{{shard}}.{name}.{owner.namespace}.svc:{HTTP_PORT}"


def manticore_cluster(owner: Owner, config: OperatorConfig, *, shards: int) -> list[Manifest]:
    """ConfigMap with manticore.conf, headless Service, StatefulSet with a PVC per pod."""
    name = cluster_name(owner)
    component = "manticore"
    selector = {
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        "litelong.io/spec-hash": owner.spec_hash,
    }
    storage = owner.resource.spec.backend.manticore.storage
    claim: Manifest = {
        "metadata": {"name": "data", "labels": labels(owner, component)},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage.size}},
        },
    }
    if storage.storage_class_name:
        claim["spec"]["storageClassName"] = storage.storage_class_name
    memory = config.manticore_memory
    searchd: Manifest = {
        "name": "searchd",
        "image": config.images.manticore,
        "command": ["searchd", "--nodetach", "--config", CONFIG],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "sql", "containerPort": SQL_PORT},
            {"name": "api", "containerPort": API_PORT},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 20},
        "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "config", "mountPath": "/etc/manticoresearch", "readOnly": True},
            {"name": "run", "mountPath": "/var/run/manticore"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(owner, f"{name}-conf", component),
            "data": {"manticore.conf": MANTICORE_CONF},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(owner, name, component),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": selector,
                "ports": [
                    {"name": "http", "port": HTTP_PORT, "targetPort": "http"},
                    {"name": "sql", "port": SQL_PORT, "targetPort": "sql"},
                    {"name": "api", "port": API_PORT, "targetPort": "api"},
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(owner, name, component),
            "spec": {
                "serviceName": name,
                "replicas": shards,
                "podManagementPolicy": "Parallel",
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": storage.retention,
                    "whenScaled": storage.retention,
                },
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels(owner, component)},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 999,
                            "runAsGroup": 999,
                            "fsGroup": 999,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [searchd],
                        "volumes": [
                            {"name": "config", "configMap": {"name": f"{name}-conf"}},
                            {"name": "run", "emptyDir": {}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
                "volumeClaimTemplates": [claim],
            },
        },
    ]
