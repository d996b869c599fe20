"""SIGINT and SIGTERM during a batch run: stop, put the dataset back in order, exit 130.

While `run()` works (in the main thread), both signals raise `Interrupted` (a
KeyboardInterrupt) where the driver is, except inside `deferred()` sections, which
finish first: committing a capture (files renamed, then its manifest row), marking
rows in_progress, starting or closing the local cluster. The run then restores the
rows of the captures it had not finished, removes their files, and re-raises; the
next run analyses them. A library that catches the KeyboardInterrupt and raises its own
error instead (pyarrow does, when the signal lands in one of its lazy imports) does not
turn the stop into an internal error: once a signal was received, any exception leaving
a `Signals` block becomes `Interrupted` (see `stopped_by`). Local workers ignore SIGINT
(a Ctrl-C reaches the whole process group; runner._preload_forkserver): the driver alone
decides, and stops them when it closes the cluster.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A batch run stopped by a signal; str() is the line the command prints."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(
            f"{signal_name} received: stopped; finished captures are recorded, "
            "the next run does the rest"
        )
        self.signal = signal_name


class Signals:
    """SIGINT/SIGTERM handlers for the duration of a run (main thread only; elsewhere
    nothing is installed and a KeyboardInterrupt is handled the same way)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._depth = 0
        self._pending = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        if (stop := self.stopped_by(exc)) is not None and stop is not exc:
            raise stop from exc

    def stopped_by(self, exc: BaseException | None) -> KeyboardInterrupt | None:
        """What `exc` means once the run is stopping: itself for a KeyboardInterrupt,
        `Interrupted` for any other error raised after a signal arrived (the interrupt,
        swallowed and re-raised as something else by the code it landed in), else None
        (a real error: it goes on as it is)."""
        if isinstance(exc, KeyboardInterrupt):
            return exc
        if exc is not None and self.received is not None:
            return Interrupted(self.received)
        return None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
        if self._depth:
            self._pending = True
            return
        raise Interrupted(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A section a signal does not cut: it is raised when the section ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                self._pending = False
                raise Interrupted(self.received or "SIGINT")
