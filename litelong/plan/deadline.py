"""`litelong plan --within DURATION`: the shape that finishes each stage within a wall time.

A stage's estimate carries what its wall time is made of (`Scaling`): work that its shards
divide (CPU seconds, or GPU seconds for training), a part every run pays whatever its shards
(the fixed per-run CPU, the report), and the cores (or GPUs) one shard keeps busy. For a
duration D:

    cores       = ceil(work / (D - fixed))            CPU seconds per wall second needed
    parallelism = ceil(cores / cores per shard)       shards, at most the units of work
    wall        = work / (parallelism x cores per shard) + fixed
                  (debate subjects are whole: ceil(subjects / parallelism) of them per shard,
                  and the parallelism grows until that meets D)

Training: GPUs = ceil(GPU seconds / D), at least the smallest count that fits in memory,
rounded up to a multiple of the context-parallel degree, then to whole 8-GPU nodes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

GPUS_PER_NODE = 8
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class BadDuration(ValueError):
    """A --within value that is not a duration such as 90s, 30m, 1h or 1h30m."""


def parse_duration(text: str) -> float:
    """Seconds of `30m`, `1h`, `1h30m`, `90s`, `2d` (a bare number is seconds)."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif value and re.fullmatch(f"(?:{_PART.pattern})+", value):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    else:
        raise BadDuration(f"bad duration {text!r}: expected e.g. 90s, 30m, 1h or 1h30m")
    if seconds <= 0:
        raise BadDuration(f"bad duration {text!r}: it must be more than 0")
    return seconds


@dataclass(frozen=True)
class Scaling:
    """What a stage's wall time is made of, for sizing it."""

    unit: str  # "cores" (CPU stages), "gpus" (training), "shards" (remote LLM endpoints)
    work: float  # CPU seconds (GPU seconds, wall seconds) that shards divide
    fixed_seconds: float  # wall seconds every run pays whatever its shards
    per_shard: float = 1.0  # cores (GPUs) one shard keeps busy
    max_shards: int = 1_000_000  # units of work: documents, topics, subjects
    whole: bool = False  # the units are few and whole (subjects): a shard takes ceil(units/N)
    min_units: int = 1  # training: the fewest GPUs that fit
    multiple: int = 1  # training: GPUs come in multiples of the context-parallel degree


def per_shard_cores(cores: float) -> float:
    """Cores one shard keeps busy on its own pod: what the probes measured (CPU seconds per
    wall second: tantivy's writer threads, the tokenizer's batches), at least one, since a
    probe on a loaded machine measures less than a shard gets on its own core."""
    return max(1.0, cores)


def shape_within(scaling: Scaling, seconds: float) -> dict[str, Any]:
    """The cores (or GPUs) and the parallelism that finish the stage within `seconds`, the wall
    time that shape gives, and whether it meets the duration."""
    if scaling.unit == "gpus":
        return _gpus_within(scaling, seconds)
    room = seconds - scaling.fixed_seconds
    needed = math.ceil(scaling.work / room - 1e-9) if room > 0 else math.inf
    shards = scaling.max_shards if math.isinf(needed) else math.ceil(needed / scaling.per_shard)
    shards = max(1, min(shards, scaling.max_shards))
    wall = _wall(scaling, shards)
    while scaling.whole and wall > seconds and shards < scaling.max_shards:
        shards += 1  # whole subjects: 4 over 3 shards is 2 for one of them
        wall = _wall(scaling, shards)
    return {
        "seconds": seconds,
        "cores": None if scaling.unit == "shards" else math.ceil(shards * scaling.per_shard),
        "gpus": None,
        "parallelism": shards,
        "wall_seconds": round(wall, 3),
        "meets": wall <= seconds * (1 + 1e-9),
    }


def _wall(scaling: Scaling, shards: int) -> float:
    share = (
        math.ceil(scaling.max_shards / shards) / scaling.max_shards if scaling.whole else 1 / shards
    )
    return scaling.work * share / scaling.per_shard + scaling.fixed_seconds


def _gpus_within(scaling: Scaling, seconds: float) -> dict[str, Any]:
    gpus = max(scaling.min_units, math.ceil(scaling.work / seconds - 1e-9), 1)
    gpus += (-gpus) % scaling.multiple
    if gpus > GPUS_PER_NODE:
        gpus += (-gpus) % GPUS_PER_NODE
    nodes = math.ceil(gpus / GPUS_PER_NODE)
    wall = scaling.work / gpus
    return {
        "seconds": seconds,
        "cores": None,
        "gpus": gpus,
        "parallelism": {
            "nodes": nodes,
            "gpusPerNode": gpus // nodes,
            "contextParallel": scaling.multiple,
        },
        "wall_seconds": round(wall, 3),
        "meets": wall <= seconds * (1 + 1e-9),
    }
