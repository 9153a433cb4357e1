"""`litelong plan --calibrate`: short runs of the real stages on this machine, timed.

Every probe runs the stage code the plan is about (`stages.run_shard`) in a throwaway store,
so a rate includes everything a real run pays (reading, commit, report). The probes:

- tokenizer: tokens per byte and bytes/s of each SynthesisRun's tokenizer on corpus text;
- index: the Wikipedia sample shipped with litelong, without and with the chunk index;
- synthesis: per mode and format in the files, two runs (4 and 16 topics) over that index,
  whose difference separates the per-token rate from the per-run cost;
- debate: one subject of each TopicDebate, against its own endpoints (one request per role
  at least; the answers are not cached for the real run);
- GPU: the device's name, memory and peak, and the MFU of a few training steps of the first
  TrainingJob's model at its length (fresh weights, synthetic documents), when torch sees one.
"""

from __future__ import annotations

import contextlib
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import BM25Index, SynthesisRun, TopicDebate, TrainingJob, parse
from ..api.loading import AnyResource
from ..api.v1alpha1 import BM25IndexSpec
from ..api.v1alpha1.topicdebate import TaxonomySelection
from ..corpus import SkipCounter, read_shard
from ..stages import resolve_inputs, run_shard
from ..store import ArtifactStore, Manifest
from ..synth.report.coherence import MAX_SAMPLES
from ..taxonomy import load_bisac
from .calibration import (
    Calibration,
    DebateRates,
    GpuRates,
    IndexRates,
    SynthesisRates,
    host_name,
)
from .debate import endpoint_key, is_local
from .models import shape_of
from .synthesis import rates_key
from .training import fits, memory_per_gpu

PROBE_CORPUS = "builtin://wiki_vital_en.jsonl.zst"
PROBE_TOPICS = (4, 24)
WARM_UP_TOPICS = 2
#: Text the index probes read from the corpus (the shipped sample holds 4.9 MB: all of it).
PROBE_TEXT_BYTES = 5_000_000
#: Builds of each index probe corpus (their mean CPU time).
INDEX_REPEATS = 2
#: Runs of each synthesis probe size (their mean times).
SYNTHESIS_REPEATS = 2
#: Subjects the debate probe debates at once against remote endpoints (LLM requests).
REMOTE_PROBE_SUBJECTS = 4

Log = Callable[[str], None]


def calibrate(resources: list[AnyResource], log: Log = lambda _: None) -> Calibration:
    calibration = Calibration(host=host_name())
    with tempfile.TemporaryDirectory(prefix="litelong-calibrate-") as folder:
        store = ArtifactStore(f"file://{folder}")
        chunk_chars = _chunk_chars(resources)
        corpora = _probe_corpora(Path(folder), _probe_source(resources))
        warm = _index_resource(False, chunk_chars, str(corpora["half"]), "probe-warm-up")
        run_shard(warm, store, 0, 1)  # imports and first-use costs, untimed
        for chunks in (False, True):
            key = "chunks" if chunks else "plain"
            rates = _index_probe(store, corpora, chunks, chunk_chars)
            calibration.index[key] = rates
            log(
                f"index ({key}): {rates.text_bytes_per_cpu_s / 1e6:.2f} MB of text per CPU "
                f"second, on {rates.cores:.2f} cores"
            )
        for resource in resources:
            if isinstance(resource, SynthesisRun):
                doc_tokens = _tokenizer_probe(calibration, resource, corpora["full"])
                key = rates_key(resource)
                if key not in calibration.synthesis:
                    made = _synthesis_probe(store, resource, doc_tokens)
                    calibration.synthesis[key] = made
                    log(
                        f"synthesis ({key}): {made.tokens_per_cpu_s:,.0f} tokens per CPU "
                        f"second, report {made.report_cpu_seconds:.2f} CPU s per run"
                    )
            elif isinstance(resource, TopicDebate):
                key = endpoint_key(resource.spec)
                if key not in calibration.debate:
                    debated = _debate_probe(store, resource)
                    calibration.debate[key] = debated
                    log(f"debate: {calibration.debate[key].seconds_per_subject:.1f} s per subject")
        calibration.gpu = _gpu_probe(resources, store, log)
    return calibration


def _timed(resource: AnyResource, store: ArtifactStore) -> tuple[Manifest, float, float]:
    """Run one whole stage; (manifest, wall seconds, CPU seconds of this process: its threads
    and an in-process llama.cpp server included)."""
    with Clock() as clock:
        manifest = run_shard(resource, store, 0, 1).manifest
    assert manifest is not None
    return manifest, clock.wall, clock.cpu


