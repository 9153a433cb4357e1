"""Status from what the children report: pure functions, so every transition is unit-tested.

The four condition types are always all present (KEP-1623): exactly one of Ready, Progressing,
Failed, Waiting is True; a condition keeps its lastTransitionTime until its status changes.
A resource with refs also has `RefsPresent`: False names refs deleted since, which never undo
an output already committed. Each write replaces the whole status (`replacing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

CONDITION_TYPES = ("Ready", "Progressing", "Failed", "Waiting")
TRUE_CONDITION = {
    "Succeeded": "Ready",
    "Running": "Progressing",
    "Pending": "Progressing",
    "Failed": "Failed",
    "Waiting": "Waiting",
}
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Observed:
    """Where a resource stands: phase, a CamelCase reason, a sentence, and progress."""

    phase: str
    reason: str
    message: str
    done: int = 0
    total: int | None = None
    unit: str = "shards"
    #: TrainingJob only: the latest step's metrics (status.training)
    training: dict[str, Any] | None = None


def _when_true(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The job's condition of this type if it is True, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


#: A running Job whose pods have failed: it retries them with back-off (up to 6 minutes).
RETRYING = "RetryingFailedPods"


def job_state(job: dict[str, Any], failure: str = "") -> Observed:
    """A batch/v1 Indexed Job: Complete, Failed (with the pod's last words), or shards done.

    A shard in `status.failedIndexes` has used up its retries, so the output can never be
    committed: Failed, even while the other shards still run (a Job without
    `maxFailedIndexes` fails only once all are done). A running Job with failed pods says
    so, with the latest pod's last words: a Job-wide limit can take hours of back-off."""
    status = job.get("status") or {}
    spec = job.get("spec") or {}
    total = int(spec.get("completions") or 1)
    done = int(status.get("succeeded") or 0)
    name = job["metadata"]["name"]
    if _when_true(job, "Complete"):
        return Observed("Succeeded", "JobComplete", f"Job {name} completed", total, total)
    if failed := _when_true(job, "Failed"):
        return Observed(
            "Failed",
            failed.get("reason") or "JobFailed",
            _failure_message(f"Job {name}", failed, failure),
            done,
            total,
        )
    if lost := status.get("failedIndexes"):
        used_up = {"message": f"shard(s) {lost} used up their retries"}
        message = _failure_message(f"Job {name}", used_up, failure)
        return Observed("Failed", "FailedIndexes", message, done, total)
    active = int(status.get("active") or 0)
    running = f"Job {name}: {done}/{total} shards done, {active} running"
    pod_failures = int(status.get("failed") or 0)
    if not pod_failures:
        return Observed("Running", "JobRunning", running, done, total)
    if "backoffLimitPerIndex" in spec:
        limit = f"up to {spec['backoffLimitPerIndex']} retries a shard"
    else:
        limit = f"the Job fails after {spec.get('backoffLimit', 6)} retries in all"
    message = f"{running}; {pod_failures} pod(s) failed, retried with back-off ({limit})"
    if failure:
        message += f"\nlast words of the latest failed pod: {failure.strip()}"
    return Observed("Running", RETRYING, message[-MAX_MESSAGE:], done, total)


def _training_state(job: dict[str, Any], kind: str, done: str, failure: str) -> Observed:
    """Kubeflow's training kinds: `done` or Failed decide; otherwise the latest True stage."""
    name = job["metadata"]["name"]
    if _when_true(job, done):
        return Observed("Succeeded", f"{kind}{done}", f"{kind} {name}: {done}", unit="steps")
    if failed := _when_true(job, "Failed"):
        message = _failure_message(f"{kind} {name}", failed, failure)
        return Observed("Failed", f"{kind}Failed", message, unit="steps")
    stage = "Running" if _when_true(job, "Running") else "Created"
    return Observed("Running", f"{kind}{stage}", f"{kind} {name}: {stage}", unit="steps")


def pytorch_job_state(job: dict[str, Any], failure: str = "") -> Observed:
    """A Kubeflow PyTorchJob: Created → Running → Succeeded | Failed."""
    return _training_state(job, "PyTorchJob", "Succeeded", failure)


def train_job_state(job: dict[str, Any], failure: str = "") -> Observed:
    """A Kubeflow Trainer v2 TrainJob: Complete | Failed, else running."""
    return _training_state(job, "TrainJob", "Complete", failure)


def manticore_state(statefulset: dict[str, Any] | None, shards: int) -> Observed | None:
    """None once every Manticore pod is ready (loading may start); else how many are."""
    ready = int(((statefulset or {}).get("status") or {}).get("readyReplicas") or 0)
    if statefulset is not None and ready >= shards:
        return None
    return Observed(
        "Running",
        "ManticoreStarting",
        f"{ready}/{shards} Manticore pods ready; loading starts when all are",
        0,
        shards,
    )


def _failure_message(what: str, condition: dict[str, Any], pod_message: str) -> str:
    parts = [f"{what} failed: {condition.get('message') or condition.get('reason') or ''}".strip()]
    if pod_message:
        parts.append(f"last words of the failed pod: {pod_message.strip()}")
    return "\n".join(parts)[-MAX_MESSAGE:]


#: Steps whose mean duration predicts the rest (recent ones: warm-up steps are slower).
PACE_STEPS = 20


def with_training_metrics(observed: Observed, metrics_jsonl: str, steps: int) -> Observed:
    """A running TrainingJob's progress from its metrics.jsonl (one JSON line per step, what
    `litelong train` writes): step of steps, loss, tokens/s and an ETA at the recent pace."""
    rows = [json.loads(line) for line in metrics_jsonl.splitlines() if line.strip()]
    if not rows:
        return observed
    last = rows[-1]
    step = int(last["step"])
    recent = [float(row.get("seconds") or 0) for row in rows[-PACE_STEPS:]]
    pace = sum(recent) / len(recent)
    training: dict[str, Any] = {"step": step, "loss": last.get("loss")}
    if last.get("tokens_per_s") is not None:
        training["tokensPerSecond"] = round(float(last["tokens_per_s"]), 1)
    if pace > 0:
        training["etaSeconds"] = round(pace * max(steps - step, 0))
    message = f"{observed.message}: step {step}/{steps}"
    if last.get("loss") is not None:
        message += f", loss {float(last['loss']):.4f}"
    return replace(observed, message=message, done=step, total=steps, training=training)


def creation_failure(events: list[dict[str, Any]]) -> str:
    """The newest `FailedCreate` message among a controller's Events: why it makes no pods
    (a missing ServiceAccount, quota, an admission webhook); empty when there is none."""
    found = [
        (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or "",
            event.get("message") or "",
        )
        for event in events
        if event.get("reason") == "FailedCreate"
    ]
    return max(found)[1][-MAX_MESSAGE:] if found else ""


def termination_message(pods: list[dict[str, Any]]) -> str:
    """The newest non-empty termination message among failed containers (stage logs' tail)."""
    found: list[tuple[str, str]] = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            for state in (status.get("state") or {}, status.get("lastState") or {}):
                terminated = state.get("terminated") or {}
                if terminated.get("exitCode", 0) != 0 and terminated.get("message"):
                    found.append((terminated.get("finishedAt") or "", terminated["message"]))
    return max(found)[1][-MAX_MESSAGE:] if found else ""


def conditions(
    observed: Observed,
    previous: list[dict[str, Any]],
    generation: int | None,
    now: datetime,
    absent_refs: list[str] | None = None,
) -> list[dict[str, Any]]:
    """All four conditions (and RefsPresent when `absent_refs` is given); transition times
    kept where the status did not change."""
    before = {c.get("type"): c for c in previous}
    winner = TRUE_CONDITION[observed.phase]
    out = []
    for kind in CONDITION_TYPES:
        state = "True" if kind == winner else "False"
        reason = observed.reason if kind in (winner, "Ready") else f"Not{kind}"
        old = before.get(kind) or {}
        stamp = old.get("lastTransitionTime") if old.get("status") == state else None
        condition: dict[str, Any] = {
            "type": kind,
            "status": state,
            "reason": reason,
            "message": observed.message if kind in (winner, "Ready") else "",
            "lastTransitionTime": stamp or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    if absent_refs is not None:
        state = "False" if absent_refs else "True"
        old = before.get("RefsPresent") or {}
        stamp = old.get("lastTransitionTime") if old.get("status") == state else None
        refs: dict[str, Any] = {
            "type": "RefsPresent",
            "status": state,
            "reason": "RefNotFound" if absent_refs else "RefsFound",
            "message": f"not found: {', '.join(absent_refs)}" if absent_refs else "",
            "lastTransitionTime": stamp or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if generation is not None:
            refs["observedGeneration"] = generation
        out.append(refs)
    return out


def status_patch(
    observed: Observed,
    *,
    spec_hash: str,
    outputs: dict[str, Any],
    previous: dict[str, Any],
    generation: int | None,
    now: datetime | None = None,
    inputs: dict[str, str] | None = None,
    absent_refs: list[str] | None = None,
) -> dict[str, Any]:
    """The whole status as the operator writes it (see `replacing` for the patch)."""
    progress: dict[str, Any] = {"done": observed.done, "unit": observed.unit}
    if observed.total is not None:
        progress["total"] = observed.total
        progress["summary"] = f"{observed.done}/{observed.total}"
    status: dict[str, Any] = {
        "phase": observed.phase,
        "specHash": spec_hash,
        "conditions": conditions(
            observed,
            previous.get("conditions") or [],
            generation,
            now or datetime.now(UTC),
            absent_refs,
        ),
        "progress": progress,
        "outputs": outputs,
    }
    if observed.training is not None:
        status["training"] = observed.training
    if inputs:
        status["inputs"] = inputs
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def same_status(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Equal apart from transition times: nothing worth a write or an Event."""

    def strip(status: dict[str, Any]) -> dict[str, Any]:
        conds = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return {**status, "conditions": conds}

    return strip(new) == strip(old)


def replacing(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) that turns `old` into exactly `new`: keys `new` lacks are
    set to null, so no count of an earlier spec survives a rerun."""
    patch: dict[str, Any] = dict(new)
    for key, value in old.items():
        if key not in new:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(new[key], dict):
            patch[key] = replacing(new[key], value)
    return patch
