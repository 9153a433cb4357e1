"""The shards of one resource in worker processes, at most `jobs` at a time, one progress bar.

`litelong run` builds a resource's `parallelism` shards here when it may use several
processes; each worker calls the same `run_shard` a pod calls, so parts commit (and the last one
commits the artifact) exactly as in a cluster. Workers are spawned, never forked: tantivy and
tokenizers hold threads a fork would copy half-alive. Each worker gets a fair share of the cores
for the threads it starts itself (tokenizers' rayon pool, tantivy's writer), so N workers on C
cores run about C threads, not N times C.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .cores import set_thread_share, usable_cores
from .progress import Progress

JOBS_ENV = "LITELONG_JOBS"
#: env vars a worker sets to its share of the cores, unless the user set them
_THREAD_ENVS = ("RAYON_NUM_THREADS", "OMP_NUM_THREADS")
_POLL_SECONDS = 0.5
_TERMINATE_SECONDS = 5.0


class InvalidJobs(ValueError):
    """--jobs or $LITELONG_JOBS is not a whole number ≥ 1."""


class ShardFailed(RuntimeError):
    """A worker died, or raised an error that cannot be carried back as itself."""


def parse_jobs(flag: str | None, env: Mapping[str, str]) -> int:
    """--jobs, else $LITELONG_JOBS, else the usable cores; a bad value is one clear line."""
    value, source = (flag, "--jobs") if flag is not None else (env.get(JOBS_ENV), JOBS_ENV)
    if value is None or value.strip() == "":
        return usable_cores()
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1 or str(jobs) != value.strip():
        raise InvalidJobs(f"{source} must be a whole number of processes ≥ 1, not {value!r}")
    return jobs


@dataclass
class ShardDone:
    """What a worker sends back for one built (or skipped) shard; the parent remakes the
    ShardResult around its own Artifact."""

    shard: int
    outcome: Any  # stages.ShardOutcome
    manifest: Any  # store.Manifest | None
    notes: dict[str, str]


RunShard = Callable[..., Any]  # stages.run_shard's signature


def run_shards(
    resource: Any,
    store_uri: str,
    of: int,
    jobs: int,
    progress: Progress,
    run: RunShard | None = None,
    shards: Sequence[int] | None = None,
) -> Generator[ShardDone, None, None]:
    """Build `shards` (all of 0..of-1 by default) in at most `jobs` spawned workers; yield
    each as it finishes.

    A worker's error is raised here as itself (EmptyOutput, InvalidCorpus...), after the other
    workers are stopped; so are Ctrl-C and leaving the loop early. Committed parts stay, and a
    rerun skips them. `run` replaces `stages.run_shard` (it must be importable by name).
    """
    todo = list(range(of) if shards is None else shards)
    workers = max(1, min(jobs, len(todo)))
    share = max(1, usable_cores() // workers)
    context = multiprocessing.get_context("spawn")
    tasks: Any = context.Queue()
    events: Any = context.Queue()
    for shard in todo:
        tasks.put(shard)
    for _ in range(workers):
        tasks.put(None)
    building = context.Array("i", [-1] * workers, lock=False)  # shard per worker, -1: none
    processes = [
        context.Process(
            target=_worker,
            args=(resource, store_uri, of, share, tasks, events, building, index, run),
            name=f"litelong-shard-worker-{index}",
            daemon=True,
        )
        for index in range(workers)
    ]
    try:
        with _sigint_ignored():  # inherited through exec: workers never see Ctrl-C
            for process in processes:
                process.start()
        yield from _collect(processes, building, events, len(todo), progress)
    finally:
        _stop(processes)
        for channel in (tasks, events):
            channel.cancel_join_thread()
            channel.close()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while workers start (the parent stops them on Ctrl-C, and the spawned
    interpreter keeps an ignored SIGINT ignored); a no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _collect(
    processes: list[Any], building: Any, events: Any, count: int, progress: Progress
) -> Iterator[ShardDone]:
    """Feed the parent's progress from the workers' events; yield the `count` finished
    shards."""
    finished = 0
    while finished < count:
        try:
            event = events.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if (gone := _gone(processes, building)) is None:
                continue
            event = _last_event(events)  # a worker's own error, sent before it exited
            if event is None:
                raise gone from None
        kind, *rest = event
        if kind == "advance":
            progress.advance(*rest)
        elif kind == "start":
            progress.start(*rest)
        elif kind == "log":
            progress.log(*rest)
        elif kind == "done":
            finished += 1
            yield rest[0]
        elif kind == "failed":
            raise _revived(*rest)


def _gone(processes: list[Any], building: Any) -> ShardFailed | None:
    """A worker that died (killed for memory, say) fails the run instead of hanging it."""
    for index, process in enumerate(processes):
        if process.exitcode is not None and (process.exitcode != 0 or building[index] >= 0):
            shard = building[index]
            where = f"shard {shard}" if shard >= 0 else "a shard"
            return ShardFailed(
                f"the worker process building {where} died with exit code "
                f"{process.exitcode} (out of memory? try fewer --jobs)"
            )
    if all(process.exitcode is not None for process in processes):
        return ShardFailed("every worker process exited before all shards were built")
    return None


def _last_event(events: Any) -> Any:
    try:
        return events.get(timeout=_POLL_SECONDS)
    except queue.Empty:
        return None


def _revived(shard: int, payload: bytes | None, message: str, remote: str) -> BaseException:
    """The worker's exception as itself (else its message), its traceback kept as the cause."""
    error: BaseException | None = None
    if payload is not None:
        try:
            error = pickle.loads(payload)
        except Exception:  # reported by its message below
            error = None
    if error is None:
        error = ShardFailed(f"shard {shard}: {message}")
    error.__cause__ = _RemoteTraceback(remote)
    return error


