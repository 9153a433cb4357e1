"""The Manticore backend: the retriever contract against a real server (LITELONG_MANTICORE_URL),
and everything that needs no server (NDJSON, escaping, sharding, merging, SQL text, retries,
loading and resuming) always, the HTTP layer against a loopback server that records requests."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from litelong.api.v1alpha1.bm25index import Analysis, documents_per_shard
from litelong.corpus import Document
from litelong.index import (
    ChunksUnavailable,
    ManticoreError,
    Retriever,
    UnknownDocument,
    open_chunk_index,
    open_index,
)
from litelong.index.manticore.backend import (
    SCORE_SCALE,
    ManticoreRetriever,
    TablesOutOfSync,
    create_table_sql,
    read_location,
    search_sql,
)
from litelong.index.manticore.bulk import BulkLoader, ndjson
from litelong.index.manticore.client import READY_SECONDS, ManticoreConnection, RetryPolicy
from litelong.index.manticore.shards import (
    SHARD_URL_ENV,
    URL_ENV,
    Shard,
    merge_hits,
    numeric_id,
    shard_layout,
    shard_of,
    table_name,
)
from litelong.index.manticore.text import QUERY_SYNTAX, escape_query, match_expression, sql_string
from litelong.stages import run_shard
from litelong.store import ArtifactStore

from .conftest import Cli, bm25index, write_jsonl
from .manticore_fake import (
    CLOSE_AFTER,
    FakeManticore,
    Request,
    fake_manticore,
    item_error,
    rows,
    sql_error,
)
from .retriever_contract import CONTRACT_CORPUS, RetrieverContract

SERVER = os.environ.get(URL_ENV)


@pytest.fixture(autouse=True)
def _no_cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests say where Manticore is through the spec; the environment must not redirect them."""
    monkeypatch.delenv(SHARD_URL_ENV, raising=False)
    monkeypatch.delenv(URL_ENV, raising=False)


def manticore_index(tmp_path: Path, url: str, shards: int, corpora: list[Path], **spec: object):
    return bm25index(
        corpus=[{"uri": str(corpus), "idField": "id"} for corpus in corpora],
        minChars=10,
        backend={
            "type": "manticore",
            "manticore": {"mode": "external", "url": url, "shards": shards},
        },
        **spec,
    )


# -- against a real Manticore --------------------------------------------------------------


@pytest.mark.skipif(
    not SERVER, reason=f"needs a Manticore server: set {URL_ENV} (docs/manticore.md)"
)
class TestManticore(RetrieverContract):
    """One shard, and three shards (three tables on the server) merged by score."""

    @pytest.fixture(params=[1, 3], ids=["one-shard", "three-shards"])
    def retriever(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Retriever]:
        assert SERVER
        corpus = write_jsonl(tmp_path / "contract.jsonl", CONTRACT_CORPUS)
        resource = manticore_index(tmp_path, SERVER, request.param, [corpus])
        store = ArtifactStore(f"file://{tmp_path}/store")
        for shard in range(2):  # two loaders, each sending to every shard
            result = run_shard(resource, store, shard, 2)
        assert result.manifest is not None
        retriever = open_index(result.artifact)
        yield retriever
        assert isinstance(retriever, ManticoreRetriever)
        shards = read_location(result.artifact.local_part(result.manifest.parts[0]))
        retriever.close()
        connection = ManticoreConnection(SERVER)
        for shard in shards:
            connection.sql(f"DROP TABLE IF EXISTS {shard.table}")
        connection.close()


# -- text, ids, shards, merging ------------------------------------------------------------


def test_bulk_lines_carry_the_id_at_the_top_level_and_sanitised_text() -> None:
    documents = [Document("a", "Photo\u200bsynthesis\x00 in plants"), Document("b", "Café")]
    lines = ndjson("t", documents).splitlines(keepends=True)
    assert len(lines) == 2 and all(line.endswith("\n") for line in lines)
    first = json.loads(lines[0])["replace"]
    assert first["table"] == "t"
    assert first["id"] == numeric_id("a")
    assert first["doc"] == {"content": "Photosynthesis in plants", "doc_id": "a", "doc_chars": 24}
    assert "id" not in first["doc"]
    assert json.loads(lines[1])["replace"]["doc"]["content"] == "Café"
    assert json.loads(lines[1])["replace"]["doc"]["doc_chars"] == 4  # characters, not bytes
    before = json.loads(ndjson("t", documents, lengths=False).splitlines()[0])["replace"]
    assert before["doc"] == {"content": "Photosynthesis in plants", "doc_id": "a"}


