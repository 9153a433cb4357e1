"""The report of a SynthesisRun: figures from metadata.parquet, plots, coherence, and the CLI.

The run is committed by hand through the real store (two parts, several row groups each), so
every expected figure is known; the index for coherence is a real tantivy BM25Index over a
corpus of eight topics with disjoint vocabularies plus documents that mix two topics.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from litelong.api import parse
from litelong.api.v1alpha1 import SynthesisRun
from litelong.index import Retriever, open_index
from litelong.stages import run_shard
from litelong.store import Artifact, ArtifactStore, NotCommitted
from litelong.synth.report import ReportSummary, Tally, UnreadableMetadata, write_report

from .conftest import Cli, bm25index, write_jsonl
from .test_synth_stage import inputs  # noqa: F401
from .test_synth_stage import run as run_synthesis
from .test_synth_stage import synthesis as stage_synthesis

TARGET = 1024
TOPICS = {
    "ASTRONOMY": "planet comet galaxy nebula telescope orbit asteroid quasar meteor eclipse",
    "COOKING": "recipe oven flour butter simmer saucepan garlic onion pastry knead",
    "FOOTBALL": "goalkeeper striker referee penalty stadium midfield tackle offside league kick",
    "MUSIC": "melody chord guitar violin tempo rhythm orchestra symphony piano harmony",
    "GARDENING": "compost seedling mulch pruning trowel fertilizer greenhouse tulip hedge soil",
    "SAILING": "mast hull rudder keel anchor harbor tide starboard jib regatta",
    "CHESS": "bishop knight rook pawn checkmate gambit castling opening endgame queen",
    "GEOLOGY": "basalt granite magma sediment fossil volcano tectonic quartz mineral erosion",
}
NAMES = list(TOPICS)
DOCS_PER_TOPIC = 6
MIXED_DOCS = 8
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("topic", pa.string()),
        ("subject_code", pa.string()),
        ("heading", pa.string()),
        ("query", pa.string()),
        ("num_tokens", pa.int32()),
        ("doc_ids", pa.list_(pa.string())),
        ("starts", pa.list_(pa.int32())),
        ("ends", pa.list_(pa.int32())),
        ("truncated", pa.list_(pa.bool_())),
        ("roles", pa.list_(pa.string())),
    ]
)


def doc_id(topic: int, number: int) -> str:
    return f"{NAMES[topic].lower()}-{number}"


def corpus() -> list[dict[str, str]]:
    """Six documents per topic, from its own words only, and eight that mix two topics."""
    rng = random.Random(7)
    records = []
    for topic, words in enumerate(TOPICS.values()):
        for number in range(DOCS_PER_TOPIC):
            text = " ".join(rng.choices(words.split(), k=60))
            records.append({"id": doc_id(topic, number), "text": text})
    for number in range(MIXED_DOCS):
        words = (TOPICS[NAMES[number]] + " " + TOPICS[NAMES[(number + 1) % 8]]).split()
        records.append({"id": f"mixed-{number}", "text": " ".join(rng.choices(words, k=60))})
    return records


def synthesis_run(name: str, index: str = "idx", **spec: Any) -> SynthesisRun:
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "SynthesisRun",
            "metadata": {"name": name},
            "spec": {
                "topicDebateRef": "topics",
                "indexRef": index,
                "targetTokens": TARGET,
                "samplesPerTopic": 2,
                **spec,
            },
        }
    )
    assert isinstance(resource, SynthesisRun)
    return resource


def row(sample_id: str, topic: int | None, ids: list[str]) -> dict[str, Any]:
    """A sample of exactly TARGET tokens whose spans tile it; the last document is cut."""
    size = TARGET // len(ids)
    starts = [size * position for position in range(len(ids))]
    ends = [*starts[1:], TARGET]
    heading = NAMES[topic] if topic is not None else ""
    return {
        "id": sample_id,
        "topic": f"{heading.lower()} basics" if heading else "",
        "subject_code": f"{heading[:3]}000000" if heading else "",
        "heading": heading,
        "query": heading.lower(),
        "num_tokens": TARGET,
        "doc_ids": ids,
        "starts": starts,
        "ends": ends,
        "truncated": [False] * (len(ids) - 1) + [True],
        "roles": ["doc"] * len(ids),
    }


def topical_rows() -> list[dict[str, Any]]:
    """Two samples per topic: its documents 0-3, then 1-5 (so 1, 2 and 3 are used twice)."""
    rows = []
    for topic in range(len(NAMES)):
        ids = [doc_id(topic, number) for number in range(DOCS_PER_TOPIC)]
        rows.append(row(f"{NAMES[topic][:3]}000000/0/0", topic, ids[0:4]))
        rows.append(row(f"{NAMES[topic][:3]}000000/0/1", topic, ids[1:6]))
    return rows


def random_rows() -> list[dict[str, Any]]:
    """What mode standard makes: samples of random documents, no heading."""
    rng = random.Random(3)
    every = [record["id"] for record in corpus()]
    return [row(f"standard/{n}/0", None, rng.sample(every, 4 + n % 2)) for n in range(16)]


def commit_run(
    store: ArtifactStore,
    resource: SynthesisRun,
    rows: list[dict[str, Any]],
    parts: int = 2,
    row_group_size: int = 3,
) -> Artifact:
    """metadata.parquet in every part (row groups of 3 rows unless said), committed through the
    store."""
    artifact = store.artifact("SynthesisRun", resource.name, resource.spec_hash())
    for shard in range(parts):
        mine = rows[shard::parts]
        with artifact.staging(shard, parts) as folder:
            table = pa.Table.from_pylist(mine, schema=SCHEMA)
            pq.write_table(table, folder / "metadata.parquet", row_group_size=row_group_size)
            tokens = sum(r["num_tokens"] for r in mine)
            artifact.commit_part(
                shard, parts, folder, counts={"samples": len(mine), "tokens": tokens}
            )
    artifact.commit(resource.spec.model_dump(mode="json", by_alias=True), parts)
    return artifact


@dataclass
class World:
    store: ArtifactStore
    topical: Artifact
    random: Artifact
    retriever: Retriever


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("report")
    store = ArtifactStore(f"file://{root / 'store'}")
    corpus_file = write_jsonl(root / "corpus.jsonl", corpus())
    index = bm25index("idx", corpus=[{"uri": str(corpus_file), "idField": "id"}], minChars=10)
    result = run_shard(index, store, 0, 1)
    assert result.manifest is not None
    topical = commit_run(store, synthesis_run("topical"), topical_rows())
    standard = commit_run(store, synthesis_run("random", mode="standard"), random_rows(), parts=1)
    retriever = open_index(result.artifact)
    yield World(store, topical, standard, retriever)
    retriever.close()


@pytest.fixture(scope="module")
def report(world: World, tmp_path_factory: pytest.TempPathFactory) -> ReportSummary:
    return write_report(world.topical, world.retriever, tmp_path_factory.mktemp("out"))


def test_the_page_shows_every_plot_with_a_caption(report: ReportSummary) -> None:
    page = report.html.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(f"plots/{path.name}" for path in report.plots.values())
    assert len(sources) == 5 and page.count("<figcaption>") == 5
    for name in ("docs_per_sample", "doc_lengths", "headings", "doc_reuse", "coherence"):
        assert f"plots/{name}.png" in sources
    # every sample has one length: a sentence, not a single-bar histogram
    assert "plots/sample_lengths.png" not in sources
    assert "(One value: not plotted.)" in page
    assert "SynthesisRun/topical report" in page
    assert "top 20 hits other than itself" in page  # the coherence definition
    assert "exactly targetTokens = 1,024 (min 1,024, max 1,024)" in page


def test_every_plot_is_a_png(report: ReportSummary) -> None:
    for path in report.plots.values():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, path


def test_plots_drawn_in_their_own_process_are_the_files_drawn_in_this_one(
    report: ReportSummary, world: World, tmp_path: Path
) -> None:
    here = write_report(world.topical, world.retriever, tmp_path, concurrent_plots=False)
    names = sorted(p.relative_to(report.out) for p in report.out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(here.out) for p in here.out.rglob("*") if p.is_file())
    assert len([name for name in names if name.suffix == ".png"]) == 5
    for name in names:
        assert (report.out / name).read_bytes() == (here.out / name).read_bytes(), name


def test_plots_are_drawn_here_when_their_process_breaks(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import litelong.synth.report.plots as plots

    drawn: list[str] = []
    real = plots.draw_plots

    def here(folder: Path, tally: Tally, figures: dict[str, Any], names: list[str]) -> None:
        drawn.extend(names)
        real(folder, tally, figures, names)

    worker = plots.PlotWorker()
    monkeypatch.setattr(plots, "draw_plots", here)
    assert worker._child is not None
    worker._child.kill()  # the drawing process dies
    with worker:
        tally = Tally(TARGET, 0, 0)
        figures = {**tally.figures(), "coherence": {"dataset": None, "skipped": "none"}}
        worker.draw(tmp_path, tally, figures, ["headings"])
        worker.wait()
    assert drawn == ["headings"]
    assert (tmp_path / "headings.png").read_bytes().startswith(PNG_MAGIC)


def test_the_plots_are_named_in_report_order(report: ReportSummary) -> None:
    from litelong.synth.report.plots import PLOTS

    figures = json.loads(report.json.read_text())
    assert [*figures["plots"], *figures["not_plotted"]] != []
    assert set(PLOTS) == {*figures["plots"], *figures["not_plotted"]}


def test_report_json_holds_the_figures(report: ReportSummary) -> None:
    figures = json.loads(report.json.read_text())
    assert figures["samples"] == 16
    assert figures["tokens"] == {
        "target": TARGET,
        "total": 16 * TARGET,
        "min": TARGET,
        "max": TARGET,
        "mean": TARGET,
        "median": TARGET,
        "off_target": 0,
    }
    assert figures["documents_per_sample"] == {"min": 4, "max": 5, "mean": 4.5, "median": 4.5}
    assert figures["document_tokens"]["spans"] == 72
    assert figures["document_tokens"]["truncated"] == 16
    assert figures["reuse"]["documents"] == 48
    assert figures["reuse"]["max_uses"] == 2
    assert figures["reuse"]["reused_share"] == 0.5  # documents 1-3 of each topic's six
    assert figures["reuse"]["documents_by_uses"] == {"1": 24, "2": 24}
    assert figures["headings"] == {name: 2 for name in NAMES}
    assert figures["roles"] == {"doc": 72}
    assert figures["manifest"]["counts"] == {"samples": 16, "tokens": 16 * TARGET}
    assert figures["spec"]["indexRef"] == "idx"


def test_topical_samples_are_more_coherent_than_random_ones(report: ReportSummary) -> None:
    coherence = report.figures["coherence"]
    assert coherence["samples"] == coherence["baseline_samples"] == 16
    assert coherence["missing_documents"] == 0
    assert coherence["queries"] == 2 * 72
    assert coherence["index_documents"] == len(corpus())
    # A topic document's only hits are its 5 topic-mates and the 2 mixed documents with its
    # words: 3 of 7 are in its sample of 4, 4 of 7 in its sample of 5; the mean is 1/2.
    assert coherence["dataset"] == 0.5
    assert coherence["baseline"] < 0.1


def test_random_concatenation_scores_like_the_baseline(world: World, tmp_path: Path) -> None:
    coherence = write_report(world.random, world.retriever, tmp_path).figures["coherence"]
    assert abs(coherence["dataset"] - coherence["baseline"]) < 0.05
    assert coherence["dataset"] < 0.15


def test_the_same_seed_gives_the_same_coherence(world: World, tmp_path: Path) -> None:
    def measure(seed: int, max_samples: int) -> dict[str, Any]:
        out = tmp_path / f"{seed}-{max_samples}"
        return write_report(
            world.topical, world.retriever, out, seed=seed, max_samples=max_samples
        ).figures["coherence"]

    assert measure(1, 5) == measure(1, 5)
    assert measure(1, 5)["samples"] == 5


def test_without_an_index_coherence_is_skipped_and_said_so(world: World, tmp_path: Path) -> None:
    summary = write_report(world.topical, None, tmp_path, no_retriever_reason="no BM25Index/x")
    assert summary.figures["coherence"]["skipped"] == "no BM25Index/x"
    assert "Not measured: no BM25Index/x" in summary.html.read_text()
    assert (tmp_path / "plots" / "coherence.png").read_bytes().startswith(PNG_MAGIC)


def test_an_uncommitted_run_has_no_report(world: World, tmp_path: Path) -> None:
    artifact = world.store.artifact("SynthesisRun", "topical", "0" * 12)
    with pytest.raises(NotCommitted):
        write_report(artifact, None, tmp_path)


def test_a_part_without_metadata_is_named(world: World, tmp_path: Path) -> None:
    resource = synthesis_run("broken", seed=1)
    artifact = world.store.artifact("SynthesisRun", "broken", resource.spec_hash())
    with artifact.staging(0, 1) as folder:
        pq.write_table(pa.table({"id": ["a"]}), folder / "metadata.parquet")
        artifact.commit_part(0, 1, folder)
    artifact.commit(resource.spec.model_dump(mode="json", by_alias=True), 1)
    with pytest.raises(UnreadableMetadata, match=r"part-00000-of-00001.*num_tokens"):
        write_report(artifact, None, tmp_path)


# -- the CLI ---------------------------------------------------------------------------------


def manifest_file(path: Path, resource: SynthesisRun) -> Path:
    path.write_text(yaml.safe_dump(resource.model_dump(mode="json", by_alias=True)))
    return path


def test_metadata_is_read_in_small_batches_and_uses_are_counted_across_them(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One 600-row row group is read 256 rows at a time at most (a row of a 128K-token sample
    holds hundreds of document ids); a document counts once per sample that holds it."""
    rows = [
        row(f"standard/{n}/0", None, [f"d{n % 300}", f"d{n % 300}", "shared"]) for n in range(600)
    ]
    artifact = commit_run(
        world.store, synthesis_run("batches", mode="standard"), rows, 1, row_group_size=600
    )
    batch_rows: list[int] = []
    add = Tally.add

    def spy(tally: Tally, batch: pa.RecordBatch) -> None:
        batch_rows.append(batch.num_rows)
        add(tally, batch)

    monkeypatch.setattr(Tally, "add", spy)
    figures = write_report(artifact, None, tmp_path).figures

    assert sum(batch_rows) == 600 and max(batch_rows) <= 256
    assert figures["reuse"]["documents"] == 301
    assert figures["reuse"]["max_uses"] == 600
    assert figures["reuse"]["documents_by_uses"] == {"2": 300, "600": 1}


