"""Talking to one Manticore server through the official `manticoresearch` client.

Responses are read as plain JSON (`*_without_preload_content`) rather than through the
client's generated models: the SQL endpoint answers in several shapes that those models do not
all accept, and errors must be classified by status before anything is parsed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ManticoreError(RuntimeError):
    """A request Manticore refused; `transient` when a retry may succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def _client() -> Any:
    try:
        import manticoresearch
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the Manticore backend needs the manticoresearch client: "
            "pip install 'litelong[manticore]'"
        ) from None
    return manticoresearch


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures (connection, 429, 5xx)."""

    attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)

    def run(self, call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        """`call()`, retried while it raises a transient ManticoreError."""
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except ManticoreError as error:
                if not error.transient or attempt == self.attempts:
                    raise
                sleep(self.delay(attempt))
        raise AssertionError("unreachable")


class ManticoreConnection:
    """One server's HTTP JSON API: `/sql` and `/bulk`, errors classified, JSON returned."""

    def __init__(self, url: str, timeout: float = 120.0, pool: int = 16) -> None:
        client = _client()
        configuration = client.Configuration(host=url.rstrip("/"))
        configuration.connection_pool_maxsize = pool
        configuration.retries = False  # retries are ours, by RetryPolicy
        self.url = url.rstrip("/")
        self._api_client = client.ApiClient(configuration)
        self._utils = client.UtilsApi(self._api_client)
        self._index = client.IndexApi(self._api_client)
        self._exceptions = client.exceptions
        self._timeout = timeout

    def _call(self, what: str, send: Callable[[], Any]) -> Any:
        import urllib3

        try:
            response = send()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ManticoreError(f"{self.url}: {what}: {error}", transient=True) from error
        except self._exceptions.ApiException as error:
            status = error.status or 0
            raise ManticoreError(
                f"{self.url}: {what}: HTTP {status}: {error.body or error.reason}",
                transient=status == 429 or status >= 500,
            ) from error
        body = response.data.decode("utf-8", "replace")
        if response.status == 429 or response.status >= 500:
            raise ManticoreError(
                f"{self.url}: {what}: HTTP {response.status}: {body[:500]}", transient=True
            )
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError:
            raise ManticoreError(f"{self.url}: {what}: not JSON: {body[:500]}") from None
        if response.status >= 400:
            raise ManticoreError(
                f"{self.url}: {what}: HTTP {response.status}: {_error_of(data) or body[:500]}"
            )
        return data

    def sql(self, statement: str) -> list[dict[str, Any]]:
        """Rows of one SQL statement (`raw_response`: any statement, one result set)."""
        data = self._call(
            statement[:200],
            lambda: self._utils.sql_without_preload_content(
                statement, raw_response=True, _request_timeout=self._timeout
            ),
        )
        results = data if isinstance(data, list) else [data]
        rows: list[dict[str, Any]] = []
        for result in results:
            if not isinstance(result, dict):
                continue
            if error := _error_of(result):
                raise ManticoreError(f"{self.url}: {statement[:200]}: {error}")
            rows += result.get("data") or []
        return rows

    def bulk(self, ndjson: str) -> dict[str, Any]:
        """Send one NDJSON batch; raises unless every operation succeeded."""
        data = self._call(
            "bulk",
            lambda: self._index.bulk_without_preload_content(
                ndjson, _request_timeout=self._timeout
            ),
        )
        if not isinstance(data, dict):
            raise ManticoreError(f"{self.url}: bulk: unexpected answer {str(data)[:500]}")
        if data.get("errors") or data.get("error"):
            raise ManticoreError(f"{self.url}: bulk: {_bulk_error(data)}")
        return data

    def wait_ready(
        self, timeout: float = 300.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Block until the server answers SQL (a pod may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sql("SHOW TABLES")
                return
            except ManticoreError as error:
                if not error.transient or time.monotonic() > deadline:
                    raise ManticoreError(f"{self.url} is not ready: {error}") from error
            sleep(2.0)

    def close(self) -> None:
        self._api_client.rest_client.pool_manager.clear()


def _error_of(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or error)
    return str(error or "")


def _bulk_error(data: dict[str, Any]) -> str:
    if data.get("error"):
        return _error_of(data)
    for item in data.get("items") or []:
        for result in item.values() if isinstance(item, dict) else []:
            if isinstance(result, dict) and result.get("error"):
                return f"id {result.get('id')}: {_error_of(result) or result['error']}"
    return "errors reported"
