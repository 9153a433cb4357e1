"""Shared fixtures: a temporary store, corpus files in every format, and the CLI entry point."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from litelong.api import parse
from litelong.api.v1alpha1 import BM25Index
from litelong.cli import main
from litelong.store import ArtifactStore

from .provision import install_missing_packages

REPO = Path(__file__).resolve().parent.parent
# the operator's resync timer is declared when litelong_operator is first imported (by any test
# module): the operator tests need it short
os.environ.setdefault("LITELONG_RESYNC_SECONDS", "2")
#: One runnable resource per file; kustomization.yaml lists them for kubectl -k, Argo CD, Flux.
SAMPLES = sorted(
    p for p in (REPO / "manifests" / "samples").glob("*.yaml") if p.name != "kustomization.yaml"
)


def pytest_configure(config: pytest.Config) -> None:
    install_missing_packages()  # the GGUF and mosaicml-streaming, without their dependencies


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(f"file://{tmp_path / 'store'}")


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Records as JSON Lines; a `bytes` or `str` record is written as a raw line."""
    lines = []
    for record in records:
        if isinstance(record, bytes):
            lines.append(record)
        elif isinstance(record, str):
            lines.append(record.encode())
        else:
            lines.append(json.dumps(record).encode())
    data = b"\n".join(lines) + b"\n"
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    elif path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def bm25index(name: str = "test", **spec: Any) -> BM25Index:
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": name},
            "spec": spec,
        }
    )
    assert isinstance(resource, BM25Index)
    return resource


def manifest_yaml(name: str, corpus_uri: str, **spec: Any) -> str:
    import yaml

    document = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "BM25Index",
        "metadata": {"name": name},
        "spec": {"corpus": [{"uri": corpus_uri, "idField": "id"}], **spec},
    }
    return yaml.safe_dump(document)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


Cli = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `litelong ARGS...` in-process through the real entry point (exit-code mapping)."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def parquet_bytes(rows: dict[str, list[Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table(rows), sink)
    return sink.getvalue()


def commit_topics(store: Any, topics: list[tuple[str, str, str, str]]) -> None:
    """A committed TopicDebate `topics` (hash 000000000000) with these (code, heading, topic,
    query) rows, as the debate stage would leave it."""
    debate = store.artifact("TopicDebate", "topics", "000000000000")
    with debate.staging(0, 1) as folder:
        records = [
            {"subject_code": c, "heading": h, "subject": h, "topic": t, "query": q}
            for c, h, t, q in topics
        ]
        (folder / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        debate.commit_part(0, 1, folder, counts={"topics": len(records)})
    debate.commit({}, 1)
