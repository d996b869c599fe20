"""What the forkserver of `--workers N` imports before it forks the local workers.

Every worker is a fork of that process (runner._preload_forkserver), so it starts with
Dask, numpy, pandas, pyarrow, numba and the analyzer imported, the numba kernels of
classic pcap and pcapng loaded from their cache (warm_up), and the logging filter below
in place.
"""

from __future__ import annotations

import logging
import shutil
import socket
import struct
import tempfile
from pathlib import Path

import distributed  # noqa: F401 - imported once here instead of in every worker

from .. import output, pipeline, site, zeeklog  # noqa: F401 - what a capture needs
from . import worker  # noqa: F401

HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat."  # Worker.heartbeat


class HeartbeatFilter(logging.Filter):
    """Drops the one record a local worker logs (with a traceback, at ERROR) when its
    heartbeat meets the scheduler closing its connection: the driver is closing the
    cluster (the end of a run, or a Ctrl-C), and the contract wants one line on stderr
    then. The scheduler lives in the driver, so it never fails while a run goes on; a
    real problem is the driver's to report. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != HEARTBEAT_FAILED


logging.getLogger("distributed.worker").addFilter(HeartbeatFilter())


def _tiny_capture(path: Path, pcapng: bool) -> None:
    """One TCP SYN (192.0.2.1 -> 192.0.2.2:80, documentation addresses) as a classic
    pcap or a pcapng file."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2"))  # fmt: skip
    frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + tcp
    ts = 1_764_730_800  # 2025-12-03 03:00 UTC
    if not pcapng:
        head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
        path.write_bytes(head + struct.pack("<IIII", ts, 0, len(frame), len(frame)) + frame)
        return
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20)
    body = frame + b"\0" * (-len(frame) % 4)
    usec = ts * 1_000_000
    epb_len = 32 + len(body)
    epb = struct.pack("<IIIIIII", 6, epb_len, 0, usec >> 32, usec & 0xFFFFFFFF,
                      len(frame), len(frame)) + body + struct.pack("<I", epb_len)  # fmt: skip
    path.write_bytes(shb + idb + epb)


def warm_up() -> None:
    """Analyse a one-packet pcap and pcapng file the way a worker does (worker.process,
    Zeek logs and partition files included, into a temporary dataset removed after):
    numba's code generator is initialised and the kernels loaded from their cache once,
    here, instead of in every worker's (and every restarted worker's) first capture.
    Without a writable temporary directory it does nothing (the workers load them then):
    an exception here would stop the forkserver, and no worker would start."""
    try:
        root = Path(tempfile.mkdtemp(prefix="pcapclass-warm-up-"))
    except OSError:
        return
    try:  # process() never raises: a failed Outcome is ignored
        for name, pcapng in (("warm.pcap", False), ("warm.pcapng", True)):
            _tiny_capture(root / name, pcapng)
            worker.process(worker.Task(str(root / name), str(root / "ds"), None, zeek_logs=True))
    except OSError:
        pass
    finally:
        shutil.rmtree(root, ignore_errors=True)


warm_up()