def cpu_seconds() -> float:
    """CPU seconds of every thread of this process and of its children waited for: a run's
    report draws its plots in a child process (`synth/report/plots.py`), and that is the
    run's CPU too."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Clock:
    """Wall and CPU seconds of a block: `process_time` (every thread of this process), or
    with `children`, `cpu_seconds` (its children's too)."""

    def __init__(self, children: bool = False) -> None:
        self._seconds = cpu_seconds if children else time.process_time

    wall = cpu = 0.0

    @classmethod
    def of(cls, wall: float, cpu: float) -> Clock:
        clock = cls()
        clock.wall, clock.cpu = wall, cpu
        return clock

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), self._seconds()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = self._seconds() - self._cpu


def _chunk_chars(resources: list[AnyResource]) -> int:
    sizes = [r.spec.chunks.chunk_chars for r in resources if isinstance(r, BM25Index)]
    return sizes[0] if sizes else 2048


def _index_resource(
    chunks: bool, chunk_chars: int, uri: str = PROBE_CORPUS, name: str = ""
) -> BM25Index:
    name = name or ("probe-chunks" if chunks else "probe-index")
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": name},
            "spec": {
                "corpus": [{"uri": uri, "format": "jsonl", "idField": "id"}],
                "chunks": {"enabled": chunks, "chunkChars": chunk_chars},
            },
        }
    )
    assert isinstance(resource, BM25Index)
    return resource


def _probe_source(resources: list[AnyResource]) -> BM25IndexSpec:
    """The corpus the index probes read: the first BM25Index's own (its text indexes at its own
    rate and size: man pages are not encyclopedia summaries), else the shipped sample."""
    specs = [r.spec for r in resources if isinstance(r, BM25Index)]
    return specs[0] if specs else _index_resource(False, 2048).spec


