"""Open classic pcap / pcapng, optionally gzip-compressed, or stdin; detect the format
from magic bytes (never the file name) and yield raw records in batches. No decoding.

INTERFACE (fixed; other modules depend on it):

    with Capture(path_or_dash, batch_packets=8192) as cap:
        for raw in cap.batches():      # RawBatch
            ...
        cap.stats                      # CaptureStats, complete after batches() is exhausted

A RawBatch's arrays may live in buffers reused by the next batch: consumers must copy
what they keep beyond the current batch. ``buf`` always has TAIL_PAD_BYTES of slack
after the last packet's data, so a decoder may read a fixed-width window at any packet.

How it works. Regular uncompressed files are memory-mapped; gzip and stdin are read in
fixed-size chunks into a small ring of buffers, an incomplete record at a chunk's end
being carried in front of the next chunk. Either way, one compiled kernel (module walk)
follows the record chain, checks every length before it reads, and writes the fields of
the kept records into the batch columns. A helper thread computes the SHA-256 of the
file as stored on the second core while the kernel runs (both release the GIL).

Live streams and interrupts. Standard input or a FIFO that is a pipe, socket or
terminal is read with partial reads: a chunk is handed over when full or LIVE_HOLD_S
after its first byte, so a slow capture shows progress and nothing waits for 8 MiB.
``Capture(..., stop=fn)``: once fn() is True, a file stops after the batch just handed
out; a live stream after the bytes that had arrived (read on while they still arrive,
LIVE_QUIET_S of silence or LIVE_GRACE_S at most); ``cap.stopped`` turns True, a record
cut there is the "cut short" case below, and ``stats.size``/``sha256`` are those of the
bytes read (a prefix of the file). Stopped before the file header: InterruptedEarly.

Formats: classic pcap in both byte orders with micro- or nanosecond timestamps; pcapng
with any number of sections (each with its own byte order) and interfaces (each with its
own link type, ``if_tsresol`` and ``if_tsoffset``), Enhanced, Simple and the obsolete
Packet Blocks (other block types are skipped); either of them gzip-compressed.

Timestamps (pcapng). Any ``if_tsresol`` (1 s down to 2^-127 or 10^-127 s) and any
``if_tsoffset`` are converted exactly; a result outside 1970-01-01 .. 2262-04-11 (what
int64 nanoseconds hold) is clamped into that range, counted (``events["ts_clamped"]``)
and warned about: an offset of 9e9 s dates packets 2262, never 1724. A Simple Packet
Block has no timestamp: it takes the last timestamp of an earlier packet in its section;
before any, the timestamp of the next Enhanced/obsolete Packet Block of the section
within SPB_LOOKAHEAD_BYTES (in a stream: within the current read chunk); failing that,
0 (1970), counted (``events["spb_untimed"]``) and warned about.

Limits. At most walk.MAX_INTERFACES interfaces per section: further IDBs are ignored and
counted (``events["idb_over_cap"]``), their packets skipped as ``bad_interface``. An IDB
whose options run past its block keeps its link type and snap length but none of its
options (``events["idb_bad_options"]``, warned). Memory does not grow with the number of
sections or interfaces; a block may be at most walk.PCAPNG_MAX_BLOCK bytes.

Damage, and what ``stats`` says about it:

- file ends inside a record: every complete record is kept, ``truncated = True`` and the
  warning ``"<name>: capture cut short at byte N (record M incomplete); results cover the
  first M records"``, N being the offset (in the uncompressed stream) where the incomplete
  record starts and M the number of packet records before it.
- a record that cannot be resynchronised (pcap caplen above ``PCAP_MAX_CAPLEN``; pcapng
  block length not a multiple of 4, below 12, above ``PCAPNG_MAX_BLOCK`` or not repeated
  at the block's end; a packet or interface block too short for its header): reading
  stops there, ``skipped["corrupt_record"] += 1``, ``truncated = True`` and a warning
  naming the byte offset.
- a record whose framing is intact but whose content is impossible is skipped alone and
  counted: ``caplen_gt_wirelen``, ``zero_caplen`` (nothing captured), ``bad_caplen``
  (pcapng caplen beyond its block), ``bad_interface`` (pcapng packet for an interface its
  section never described).
- a damaged gzip stream ends the capture like a cut-short file.

``stats.packets`` counts every packet record read, including the skipped ones. The
reader also counts, over the frames it passes on, snaplen-cut packets, timestamps out
of order, long time gaps and duplicate frames (module health).
"""

from __future__ import annotations

import gzip
import hashlib
import mmap
import os
import queue
import select
import stat
import struct
import sys
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

from . import walk
from .errors import CaptureError, InterruptedEarly
from .health import FrameCounters
from .kernel import readonly
from .walk import MAX_TS_S, PCAP_MAX_CAPLEN, PCAPNG_MAX_BLOCK  # noqa: F401  (re-exported)