def test_report_by_name_writes_beside_the_artifact(cli: Cli, world: World) -> None:
    result = cli("report", "topical", "--store", world.store.uri)
    assert result.code == 0, result.stderr
    page = Path(world.topical.path) / "report" / "report.html"
    assert page.exists() and str(page) in result.stdout
    assert "samples" in result.stdout and "16" in result.stdout
    assert "topical coherence" in result.stdout


def test_report_by_manifest_file(cli: Cli, world: World, tmp_path: Path) -> None:
    manifest = manifest_file(tmp_path / "run.yaml", synthesis_run("topical"))
    out = tmp_path / "out"
    result = cli("report", str(manifest), "--store", world.store.uri, "--out", str(out))
    assert result.code == 0, result.stderr
    assert (out / "report.html").exists() and len(list((out / "plots").glob("*.png"))) == 5


def test_report_of_an_uncommitted_run_exits_1(cli: Cli, world: World, tmp_path: Path) -> None:
    manifest = manifest_file(tmp_path / "run.yaml", synthesis_run("topical", targetTokens=2048))
    result = cli("report", str(manifest), "--store", world.store.uri)
    assert result.code == 1
    assert "not committed" in result.stderr
    result = cli("report", "never-ran", "--store", world.store.uri)
    assert result.code == 1
    assert "no committed SynthesisRun/never-ran" in result.stderr


