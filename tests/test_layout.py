"""The layout keeps the architecture: training and evaluation read samples without the
synthesis engine, and no module of litelong imports itself back through others."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What only synthesis, the index and the debate need: a trainer's image has none of them.
SYNTHESIS_ONLY = ("openai", "tantivy", "xllamacpp", "zstandard")


def test_training_and_evaluation_import_without_the_synthesis_engine() -> None:
    """A bare GPU machine reads MDS samples, loads the tokenizer and evaluates with neither the
    LLM client, the BM25 engine, the embedded server nor zstandard installed."""
    code = "\n".join(
        [
            "import sys",
            *(f"sys.modules[{name!r}] = None" for name in SYNTHESIS_ONLY),
            "import litelong.train, litelong.train.data, litelong.train.loop",
            "import litelong.eval, litelong.eval.runner, litelong.eval.subject, litelong.eval.text",
            "import litelong.dataset, litelong.tokenizer",
            "from litelong.dataset import read_mds, open_writer",
            "from litelong.tokenizer import load_tokenizer",
            f"assert not any(sys.modules.get(n) for n in {SYNTHESIS_ONLY!r})",
            "assert 'litelong.synth' not in sys.modules, 'training imported the synthesis engine'",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_trainer_command_runs_without_the_synthesis_engine() -> None:
    """The trainer image installs none of them, and its pods run `torchrun -m litelong train`."""
    code = "\n".join(
        [
            "import runpy, sys",
            *(f"sys.modules[{name!r}] = None" for name in SYNTHESIS_ONLY),
            "sys.argv = ['litelong', 'train', '--help']",
            "runpy.run_module('litelong', run_name='__main__')",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--spec" in done.stdout


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of litelong and the operator: dotted name -> (file, is a package)."""
    found: dict[str, tuple[Path, bool]] = {}
    for folder in (ROOT / "litelong", ROOT / "operator" / "litelong_operator"):
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder.parent).with_suffix("").parts)
            package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _imports(name: str, path: Path, package: bool, modules: set[str]) -> set[str]:
    """The modules of ours that `name` imports anywhere in its file: at the top, under
    TYPE_CHECKING or inside a function. `from pkg import x` names the module `pkg.x` where x is
    one, else the package `pkg`, whose `__init__` then runs."""
    here = name if package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                out.add(child if child in modules else base)
    return {target for target in out if target in modules and target != name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_a_circle_and_passes_a_chain() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_itself_back() -> None:
    """Every import counts, TYPE_CHECKING and function-level ones too: a deferred import
    defers a cost, it does not remove the dependency, and a circle hidden that way still ties
    two modules so neither can be read, tested or moved alone."""
    modules = _modules()
    graph = {name: _imports(name, *modules[name], set(modules)) for name in modules}
    assert import_cycles(graph) == []
