"""Scale benchmark (issue 22): index and synthesis at 100K, 1M and 5M documents.

Each stage runs in a child process, timed from outside: wall time, CPU time (the child's user +
system, every thread), peak RSS (the child's `ru_maxrss` from `wait4`) and the bytes its output
holds on disk. Figures go to `<work>/results/<stage>.json`; a stage whose file exists is not run
again, so the benchmark resumes after an interruption and can be run one stage at a time.

Stages, per scale (the first N documents of the corpus made by bench/scale_corpus.py):

* `index-<N>`: `litelong run` of a BM25Index with chunks (chunkChars 2048, for nextlong);
* `index-docs-<N>` and `tantivy-<N>`: a BM25Index without chunks, and its peer, raw tantivy
  streaming the same shards (`peer-child`), run one after the other (litelong first, or the
  peer with `--peer-first`), each with its segments' document counts;
* `read-<N>`: litelong's corpus reading alone (zstd, JSON, normalisation, hashing) as one shard
  of 1,024 reads it (`read-child`): what every shard of a BM25Index pays, whatever its share;
* `synth-<N>-<mode>` for modes litelong, standard and nextlong: `litelong run` of a SynthesisRun
  at targetTokens 131072 from `index-<N>` and a TopicDebate of synthetic BISAC topics, and
  `bound-<N>-<mode>`: the tokenize-only bound of the documents the run used (`bound-child`),
  timed right before the run and right after it (`--bound around`: the run is made once first,
  `first-<N>-<mode>`, so that its documents are known; `bound-<N>-<mode>-before`), the run
  compared with the mean of the two, as the machine's tokenizer throughput drifts by the minute.

    python bench/scale_corpus.py ../shared/data/corpora/large /tmp/scale/corpus --documents 5000000
    python bench/scale.py all --corpus /tmp/scale/corpus --work /tmp/scale --documents 100000
    python bench/scale.py report --work /tmp/scale
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from scale_report import bound_figures

PER_SHARD = 100_000  # documents per corpus shard (bench/scale_corpus.py --per-shard)
MODES = ("litelong", "standard", "nextlong")
TARGET = 131_072
CHUNK_CHARS = 2048
HEAP_MB = 512  # the BM25Index writer's default heap, given to the peer too
BOUND_TOKENS = 20_000_000  # the bound tokenizes a random subset of at least this many tokens
BOUND_CHARS_PER_TOKEN = 5  # above English BPE's ~4.2, so the subset reaches BOUND_TOKENS
BATCH = 64  # the synthesis stage's tokenizer batch
READ_OF = 1024  # `read-<N>`: one shard of this many


def label(documents: int) -> str:
    """100000 → 100k, 5000000 → 5m."""
    if documents % 1_000_000 == 0:
        return f"{documents // 1_000_000}m"
    if documents % 1000 == 0:
        return f"{documents // 1000}k"
    return str(documents)


def shard_files(corpus: Path, documents: int, per_shard: int) -> list[Path]:
    """The corpus shards holding the first `documents` (whole shards)."""
    shards = -(-documents // per_shard)
    files = [corpus / f"scale-{n:05d}.jsonl.zst" for n in range(shards)]
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise SystemExit(f"corpus shards missing (run bench/scale_corpus.py): {missing[:3]}")
    return files


def index_manifest(
    corpus: Path, documents: int, chunks: bool = True, per_shard: int = PER_SHARD
) -> dict[str, Any]:
    """A BM25Index over the first `documents` of the scale corpus (whole shards)."""
    files = shard_files(corpus, documents, per_shard)
    spec: dict[str, Any] = {
        "corpus": [{"uri": str(path), "format": "jsonl"} for path in files],
        "minChars": 20,
        "dedup": "exact",
        "analysis": {"language": "english", "stem": True, "stopwords": True},
        "backend": {"type": "tantivy"},
    }
    if chunks:
        spec["chunks"] = {"enabled": True, "chunkChars": CHUNK_CHARS}
    name = f"scale-{label(documents)}" + ("" if chunks else "-docs")
    return {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "BM25Index",
        "metadata": {"name": name},
        "spec": spec,
    }


def topics_name(count: int) -> str:
    return f"scale-topics-{count}"


def synthesis_manifest(
    documents: int,
    mode: str,
    topics: int,
    per_topic: int,
    max_uses: int | None,
    target: int,
    docs_only: bool = False,
) -> dict[str, Any]:
    """A SynthesisRun from `index-<N>` (mode standard: as many draws as the debate has topics,
    `samplesPerTopic` each, so every mode asks for the same number of samples); `docs_only`:
    from `index-docs-<N>` (modes litelong and standard never read the chunk index)."""
    return {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "SynthesisRun",
        "metadata": {"name": f"scale-{label(documents)}-{mode}"},
        "spec": {
            "topicDebateRef": topics_name(topics),
            "indexRef": f"scale-{label(documents)}" + ("-docs" if docs_only else ""),
            "mode": mode,
            "targetTokens": target,
            "samplesPerTopic": per_topic,
            "reuse": {"maxUsesPerDocument": max_uses},
            "nextlong": {"chunkChars": CHUNK_CHARS, "negatives": "bm25"},
            "output": {"format": "mds"},
        },
    }


def max_uses_for(documents: int, topics: int, per_topic: int, target: int) -> int:
    """`reuse.maxUsesPerDocument` for a scale: 3x the tokens asked for over the corpus's tokens
    (about 840 a document in the large corpus), at least 1. Topics retrieve overlapping
    documents, and a document retrieved by more topics than its limit serves only the first
    ones, so the factor 3 leaves room for that contention."""
    asked = topics * per_topic * target
    return max(1, math.ceil(3 * asked / (840 * documents)))


# -- measuring a child ---------------------------------------------------------------------------


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def own_rss_mib() -> float:
    """This process's RSS: the floor of every child's ru_maxrss (Linux folds the image that
    exec replaces, a copy of this one, into it)."""
    status = Path("/proc/self/status").read_text()
    (rss,) = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
    return round(int(rss) / 1024, 1)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (worker processes of `litelong run --jobs`)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(child) for child in children]
    return pids


def _rss_kib(pid: int) -> tuple[int, int]:
    """(RssAnon, RssFile) of one process in KiB: heap against mapped files (tantivy's segments,
    memory-mapped id columns), which the kernel can drop and read back."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: line.split()[1] for line in lines if line.startswith("Rss")}
    return int(fields.get("RssAnon", 0)), int(fields.get("RssFile", 0))


