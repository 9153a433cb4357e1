"""The LLM client against a server that misbehaves on cue (tests/adversary_llm.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from litelong.api.v1alpha1.topicdebate import Endpoint, Sampling
from litelong.llm import Answer, EndpointError, EndpointPool, MissingSecret, ResponseCache
from litelong.llm.cache import NoCache
from litelong.llm.client import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS
from litelong.store import ArtifactStore

from .adversary_llm import (
    AdversaryLLM,
    delay,
    hang,
    malformed_http,
    reply,
    reset,
    status,
    stream_cut,
    trickle,
)

MESSAGES = [{"role": "user", "content": "Propose a topic about volcanoes."}]
SAMPLING = Sampling(temperature=0.3, top_p=0.9, max_tokens=64, seed=42)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"topic": {"type": "string"}},
    "required": ["topic"],
}
SECRET_REF = {"name": "openai", "key": "api-key"}
SECRET_ENV = "LITELONG_SECRET_OPENAI_API_KEY"
KEY = "sk-adversary-0123456789"


class Sleeps(list[float]):
    """Records the delays the client asks for instead of sleeping them."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def endpoint(server: AdversaryLLM, **fields: Any) -> Endpoint:
    values = {"baseURL": server.base_url, "model": "adv-model", "timeoutSeconds": 2, **fields}
    return Endpoint(**values)


def ask(
    target: Endpoint,
    messages: list[dict[str, str]] = MESSAGES,
    sampling: Sampling = SAMPLING,
    schema: dict[str, Any] | None = None,
    cache: ResponseCache | NoCache | None = None,
    sleep: Sleeps | None = None,
) -> Answer:
    async def go() -> Answer:
        pool = EndpointPool(4, cache=cache, sleep=Sleeps() if sleep is None else sleep)
        try:
            return await pool.client(target).chat(messages, sampling, schema)
        finally:
            await pool.aclose()

    return asyncio.run(go())


def test_a_good_answer_returns_its_text_and_token_usage() -> None:
    with AdversaryLLM([reply('{"topic": "lava"}', prompt_tokens=11, completion_tokens=5)]) as s:
        answer = ask(endpoint(s))
    assert answer == Answer('{"topic": "lava"}', 11, 5, cached=False, attempts=1)


def test_garbage_text_is_returned_as_is_for_the_caller_to_judge() -> None:
    with AdversaryLLM([reply('{"topic": "lav')]) as s:
        assert ask(endpoint(s), schema=SCHEMA).text == '{"topic": "lav'


def test_the_request_carries_model_sampling_and_the_schema_as_response_format() -> None:
    with AdversaryLLM() as s:
        ask(endpoint(s), schema=SCHEMA)
    body = s.requests[0].body
    assert body["model"] == "adv-model"
    assert body["messages"] == MESSAGES
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.3,
        0.9,
        64,
        42,
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }


def test_a_server_error_is_retried_and_the_retry_succeeds() -> None:
    with AdversaryLLM([status(500), reply("ok")]) as s:
        answer = ask(endpoint(s))
    assert (answer.text, answer.attempts, len(s.requests)) == ("ok", 2, 2)


def test_a_429_waits_as_long_as_retry_after_says() -> None:
    sleeps = Sleeps()
    with AdversaryLLM([status(429, headers={"Retry-After": "1"}), reply("ok")]) as s:
        answer = ask(endpoint(s), sleep=sleeps)
    assert (answer.text, answer.attempts) == ("ok", 2)
    assert sleeps == [1.0]


def test_retry_after_zero_retries_at_once() -> None:
    sleeps = Sleeps()
    with AdversaryLLM([status(503, headers={"Retry-After": "0"}), reply("ok")]) as s:
        ask(endpoint(s), sleep=sleeps)
    assert sleeps == [0.0]


def test_backoff_grows_exponentially_with_jitter_up_to_a_cap() -> None:
    sleeps = Sleeps()
    with AdversaryLLM(default=status(502)) as s, pytest.raises(EndpointError):
        ask(endpoint(s, maxRetries=8), sleep=sleeps)
    assert len(sleeps) == 8
    ceilings = [min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**n) for n in range(8)]
    fractions = [slept / ceiling for slept, ceiling in zip(sleeps, ceilings, strict=True)]
    assert all(0.5 <= fraction <= 1.0 for fraction in fractions)
    assert len(set(fractions)) > 1  # jittered, so that clients that failed together spread out


