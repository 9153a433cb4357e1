"""Prometheus metrics: reconciles, errors, children created, resources by phase.

Served on $LITELONG_METRICS_PORT (default 9090, 0 turns it off) by the operator's startup.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("litelong_reconciles", "Reconciles run, by kind.", ["kind"])
ERRORS = Counter("litelong_reconcile_errors", "Reconciles that raised, by kind.", ["kind"])
RECONCILE_SECONDS = Histogram(
    "litelong_reconcile_seconds", "Time per reconcile, by kind.", ["kind"]
)
CHILDREN_CREATED = Counter(
    "litelong_children_created", "Children created (Jobs, StatefulSets...), by kind.", ["kind"]
)
RESOURCES = Gauge("litelong_resources", "litelong resources by kind and phase.", ["kind", "phase"])

_phases: dict[tuple[str, str, str], str] = {}
_lock = threading.Lock()


def record_phase(kind: str, namespace: str, name: str, phase: str | None) -> None:
    """Move one resource between phases (None: it was deleted)."""
    with _lock:
        before = _phases.pop((kind, namespace, name), None)
        if before is not None:
            RESOURCES.labels(kind, before).dec()
        if phase is not None:
            _phases[(kind, namespace, name)] = phase
            RESOURCES.labels(kind, phase).inc()