class RssSampler(threading.Thread):
    """Samples a process tree's anonymous and file-backed RSS twice a second; keeps the
    peaks, because ru_maxrss alone cannot tell heap from mapped index files."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.anon, self.file = pid, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            sizes = [_rss_kib(pid) for pid in _tree(self.pid)]
            self.anon = max(self.anon, sum(anon for anon, _ in sizes))
            self.file = max(self.file, sum(file for _, file in sizes))
            if self.done.wait(0.5):
                return


def measure(command: list[str]) -> tuple[dict[str, Any], str]:
    """Run `command`; its wall, CPU and peak RSS figures, and its stdout."""
    parent = own_rss_mib()
    started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    sampler = RssSampler(child.pid)
    sampler.start()
    assert child.stdout is not None
    out = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    sampler.done.set()
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` exited {child.returncode}")
    return {
        "started": started_at,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "peak_anon_mib": round(sampler.anon / 1024, 1),
        "peak_file_mib": round(sampler.file / 1024, 1),
        "parent_rss_mib": parent,
        "cores": os.cpu_count(),
        "command": " ".join(command),
    }, out


def saved(work: Path, stage: str) -> dict[str, Any] | None:
    result_file = work / "results" / f"{stage}.json"
    return dict(json.loads(result_file.read_text())) if result_file.exists() else None


def save(work: Path, stage: str, figures: dict[str, Any]) -> dict[str, Any]:
    result_file = work / "results" / f"{stage}.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    partial = result_file.with_suffix(".partial")
    partial.write_text(json.dumps(figures, indent=2))
    os.replace(partial, result_file)
    print(json.dumps(figures), flush=True)
    return figures


def artifact_folder(work: Path, kind: str, name: str) -> Path:
    folder = work / "store" / "default" / kind.lower() / name
    return folder / (folder / "_current").read_text().strip()


def run_measured(
    manifests: list[dict[str, Any]], work: Path, stage: str, **extra: Any
) -> dict[str, Any]:
    """`litelong run` the manifests in a child process; its figures, saved under results/."""
    done = saved(work, stage)
    if done is not None:
        return done
    (work / "manifests").mkdir(parents=True, exist_ok=True)
    manifest_file = work / "manifests" / f"{stage}.yaml"
    manifest_file.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    command = [sys.executable, "-m", "litelong", "run", str(manifest_file)]
    command += ["--store", f"file://{work / 'store'}"]
    figures, _ = measure(command)
    last = manifests[-1]
    kind, name = last["kind"], last["metadata"]["name"]
    artifact = artifact_folder(work, kind, name)
    counts = json.loads((artifact / "_manifest.json").read_text())["counts"]
    head = {"stage": stage, "kind": kind, "name": name, "artifact": str(artifact)}
    figures = {**head, **figures, "disk_bytes": disk_bytes(artifact), **extra}
    return save(work, stage, {**figures, "counts": counts})


def corpus_stats(work: Path, files: list[Path]) -> dict[str, int]:
    """Documents, UTF-8 text bytes and JSON bytes of corpus shards (one streaming pass per
    shard, untimed, cached under <work>/corpus-stats/)."""
    import orjson

    total = {"documents": 0, "text_bytes": 0, "json_bytes": 0, "zstd_bytes": 0}
    for path in files:
        cache = work / "corpus-stats" / f"{path.name}.json"
        size = path.stat().st_size
        stats = json.loads(cache.read_text()) if cache.exists() else None
        if stats is None or stats["zstd_bytes"] != size:
            stats = {"documents": 0, "text_bytes": 0, "json_bytes": 0, "zstd_bytes": size}
            for line in zstd_lines(path):
                stats["documents"] += 1
                stats["text_bytes"] += len(orjson.loads(line)["text"].encode())
                stats["json_bytes"] += len(line) + 1
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(stats))
        for key in total:
            total[key] += stats[key]
    return total


def zstd_lines(path: Path) -> Iterator[bytes]:
    """The non-empty lines of a .jsonl.zst file, streamed."""
    import zstandard

    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        for line in io.BufferedReader(reader, 1 << 20):
            if line.strip():
                yield line


# -- stages ----------------------------------------------------------------------------------------


def index_stage(args: argparse.Namespace, documents: int) -> dict[str, Any]:
    files = shard_files(args.corpus, documents, args.per_shard)
    stats = corpus_stats(args.work, files)
    manifest = index_manifest(args.corpus, documents, not args.docs_only, args.per_shard)
    stage = f"index-{'docs-' if args.docs_only else ''}{label(documents)}"
    figures = run_measured([manifest], args.work, stage, corpus=stats)
    if "corpus" not in figures:  # measured by an earlier version of this script
        figures = save(args.work, stage, {**figures, "corpus": stats})
    return figures


def peer_stages(args: argparse.Namespace, documents: int) -> None:
    """litelong without chunks and raw tantivy, on the same shards, one after the other:
    litelong first, or the peer with `--peer-first` (alternate it between pairs: the second
    of a pair runs on a warmer page cache and in another minute of the machine's load)."""
    files = shard_files(args.corpus, documents, args.per_shard)
    stats = corpus_stats(args.work, files)
    order = "peer-first" if args.peer_first else "litelong-first"
    if args.peer_first:
        peer_stage(args.work, documents, files, stats, order)
    manifest = index_manifest(args.corpus, documents, False, args.per_shard)
    stage = f"index-docs-{label(documents)}"
    figures = run_measured([manifest], args.work, stage, corpus=stats, order=order)
    if "segments" not in figures:
        save(args.work, stage, {**figures, "segments": segments(Path(figures["artifact"]))})
    if not args.peer_first:
        peer_stage(args.work, documents, files, stats, order)


def peer_stage(
    work: Path, documents: int, files: list[Path], stats: dict[str, int], order: str
) -> None:
    """Raw tantivy on `files` (`peer-child`), measured; its index is deleted once measured."""
    stage = f"tantivy-{label(documents)}"
    if saved(work, stage) is not None:
        return
    out = work / "peer" / label(documents)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, __file__, "peer-child", str(out), *map(str, files)]
    figures, stdout = measure(command)
    counts = json.loads(stdout.splitlines()[-1])
    head = {"stage": stage, "kind": "tantivy", "name": out.name}
    figures = {**head, **figures, "disk_bytes": disk_bytes(out), "corpus": stats}
    figures.update(order=order, segments=segments(out))
    save(work, stage, {**figures, "counts": counts})
    shutil.rmtree(out)  # as big as the index; only its size was wanted