def test_a_hang_past_the_timeout_is_retried_then_raises_naming_model_url_and_timeout() -> None:
    with AdversaryLLM(default=hang()) as s:
        with pytest.raises(EndpointError) as error:
            ask(endpoint(s, timeoutSeconds=0.5, maxRetries=1))
        assert len(s.requests) == 2
    message = str(error.value)
    assert "adv-model" in message and s.base_url in message
    assert "no answer within 0.5 s" in message and "2 attempts" in message
    assert "timeoutSeconds" in message  # what to change for a server that is slow, not dead


def test_an_answer_still_streaming_tokens_is_never_timed_out() -> None:
    text = '{"topic": "lava flows and the shapes they leave behind"}'
    with AdversaryLLM([trickle(text, pieces=8, gap=0.3)]) as s:
        answer = ask(endpoint(s, timeoutSeconds=1, maxRetries=0))  # 2.4 s in all, 0.3 s apart
    assert (answer.text, answer.attempts) == (text, 1)
    assert s.requests[0].body["stream"] is True


def test_an_answer_cut_off_mid_stream_is_retried_and_never_cached(store: ArtifactStore) -> None:
    cache = ResponseCache(store)
    with AdversaryLLM([stream_cut('{"topic": "la'), reply('{"topic": "lava"}')]) as s:
        answer = ask(endpoint(s), cache=cache)
    assert (answer.text, answer.attempts) == ('{"topic": "lava"}', 2)
    with AdversaryLLM(default=status(500)) as s:
        assert ask(endpoint(s, maxRetries=0), cache=cache).cached  # the whole answer was kept


def test_a_slow_answer_within_the_timeout_is_not_cut_off() -> None:
    with AdversaryLLM([delay(0.3, reply("late but fine"))]) as s:
        answer = ask(endpoint(s, timeoutSeconds=2))
    assert (answer.text, answer.attempts) == ("late but fine", 1)


def test_a_connection_reset_is_retried() -> None:
    with AdversaryLLM([reset(), reply("ok")]) as s:
        answer = ask(endpoint(s))
    assert (answer.text, answer.attempts) == ("ok", 2)


def test_an_answer_that_is_not_http_is_retried() -> None:
    with AdversaryLLM([malformed_http(), reply("ok")]) as s:
        answer = ask(endpoint(s))
    assert (answer.text, answer.attempts) == ("ok", 2)


@pytest.mark.parametrize(
    "body",
    ["<html>proxy login</html>", '{"choices": [{"index": 0, "mess', {"choices": []}],
    ids=["html", "cut-short", "no-choices"],
)
def test_a_200_that_is_not_a_chat_completion_is_retried_and_never_cached(
    store: ArtifactStore, body: str | dict[str, Any]
) -> None:
    cache = ResponseCache(store)
    with AdversaryLLM([status(200, body), status(200, body), reply("ok")]) as s:
        with pytest.raises(EndpointError, match=r"malformed response.*after 2 attempts"):
            ask(endpoint(s, maxRetries=1), cache=cache)
        answer = ask(endpoint(s, maxRetries=1), cache=cache)
    assert (answer.text, answer.cached, answer.attempts) == ("ok", False, 1)


def test_persistent_server_errors_raise_after_max_retries_plus_one_attempts() -> None:
    with AdversaryLLM(default=status(500)) as s:
        with pytest.raises(EndpointError, match=r"HTTP 500.*after 4 attempts"):
            ask(endpoint(s, maxRetries=3))
        assert len(s.requests) == 4


@pytest.mark.parametrize("code", [401, 404])
def test_a_client_error_is_not_retried(code: int) -> None:
    with AdversaryLLM(default=status(code)) as s:
        with pytest.raises(EndpointError, match=f"HTTP {code}.*after 1 attempt"):
            ask(endpoint(s, maxRetries=3))
        assert len(s.requests) == 1


def test_a_server_that_refuses_response_format_gets_the_request_again_without_it() -> None:
    refusal = status(400, {"error": {"message": "response_format json_schema is not supported"}})
    with AdversaryLLM([refusal, reply("ok")]) as s:
        answer = ask(endpoint(s, maxRetries=0), schema=SCHEMA)
    assert (answer.text, answer.attempts) == ("ok", 2)
    assert "response_format" in s.requests[0].body
    assert "response_format" not in s.requests[1].body


def test_refusing_response_format_does_not_use_up_a_retry() -> None:
    refusal = status(400, {"error": {"message": "unknown field response_format"}})
    with AdversaryLLM([refusal, status(500), reply("ok")]) as s:
        answer = ask(endpoint(s, maxRetries=1), schema=SCHEMA)
    assert (answer.text, answer.attempts) == ("ok", 3)


