"""The claim table's build (synth/assembly/candidates.py `ClaimTable`) on synthetic retrievals:
1,000 topics x 1,032 hits drawn from 200,000 documents (shared between topics as a real run's
are), the searches replaced by lists, so only the table's own work is timed (the main thread's
part of a SynthesisRun's claim phase, while the searches run). Prints wall and CPU seconds of
the best of `--repeats`; run it with main's and a branch's PYTHONPATH back to back to compare:

    PYTHONPATH=. python bench/claim_table.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


class Lists:
    def __init__(self, ranked: dict[int, list[tuple[str, int, float, int]]]) -> None:
        self._ranked = ranked

    def ranked(self, topic: object) -> list[tuple[str, int, float, int]]:
        return self._ranked[topic.number]  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--hits", type=int, default=1032)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from litelong.synth.assembly import Topic, claims

    rng = np.random.default_rng(0)
    ids = [f"{n:016x}{n * 7919:016x}" for n in range(args.documents)]
    ranked = {
        t: [
            (ids[d], p, 1.0, 4000)
            for p, d in enumerate(rng.choice(args.documents, args.hits, replace=False).tolist())
        ]
        for t in range(args.topics)
    }
    topics = [Topic(t) for t in range(args.topics)]
    best = (float("inf"), float("inf"))
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            wall, cpu = time.perf_counter(), time.process_time()
            table = claims(topics, Lists(ranked), 7, Path(folder))  # type: ignore[arg-type]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            claimers = sum(c.claimers for c in table[0])
            table.close()
        best = min(best, (wall, cpu))
    print(
        f"claim table, {args.topics} x {args.hits} entries: wall {best[0]:.2f} s, "
        f"CPU {best[1]:.2f} s (topic 0's claimers: {claimers})"
    )


if __name__ == "__main__":
    main()