# Bytes read from the file per chunk: large enough that the per-batch overhead stays
# small, small enough that three ring buffers stay well under the RSS budget.
CHUNK_BYTES = 8 * 2**20
# Room in front of every chunk for the incomplete record carried over from the previous
# one: a full pcap record (16 + PCAP_MAX_CAPLEN); larger carries take a slower copy path.
HEADROOM_BYTES = 16 + PCAP_MAX_CAPLEN + 64
# Slack after the data so the decoder can gather a fixed-width window at any packet.
TAIL_PAD_BYTES = 512
# Records per batch: 8 Ki packets of a few hundred bytes each (a few MiB) are still in
# the CPU caches when decode and the connection table read them after the walk; 64 Ki
# were not (decode took twice as long; docs/performance.md). The per-batch Python
# overhead stays small at this size.
BATCH_PACKETS = 8192
RING_SLOTS = 3  # chunk being decoded, chunk read ahead, chunk being read
# Regular uncompressed files are memory-mapped instead (measured: the read copy cost
# 0.4 s per GB; see docs/performance.md). The walk and the hasher stay within
# MAP_AHEAD_BYTES of each other; pages both passed are dropped every DROP_STEP_BYTES.
# Mapped pages count in the RSS once touched: two chunks ahead and a 4 MiB drop step
# hold the reader's peak about 25 MiB below four chunks and 16 MiB (measured on the
# 2 M-packet benchmark capture: 156 against 181 MiB, no slower beyond the noise). One
# chunk ahead saved 4 MiB more, but on a loaded machine the walk then waited for the
# hashing thread more often.
MAP_FILES = True
MAP_AHEAD_BYTES = 2 * CHUNK_BYTES
DROP_STEP_BYTES = 4 * 2**20
HASH_STEP_BYTES = 4 * 2**20
# How far an SPB at the start of a section looks for the next timestamp (one chunk).
SPB_LOOKAHEAD_BYTES = CHUNK_BYTES
MIN_RECORD_BYTES = 16  # the smallest packet record: a pcap header, an empty SPB
# A live stream (pipe, FIFO, socket): what has arrived is handed over once the chunk has
# waited LIVE_HOLD_S since its first byte, so a slow capture shows progress and an
# interrupt loses nothing; the stop request is looked at every LIVE_POLL_S.
LIVE_HOLD_S = 0.25
LIVE_POLL_S = 0.1
# After the stop, a live stream is read until it is quiet for LIVE_QUIET_S (or ends),
# LIVE_GRACE_S at most: the pipe's queue and a dying writer's last flush are kept.
LIVE_QUIET_S = 0.2
LIVE_GRACE_S = 1.0

PCAP_HDR_LEN = 24
PCAP_HDR_SNAPLEN = 16
PCAP_HDR_NETWORK = 20
MAGIC_GZIP = b"\x1f\x8b"
MAGIC_PCAPNG = b"\x0a\x0d\x0d\x0a"
PCAP_MAGICS: dict[bytes, tuple[str, str]] = {  # magic as stored -> (byte order, ts unit)
    b"\xd4\xc3\xb2\xa1": ("<", "usec"),
    b"\xa1\xb2\xc3\xd4": (">", "usec"),
    b"\x4d\x3c\xb2\xa1": ("<", "nsec"),
    b"\xa1\xb2\x3c\x4d": (">", "nsec"),
}

NOT_A_CAPTURE = (
    "{name}: not a capture file (no pcap or pcapng magic at offset 0); "
    "pcapclass reads pcap, pcapng and their .gz"
)


@dataclass
class RawBatch:
    buf: np.ndarray  # uint8: bytes holding this batch's packet data
    data_off: np.ndarray  # int64: offset of each packet's first captured byte in buf
    caplen: np.ndarray  # uint32: captured length
    wirelen: np.ndarray  # uint32: original length on the wire
    ts_ns: np.ndarray  # int64: nanoseconds since the Unix epoch, UTC
    linktype: np.ndarray  # uint16: LINKTYPE_* of each packet (per pcapng interface)
    index: np.ndarray  # int64: 0-based record number in the capture (record order)

    @property
    def n(self) -> int:
        return int(self.data_off.shape[0])


@dataclass
class CaptureStats:
    name: str  # file name as given ("<stdin>" for -)
    size: int = 0  # bytes of the file as stored (compressed size for .gz); stdin: bytes read
    sha256: str = ""  # of the file as stored; filled when reading finishes
    format: str = ""  # e.g. "pcap-le-usec", "pcapng", "gzip+pcap-be-nsec"
    packets: int = 0  # packet records read (including ones later skipped)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count
    truncated: bool = False  # the capture was cut short mid-record
    warnings: list[str] = field(default_factory=list)  # human-readable, one line each
    # --- added by the compiled reader (health.py explains each); all 0 until read
    snaplen_cut: int = 0  # passed-on packets with caplen < wirelen
    ts_out_of_order: int = 0  # packets dated earlier than the record before
    time_gaps: int = 0  # gaps between consecutive packets longer than health.GAP_S
    longest_gap_s: float = 0.0
    duplicate_frames: int = 0  # frames seen again within health.DUP_MAX_NS
    # reader events that are not packets: ts_clamped, spb_untimed, idb_over_cap,
    # idb_bad_options, ts_resolution_unusable, sections, interfaces
    events: Counter[str] = field(default_factory=Counter)
    # filled by pipeline.analyze from health.capture_health (health.Health.as_dict())
    health: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- byte sources


