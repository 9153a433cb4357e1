"""A part's checksums one file after another (as before) against `file_records` (several
threads, largest file first): wall and CPU seconds, alternating, and that both agree.

    python bench/part_checksums.py STORE/default/bm25index/scale-1m-docs/*/part-00000-of-00001

Only reads the folder. The files are read once untimed first, so both read page cache.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from litelong.store.manifest import FileRecord, file_records


def serial_records(directory: Path) -> list[FileRecord]:
    """`file_records` as it was: one file after another on the calling thread."""
    records = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        records.append(
            FileRecord(
                path=path.relative_to(directory).as_posix(),
                size=path.stat().st_size,
                sha256=digest.hexdigest(),
            )
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for path in args.part.rglob("*"):  # into page cache
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass
    size = sum(p.stat().st_size for p in args.part.rglob("*") if p.is_file())
    print(f"{args.part}: {size / 1e9:.2f} GB")
    seen: dict[str, list[FileRecord]] = {}
    for _ in range(args.repeat):
        for name, function in (("serial", serial_records), ("threads", file_records)):
            wall, cpu = time.perf_counter(), time.process_time()
            seen[name] = function(args.part)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            with open("/proc/loadavg") as load:
                print(
                    f"{name:8s} wall {wall:6.2f} s  CPU {cpu:6.2f} s  load {load.read().split()[0]}"
                )
    assert seen["serial"] == seen["threads"], "the two disagree"
    print("same records")


if __name__ == "__main__":
    main()