def segments(folder: Path) -> list[int]:
    """The documents of each segment of the tantivy indexes under `folder` (chunk indexes
    left out), from their meta.json: how far the writer's flushes and merges went."""
    found: list[int] = []
    for meta in sorted(folder.rglob("meta.json")):
        if "chunks" not in meta.relative_to(folder).parts:
            found += [segment["max_doc"] for segment in json.loads(meta.read_text())["segments"]]
    return found


def read_stage(args: argparse.Namespace, documents: int) -> None:
    stage = f"read-{label(documents)}"
    if saved(args.work, stage) is not None:
        return
    files = shard_files(args.corpus, documents, args.per_shard)
    stats = corpus_stats(args.work, files)
    manifest = index_manifest(args.corpus, documents, False, args.per_shard)
    spec_file = args.work / "manifests" / f"{stage}.yaml"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    figures, stdout = measure([sys.executable, __file__, "read-child", str(spec_file)])
    counts = json.loads(stdout.splitlines()[-1])
    head = {"stage": stage, "kind": "read", "name": label(documents)}
    save(args.work, stage, {**head, **figures, "disk_bytes": 0, "corpus": stats, "counts": counts})


def topics_stage(work: Path, count: int) -> None:
    """Commit the TopicDebate in a child (this process stays small: module `measure`)."""
    folder = work / "store" / "default" / "topicdebate" / topics_name(count)
    if (folder / "_current").exists():
        return
    command = [sys.executable, __file__, "topics", "--work", str(work), "--topics", str(count)]
    subprocess.run(command, check=True)


