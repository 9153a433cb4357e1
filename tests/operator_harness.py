"""kopf running in-process against kmock, with the test playing the cluster's controllers.

kmock serves the Kubernetes API from memory; it has no Job controller, garbage collector,
admission, resourceVersion or generation. So resources get a fixed uid and resourceVersion
here, and tests finish Jobs by patching their status as the Job controller would
(`Cluster.fail_shard` counts failures as the controller's code does).

`ApiServer` adds what a real server of a given version does that the operator depends on,
written from the Kubernetes API reference: /version, the Job API of that version (1.27 and
1.28 drop `backoffLimitPerIndex` and refuse `FailIndex`; 1.29+ refuse `maxFailedIndexes`
without it), and the OwnerReferencesPermissionEnforcement admission plugin (on in
OpenShift) checked against the operator's ClusterRole in manifests/rbac/.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import kmock
import yaml

from litelong.api import KINDS

from .conftest import REPO

CORE = {
    "v1/configmaps": "ConfigMap",
    "v1/services": "Service",
    "v1/pods": "Pod",
    "v1/events": "Event",
    "v1/serviceaccounts": "ServiceAccount",
    "v1/persistentvolumeclaims": "PersistentVolumeClaim",
    "batch/v1/jobs": "Job",
    "apps/v1/statefulsets": "StatefulSet",
}
CLUSTER_SCOPED = {
    "apiextensions.k8s.io/v1/customresourcedefinitions": "CustomResourceDefinition",
    "v1/namespaces": "Namespace",
    "kopf.dev/v1/clusterkopfpeerings": "ClusterKopfPeering",
}
KUBEFLOW = {
    "kubeflow.org/v1/pytorchjobs": "PyTorchJob",
    "trainer.kubeflow.org/v1alpha1/trainjobs": "TrainJob",
}
_uids = itertools.count(1)
MAX_INT32 = 2_147_483_647
RBAC = REPO / "manifests" / "rbac" / "rbac.yaml"


def cluster_role_grants(path: Path = RBAC) -> set[tuple[str, str, str]]:
    """(verb, apiGroup, resource) triples the operator's ClusterRole allows."""
    role = next(d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "ClusterRole")
    return {
        (verb, group, resource)
        for rule in role["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def owner_finalizer_permissions(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    """What OwnerReferencesPermissionEnforcement asks of a create: `update` on the finalizers
    of every owner that an ownerReference with blockOwnerDeletion points at."""
    needed = set()
    for ref in (document.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("blockOwnerDeletion"):
            group = ref["apiVersion"].rsplit("/", 1)[0] if "/" in ref["apiVersion"] else ""
            needed.add(("update", group, f"{PLURAL[ref['kind']]}/finalizers"))
    return needed


def admit_job(job: dict[str, Any], minor: int) -> None:
    """A batch/v1 Job as the API server of 1.`minor` stores it (defaults, dropped fields)."""
    spec = job.setdefault("spec", {})
    per_index = "backoffLimitPerIndex" in spec
    if minor < 29:  # JobBackoffLimitPerIndex: absent in 1.27, alpha (off) in 1.28
        for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
            if rule.get("action") == "FailIndex":
                raise kmock.KubernetesError(
                    status=422,
                    reason="Invalid",
                    message=f'Job.batch "{job["metadata"]["name"]}" is invalid: '
                    'spec.podFailurePolicy.rules[0].action: Unsupported value: "FailIndex"',
                )
        spec.pop("backoffLimitPerIndex", None)
        spec.pop("maxFailedIndexes", None)
    elif "maxFailedIndexes" in spec and not per_index:
        raise kmock.KubernetesError(
            status=422,
            reason="Invalid",
            message=f'Job.batch "{job["metadata"]["name"]}" is invalid: '
            "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
        )
    if "backoffLimit" not in spec:
        spec["backoffLimit"] = MAX_INT32 if per_index and minor >= 28 else 6


def as_stored(job: dict[str, Any], minor: int = 32) -> dict[str, Any]:
    """A rendered Job as the server of 1.`minor` keeps it."""
    stored = copy.deepcopy(job)
    admit_job(stored, minor)
    return stored


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock with the version-dependent and admission behaviour of a real API server.

    Pick it with `@pytest.mark.kmock(cls=ApiServer, minor=28)`.
    """

    minor: int = 32
    #: OwnerReferencesPermissionEnforcement (OpenShift turns it on) against this ClusterRole
    granted: set[tuple[str, str, str]] = attrs.field(factory=cluster_role_grants)

    async def _serve_server_version(self, request: Any) -> dict[str, Any]:
        # as managed clusters (EKS, GKE) write it: a "+" after the minor
        return {"major": "1", "minor": f"{self.minor}+", "gitVersion": f"v1.{self.minor}.3-eks"}

    async def _handle(self, request: Any) -> Any:
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            document = request.data
            missing = owner_finalizer_permissions(document) - self.granted
            if missing and document.get("kind") != "Event":
                raise kmock.KubernetesError(
                    status=403,
                    reason="Forbidden",
                    message=f"{PLURAL.get(document.get('kind', ''), '')} "
                    f'"{document["metadata"].get("name")}" is forbidden: cannot set '
                    "blockOwnerDeletion if an ownerReference refers to a resource you can't "
                    "set finalizers on: , <nil>",
                )
            if document.get("kind") == "Job":
                admit_job(document, self.minor)
        return await super()._handle(request)


def register(server: kmock.KubernetesEmulator, *, kubeflow: bool = True) -> None:
    """Declare every resource the operator watches or creates, with its status subresource."""
    verbs = {"get", "list", "watch", "create", "patch", "update", "delete"}
    served = {**CORE, **(KUBEFLOW if kubeflow else {})}
    for kind, cls in KINDS.items():
        served[f"litelong.io/v1alpha1/{cls.plural}"] = kind
    for key, kind in served.items():
        server.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=True, verbs=verbs, subresources={"status"}
        )
    # kopf's own backbone: it watches CRDs and namespaces to notice new ones
    for key, kind in CLUSTER_SCOPED.items():
        server.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=False, verbs=verbs)


