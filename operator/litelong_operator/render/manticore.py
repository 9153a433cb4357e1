"""A managed Manticore Search cluster: one StatefulSet pod per shard, a headless Service.

Pod i holds shard i's real-time table: the documents whose id hashes to i. Loaders send each
document to its shard's pod through the stable DNS name `<statefulset>-i.<service>`, which the
stage builds from LITELONG_MANTICORE_SHARD_URL by replacing `{shard}`; the committed index
records those addresses for the synthesis stage.

searchd runs directly (not the image's entrypoint, which needs root and a writable root
filesystem): HTTP on 9308 for the client, MySQL protocol on 9306 for people, the binary API on
9312 for distributed tables' agents; Buddy is off (nothing litelong sends needs it); no query log
(topK 1000 queries would flood it). The config follows Manticore's RT-mode rules (checked in
tests/test_manticore_cluster.py): `data_dir` set, no table sections, and no `binlog_path` (RT mode
keeps the binlog in `<data_dir>/binlog` and creates that folder; a path of one's own must
already exist, and on a fresh volume it does not, so searchd stops at start).

The claims follow their StatefulSet (`persistentVolumeClaimRetentionPolicy`): deleted with the
index and with a StatefulSet of an earlier spec once a rerun succeeds, unless the spec's
`storage.retention` is `Retain`.
"""

from __future__ import annotations

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
