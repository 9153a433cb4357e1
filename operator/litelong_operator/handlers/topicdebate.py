"""TopicDebate: an Indexed Job of debate shards (categories of the taxonomy)."""

from __future__ import annotations

from typing import Any

import kopf

from . import runtime
from .runtime import GROUP, RESYNC_SECONDS, VERSION, is_ready

KIND = "TopicDebate"


@kopf.on.resume(GROUP, VERSION, "topicdebates")
@kopf.on.create(GROUP, VERSION, "topicdebates")
@kopf.on.update(GROUP, VERSION, "topicdebates", field="spec")
def reconcile(body: kopf.Body, **_: Any) -> None:
    """Created, edited (a new spec hash: new children) or found again after a restart."""
    runtime.reconcile(body)


@kopf.timer(GROUP, VERSION, "topicdebates", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, **_: Any) -> None:
    """Level-based safety net: whatever a missed event left behind is caught here."""
    runtime.reconcile(body)


@kopf.on.event(GROUP, VERSION, "topicdebates")
def wake_synthesisruns(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """The moment this resource is Ready, the SynthesisRuns naming it start (no poll delay)."""
    if is_ready(body):
        runtime.wake_dependents(body, "SynthesisRun", logger)


@kopf.on.delete(GROUP, VERSION, "topicdebates", optional=True)
def deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Children go by garbage collection (ownerReferences); outputs stay in the store."""
    runtime.forget(body, logger)
