"""Operator benchmark: from applying a BM25Index to its Job existing, against the raw API calls.

Everything runs in this one process and event loop: kmock (the Kubernetes API emulator the e2e
tests use), kopf with litelong's handlers (as `tests/operator_harness.running_operator` starts
it), and the client applying resources. The resources are the BM25Index sample
(manifests/samples/bm25index.yaml) renamed bench-0000, bench-0001, ... in namespace `ml`.

Timed, per resource, from the moment its POST returns:

* operator: until the ADDED event of its Job (the name `render(owner_of(applied),
  load_config())[-1]` gives) arrives on a watch of Jobs this client keeps open, the way
  `kubectl wait` would see it. In between: kopf's watch event, the handler in kopf's thread
  pool, the reconcile (a fresh GET, the store check, render, POST ConfigMap, POST Job).
* peer: the same children without the operator: this client POSTs the rendered ConfigMap and
  Job and GETs the Job back (three round trips on a warm aiohttp session). Its resource is
  POSTed first, untimed, so the store holds as many objects as in the operator's phase.

Each is run at `--concurrency` (that many clients, each applying one resource and waiting for
its Job before the next) and, with `--burst`, with all resources POSTed at once. Every phase
starts from an empty kmock store (kmock scans all objects on every GET and LIST), and each
operator phase runs a fresh operator, warmed up on 3 resources that are not timed, and
starts once it is idle.
resources/s is resources divided by the phase's wall time (first POST to last Job seen).
The ratio is operator p50 / peer p50: what the watch → reconcile → create path adds.
"API requests / resource" counts every request kmock served in the phase (the resource's own
POST included), until the operator has been idle for a second after the last Job.

kmock is used as it is, except that it forgets each request once served (see `Emulator`: its
request log makes every request slower than the one before). kmock keeps the resourceVersion a
client sends, so kopf cannot tell its own patch's event from an older one and runs the create
handler a second time; `--resource-versions` stamps a new version on every write, as an API
server does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import yaml
from rich.console import Console
from rich.table import Table

from litelong_operator.config import load_config
from litelong_operator.render import owner_of, render

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `tests` is not installed; the harness lives there

from tests.operator_harness import (  # noqa: E402
    PLURAL,
    Cluster,
    path_of,
    register,
    running_operator,
    sample,
    write_kubeconfig,
)

console = Console(width=None if sys.stdout.isatty() else 160)
NAMESPACE = "ml"
WARMUP = 3
SETTLE_SECONDS = 120.0
COLUMNS = "run,resources,p50,p95,max,resources/s,API requests / resource,vs peer p50"
_uids = itertools.count(1)


# -- what went wrong, without drowning the table in kopf's log ----------------------------------


class Tally(logging.Handler):
    """Counts WARNING+ records by logger and message template; prints the first of each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[tuple[str, str]] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, str(record.msg)[:100])
        self.counts[key] += 1
        if self.counts[key] == 1:
            print(
                f"[{record.levelname} {record.name}] {record.getMessage()[:300]}", file=sys.stderr
            )


