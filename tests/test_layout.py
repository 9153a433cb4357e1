"""The layout keeps the architecture: training and evaluation read samples without the
synthesis engine, and no module of litelong imports itself back through others."""

from __future__ import annotations

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