class _Replaying:
    """Bytes taken by peek() are handed out again by the next reads."""

    _prefix: bytes = b""

    def _replay_into(self, out: memoryview) -> int:
        k = min(len(self._prefix), len(out))
        out[:k] = self._prefix[:k]
        self._prefix = self._prefix[k:]
        return k


StopFn = Callable[[], bool]  # True: stop reading here (an interrupt)


def _is_live(fh: BinaryIO) -> bool:
    """A pipe, FIFO, socket or terminal: reads wait for a writer (not a regular file)."""
    try:
        return not stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


class _StoredSource(_Replaying):
    """The file as stored: counts and hashes every byte read; replays peeked bytes.

    A live stream is read with the file descriptor's own partial reads (what has
    arrived, never waiting to fill the buffer). Once `stop()` says so, it goes on
    reading while bytes keep arriving (the pipe's queue; a writer hit by the same
    Ctrl-C flushing its last packets), until the end, LIVE_QUIET_S without a byte, or
    LIVE_GRACE_S after the stop, and then ends like a stream at its end, with
    `stopped` set."""

    def __init__(self, fh: BinaryIO, stop: StopFn | None = None) -> None:
        self._fh = fh
        self._prefix = b""
        self.sha = hashlib.sha256()
        self.size = 0
        self.live = _is_live(fh)
        self._stop = stop
        self.stopped = False
        self._stop_at: float | None = None  # when the stop was seen (time.monotonic)
        self._ended = False  # end of the stream seen, or the stop's grace is over
        self.cancelled = False  # the consumer went away: read nothing more
        self._poll: select.poll | None = None
        if self.live:
            self._poll = select.poll()
            self._poll.register(fh.fileno(), select.POLLIN)

    def _account(self, data: memoryview | bytes) -> None:
        self.sha.update(data)
        self.size += len(data)

    def read_live(self, out: memoryview, deadline: float | None = None) -> int | None:
        """Live stream: wait for bytes (or the end) and read what has arrived into
        `out` (peeked bytes first); 0 at the end or after the stop; None when `deadline`
        passed first."""
        if self._prefix:
            return self._replay_into(out)
        return self._read_fd(out, deadline)

    def _read_fd(self, out: memoryview, deadline: float | None) -> int | None:
        fd = self._fh.fileno()
        assert self._poll is not None
        while True:
            if self.cancelled or self._ended:
                return 0
            now = time.monotonic()
            if self._stop_at is None and self._stop is not None and self._stop():
                self.stopped = True
                self._stop_at = now
            if self._stop_at is not None:  # bytes still arriving: the writer's last ones
                wait = min(LIVE_QUIET_S, self._stop_at + LIVE_GRACE_S - now)
                if wait <= 0 or not self._poll.poll(wait * 1000):
                    self._ended = True
                    return 0
            else:
                wait = LIVE_POLL_S if deadline is None else min(LIVE_POLL_S, deadline - now)
                if wait <= 0:
                    return None
                if not self._poll.poll(wait * 1000):
                    continue
            n = os.readv(fd, [out])
            self._account(out[:n])
            self._ended = n == 0
            return n

    def peek(self, n: int) -> bytes:
        while len(self._prefix) < n:
            if self.live:
                buf = bytearray(n - len(self._prefix))
                k = self._read_fd(memoryview(buf), None) or 0
                more = bytes(buf[:k])  # _read_fd has hashed it
            else:
                more = self._fh.read(n - len(self._prefix))
                self._account(more)
            if not more:
                break
            self._prefix += more
        return self._prefix[:n]

    def readinto(self, out: memoryview) -> int:
        if self._prefix:
            return self._replay_into(out)
        if self.live:
            return self.read_live(out) or 0
        n = self._fh.readinto(out) or 0  # type: ignore[attr-defined]  # every binary file has it
        if n:
            self._account(out[:n])
        return n

    def read(self, n: int = -1) -> bytes:  # used by gzip.GzipFile
        if self._prefix:
            k = len(self._prefix) if n < 0 else min(n, len(self._prefix))
            out, self._prefix = self._prefix[:k], self._prefix[k:]
            return out
        if self.live:
            buf = bytearray(n if n > 0 else 2**16)
            return bytes(buf[: self.read_live(memoryview(buf)) or 0])
        data = self._fh.read(n)
        self._account(data)
        return data

    def drain(self, scratch: memoryview) -> None:
        """Read (and hash) the rest of the stored file; a live stream is not waited for
        (the size and sha256 are of the bytes read)."""
        if self.live:
            return
        while self.readinto(scratch):
            pass


