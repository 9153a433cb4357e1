"""A loopback HTTP server that records what the Manticore client sends and answers as
Manticore 10.1.0 does.

What it models of the real server (tried against searchd 10.1.0, issue 21):

* `/sql` and `/bulk` exist; any other endpoint is HTTP 501 with a bare error object.
* Tables exist once created, hold the documents `replace`d into them by id, are counted and
  read back by id; a table that does not exist is an error.
* A table has the columns its CREATE TABLE named (and `id`), listed by DESCRIBE (`Field`,
  `Type`, `Properties` rows); one put in `tables` directly has those of the DDL before the
  length attribute (`BEFORE_LENGTHS`). Naming a column the table lacks, in a SELECT or in a
  `replace`d document, is an error, as for a real-time table without auto schema.
* A search (`SELECT <columns>, WEIGHT() AS w ... WHERE MATCH('a | b')`) finds the documents
  holding any of the words (lowercased, whole words), each with the same weight: enough to
  see which columns come back, not a ranking.
* An SQL error or a bulk item error is HTTP 500 with a bare `{"error": "..."}` (`sql_error`,
  `item_error`), never a 200 carrying an error.
* The connection is closed after each response unless the request said
  `Connection: keep-alive`, and the response does not say `Connection: close`: a client that
  reuses such a connection has its next request reset.

It checks requests, never search quality: anything about retrieval runs against a real
Manticore (LITELONG_MANTICORE_URL).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ENDPOINTS = frozenset({"/sql", "/bulk"})
#: how long the real server's close trails its response: a reused socket is dead by then
CLOSE_AFTER = 0.05


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: str
    keep_alive: bool = False

    def ndjson(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


Answer = tuple[int, Any]
Rule = Callable[[Request], Answer | None]


def sql_error(message: str) -> Answer:
    """How Manticore answers a statement it refuses."""
    return 500, {"error": message}


def item_error(message: str) -> Answer:
    """How Manticore answers a bulk request with a failed operation."""
    return 500, {"error": message}


_CREATE = re.compile(r"CREATE TABLE (IF NOT EXISTS )?(\w+)(?: \(([^)]*)\))?", re.IGNORECASE)
_DESCRIBE = re.compile(r"DESC(?:RIBE)? (\w+)$", re.IGNORECASE)
_SEARCH = re.compile(r"SELECT (.+?), WEIGHT\(\) AS w FROM (\w+) WHERE MATCH\('(.*)'\) ")
#: the columns of a table made by the DDL before the length attribute
BEFORE_LENGTHS = {"id": "bigint", "content": "text", "doc_id": "string"}
#: every search hit's weight: SCORE_SCALE * bm25a = 1.0, a positive BM25
SEARCH_WEIGHT = 1_000_000
_DROP = re.compile(r"DROP TABLE (IF EXISTS )?(\w+)", re.IGNORECASE)
_COUNT = re.compile(r"SELECT COUNT\(\*\) AS (\w+) FROM (\w+)", re.IGNORECASE)
_BY_ID = re.compile(r"SELECT id, doc_id, content FROM (\w+) WHERE id IN \(([\d,]+)\)")
_PAGE = re.compile(r"SELECT id, doc_id FROM (\w+) WHERE id > (\d+) ORDER BY id ASC LIMIT (\d+)")


Tables = dict[str, dict[int, dict[str, Any]]]
Schemas = dict[str, dict[str, str]]  # table → column → type


def default_answer(request: Request, tables: Tables, schemas: Schemas | None = None) -> Answer:
    """Tables of documents by id: created (with their columns), described, dropped, loaded by
    bulk `replace`, counted, searched, and read back by id."""
    schemas = {} if schemas is None else schemas
    if request.path not in ENDPOINTS:
        return 501, {"error": f"invalid endpoint {request.path}"}
    if request.path == "/bulk":
        for operation in request.ndjson():
            replace = operation["replace"]
            if replace["table"] not in tables:
                return item_error(f"table '{replace['table']}' absent, or does not support INSERT")
            columns = schemas.get(replace["table"], BEFORE_LENGTHS)
            unknown = [name for name in replace["doc"] if name not in columns]
            if unknown:
                return item_error(f"unknown column: '{unknown[0]}'")
            tables[replace["table"]][replace["id"]] = replace["doc"]
        return 200, {"items": [], "current_line": 0, "skipped_lines": 0, "errors": False}
    if created := _CREATE.match(request.body):
        if created[2] not in tables:
            tables[created[2]] = {}
            declared = (column.split() for column in (created[3] or "").split(","))
            schemas[created[2]] = {"id": "bigint", **{c[0]: c[1] for c in declared if c}}
    elif described := _DESCRIBE.match(request.body):
        if described[1] not in tables:
            return sql_error(f"no such table '{described[1]}'")
        columns = schemas.get(described[1], BEFORE_LENGTHS)
        return rows(*({"Field": n, "Type": t, "Properties": ""} for n, t in columns.items()))
    elif searched := _SEARCH.match(request.body):
        if searched[2] not in tables:
            return sql_error(f"unknown local table(s) '{searched[2]}' in search request")
        wanted = [name.strip() for name in searched[1].split(",")]
        columns = schemas.get(searched[2], BEFORE_LENGTHS)
        unknown = [name for name in wanted if name not in columns]
        if unknown:
            return sql_error(f"unknown column: '{unknown[0]}'")
        words = set(re.findall(r"\w+", searched[3].lower()))
        found = [
            {**{name: doc.get(name) for name in wanted}, "w": SEARCH_WEIGHT}
            for _, doc in sorted(tables[searched[2]].items())
            if words & set(re.findall(r"\w+", str(doc.get("content", "")).lower()))
        ]
        return rows(*found)
    elif dropped := _DROP.match(request.body):
        tables.pop(dropped[2], None)
        schemas.pop(dropped[2], None)
    elif counted := _COUNT.match(request.body):
        if counted[2] not in tables:
            return sql_error(f"unknown local table(s) '{counted[2]}' in search request")
        return rows({counted[1]: len(tables[counted[2]])})
    elif by_id := _BY_ID.match(request.body):
        if by_id[1] not in tables:
            return sql_error(f"unknown local table(s) '{by_id[1]}' in search request")
        table = tables[by_id[1]]
        wanted = [int(number) for number in by_id[2].split(",")]
        return rows(*({"id": n, **table[n]} for n in sorted(wanted) if n in table))
    elif page := _PAGE.match(request.body):
        if page[1] not in tables:
            return sql_error(f"unknown local table(s) '{page[1]}' in search request")
        after = sorted(n for n in tables[page[1]] if n > int(page[2]))[: int(page[3])]
        return rows(*({"id": n, "doc_id": tables[page[1]][n]["doc_id"]} for n in after))
    return 200, [{"total": 0, "error": "", "warning": ""}]


def rows(*found: dict[str, Any]) -> Answer:
    """A result set of /sql?raw_response=true."""
    columns = [{key: {"type": "string"}} for key in (found[0] if found else {})]
    return 200, [
        {"columns": columns, "data": list(found), "total": len(found), "error": "", "warning": ""}
    ]


@dataclass
class FakeManticore:
    url: str
    requests: list[Request] = field(default_factory=list)
    rule: Rule | None = None
    connections: int = 0
    honour_keep_alive: bool = True  # False: close after every answer, as a restart would
    tables: Tables = field(default_factory=dict)
    schemas: Schemas = field(default_factory=dict)  # a table missing here: BEFORE_LENGTHS

    def bulk_requests(self) -> list[Request]:
        return [request for request in self.requests if request.path == "/bulk"]

    def sql(self) -> list[str]:
        return [request.body for request in self.requests if request.path == "/sql"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeManticore

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake.connections += 1
        super().process_request(request, client_address)


@contextmanager
def fake_manticore(rule: Rule | None = None) -> Iterator[FakeManticore]:
    fake = FakeManticore(url="", rule=rule)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # persistent only when asked, below
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            keep_alive = (self.headers.get("Connection") or "").lower() == "keep-alive"
            request = Request(
                parts.path,
                parse_qs(parts.query),
                self.headers.get("Content-Type") or "",
                self.rfile.read(length).decode(),
                keep_alive,
            )
            with lock:
                fake.requests.append(request)
                answer = (fake.rule(request) if fake.rule else None) or default_answer(
                    request, fake.tables, fake.schemas
                )
            status, payload = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            if not (keep_alive and fake.honour_keep_alive):  # closed without a word, late
                time.sleep(CLOSE_AFTER)
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
