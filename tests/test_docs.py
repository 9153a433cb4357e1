"""Every fenced code block in README.md, CONTRIBUTING.md and docs/*.md runs, or says why not.

- `python` blocks run, in a folder holding the sample pipeline's outputs, with only what the
  README's own install gives: packages that only the test extra brings (torch, streaming...)
  are hidden from them.
- `yaml` blocks are read as YAML, and those that are litelong.io resources must validate.
- shell blocks (`bash`, `sh`) run with bash in that folder, unless they carry a marker on the
  line before the fence, `<!-- not run: why -->`, for what needs a cluster, a GPU, a server or
  an install; the README's first block, the install and test commands, is instead what
  `.ci/run` runs, line for line.
- blocks without a language are diagrams or sample output, not code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from litelong.api import load_text
from litelong.store import ArtifactStore

from .conftest import REPO

DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->")
SHELLS = {"bash", "sh", "shell", "console"}
#: What `pip install -e '.[dev]'` adds to the README's install: a python block must not need it.
TEST_ONLY = ["torch", "streaming", "sentence_transformers", "faiss", "datasets", "pytest"]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str  # the marker's reason, or ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, number = [], 0
    while number < len(lines):
        if lines[number].startswith("```"):
            end = number + 1
            while not lines[end].startswith("```"):
                end += 1
            marker = NOT_RUN.search(lines[number - 1]) if number else None
            code = "\n".join(lines[number + 1 : end]) + "\n"
            language = lines[number][3:].strip()
            found.append(Block(path, number + 1, language, code, marker[1] if marker else ""))
            number = end
        number += 1
    return found


ALL = [block for path in DOCS for block in blocks(path)]


def of(*languages: str) -> list[Block]:
    return [block for block in ALL if block.language in languages]


def test_the_readme_commands_are_what_ci_runs() -> None:
    first = next(block for block in blocks(REPO / "README.md") if block.language in SHELLS)
    commands = [line.split("   #")[0].strip() for line in first.code.splitlines() if line]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands and all(command in ci for command in commands)


@pytest.mark.parametrize(
    "block",
    [b for b in of(*SHELLS) if not b.not_run and b != of(*SHELLS)[0]],
    ids=lambda block: block.id,
)
def test_every_unmarked_shell_block_runs(block: Block, pipeline_outputs: Path) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=pipeline_outputs,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{block.id}:\n{result.stderr}"


@pytest.mark.parametrize("block", of("yaml"), ids=lambda block: block.id)
def test_every_yaml_block_is_yaml_and_every_resource_validates(block: Block) -> None:
    documents = list(yaml.safe_load_all(block.code))
    assert documents
    if any(isinstance(d, dict) and "apiVersion" in d for d in documents):
        assert load_text(block.code, source=block.id)


@pytest.fixture(scope="module")
def pipeline_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the README's pipeline has run: the sample index and synthesis over
    topics committed as the TopicDebate `science` would leave them (the debate itself, on the
    embedded LLM, is what .ci/run and tests/test_debate_local.py run)."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "manifests").symlink_to(REPO / "manifests")
    store = ArtifactStore(f"file://{folder / 'litelong-data'}")
    debate = store.artifact("TopicDebate", "science", "000000000000")
    topics = [("SCI004000", "Science", "Stellar evolution", "stellar evolution stars")]
    with debate.staging(0, 1) as part:
        records = [
            {"subject_code": c, "heading": h, "subject": h, "topic": t, "query": q}
            for c, h, t, q in topics
        ]
        (part / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        debate.commit_part(0, 1, part, counts={"topics": len(records)})
    debate.commit({}, 1)
    samples = REPO / "manifests" / "samples"
    command = [sys.executable, "-m", "litelong", "run"]
    command += [str(samples / "bm25index.yaml"), str(samples / "synthesisrun.yaml")]
    subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=900)
    return folder


@pytest.mark.parametrize("block", of("python"), ids=lambda block: block.id)
def test_every_python_block_runs_after_the_readme_install(
    block: Block, pipeline_outputs: Path
) -> None:
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in TEST_ONLY)
    program = f"import sys; {hide}\n{block.code}"
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=pipeline_outputs,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{block.id}:\n{result.stderr}"
