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
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from ..errors import UsageError
from .worker import PROGRESS_TOPIC, Outcome, Report, Task, process

SCHEDULER_TIMEOUT_S = 10  # connecting to --scheduler: long enough for a busy scheduler
# --workers N: Dask settings of the LocalCluster (measured in benchmarks/bench_batch.py)
LOCAL_CONFIG = {
    "distributed.worker.multiprocessing-method": "forkserver",  # see _preload_forkserver
    "distributed.worker.profile.enabled": False,  # a stack sample every 10 ms takes the GIL
}
# What the forkserver imports before it forks a worker: Dask and all a capture needs.
# analyzer.batch_sigint first (light): SIGINT ignored before the long imports.
FORKSERVER_PRELOAD = ("analyzer.batch_sigint", "distributed", "analyzer.batch.forkserver")


Shield = Callable[[], contextlib.AbstractContextManager[None]]  # interrupt.Signals.deferred


class Runner(Protocol):
    def submit(self, task: Task) -> Any: ...

    def completed(self, futures: Iterable[Any]) -> Iterator[tuple[Task, Outcome]]: ...

    def describe(self) -> str: ...


class InProcess:
    """--workers 1: each capture is analysed in the driver process, in order."""

    def __init__(self, report: Report | None = None) -> None:
        self._report = report

    def submit(self, task: Task) -> Task:
        return task

    def completed(self, futures: Iterable[Any]) -> Iterator[tuple[Task, Outcome]]:
        for task in futures:
            yield task, process(task, self._report)

    def describe(self) -> str:
        return "in the driver process"


class DaskRunner:
    """Dask futures on a distributed Client (a LocalCluster or a remote scheduler)."""

    def __init__(self, client: Any, what: str, shield: Shield = contextlib.nullcontext) -> None:
        self._client = client
        self._what = what
        self._shield = shield
        self._tasks: dict[str, Task] = {}

    def submit(self, task: Task) -> Any:
        future = self._client.submit(process, task, pure=False)
        self._tasks[future.key] = task
        return future

    def completed(self, futures: Iterable[Any]) -> Iterator[tuple[Task, Outcome]]:
        from distributed import as_completed

        for future in as_completed(list(futures)):  # a signal may cut this wait
            with self._shield():  # not Dask's own blocking calls (result(): sync)
                task = self._tasks.pop(future.key)
                outcome = _outcome(future, task)
                future.release()
            yield task, outcome

    def subscribe(self, report: Report) -> None:
        """Pass the workers' progress events to report (called in the client's thread)."""

        def handler(event: tuple[float, list[Any]]) -> None:
            path, done = event[1]
            report(str(path), int(done))

        self._client.subscribe_topic(PROGRESS_TOPIC, handler)

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
def open_runner(
    *,
    workers: int,
    scheduler: str | None,
    shield: Shield = contextlib.nullcontext,
    report: Report | None = None,
) -> Iterator[Runner]:
    """The runner for the options: a remote scheduler, N local processes, or in-process.
    Starting and closing happen inside shield() (batch/interrupt.py: a signal waits for
    them), so an interrupted run never leaves a half-started cluster or a live worker."""
    if scheduler is None and workers <= 1:
        yield InProcess(report)
        return
    stack = contextlib.ExitStack()
    try:
        with shield():
            runner = _start(stack, workers=workers, scheduler=scheduler, shield=shield)
            if report is not None:  # the workers' progress events (worker._progress)
                runner.subscribe(report)
        yield runner
    finally:
        with shield():
            stack.close()


def _start(
    stack: contextlib.ExitStack, *, workers: int, scheduler: str | None, shield: Shield
) -> DaskRunner:
    if scheduler is not None:
        from distributed import Client

        try:
            client = stack.enter_context(Client(scheduler, timeout=SCHEDULER_TIMEOUT_S))
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(
                f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc}); "
                "start one with `dask scheduler` and workers with `dask worker ADDRESS`"
            ) from None
        return DaskRunner(client, f"on the Dask cluster at {scheduler}", shield)
    _start_forkserver()  # its imports and warm-up overlap the driver's Dask start
    import dask
    from distributed import Client, LocalCluster

    stack.enter_context(dask.config.set(LOCAL_CONFIG))  # the whole run: restarts fork too
    _preload_forkserver()
    cluster = stack.enter_context(
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # one capture per process: the GIL-bound parts run in parallel
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # no dashboard; its HTTP routes on a free port, not 8787 (a warning if taken)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
    )
    client = stack.enter_context(Client(cluster))
    return DaskRunner(client, f"in {workers} local worker processes", shield)


def _start_forkserver() -> None:
    """Start the forkserver now, with the preload, before the driver imports Dask and
    starts the scheduler: the server's imports and warm-up (batch/forkserver.py) run on
    the other core meanwhile, and the first worker forks from a ready server."""
    import multiprocessing
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))
    multiprocessing.forkserver.ensure_running()


def _preload_forkserver() -> None:
    """Local workers fork from one server process that imported the analyzer once.

    Spawned workers (Dask's default) each start a fresh interpreter and import Dask,
    numpy, pandas, pyarrow, numba and the analyzer before their first capture: about
    2 s of CPU per worker, on the cores the captures need. A forkserver pays that once,
    in a process started from a clean state (exec: no inherited dataset lock, manifest
    connection or driver thread), and every worker, a restarted one too, is a fork of it.
    """
    from distributed.utils import get_mp_context

    ctx = get_mp_context()  # Dask's forkserver context; its own preload list set once
    if not hasattr(ctx, "set_forkserver_preload"):
        return
    ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
