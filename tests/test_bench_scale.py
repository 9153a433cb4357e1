"""bench/scale.py end to end on a tiny corpus: every stage runs in its child and the report
prints each one with its figures (no timing is asserted: figures are the benchmark's job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

BENCH = REPO / "bench"
SCALES = ("2k", "4k")


def bench(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "operator")])}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards of 2,000 documents made from the shipped sample; every stage at 2k, the
    chunked index at 4k too, a few topics and a small target."""
    root = tmp_path_factory.mktemp("scale")
    (root / "source").mkdir()
    (root / "source" / "wiki.jsonl.zst").symlink_to(REPO / "litelong/data/wiki_vital_en.jsonl.zst")
    corpus = root / "corpus"
    bench(str(BENCH / "scale_corpus.py"), "source", "corpus", "--documents", "4000",
          "--per-shard", "2000", cwd=root)  # fmt: skip
    common = ["--corpus", str(corpus), "--work", str(root), "--per-shard", "2000"]
    small = ["--topics", "8", "--samples-per-topic", "1", "--target", "4096"]
    bench(str(BENCH / "scale.py"), "all", *common, *small, "--documents", "2000", cwd=root)
    bench(str(BENCH / "scale.py"), "index", *common, "--documents", "4000", cwd=root)
    return root


def test_every_stage_leaves_its_figures(work: Path) -> None:
    stages = {path.stem: json.loads(path.read_text()) for path in (work / "results").iterdir()}
    modes = ("litelong", "standard", "nextlong")
    expected = {"index-2k", "index-4k", "index-docs-2k", "tantivy-2k", "read-2k"}
    expected |= {f"{kind}-2k-{mode}" for kind in ("synth", "bound", "first") for mode in modes}
    expected |= {f"bound-2k-{mode}-before" for mode in modes}
    assert set(stages) == expected
    for stage in {s for s in expected if not s.startswith("bound-")}:
        assert stages[stage]["wall_s"] > 0 and stages[stage]["peak_rss_mib"] > 0, stage
    assert stages["tantivy-2k"]["counts"]["documents"] == 2000
    assert stages["index-docs-2k"]["counts"]["documents"] == 2000
    for mode in modes:
        assert stages[f"synth-2k-{mode}"]["counts"]["tokens"] > 0, mode
        bound = stages[f"bound-2k-{mode}"]
        assert bound["subset_tokens"] > 0 and bound["distinct"] >= bound["subset"] > 0, mode
        # the bound before the run tokenized the same documents as the one after it: the
        # first run (made to know them) and the timed one made the same samples
        before = stages[f"bound-2k-{mode}-before"]
        assert before["set_digest"] == bound["set_digest"], mode
        assert before["subset_tokens"] == bound["subset_tokens"], mode
        first, timed = (stages[f"{kind}-2k-{mode}"]["counts"] for kind in ("first", "synth"))
        for counts in (first, timed):  # moves with how the assembly threads share the cache
            counts.pop("documents_tokenized", None)
        assert first == timed, mode
    # the samples are deleted once measured (--keep-samples keeps them); the indexes stay
    assert not (work / "store/default/synthesisrun/scale-2k-litelong/_current").exists()


def test_a_stage_with_results_is_not_run_again(work: Path) -> None:
    before = (work / "results" / "index-4k.json").read_text()
    common = ["--corpus", str(work / "corpus"), "--work", str(work), "--per-shard", "2000"]
    bench(str(BENCH / "scale.py"), "index", *common, "--documents", "4000", cwd=work)
    assert (work / "results" / "index-4k.json").read_text() == before


def test_a_pair_runs_in_the_order_asked(work: Path, tmp_path: Path) -> None:
    """litelong's index first by default (the module's `all`), the peer first with
    `--peer-first`; each with the documents of its index's segments."""
    common = ["--corpus", str(work / "corpus"), "--work", str(tmp_path), "--per-shard", "2000"]
    bench(str(BENCH / "scale.py"), "peer", *common, "--documents", "2000", "--peer-first", cwd=work)
    for folder, order, stages in (
        (work, "litelong-first", ("index-docs", "tantivy")),
        (tmp_path, "peer-first", ("tantivy", "index-docs")),
    ):
        pair = [json.loads((folder / "results" / f"{s}-2k.json").read_text()) for s in stages]
        assert pair[0]["started"] < pair[1]["started"], order
        assert [figures["order"] for figures in pair] == [order, order]
        assert [sum(figures["segments"]) for figures in pair] == [2000, 2000]


