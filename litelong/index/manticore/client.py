"""Talking to one Manticore server through the official `manticoresearch` client.

Responses are read as plain JSON (`*_without_preload_content`) rather than through the
client's generated models: the SQL endpoint answers in several shapes that those models do not
all accept, and errors must be classified by status before anything is parsed.

How Manticore (10.x) answers, and what each answer means here:

* It closes the connection after each response unless the request asks for keep-alive, and it
  does not say `Connection: close`; a pool would reuse the dead socket. Every request therefore
  sends `Connection: keep-alive`, and a connection that still dies between requests (a server
  restart, an idle timeout) is reopened once at once, without waiting: every request litelong
  sends is idempotent (SELECT, CREATE/DROP ... IF [NOT] EXISTS, bulk `replace`), so sending
  one twice is harmless.
* Refused or reset connections, 429 and 503 (and 502/504 from a proxy in front) may pass: they
  are `transient`, and callers retry them with backoff.
* An SQL error or a bulk item error is HTTP 500 with a bare `{"error": ...}`: the request was
  understood and refused, so it fails at once with the server's message.
* 501 is an endpoint Manticore does not have; anything that is not JSON in Manticore's shapes
  is another server. Both name what was found: the URL is wrong.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: statuses worth another try: rate limited, unavailable (starting, overloaded), a proxy's
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
#: how long `wait_ready` waits for a server that refuses connections (a pod still starting)
READY_SECONDS = 15.0
_SHOWN = 160  # characters of a statement shown from each end in an error
_RESULT_KEYS = frozenset({"error", "total", "data"})  # one result set of /sql?raw_response


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
    """Exponential backoff with jitter for transient failures (connection, 429, 503)."""

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


def shown(statement: str) -> str:
    """A statement for an error message: whole, or both ends (where LIMIT and OPTION are)."""
    if len(statement) <= 2 * _SHOWN + 20:
        return statement
    return f"{statement[:_SHOWN]} … ({len(statement):,} characters) … {statement[-_SHOWN:]}"


class ManticoreConnection:
    """One server's HTTP JSON API: `/sql` and `/bulk`, errors classified, JSON returned."""

    def __init__(self, url: str, timeout: float = 120.0, pool: int = 16) -> None:
        client = _client()
        configuration = client.Configuration(host=url.rstrip("/"))
        configuration.connection_pool_maxsize = pool
        configuration.retries = False  # retries are ours, by RetryPolicy
        self.url = url.rstrip("/")
        self._api_client = client.ApiClient(configuration)
        self._api_client.set_default_header("Connection", "keep-alive")
        self._utils = client.UtilsApi(self._api_client)
        self._index = client.IndexApi(self._api_client)
        self._exceptions = client.exceptions
        self._timeout = timeout

    def _send(self, what: str, send: Callable[[], Any]) -> Any:
        """The HTTP response, reopening a connection the server closed under us once."""
        import urllib3

        for attempt in (1, 2):
            try:
                return send()
            except (urllib3.exceptions.HTTPError, OSError) as error:
                if _not_http(error):
                    raise ManticoreError(
                        f"{self.url} answered {what} with something that is not HTTP; is it "
                        "Manticore's HTTP port (9308), not the MySQL one (9306)?"
                    ) from error
                if attempt == 2 or not _dropped(error):
                    raise ManticoreError(f"{self.url}: {what}: {error}", transient=True) from error
        raise AssertionError("unreachable")

    def _call(self, what: str, send: Callable[[], Any]) -> Any:
        try:
            response = self._send(what, send)
        except self._exceptions.ApiException as error:  # only with preloaded content
            status, text = error.status or 0, str(error.body or error.reason)
        else:
            status, text = response.status, response.data.decode("utf-8", "replace")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
            if status not in TRANSIENT_STATUSES:  # Manticore answers JSON, even its errors
                raise ManticoreError(
                    f"{self.url} is not Manticore: {what} got HTTP {status}: {text[:200]!r}"
                ) from None
        if status in TRANSIENT_STATUSES:
            raise ManticoreError(
                f"{self.url}: {what}: HTTP {status}: {_error_of(data) or text[:500]}",
                transient=True,
            )
        if status == 501:
            raise ManticoreError(
                f"{self.url} has no such endpoint (HTTP 501: {_error_of(data) or text[:200]}); "
                "is the URL the server's root, e.g. http://host:9308?"
            )
        if status >= 400:
            raise ManticoreError(f"{self.url}: {what}: {_error_of(data) or text[:500]}")
        return data

    def sql(self, statement: str, timeout: float | None = None) -> list[dict[str, Any]]:
        """Rows of one SQL statement (`raw_response`: any statement, one result set)."""
        data = self._call(
            shown(statement),
            lambda: self._utils.sql_without_preload_content(
                statement, raw_response=True, _request_timeout=timeout or self._timeout
            ),
        )
        results = data if isinstance(data, list) else [data]
        if not results or not all(isinstance(r, dict) and _RESULT_KEYS & r.keys() for r in results):
            raise ManticoreError(
                f"{self.url} is not Manticore: /sql answered {json.dumps(data)[:200]}"
            )
        rows: list[dict[str, Any]] = []
        for result in results:
            if error := _error_of(result):
                raise ManticoreError(f"{self.url}: {shown(statement)}: {error}")
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
        self, timeout: float = READY_SECONDS, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Block while the server refuses connections or says it is unavailable (a pod
        starting), at most `timeout` seconds; anything else that is not Manticore fails at
        once, saying what answered."""
        deadline = time.monotonic() + timeout
        while True:
            try:  # a host that drops packets must not hold a probe past the deadline
                self.sql("SHOW TABLES", timeout=max(0.5, min(5.0, deadline - time.monotonic())))
                return
            except ManticoreError as error:
                if not error.transient:
                    raise
                if time.monotonic() > deadline:
                    raise ManticoreError(
                        f"{self.url} is not ready after {timeout:.0f} s: {error}"
                    ) from error
            sleep(1.0)

    def close(self) -> None:
        self._api_client.rest_client.pool_manager.clear()


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
        if current is None and found[-1].args and isinstance(found[-1].args[-1], BaseException):
            current = found[-1].args[-1]  # urllib3 wraps the socket error in its args
    return found


def _dropped(error: BaseException) -> bool:
    """A pooled connection the server had closed: the request never reached it."""
    return any(
        isinstance(cause, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected))
        for cause in _causes(error)
    )


def _not_http(error: BaseException) -> bool:
    """The peer answered, but not with HTTP (e.g. a MySQL-protocol greeting)."""
    return any(
        isinstance(cause, http.client.BadStatusLine)
        and not isinstance(cause, http.client.RemoteDisconnected)
        for cause in _causes(error)
    )


def _error_of(data: Any) -> str:
    """The server's message in an error answer: a bare `{"error": ...}` (string or object),
    or the first failed item of a bulk answer."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or error)
    if error:
        return str(error)
    for item in data.get("items") or []:
        for result in item.values() if isinstance(item, dict) else []:
            if isinstance(result, dict) and result.get("error"):
                return f"id {result.get('id')}: {_error_of(result)}"
    return ""


def _bulk_error(data: dict[str, Any]) -> str:
    return _error_of(data) or "errors reported"
