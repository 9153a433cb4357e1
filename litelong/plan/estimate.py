"""What the planner says about one resource, and the totals of a plan."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