def sections(report: str) -> dict[str, list[list[str]]]:
    """The report's tables: section title → rows of cells (header and rule left out)."""
    found: dict[str, list[list[str]]] = {}
    title = ""
    for line in report.splitlines():
        if line.startswith("### "):
            title = line[4:]
            found[title] = []
        elif line.startswith("| ") and not line.startswith("| ---"):
            found[title].append([cell.strip() for cell in line.strip("|").split("|")])
    return {title: rows[1:] for title, rows in found.items()}  # rows[0]: the first header


def test_the_report_prints_every_stage_with_its_figures(work: Path) -> None:
    plot = work / "scale.png"
    out = bench(str(BENCH / "scale.py"), "report", "--work", str(work), "--plot", str(plot),
                cwd=work)  # fmt: skip
    tables = sections(out)
    index = {(row[0], row[1]): row for row in tables["Index"]}
    assert set(index) == {
        ("2k", "BM25Index + chunks"),
        ("4k", "BM25Index + chunks"),
        ("2k", "BM25Index"),
        ("2k", "raw tantivy"),
        ("2k", "read (1 shard of 1024)"),
    }
    assert all(float(row[4]) > 0 and float(row[9].replace(",", "")) > 0 for row in index.values())
    assert index[("2k", "BM25Index")][12].startswith("**")  # the ratio against raw tantivy
    synth = {row[1]: row for row in tables["Synthesis"]}
    assert set(synth) == {"litelong", "standard", "nextlong"}
    assert all(row[12].startswith("**") for row in synth.values())  # run / bound, every mode
    assert all(row[14] == "before+after" for row in synth.values())
    growth = tables["Peak RSS growth"]
    assert [row[:2] for row in growth] == [["BM25Index + chunks", "2,000 → 4,000"]]
    assert "FineWeb-Edu" in out and "core-hours for 4B tokens" in out
    assert plot.stat().st_size > 0


def test_the_report_says_what_is_missing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), "report", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "no results in" in done.stderr and "bench/scale.py all" in done.stderr


def test_the_bound_compared_is_the_mean_of_before_and_after() -> None:
    sys.path.insert(0, str(BENCH))
    from scale_report import bound_figures

    after = {"bound_s": 40.0, "bound_cpu_s": 70.0, "set_digest": "a"}
    before = {"bound_s": 30.0, "bound_cpu_s": 60.0, "set_digest": "a"}
    both = bound_figures(after, before)
    assert (both["bound_s"], both["bound_cpu_s"]) == (35.0, 65.0)
    assert (both["after_s"], both["before_s"], both["timed"]) == (40.0, 30.0, "before+after")
    assert both["same_documents"]
    alone = bound_figures(after, None)  # results measured before `--bound around`
    assert (alone["bound_s"], alone["timed"], alone["before_s"]) == (40.0, "after", None)
    assert not bound_figures(after, {**before, "set_digest": "b"})["same_documents"]


def test_the_report_gives_each_sittings_ratio_and_their_median(tmp_path: Path) -> None:
    def sitting(name: str, wall: float, before: float | None, after: float) -> Path:
        results = tmp_path / name / "results"
        results.mkdir(parents=True)
        run = {"documents": 1000, "mode": "litelong", "wall_s": wall, "cpu_s": wall,
               "counts": {"tokens": 100}}  # fmt: skip
        (results / "synth-1k-litelong.json").write_text(json.dumps(run))
        for stage, seconds in (("bound-1k-litelong", after), ("bound-1k-litelong-before", before)):
            if seconds is not None:
                bound = {"bound_s": seconds, "bound_cpu_s": seconds, "set_digest": "a"}
                (results / f"{stage}.json").write_text(json.dumps(bound))
        return tmp_path / name

    works = [sitting("s1", 10, 6, 8), sitting("s2", 10, None, 9), sitting("s3", 10, 9, 11)]
    sys.path.insert(0, str(BENCH))
    from scale_report import sittings_table

    (row,) = [line for line in sittings_table(works).splitlines() if line.startswith("| 1,000")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    x = "\N{MULTIPLICATION SIGN}"
    assert cells[2] == f"s1 0.70{x} (0.80{x}), s2 0.90{x} (0.90{x}), s3 1.00{x} (1.10{x})"
    assert cells[3] == f"**0.90{x}**" and cells[4] == f"0.90{x}"