def drop_run(artifact: Path) -> None:
    """Delete a measured SynthesisRun's output (GBs of samples; the figures are saved) and
    its `_current` pointer."""
    if artifact.exists():
        shutil.rmtree(artifact)
    (artifact.parent / "_current").unlink(missing_ok=True)


def measure_bound(work: Path, stage: str, name: str, bound_tokens: int) -> dict[str, Any]:
    """`bound-child` on the committed SynthesisRun `name`, saved as `stage`."""
    done = saved(work, stage)
    if done is not None:
        return done
    command = [sys.executable, __file__, "bound-child", str(work / "store")]
    command += [name, str(bound_tokens)]
    timing, stdout = measure(command)
    result = json.loads(stdout.splitlines()[-1])
    return save(work, stage, {"stage": stage, **result, "child": timing})


def synth_stages(args: argparse.Namespace, documents: int) -> None:
    """Per mode: the run, then its bound. With `--bound around` (the default) the run is made
    once first (`first-<N>-<mode>`, measured too) so that its documents are known, then its
    bound is timed (`bound-<N>-<mode>-before`), the run made again and timed
    (`synth-<N>-<mode>`, the same samples) and the bound timed again (`bound-<N>-<mode>`):
    bound, run, bound back to back, the run compared with the two bounds' mean."""
    topics_stage(args.work, args.topics)
    max_uses = args.max_uses or max_uses_for(
        documents, args.topics, args.samples_per_topic, args.target
    )
    for mode in args.modes:
        stage = f"synth-{label(documents)}-{mode}"
        if args.docs_only and mode == "nextlong":
            raise SystemExit("--docs-only: mode nextlong needs the chunk index")
        manifest = synthesis_manifest(
            documents,
            mode,
            args.topics,
            args.samples_per_topic,
            max_uses,
            args.target,
            args.docs_only,
        )
        name = manifest["metadata"]["name"]
        extra = {"documents": documents, "mode": mode, "max_uses": max_uses}
        before_stage = f"bound-{label(documents)}-{mode}-before"
        if args.bound == "around" and saved(args.work, stage) is None:
            first = f"first-{label(documents)}-{mode}"
            if saved(args.work, before_stage) is None:
                figures = run_measured([manifest], args.work, first, **extra)
                if not Path(figures["artifact"]).exists():  # measured, then deleted: again
                    (args.work / "results" / f"{first}.json").unlink()
                    figures = run_measured([manifest], args.work, first, **extra)
                measure_bound(args.work, before_stage, name, args.bound_tokens)
                drop_run(Path(figures["artifact"]))
            else:  # resumed after the bound before: the first run's output may be left
                drop_run(Path(saved(args.work, first)["artifact"]))  # type: ignore[index]
        figures = run_measured([manifest], args.work, stage, **extra)
        artifact = Path(figures["artifact"])
        after = measure_bound(
            args.work, f"bound-{label(documents)}-{mode}", name, args.bound_tokens
        )
        tokens = figures["counts"].get("tokens", 0)
        if tokens and after.get("bound_s"):
            bound = bound_figures(after, saved(args.work, before_stage))
            line = (
                f"{stage}: run {tokens / figures['wall_s']:,.0f} tokens/s, bound "
                f"{tokens / bound['bound_s']:,.0f} tokens/s, run / bound "
                f"{bound['bound_s'] / figures['wall_s']:.2f} (target 0.8; bound {bound['timed']}"
            )
            if bound["before_s"] is not None:
                line += (
                    f": before {bound['before_s']:.1f} s, after {bound['after_s']:.1f} s; after "
                    f"alone {bound['after_s'] / figures['wall_s']:.2f}"
                )
                if not bound["same_documents"]:
                    line += "; NOT the same documents before and after"
            print(line + ")", flush=True)
        if not args.keep_samples:
            drop_run(artifact)


