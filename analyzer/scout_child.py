"""The helper process of reader's record scout: follows the chain of classic pcap record
headers through a memory-mapped file and writes, for every record, the offset of its
caplen field (record start + 8) to stdout as native int64, in file order.

    python -I -S scout_child.py FD START ORDER

FD is an open descriptor of the capture (inherited, so the helper reads the very file
the reader mapped), START the offset of the first record, ORDER "<" or ">". The last
offset written is the first one whose caplen field lies beyond the end of the file, as
in reader's own loop. Standard library only: started without site-packages it is
running within milliseconds. The reader decides what the offsets mean (cut-short and
corrupt records); a reader that stops early closes the pipe, which ends this process.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
from array import array
from itertools import repeat

REGION_BYTES = 4 * 2**20  # scanned per pass; its offsets are written in one go
DROP_STEP_BYTES = 16 * 2**20  # pages behind the scan are dropped from this process


def scan(fd: int, start: int, order: str, out_fd: int) -> None:
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    size = len(mm)
    whole = memoryview(mm)
    unpack = struct.Struct(order + "I").unpack_from
    q = start + 8
    dropped = 0
    while True:
        hi = min(q - 8 + REGION_BYTES, size)
        mv = whole[:hi]
        qs: list[int] = []
        append = qs.append
        try:
            for _ in repeat(None):  # the same loop as reader.Capture._walk_pcap
                append(q)
                (c,) = unpack(mv, q)
                q += 16 + c
        except struct.error:
            pass
        mv.release()
        last = hi == size
        if not last:
            q = qs.pop()  # unreadable within this region: the next region starts there
        _write_all(out_fd, array("q", qs).tobytes())
        if last:
            return
        low = (q - 8) // mmap.PAGESIZE * mmap.PAGESIZE
        if low - dropped >= DROP_STEP_BYTES and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED, dropped, low - dropped)
            dropped = low


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the reader stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, start, order = int(argv[1]), int(argv[2]), argv[3]
    try:
        scan(fd, start, order, sys.stdout.fileno())
    except BrokenPipeError:  # the reader has what it needs (or gave up): not an error
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