# -- kmock, minus its request log -----------------------------------------------------------------


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, forgetting each request once it is served; `served` counts them.

    kmock 0.8 keeps every request and, to route a new one, runs each reaction's filter over that
    whole log (`request in payload._source`): a request costs time in proportion to all the
    requests served before it (an empty GET: 5 ms after 50 requests, 15 ms after 300, on this
    machine), so a long run would time kmock's log, not the operator. Objects, watches and
    responses are kmock's own; only requests in flight stay in the log.
    """

    served: Counter[str]
    versions: itertools.count[int] | None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.served = Counter()
        self.versions = None

    async def _handle(self, request: Any) -> Any:
        if self.versions is not None and request.resource is not None:
            self._stamp(request)
        try:
            return await super()._handle(request)
        finally:
            self.served[request.method.value.upper()] += 1
            log = self._requests
            for index in range(len(log) - 1, -1, -1):
                if log[index] is request:
                    del log[index]
                    break

    def _stamp(self, request: Any) -> None:
        """A new resourceVersion on every write, as the API server gives (kmock keeps what the
        client sent). Called right before kmock takes its store lock, which is FIFO, so the
        versions follow the order of the writes."""
        assert self.versions is not None
        version = str(next(self.versions))
        writes = (kmock.action.CREATE, kmock.action.UPDATE)
        if request.action in writes and isinstance(request.data, dict):
            request.data.setdefault("metadata", {})["resourceVersion"] = version
        elif request.action == kmock.action.UPDATE and isinstance(request.data, list):
            op = {"op": "replace", "path": "/metadata/resourceVersion", "value": version}
            request.data.append(op)


# -- watching for Jobs ----------------------------------------------------------------------------


class JobWatch:
    """When each Job's first ADDED event arrived on a watch of Jobs in the namespace."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.seen: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JobWatch:
        connected = asyncio.Event()
        self.task = asyncio.create_task(self._run(connected))
        await asyncio.wait_for(connected.wait(), timeout=10)
        await asyncio.sleep(0.2)  # kmock subscribes to its bus after sending the headers
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self, connected: asyncio.Event) -> None:
        url = path_of("batch/v1", "jobs", NAMESPACE)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.session.get(url, params={"watch": "true"}, timeout=timeout) as response:
            connected.set()
            async for line in response.content:
                now = time.perf_counter()
                if not line.strip():
                    continue
                event = json.loads(line)
                name = event["object"]["metadata"]["name"]
                if event["type"] == "ADDED" and name not in self.seen:
                    self.seen[name] = now
                    waiter = self.waiters.get(name)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(now)

    async def wait(self, name: str, timeout: float) -> float:
        if name in self.seen:
            return self.seen[name]
        waiter = self.waiters.setdefault(name, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)


# -- one resource ---------------------------------------------------------------------------------


def document(name: str) -> dict[str, Any]:
    """The BM25Index sample under a new name, as Cluster.apply will POST it."""
    doc = copy.deepcopy(sample("bm25index"))
    doc["metadata"] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"bench-uid-{next(_uids)}",
        "resourceVersion": "1",
    }
    return doc


def children(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return render(owner_of(doc), load_config())


async def post(session: aiohttp.ClientSession, manifest: dict[str, Any]) -> None:
    url = path_of(manifest["apiVersion"], PLURAL[manifest["kind"]], NAMESPACE)
    async with session.post(url, json=manifest) as response:
        assert response.status < 300, await response.text()
        await response.read()


@dataclass
class Phase:
    label: str
    latencies: list[float] = field(default_factory=list)  # seconds, per resource
    watch_seen: list[float] = field(default_factory=list)  # peer only: Job seen on the watch
    failed: int = 0
    wall: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    resources: int = 0
    requests_before: Counter[str] = field(default_factory=Counter)


async def operator_one(cluster: Cluster, watch: JobWatch, name: str, timeout: float) -> float:
    """Apply; seconds from the POST returning to the Job's ADDED event on the watch."""
    doc = document(name)
    job = children(doc)[-1]["metadata"]["name"]  # before the POST: render takes ~ms of CPU
    applied = await cluster.apply(doc)
    started = time.perf_counter()
    seen = await watch.wait(job, timeout)
    assert children(applied)[-1]["metadata"]["name"] == job  # what the brief names it by
    return seen - started


async def peer_one(cluster: Cluster, watch: JobWatch, name: str) -> tuple[float, float]:
    """POST the resource (untimed), then its ConfigMap and Job, then GET the Job back."""
    doc = document(name)
    configmap, job = children(doc)
    await cluster.apply(doc)
    started = time.perf_counter()
    await post(cluster.session, configmap)
    await post(cluster.session, job)
    url = path_of("batch/v1", "jobs", NAMESPACE, job["metadata"]["name"])
    async with cluster.session.get(url) as response:
        assert response.status == 200, await response.text()
        await response.json()
    done = time.perf_counter()
    seen = await watch.wait(job["metadata"]["name"], 10)
    return done - started, seen - started


# -- phases ---------------------------------------------------------------------------------------


def clear(server: Emulator) -> None:
    """An empty store for the next phase (only while no operator is running)."""
    for key in list(server.objects):
        del server.objects[key]


async def run_phase(
    phase: Phase,
    server: Emulator,
    names: list[str],
    concurrency: int,
    one: Callable[[str], Awaitable[Any]],
) -> None:
    """`concurrency` clients take names in turn, one resource at a time; 0 = all at once."""
    queue = list(reversed(names))
    phase.requests_before = Counter(server.served)

    async def client() -> None:
        while queue:
            name = queue.pop()
            try:
                result = await one(name)
            except TimeoutError:
                phase.failed += 1
                continue
            if isinstance(result, tuple):
                phase.latencies.append(result[0])
                phase.watch_seen.append(result[1])
            else:
                phase.latencies.append(result)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency or len(names))))
    phase.wall = time.perf_counter() - started
    phase.resources = len(names)


