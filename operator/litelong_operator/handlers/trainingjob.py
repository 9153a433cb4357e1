"""TrainingJob: waits for its SynthesisRun, then a PyTorchJob (or a Trainer v2 TrainJob)."""

from __future__ import annotations

from typing import Any

import kopf

from . import runtime
from .runtime import GROUP, RESYNC_SECONDS, VERSION

KIND = "TrainingJob"


@kopf.on.resume(GROUP, VERSION, "trainingjobs")
@kopf.on.create(GROUP, VERSION, "trainingjobs")
@kopf.on.update(GROUP, VERSION, "trainingjobs", field="spec")
def reconcile(body: kopf.Body, **_: Any) -> None:
    """Created, edited (a new spec hash: new children) or found again after a restart."""
    runtime.reconcile(body)


@kopf.timer(GROUP, VERSION, "trainingjobs", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, **_: Any) -> None:
    """Level-based safety net: whatever a missed event left behind is caught here."""
    runtime.reconcile(body)


@kopf.on.delete(GROUP, VERSION, "trainingjobs", optional=True)
def deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Children go by garbage collection (ownerReferences); outputs stay in the store."""
    runtime.forget(body, logger)
