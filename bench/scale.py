"""Scale benchmark (issue 22): index and synthesis at 100K, 1M and 5M documents.

Each stage runs as `litelong run MANIFEST --store URI` in a child process, timed from outside:
wall time, CPU time (the child's user + system, every thread), peak RSS (the child's
`ru_maxrss` from `wait4`) and the bytes its artifact holds on disk. Figures go to
`<work>/results/<stage>.json`; a stage whose file exists is not run again, so the benchmark
resumes after an interruption and can be run one stage at a time.

    python bench/scale_corpus.py ../shared/data/corpora/large /tmp/scale/corpus --documents 5000000
    python bench/scale.py index --corpus /tmp/scale/corpus --work /tmp/scale --documents 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

PER_SHARD = 100_000  # documents per corpus shard (bench/scale_corpus.py --per-shard)


def label(documents: int) -> str:
    """100000 → 100k, 5000000 → 5m."""
    if documents % 1_000_000 == 0:
        return f"{documents // 1_000_000}m"
    return f"{documents // 1000}k"


def index_manifest(corpus: Path, documents: int, chunks: bool = True) -> dict[str, Any]:
    """A BM25Index over the first `documents` of the scale corpus (whole shards)."""
    shards = -(-documents // PER_SHARD)
    files = [corpus / f"scale-{n:05d}.jsonl.zst" for n in range(shards)]
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise SystemExit(f"corpus shards missing (run bench/scale_corpus.py): {missing[:3]}")
    spec: dict[str, Any] = {
        "corpus": [{"uri": str(path), "format": "jsonl"} for path in files],
        "minChars": 20,
        "dedup": "exact",
        "analysis": {"language": "english", "stem": True, "stopwords": True},
        "backend": {"type": "tantivy"},
    }
    if chunks:
        spec["chunks"] = {"enabled": True, "chunkChars": 2048}
    name = f"scale-{label(documents)}" + ("" if chunks else "-docs")
    return {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "BM25Index",
        "metadata": {"name": name},
        "spec": spec,
    }


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_measured(manifests: list[dict[str, Any]], work: Path, stage: str) -> dict[str, Any]:
    """`litelong run` the manifests in a child process; its figures, saved under results/."""
    result_file = work / "results" / f"{stage}.json"
    if result_file.exists():
        return dict(json.loads(result_file.read_text()))
    (work / "manifests").mkdir(parents=True, exist_ok=True)
    manifest_file = work / "manifests" / f"{stage}.yaml"
    manifest_file.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    store = work / "store"
    command = [sys.executable, "-m", "litelong", "run", str(manifest_file)]
    command += ["--store", f"file://{store}"]
    started = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{stage}: `{' '.join(command)}` exited {child.returncode}")
    last = manifests[-1]
    kind, name = last["kind"], last["metadata"]["name"]
    folder = store / "default" / kind.lower() / name
    artifact = folder / (folder / "_current").read_text().strip()
    figures = {
        "stage": stage,
        "kind": kind,
        "name": name,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "disk_bytes": disk_bytes(artifact),
        "counts": json.loads((artifact / "_manifest.json").read_text())["counts"],
        "command": " ".join(command),
    }
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(figures, indent=2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["index"])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--documents", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    for documents in args.documents:
        manifest = index_manifest(args.corpus, documents)
        figures = run_measured([manifest], args.work, f"index-{label(documents)}")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
