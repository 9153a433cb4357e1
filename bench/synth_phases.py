"""Where a SynthesisRun's wall time goes: `litelong run` in this process with a mark (wall
seconds since the start, CPU seconds of the process, every thread) at each phase, and the
tokens the run tokenized against the tokens it wrote.

The marks are wrappers set around the stage's own functions from here (the library is not
changed to be measured): `claims` (the topic searches and the claim table), the tokenizer's
load, the writer's first and last sample, the part's commit (checksums), the artifact's
commit and the report. Run it from the root of the checkout measured, e.g.

    cd /work/main && PYTHONPATH=$PWD python /work/wt/steady/bench/synth_phases.py \
        --store /work/scratch-steady/p1/store --documents 100000 --topics 1000 --mode litelong

The store must hold `scale-<N>-docs` and `scale-topics-<T>` (bench/scale.py); the run's
artifact is deleted before and after (it is named `scale-<N>-<mode>`, as bench/scale.py's).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

WALL0 = time.perf_counter()
MARKS: list[tuple[str, float, float]] = []


def mark(name: str) -> None:
    MARKS.append((name, time.perf_counter() - WALL0, time.process_time()))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CountingTokenizer:
    """The run's tokenizer, counting the tokens of every batch `TokenizedDocuments` encodes."""

    def __init__(self, inner: Any, tally: dict[str, int]) -> None:
        self._inner, self._tally = inner, tally

    def encode_batch_fast(self, texts: list[str], **kwargs: Any) -> Any:
        encoded = self._inner.encode_batch_fast(texts, **kwargs)
        self._tally["units"] += len(texts)
        self._tally["tokens"] += sum(len(e.ids) for e in encoded)
        return encoded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def instrument(tally: dict[str, int]) -> None:
    import litelong.synth
    import litelong.synth.stage as stage
    from litelong.store.artifact import Artifact
    from litelong.synth.assembly import assemble

    def wrap(owner: Any, name: str, before: str | None, after: str | None) -> None:
        inner = getattr(owner, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if before:
                mark(before)
            result = inner(*args, **kwargs)
            if after:
                mark(after)
            return result

        setattr(owner, name, wrapped)

    wrap(stage, "claims", "searches and claims start", "claims done")
    wrap(stage, "load_tokenizer", None, "tokenizer loaded")
    wrap(Artifact, "commit_part", "samples written, part commit (checksums) starts", None)
    wrap(Artifact, "commit", "part committed, artifact commit starts", "artifact committed")
    wrap(litelong.synth, "after_commit", "report starts", "report done")

    opened = stage.open_writer

    def open_writer(*args: Any, **kwargs: Any) -> Any:
        writer = opened(*args, **kwargs)
        write, close = writer.write, writer.close
        first = [True]

        def counted_write(sample: Any) -> None:
            if first[0]:
                mark("first sample to the writer")
                first[0] = False
            tally["written_tokens"] += len(sample.input_ids)
            write(sample)

        def timed_close() -> Any:
            mark("last sample to the writer")
            return close()

        writer.write, writer.close = counted_write, timed_close
        return writer

    stage.open_writer = open_writer  # type: ignore[assignment]
    init = assemble.TokenizedDocuments.__init__

    def counted_init(self: Any, retriever: Any, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        init(self, retriever, CountingTokenizer(tokenizer, tally), *args, **kwargs)

    assemble.TokenizedDocuments.__init__ = counted_init  # type: ignore[method-assign]


def manifest(documents: int, topics: int, mode: str, max_uses: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from scale import synthesis_manifest

    return synthesis_manifest(documents, mode, topics, 1, max_uses, 131_072, docs_only=True)


def remove_run(store: Path, name: str) -> None:
    folder = store / "default" / "synthesisrun" / name
    shutil.rmtree(folder, ignore_errors=True)


def committed_files(store: Path, name: str) -> dict[str, Any]:
    """The committed run's counts and its parts' files (sha256 from the manifest, with
    `inputs.json` left out: it names the store's path)."""
    folder = store / "default" / "synthesisrun" / name
    manifest = json.loads(
        (folder / (folder / "_current").read_text().strip() / "_manifest.json").read_text()
    )
    files = {
        f"{part['name']}/{record['path']}": record["sha256"]
        for part in manifest["parts"]
        for record in part["files"]
        if not record["path"].endswith("inputs.json")
    }
    return {"counts": manifest["counts"], "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--mode", default="litelong")
    parser.add_argument("--max-uses", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the marks here")
    args = parser.parse_args()
    resource_ = manifest(args.documents, args.topics, args.mode, args.max_uses)
    name = resource_["metadata"]["name"]
    remove_run(args.store, name)
    tally = {"units": 0, "tokens": 0, "written_tokens": 0}
    mark("script start")
    from litelong.cli import main as cli

    instrument(tally)
    mark("imports done")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(resource_, file)
        file.flush()
        try:
            cli(["run", file.name, "--store", f"file://{args.store}"])
        except SystemExit as exc:
            if exc.code:
                raise
    mark("run returned")
    outputs = committed_files(args.store, name)
    remove_run(args.store, name)
    rows = []
    previous = (0.0, 0.0)
    for what, wall, cpu in MARKS:
        rows.append(
            {
                "mark": what,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "wall_since_s": round(wall - previous[0], 2),
                "cpu_since_s": round(cpu - previous[1], 2),
            }
        )
        previous = (wall, cpu)
    print(f"| mark | wall s | CPU s | wall since | CPU since | cores |  ({args.mode})")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        cores = row["cpu_since_s"] / row["wall_since_s"] if row["wall_since_s"] else 0.0
        print(
            f"| {row['mark']} | {row['wall_s']} | {row['cpu_s']} | {row['wall_since_s']} | "
            f"{row['cpu_since_s']} | {cores:.2f} |"
        )
    summary = {
        **tally,
        "tokenized_over_written": round(tally["tokens"] / max(1, tally["written_tokens"]), 4),
        "children_cpu_s": round(children_cpu(), 2),
    }
    print(json.dumps(outputs["counts"]))
    print("files (sha256):", json.dumps(outputs["files"]))
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(
            json.dumps({"mode": args.mode, "marks": rows, **summary, **outputs}, indent=2)
        )


if __name__ == "__main__":
    main()
