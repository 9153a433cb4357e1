"""Cores a command keeps busy, every half second, thread by thread: where a build leaves a core
idle (issue 22, "Index vs raw tantivy: keeping the cores busy" in bench/README.md).

    python bench/cores_timeline.py --out timeline.json -- python -m litelong run index.yaml

Samples /proc/<pid>/task/*/stat of the command and its children every `--interval` seconds
(Linux only), groups threads by name (`comm`: "python3" is the interpreter's main thread,
tantivy names its indexing and merge threads), and prints one line per interval: cores busy in
all, then per thread name, with the command's output lines (stdout and stderr, timestamped)
between them. `--out` keeps the samples as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (through /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _threads(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds of every thread of `pid`'s tree, keyed by (tid, name)."""
    times: dict[tuple[int, str], float] = {}
    for process in _tree(pid):
        for stat in Path(f"/proc/{process}/task").glob("*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text[text.rindex(")") + 2 :].split()
            times[(int(stat.parent.name), name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[tuple[float, str]] = []

    def pump() -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            lines.append((time.perf_counter() - started, raw.decode(errors="replace").rstrip()))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    samples: list[tuple[float, dict[str, float]]] = []
    last: dict[tuple[int, str], float] = {}
    last_time = started
    while child.poll() is None:
        time.sleep(args.interval)
        now = time.perf_counter()
        current = _threads(child.pid)
        busy: dict[str, float] = defaultdict(float)
        for key, seconds in current.items():
            busy[key[1]] += seconds - last.get(key, 0.0)
        span = now - last_time
        cores = {name: round(value / span, 2) for name, value in busy.items() if value > 0}
        samples.append((round(now - started, 2), cores))
        last, last_time = current, now
    reader.join()
    shown = 0
    for at, cores in samples:
        while shown < len(lines) and lines[shown][0] <= at:
            print(f"{lines[shown][0]:8.2f}  | {lines[shown][1][:110]}")
            shown += 1
        total = sum(cores.values())
        parts = " ".join(f"{name}={value:.2f}" for name, value in sorted(cores.items()))
        print(f"{at:8.2f} {total:5.2f}  {parts}")
    for at, line in lines[shown:]:
        print(f"{at:8.2f}  | {line[:110]}")
    print(f"wall {time.perf_counter() - started:.2f} s, exit {child.returncode}")
    if args.out:
        args.out.write_text(
            json.dumps({"samples": [{"t": t, "cores": c} for t, c in samples], "lines": lines})
        )
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
