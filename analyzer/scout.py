"""The reader's record scout: a helper process that follows the chain of classic pcap
record headers (the one per-record loop of reading numpy cannot do) while the main
thread decodes, on the second core.

    scout = start(fh, size, first_record_offset, byte_order)   # None: walk it yourself
    scout.starts(pos, end)   # record starts for the chunk [pos, end), or None on failure
    scout.close()            # always; ends and reaps the process

The helper is scout_child.py (standard library only, started with -I -S on the reader's
inherited descriptor); it streams caplen-field offsets through a pipe.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Classic pcap files of at least SCOUT_MIN_BYTES have their record chain followed by a
# helper process (scout_child.py) while this one decodes: the per-record loop is the one
# part of reading that numpy cannot do, and it then runs on the second core. Smaller
# files are not worth starting a process for (about 10 ms for `python -I -S`, measured
# here, plus the pipe round trips). SCOUT = False turns it off.
SCOUT = True
SCOUT_MIN_BYTES = 64 * 2**20
SCOUT_PIPE_BYTES = 2**20  # pipe capacity asked for (Linux F_SETPIPE_SZ), best effort
_F_SETPIPE_SZ = 1031  # <fcntl.h>
SCOUT_CHILD = Path(__file__).with_name("scout_child.py")


class Scout:
    """Record starts of a mapped classic pcap, found by the scout_child.py process.

    starts(pos, end) answers what Capture._walk_pcap(buf, pos, end) would: the starts of
    the records whose caplen field lies before `end`, from the one at `pos` on, plus the
    first start whose caplen field does not. None means the helper failed (it died, or
    its chain does not pass through `pos`); the caller then walks the chain itself."""

    def __init__(self, fd: int, start: int, order: str) -> None:
        import fcntl  # POSIX only, like the helper itself (see start)

        argv = [sys.executable, "-I", "-S", str(SCOUT_CHILD), str(fd), str(start), order]
        # The helper's stderr goes nowhere: should it fail, the main thread carries on
        # alone, and the user sees no traceback that is not about their capture.
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
        )
        assert self._proc.stdout is not None
        self._pipe = self._proc.stdout.fileno()
        try:
            fcntl.fcntl(self._pipe, _F_SETPIPE_SZ, SCOUT_PIPE_BYTES)
        except OSError:
            pass  # the default capacity works, with less read-ahead
        self._pending = np.empty(0, dtype=np.int64)  # starts not yet consumed
        self._partial = b""  # bytes of an int64 cut by a read
        self._eof = False

    def starts(self, pos: int, end: int) -> np.ndarray | None:
        pending = self._pending
        pending = pending[np.searchsorted(pending, pos) :]
        while not self._eof and (pending.size == 0 or pending[-1] + 12 <= end):
            pending = np.concatenate([pending, self._read()])
        self._pending = pending
        if pending.size == 0 or pending[0] != pos or pending[-1] + 12 <= end:
            return None
        k = int(np.searchsorted(pending, end - 12, side="right"))
        return pending[: k + 1]

    def _read(self) -> np.ndarray:
        data = self._partial + os.read(self._pipe, SCOUT_PIPE_BYTES)
        if len(data) == len(self._partial):
            self._eof = True
        whole = len(data) // 8 * 8
        self._partial = data[whole:]
        return np.frombuffer(data[:whole], dtype=np.int64) - 8

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        assert self._proc.stdout is not None
        self._proc.stdout.close()
        self._proc.wait()


def start(fh: BinaryIO | None, size: int, first: int, order: str) -> Scout | None:
    """A Scout for the classic pcap `fh` (`size` bytes, first record at `first`), or None
    where none should or can run: the reader then walks the chain itself."""
    if not SCOUT or fh is None or size < SCOUT_MIN_BYTES or not sys.platform.startswith("linux"):
        return None
    if not sys.executable:  # an embedding interpreter that cannot start another one
        return None
    try:
        return Scout(fh.fileno(), first, order)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None  # no helper: the main thread walks the chain itself
