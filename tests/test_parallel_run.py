"""`litelong run --jobs N`: the shards of one resource built at once in worker processes, with
the same committed output as one after another, and errors, deaths and early exits that stop
every worker instead of hanging."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from litelong.cores import usable_cores
from litelong.dataset.mds import read_mds
from litelong.parallel import ShardFailed, parse_jobs, run_shards
from litelong.progress import NoProgress
from litelong.stages import ShardOutcome, run_shard
from litelong.store import ArtifactStore

from .conftest import Cli, bm25index, commit_topics, manifest_yaml, write_jsonl

TOPICS = [
    ("SCI004000", "Science", "Black holes", "Black holes astronomy"),
    ("HIS037000", "History", "The French Revolution", "French Revolution history"),
    ("MUS000000", "Music", "Baroque composers", "Baroque composers music"),
    ("SPO000000", "Sports & Recreation", "Olympic athletics", "Olympic athletics sports"),
]
RENDEZVOUS_ENV = "LITELONG_TEST_RENDEZVOUS"


def _rendezvous_shard(resource: Any, store: ArtifactStore, shard: int, of: int, progress: Any):
    """run_shard, once every shard has started: it can only finish if all run at once.

    Each shard leaves `<shard>.pid` in the folder named by $LITELONG_TEST_RENDEZVOUS, then
    waits (a hang guard of $..._SECONDS, then an error) for the others' files."""
    folder = Path(os.environ[RENDEZVOUS_ENV])
    (folder / f"{shard}.pid").write_text(str(os.getpid()))
    waited = 0.0
    limit = float(os.environ.get(f"{RENDEZVOUS_ENV}_SECONDS", "120"))
    while len(list(folder.glob("*.pid"))) < of:
        if waited > limit:
            raise RuntimeError(f"shard {shard}: the other shards never started beside it")
        time.sleep(0.05)
        waited += 0.05
    return run_shard(resource, store, shard, of, progress)


def _dies_on_shard_1(resource: Any, store: ArtifactStore, shard: int, of: int, progress: Any):
    """Shard 1's worker is killed outright (as the OOM killer would); shard 0 waits forever."""
    if shard == 1:
        os._exit(3)
    while True:
        time.sleep(1)


def _shard_0_builds_shard_1_waits(
    resource: Any, store: ArtifactStore, shard: int, of: int, progress: Any
):
    if shard == 1:
        while True:
            time.sleep(1)
    return run_shard(resource, store, shard, of, progress)


@pytest.fixture
def small_index(tmp_path: Path) -> Any:
    records = [{"id": str(i), "text": f"document {i} about rivers and hills"} for i in range(50)]
    return bm25index(
        "small",
        corpus=[{"uri": str(write_jsonl(tmp_path / "c.jsonl", records)), "idField": "id"}],
        parallelism=2,
    )