class _GzipSource(_Replaying):
    """Decompressed view of a gzip stream; replays peeked bytes."""

    def __init__(self, stored: _StoredSource) -> None:
        self._gz = gzip.GzipFile(fileobj=stored, mode="rb")  # type: ignore[call-overload]
        self._prefix = b""

    def peek(self, n: int) -> bytes:
        while len(self._prefix) < n:
            more = self._gz.read(n - len(self._prefix))
            if not more:
                break
            self._prefix += more
        return self._prefix[:n]

    def readinto(self, out: memoryview) -> int:
        if self._prefix:
            return self._replay_into(out)
        # read1: one decompression step per call, so a damaged stream loses little
        data = self._gz.read1(len(out))
        out[: len(data)] = data
        return len(data)


def _fill(
    stored: _StoredSource, src: _StoredSource | _GzipSource, out: memoryview
) -> tuple[int, str | None]:
    """Fill `out` unless the stream ends; a live stream hands over what has arrived
    LIVE_HOLD_S after the chunk's first byte. Returns (bytes read, gzip damage or None);
    0 bytes only at the end of the stream."""
    got = 0
    deadline = 0.0
    while got < len(out):
        if got and stored.live and time.monotonic() >= deadline:
            break
        try:
            if src is stored and stored.live:
                n = stored.read_live(out[got:], deadline if got else None)
                if n is None:  # quiet until the deadline: hand over what arrived
                    break
            else:
                n = src.readinto(out[got:])
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if stored.stopped:  # the compressed stream was cut by the interrupt
                return got, None
            return got, f"gzip stream damaged ({exc})"
        if not n:
            break
        if not got:
            deadline = time.monotonic() + LIVE_HOLD_S
        got += n
    return got, None


class _Feeder(threading.Thread):
    """Fills ring slots with the next chunk; hashing happens as a side effect of reading.
    The last message (0 bytes, or a gzip error) is sent after the whole stored file has
    been hashed, so stats can be completed as soon as it arrives."""

    def __init__(
        self, stored: _StoredSource, src: _StoredSource | _GzipSource, slots: list[np.ndarray]
    ) -> None:
        super().__init__(name="pcapclass-reader", daemon=True)
        self._stored = stored
        self._src = src
        self._slots = slots
        self.free: queue.Queue[int | None] = queue.Queue()
        self.filled: queue.Queue[tuple[int, int, str | BaseException | None]] = queue.Queue()
        for i in range(len(slots)):
            self.free.put(i)

    def run(self) -> None:
        try:
            while True:
                i = self.free.get()
                if i is None:
                    return
                view = self._slots[i].data[HEADROOM_BYTES : HEADROOM_BYTES + CHUNK_BYTES]
                n, err = _fill(self._stored, self._src, view)
                if n == 0 or err is not None:
                    self.drain()
                    self.filled.put((i, n, err))
                    return
                self.filled.put((i, n, None))
        except BaseException as exc:  # surfaced on the main thread
            self.filled.put((-1, 0, exc))

    def drain(self) -> None:
        """Hash the rest of the stored file."""
        self._stored.drain(memoryview(bytearray(2**20)))

    def stop_and_drain(self) -> None:
        """The main thread stopped early (corrupt record): still hash the whole file."""
        self.stop()
        self.drain()

    def stop(self) -> None:
        """The main thread stopped early (interrupt): read nothing more."""
        self._stored.cancelled = True  # a read waiting on a quiet pipe returns
        self.free.put(None)
        self.join()


def _map(fh: BinaryIO) -> mmap.mmap | None:
    """Memory-map a regular, non-empty file; None where that is not possible."""
    try:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    if hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_SEQUENTIAL)
    return mm


class _MappedWindow:
    """Progress of the scanner (main thread) and the hasher over a mapped file. Neither
    runs more than MAP_AHEAD_BYTES ahead of the other, and the pages both have passed
    are dropped from this process (MADV_DONTNEED; touched again, they are re-read from
    the page cache), so the resident set stays bounded whatever the file size."""

    def __init__(self, mm: mmap.mmap, size: int) -> None:
        self._mm = mm
        self._size = size
        self._cond = threading.Condition()
        self._main = 0
        self._hashed = 0
        self._dropped = 0

    def wait_main(self, target: int) -> None:
        with self._cond:
            while target > self._hashed + MAP_AHEAD_BYTES and self._hashed < self._size:
                self._cond.wait()

    def wait_hasher(self, target: int) -> None:
        with self._cond:
            while target > self._main + MAP_AHEAD_BYTES and self._main < self._size:
                self._cond.wait()

    def advance_main(self, pos: int) -> None:
        with self._cond:
            self._main = max(self._main, pos)
            self._drop()
            self._cond.notify_all()

    def advance_hasher(self, pos: int) -> None:
        with self._cond:
            self._hashed = max(self._hashed, pos)
            self._drop()
            self._cond.notify_all()

    def _drop(self) -> None:
        low = min(self._main, self._hashed) // mmap.PAGESIZE * mmap.PAGESIZE
        if low - self._dropped >= DROP_STEP_BYTES and hasattr(self._mm, "madvise"):
            try:
                self._mm.madvise(mmap.MADV_DONTNEED, self._dropped, low - self._dropped)
            except (OSError, ValueError):
                return
            self._dropped = low


