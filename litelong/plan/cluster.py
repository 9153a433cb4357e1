"""The plan in a cluster: `status.plan` (the headline figures, written at creation) and an ETA
from the measured progress rate. Pure functions over the resource body and its status, so
the operator calls them without the stages' engines (its image has none).

Only kinds whose estimate needs no corpus or index reads are planned here: TrainingJob
(arithmetic on the model's shape) and TopicDebate (the taxonomy ships with litelong); a
BM25Index or SynthesisRun gets its ETA from progress alone (`litelong plan` plans them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..api import TopicDebate, TrainingJob
from ..api.loading import AnyResource
from .debate import estimate_debate
from .defaults import defaults
from .estimate import Estimate, Plan, duration, headline
from .models import UnknownModel
from .training import estimate_training


def planned(resource: AnyResource) -> Estimate | None:
    """The bench-default estimate of a resource, for kinds that can be planned in a cluster."""
    rates = defaults()
    try:
        if isinstance(resource, TrainingJob):
            return estimate_training(resource, rates, Plan([], ""))
        if isinstance(resource, TopicDebate):
            return estimate_debate(resource, rates)
    except UnknownModel:
        return None
    return None


def eta_seconds(
    done: int,
    total: int | None,
    running_since: datetime | None,
    now: datetime,
    planned_s: float | None,
) -> float | None:
    """Seconds left: from the rate so far once a unit is done; before that, the planned wall
    time minus the time already spent; None when neither is known."""
    if total is not None and done >= total:
        return 0.0
    elapsed = (now - running_since).total_seconds() if running_since else None
    if elapsed is not None and done > 0 and total is not None and elapsed > 0:
        return (total - done) * elapsed / done
    if planned_s is not None:
        return max(0.0, planned_s - (elapsed or 0.0))
    return None


def plan_status(
    resource: AnyResource | None,
    phase: str,
    done: int,
    total: int | None,
    previous: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """`status.plan`: the headline kept from creation (taken from `previous` once written) and
    the ETA, refreshed when the phase or the units done change (not on every reconcile: a
    status that changes by itself would be written, and watched, forever). None when there is
    nothing to say."""
    now = now or datetime.now(UTC)
    before = dict(previous.get("plan") or {})
    if not before and resource is not None:
        estimate = planned(resource)
        if estimate is not None:
            before = {
                "wallSeconds": round(estimate.wall_seconds, 1),
                "cpuHours": round(estimate.cpu_hours, 4),
                "gpuHours": round(estimate.gpu_hours, 4),
                "bytes": estimate.bytes,
                "summary": headline(Plan([estimate], "")),
            }
            if "fits" in estimate.figures:
                before["fits"] = bool(estimate.figures["fits"])
    progress = previous.get("progress") or {}
    if phase == previous.get("phase") and done == progress.get("done", 0) and "eta" in before:
        return before  # no new progress: the ETA stands (and the status write is skipped)
    if phase == "Succeeded":
        eta: float | None = 0.0
    elif phase != "Running":
        eta = None
    else:
        eta = eta_seconds(done, total, _running_since(previous), now, before.get("wallSeconds"))
    if eta is None:
        before.pop("eta", None)
        before.pop("etaSeconds", None)
    else:
        before["etaSeconds"] = round(eta)
        before["eta"] = "done" if phase == "Succeeded" else duration(eta)
    return before or None


def _running_since(previous: dict[str, Any]) -> datetime | None:
    for condition in previous.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("status") == "True":
            stamp = condition.get("lastTransitionTime")
            if stamp:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return None
