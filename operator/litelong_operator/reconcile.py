"""One reconcile for every kind and every trigger: level-based, re-entrant, safe to repeat.

    validate spec → inputs: each ref's committed identity (its status.specHash when Ready)
    → already committed for this identity? (Ready, whatever became of the refs since)
    → wait for refs → empty output recorded? (Failed) → create children (409 = exists)
    → read the workload's status → status + Event on a phase change → on success, remove the
    children of older identities (their outputs stay in the store).

Creates and the status write are idempotent, so a restart in the middle duplicates nothing:
children are named by identity and found again. The status is written whole every time.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litelong.api import KINDS, InvalidManifest
from litelong.api.v1alpha1 import SynthesisRun
from litelong.api.v1alpha1.bm25index import documents_per_shard
from litelong.plan.cluster import plan_status
from litelong.store import Artifact, ArtifactStore, Failure, artifact_folder

from . import metrics
from .config import OperatorConfig
from .kube import ApiError, Kube
from .render import KIND_LABEL, SPEC_HASH_LABEL, Manifest, Owner, owner_of, render
from .render.common import worker_account
from .status import (
    RETRYING,
    Observed,
    creation_failure,
    job_state,
    manticore_state,
    pytorch_job_state,
    replacing,
    same_status,
    status_patch,
    termination_message,
    train_job_state,
    with_training_metrics,
)

log = logging.getLogger("litelong.operator")

#: (type, reason, message) → an Event on the resource; kopf.event in the operator.
EventSink = Callable[[dict[str, Any], str, str, str], None]

WORKLOAD_STATE: dict[str, Callable[[dict[str, Any], str], Observed]] = {
    "Job": job_state,
    "PyTorchJob": pytorch_job_state,
    "TrainJob": train_job_state,
}
#: Labels the Job, Kubeflow and JobSet controllers put on their pods, naming the owning job.
JOB_NAME_LABELS = (
    "batch.kubernetes.io/job-name",
    "job-name",
    "training.kubeflow.org/job-name",
    "jobset.sigs.k8s.io/jobset-name",
)
CHILD_KINDS = ("Job", "StatefulSet", "Service", "ConfigMap", "PyTorchJob", "TrainJob")
#: A create the API server refused for good (RBAC, admission, quota, schema): a condition and
#: an Event on the resource, retried by the resync timer; 409 (exists) and 429/5xx are not here.
REFUSED_CREATE = {
    400: "CreateRejected",
    403: "CreateForbidden",
    404: "CreateRejected",
    422: "CreateInvalid",
}
#: Not failures, but the user has to act: their Events are Warnings.
WARNING_REASONS = {"FailedCreate", "NamespaceNotPrepared", RETRYING}
_locks: defaultdict[tuple[str, str, str], threading.Lock] = defaultdict(threading.Lock)


@dataclass(frozen=True)
class Reconciler:
    kube: Kube
    config: OperatorConfig
    emit: EventSink

    def reconcile(self, body: dict[str, Any]) -> dict[str, Any]:
        """Bring one resource's children and status up to date; returns the status written."""
        meta = body["metadata"]
        key = (body["kind"], meta.get("namespace") or "default", meta["name"])
        with _locks[key], metrics.RECONCILE_SECONDS.labels(body["kind"]).time():
            metrics.RECONCILES.labels(body["kind"]).inc()
            # triggers race (create, timer, a child's event): read the status the last
            # reconcile wrote, not the copy this trigger carried
            fresh = self.kube.get(*key)
            if fresh is None:  # deleted meanwhile
                return {}
            try:
                return self._reconcile(fresh)
            except Exception:
                metrics.ERRORS.labels(body["kind"]).inc()
                raise

    def _reconcile(self, body: dict[str, Any]) -> dict[str, Any]:
        previous = body.get("status") or {}
        generation = body["metadata"].get("generation")
        try:
            owner = owner_of(body)
        except InvalidManifest as error:
            problems = "; ".join(str(problem) for problem in error.errors)
            observed = Observed("Failed", "InvalidSpec", f"invalid spec: {problems}")
            return self._write(body, observed, "", {}, previous, generation)
        refs = self._refs(owner, previous)

        def write(observed: Observed, outputs: dict[str, Any]) -> dict[str, Any]:
            identity = owner.spec_hash if refs.inputs is not None else ""
            return self._write(body, observed, identity, outputs, previous, generation, refs)

        if refs.inputs is None:
            observed = Observed(
                "Waiting", "RefNotReady", "; ".join(refs.waiting), unit=_unit(owner)
            )
            return write(observed, {})
        if refs.has_refs:
            owner = dataclasses.replace(owner, resource=owner.resource.with_inputs(refs.inputs))
        artifact = self._artifact(owner)
        committed = self._committed_outputs(owner, artifact)
        if committed is not None:  # Ready stays Ready, whatever became of the refs since
            found, done = committed
            message = f"outputs at {found['uri']}"
            if (short := _shortfall(owner, found)) is not None:
                message += f"; {short}"
            observed = Observed("Succeeded", "Committed", message, done, done, _unit(owner))
            self._remove_older_children(owner)
            return write(observed, found)

        folder = artifact_folder(owner.namespace, owner.kind, owner.name, owner.spec_hash)
        outputs: dict[str, Any] = {
            "uri": artifact.uri if artifact else f"{self._store_uri(owner).rstrip('/')}/{folder}"
        }
        failure = _failure(artifact)
        if failure is not None:  # every part is in and the output would be empty
            observed = Observed("Failed", failure.reason, failure.message, unit=_unit(owner))
            return write(observed, outputs)

        missing = self._missing_prerequisites(owner)
        if missing:
            observed = Observed(
                "Waiting", "NamespaceNotPrepared", "; ".join(missing), unit=_unit(owner)
            )
            return write(observed, outputs)
        try:
            observed = self._apply(owner, render(owner, self.config))
        except MissingController as error:
            observed = Observed("Failed", "ControllerMissing", str(error), unit=_unit(owner))
        if owner.kind == "TrainingJob" and observed.phase == "Running":
            observed = self._training_progress(owner, artifact, observed)
        if observed.phase == "Failed" and (failure := _failure(artifact)) is not None:
            observed = dataclasses.replace(observed, reason=failure.reason, message=failure.message)
        if observed.phase == "Succeeded":
            outputs = (self._committed_outputs(owner, artifact) or (outputs, 0))[0]
            self._remove_older_children(owner)
        return write(observed, outputs)

    def _refs(self, owner: Owner, previous: dict[str, Any]) -> _Refs:
        """Each ref's committed identity: its status.specHash while it is Ready. A ref gone or
        busy keeps the identity this resource's last status recorded, so the output made from
        it stays Ready; `inputs` is None while some ref has neither."""
        recorded = previous.get("inputs") or {}
        inputs: dict[str, str] = {}
        waiting: list[str] = []
        absent: list[str] = []
        for kind, name in owner.resource.refs():
            key = f"{kind}/{name}"
            ref = self.kube.get(kind, owner.namespace, name)
            status = (ref or {}).get("status") or {}
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            if ref is not None and ready and status.get("specHash"):
                inputs[key] = status["specHash"]
                continue
            if ref is None:
                absent.append(key)
                waiting.append(f"waiting for {key}: not found")
            else:
                phase = status.get("phase") or "Pending"
                waiting.append(f"waiting for {key} to be Ready (phase {phase})")
            if key in recorded:
                inputs[key] = recorded[key]
        complete = len(inputs) == len(owner.resource.refs())
        return _Refs(inputs if complete else None, waiting, absent, bool(owner.resource.refs()))

    def _training_progress(
        self, owner: Owner, artifact: Artifact | None, observed: Observed
    ) -> Observed:
        """Step, loss, tokens/s and ETA from the run's metrics.jsonl, where the store is
        readable here (the operator mounts an RWX claim; object storage needs credentials)."""
        if artifact is None:
            return observed
        try:
            text = artifact.store.fs.cat_file(f"{artifact.path}/metrics.jsonl").decode()
            spec: Any = owner.resource.spec
            return with_training_metrics(observed, text, spec.steps)
        except Exception as error:  # not written yet, or not readable: status works without
            log.debug("no training metrics for %s: %s", owner.name, error)
            return observed

    def _missing_prerequisites(self, owner: Owner) -> list[str]:
        """What stage pods need from the resource's namespace but the namespace lacks: the
        Job would exist and make no pods, silently, so the resource says it instead."""
        spec: Any = owner.resource.spec
        account = worker_account(self.config.pod_options(owner.kind, spec.pod))
        missing = []
        if self.kube.get("ServiceAccount", owner.namespace, account) is None:
            missing.append(
                f"ServiceAccount {owner.namespace}/{account} not found: stage pods run as it "
                "(the chart creates it in each of its workloadNamespaces; or set "
                "spec.pod.serviceAccountName)"
            )
        pvc = self.config.store.pvc
        if pvc and self.kube.get("PersistentVolumeClaim", owner.namespace, pvc.claim_name) is None:
            missing.append(
                f"PersistentVolumeClaim {owner.namespace}/{pvc.claim_name} not found: stage "
                "pods mount the store from it (the chart creates it in each of its "
                "workloadNamespaces)"
            )
        return missing

    def _store_uri(self, owner: Owner) -> str:
        spec: Any = owner.resource.spec
        return str(spec.output.store or self.config.store.pod_uri)

    def _artifact(self, owner: Owner) -> Artifact | None:
        """The output folder, opened once per reconcile; None when this process cannot open
        the store (object storage without the operator holding its filesystem or credentials)."""
        try:
            store = ArtifactStore(self._store_uri(owner))
        except Exception as error:  # status works without the store, outputs carry less
            log.debug("store not usable for %s/%s: %s", owner.kind, owner.name, error)
            return None
        return store.artifact(owner.kind, owner.name, owner.spec_hash, owner.namespace)

    def _committed_outputs(
        self, owner: Owner, artifact: Artifact | None
    ) -> tuple[dict[str, Any], int] | None:
        """Counts from the committed `_manifest.json` and the units done (parts, or steps);
        None when not committed or not readable."""
        if artifact is None:
            return None
        try:
            manifest = artifact.committed_manifest()
        except Exception as error:  # the operator may lack the store: status still works
            log.debug("store not readable for %s/%s: %s", owner.kind, owner.name, error)
            return None
        if manifest is None:
            return None
        fields = KINDS[owner.kind].model_fields["status"].annotation
        outputs_model = _outputs_model(fields)
        outputs: dict[str, Any] = {"uri": artifact.uri}
        for field_name, field in outputs_model.model_fields.items():
            alias = field.alias or field_name
            for key in (alias, field_name):  # counts are snake_case: samples_requested
                if key in manifest.counts:
                    outputs[alias] = manifest.counts[key]
                    break
        if "parts" in outputs_model.model_fields:
            outputs["parts"] = len(manifest.parts)
        if "skipped" in outputs_model.model_fields:
            outputs["skipped"] = sum(manifest.skipped.values())
        if "documents_per_shard" in outputs_model.model_fields:
            per_shard = documents_per_shard(manifest.counts)
            if per_shard is not None:
                outputs["documentsPerShard"] = per_shard
        steps = owner.kind == "TrainingJob"
        return outputs, manifest.counts.get("steps", 0) if steps else len(manifest.parts)

    def _apply(self, owner: Owner, children: list[Manifest]) -> Observed:
        """Create what is missing, in order; the last child is the workload that reports."""
        for child in children:
            refused = self._create(child)
            if refused is not None:
                return refused
            if child["kind"] == "StatefulSet":
                shards = child["spec"]["replicas"]
                sts = self.kube.get("StatefulSet", owner.namespace, child["metadata"]["name"])
                starting = manticore_state(sts, shards)
                if starting is not None:  # loaders wait for every Manticore pod
                    return self._unless_stuck(owner, child, sts, starting)
        workload = children[-1]
        name = workload["metadata"]["name"]
        current = self.kube.get(workload["kind"], owner.namespace, name) or workload
        state = WORKLOAD_STATE[workload["kind"]]
        observed = state(current, "")
        if observed.phase == "Failed" or observed.reason == RETRYING:
            observed = state(current, self._last_words(owner, workload))
        if observed.phase == "Running" and workload["kind"] == "Job":
            observed = self._unless_stuck(owner, workload, current, observed)
        return observed

    def _unless_stuck(
        self, owner: Owner, child: Manifest, current: dict[str, Any] | None, observed: Observed
    ) -> Observed:
        """A Job or StatefulSet with no pod alive and a `FailedCreate` Event cannot make its
        pods: the Event's message becomes the resource's condition."""
        status = (current or {}).get("status") or {}
        if status.get("active") or status.get("replicas"):
            return observed
        kind, name = child["kind"], child["metadata"]["name"]
        why = creation_failure(self.kube.events(owner.namespace, kind, name))
        if not why:
            return observed
        message = f"{kind} {name} cannot create its pods: {why}"
        return Observed("Pending", "FailedCreate", message, observed.done, observed.total)

    def _create(self, child: Manifest) -> Observed | None:
        """Create one child; what the server refused for good comes back as a Failed state."""
        kind, name = child["kind"], child["metadata"]["name"]
        try:
            created = self.kube.create(child)
        except ApiError as error:
            if error.status == 404 and child["apiVersion"].startswith(("kubeflow", "trainer")):
                raise MissingController(child) from error
            if error.status not in REFUSED_CREATE:
                raise
            log.warning("creating %s %s was refused: %s", kind, name, error)
            message = f"the API server refused to create {kind} {name}: {error}"
            return Observed("Failed", REFUSED_CREATE[error.status], message)
        if created:
            metrics.CHILDREN_CREATED.labels(kind).inc()
            log.info("created %s %s", kind, name)
        return None

    def _last_words(self, owner: Owner, workload: Manifest) -> str:
        name = workload["metadata"]["name"]
        pods = self.kube.list("Pod", owner.namespace, {"app.kubernetes.io/instance": owner.name})
        mine = [
            pod
            for pod in pods
            if name
            in {(pod["metadata"].get("labels") or {}).get(label) for label in JOB_NAME_LABELS}
        ]
        return termination_message(mine)

    def _remove_older_children(self, owner: Owner) -> None:
        """Children of earlier spec hashes go once this hash has succeeded (GitOps rerun)."""
        mine = {"app.kubernetes.io/instance": owner.name, KIND_LABEL: owner.kind}
        for kind in CHILD_KINDS:
            try:
                children = self.kube.list(kind, owner.namespace, mine)
            except ApiError as error:
                if error.status == 404:  # e.g. no Kubeflow CRDs in this cluster
                    continue
                raise
            for child in children:
                labels = child["metadata"].get("labels") or {}
                owners = child["metadata"].get("ownerReferences") or []
                if labels.get(SPEC_HASH_LABEL) == owner.spec_hash:
                    continue
                if owner.uid and not any(ref.get("uid") == owner.uid for ref in owners):
                    continue
                self.kube.delete(kind, owner.namespace, child["metadata"]["name"])
                log.info("removed %s %s of an earlier spec", kind, child["metadata"]["name"])

    def _write(
        self,
        body: dict[str, Any],
        observed: Observed,
        spec_hash: str,
        outputs: dict[str, Any],
        previous: dict[str, Any],
        generation: int | None,
        refs: _Refs | None = None,
    ) -> dict[str, Any]:
        status = status_patch(
            observed,
            spec_hash=spec_hash,
            outputs=outputs,
            previous=previous,
            generation=generation,
            inputs=refs.inputs if refs is not None else None,
            absent_refs=refs.absent if refs is not None and refs.has_refs else None,
        )
        plan = plan_status(_resource(body), observed.phase, observed.done, observed.total, previous)
        if plan:
            status["plan"] = plan
        meta = body["metadata"]
        namespace = meta.get("namespace") or "default"
        metrics.record_phase(body["kind"], namespace, meta["name"], observed.phase)
        if same_status(status, previous):
            return previous
        # the whole status replaces the last one: no count of an earlier spec survives
        self.kube.patch_status(body["kind"], namespace, meta["name"], replacing(status, previous))
        if observed.phase != previous.get("phase") or observed.reason != _reason(previous):
            warn = observed.phase == "Failed" or observed.reason in WARNING_REASONS
            kind = "Warning" if warn else "Normal"
            self.emit(body, kind, observed.reason, observed.message[:1024])
        return status