# -- children ----------------------------------------------------------------------------------


def peer_child(out: Path, files: list[Path]) -> None:
    """Raw tantivy, streaming: zstd → orjson → tantivy.Document (litelong's analyzer; the
    schema of a text field, `ord` counted, and the record's id indexed and stored as a raw
    text term, as one would find documents by id with tantivy alone, and as litelong did
    before its `key` field) → commit, wait_merging_threads."""
    import orjson
    import tantivy

    from litelong.api.v1alpha1.bm25index import Analysis
    from litelong.index.tantivy_backend import ANALYZER, build_analyzer, build_schema

    index = tantivy.Index(build_schema("id"), path=str(out), reuse=False)
    index.register_tokenizer(ANALYZER, build_analyzer(Analysis()))
    writer = index.writer(HEAP_MB * 1024 * 1024, 0)
    documents = text_bytes = 0
    for path in files:
        for line in zstd_lines(path):
            record = orjson.loads(line)
            text = record["text"]
            writer.add_document(tantivy.Document(id=record["id"], text=text, ord=documents))
            documents += 1
            text_bytes += len(text)
    writer.commit()
    writer.wait_merging_threads()
    print(json.dumps({"documents": documents, "text_chars": text_bytes}))


def read_child(spec_file: Path) -> None:
    """litelong's corpus reading as one shard of READ_OF: every record decompressed, parsed,
    normalised and hashed; ~1/READ_OF kept (and deduplicated)."""
    import litelong.api
    from litelong.corpus import SkipCounter, read_shard

    resource = litelong.api.parse(yaml.safe_load(spec_file.read_text()))
    kept = sum(1 for _ in read_shard(resource.spec, 0, READ_OF, SkipCounter(0, READ_OF)))
    print(json.dumps({"documents_kept": kept, "of": READ_OF}))