class _MappedHasher(threading.Thread):
    """SHA-256 of a mapped file (hashlib releases the GIL on large buffers)."""

    def __init__(self, mm: mmap.mmap, size: int, window: _MappedWindow) -> None:
        super().__init__(name="pcapclass-sha256", daemon=True)
        self._mv = memoryview(mm)
        self._size = size
        self._window = window
        self._sha = hashlib.sha256()
        self._stopped = False
        self._limit = size
        # (offset, hash state there) of the last steps: the digest of a prefix reading
        # stopped at (an interrupt) without hashing the file again
        self._marks: deque[tuple[int, Any]] = deque(maxlen=MAP_AHEAD_BYTES // HASH_STEP_BYTES + 3)

    def run(self) -> None:
        pos = 0
        self._marks.append((0, self._sha.copy()))
        try:
            while pos < self._limit and not self._stopped:
                end = min(pos + HASH_STEP_BYTES, self._size)
                self._window.wait_hasher(end)
                self._sha.update(self._mv[pos:end])
                pos = end
                self._marks.append((pos, self._sha.copy()))
                self._window.advance_hasher(pos)
        finally:
            self._mv.release()
            self._window.advance_hasher(self._size)

    def stop(self) -> None:
        self._stopped = True
        self._window.advance_main(self._size)
        self.join(timeout=5)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def prefix_hexdigest(self, mm: mmap.mmap, n: int) -> str:
        """SHA-256 of the file's first n bytes: the hasher stops there (it may have
        passed n by at most MAP_AHEAD_BYTES; the last marks cover that)."""
        self._limit = n
        self._window.advance_main(self._size)  # wake it if it waits for the scanner
        self.join()
        mark, sha = next(((o, h) for o, h in reversed(self._marks) if o <= n), (0, None))
        sha = sha.copy() if sha is not None else hashlib.sha256()
        with memoryview(mm) as mv:
            sha.update(mv[mark:n])
        return str(sha.hexdigest())


# ------------------------------------------------------------------------------- walking

CORRUPT_TEXT = {  # walk.BAD_* -> what the warning says; {v}: the length, {t}: the trailer
    walk.BAD_PCAP_CAPLEN: "caplen {v} exceeds " + str(PCAP_MAX_CAPLEN),
    walk.BAD_BLOCK_ALIGN: "block length {v} is not a multiple of 4",
    walk.BAD_BLOCK_SHORT: "block length {v} is below the minimum of 12",
    walk.BAD_BLOCK_BIG: "block length {v} exceeds " + str(PCAPNG_MAX_BLOCK),
    walk.BAD_BLOCK_TRAIL: "block length {v} does not match the trailing length {t}",
    walk.BAD_BOM: "section header with an invalid byte-order magic",
    walk.BAD_SHORT_EPB: "enhanced packet block of only {v} bytes",
    walk.BAD_SHORT_PB: "packet block of only {v} bytes",
    walk.BAD_SHORT_SPB: "simple packet block of only {v} bytes",
    walk.BAD_SHORT_IDB: "interface description block of only {v} bytes",
}
EVENT_NAMES = {
    walk.CNT_TS_CLAMPED: "ts_clamped",
    walk.CNT_IDB_OVER_CAP: "idb_over_cap",
    walk.CNT_IDB_BAD_OPTIONS: "idb_bad_options",
    walk.CNT_SPB_UNTIMED: "spb_untimed",
    walk.CNT_TS_COARSE_FINE: "ts_resolution_unusable",
}


@dataclass
class _Stop:
    """Where the walk of one chunk stopped."""

    pos: int  # offset in buf of the first byte not consumed
    corrupt: str | None = None  # warning text when reading must stop
    stopped: bool = False  # stop() said so (files: after the batch just handed out)


class Capture:
    """A capture file (or stdin) opened for reading; see the module docstring."""

    def __init__(
        self, path: str | Path, *, batch_packets: int = BATCH_PACKETS, stop: StopFn | None = None
    ) -> None:
        # batch_packets: see BATCH_PACKETS.
        # stop: asked while reading; once True, reading ends (see the module docstring,
        # "Interrupts") and `stopped` turns True.
        self._path = path
        self._stop_fn = stop
        self.stopped = False
        self._batch = max(1, int(batch_packets))
        name = "<stdin>" if str(path) == "-" else str(path)
        self.stats = CaptureStats(name=name)
        self._fh: BinaryIO | None = None
        self._mm: mmap.mmap | None = None
        self._stored: _StoredSource | None = None
        self._src: _StoredSource | _GzipSource | None = None
        self._feeder: _Feeder | None = None
        self._hasher: _MappedHasher | None = None
        self._kind = ""  # "pcap" or "pcapng"
        self._big = False  # classic pcap: big-endian
        self._frac_ns = 1000  # classic pcap: nanoseconds per timestamp fraction unit
        self._linktype = 0  # classic pcap
        self._stream_pos = 0  # stream offset of the chunk start passed to _walk_chunk
        self._st, self._cnt, self._ifc = walk.new_state()
        self._frames = FrameCounters()
        self._finished = False

    # ---------------------------------------------------------------- opening, format

    def __enter__(self) -> Capture:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._feeder is not None and self._feeder.is_alive():
            if self._stored is not None:
                self._stored.cancelled = True
            self._feeder.free.put(None)
            self._feeder.join(timeout=5)
        if self._hasher is not None:
            self._hasher.stop()
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a consumer still holds a batch: leave it to the GC
                pass
            self._mm = None
        if self._fh is not None and self._fh is not sys.stdin.buffer:
            self._fh.close()
        self._fh = None

    def _open(self) -> None:
        name = self.stats.name
        if str(self._path) == "-":
            self._fh = sys.stdin.buffer
        else:
            try:
                self._fh = open(self._path, "rb")  # noqa: SIM115 - closed in close()
            except FileNotFoundError:
                raise CaptureError(f"{name}: no such file") from None
            except IsADirectoryError:
                raise CaptureError(f"{name}: is a directory, not a capture file") from None
            except PermissionError:
                raise CaptureError(f"{name}: permission denied; check the file's mode") from None
            st = os.fstat(self._fh.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise CaptureError(f"{name}: is a directory, not a capture file")
        self._stored = _StoredSource(self._fh, self._stop_fn)
        head = self._stored.peek(4)
        fmt_prefix = ""
        src: _StoredSource | _GzipSource = self._stored
        if head[:2] == MAGIC_GZIP:
            src = _GzipSource(self._stored)
            try:
                head = src.peek(4)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
                raise CaptureError(
                    f"{name}: damaged gzip file ({exc}); re-compress or unzip the capture"
                ) from None
            fmt_prefix = "gzip+"
        if self._stored.stopped and len(head) < 4:
            self._interrupted_early()
        if head == MAGIC_PCAPNG:
            self._kind = "pcapng"
            self.stats.format = fmt_prefix + "pcapng"
        elif head in PCAP_MAGICS:
            self._kind = "pcap"
            order, ts_unit = PCAP_MAGICS[head]
            self._big = order == ">"
            self._frac_ns = 1000 if ts_unit == "usec" else 1
            endian = "be" if self._big else "le"
            self.stats.format = f"{fmt_prefix}pcap-{endian}-{ts_unit}"
        else:
            raise CaptureError(NOT_A_CAPTURE.format(name=name))
        self._src = src
        if src is self._stored and self._fh is not sys.stdin.buffer and MAP_FILES:
            self._mm = _map(self._fh)

    # ---------------------------------------------------------------------- batches

    def batches(self) -> Iterator[RawBatch]:
        if self._src is None:
            self._open()
        assert self._stored is not None and self._src is not None
        if self._mm is not None:
            yield from self._batches_mapped(self._mm)
        else:
            yield from self._batches_streamed(self._stored, self._src)
        self._finish()

    def _batches_streamed(
        self, stored: _StoredSource, src: _StoredSource | _GzipSource
    ) -> Iterator[RawBatch]:
        """gzip and stdin: chunks of CHUNK_BYTES from a ring of buffers a helper thread
        fills (and hashes); the incomplete record at a chunk's end is carried over."""
        size = HEADROOM_BYTES + CHUNK_BYTES + TAIL_PAD_BYTES
        slots = [np.empty(size, dtype=np.uint8) for _ in range(RING_SLOTS)]
        feeder = _Feeder(stored, src, slots)
        self._feeder = feeder
        feeder.start()
        carry = np.empty(0, dtype=np.uint8)
        first = True
        while True:
            i, n, err = feeder.filled.get()
            if isinstance(err, BaseException):
                raise err
            if n:
                buf, start, end = self._place(slots[i], carry, n)
                if first and self._kind == "pcap" and end - start < PCAP_HDR_LEN and stored.live:
                    carry = buf[start:end].copy()  # the rest of the file header is on its way
                    feeder.free.put(i)
                    continue
                if first:
                    start = self._file_header(buf, start, end)
                    first = False
                stop = _Stop(start)
                yield from self._walk_chunk(buf, start, end, end, stop)
                if stop.corrupt is not None:
                    self.stats.warnings.append(stop.corrupt)
                    feeder.stop_and_drain()
                    break
                if stop.stopped:
                    self.stopped = True
                    feeder.stop()
                    break
                carry = buf[stop.pos : end].copy()
                self._stream_pos += stop.pos - start
            if n == 0 or err is not None:
                self.stopped = stored.stopped
                if first and self._kind == "pcap":
                    if self.stopped:
                        self._interrupted_early()
                    self._file_header(carry, 0, carry.shape[0])  # raises: header cut short
                self._end_of_stream(carry.shape[0], err)
                break
            feeder.free.put(i)
        self.stats.size = stored.size  # interrupted: the bytes read until then
        self.stats.sha256 = stored.sha.hexdigest()

    def _batches_mapped(self, mm: mmap.mmap) -> Iterator[RawBatch]:
        """Regular uncompressed files: walk the memory-mapped file in place (no read copy);
        a helper thread hashes it; pages both are done with are dropped from the RSS."""
        buf = np.frombuffer(mm, dtype=np.uint8)
        size = buf.shape[0]
        window = _MappedWindow(mm, size)
        hasher = _MappedHasher(mm, size, window)
        self._hasher = hasher
        hasher.start()
        try:
            pos = self._file_header(buf, 0, size)
            chunk = CHUNK_BYTES
            while True:
                end = min(pos + chunk, size)
                window.wait_main(end)
                stop = _Stop(pos)
                look_end = min(size, end + SPB_LOOKAHEAD_BYTES)
                yield from self._walk_chunk(buf, pos, end, look_end, stop)
                if stop.corrupt is not None:
                    self.stats.warnings.append(stop.corrupt)
                    break
                if stop.stopped:
                    self.stopped = True
                    break
                self._stream_pos += stop.pos - pos
                if end == size:
                    self._end_of_stream(size - stop.pos, None)
                    break
                # a record longer than the chunk: widen the chunk until it fits
                chunk = chunk * 2 if stop.pos == pos else CHUNK_BYTES
                pos = stop.pos
                window.advance_main(pos)
        finally:
            window.advance_main(size)
        if self.stopped:  # the prefix read until the interrupt
            self.stats.size = stop.pos
            self.stats.sha256 = hasher.prefix_hexdigest(mm, stop.pos)
            return
        hasher.join()
        self.stats.size = size
        self.stats.sha256 = hasher.hexdigest()

    def _walk_chunk(
        self, buf: np.ndarray, start: int, end: int, look_end: int, stop: _Stop
    ) -> Iterator[RawBatch]:
        """Batches of the complete records in buf[start:end]; sets stop.pos (and
        stop.corrupt when reading must end there)."""
        pos = start
        buf = readonly(buf)
        st, cnt = self._st, self._cnt
        fr = self._frames
        st[walk.ST_AHEAD_UNTIL] = -1  # look-ahead positions are this buffer's
        while True:
            room = min(self._batch, (end - pos) // MIN_RECORD_BYTES + 1)
            off = np.empty(room, dtype=np.int64)
            cap = np.empty(room, dtype=np.uint32)
            wire = np.empty(room, dtype=np.uint32)
            ts = np.empty(room, dtype=np.int64)
            link = np.empty(room, dtype=np.uint16)
            idx = np.empty(room, dtype=np.int64)
            if self._kind == "pcap":
                status, pos, n = walk.walk_pcap(
                    buf, pos, end, self._big, self._frac_ns, self._linktype, st, cnt,
                    off, cap, wire, ts, link, idx, fr.hc, fr.ring_hash, fr.ring_ts,
                )  # fmt: skip
            else:
                status, pos, n = walk.walk_pcapng(
                    buf, pos, end, look_end, st, cnt, self._ifc,
                    off, cap, wire, ts, link, idx, fr.hc, fr.ring_hash, fr.ring_ts,
                )  # fmt: skip
            self.stats.packets = int(st[walk.ST_RECORD])
            if status == walk.WALK_CORRUPT:
                stop.corrupt = self._corrupt_msg(pos, start)
            if n:
                batch = RawBatch(buf, off[:n], cap[:n], wire[:n], ts[:n], link[:n], idx[:n])
                yield batch
                if stop.corrupt is None and self._stop_files():
                    stop.pos, stop.stopped = pos, True
                    return
            if status != walk.WALK_FULL:
                stop.pos = pos
                return

    def _stop_files(self) -> bool:
        """A file stops after the batch just handed out; a live stream stops in its
        reader instead, after the bytes that had arrived (nothing received is lost)."""
        live = self._stored is not None and self._stored.live
        return not live and self._stop_fn is not None and self._stop_fn()

    def _interrupted_early(self) -> NoReturn:
        self.stopped = True
        raise InterruptedEarly(
            f"{self.stats.name}: interrupted before the capture's file header had arrived; "
            "nothing to analyse, nothing written"
        )

    def _corrupt_msg(self, pos: int, start: int) -> str:
        st = self._st
        if self._kind == "pcapng" and st[walk.ST_SECTIONS] == 0:
            raise CaptureError(
                f"{self.stats.name}: damaged pcapng section header; "
                "the file holds no readable record"
            )
        before = int(st[walk.ST_RECORD])
        self.stats.skipped["corrupt_record"] += 1
        self.stats.packets = before + 1
        st[walk.ST_RECORD] = before + 1
        self.stats.truncated = True
        what = CORRUPT_TEXT[int(st[walk.ST_BAD_WHAT])].format(
            v=int(st[walk.ST_BAD_VALUE]), t=int(st[walk.ST_BAD_VALUE2])
        )
        at = self._stream_pos + pos - start
        return (
            f"{self.stats.name}: corrupt record at byte {at} ({what}); reading stopped "
            f"there, results cover the first {before} records"
        )

    def _place(self, slot: np.ndarray, carry: np.ndarray, n: int) -> tuple[np.ndarray, int, int]:
        """Put the carried tail in front of the new chunk; returns (buf, start, end)."""
        k = carry.shape[0]
        if k <= HEADROOM_BYTES:
            slot[HEADROOM_BYTES - k : HEADROOM_BYTES] = carry
            return slot, HEADROOM_BYTES - k, HEADROOM_BYTES + n
        big = np.empty(k + n + TAIL_PAD_BYTES, dtype=np.uint8)  # a record bigger than headroom
        big[:k] = carry
        big[k : k + n] = slot[HEADROOM_BYTES : HEADROOM_BYTES + n]
        return big, 0, k + n

    def _end_of_stream(self, left: int, gzip_error: str | None) -> None:
        """`left` bytes of an incomplete record remain at the end of the stream."""
        name = self.stats.name
        records = int(self._st[walk.ST_RECORD])
        if left:
            self.stats.truncated = True
            self.stats.warnings.append(
                f"{name}: capture cut short at byte {self._stream_pos} "
                f"(record {records} incomplete); results cover the first {records} records"
            )
        if self._kind == "pcapng" and self._st[walk.ST_SECTIONS] == 0:
            if self.stopped:
                self._interrupted_early()
            raise CaptureError(
                f"{name}: pcapng section header cut short; the file holds no readable record"
            )
        if gzip_error:
            self.stats.truncated = True
            self.stats.warnings.append(
                f"{name}: {gzip_error} after {self._stream_pos + left} "
                f"uncompressed bytes; results cover the first {records} records"
            )

    def _finish(self) -> None:
        """Counters of the walk into stats, and a warning for each event that has one."""
        if self._finished:
            return
        self._finished = True
        stats, cnt = self.stats, self._cnt
        for slot, reason in walk.SKIP_REASONS.items():
            if cnt[slot]:
                stats.skipped[reason] += int(cnt[slot])
        for slot, event in EVENT_NAMES.items():
            if cnt[slot]:
                stats.events[event] = int(cnt[slot])
        if self._kind == "pcapng":
            stats.events["sections"] = int(self._st[walk.ST_SECTIONS])
        self._frames.into(stats)
        stats.warnings.extend(event_warnings(stats.name, stats.events))

    # ------------------------------------------------------------------ file header

    def _file_header(self, buf: np.ndarray, start: int, end: int) -> int:
        if self._kind == "pcapng":
            return start  # the first SHB is walked like any other block
        if end - start < PCAP_HDR_LEN:
            raise CaptureError(
                f"{self.stats.name}: pcap file header cut short ({end - start} of "
                f"{PCAP_HDR_LEN} bytes); the file is not a usable capture"
            )
        order = ">" if self._big else "<"
        (network,) = struct.unpack_from(order + "I", buf.data, start + PCAP_HDR_NETWORK)
        self._linktype = network & 0xFFFF  # upper bits: FCS length flags
        self._stream_pos += PCAP_HDR_LEN
        return start + PCAP_HDR_LEN


def event_warnings(name: str, events: Counter[str]) -> list[str]:
    """One warning per reader event that makes results less trustworthy."""
    out = []
    if events["ts_clamped"]:
        out.append(
            f"{name}: {events['ts_clamped']:,} timestamps beyond the year 2262 or before 1970 "
            "were clamped into that range; the capture's clock or an interface's "
            "if_tsoffset is wrong"
        )
    if events["ts_resolution_unusable"]:
        out.append(
            f"{name}: {events['ts_resolution_unusable']:,} packets come from interfaces whose "
            "if_tsresol is finer than a 64-bit clock can count to 1971; they are dated 1970"
        )
    if events["spb_untimed"]:
        out.append(
            f"{name}: {events['spb_untimed']:,} simple packet blocks have no timestamped "
            "packet near them and are dated 1970-01-01"
        )
    if events["idb_over_cap"]:
        out.append(
            f"{name}: {events['idb_over_cap']:,} interface description blocks beyond "
            f"{walk.MAX_INTERFACES} in one section were ignored; their packets are skipped "
            "as bad_interface"
        )
    if events["idb_bad_options"]:
        out.append(
            f"{name}: {events['idb_bad_options']:,} interface description blocks have "
            "options running past the block; their options (time resolution, offset) "
            "were ignored"
        )
    return out