def count_requests(phase: Phase, server: Emulator) -> None:
    """Requests kmock served since the phase began, by method (the operator's trailing status
    writes and Events included, so call this once they are done)."""
    phase.requests = Counter(server.served) - phase.requests_before


async def peer_phase(
    server: Emulator, args: argparse.Namespace, concurrency: int, label: str
) -> Phase:
    phase = Phase(label)
    async with aiohttp.ClientSession(base_url=str(server.url)) as session, JobWatch(session) as w:
        cluster = Cluster(server, session)
        for number in range(WARMUP):
            await peer_one(cluster, w, f"warmup-{number}")
        clear(server)
        names = [f"bench-{number:04d}" for number in range(args.resources)]
        await run_phase(phase, server, names, concurrency, lambda n: peer_one(cluster, w, n))
        count_requests(phase, server)
    clear(server)
    return phase


async def operator_phase(
    server: Emulator, args: argparse.Namespace, concurrency: int, label: str
) -> tuple[Phase, int]:
    """The phase, and how many Jobs differ from the rendered ones (checked after timing)."""
    phase = Phase(label)
    async with (
        aiohttp.ClientSession(base_url=str(server.url)) as session,
        running_operator(),
        JobWatch(session) as watch,
    ):
        cluster = Cluster(server, session)
        warmup = [f"warmup-{number}" for number in range(WARMUP)]
        for name in warmup:
            await operator_one(cluster, watch, name, args.timeout)
        await settle(server, set(warmup), SETTLE_SECONDS)  # the phase starts with kopf idle
        names = [f"bench-{number:04d}" for number in range(args.resources)]
        await run_phase(
            phase,
            server,
            names,
            concurrency,
            lambda n: operator_one(cluster, watch, n, args.timeout),
        )
        mismatched = 0
        for name in names:
            applied = cluster.get("BM25Index", name)
            assert applied is not None
            job = children(applied)[-1]
            found = copy.deepcopy(cluster.get("Job", job["metadata"]["name"]) or {})
            found.get("metadata", {}).pop("resourceVersion", None)  # --resource-versions
            if found != job:
                mismatched += 1
        # let status writes and Events finish before counting requests and stopping kopf
        await settle(server, set(names), SETTLE_SECONDS)
        count_requests(phase, server)
    clear(server)
    return phase, mismatched


async def settle(server: Emulator, names: set[str], timeout: float) -> None:
    """Untimed: wait until every resource has a status and kmock served nothing for 1 s (the
    operator's later reconciles, status writes and Events are done)."""
    deadline = time.perf_counter() + timeout
    served, quiet_since = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        now, total = time.perf_counter(), sum(server.served.values())
        if total != served:
            served, quiet_since = total, now
            continue
        if now - quiet_since < 1.0:
            continue
        done = {
            name
            for (resource, _, name), obj in server.objects.items()
            if resource.plural == "bm25indexes" and not obj.deleted and obj.raw.get("status")
        }
        if names <= done:
            return
    console.print(f"the operator was still busy {timeout} s after the last Job appeared")