@dataclass(frozen=True)
class _Refs:
    """What the refs say: the inputs' identities (None until each is known), a sentence per
    ref not Ready, and the refs not found."""

    inputs: dict[str, str] | None
    waiting: list[str]
    absent: list[str]
    has_refs: bool


def _failure(artifact: Artifact | None) -> Failure | None:
    """The recorded reason complete parts were not committed (EmptyOutput), if readable."""
    if artifact is None:
        return None
    try:
        return artifact.failure()
    except Exception as error:  # the operator may lack the store: status still works
        log.debug("store not readable for %s: %s", artifact, error)
        return None


def _shortfall(owner: Owner, outputs: dict[str, Any]) -> str | None:
    """A SynthesisRun far short of the samples asked for says so in its Ready message."""
    resource = owner.resource
    if not isinstance(resource, SynthesisRun):
        return None
    counts = {
        "samples": outputs.get("samples") or 0,
        "samples_requested": outputs.get("samplesRequested") or 0,
    }
    return resource.samples_shortfall(counts)


class MissingController(RuntimeError):
    """A Kubeflow kind the cluster does not serve: its CRDs (and controller) are not installed."""

    def __init__(self, child: Manifest) -> None:
        super().__init__(
            f"{child['kind']} ({child['apiVersion']}) is not served by this cluster: install "
            "the Kubeflow Training Operator (PyTorchJob) or Trainer v2 (TrainJob)"
        )


def _resource(body: dict[str, Any]) -> Any:
    """The parsed resource, or None for an invalid spec (which gets no plan)."""
    try:
        return owner_of(body).resource
    except InvalidManifest:
        return None


def _reason(status: dict[str, Any]) -> str:
    winners = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    return winners[0].get("reason", "") if winners else ""


def _unit(owner: Owner) -> str:
    return "steps" if owner.kind == "TrainingJob" else "shards"


def _outputs_model(status_annotation: Any) -> Any:
    for candidate in getattr(status_annotation, "__args__", (status_annotation,)):
        if candidate is not type(None) and hasattr(candidate, "model_fields"):
            return candidate.model_fields["outputs"].annotation
    raise TypeError(f"no outputs in {status_annotation}")
