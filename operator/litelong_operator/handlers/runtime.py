"""What every handler shares: the settings, the one Reconciler, and the cross-object triggers.

Handlers are sync: kopf runs them in its thread pool, and the `kubernetes` client blocks.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, cast

import kopf
from prometheus_client import start_http_server

from litelong.api import KINDS

from .. import metrics
from ..config import SUPPORTED_MINORS, OperatorConfig, load_config
from ..kube import Kube
from ..reconcile import Reconciler

GROUP, VERSION = "litelong.io", "v1alpha1"
MANAGED = {"app.kubernetes.io/managed-by": "litelong-operator"}
METRICS_PORT_ENV = "LITELONG_METRICS_PORT"
#: Timers are declared at import, so their interval comes from the environment.
RESYNC_SECONDS = float(os.environ.get("LITELONG_RESYNC_SECONDS") or 30)
API_RETRY_ENV = "LITELONG_API_RETRY_SECONDS"


def api_retry_backoffs(total: float) -> tuple[float, ...]:
    """Delays between retries of one API call (peering keepalive, patches) adding up to
    `total` seconds: kopf's own start (1, 1, 2, 3, 5, 8, 13, 21), then every 30 s. The default
    five minutes ride out an API server upgrade or restart; kopf's own give up after 54 s,
    ending the operator. Watch streams reconnect on their own."""
    delays: list[float] = []
    for delay in (1, 1, 2, 3, 5, 8, 13, 21):
        if sum(delays) >= total:
            break
        delays.append(delay)
    while sum(delays) < total:
        delays.append(30)
    return tuple(delays)


_reconciler: Reconciler | None = None


def _emit(body: dict[str, Any], kind: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=kind, reason=reason, message=message)


def reconciler() -> Reconciler:
    if _reconciler is None:
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return _reconciler


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG, read when the operator starts."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    """Progress in annotations (our status schema keeps only our fields); Events are ours."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    # replicas draw distinct priorities: the highest works, the others stand by (kopf freezes
    # every replica when priorities tie)
    settings.peering.priority = int(
        os.environ.get("LITELONG_PEERING_PRIORITY") or random.randint(1, 1_000_000)
    )
    settings.execution.max_workers = 16
    settings.networking.error_backoffs = api_retry_backoffs(
        float(os.environ.get(API_RETRY_ENV) or 300)
    )
    port = int(os.environ.get(METRICS_PORT_ENV, "9090"))
    if port:
        start_http_server(port)
        logger.info("metrics on :%d/metrics", port)
    global _reconciler
    kube = Kube()
    _reconciler = Reconciler(kube, for_this_server(load_config(), kube, logger), _emit)


def for_this_server(config: OperatorConfig, kube: Kube, logger: kopf.Logger) -> OperatorConfig:
    """The config with the API server's version, which decides how Job retries are rendered."""
    if config.kubernetes_version is None:
        config = config.model_copy(update={"kubernetes_version": kube.server_version()})
    version = config.kubernetes_version or ""
    if int(version.split(".")[1]) not in SUPPORTED_MINORS:
        first, last = SUPPORTED_MINORS[0], SUPPORTED_MINORS[-1]
        logger.warning("Kubernetes %s is outside the tested 1.%d-1.%d", version, first, last)
    retries = "per shard" if config.per_index_backoff else "per Job, scaled to the shards"
    logger.info("Kubernetes %s: a failing shard's retries are limited %s", version, retries)
    return config


def reconcile(body: Any) -> None:
    """Reconcile one resource from its body; API trouble is retried by kopf."""
    try:
        reconciler().reconcile(dict(body))
    except Exception as error:
        if isinstance(error, kopf.PermanentError | kopf.TemporaryError):
            raise
        raise kopf.TemporaryError(f"{type(error).__name__}: {error}", delay=10) from error


def reconcile_named(kind: str, namespace: str, name: str, logger: kopf.Logger) -> None:
    """A trigger from another object: the reconcile reads the resource fresh by its name."""
    try:
        reconciler().reconcile({"kind": kind, "metadata": {"name": name, "namespace": namespace}})
    except Exception as error:  # the resync timer retries; one bad object must not stop others
        logger.warning("reconcile of %s/%s failed: %s", kind, name, error)


def reconcile_owner(body: Any, logger: kopf.Logger) -> None:
    """A child changed (Job finished, StatefulSet ready): reconcile the resource that owns it."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("apiVersion") == f"{GROUP}/{VERSION}" and ref.get("kind") in KINDS:
            namespace = body["metadata"].get("namespace") or "default"
            reconcile_named(ref["kind"], namespace, ref["name"], logger)


def wake_dependents(body: Any, dependent_kind: str, logger: kopf.Logger) -> None:
    """A resource changed status: resources of `dependent_kind` naming it may start now."""
    meta = body.get("metadata", {})
    namespace = meta.get("namespace") or "default"
    resource_cls = KINDS[dependent_kind]
    fields = [
        resource_cls.model_fields["spec"].annotation.model_fields[field].alias or field  # type: ignore[union-attr]
        for field, kind in resource_cls.ref_fields.items()
        if kind == body.get("kind")
    ]
    for dependent in reconciler().kube.list(dependent_kind, namespace, {}):
        spec = dependent.get("spec") or {}
        if any(spec.get(field) == meta.get("name") for field in fields):
            reconcile_named(dependent_kind, namespace, dependent["metadata"]["name"], logger)


def is_ready(body: Any) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def forget(body: Any, logger: kopf.Logger) -> None:
    meta = body.get("metadata", {})
    namespace = meta.get("namespace") or "default"
    metrics.record_phase(body["kind"], namespace, meta["name"], None)
    uri = ((body.get("status") or {}).get("outputs") or {}).get("uri")
    logger.info("deleted; children follow by garbage collection; outputs kept at %s", uri)