def test_other_bad_requests_are_not_retried_without_response_format() -> None:
    with AdversaryLLM(default=status(400, {"error": {"message": "messages too long"}})) as s:
        with pytest.raises(EndpointError, match="messages too long"):
            ask(endpoint(s), schema=SCHEMA)
        assert len(s.requests) == 1


def test_concurrent_calls_to_one_server_never_exceed_the_limit() -> None:
    async def six_calls(server: AdversaryLLM) -> list[Answer]:
        pool = EndpointPool(2, sleep=Sleeps())
        debater = pool.client(endpoint(server, model="debater"))
        judge = pool.client(endpoint(server, model="judge"))  # same server, same limit
        try:
            calls = [client.chat(MESSAGES, SAMPLING) for client in [debater, judge] * 3]
            return await asyncio.gather(*calls)
        finally:
            await pool.aclose()

    with AdversaryLLM(default=delay(0.2, reply("ok"))) as s:
        answers = asyncio.run(six_calls(s))
    assert [answer.text for answer in answers] == ["ok"] * 6
    assert s.max_in_flight == 2


def test_the_cache_makes_a_second_identical_call_free(store: ArtifactStore) -> None:
    with AdversaryLLM([reply("first", prompt_tokens=11, completion_tokens=5)]) as s:
        ask(endpoint(s), schema=SCHEMA, cache=ResponseCache(store))
        again = ask(endpoint(s), schema=SCHEMA, cache=ResponseCache(store))  # a new pool
        assert len(s.requests) == 1
    assert again == Answer("first", 11, 5, cached=True, attempts=0)


def test_the_cache_misses_on_another_seed_or_message(store: ArtifactStore) -> None:
    with AdversaryLLM() as s:
        ask(endpoint(s), cache=ResponseCache(store))
        other_seed = ask(
            endpoint(s),
            sampling=SAMPLING.model_copy(update={"seed": 43}),
            cache=ResponseCache(store),
        )
        other_message = ask(
            endpoint(s),
            messages=[{"role": "user", "content": "Other."}],
            cache=ResponseCache(store),
        )
        assert len(s.requests) == 3
    assert not other_seed.cached and not other_message.cached


def test_an_endpoint_without_a_cache_always_asks() -> None:
    with AdversaryLLM() as s:
        ask(endpoint(s), cache=None)
        ask(endpoint(s), cache=NoCache())
        assert len(s.requests) == 2


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty mounted-secrets folder and no key in the environment."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv("LITELONG_SECRETS_DIR", str(tmp_path / "secrets"))
    return tmp_path / "secrets"


def test_the_api_key_is_read_from_the_environment(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, KEY)
    with AdversaryLLM() as s:
        ask(endpoint(s, apiKeySecretRef=SECRET_REF))
    assert s.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_the_api_key_is_read_from_a_mounted_secret_file(secrets_dir: Path) -> None:
    (secrets_dir / "openai").mkdir(parents=True)
    (secrets_dir / "openai" / "api-key").write_text(KEY + "\n")
    with AdversaryLLM() as s:
        ask(endpoint(s, apiKeySecretRef=SECRET_REF))
    assert s.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_blank_environment_variable_falls_back_to_the_mounted_file(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "  ")
    (secrets_dir / "openai").mkdir(parents=True)
    (secrets_dir / "openai" / "api-key").write_text(KEY)
    with AdversaryLLM() as s:
        ask(endpoint(s, apiKeySecretRef=SECRET_REF))
    assert s.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_missing_key_raises_missing_secret_naming_both_places(secrets_dir: Path) -> None:
    pool = EndpointPool(1)
    with AdversaryLLM() as s, pytest.raises(MissingSecret) as error:
        pool.client(endpoint(s, apiKeySecretRef=SECRET_REF))
    assert SECRET_ENV in str(error.value)
    assert str(secrets_dir / "openai" / "api-key") in str(error.value)
    assert s.requests == []


@pytest.mark.parametrize("code", [401, 500])
def test_the_api_key_never_appears_in_endpoint_errors(
    code: int, secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, KEY)
    echo = status(code, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with AdversaryLLM(default=echo) as s, pytest.raises(EndpointError) as error:
        ask(endpoint(s, apiKeySecretRef=SECRET_REF, maxRetries=1))
    assert KEY not in str(error.value)
    assert "Incorrect API key provided" in str(error.value)
