"""BM25Index: an Indexed Job building the index; with a managed Manticore backend, a
StatefulSet of Manticore pods first, then loaders once every pod is ready."""

from __future__ import annotations

from typing import Any

import kopf

from . import runtime
from .runtime import GROUP, RESYNC_SECONDS, VERSION, is_ready

KIND = "BM25Index"


@kopf.on.resume(GROUP, VERSION, "bm25indexes")
@kopf.on.create(GROUP, VERSION, "bm25indexes")
@kopf.on.update(GROUP, VERSION, "bm25indexes", field="spec")
def reconcile(body: kopf.Body, **_: Any) -> None:
    """Created, edited (a new spec hash: new children) or found again after a restart."""
    runtime.reconcile(body)


@kopf.timer(GROUP, VERSION, "bm25indexes", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, **_: Any) -> None:
    """Level-based safety net: whatever a missed event left behind is caught here."""
    runtime.reconcile(body)


@kopf.on.event(GROUP, VERSION, "bm25indexes")
def wake_synthesisruns(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """The moment this resource is Ready, the SynthesisRuns naming it start (no poll delay)."""
    if is_ready(body):
        runtime.wake_dependents(body, "SynthesisRun", logger)


@kopf.on.delete(GROUP, VERSION, "bm25indexes", optional=True)
def deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Children go by garbage collection (ownerReferences); outputs stay in the store."""
    runtime.forget(body, logger)