def test_report_without_the_index_says_so(cli: Cli, world: World, tmp_path: Path) -> None:
    commit_run(world.store, synthesis_run("orphan", index="gone"), topical_rows())
    result = cli("report", "orphan", "--store", world.store.uri, "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    assert "BM25Index/gone" in result.stdout + result.stderr
    assert json.loads((tmp_path / "report.json").read_text())["coherence"]["skipped"]


def test_report_explains_itself(cli: Cli) -> None:
    result = cli("report", "--help")
    assert result.code == 0 and "Usage: litelong report" in result.stdout


def test_exact_and_near_duplicate_samples_are_counted(world: World, tmp_path: Path) -> None:
    near = write_report(world.topical, None, tmp_path / "near").figures["duplicates"]
    assert near["near"] == 8  # each topic's second sample shares 3 of the first's 4 documents
    assert near["exact"] == 0
    rows = random_rows()[:4]
    for sample, digest in zip(rows, ["h0", "h1", "h0", "h2"], strict=True):
        sample["token_hash"] = digest
    schema = SCHEMA.append(pa.field("token_hash", pa.string()))
    artifact = world.store.artifact("SynthesisRun", "dups", "0" * 12)
    with artifact.staging(0, 1) as folder:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "metadata.parquet")
        artifact.commit_part(0, 1, folder, counts={"samples": 4})
    artifact.commit(synthesis_run("dups", mode="standard").spec.model_dump(by_alias=True), 1)
    summary = write_report(artifact, None, tmp_path / "exact")
    assert summary.figures["duplicates"]["exact"] == 1
    assert dict(summary.key_figures())["duplicate samples written (must be 0)"] == "1"