def test_every_query_syntax_character_is_escaped() -> None:
    for char in QUERY_SYNTAX:
        assert escape_query(f"a{char}b") == f"a\\{char}b"
    assert escape_query("plain") == "plain"


def test_queries_become_an_or_of_their_words_without_syntax() -> None:
    expression = match_expression('"quotes" (parens) AND +plus -minus: colon* Plus')
    assert expression == "quotes | parens | and | plus | minus | colon"
    assert match_expression("photo\u200bsynthesis\x00") == "photosynthesis"
    assert match_expression("snake_case __init__ x_1") == "snake | case | init | x | 1"
    assert match_expression("") == match_expression(" -- ** ") == ""


def test_sql_strings_escape_quotes_and_backslashes() -> None:
    assert sql_string("it's a\\b") == "'it\\'s a\\\\b'"


def test_shard_assignment_is_stable_across_processes_and_uniform() -> None:
    ids = [f"doc-{i}" for i in range(4000)]
    here = [shard_of(doc_id, 4) for doc_id in ids]
    code = (
        "from litelong.index.manticore.shards import shard_of;"
        "print([shard_of(f'doc-{i}', 4) for i in range(4000)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert json.loads(there) == here
    for shard in range(4):
        assert 800 < here.count(shard) < 1200


def test_manticore_ids_are_positive_63_bit_and_distinct() -> None:
    ids = {numeric_id(f"doc-{i}") for i in range(10_000)}
    assert len(ids) == 10_000
    assert all(0 < number < 2**63 for number in ids)


def test_merging_orders_by_score_then_id_and_keeps_k() -> None:
    merged = merge_hits([[("b", 2.0), ("d", 0.5)], [("a", 2.0), ("c", 1.0)], []], 3)
    assert merged == [("a", 2.0), ("b", 2.0), ("c", 1.0)]


def test_shard_layout_of_a_cluster_and_of_one_server() -> None:
    template = "http://idx-manticore-{shard}.idx-manticore.ns.svc:9308"
    cluster = shard_layout("t", 2, None, {SHARD_URL_ENV: template})
    assert cluster == [
        Shard("http://idx-manticore-0.idx-manticore.ns.svc:9308", "t"),
        Shard("http://idx-manticore-1.idx-manticore.ns.svc:9308", "t"),
    ]
    one = shard_layout("t", 2, "http://spec:9308", {URL_ENV: "http://env:9308/"})
    assert one == [Shard("http://env:9308", "t_s0"), Shard("http://env:9308", "t_s1")]
    assert shard_layout("t", 1, "http://spec:9308", {}) == [Shard("http://spec:9308", "t")]
    with pytest.raises(LookupError, match=URL_ENV):
        shard_layout("t", 1, None, {})


def test_tables_stem_drop_stop_words_and_keep_field_lengths_as_asked() -> None:
    ddl = create_table_sql("t", Analysis())
    assert ddl.startswith(
        "CREATE TABLE IF NOT EXISTS t (content text, doc_id string, doc_chars int)"
    )
    assert "morphology='stem_en'" in ddl and "stopwords='en'" in ddl
    assert "index_field_lengths='1'" in ddl
    plain = create_table_sql("t", Analysis(stem=False, stopwords=False))
    assert "morphology='none'" in plain and "stopwords" not in plain


def test_search_ranks_by_bm25a_with_max_matches_raised_to_the_limit() -> None:
    statement = search_sql("t", match_expression("it's (plants)"), 1032)
    assert f"ranker=expr('{SCORE_SCALE}*bm25a(1.2,0.75)')" in statement
    assert "idf='plain,tfidf_unnormalized'" in statement
    assert "LIMIT 1032" in statement and "max_matches=1032" in statement
    assert "MATCH('it | s | plants')" in statement


def test_a_reduced_query_keeps_the_words_fewest_documents_hold_over_every_shard() -> None:
    """`max_terms`: CALL KEYWORDS (with statistics) on every shard; the documents holding a
    term are summed over the shards (`light` is rare on t0 but not overall), and the MATCH
    holds one word of each kept term, terms no document holds (`xylophone`) left out."""
    stats = {  # table → normalised term → documents
        "t0": {"plant": 1, "light": 0, "quantum": 1, "xylophon": 0},
        "t1": {"plant": 1, "light": 3, "quantum": 0, "xylophon": 0},
    }
    words = {"plants": "plant", "light": "light", "quantum": "quantum", "xylophone": "xylophon"}

    def rule(request: Request) -> tuple[int, object] | None:
        if request.body.startswith("SELECT COUNT"):
            return rows({"n": 10})
        if keywords := re.match(r"CALL KEYWORDS\('([^']*)', '(\w+)', 1 AS stats\)", request.body):
            table = stats[keywords[2]]
            return rows(
                *(
                    {
                        "qpos": str(n + 1),
                        "tokenized": word,
                        "normalized": words[word],
                        "docs": str(table[words[word]]),
                        "hits": str(table[words[word]]),
                    }
                    for n, word in enumerate(keywords[1].split())
                )
            )
        return rows()

    with fake_manticore(rule) as fake:
        retriever = ManticoreRetriever([Shard(fake.url, "t0"), Shard(fake.url, "t1")])
        retriever.search("plants light quantum xylophone", 5, max_terms=2)
        retriever.search("plants light quantum xylophone", 5, max_terms=1)
        retriever.search("plants light", 5, max_terms=2)  # short enough: no statistics asked
        retriever.close()
    matches = [re.search(r"MATCH\('([^']*)'\)", body) for body in fake.sql()]
    asked = [m[1] for m in matches if m]
    assert asked[0::2] == ["quantum | plants", "quantum", "plants | light"]
    assert sum(body.startswith("CALL KEYWORDS") for body in fake.sql()) == 4


def test_a_postings_budget_leaves_out_a_term_whose_documents_over_the_shards_pass_it() -> None:
    """`max_postings`: past four terms, the next rarest is kept only while the documents
    holding the kept terms, summed over the shards, stay within it (`plant`: 2 + 3)."""
    stats = {
        "t0": {"alpha": 1, "beta": 1, "gamma": 1, "delta": 1, "plant": 2},
        "t1": {"alpha": 0, "beta": 0, "gamma": 0, "delta": 0, "plant": 3},
    }
    words = {"alpha": "alpha", "beta": "beta", "gamma": "gamma", "delta": "delta"}
    words["plants"] = "plant"

    def rule(request: Request) -> tuple[int, object] | None:
        if request.body.startswith("SELECT COUNT"):
            return rows({"n": 10})
        if keywords := re.match(r"CALL KEYWORDS\('([^']*)', '(\w+)', 1 AS stats\)", request.body):
            table = stats[keywords[2]]
            return rows(
                *(
                    {
                        "qpos": str(n + 1),
                        "tokenized": word,
                        "normalized": words[word],
                        "docs": str(table[words[word]]),
                        "hits": str(table[words[word]]),
                    }
                    for n, word in enumerate(keywords[1].split())
                )
            )
        return rows()

    query = "plants alpha beta gamma delta"
    with fake_manticore(rule) as fake:
        retriever = ManticoreRetriever([Shard(fake.url, "t0"), Shard(fake.url, "t1")])
        retriever.search(query, 5, max_terms=24, max_postings=4)
        retriever.search(query, 5, max_terms=24, max_postings=9)
        retriever.close()
    matches = [re.search(r"MATCH\('([^']*)'\)", body) for body in fake.sql()]
    asked = [m[1] for m in matches if m]
    assert asked[0::2] == ["alpha | beta | delta | gamma", "alpha | beta | delta | gamma | plants"]


def test_documents_per_shard_come_from_the_manifest_counts() -> None:
    counts = {"documents": 5, "shard-0/documents": 2, "shard-1/documents": 3}
    assert documents_per_shard(counts) == [2, 3]
    assert documents_per_shard({"documents": 5}) is None


# -- retries and the HTTP layer ------------------------------------------------------------


def test_transient_errors_are_retried_and_permanent_ones_are_not() -> None:
    waits: list[float] = []
    calls = iter([ManticoreError("503", transient=True), ManticoreError("busy", transient=True)])

    def flaky() -> str:
        error = next(calls, None)
        if error:
            raise error
        return "ok"

    policy = RetryPolicy(attempts=3, base_seconds=1.0)
    assert policy.run(flaky, sleep=waits.append) == "ok"
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0

    def refused() -> None:
        raise ManticoreError("syntax error")

    with pytest.raises(ManticoreError, match="syntax"):
        policy.run(refused, sleep=waits.append)
    assert len(waits) == 2

    def down() -> None:
        raise ManticoreError("down", transient=True)

    with pytest.raises(ManticoreError, match="down"):
        RetryPolicy(attempts=2).run(down, sleep=lambda _: None)


def test_sql_goes_to_the_sql_endpoint_and_reports_errors() -> None:
    def rule(request: Request) -> tuple[int, object] | None:
        if "bad" in request.body:
            return sql_error("P01: syntax error, unexpected identifier near 'bad'")
        if "down" in request.body:
            return 503, {"error": "maintenance"}
        if "slow" in request.body:
            return 429, {"error": "too many requests"}
        return rows({"n": 7})

    with fake_manticore(rule) as fake:
        connection = ManticoreConnection(fake.url)
        assert connection.sql("SELECT COUNT(*) AS n FROM t") == [{"n": 7}]
        with pytest.raises(ManticoreError, match="P01: syntax error") as permanent:
            connection.sql("bad")
        assert not permanent.value.transient
        for statement, status in (("down", "503"), ("slow", "429")):
            with pytest.raises(ManticoreError, match=status) as transient:
                connection.sql(statement)
            assert transient.value.transient
        connection.close()
    first = fake.requests[0]
    assert first.path == "/sql" and first.body == "SELECT COUNT(*) AS n FROM t"
    assert first.query["raw_response"] == ["true"]


def test_an_sql_error_fails_at_once_with_the_servers_message() -> None:
    waits: list[float] = []
    with fake_manticore(
        lambda _: sql_error("unknown local table(s) 'gone' in search request")
    ) as fake:
        connection = ManticoreConnection(fake.url)
        with pytest.raises(ManticoreError, match=r"unknown local table\(s\) 'gone'"):
            RetryPolicy().run(lambda: connection.sql("SELECT * FROM gone"), sleep=waits.append)
        connection.close()
    assert waits == [] and len(fake.requests) == 1


def test_back_to_back_requests_keep_one_connection_alive() -> None:
    """Manticore closes a connection after each answer unless asked to keep it: the client
    asks, so a topic's queries never meet a reset nor pay a new connection."""
    with fake_manticore(lambda _: rows({"n": 1})) as fake:
        connection = ManticoreConnection(fake.url)
        for _ in range(40):
            assert connection.sql("SELECT 1") == [{"n": 1}]
        connection.close()
    assert all(request.keep_alive for request in fake.requests)
    assert fake.connections == 1


def test_a_connection_closed_between_requests_is_reopened_without_waiting() -> None:
    """A server restart or idle timeout drops a kept connection: the next request goes out
    again on a new one at once, instead of failing or sleeping in a retry."""
    with fake_manticore(lambda _: rows({"n": 1})) as fake:
        fake.honour_keep_alive = False
        connection = ManticoreConnection(fake.url)
        started = time.monotonic()
        for _ in range(10):
            assert connection.sql("SELECT 1") == [{"n": 1}]
        elapsed = time.monotonic() - started
        connection.close()
    assert fake.connections >= 5  # the server did close them
    assert elapsed < 10 * (CLOSE_AFTER + 0.25)  # and no retry slept


def test_an_unreachable_server_is_a_transient_error() -> None:
    with fake_manticore() as fake:
        url = fake.url
    with pytest.raises(ManticoreError) as error:
        ManticoreConnection(url, timeout=2).sql("SHOW TABLES")
    assert error.value.transient


def test_waiting_for_a_refused_server_ends_within_its_limit_naming_the_url() -> None:
    assert READY_SECONDS <= 15
    with fake_manticore() as fake:
        url = fake.url
    started = time.monotonic()
    with pytest.raises(ManticoreError, match=f"{url} is not ready after 1 s") as error:
        ManticoreConnection(url, timeout=2).wait_ready(timeout=1, sleep=lambda _: None)
    assert time.monotonic() - started < 5
    assert "refused" in str(error.value).lower()


def test_a_server_that_never_answers_is_given_up_on_within_the_limit() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ManticoreError, match=f"{url} is not ready after 2 s"):
            ManticoreConnection(url).wait_ready(timeout=2, sleep=lambda _: None)
    assert time.monotonic() - started < 4


