"""Chat requests to OpenAI-compatible endpoints: bounded concurrency, timeouts, retries, cache.

One `EndpointPool` per run owns an `AsyncOpenAI` client and a concurrency limit per base URL, so
debaters and judge that share a server share its limit (the embedded LLM: several single-slot
servers, one request each). Answers are streamed, and an endpoint's
`timeoutSeconds` bounds the silence before the first token and between tokens, not the whole
answer: a slow server that keeps producing tokens is waited for, a dead or stuck one is not.
Transient failures (timeouts, refused or reset connections, 429, 5xx, bodies that are not a chat
completion) are retried with exponential backoff and jitter, honouring `Retry-After`; whatever
still fails raises `EndpointError`, which stops the shard: each answer is cached as it arrives,
so a rerun asks only what is missing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.v1alpha1.topicdebate import Endpoint, Sampling
from .cache import CachedAnswer, NoCache, ResponseCache, request_key
from .keys import NO_KEY, resolve_api_key

if TYPE_CHECKING:
    import openai

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
RETRY_AFTER_CAP_SECONDS = 120.0

Sleep = Callable[[float], Awaitable[None]]


class EndpointError(RuntimeError):
    """An endpoint kept failing (down, erroring, refusing the request) after every retry."""


@dataclass
class Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    attempts: int  # HTTP requests made for this answer (0 when cached)


class ChatClient:
    """One model on one endpoint."""

    def __init__(
        self,
        endpoint: Endpoint,
        base_url: str,
        open_client: Callable[[str], openai.AsyncOpenAI],
        lanes: asyncio.Queue[str],
        cache: ResponseCache | NoCache,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`lanes` holds one server URL per request allowed in flight (the same URL
        `concurrency` times, or each of several single-slot servers once)."""
        self.endpoint = endpoint
        self.base_url = base_url
        self.model = endpoint.model
        self._open_client = open_client
        self._lanes = lanes
        self._cache = cache
        self._sleep = sleep
        self._structured = True  # cleared if the server refuses `response_format`

    def __repr__(self) -> str:
        return f"ChatClient({self.model} at {self.base_url})"

    async def chat(
        self,
        messages: list[dict[str, str]],
        sampling: Sampling,
        schema: dict[str, Any] | None = None,
        schema_name: str = "answer",
    ) -> Answer:
        """The model's answer text; `schema` is sent as a JSON-schema `response_format`."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        }
        if schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        key = request_key(request)
        if (hit := self._cache.get(key)) is not None:
            return Answer(hit.text, hit.prompt_tokens, hit.completion_tokens, True, 0)
        url = await self._lanes.get()
        try:
            answer = await self._send(request, self._open_client(url))
        finally:
            self._lanes.put_nowait(url)
        self._cache.put(key, CachedAnswer(**_usage_fields(answer)))
        return answer

    async def _send(self, request: dict[str, Any], client: openai.AsyncOpenAI) -> Answer:
        import openai

        retries = self.endpoint.max_retries
        attempt = failures = 0  # requests made; transient failures among them
        while True:
            attempt += 1
            body = dict(request)
            if not self._structured:
                body.pop("response_format", None)
            try:
                text, usage = await self._stream(body, client)
            except openai.BadRequestError as exc:
                if self._structured and "response_format" in body and _about_format(exc):
                    self._structured = False  # the server cannot do JSON schemas: parse leniently
                    continue
                raise EndpointError(self._describe(exc, attempt)) from None
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    raise EndpointError(self._describe(exc, attempt)) from None
                failures += 1
                if failures > retries:
                    raise EndpointError(self._describe(exc, attempt)) from None
                retry_after = _retry_after(exc)
                await self._sleep(self._backoff(failures) if retry_after is None else retry_after)
                continue
            except (openai.APIConnectionError, openai.APIError, ValueError) as exc:
                # timeouts, resets; unreadable bodies and errors sent inside the stream
                failures += 1
                if failures > retries:
                    raise EndpointError(self._describe(exc, attempt)) from None
                await self._sleep(self._backoff(failures))
                continue
            return Answer(
                text=text,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                cached=False,
                attempts=attempt,
            )

    async def _stream(self, body: dict[str, Any], client: openai.AsyncOpenAI) -> tuple[str, Any]:
        """The streamed answer's text and usage. The timeout is the HTTP client's read timeout,
        which counts the silence between received bytes; a stream that ends without a finished
        choice (a proxy's HTML page, a body cut short) is a ValueError, retried, never cached."""
        stream = await client.chat.completions.create(
            **body,
            stream=True,
            stream_options={"include_usage": True},
            timeout=self.endpoint.timeout_seconds,
        )
        pieces: list[str] = []
        usage = finish = None
        try:
            async for chunk in stream:
                usage = getattr(chunk, "usage", None) or usage
                for choice in getattr(chunk, "choices", None) or []:
                    if choice.index == 0:
                        pieces.append(getattr(choice.delta, "content", None) or "")
                        finish = choice.finish_reason or finish
        finally:
            await stream.close()
        if finish is None:
            raise ValueError("the answer stream ended before the answer did")
        return "".join(pieces), usage

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with jitter: about 1, 2, 4... seconds, each 50-100%."""
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))
        return ceiling * (0.5 + random.random() / 2)

    def _describe(self, exc: Exception, attempts: int) -> str:
        import openai

        if isinstance(exc, openai.APIStatusError):
            what = f"HTTP {exc.status_code}: {_short(exc.message)}"
        elif isinstance(exc, openai.APITimeoutError):
            what = (
                f"no answer within {self.endpoint.timeout_seconds:g} s: the server sent nothing "
                "for that long (a slow server that still streams tokens is waited for; raise "
                "the endpoint's timeoutSeconds if it needs longer before its first token)"
            )
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            what = f"connection failed ({_short(str(cause) or type(cause).__name__)})"
        else:
            what = f"malformed response ({_short(str(exc))})"
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        message = f"model {self.model} at {self.base_url}: {what}, after {tries}"
        key = self._open_client(self.base_url).api_key
        return message.replace(key, "***") if key and key != NO_KEY else message  # echoed keys


class EndpointPool:
    """Clients for every endpoint of a run; one connection pool and limit per base URL."""

    def __init__(
        self,
        concurrency: int,
        cache: ResponseCache | NoCache | None = None,
        resolve_url: Callable[[Endpoint], str] = lambda endpoint: endpoint.base_url,
        sleep: Sleep = asyncio.sleep,
        replicas: dict[str, list[str]] | None = None,
    ) -> None:
        """`replicas` maps a base URL to single-request servers that stand for it (the
        embedded ones), each taking one request at a time instead of `concurrency`."""
        self._concurrency = concurrency
        self._replicas = replicas or {}
        self._cache = cache or NoCache()
        self._resolve_url = resolve_url
        self._sleep = sleep
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._lanes: dict[str, asyncio.Queue[str]] = {}

    def client(self, endpoint: Endpoint) -> ChatClient:
        base_url = self._resolve_url(endpoint)
        api_key = resolve_api_key(endpoint.api_key_secret_ref)
        if base_url not in self._lanes:
            lanes: asyncio.Queue[str] = asyncio.Queue()
            for url in self._replicas.get(base_url) or [base_url] * self._concurrency:
                lanes.put_nowait(url)
            self._lanes[base_url] = lanes

        def open_client(url: str) -> openai.AsyncOpenAI:
            import openai

            if (url, api_key) not in self._clients:
                self._clients[url, api_key] = openai.AsyncOpenAI(
                    base_url=url,
                    api_key=api_key,
                    max_retries=0,  # retried here, with the policy above and a count per answer
                )
            return self._clients[url, api_key]

        lanes = self._lanes[base_url]
        return ChatClient(endpoint, base_url, open_client, lanes, self._cache, self._sleep)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return min(RETRY_AFTER_CAP_SECONDS, max(0.0, float(value))) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def _about_format(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return "response_format" in text or "json_schema" in text or "grammar" in text


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage_fields(answer: Answer) -> dict[str, Any]:
    return {
        "text": answer.text,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
    }
