"""Plan every resource of some manifests, in dependency order, each from the ones before it."""

from __future__ import annotations

from ..api import BM25Index, SynthesisRun, TopicDebate, TrainingJob
from ..api.loading import AnyResource
from ..stages import order_by_dependency
from ..store import ArtifactStore
from .calibration import Calibration
from .debate import estimate_debate
from .defaults import SOURCE, defaults
from .estimate import Estimate, Plan
from .index import estimate_index
from .synthesis import estimate_synthesis
from .training import estimate_training


def make_plan(
    resources: list[AnyResource],
    store: ArtifactStore,
    calibration: Calibration | None = None,
    llm_tokens_per_s: float | None = None,
) -> Plan:
    """Estimates for `resources`; references resolve to earlier resources of the list or to
    committed artifacts in `store` (whose real figures are preferred)."""
    rates = calibration or defaults()
    plan = Plan([], rates.label if calibration is not None else SOURCE)
    for resource in order_by_dependency(resources):
        plan.estimates.append(_estimate(resource, rates, store, plan, llm_tokens_per_s))
    return plan


def _estimate(
    resource: AnyResource,
    rates: Calibration,
    store: ArtifactStore,
    plan: Plan,
    llm_tokens_per_s: float | None,
) -> Estimate:
    if isinstance(resource, TopicDebate):
        return estimate_debate(resource, rates, llm_tokens_per_s)
    if isinstance(resource, BM25Index):
        return estimate_index(resource, rates)
    if isinstance(resource, SynthesisRun):
        return estimate_synthesis(resource, rates, store, plan)
    assert isinstance(resource, TrainingJob)
    return estimate_training(resource, rates, plan)