def test_a_url_that_is_not_manticore_fails_at_once_saying_what_answered() -> None:
    with fake_manticore() as fake:
        connection = ManticoreConnection(fake.url + "/manticore")
        with pytest.raises(ManticoreError, match=r"no such endpoint.*HTTP 501") as wrong_path:
            connection.wait_ready(sleep=_no_waiting)
        assert not wrong_path.value.transient
        connection.close()
    with plain_http_server() as url:
        connection = ManticoreConnection(url)
        with pytest.raises(ManticoreError, match=f"{url} is not Manticore: .*HTTP 404"):
            connection.wait_ready(sleep=_no_waiting)
        connection.close()
    with mysql_port() as url:
        connection = ManticoreConnection(url)
        with pytest.raises(ManticoreError, match=r"not HTTP.*9306"):
            connection.wait_ready(sleep=_no_waiting)
        connection.close()


def _no_waiting(seconds: float) -> None:
    raise AssertionError(f"waited {seconds} s for a server that is not Manticore")


@contextmanager
def plain_http_server() -> Iterator[str]:
    """Some other web server: 404 and HTML for /sql."""

    class NotFound(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"<html><body>404 Not Found</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def mysql_port() -> Iterator[str]:
    """A MySQL-protocol listener (Manticore's 9306): it greets first, in binary."""
    listener = socket.create_server(("127.0.0.1", 0))
    greeting = b"\x4a\x00\x00\x00\x0a10.1.0 0a6d2b1@25091011 dev\x00\x08\x00\x00\x00"

    def serve() -> None:
        while True:
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            with peer:
                peer.sendall(greeting)
                peer.recv(65536)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_errors_show_both_ends_of_a_long_statement() -> None:
    statement = search_sql("t", match_expression(" ".join(f"w{i}" for i in range(400))), 1032)
    with fake_manticore(lambda _: sql_error("some error")) as fake:
        connection = ManticoreConnection(fake.url)
        with pytest.raises(ManticoreError) as error:
            connection.sql(statement)
        connection.close()
    assert "max_matches=1032" in str(error.value) and "SELECT" in str(error.value)


def test_bulk_batches_route_documents_to_their_shard_within_the_batch_size() -> None:
    documents = [Document(f"doc-{i}", f"text number {i}") for i in range(45)]
    with fake_manticore() as fake:
        fake.tables.update(t_s0={}, t_s1={})
        shards = [Shard(fake.url, "t_s0"), Shard(fake.url, "t_s1")]
        connections = {fake.url: ManticoreConnection(fake.url)}
        # tables made without the length attribute (`tables.update`), as `prepare_tables` says
        loader = BulkLoader(shards, connections, batch_size=10, in_flight=2, lengths=[False] * 2)
        for document in documents:
            loader.add(document)
        loader.flush()
        loader.close()
    sent: dict[str, str] = {}
    for request in fake.bulk_requests():
        assert request.content_type.startswith("application/x-ndjson")
        operations = request.ndjson()
        assert 1 <= len(operations) <= 10
        for operation in operations:
            replace = operation["replace"]
            sent[replace["doc"]["doc_id"]] = replace["table"]
    assert sent == {d.id: f"t_s{shard_of(d.id, 2)}" for d in documents}
    assert sum(loader.per_shard) == 45


def test_a_bulk_error_fails_the_load() -> None:
    def rule(request: Request) -> tuple[int, object] | None:
        if request.path == "/bulk":
            return item_error("table 't' absent, or does not support INSERT")
        return None

    with fake_manticore(rule) as fake:
        loader = BulkLoader([Shard(fake.url, "t")], {fake.url: ManticoreConnection(fake.url)})
        loader.add(Document("a", "some text"))
        with pytest.raises(ManticoreError, match="table 't' absent") as error:
            loader.flush()
        loader.close()
    assert not error.value.transient and len(fake.bulk_requests()) == 1  # never retried


# -- the stage, against the recording server ----------------------------------------------


def test_the_stage_creates_tables_loads_and_records_where_they_are(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", CONTRACT_CORPUS)
    store = ArtifactStore(f"file://{tmp_path}/store")
    with fake_manticore() as fake:
        resource = manticore_index(tmp_path, fake.url, 2, [corpus])
        for shard in range(2):
            result = run_shard(resource, store, shard, 2)
        retriever = open_index(result.artifact)
        assert isinstance(retriever, ManticoreRetriever)
        retriever.close()
    assert result.manifest is not None
    counts = result.manifest.counts
    assert counts["documents"] == len(CONTRACT_CORPUS)
    assert documents_per_shard(counts) == [
        sum(1 for doc in CONTRACT_CORPUS if shard_of(doc["id"], 2) == shard) for shard in range(2)
    ]
    shards = read_location(result.artifact.local_part(result.manifest.parts[1]))
    assert [shard.url for shard in shards] == [fake.url, fake.url]
    statements = [request.body for request in fake.requests if request.path == "/sql"]
    for shard in shards:
        assert create_table_sql(shard.table, Analysis()) in statements
    loaded = [op["replace"]["doc"]["doc_id"] for r in fake.bulk_requests() for op in r.ndjson()]
    assert sorted(loaded) == sorted(doc["id"] for doc in CONTRACT_CORPUS)


def test_a_rerun_resumes_after_the_last_file_manticore_acknowledged(tmp_path: Path) -> None:
    first = write_jsonl(
        tmp_path / "1.jsonl", [{"id": f"a{i}", "text": f"first file {i} text"} for i in range(5)]
    )
    second = write_jsonl(
        tmp_path / "2.jsonl", [{"id": f"b{i}", "text": f"second file {i} text"} for i in range(5)]
    )
    store = ArtifactStore(f"file://{tmp_path}/store")
    broken = {"on": True}

    def rule(request: Request) -> tuple[int, object] | None:
        if request.path == "/bulk" and broken["on"] and '"doc_id":"b' in request.body:
            return item_error("disk full")
        return None

    with fake_manticore(rule) as fake:
        resource = manticore_index(tmp_path, fake.url, 1, [first, second])
        with pytest.raises(ManticoreError, match="disk full"):
            run_shard(resource, store, 0, 1)
        fake.requests.clear()
        broken["on"] = False
        result = run_shard(resource, store, 0, 1)
    resent = [op["replace"]["doc"]["doc_id"] for r in fake.bulk_requests() for op in r.ndjson()]
    assert sorted(resent) == [f"b{i}" for i in range(5)]
    assert result.manifest is not None and result.manifest.counts["documents"] == 10
    assert not list((Path(result.artifact.path) / ".loading").glob("*.json"))


def test_loaders_partitioned_by_files_send_only_their_files_and_open_despite_shared_copies(
    tmp_path: Path,
) -> None:
    big = [{"id": f"a{i}", "text": f"first file {i} text " + "x" * 100} for i in range(8)]
    mid = [{"id": f"b{i}", "text": f"second file {i} text"} for i in range(5)] + [big[0]]
    small = [{"id": f"c{i}", "text": f"third file {i} text"} for i in range(3)] + [mid[1]]
    files = [
        write_jsonl(tmp_path / f"{name}.jsonl", records)
        for name, records in (("big", big), ("mid", mid), ("small", small))
    ]
    store = ArtifactStore(f"file://{tmp_path}/store")
    sent = []
    with fake_manticore() as fake:
        resource = manticore_index(tmp_path, fake.url, 2, files, partition="files")
        for loader in range(2):
            fake.requests.clear()
            result = run_shard(resource, store, loader, 2)
            sent.append(
                sorted(
                    op["replace"]["doc"]["doc_id"]
                    for r in fake.bulk_requests()
                    for op in r.ndjson()
                )
            )
        assert result.manifest is not None
        assert result.manifest.counts["documents"] == 17  # a0 read by both loaders
        assert result.manifest.skipped == {"duplicate": 1}  # b1 twice in loader 1's files
        retriever = open_index(result.artifact)
        assert retriever.count() == 16  # replace by id kept one a0
        retriever.close()
        (emptied, _) = sorted(fake.tables)
        fake.tables[emptied] = {}
        with pytest.raises(TablesOutOfSync, match=f"table {emptied} at .* holds 0 documents"):
            open_index(result.artifact)
    assert sent[0] == sorted(doc["id"] for doc in big)
    assert sent[1] == sorted(doc["id"] for doc in mid + small[:3])


def test_managed_mode_without_the_operator_says_where_manticore_is_missing(
    tmp_path: Path,
) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", CONTRACT_CORPUS)
    resource = bm25index(
        corpus=[{"uri": str(corpus), "idField": "id"}],
        backend={"type": "manticore", "manticore": {"mode": "managed", "shards": 2}},
    )
    from litelong.index import BackendUnavailable

    with pytest.raises(BackendUnavailable, match=URL_ENV):
        run_shard(resource, ArtifactStore(f"file://{tmp_path}/store"), 0, 1)


# -- scores, committed tables, rebuilding -------------------------------------------------


def bm25a_weight(bm25: float, documents: int) -> int:
    """What searchd 10.1.0 returns for `SCORE_SCALE*bm25a(...)` (issue 21's measurement)."""
    return round(SCORE_SCALE * (0.5 + bm25 / (4.4 * math.log(1 + documents))))


def test_shards_of_different_sizes_merge_by_their_true_bm25() -> None:
    """bm25a squeezes BM25 by the shard's size: a small shard's hits would outrank a large
    shard's better ones unless the weights are turned back into BM25."""
    sizes = {"t_s0": 10, "t_s1": 100_000}
    hits = {"t_s0": [("small-a", 5.0), ("small-b", 1.0)], "t_s1": [("large-a", 8.0)]}

    def rule(request: Request) -> tuple[int, object] | None:
        table = re.search(r"FROM (\w+)", request.body)
        if table is None or table[1] not in sizes:
            return None
        if "COUNT(*)" in request.body:
            return rows({"n": sizes[table[1]]})
        found = [
            {"doc_id": doc, "w": bm25a_weight(score, sizes[table[1]])}
            for doc, score in hits[table[1]]
        ]
        return rows(*found)

    with fake_manticore(rule) as fake:
        fake.tables.update(t_s0={}, t_s1={})  # for DESCRIBE: no length attribute
        retriever = ManticoreRetriever([Shard(fake.url, "t_s0"), Shard(fake.url, "t_s1")])
        merged = retriever.search("anything", 3)
        retriever.close()
    assert [doc for doc, _ in merged] == ["large-a", "small-a", "small-b"]
    assert [score for _, score in merged] == pytest.approx([8.0, 5.0, 1.0], abs=1e-3)


def committed_manticore_index(tmp_path: Path, fake: FakeManticore) -> tuple[Path, ArtifactStore]:
    corpus = write_jsonl(tmp_path / "c.jsonl", CONTRACT_CORPUS)
    manifest = tmp_path / "index.yaml"
    resource = manticore_index(tmp_path, fake.url, 2, [corpus])
    manifest.write_text(yaml.safe_dump(resource.model_dump(mode="json", by_alias=True)))
    store = ArtifactStore(f"file://{tmp_path}/store")
    assert run_shard(resource, store, 0, 1).manifest is not None
    return manifest, store


def test_opening_an_index_whose_tables_are_gone_says_so_and_how_to_rebuild(
    tmp_path: Path,
) -> None:
    with fake_manticore() as fake:
        _, store = committed_manticore_index(tmp_path, fake)
        artifact = store.latest_committed("BM25Index", "test")
        open_index(artifact).close()  # tables as committed
        (gone, short) = sorted(fake.tables)
        del fake.tables[gone]
        fake.tables[short] = dict(list(fake.tables[short].items())[:3])
        with pytest.raises(TablesOutOfSync) as error:
            open_index(artifact)
    message = str(error.value)
    assert f"table {gone} at {fake.url} is missing" in message
    assert f"table {short} at {fake.url} holds 3 documents, the committed index" in message
    assert "litelong run --rebuild" in message


def test_run_notices_missing_tables_and_rebuild_loads_them_again(tmp_path: Path, cli: Cli) -> None:
    with fake_manticore() as fake:
        manifest, store = committed_manticore_index(tmp_path, fake)
        rerun = cli("run", str(manifest), "--store", store.uri)
        assert rerun.code == 0 and "already committed" in rerun.stdout
        fake.tables.clear()
        stale = cli("run", str(manifest), "--store", store.uri)
        assert stale.code == 1
        assert "is missing" in stale.stderr and "--rebuild" in stale.stderr
        rebuilt = cli("run", str(manifest), "--store", store.uri, "--rebuild")
        assert rebuilt.code == 0, rebuilt.stderr
        assert "discarded" in rebuilt.stdout and "committed" in rebuilt.stdout
        assert sum(len(ids) for ids in fake.tables.values()) == len(CONTRACT_CORPUS)
        open_index(store.latest_committed("BM25Index", "test")).close()


def test_searches_carry_each_hits_length_from_the_table(tmp_path: Path) -> None:
    """The loader fills the length attribute (the text's characters, as `get` returns it), and
    a search returns it, so a synthesis need not read a text to know its length."""
    texts = {record["id"]: record["text"] for record in CONTRACT_CORPUS}
    with fake_manticore() as fake:
        _, store = committed_manticore_index(tmp_path, fake)
        retriever = open_index(store.latest_committed("BM25Index", "test"))
        hits = retriever.search_lengths("plants light", 10)
        assert {doc_id for doc_id, _, _ in hits} == {"photo", "short-plant", "long-plant"}
        for doc_id, _, chars in hits:
            assert chars == len(retriever.get([doc_id])[0]) == len(texts[doc_id].strip())
        assert retriever.search("plants light", 10) == [hit[:2] for hit in hits]
        retriever.close()
    assert any("SELECT doc_id, doc_chars, WEIGHT() AS w" in statement for statement in fake.sql())


def test_tables_created_before_the_length_attribute_load_and_search_without_it(
    tmp_path: Path,
) -> None:
    """Tables made by the DDL before the attribute (the emulator's `BEFORE_LENGTHS`: naming
    `doc_chars` there is an error): a loader resuming into them sends no lengths, and a
    search asks for none and reports them unknown (None)."""
    corpus = write_jsonl(tmp_path / "c.jsonl", CONTRACT_CORPUS)
    with fake_manticore() as fake:
        resource = manticore_index(tmp_path, fake.url, 2, [corpus])
        shards = shard_layout(
            table_name(f"{resource.namespace}_{resource.name}", resource.identity()),
            2,
            fake.url,
        )
        fake.tables.update({shard.table: {} for shard in shards})  # created before
        store = ArtifactStore(f"file://{tmp_path}/store")
        result = run_shard(resource, store, 0, 1)
        assert result.manifest is not None
        documents = [doc for table in fake.tables.values() for doc in table.values()]
        assert len(documents) == len(CONTRACT_CORPUS)
        assert all("doc_chars" not in document for document in documents)
        retriever = open_index(result.artifact)
        hits = retriever.search_lengths("plants light", 10)
        assert {doc_id for doc_id, _, _ in hits} == {"photo", "short-plant", "long-plant"}
        assert [chars for _, _, chars in hits] == [None, None, None]
        retriever.close()
        with pytest.raises(ManticoreError, match="unknown column: 'doc_chars'"):
            ManticoreConnection(fake.url).sql(
                search_sql(shards[0].table, "plants", 10, lengths=True)
            )


def test_nextlong_on_a_manticore_index_is_refused_with_what_to_build(tmp_path: Path) -> None:
    with fake_manticore() as fake:
        _, store = committed_manticore_index(tmp_path, fake)
    with pytest.raises(ChunksUnavailable, match=r"backend\.type tantivy"):
        open_chunk_index(store.latest_committed("BM25Index", "test"), 2048)


def test_get_reads_texts_back_from_every_shard_in_batches_in_the_order_asked(
    tmp_path: Path,
) -> None:
    documents = [{"id": f"doc-{i}", "text": f"text number {i}"} for i in range(1200)]
    corpus = write_jsonl(tmp_path / "c.jsonl", documents)
    store = ArtifactStore(f"file://{tmp_path}/store")
    with fake_manticore() as fake:
        result = run_shard(manticore_index(tmp_path, fake.url, 2, [corpus]), store, 0, 1)
        retriever = open_index(result.artifact)
        wanted = [f"doc-{i}" for i in range(1199, -1, -1)]
        assert retriever.get(wanted) == [f"text number {i}" for i in range(1199, -1, -1)]
        with pytest.raises(UnknownDocument, match="nope"):
            retriever.get(["doc-1", "nope"])
        retriever.close()
    by_id = [r.body for r in fake.requests if r.body.startswith("SELECT id, doc_id, content")]
    assert len(by_id) >= 4  # two shards of ~600 ids, 512 a batch


def test_ids_at_pages_each_shard_by_id_only_as_far_as_the_largest_ordinal_asked(
    tmp_path: Path,
) -> None:
    documents = [{"id": f"doc-{i}", "text": f"text number {i}"} for i in range(300)]
    corpus = write_jsonl(tmp_path / "c.jsonl", documents)
    store = ArtifactStore(f"file://{tmp_path}/store")
    with fake_manticore() as fake:
        result = run_shard(manticore_index(tmp_path, fake.url, 2, [corpus]), store, 0, 1)
        retriever = open_index(result.artifact)
        every = list(retriever.document_ids())
        assert sorted(every) == sorted(d["id"] for d in documents)
        fake.requests.clear()
        asked = [299, 0, 5, 5, 151]
        assert retriever.ids_at(asked) == [every[n] for n in asked]
        with pytest.raises(IndexError):
            retriever.ids_at([300])
        retriever.close()
    pages = [r.body for r in fake.requests if r.body.startswith("SELECT id, doc_id FROM")]
    assert pages and all("LIMIT" in body for body in pages)
