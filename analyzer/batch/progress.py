"""Progress of a batch run on stderr, only when stderr is a terminal: captures done of
total, bytes done of total with an ETA, packets per second, failures so far."""

from __future__ import annotations

import sys
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

    def update(self, outcome: Outcome, size: int) -> None:
        self.done += 1
        self.failed += outcome.status == "failed"
        self.packets += outcome.packets or 0
        if self._bar is not None:
            self._bar.update(size)
            self._show()

    def _show(self) -> None:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.packets / elapsed
        self._bar.set_postfix_str(
            f"captures {self.done}/{self.captures}, {rate:,.0f} pkts/s, failures {self.failed}",
            refresh=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
