"""Reading the corpus on its own thread (`corpus/prefetch.py`): the same documents in the same
order, memory bounded by the queue, and a reading error raised where the build can see it,
with nothing committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from litelong.corpus.prefetch import prefetched
from litelong.index import stage
from litelong.store import ArtifactStore

from .conftest import Cli, manifest_yaml, write_jsonl

LONG_ENOUGH = "a document that is comfortably longer than twenty characters"


def test_items_come_in_order_and_the_reader_stays_at_most_depth_ahead() -> None:
    taken: list[int] = []
    ahead: list[int] = []

    def items() -> Iterator[int]:
        for number in range(200):
            ahead.append(number - len(taken))
            yield number

    for item in prefetched(items(), depth=3):
        taken.append(item)
    assert taken == list(range(200))
    # the queue (3), the item the reading thread waits to put, the one being consumed
    assert max(ahead) <= 3 + 2


def test_a_reading_error_is_raised_after_the_items_read_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is broken")

    got: list[int] = []
    with pytest.raises(ValueError, match="line 3 is broken"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reading_and_closes_it() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed.set()

    with closing(prefetched(items(), depth=2)) as reading:
        assert next(reading) == 0
    assert closed.is_set()
    assert not any(t.name == "litelong-reader" for t in threading.enumerate())


def run_index(cli: Cli, tmp_path: Path, data: Path) -> tuple[int, str]:
    path = tmp_path / "idx.yaml"
    path.write_text(manifest_yaml("idx", str(data)))
    result = cli("run", str(path), "--store", str(tmp_path / "store"))
    return result.code, result.stderr.replace("\n", " ")


@pytest.mark.parametrize("prefetch", [True, False])
def test_the_index_holds_the_same_documents_read_on_a_thread_or_not(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefetch: bool
) -> None:
    from litelong.index import open_index

    monkeypatch.setattr(stage, "PREFETCH", prefetch)
    records = [{"id": f"d{i}", "text": f"{LONG_ENOUGH} number {i % 2500}"} for i in range(3000)]
    code, message = run_index(cli, tmp_path, write_jsonl(tmp_path / "c.jsonl.zst", records))
    assert code == 0, message
    (artifact,) = ArtifactStore(str(tmp_path / "store")).artifacts()
    index = open_index(artifact)
    assert list(index.document_ids()) == [f"d{i}" for i in range(2500)]
    assert artifact.manifest().skipped == {"duplicate": 500}
    assert index.get(["d7"]) == [f"{LONG_ENOUGH} number 7"]


def test_a_file_that_fails_mid_read_on_the_reading_thread_fails_the_build_and_commits_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "PREFETCH", True)
    records = [{"id": f"d{i}", "text": f"{LONG_ENOUGH} {i}"} for i in range(20_000)]
    data = write_jsonl(tmp_path / "c.jsonl.zst", records)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated: an error
    code, message = run_index(cli, tmp_path, data)
    assert code != 0
    assert "c.jsonl.zst: cannot read" in message and "truncated" in message
    assert not any(a.is_committed() for a in ArtifactStore(str(tmp_path / "store")).artifacts())
    assert not any(t.name == "litelong-reader" for t in threading.enumerate())


def test_reader_processes_started_from_the_reading_thread_give_the_same_documents(
    tmp_path: Path,
) -> None:
    from litelong.corpus import SkipCounter, read_batches

    from .conftest import bm25index

    for n in range(3):
        records = [{"id": f"{n}-{i}", "text": f"{LONG_ENOUGH} {n} {i % 40}"} for i in range(200)]
        write_jsonl(tmp_path / f"c{n}.jsonl.zst", records)
    resource = bm25index(corpus=[{"uri": str(tmp_path / "c*.jsonl.zst"), "idField": "id"}])
    serial_skips, threaded_skips = SkipCounter(), SkipCounter()
    serial = [d for b in read_batches(resource.spec, 0, 1, serial_skips) for d in b]
    batches = read_batches(resource.spec, 0, 1, threaded_skips, readers=2)
    with closing(prefetched(batches)) as reading:
        threaded = [d for b in reading for d in b]
    assert threaded == serial and len(serial) == 120
    assert threaded_skips == serial_skips