def write_kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "kmock", "user": {"token": "kmock-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
        "current-context": "kmock",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def sample(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "manifests" / "samples" / f"{name}.yaml").read_text())


def path_of(api_version: str, plural: str, namespace: str, name: str | None = None) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


PLURAL = {kind: key.rsplit("/", 1)[1] for key, kind in {**CORE, **KUBEFLOW}.items()}
PLURAL.update({kind: cls.plural for kind, cls in KINDS.items()})


class Cluster:
    """What a test does to the cluster: apply, read, play controllers, wait."""

    def __init__(self, server: kmock.KubernetesEmulator, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.namespace = "ml"
        self.shard_failures: dict[tuple[str, int], int] = {}  # the controller's per-index count

    async def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        """Create a resource as `kubectl apply` would (plus the uid kmock does not assign)."""
        document = {**document, "metadata": dict(document["metadata"])}
        document["metadata"].setdefault("namespace", self.namespace)
        document["metadata"].setdefault("uid", f"uid-{next(_uids)}")
        document["metadata"].setdefault("resourceVersion", "1")
        url = path_of(document["apiVersion"], PLURAL[document["kind"]], self.namespace)
        async with self.session.post(url, json=document) as response:
            assert response.status < 300, await response.text()
            return dict(await response.json())

    async def patch(
        self, kind: str, name: str, patch: dict[str, Any], *, status: bool = False
    ) -> None:
        api_version = _api_version(kind)
        url = path_of(api_version, PLURAL[kind], self.namespace, name) + (
            "/status" if status else ""
        )
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self.session.patch(url, json=patch, headers=headers) as response:
            assert response.status < 300, await response.text()

    async def delete(self, kind: str, name: str) -> None:
        url = path_of(_api_version(kind), PLURAL[kind], self.namespace, name)
        async with self.session.delete(url) as response:
            assert response.status < 300, await response.text()

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        for (resource, namespace, obj_name), obj in self.server.objects.items():
            if (
                resource.plural == PLURAL[kind]
                and namespace == self.namespace
                and obj_name == name
                and not obj.deleted
            ):
                return dict(obj.raw)
        return None

    def all(self, kind: str) -> list[dict[str, Any]]:
        found = []
        for (resource, namespace, _), obj in self.server.objects.items():
            if resource.plural == PLURAL[kind] and namespace == self.namespace and not obj.deleted:
                found.append(dict(obj.raw))
        return sorted(found, key=lambda o: o["metadata"]["name"])

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return (self.get(kind, name) or {}).get("status") or {}

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any]:
        for condition in self.status(kind, name).get("conditions") or []:
            if condition["type"] == type_:
                return dict(condition)
        return {}

    async def finish_job(self, name: str, *, failed: bool = False) -> None:
        """Play the Job controller: every index succeeded, or shard 0 kept failing until the
        Job's retry limit ended it."""
        if failed:
            outcome = await self.fail_shard(name, 0, times=self.retry_budget(name) + 1)
            assert outcome == "Failed", f"Job {name} still retries after its budget: {outcome}"
            return
        job = self.get("Job", name)
        assert job is not None, f"no Job {name}"
        completions = job["spec"]["completions"]
        status = {
            "succeeded": completions,
            "completedIndexes": f"0-{completions - 1}" if completions > 1 else "0",
            "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}],
        }
        await self.patch("Job", name, {"status": status}, status=True)

    def retry_budget(self, name: str) -> int:
        """How many failures of one shard the stored Job tolerates (its limit as stored)."""
        spec = (self.get("Job", name) or {})["spec"]
        return int(spec.get("backoffLimitPerIndex", spec["backoffLimit"]))

    async def fail_shard(self, name: str, index: int, *, times: int) -> str:
        """Play the Job controller as its code (pkg/controller/job) does: pod `index` fails
        `times` times. Per-index limits: past `backoffLimitPerIndex` the index joins
        `status.failedIndexes`, and the Job fails only when the failed indexes exceed
        `maxFailedIndexes` (`MaxFailedIndexesExceeded`) or, without it, once every index has
        finished (`FailedIndexes`): the others run on. Otherwise the Job fails when all
        failures pass `backoffLimit`. Returns the Job's state afterwards."""
        job = self.get("Job", name)
        assert job is not None, f"no Job {name}"
        spec, status = job["spec"], dict(job.get("status") or {})
        failed = int(status.get("failed") or 0) + times
        status.update(failed=failed, active=spec["parallelism"])
        key = (name, index)
        self.shard_failures[key] = self.shard_failures.get(key, 0) + times
        over, reason, message = False, "", ""
        if "backoffLimitPerIndex" in spec:
            lost = {
                shard
                for (job_name, shard), count in self.shard_failures.items()
                if job_name == name and count > spec["backoffLimitPerIndex"]
            }
            if lost:
                status["failedIndexes"] = ",".join(str(shard) for shard in sorted(lost))
                status["active"] = spec["parallelism"] - len(lost)
            succeeded = int(status.get("succeeded") or 0)
            if "maxFailedIndexes" in spec and len(lost) > spec["maxFailedIndexes"]:
                over = True
                reason = "MaxFailedIndexesExceeded"
                message = "Job has exceeded the specified maximal number of failed indexes"
            elif lost and len(lost) + succeeded >= spec["completions"]:
                over, reason, message = True, "FailedIndexes", "Job has failed indexes"
        else:
            over = failed > spec["backoffLimit"]
            reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        if over:
            status["active"] = 0
            status["conditions"] = [
                {"type": "Failed", "status": "True", "reason": reason, "message": message}
            ]
        await self.patch("Job", name, {"status": status}, status=True)
        return "Failed" if over else "Running"

    async def eventually(
        self, check: Callable[[], Any], *, timeout: float = 15.0, what: str = ""
    ) -> Any:
        """Wait until `check()` is truthy; fail with `what` and the last value otherwise."""
        deadline = asyncio.get_running_loop().time() + timeout
        value = None
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(KeyError, TypeError, IndexError):
                value = check()
                if value:
                    return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or check}: last value {value!r}")

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events posted about `name`, in order (from the request log: kopf posts Events with
        generateName, which kmock does not implement, so they are not kept as objects)."""
        posted = [
            request.data for request in self.server["post"] if request.url.path.endswith("/events")
        ]
        return [e for e in posted if (e.get("involvedObject") or {}).get("name") == name]


def _api_version(kind: str) -> str:
    if kind in KINDS:
        return "litelong.io/v1alpha1"
    for key, value in {**CORE, **KUBEFLOW}.items():
        if value == kind:
            return key.rsplit("/", 1)[0]
    raise KeyError(kind)


@contextlib.asynccontextmanager
async def running_operator(
    peering: str | None = None, api_retry_seconds: float = 5
) -> AsyncIterator[asyncio.Task[None]]:
    """kopf with litelong's handlers, in this event loop, until the block ends; with a
    `peering` name as deployed (a ClusterKopfPeering of that name must exist), else alone.
    API calls are retried for `api_retry_seconds` only: each test's server goes away at its
    end, and an operator still retrying for minutes would outlive the test."""
    import kopf

    import litelong_operator.handlers  # noqa: F401  (registers the handlers)
    from litelong_operator.handlers.runtime import API_RETRY_ENV

    os.environ[API_RETRY_ENV] = str(api_retry_seconds)  # read once, when the operator starts
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            clusterwide=True,
            standalone=peering is None,
            peering_name=peering,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), timeout=20)
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=10)
        await _handlers_finished(timeout=10)


_INVOCATION = os.path.join("kopf", "_core", "actions", "invocation.py")


def _sync_invocations() -> dict[asyncio.Task[Any], asyncio.Future[Any]]:
    """Tasks in kopf's `invoke` of a sync handler, each with the executor future it awaits."""
    found = {}
    for task in asyncio.all_tasks():
        awaited: Any = task.get_coro()
        while awaited is not None and hasattr(awaited, "cr_code"):
            if awaited.cr_code.co_filename.endswith(_INVOCATION) and awaited.cr_frame:
                future = awaited.cr_frame.f_locals.get("future")
                if isinstance(future, asyncio.Future):
                    found[task] = future
                break
            awaited = awaited.cr_await
    return found


async def _handlers_finished(timeout: float) -> None:
    """Let kopf's sync handler tasks end while the test's API server still serves, then
    release the ones that cannot.

    kopf awaits a sync handler's executor future in a loop that swallows cancellation until
    the future is done (`kopf._core.actions.invocation.invoke`). After a test's second
    operator stopped, a resync timer's task was seen waiting there for minutes on a future
    no executor thread was running; left so, the event loop's close (`asyncio.Runner.close`,
    which cancels every task and waits) never returns: the suite hung there once under load.
    Cancelling the future ends that loop; a thread still running the handler finishes on its
    own."""
    stuck = _sync_invocations()
    if not stuck:
        return
    _, pending = await asyncio.wait(stuck, timeout=timeout)
    for task in pending:
        print(f"kopf handler task still waiting after {timeout:.0f} s, released: {task.get_name()}")
        stuck[task].cancel()
    if pending:
        await asyncio.wait(pending, timeout=timeout)
