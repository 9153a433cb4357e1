"""Children report back: a Job, StatefulSet or Kubeflow job changing reconciles its owner."""

from __future__ import annotations

from typing import Any

import kopf

from . import runtime
from .runtime import MANAGED


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED)
@kopf.on.event("kubeflow.org", "v1", "pytorchjobs", labels=MANAGED)
@kopf.on.event("trainer.kubeflow.org", "v1alpha1", "trainjobs", labels=MANAGED)
def child_changed(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    runtime.reconcile_owner(body, logger)