class _RemoteTraceback(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _stop(processes: list[Any]) -> None:
    """Terminate workers still running (they leave only staging debris, swept on commit)."""
    started = [process for process in processes if process.pid is not None]
    for process in started:
        if process.exitcode is None:
            process.terminate()
    for process in started:
        process.join(_TERMINATE_SECONDS)
        if process.exitcode is None:
            process.kill()
            process.join()


class _QueueProgress:
    """A worker's Progress: every call goes to the parent, which shows one bar."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def start(self, total: int | None, unit: str) -> None:
        self._events.put(("start", total, unit))

    def advance(self, items: int, nbytes: int = 0) -> None:
        self._events.put(("advance", items, nbytes))

    def log(self, message: str) -> None:
        self._events.put(("log", message))


def _worker(
    resource: Any,
    store_uri: str,
    of: int,
    share: int,
    tasks: Any,
    events: Any,
    building: Any,
    index: int,
    run: RunShard | None,
) -> None:
    """Build shards from `tasks` until a None; report everything through `events`."""
    set_thread_share(share)  # tantivy's writer threads (index/stage.py)
    for name in _THREAD_ENVS:  # before tokenizers' pool starts: rayon reads it once
        os.environ.setdefault(name, str(share))
    from .stages import run_shard
    from .store import ArtifactStore

    build = run or run_shard
    store = ArtifactStore(store_uri)
    progress = _QueueProgress(events)
    while (shard := tasks.get()) is not None:
        building[index] = shard  # shared memory: the parent sees it even if this dies
        try:
            result = build(resource, store, shard, of, progress)
        except Exception as error:  # carried to the parent, raised there
            building[index] = -1
            message = f"{type(error).__name__}: {error}"
            events.put(("failed", shard, _pickled(error), message, traceback.format_exc()))
            return
        building[index] = -1
        events.put(("done", ShardDone(shard, result.outcome, result.manifest, dict(result.notes))))


def _pickled(error: BaseException) -> bytes | None:
    """The exception as bytes the parent can load back, or None when it cannot travel."""
    try:
        payload = pickle.dumps(error)
        pickle.loads(payload)
    except Exception:  # it cannot travel: the parent reports its message
        return None
    return payload
