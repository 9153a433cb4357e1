"""How much of a core a busy thread gets right now: the load other processes put on this
machine, measured the same way at calibration and at plan time.

A stage's CPU seconds hardly move with the load; its wall time does. The probes record the
cores a stage kept busy (CPU over wall) under the load of their moment; a plan made under
another load scales them by the ratio of the shares a spinning thread gets now and then
(`scale`), so a plan made on a busy machine says how long the run takes on that busy machine.
"""

from __future__ import annotations

import time

SPIN_SECONDS = 0.3
#: A share measured now against one at calibration: bounded, one short spin is noisy.
BOUNDS = (0.25, 4.0)


def core_share(seconds: float = SPIN_SECONDS) -> float:
    """CPU seconds per wall second a thread spinning for `seconds` gets (1.0: a whole core)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    spins = 0
    while time.perf_counter() - wall < seconds:
        spins += 1
    return (time.thread_time() - cpu) / (time.perf_counter() - wall)


def scale(now: float | None, then: float | None) -> float:
    """The factor on the cores a probe measured under share `then`, for a plan made under
    share `now` (1 when either is unknown: bench defaults, or no measurement)."""
    if not now or not then:
        return 1.0
    low, high = BOUNDS
    return min(high, max(low, now / then))


def load_line(now: float | None, then: float | None) -> str:
    """The basis line of a wall time scaled to the load of the moment."""
    return (
        f"cores x {scale(now, then):.2f} for this moment's load: a busy thread gets "
        f"{now or 0:.2f} of a core now, {then or 0:.2f} at calibration"
    )


def idle_cores(cores: float, share: float | None, machine: int) -> float:
    """The cores a stage keeps busy on an idle machine (a shard's pod): what it kept busy
    under a share `share` of a core per thread, at most the machine's cores."""
    return min(float(machine), cores / share) if share else cores
