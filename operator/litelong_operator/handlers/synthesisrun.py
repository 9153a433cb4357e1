"""SynthesisRun: waits for its TopicDebate and BM25Index to be Ready, then an Indexed Job of
topic shards."""

from __future__ import annotations

from typing import Any

import kopf

from . import runtime
from .runtime import GROUP, RESYNC_SECONDS, VERSION, is_ready

KIND = "SynthesisRun"


@kopf.on.resume(GROUP, VERSION, "synthesisruns")
@kopf.on.create(GROUP, VERSION, "synthesisruns")
@kopf.on.update(GROUP, VERSION, "synthesisruns", field="spec")
def reconcile(body: kopf.Body, **_: Any) -> None:
    """Created, edited (a new spec hash: new children) or found again after a restart."""
    runtime.reconcile(body)


@kopf.timer(GROUP, VERSION, "synthesisruns", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, **_: Any) -> None:
    """Level-based safety net: whatever a missed event left behind is caught here."""
    runtime.reconcile(body)


@kopf.on.event(GROUP, VERSION, "synthesisruns")
def wake_trainingjobs(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """The moment this resource is Ready, the TrainingJobs naming it start (no poll delay)."""
    if is_ready(body):
        runtime.wake_dependents(body, "TrainingJob", logger)


@kopf.on.delete(GROUP, VERSION, "synthesisruns", optional=True)
def deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Children go by garbage collection (ownerReferences); outputs stay in the store."""
    runtime.forget(body, logger)
