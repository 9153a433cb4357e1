"""The report's end of a run: `write_report` with its plots drawn in this process against drawn
by the plotting process (`plots.PlotWorker`), alternated on one committed SynthesisRun. The
process is started as a run starts it (`start_early`, then `--idle` seconds, the run's start);
prints wall and CPU seconds (this process's, and with the plotting child's) of each arm and the
ratio of their walls:

    PYTHONPATH=. python bench/report_plots.py MANIFEST --store file://STORE --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--store", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle", type=float, default=2.0)
    args = parser.parse_args()
    from litelong.api import load_file
    from litelong.index import open_index
    from litelong.stages import resolve_inputs
    from litelong.store import ArtifactStore
    from litelong.synth.report import write_report
    from litelong.synth.report.plots import start_early

    store = ArtifactStore(args.store)
    run = resolve_inputs([load_file(args.manifest)[0]], lambda _: store)[0]
    artifact = store.output_of(run)
    retriever = open_index(store.input_of(run, "BM25Index"))
    walls: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for concurrent in (False, True):
            if concurrent:
                start_early()
                time.sleep(args.idle)
            own, children = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                write_report(artifact, retriever, Path(out), concurrent_plots=concurrent)
            wall = time.perf_counter() - started
            walls[concurrent].append(wall)
            mine = cpu(resource.RUSAGE_SELF) - own
            child = cpu(resource.RUSAGE_CHILDREN) - children
            where = "plotting process" if concurrent else "in this process  "
            print(f"plots {where}: wall {wall:.2f} s, CPU {mine:.2f} s (+{child:.2f} s child)")
    best = {arm: min(values) for arm, values in walls.items()}
    print(
        f"best wall: in this process {best[False]:.2f} s, plotting process {best[True]:.2f} s, "
        f"ratio {best[False] / best[True]:.2f}x"
    )
    retriever.close()


if __name__ == "__main__":
    main()
