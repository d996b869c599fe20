"""Progress of a batch run on stderr, only when stderr is a terminal: captures done of
total, bytes done of total with an ETA, packets per second, failures so far. The bytes
move while a capture is read (worker.Report, from the driver or the Dask workers'
events), not only when it is done."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from .worker import Outcome


class Progress:
    """A tqdm bar over the bytes of the captures to analyse; silent when not a terminal."""

    def __init__(self, captures: int, total_bytes: int, *, enabled: bool | None = None) -> None:
        self.captures = captures
        self.done = 0
        self.failed = 0
        self.packets = 0
        self._start = time.monotonic()
        self._bar: Any = None
        self._reading: dict[str, int] = {}  # capture being read -> bytes read so far
        self._finished = 0  # bytes of the captures done
        self._lock = threading.Lock()  # Dask workers' reports arrive in another thread
        if enabled is None:
            enabled = sys.stderr.isatty()
        if enabled and captures:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=False,
                desc="batch",
            )
            self._show()

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def advance(self, path: str, done: int) -> None:
        """A capture still being read has read `done` bytes of its file."""
        with self._lock:
            if self._bar is None:
                return
            self._reading[path] = max(done, self._reading.get(path, 0))
            self._move()

    def update(self, outcome: Outcome, size: int) -> None:
        with self._lock:
            self.done += 1
            self.failed += outcome.status == "failed"
            self.packets += outcome.packets or 0
            self._reading.pop(outcome.path, None)
            self._finished += size
            if self._bar is not None:
                self._move()
                self._show()

    def _move(self) -> None:
        n = self._finished + sum(self._reading.values())
        self._bar.update(min(n, self._bar.total) - self._bar.n)

    def _show(self) -> None:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.packets / elapsed
        self._bar.set_postfix_str(
            f"captures {self.done}/{self.captures}, {rate:,.0f} pkts/s, failures {self.failed}",
            refresh=True,
        )

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
