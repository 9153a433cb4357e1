"""Tokenizers load offline: SmolLM2's from the shipped GGUF by default, any fast tokenizer by
folder or file, and a clear error for a name that would need a download."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from litelong.llm import LocalServer
from litelong.tokenizer import TokenizerUnavailable, default_tokenizer_file, load_tokenizer

TEXTS = [
    "Hello world.\n\nSecond doc 12345 ünïcode — dash",
    "  leading spaces and   gaps\tTabs\n\n\nnewlines",
    "It's 3.14159, isn't it? I'll've",
    "日本語のテキスト and emoji 🎉",
    "def f(x):\n    return x**2  # comment\n",
    "a\r\nb\u00a0c <|im_start|>",
]


@pytest.mark.llm
def test_the_default_tokenizer_matches_llama_cpp_on_the_same_gguf() -> None:
    tokenizer = load_tokenizer()
    with LocalServer(slots=1) as server:
        for text in TEXTS:
            request = urllib.request.Request(
                f"{server.address}/tokenize",
                data=json.dumps({"content": text}).encode(),
                headers={"Content-Type": "application/json"},
            )
            expected = json.loads(urllib.request.urlopen(request).read())["tokens"]
            assert tokenizer.encode(text, add_special_tokens=False).ids == expected, text


def test_the_default_tokenizer_round_trips_text() -> None:
    tokenizer = load_tokenizer()
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_a_folder_or_a_tokenizer_json_path_loads(tmp_path: Path) -> None:
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(default_tokenizer_file().read_bytes())
    for name in (str(folder), str(folder / "tokenizer.json")):
        assert (
            load_tokenizer(name).encode("Dark matter").ids
            == load_tokenizer().encode("Dark matter").ids
        )


def test_a_name_that_would_need_a_download_says_how_to_give_it_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TokenizerUnavailable, match="nothing is downloaded at run time"):
        load_tokenizer("some-org/no-such-tokenizer")


def test_documents_are_separated_by_the_end_of_text_token_or_a_clear_error() -> None:
    from tokenizers import Tokenizer, models

    from litelong.tokenizer import end_of_text

    assert end_of_text(load_tokenizer()) == "<|endoftext|>"
    bare = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    with pytest.raises(TokenizerUnavailable, match=r"set spec\.separator"):
        end_of_text(bare)
    bare.add_special_tokens(["</s>"])
    assert end_of_text(bare) == "</s>"
