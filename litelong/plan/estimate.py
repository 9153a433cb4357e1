"""What the planner says about one resource, the totals of a plan, and their headline
(no rich here: the operator image imports this through `cluster`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .deadline import Scaling, shape_within


@dataclass
class Estimate:
    """One resource's estimated cost. `figures` holds the kind's own numbers (requests, tokens,
    documents, memory per GPU...); `basis` says where every rate came from, one line each."""

    kind: str
    name: str
    wall_seconds: float
    bytes: int
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    basis: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scaling: Scaling | None = None  # what the wall time is made of, for --within
    within: dict[str, Any] | None = None  # the shape that meets --within (`deadline.py`)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found.pop("scaling")
        if self.within is None:
            found.pop("within")
        return found

    def size_for(self, seconds: float) -> None:
        """Fill `within`: the cores or GPUs and the parallelism that finish in `seconds`."""
        if self.scaling is not None:
            self.within = shape_within(self.scaling, seconds)


@dataclass
class Plan:
    """Estimates in dependency order; the stages run one after the other, so wall times add."""

    estimates: list[Estimate]
    calibration: str  # where the rates came from: a calibration file, or the bench defaults

    @property
    def wall_seconds(self) -> float:
        return sum(e.wall_seconds for e in self.estimates)

    @property
    def cpu_hours(self) -> float:
        return sum(e.cpu_hours for e in self.estimates)

    @property
    def gpu_hours(self) -> float:
        return sum(e.gpu_hours for e in self.estimates)

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.estimates)

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": {
                "wall_seconds": round(self.wall_seconds, 3),
                "machine_hours": {
                    "cpu": round(self.cpu_hours, 6),
                    "gpu": round(self.gpu_hours, 6),
                },
                "bytes": self.bytes,
            },
            "calibration": self.calibration,
            "resources": [e.as_dict() for e in self.estimates],
        }

    def find(self, kind: str, name: str) -> Estimate | None:
        return next((e for e in self.estimates if e.kind == kind and e.name == name), None)


def duration(seconds: float) -> str:
    """12 s, 4.5 min, 3.2 h, 2.1 d."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def size(nbytes: float) -> str:
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{nbytes:.0f} B"


def headline(plan: Plan) -> str:
    """The three figures a reader wants first."""
    return (
        f"wall {duration(plan.wall_seconds)}, {plan.cpu_hours:,.2f} CPU-hours, "
        f"{plan.gpu_hours:,.2f} GPU-hours, {size(plan.bytes)}"
    )