def commit_topics(work: Path, count: int, seed: int = 0) -> None:
    """A TopicDebate of `count` rule-made topics (bench/rule_topics.py, no LLM)."""
    from rule_topics import commit_rule_topics

    from litelong.store import ArtifactStore

    store = ArtifactStore(f"file://{work / 'store'}")
    commit_rule_topics(store, topics_name(count), count, seed, f"seed{seed}-{count}")


def bound_child(store_folder: Path, name: str, min_tokens: int, seed: int = 0) -> None:
    """The tokenize-only bound of a committed SynthesisRun: its distinct documents (pieces as
    their document; nextlong's negatives as their chunk), a seeded random subset of them
    holding at least `min_tokens` (or all), texts fetched first, then tokenized once in batches
    of 64 as the stage does. The whole set's time is the subset's time x (distinct / subset)."""
    import pyarrow.parquet as pq

    from litelong.index import open_chunk_index, open_index
    from litelong.store import ArtifactStore
    from litelong.tokenizer import load_tokenizer

    store = ArtifactStore(f"file://{store_folder}")
    run = store.latest_committed("SynthesisRun", name)
    manifest = run.manifest()
    index = store.artifact("BM25Index", *_input(manifest.inputs, "BM25Index"))
    units: dict[tuple[bool, str], None] = {}
    for part in manifest.parts:
        metadata = run.local_part(part) / "metadata.parquet"
        table = pq.read_table(metadata, columns=["doc_ids", "roles"])
        for ids, roles in zip(
            table["doc_ids"].to_pylist(), table["roles"].to_pylist(), strict=True
        ):
            for n, doc_id in enumerate(ids or ()):
                role = roles[n] if roles else "doc"
                for unit in _units(doc_id, role):
                    units[unit] = None
    distinct = list(units)
    random.Random(seed).shuffle(distinct)
    documents = open_index(index)
    chunks = None
    if any(negative for negative, _ in distinct):
        chunks, _ = open_chunk_index(index, CHUNK_CHARS)
    texts: list[str] = []
    chars = 0
    for start in range(0, len(distinct), 512):  # fetched before the timer
        batch = distinct[start : start + 512]
        for negative in (False, True):
            ids = [doc_id for neg, doc_id in batch if neg == negative]
            if ids:
                fetched = (chunks if negative else documents).get(ids)  # type: ignore[union-attr]
                texts += fetched
                chars += sum(len(text) for text in fetched)
        if chars >= min_tokens * BOUND_CHARS_PER_TOKEN:
            break
    tokenizer = load_tokenizer()
    tokenizer.encode_batch(texts[:BATCH], add_special_tokens=False)  # warm
    tokens = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), BATCH):
        encoded = tokenizer.encode_batch(texts[start : start + BATCH], add_special_tokens=False)
        tokens += sum(len(e.ids) for e in encoded)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    scale = len(distinct) / len(texts)
    result = {
        "distinct": len(distinct),
        "subset": len(texts),
        "subset_chars": chars,
        "subset_tokens": tokens,
        "subset_s": round(seconds, 3),
        "bound_s": round(seconds * scale, 3),
        "subset_cpu_s": round(cpu_seconds, 3),
        "bound_cpu_s": round(cpu_seconds * scale, 3),
        "run_tokens": int(manifest.counts.get("tokens", 0)),
        "set_digest": set_digest(units),
    }
    print(json.dumps(result))