# -- figures --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def add_row(table: Table, phase: Phase, peer: Phase | None) -> None:
    p50 = percentile(phase.latencies, 0.5)
    ratio = "1.00x" if peer is None else f"{p50 / percentile(peer.latencies, 0.5):.1f}x"
    per_resource = sum(phase.requests.values()) / max(phase.resources, 1)
    table.add_row(
        phase.label,
        f"{len(phase.latencies)}" + (f" ({phase.failed} timed out)" if phase.failed else ""),
        ms(p50),
        ms(percentile(phase.latencies, 0.95)),
        ms(max(phase.latencies, default=float("nan"))),
        f"{len(phase.latencies) / phase.wall:,.1f}",
        f"{per_resource:.1f}",
        ratio,
    )


def setup_environment(scratch: Path, url: str) -> None:
    """What the operator reads: its handlers at import, the rest when it starts."""
    config = scratch / "operator.yaml"
    config.write_text(yaml.safe_dump({"store": {"uri": f"file://{scratch / 'store'}"}}))
    os.environ["KUBECONFIG"] = str(write_kubeconfig(scratch / "kubeconfig", url))
    os.environ["LITELONG_OPERATOR_CONFIG"] = str(config)
    os.environ["LITELONG_METRICS_PORT"] = "0"
    os.environ["LITELONG_RESYNC_SECONDS"] = "600"  # the resync timer must not fire


async def bench(args: argparse.Namespace) -> tuple[list[tuple[Phase, Phase]], list[int]]:
    modes = [(args.concurrency, f"concurrency {args.concurrency}")]
    if args.burst:
        modes.append((0, f"burst of {args.resources}"))
    pairs, mismatches = [], []
    with tempfile.TemporaryDirectory(prefix="litelong-bench-operator-") as scratch:
        async with Emulator() as server, kmock.Server(server):
            register(server)
            if args.resource_versions:
                server.versions = itertools.count(2)
            setup_environment(Path(scratch), str(server.url))
            for concurrency, mode in modes:
                peer = await peer_phase(server, args, concurrency, f"peer, {mode}")
                console.print(f"{peer.label}: {peer.wall:.1f} s")
                operator, mismatched = await operator_phase(
                    server, args, concurrency, f"operator, {mode}"
                )
                console.print(f"{operator.label}: {operator.wall:.1f} s")
                pairs.append((peer, operator))
                mismatches.append(mismatched)
    return pairs, mismatches


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=200, help="BM25Indexes per phase")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="clients applying at once, each waiting for its Job before the next",
    )
    parser.add_argument(
        "--burst", action="store_true", help="also run every resource POSTed at once"
    )
    parser.add_argument(
        "--resource-versions",
        action="store_true",
        help="give every write a new resourceVersion, as an API server does (kmock does not)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for one resource's Job"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tally = Tally()
    logging.basicConfig(level=logging.WARNING, handlers=[tally])
    command = shlex.join(["python", "bench/operator.py", *sys.argv[1:]])
    console.print(f"$ {command}   ({os.cpu_count()} cores, kmock {kmock_version()})")
    started = time.perf_counter()
    pairs, mismatches = asyncio.run(bench(args))
    title = (
        f"From the POST of a BM25Index returning to its Job existing (ms); "
        f"{args.resources} resources per row"
    )
    table = Table(title=title, title_justify="left")
    for column in COLUMNS.split(","):
        table.add_column(column, justify="left" if column == "run" else "right")
    for peer, operator in pairs:
        add_row(table, peer, None)
        add_row(table, operator, peer)
    console.print(table)
    for peer, operator in pairs:
        console.print(
            f"{peer.label.removeprefix('peer, ')}: the peer's Job reached the watch after "
            f"{ms(percentile(peer.watch_seen, 0.5))} ms p50 "
            f"(its GET came back after {ms(percentile(peer.latencies, 0.5))} ms). "
            f"API requests by method: operator {dict(sorted(operator.requests.items()))}, "
            f"peer {dict(sorted(peer.requests.items()))}"
        )
    console.print(f"Jobs differing from the rendered ones: {mismatches}")
    if tally.counts:
        console.print("warnings and errors logged (count, logger, message):")
        for (logger, message), count in tally.counts.most_common():
            console.print(f"  {count:5d}  {logger}  {message!r}")
    console.print(f"total {time.perf_counter() - started:.1f} s")


def kmock_version() -> str:
    from importlib.metadata import version

    return version("kmock")


if __name__ == "__main__":
    main()