def _probe_corpora(folder: Path, source: BM25IndexSpec) -> dict[str, Path]:
    """The first `PROBE_TEXT_BYTES` of text of `source` (the shipped 4.9 MB sample whole) three
    ways: its first half, whole, and whole with every 8 documents joined into one (the same
    text in an eighth of the documents)."""
    documents, nbytes = [], 0
    for document in read_shard(source, 0, 1, SkipCounter()):
        documents.append(document)
        nbytes += len(document.text.encode())
        if nbytes >= PROBE_TEXT_BYTES:
            break
    long = [
        {"id": f"long-{i}", "text": "\n\n".join(d.text for d in documents[i : i + 8])}
        for i in range(0, len(documents), 8)
    ]
    corpora = {
        "half": [{"id": d.id, "text": d.text} for d in documents[: len(documents) // 2]],
        "full": [{"id": d.id, "text": d.text} for d in documents],
        "long": long,
    }
    paths = {}
    for name, records in corpora.items():
        paths[name] = folder / f"probe-{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in records))
    return paths


def _index_probe(
    store: ArtifactStore, corpora: dict[str, Path], chunks: bool, chunk_chars: int
) -> IndexRates:
    """CPU seconds = fixed + per document x documents + per byte x text bytes, and bytes on
    disk = per document x documents + per text byte x text bytes: the whole sample against the
    same text in an eighth of the documents gives the per-document terms, against its half the
    rest. CPU time, not wall time: on a shared machine a one-second build's wall time moves by
    half with the load of others, its CPU time far less; the cores kept busy (CPU over wall,
    summed over the three builds) turn it back into wall time."""
    runs: dict[str, tuple[float, float, float, float]] = {}  # text bytes, docs, CPU s, size
    walls = cpus = 0.0
    for name in ("half", "full", "long"):
        measured = []
        for repeat in range(INDEX_REPEATS):  # the mean: one short build's CPU time moves too
            label = f"probe-{name}-{'chunks' if chunks else 'plain'}-{repeat}"
            resource = _index_resource(chunks, chunk_chars, str(corpora[name]), label)
            manifest, seconds, cpu = _timed(resource, store)
            walls, cpus = walls + seconds, cpus + cpu
            measured.append(cpu)
        docs = list(read_shard(resource.spec, 0, 1, SkipCounter()))
        text = float(sum(len(d.text.encode()) for d in docs))
        runs[name] = (text, float(len(docs)), statistics.mean(measured), float(manifest.size))
    (t1, d1, c1, _), (t2, d2, c2, z2), (t3, d3, c3, z3) = (
        runs["half"],
        runs["full"],
        runs["long"],
    )
    per_doc = max(0.0, (c2 - c3) / (d2 - d3)) if d2 > d3 else 0.0
    byte_cpu = c2 - c1 - per_doc * (d2 - d1)
    if t2 > t1 and byte_cpu > 0:
        rate = (t2 - t1) / byte_cpu
        fixed = max(0.0, c1 - per_doc * d1 - t1 / rate)
    else:  # noise swallowed the difference: one point, all cost per byte
        rate, fixed, per_doc = t2 / c2, 0.0, 0.0
    per_document = max(0.0, (z2 - z3 - (t2 - t3) * z2 / t2) / (d2 - d3)) if d2 > d3 else 0.0
    per_byte = max(0.0, (z2 - per_document * d2) / t2)
    return IndexRates(
        text_bytes_per_cpu_s=rate,
        cpu_seconds_per_document=per_doc,
        fixed_cpu_seconds=fixed,
        disk_bytes_per_text_byte=per_byte,
        disk_bytes_per_document=per_document,
        cores=cpus / walls,
    )


def _tokenizer_probe(calibration: Calibration, resource: SynthesisRun, corpus: Path) -> float:
    """Tokens per byte and bytes/s of the run's tokenizer on the index probes' text (the
    planned corpus's: code and scripture are more tokens per byte than encyclopedia prose);
    returns the mean tokens per document of the shipped sample, which the synthesis probe
    indexes."""
    from ..tokenizer import load_tokenizer

    tokenizer = load_tokenizer(resource.spec.tokenizer.name)
    texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]
    nbytes = sum(len(t.encode()) for t in texts)
    started = time.perf_counter()
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    seconds = time.perf_counter() - started
    calibration.tokens_per_byte = tokens / nbytes
    calibration.tokenizer_bytes_per_s = nbytes / seconds
    sample = [d.text for d in read_shard(_index_resource(False, 2048).spec, 0, 1, SkipCounter())]
    if sample[:100] != texts[:100]:  # another corpus: the sample's own mean
        encoded = tokenizer.encode_batch(sample, add_special_tokens=False)
        return sum(len(e.ids) for e in encoded) / len(sample)
    return tokens / len(texts)


def commit_rule_topics(store: ArtifactStore, count: int, name: str | None = None) -> str:
    """A committed TopicDebate of `count` BISAC subjects as topics (no LLM), as the synthesis
    bench makes them; returns its name."""
    name = name or f"probe-topics-{count}"
    selection = TaxonomySelection(include=["SCI*", "MAT*"], max_subjects=count, seed=0)
    subjects = load_bisac().select(selection)[:count]
    debate = store.artifact("TopicDebate", name, "000000000000")
    with debate.staging(0, 1) as folder:
        lines = []
        for subject in subjects:
            words = " ".join(p for p in subject.label.split(" / ")[-2:] if p != "General")
            lines.append(
                json.dumps(
                    {
                        "subject_code": subject.code,
                        "heading": subject.heading,
                        "subject": subject.label,
                        "topic": words,
                        "query": words.lower(),
                    }
                )
            )
        (folder / "topics.jsonl").write_text("".join(line + "\n" for line in lines))
        debate.commit_part(0, 1, folder, counts={"topics": len(lines)})
    debate.commit({}, 1)
    return name


def _synthesis_probe(
    store: ArtifactStore, resource: SynthesisRun, doc_tokens: float
) -> SynthesisRates:
    """After an untimed run of 2 topics, runs of 4 and 24 topics, each followed by its report
    written again on its own (timed: the report's share of the run). In CPU seconds, the build
    is per tokenized token (documents tokenized, from the manifest, x `doc_tokens`, the probe
    corpus's mean) plus a per-run part, the commit and report per run plus per sample; the
    difference of the two runs separates them. Bytes are per output token plus per run."""
    from ..synth import after_commit

    spec = resource.spec
    chunked = spec.mode == "nextlong"
    index = _index_resource(chunked, spec.nextlong.chunk_chars)
    if store.artifact(index.kind, index.name, index.spec_hash()).committed_manifest() is None:
        run_shard(index, store, 0, 1)
    points: dict[int, list[Point]] = {count: [] for count in PROBE_TOPICS}
    runs = [(WARM_UP_TOPICS, 0)] + [(c, r) for r in range(SYNTHESIS_REPEATS) for c in PROBE_TOPICS]
    topic_sets: dict[int, str] = {}
    for count, repeat in runs:  # interleaved, so a change of load falls on both sizes
        if count not in topic_sets:
            topic_sets[count] = commit_rule_topics(store, count)
        topics = topic_sets[count]
        document = spec.model_dump(mode="json", by_alias=True)
        document.update(topicDebateRef=topics, indexRef=index.name, parallelism=1)
        document["output"] = {**document["output"], "store": None}
        probe = parse(
            {
                "apiVersion": "litelong.io/v1alpha1",
                "kind": "SynthesisRun",
                "metadata": {"name": f"probe-synthesis-{count}-{repeat}"},
                "spec": document,
            }
        )
        with Clock(children=True) as run:  # the report's plotting process included
            result = run_shard(probe, store, 0, 1)
        if count == WARM_UP_TOPICS:  # first use of the tokenizer, plots...: untimed
            continue
        manifest = result.manifest
        assert manifest is not None
        resolved = resolve_inputs([probe], lambda _: store)[0]
        assert isinstance(resolved, SynthesisRun)
        with Clock(children=True) as report:
            after_commit(resolved, result.artifact, store)
        counts = manifest.counts
        points[count].append(
            Point(
                tokenized=counts.get("documents_tokenized", 0) * doc_tokens,
                samples=min(float(counts.get("samples", 0)), MAX_SAMPLES),
                tokens=float(counts.get("tokens", 0)),
                bytes=float(manifest.size),
                build=Clock.of(run.wall - report.wall, run.cpu - report.cpu),
                report=report,
            )
        )
    p1, p2 = (_mean(points[count]) for count in PROBE_TOPICS)
    build_rate, build_fixed = _line(p1.tokenized, p1.build.cpu, p2.tokenized, p2.build.cpu)
    per_sample, report_fixed = _line(p1.samples, p1.report.cpu, p2.samples, p2.report.cpu)
    per_token = (p2.bytes - p1.bytes) / (p2.tokens - p1.tokens) if p2.tokens > p1.tokens else 0.0
    per_token = per_token if per_token > 0 else p2.bytes / max(1.0, p2.tokens)
    return SynthesisRates(
        tokens_per_cpu_s=1 / build_rate if build_rate > 0 else p2.tokenized / p2.build.cpu,
        build_cpu_seconds=build_fixed if build_rate > 0 else 0.0,
        report_cpu_seconds=report_fixed if per_sample > 0 else p2.report.cpu,
        report_cpu_seconds_per_sample=max(0.0, per_sample),
        build_cores=_cores(p.build for p in (p1, p2)),
        report_cores=_cores(p.report for p in (p1, p2)),
        bytes_per_token=per_token,
        fixed_bytes=max(0.0, p1.bytes - per_token * p1.tokens),
    )


@dataclass
class Point:
    """One timed probe run of the SynthesisRun stage."""

    tokenized: float
    samples: float
    tokens: float
    bytes: float
    build: Clock
    report: Clock


def _mean(points: list[Point]) -> Point:
    """Repeated runs of one size: their mean times (the counts are the same)."""

    def mean(clocks: list[Clock]) -> Clock:
        return Clock.of(
            statistics.mean(c.wall for c in clocks), statistics.mean(c.cpu for c in clocks)
        )

    first = points[0]
    return Point(
        first.tokenized,
        first.samples,
        first.tokens,
        first.bytes,
        build=mean([p.build for p in points]),
        report=mean([p.report for p in points]),
    )


def _line(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float]:
    """(slope, intercept) through two points, the intercept at least 0; (0, 0) when the slope
    is not positive (noise swallowed the difference: the caller falls back to one point)."""
    if x2 <= x1 or y2 <= y1:
        return 0.0, 0.0
    slope = (y2 - y1) / (x2 - x1)
    return slope, max(0.0, y1 - slope * x1)


def _cores(clocks: Iterable[Clock]) -> float:
    """CPU seconds per wall second over these runs: the cores they kept busy."""
    timed = list(clocks)
    wall = sum(c.wall for c in timed)
    return max(0.05, sum(c.cpu for c in timed) / wall) if wall > 0 else 1.0


def _debate_probe(store: ArtifactStore, resource: TopicDebate) -> DebateRates:
    """Subjects debated: seconds, requests, tokens by role, topics and bytes per subject. On the
    embedded server one subject (it already uses every core); against remote endpoints as many
    as the run debates at once (its concurrency, at most `REMOTE_PROBE_SUBJECTS`), so the
    seconds are those of a subject among concurrent ones. The LLM client's imports are paid
    first, untimed (a real run pays them once, not per subject)."""
    with contextlib.suppress(ImportError):  # the stage says so itself
        import openai  # noqa: F401
    spec = resource.spec
    selected = len(load_bisac().select(spec.taxonomy))
    at_once = (
        1 if is_local(spec) else max(1, min(REMOTE_PROBE_SUBJECTS, spec.concurrency, selected))
    )
    document = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["metadata"] = {"name": f"probe-{resource.name}"}
    document["spec"]["taxonomy"]["maxSubjects"] = at_once
    document["spec"]["parallelism"] = 1
    document["spec"].pop("output", None)
    document.pop("status", None)
    probe = parse(document)
    manifest, wall, cpu = _timed(probe, store)
    counts = manifest.counts
    subjects = max(1, counts.get("subjects", 0) + counts.get("subjects_failed", 0))

    def per_role(prefix: str) -> dict[str, float]:
        return {
            key.split(".", 1)[1]: value / subjects
            for key, value in counts.items()
            if key.startswith(prefix + ".")
        }

    return DebateRates(
        # the run's wall time is subjects x this / subjects at once (debate.py)
        seconds_per_subject=sum(p.seconds for p in manifest.parts) * at_once / subjects,
        requests_per_subject=counts.get("requests", 0) / subjects,
        tokens_in=per_role("tokens_in"),
        tokens_out=per_role("tokens_out"),
        topics_per_subject=counts.get("topics", 0) / subjects,
        bytes_per_subject=manifest.size / subjects,
        cpu_per_wall=cpu / wall,
    )


def _gpu_probe(resources: list[AnyResource], store: ArtifactStore, log: Log) -> GpuRates | None:
    """The device, and the MFU of a few real training steps of the first TrainingJob's model
    and length (fresh weights, synthetic documents), when torch sees a GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    from ..train.metrics import PEAK_BF16
    from .defaults import GPU

    name = torch.cuda.get_device_name(0)
    memory = torch.cuda.get_device_properties(0).total_memory / 2**30
    peak = next((p for key, p in PEAK_BF16.items() if key in name), GPU.peak_tflops * 1e12)
    rates = GpuRates(name=name, memory_gib=memory, peak_tflops=peak / 1e12)
    jobs = [r for r in resources if isinstance(r, TrainingJob)]
    if not jobs:
        return rates
    job = jobs[0]
    shape = shape_of(job.spec.model.name)
    one_gpu = memory_per_gpu(shape, job.spec.context_length, 1, 1, job.spec.document_masking)
    if not fits(one_gpu, memory):
        log(f"training: not probed, {job.kind}/{job.name} does not fit on one {name}")
        return rates
    try:
        rates.mfu = training_probe(job, store).get("mfu")
    except torch.OutOfMemoryError:
        log(f"training: not probed, out of memory on one {name}")
        return rates
    log(f"training: MFU {rates.mfu:.1%} on {name}" if rates.mfu else "training: no MFU")
    return rates


class _SyntheticDocuments:
    """Seeded random tokens cut into documents of log-normal length (median 1,500 tokens), as
    bench/train.py feeds the loop."""

    def __init__(self, length: int, vocab: int) -> None:
        self.length, self.vocab = length, vocab

    def __len__(self) -> int:
        return 1 << 30

    def sequence(self, index: int) -> Any:
        import numpy as np

        from ..train.data import Sequence

        rng = np.random.default_rng([0, index])
        tokens = rng.integers(0, self.vocab, self.length + 1, dtype=np.int64)
        spans, start = [], 0
        while start < self.length + 1:
            size = int(np.clip(rng.lognormal(np.log(1500), 1.0), 16, 65536))
            spans.append((start, min(start + size, self.length + 1)))
            start += size
        return Sequence(f"synthetic/{index}", tokens, spans)


def training_probe(job: TrainingJob, store: ArtifactStore, steps: int = 4) -> dict[str, float]:
    """Median seconds, MFU (GPU only) and peak GiB of steps 3.. of `job`'s model at its length
    and attention, one sequence per step on this process's device, fresh weights."""
    from ..train.loop import train
    from ..train.parallel import stop

    document = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    document.pop("status", None)
    document["metadata"] = {"name": "probe-training"}
    spec = document["spec"]
    spec["model"]["fromConfig"] = True
    spec.update(
        steps=1_000_000,
        warmupRatio=0.0,
        batchTokens=spec["contextLength"],
        checkpointEvery=1_000_000,
        parallelism={"nodes": 1, "gpusPerNode": 1, "contextParallel": 1},
    )
    probe = parse(document)
    assert isinstance(probe, TrainingJob)
    # synthetic documents stand in for the samples: no committed input to name
    probe = probe.with_inputs({f"SynthesisRun/{probe.spec.synthesis_run_ref}": "probe"})
    data = _SyntheticDocuments(probe.spec.context_length, shape_of(job.spec.model.name).vocab_size)
    try:
        rows = train(probe, store, data=data, stop_after=steps).rows[2:]
    finally:
        stop()
    figures = {"seconds": statistics.median(r["seconds"] for r in rows)}
    for key in ("mfu", "peak_memory_gib"):
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            figures[key] = statistics.median(values)
    return figures
