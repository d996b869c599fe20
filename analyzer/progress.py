"""Progress of one analysis on a terminal's stderr: nothing at all anywhere else.

While reading a file: percentage of the file's bytes, bytes done of the total, packets,
packets/s, elapsed time and ETA. For a gzip file the total is the uncompressed size its
trailer records (when the trailer's figure is plausible). Standard input has no total:
packets, packets/s and elapsed, redrawn every half second so a quiet live capture still
shows the clock running. Then one line per later stage ("classifying 20,000
connections..."). Every line is redrawn in place and wiped when the analysis ends, so
the summary on stdout and the warnings below stay clean.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .pipeline import Progress

REDRAW_S = 0.5  # how often the line is redrawn while nothing new arrives
GZIP_TRAILER = 8  # CRC32 + ISIZE (RFC 1952)
CLEAR = "\r\x1b[K"


def gzip_isize(path: Path) -> int | None:
    """The uncompressed size a single-member gzip file records in its last 4 bytes
    (modulo 2^32); None when the file cannot be read that way."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() < 18 + GZIP_TRAILER:
                return None
            fh.seek(-4, os.SEEK_END)
            (isize,) = struct.unpack("<I", fh.read(4))
    except OSError:
        return None
    return int(isize) or None


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"  # unreachable


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class TerminalProgress:
    """A callable for pipeline.analyze(progress=...); close() wipes the line."""

    def __init__(self, capture: str, *, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._name = "<stdin>" if capture == "-" else Path(capture).name
        self._path = None if capture == "-" else Path(capture)
        self._total: int | None = None
        self._start = time.monotonic()
        self._last: Progress | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="pcapclass-progress", daemon=True)
        self._ticker.start()

    def __call__(self, p: Progress) -> None:
        with self._lock:
            if self._last is None and self._path is not None:
                self._total = self._find_total(p.format)
            self._last = p
            self._draw()

    def _find_total(self, fmt: str) -> int | None:
        assert self._path is not None
        if fmt.startswith("gzip+"):
            return gzip_isize(self._path)
        try:
            return self._path.stat().st_size
        except OSError:
            return None

    def _tick(self) -> None:
        while not self._done.wait(REDRAW_S):
            with self._lock:
                if not self._done.is_set():
                    self._draw()

    def line(self) -> str:
        """The current status text (without the terminal control characters)."""
        p = self._last
        elapsed = time.monotonic() - self._start
        if p is None:
            return f"reading {self._name}: waiting for the first packets, elapsed {_clock(elapsed)}"
        if p.stage == "connections":
            return f"building connections from {p.packets:,} packets..."
        if p.stage == "classifying":
            return f"classifying {p.connections or 0:,} connections..."
        if p.stage == "writing":
            return f"writing {p.connections or 0:,} flows..."
        rate = p.packets / elapsed if elapsed > 0 else 0.0
        parts = [f"{p.packets:,} packets", f"{rate:,.0f} packets/s", f"elapsed {_clock(elapsed)}"]
        total = self._total
        if total is not None and 0 < p.stream_bytes <= total:
            frac = p.stream_bytes / total
            eta = elapsed * (1 - frac) / frac
            head = f"{frac:4.0%} {_size(p.stream_bytes)} of {_size(total)}"
            parts = [head, *parts, f"ETA {_clock(eta)}"]
        return f"reading {self._name}: " + ", ".join(parts)

    def _draw(self) -> None:
        text = self.line()[: max(terminal_width(self._stream) - 1, 10)]
        try:
            self._stream.write(CLEAR + text)
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self._done.set()
        with self._lock:
            try:
                self._stream.write(CLEAR)
                self._stream.flush()
            except (OSError, ValueError):
                pass


def terminal_width(stream: TextIO) -> int:
    """COLUMNS when set (as shutil.get_terminal_size), else the terminal's width; 80
    where neither says (a pseudo-terminal without a window size reports 0)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
    return columns if columns > 0 else 80


def for_terminal(capture: str) -> TerminalProgress | None:
    """A progress display when stderr is a terminal, else None (no output at all)."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return TerminalProgress(capture) if tty else None