def set_digest(units: dict[tuple[bool, str], None]) -> str:
    """A digest of a run's distinct documents, whatever their order: the bound before a run
    and the one after it must tokenize the same ones."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for negative, doc_id in sorted(units):
        digest.update(f"{int(negative)}{doc_id}\n".encode())
    return digest.hexdigest()


def _units(doc_id: str, role: str) -> list[tuple[bool, str]]:
    """What a span's text was made from, as (in the chunk index, id): a negative is a chunk; a
    meta-chunk is a chunk `<doc>#<n>`, a whole document, or lines of documents joined by `+`;
    any other span is a document or a piece `<doc>#p<n>` of one."""
    from litelong.synth.assembly import document_of

    if role == "negative":
        return [(True, doc_id)]
    if role != "meta":
        return [(False, document_of(doc_id))]
    units = []
    for part in doc_id.split("+"):
        head, mark, number = part.rpartition("#")
        units.append((bool(mark) and bool(head) and number.isdigit(), part))
    return units


def _input(inputs: dict[str, str], kind: str) -> tuple[str, str]:
    """(name, identity) of the run's committed input of `kind`."""
    ((key, identity),) = [(k, v) for k, v in inputs.items() if k.startswith(kind + "/")]
    return key.split("/", 1)[1], identity


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    stages = {
        "index": "BM25Index with chunks per scale",
        "peer": "BM25Index without chunks, then raw tantivy (--peer-first: before), per scale",
        "read": "litelong's corpus reading alone per scale",
        "synth": "SynthesisRuns per scale and mode, each with its tokenize-only bound",
        "all": "index, peer, read and synth, scale by scale",
    }
    for name, text in stages.items():
        command = sub.add_parser(name, help=text)
        command.add_argument("--corpus", type=Path, required=True)
        command.add_argument("--work", type=Path, required=True)
        command.add_argument("--documents", type=int, nargs="+", default=[100_000, 1_000_000])
        command.add_argument("--per-shard", type=int, default=PER_SHARD)
        command.add_argument("--topics", type=int, default=1200)
        command.add_argument("--samples-per-topic", type=int, default=2)
        command.add_argument("--target", type=int, default=TARGET)
        command.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
        command.add_argument("--max-uses", type=int, help="default: max_uses_for(scale)")
        command.add_argument("--bound-tokens", type=int, default=BOUND_TOKENS)
        command.add_argument("--keep-samples", action="store_true")
        command.add_argument(
            "--bound",
            choices=("around", "after"),
            default="around",
            help="synth: time the bound before and after the run (the run made once first to "
            "know its documents) and compare with their mean, or after it only",
        )
        command.add_argument(
            "--peer-first",
            action="store_true",
            help="peer: run raw tantivy before litelong's index (default: after it)",
        )
        command.add_argument(
            "--docs-only",
            action="store_true",
            help="index: build index-docs-<N> (no chunks); synth: from it (not nextlong)",
        )
    topics = sub.add_parser("topics", help="commit the synthetic TopicDebate")
    topics.add_argument("--work", type=Path, required=True)
    topics.add_argument("--topics", type=int, default=1200)
    report = sub.add_parser("report", help="Markdown tables, plot and cost from results/")
    report.add_argument("--work", type=Path, required=True)
    report.add_argument("--plot", type=Path, default=Path("bench/results/scale/scale.png"))
    report.add_argument(
        "--sittings",
        type=Path,
        nargs="+",
        default=[],
        help="more work folders of the same synthesis: each one's run / bound and the median",
    )
    peer = sub.add_parser("peer-child")
    peer.add_argument("out", type=Path)
    peer.add_argument("files", type=Path, nargs="+")
    read = sub.add_parser("read-child")
    read.add_argument("spec", type=Path)
    bound = sub.add_parser("bound-child")
    bound.add_argument("store", type=Path)
    bound.add_argument("name")
    bound.add_argument("min_tokens", type=int)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.what == "peer-child":
        peer_child(args.out, args.files)
    elif args.what == "read-child":
        read_child(args.spec)
    elif args.what == "bound-child":
        bound_child(args.store, args.name, args.min_tokens)
    elif args.what == "topics":
        commit_topics(args.work, args.topics)
    elif args.what == "report":
        from scale_report import report

        report(args.work, args.plot, args.sittings)
    else:
        for documents in args.documents:
            if args.what in ("index", "all"):
                index_stage(args, documents)
            if args.what in ("peer", "all"):
                peer_stages(args, documents)
            if args.what in ("read", "all"):
                read_stage(args, documents)
            if args.what in ("synth", "all"):
                synth_stages(args, documents)


if __name__ == "__main__":
    main()