def test_report_against_another_run_prints_both_side_by_side(cli: Cli, world: World) -> None:
    result = cli("report", "topical", "--against", "random", "--store", world.store.uri)
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "samples written" in line]
    assert lines and lines[0].split()[-2:] == ["16", "16"]
    assert "topical" in result.stdout and "random" in result.stdout
    page = Path(world.topical.path) / "report" / "comparison.html"
    assert page.exists() and "against SynthesisRun/random" in page.read_text()
    assert (Path(world.random.path) / "report" / "report.html").exists()


@pytest.mark.parametrize("mode", ["litelong", "standard"])
def test_coherence_tells_topical_samples_of_real_text_from_random_ones(
    inputs: ArtifactStore,  # noqa: F811
    mode: str,
) -> None:
    """On the shipped Wikipedia sample, whose articles share common words (where a query's
    rarest terms are the ones that say what it is about): samples of a topic's retrieval
    score well above the random baseline, mode standard's random concatenations do not. (A
    sample of ~10 of 10,000 articles holds few of a query's 20 hits either way: 0.02 against
    0.002 here, 0.022 against 0 with whole 32-word queries.)"""
    _, parts = run_synthesis(inputs, stage_synthesis(name=f"coherence-{mode}", mode=mode))
    report = json.loads((parts[0].parent / "report" / "report.json").read_text())
    coherence = report["coherence"]
    assert coherence["queries"] > 100 and coherence["baseline"] < 0.005
    if mode == "litelong":
        assert coherence["dataset"] > 0.01 + 5 * coherence["baseline"]
    else:
        assert coherence["dataset"] < 0.005