def test_two_shards_run_at_the_same_time_in_two_other_processes(
    small_index: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    monkeypatch.setenv(RENDEZVOUS_ENV, str(rendezvous))
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    done = list(run_shards(small_index, store.uri, 2, 2, NoProgress(), run=_rendezvous_shard))
    assert sorted(d.shard for d in done) == [0, 1]
    assert [d.outcome for d in done] == [ShardOutcome.BUILT, ShardOutcome.BUILT]
    committed = [d.manifest for d in done if d.manifest is not None]
    assert len(committed) == 1 and committed[0].counts == {"documents": 50}
    pids = {int((rendezvous / f"{shard}.pid").read_text()) for shard in (0, 1)}
    assert len(pids) == 2 and os.getpid() not in pids


def test_the_rendezvous_fails_when_shards_run_one_after_another(
    small_index: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above proves concurrency: with one worker, shard 0 waits alone and fails, and
    its error reaches the parent as itself."""
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    monkeypatch.setenv(RENDEZVOUS_ENV, str(rendezvous))
    monkeypatch.setenv(f"{RENDEZVOUS_ENV}_SECONDS", "1")
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    with pytest.raises(RuntimeError, match="never started beside it"):
        list(run_shards(small_index, store.uri, 2, 1, NoProgress(), run=_rendezvous_shard))
    assert not multiprocessing.active_children()


def test_a_worker_that_dies_fails_the_run_and_stops_the_other(
    small_index: Any, tmp_path: Path
) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    with pytest.raises(ShardFailed, match="shard 1 died with exit code 3"):
        list(run_shards(small_index, store.uri, 2, 2, NoProgress(), run=_dies_on_shard_1))
    assert not multiprocessing.active_children()


def test_leaving_early_stops_the_workers_and_keeps_committed_parts(
    small_index: Any, tmp_path: Path
) -> None:
    """What Ctrl-C and an artifact committed by another run do: the loop ends, workers stop."""
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    results = run_shards(small_index, store.uri, 2, 2, NoProgress(), _shard_0_builds_shard_1_waits)
    first = next(results)
    results.close()
    assert first.shard == 0 and first.outcome is ShardOutcome.BUILT
    assert not multiprocessing.active_children()
    artifact = store.output_of(small_index)
    assert artifact.part(0, 2) is not None and artifact.part(1, 2) is None


def _copy_inputs(source: ArtifactStore, target: ArtifactStore) -> None:
    for kind, name in (("BM25Index", "wiki"), ("TopicDebate", "topics")):
        artifact = source.latest_committed(kind, name)
        target.fs.copy(
            artifact.path, target.artifact(kind, name, artifact.identity).path, recursive=True
        )
        target.artifact(kind, name, artifact.identity).make_current()


def test_jobs_2_commits_the_same_samples_as_jobs_1(cli: Cli, tmp_path: Path) -> None:
    inputs = ArtifactStore(f"file://{tmp_path / 'one'}")
    run_shard(
        bm25index("wiki", corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst"}]), inputs, 0, 1
    )
    commit_topics(inputs, TOPICS)
    other = ArtifactStore(f"file://{tmp_path / 'two'}")
    _copy_inputs(inputs, other)
    spec = tmp_path / "synth.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "litelong.io/v1alpha1",
                "kind": "SynthesisRun",
                "metadata": {"name": "s"},
                "spec": {
                    "topicDebateRef": "topics",
                    "indexRef": "wiki",
                    "targetTokens": 2048,
                    "samplesPerTopic": 2,
                    "output": {"format": "mds"},
                    "parallelism": 2,
                },
            }
        )
    )
    samples = []
    for store, jobs in ((inputs, "1"), (other, "2")):
        result = cli("run", str(spec), "--store", store.uri, "--jobs", jobs)
        assert result.code == 0, result.stderr
        assert ("2 shards in 2 processes" in result.stderr) == (jobs == "2")
        assert "report:" in result.stdout
        artifact = store.latest_committed("SynthesisRun", "s")
        manifest = artifact.manifest()
        parts = [artifact.local_part(part) for part in manifest.parts]
        samples.append((manifest.counts, {s["id"]: s for part in parts for s in read_mds(part)}))
    (counts_1, samples_1), (counts_2, samples_2) = samples
    assert counts_1 == counts_2 and counts_1["samples"] > 0
    assert samples_1.keys() == samples_2.keys()
    for key in samples_1:
        assert np.array_equal(samples_1[key]["input_ids"], samples_2[key]["input_ids"])
        assert np.array_equal(samples_1[key]["indices"], samples_2[key]["indices"])


def test_litelong_jobs_env_is_honoured_and_the_flag_wins(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [{"id": str(i), "text": f"document {i} about rivers and hills"} for i in range(50)]
    spec = tmp_path / "idx.yaml"
    corpus = str(write_jsonl(tmp_path / "c.jsonl", records))
    spec.write_text(manifest_yaml("idx", corpus, parallelism=2))
    monkeypatch.setenv("LITELONG_JOBS", "2")
    result = cli("run", str(spec), "--store", f"file://{tmp_path / 'a'}")
    assert result.code == 0, result.stderr
    assert "2 shards in 2 processes" in result.stderr
    assert "committed 50 documents" in result.stdout
    result = cli("run", str(spec), "--store", f"file://{tmp_path / 'b'}", "--jobs", "1")
    assert result.code == 0, result.stderr
    assert "processes" not in result.stderr
    assert "committed 50 documents" in result.stdout


def test_a_rerun_in_workers_skips_the_part_already_committed(cli: Cli, tmp_path: Path) -> None:
    records = [{"id": str(i), "text": f"document {i} about rivers and hills"} for i in range(50)]
    spec = tmp_path / "idx.yaml"
    spec.write_text(
        manifest_yaml("idx", str(write_jsonl(tmp_path / "c.jsonl", records)), parallelism=2)
    )
    store = f"file://{tmp_path / 'store'}"
    assert (
        cli("stage", "BM25Index", "--spec", str(spec), "--shard", "0", "--store", store).code == 0
    )
    result = cli("run", str(spec), "--store", store, "--jobs", "2")
    assert result.code == 0, result.stderr
    assert "shard 0 already committed, skipped" in result.stderr
    assert "committed 50 documents" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--jobs", "0"], None, "--jobs"),
        (["--jobs", "-2"], None, "--jobs"),
        (["--jobs", "two"], None, "--jobs"),
        ([], "0", "LITELONG_JOBS"),
        ([], "1.5", "LITELONG_JOBS"),
        ([], "lots", "LITELONG_JOBS"),
    ],
)
def test_bad_jobs_values_exit_2_with_one_line(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str | None,
    named: str,
) -> None:
    spec = tmp_path / "idx.yaml"
    spec.write_text(
        manifest_yaml(
            "idx", str(write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "text": "x" * 40}]))
        )
    )
    if env is not None:
        monkeypatch.setenv("LITELONG_JOBS", env)
    result = cli("run", str(spec), "--store", f"file://{tmp_path / 'store'}", *args)
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert named in result.stderr and "whole number" in result.stderr
    assert not (tmp_path / "store").exists()


def test_jobs_default_to_the_usable_cores_and_a_valid_value_is_taken() -> None:
    assert parse_jobs(None, {}) == usable_cores() >= 1
    assert parse_jobs(None, {"LITELONG_JOBS": "3"}) == 3
    assert parse_jobs("2", {"LITELONG_JOBS": "3"}) == 2


def test_a_failing_shard_reports_its_error_in_one_line_and_exits_1(
    cli: Cli, tmp_path: Path
) -> None:
    """Every document too short: the shard that commits last finds the output empty."""
    records = [{"id": str(i), "text": "tiny"} for i in range(20)]
    spec = tmp_path / "idx.yaml"
    spec.write_text(
        manifest_yaml("idx", str(write_jsonl(tmp_path / "c.jsonl", records)), parallelism=2)
    )
    result = cli("run", str(spec), "--store", f"file://{tmp_path / 'store'}", "--jobs", "2")
    assert result.code == 1
    assert "error: BM25Index/idx: empty output, 0 documents" in result.stderr
    assert "Traceback" not in result.stderr
    assert not multiprocessing.active_children()


def _group_members(group: int) -> list[int]:
    """Live processes of a process group, read from /proc (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_ctrl_c_stops_every_worker_and_commits_nothing(tmp_path: Path) -> None:
    words = ["rivers", "hills", "valleys", "mountains", "lakes", "forests", "deserts", "plains"]
    records = [
        {"id": str(i), "text": " ".join(words[(i + j) % 8] for j in range(40)) + f" {i}"}
        for i in range(100_000)
    ]
    spec = tmp_path / "idx.yaml"
    spec.write_text(
        manifest_yaml("idx", str(write_jsonl(tmp_path / "c.jsonl", records)), parallelism=2)
    )
    store = tmp_path / "store"
    launcher = (  # a terminal's foreground job: SIGINT not ignored, its own process group
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); "
        "os.execv(sys.executable, [sys.executable, '-m', 'litelong', *sys.argv[1:]])"
    )
    command = [sys.executable, "-c", launcher, "run", str(spec), "--store", f"file://{store}"]
    process = subprocess.Popen([*command, "--jobs", "2"], stderr=subprocess.PIPE, text=True)
    waited = 0.0
    while len(list(store.glob("**/.staging/*.lock"))) < 2:  # both workers are building
        assert process.poll() is None and waited < 120, "the workers never started"
        time.sleep(0.05)
        waited += 0.05
    assert len(_group_members(process.pid)) >= 3  # litelong and its two workers
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (130, -signal.SIGINT), stderr
    assert "Traceback" not in stderr
    waited = 0.0  # multiprocessing's resource tracker leaves once it reads its pipe's end
    while _group_members(process.pid) and waited < 30:
        time.sleep(0.1)
        waited += 0.1
    assert not _group_members(process.pid)
    assert not list(store.glob("**/_manifest.json"))
