"""TopicDebate: subjects, requests and tokens per role, wall time at the spec's concurrency.

    subjects  = the spec's selection, counted exactly (the taxonomy ships with litelong)
    requests  = subjects x requests per subject (2 proposals, 2 critiques, 1 judgement, repairs)
    tokens    = subjects x tokens per subject, by role and direction
    wall time = subjects x seconds per subject / overlap

The per-subject figures are measured by `--calibrate`, which debates one real subject of the
spec against its endpoints. Overlap: the embedded server (`baseURL: local`) already uses every
core for one subject's requests, so subjects do not overlap (bench/README.md: concurrency 4 is
1.14x concurrency 1); a remote server serves `concurrency` subjects at once, unless
`--llm-tokens-per-s` caps its throughput.
"""

from __future__ import annotations

import math

from ..api.v1alpha1 import TopicDebate, TopicDebateSpec
from ..api.v1alpha1.topicdebate import LOCAL
from ..taxonomy import load_bisac
from .calibration import Calibration, DebateRates
from .deadline import Scaling, per_shard_cores
from .defaults import DEBATE
from .estimate import Estimate


def endpoint_key(spec: TopicDebateSpec) -> str:
    """What the per-subject figures depend on: the endpoints, the topics asked for, maxTokens."""
    roles = [d.endpoint for d in spec.debaters] + [spec.judge.endpoint]
    served = ",".join(f"{e.base_url}#{e.model}" for e in roles)
    return f"{served}|k={spec.topics_per_subject}|max={spec.sampling.max_tokens}"


def is_local(spec: TopicDebateSpec) -> bool:
    return any(
        e.base_url == LOCAL for e in [d.endpoint for d in spec.debaters] + [spec.judge.endpoint]
    )


def estimate_debate(
    resource: TopicDebate,
    calibration: Calibration,
    tokens_per_s: float | None = None,
) -> Estimate:
    spec = resource.spec
    subjects = len(load_bisac().select(spec.taxonomy))
    key = endpoint_key(spec)
    rates: DebateRates = calibration.debate.get(key) or DEBATE
    source = calibration.label if key in calibration.debate else "bench/README.md default"
    local = is_local(spec)
    shards = spec.parallelism
    per_shard = math.ceil(subjects / shards)
    overlap = 1 if local else min(spec.concurrency, max(1, per_shard))
    wall = per_shard * rates.seconds_per_subject / overlap
    tokens_in = {role: round(n * subjects) for role, n in rates.tokens_in.items()}
    tokens_out = {role: round(n * subjects) for role, n in rates.tokens_out.items()}
    basis = [
        f"{subjects} subject(s) selected ({', '.join(spec.taxonomy.include) or 'all'}), "
        f"{shards} shard(s)",
        f"{rates.seconds_per_subject:.1f} s, {rates.requests_per_subject:.1f} requests and "
        f"{sum(rates.tokens_in.values()) + sum(rates.tokens_out.values()):,.0f} tokens per "
        f"subject ({source})",
        "embedded server: subjects do not overlap (CPU-bound)"
        if local
        else f"remote endpoints: {overlap} subject(s) at once (concurrency {spec.concurrency})",
    ]
    if tokens_per_s and not local:
        bound = sum(tokens_out.values()) / tokens_per_s / shards
        if bound > wall:
            wall = bound
            basis.append(f"throughput-bound at {tokens_per_s:,.0f} completion tokens/s")
    if local:  # each shard runs its own server on its own cores
        busy = per_shard_cores(rates.cpu_per_wall)
        work = subjects * rates.seconds_per_subject * rates.cpu_per_wall
        scaling = Scaling("cores", work, 0.0, busy, max_shards=max(1, subjects), whole=True)
    else:  # the endpoints' throughput, not this machine's cores, bounds it
        work = subjects * rates.seconds_per_subject / max(1, min(spec.concurrency, subjects))
        scaling = Scaling("shards", work, 0.0, max_shards=max(1, subjects), whole=True)
    return Estimate(
        kind=resource.kind,
        name=resource.name,
        wall_seconds=wall,
        bytes=round(subjects * rates.bytes_per_subject),
        cpu_hours=wall * shards * rates.cpu_per_wall / 3600,
        figures={
            "subjects": subjects,
            "requests": round(subjects * rates.requests_per_subject),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "topics": round(subjects * rates.topics_per_subject),
            "concurrency": spec.concurrency,
        },
        basis=basis,
        scaling=scaling,
    )
