"""Where the captures run: in the driver (--workers 1), in N local worker processes
(--workers N, a Dask LocalCluster on loopback), or on an existing Dask distributed
cluster (--scheduler tcp://HOST:PORT). One code path: the driver submits worker.process
for every Task and handles Outcomes as they complete, whichever runner it has.

Dask reschedules the task of a worker that died (killed, out of memory) on another
worker; a capture that kills `allowed-failures` workers in a row (Dask's default 3)
comes back as `failed` with that said, and the others carry on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from ..errors import UsageError
from .worker import Outcome, Task, process

SCHEDULER_TIMEOUT_S = 10  # connecting to --scheduler: long enough for a busy scheduler
# --workers N: Dask settings of the LocalCluster (measured in benchmarks/bench_batch.py)
LOCAL_CONFIG = {
    "distributed.worker.multiprocessing-method": "forkserver",  # see _preloaded_forkserver
    "distributed.worker.profile.enabled": False,  # a stack sample every 10 ms takes the GIL
}
# What the forkserver imports before it forks a worker: Dask and all a capture needs.
FORKSERVER_PRELOAD = (
    "distributed",
    "analyzer.batch.worker",
    "analyzer.pipeline",
    "analyzer.output",
    "analyzer.site",
    "analyzer.zeeklog",
)


class Runner(Protocol):
    def submit(self, task: Task) -> Any: ...

    def completed(self, futures: Iterable[Any]) -> Iterator[tuple[Task, Outcome]]: ...

    def describe(self) -> str: ...


class InProcess:
    """--workers 1: each capture is analysed in the driver process, in order."""

    def submit(self, task: Task) -> Task:
        return task

    def completed(self, futures: Iterable[Any]) -> Iterator[tuple[Task, Outcome]]:
        for task in futures:
            yield task, process(task)

    def describe(self) -> str:
        return "in the driver process"


class DaskRunner:
    """Dask futures on a distributed Client (a LocalCluster or a remote scheduler)."""

    def __init__(self, client: Any, what: str) -> None:
        self._client = client
        self._what = what
        self._tasks: dict[str, Task] = {}

    def submit(self, task: Task) -> Any:
        future = self._client.submit(process, task, pure=False)
        self._tasks[future.key] = task
        return future

    def completed(self, futures: Iterable[Any]) -> Iterator[tuple[Task, Outcome]]:
        from distributed import as_completed

        for future in as_completed(list(futures)):
            task = self._tasks.pop(future.key)
            yield task, _outcome(future, task)
            future.release()

    def describe(self) -> str:
        return self._what


def _outcome(future: Any, task: Task) -> Outcome:
    from distributed import KilledWorker

    try:
        outcome: Outcome = future.result()
        return outcome
    except KilledWorker:
        why = "the worker analysing it died each time it was tried (killed or out of memory)"
    except Exception as exc:  # noqa: BLE001 - cancelled, lost scheduler, unpicklable, ...
        why = f"the Dask cluster could not run it ({type(exc).__name__}: {exc})"
    return Outcome(task.path, "failed", f"{task.path}: {why}")


@contextlib.contextmanager
def open_runner(*, workers: int, scheduler: str | None) -> Iterator[Runner]:
    """The runner for the options: a remote scheduler, N local processes, or in-process."""
    if scheduler is None and workers <= 1:
        yield InProcess()
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(
                f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc}); "
                "start one with `dask scheduler` and workers with `dask worker ADDRESS`"
            ) from None
        with client:
            yield DaskRunner(client, f"on the Dask cluster at {scheduler}")
        return
    import dask

    with (
        dask.config.set(LOCAL_CONFIG),  # for the whole run: a restarted worker forks too
        _preloaded_forkserver(),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # one capture per process: the GIL-bound parts run in parallel
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield DaskRunner(client, f"in {workers} local worker processes")


@contextlib.contextmanager
def _preloaded_forkserver() -> Iterator[None]:
    """Local workers fork from one server process that imported the analyzer once.

    Spawned workers (Dask's default) each start a fresh interpreter and import Dask,
    numpy, pandas, pyarrow, numba and the analyzer before their first capture: about
    2 s of CPU per worker, on the cores the captures need. A forkserver pays that once,
    in a process started from a clean state (exec: no inherited dataset lock, manifest
    connection or driver thread), and every worker, a restarted one too, is a fork of it.
    """
    from distributed.utils import get_mp_context

    ctx = get_mp_context()  # Dask's forkserver context; its own preload list set once
    if hasattr(ctx, "set_forkserver_preload"):
        ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    yield
