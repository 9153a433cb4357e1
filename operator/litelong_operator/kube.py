"""The few API calls the handlers make, through the official `kubernetes` client.

Plain REST on the object paths (no typed models): children are dicts from the renderers, and
the same call shape serves ConfigMaps, Jobs, StatefulSets, PyTorchJobs and our own kinds.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from kubernetes import client, config

from litelong.api.v1alpha1 import KINDS

PLURALS: dict[str, str] = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "Pod": "pods",
    "ServiceAccount": "serviceaccounts",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Job": "jobs",
    "StatefulSet": "statefulsets",
    "PyTorchJob": "pytorchjobs",
    "TrainJob": "trainjobs",
    "Event": "events",
    **{kind: cls.plural for kind, cls in KINDS.items()},
}
API_VERSIONS: dict[str, str] = {
    "ConfigMap": "v1",
    "Service": "v1",
    "Pod": "v1",
    "ServiceAccount": "v1",
    "PersistentVolumeClaim": "v1",
    "Job": "batch/v1",
    "StatefulSet": "apps/v1",
    "PyTorchJob": "kubeflow.org/v1",
    "TrainJob": "trainer.kubeflow.org/v1alpha1",
    **{kind: "litelong.io/v1alpha1" for kind in KINDS},
}


class ApiError(RuntimeError):
    """The API server refused or failed a call; `status` is the HTTP code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{PLURALS[kind]}"


def load_client() -> client.ApiClient:
    """In a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        # read $KUBECONFIG now: the client's own default was fixed when it was imported
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    configuration = client.Configuration.get_default_copy()
    # kopf runs up to 16 sync handlers at once; the client's default pool is 5 per core
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


class Kube:
    """create (409 tolerated), get, list, merge-patch status, delete."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_client()

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, body, _request_timeout=30)
        raw = response.read() or b"{}"
        try:
            data = json.loads(raw)
        except ValueError:
            data = {"message": raw[:200].decode(errors="replace")}
        if response.status >= 400:
            raise ApiError(response.status, data.get("reason", ""), data.get("message", ""))
        return data if isinstance(data, dict) else {}

    def server_version(self) -> str:
        """`major.minor` from the server's /version (managed clusters write minor as `28+`)."""
        found = self._call("GET", "/version")
        major = re.sub(r"\D", "", str(found.get("major") or ""))
        minor = re.sub(r"\D", "", str(found.get("minor") or ""))
        if not (major and minor):
            match = re.match(r"v?(\d+)\.(\d+)", str(found.get("gitVersion") or ""))
            if match is None:
                raise ApiError(500, "BadVersion", f"/version answered {found}")
            major, minor = match.groups()
        return f"{int(major)}.{int(minor)}"

    def create(self, manifest: dict[str, Any]) -> bool:
        """True if created; False if it already existed (a restart re-creating is harmless)."""
        meta = manifest["metadata"]
        path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        try:
            self._call("POST", path, manifest)
        except ApiError as error:
            if error.status == 409:
                return False
            raise
        return True

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        path = f"{collection_path(API_VERSIONS[kind], kind, namespace)}/{name}"
        try:
            return self._call("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """Events about one object (core/v1, where controllers' FailedCreate events land)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        path = collection_path("v1", "Event", namespace)
        items = self._call("GET", path, query=[("fieldSelector", selector)]).get("items") or []
        return [
            item
            for item in items
            if (item.get("involvedObject") or {}).get("kind") == kind
            and (item.get("involvedObject") or {}).get("name") == name
        ]

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Objects carrying every label given (filtered here too: some servers ignore selectors)."""
        selector = ",".join(f"{key}={value}" for key, value in labels.items())
        path = collection_path(API_VERSIONS[kind], kind, namespace)
        items = self._call("GET", path, query=[("labelSelector", selector)]).get("items") or []
        return [
            item
            for item in items
            if all(
                ((item.get("metadata") or {}).get("labels") or {}).get(key) == value
                for key, value in labels.items()
            )
        ]

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        path = f"{collection_path(API_VERSIONS[kind], kind, namespace)}/{name}/status"
        self._call("PATCH", path, {"status": status}, content_type="application/merge-patch+json")

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Background propagation: a Job's pods go with it. A missing object is not an error."""
        path = f"{collection_path(API_VERSIONS[kind], kind, namespace)}/{name}"
        try:
            self._call("DELETE", path, {"propagationPolicy": "Background"})
        except ApiError as error:
            if error.status != 404:
                raise
