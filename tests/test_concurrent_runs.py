"""Two runs of one resource against one store, at the same moment: neither crashes, the
output is committed once and whole, and the loser says it found it committed."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from pathlib import Path
from typing import Any

from litelong.cli import main
from litelong.store import ArtifactStore

from .conftest import manifest_yaml, write_jsonl

ROUNDS = 20


def _run(start: Any, spec: str, store: str, log: str) -> None:
    """One `litelong run` in its own process; its exit code is the process's."""
    output = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        start.wait()
        try:
            main(["run", spec, "--store", store])
        except SystemExit as exc:
            code = int(exc.code or 0)
    Path(log).write_text(output.getvalue())
    raise SystemExit(code)


def test_two_runs_at_once_never_crash_and_commit_one_whole_output(tmp_path: Path) -> None:
    records = [
        {"id": str(i), "text": f"document number {i} about rivers and hills"} for i in range(200)
    ]
    spec = tmp_path / "idx.yaml"
    spec.write_text(manifest_yaml("idx", str(write_jsonl(tmp_path / "c.jsonl", records))))
    context = multiprocessing.get_context("fork")  # this process has litelong imported already
    for round_ in range(ROUNDS):
        store = tmp_path / f"store-{round_}"
        start = context.Barrier(2)
        logs = [tmp_path / f"log-{round_}-{i}" for i in range(2)]
        runs = [
            context.Process(target=_run, args=(start, str(spec), str(store), str(log)))
            for log in logs
        ]
        for process in runs:
            process.start()
        for process in runs:
            process.join(120)
        outputs = [log.read_text() if log.exists() else "" for log in logs]
        assert [p.exitcode for p in runs] == [0, 0], f"round {round_}: {outputs}"
        assert all("Traceback" not in text for text in outputs)
        (artifact,) = ArtifactStore(str(store)).artifacts()
        manifest = artifact.manifest()
        assert manifest.counts == {"documents": 200}
        losers = [
            text
            for text in outputs
            if "committed meanwhile by another run" in text or "already committed" in text
        ]
        assert len(losers) == 1, f"round {round_}: one run builds, the other finds it: {outputs}"
        assert not (Path(artifact.path) / ".staging").exists()
