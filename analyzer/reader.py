"""Open classic pcap / pcapng, optionally gzip-compressed, or stdin; detect the format
from magic bytes (never the file name) and yield raw records in batches. No decoding.

INTERFACE (fixed; other modules depend on it):

    with Capture(path_or_dash, batch_packets=65536) as cap:
        for raw in cap.batches():      # RawBatch
            ...
        cap.stats                      # CaptureStats, complete after batches() is exhausted

A RawBatch's arrays may live in buffers reused by the next batch: consumers must copy
what they keep beyond the current batch.

How it works. A helper thread reads the file as stored in fixed-size chunks into a small
ring of preallocated buffers and hashes the stored bytes (hashlib and file reads release
the GIL, so this runs beside the decoder on a second core). The main thread finds the
record boundaries of a chunk with one tight loop over ``struct.unpack_from`` (the only
per-record Python work), carries the incomplete tail into the headroom in front of the
next chunk, and builds the batch arrays with numpy from the recorded offsets. For a
classic pcap file of scout.SCOUT_MIN_BYTES or more that loop runs in a helper process
instead (module scout), which streams the record offsets through a pipe while the main
thread decodes; should it fail, the main thread walks on itself.

Formats: classic pcap in both byte orders with micro- or nanosecond timestamps; pcapng
with any number of sections (each with its own byte order) and interfaces (each with its
own link type, ``if_tsresol`` and ``if_tsoffset``), Enhanced, Simple and the obsolete
Packet Blocks (other block types are skipped); either of them gzip-compressed.

Damage, and what ``stats`` says about it:

- file ends inside a record: every complete record is kept, ``truncated = True`` and the
  warning ``"<name>: capture cut short at byte N (record M incomplete); results cover the
  first M records"``, N being the offset (in the uncompressed stream) where the incomplete
  record starts and M the number of packet records before it.
- a record that cannot be resynchronised (pcap caplen above ``PCAP_MAX_CAPLEN``; pcapng
  block length not a multiple of 4, below 12, above ``PCAPNG_MAX_BLOCK`` or not repeated
  at the block's end): reading stops there, ``skipped["corrupt_record"] += 1``,
  ``truncated = True`` and a warning naming the byte offset.
- a record whose framing is intact but whose content is impossible is skipped alone and
  counted: ``caplen_gt_wirelen`` (pcap), ``bad_caplen`` (pcapng caplen beyond its block),
  ``bad_interface`` (pcapng packet for an interface its section never described).
- a damaged gzip stream ends the capture like a cut-short file.

``stats.packets`` counts every packet record read, including the skipped ones.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import mmap
import os
import queue
import stat
import struct
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import scout
from .errors import CaptureError

# Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: larger pcap records are treated as corrupt.
PCAP_MAX_CAPLEN = 262_144
# pcapclass's own bound on one pcapng block (Wireshark allows up to a few MiB for
# packet blocks with options; 16 MiB leaves room for large NRB/custom blocks).
PCAPNG_MAX_BLOCK = 16 * 2**20
# Bytes read from the file per chunk: large enough that numpy's per-batch overhead
# stays small, small enough that three ring buffers stay well under the RSS budget.
CHUNK_BYTES = 8 * 2**20
# Room in front of every chunk for the incomplete record carried over from the previous
# one: a full pcap record (16 + PCAP_MAX_CAPLEN); larger carries take a slower copy path.
HEADROOM_BYTES = 16 + PCAP_MAX_CAPLEN + 64
# Slack after the data so the decoder can gather a fixed-width window at any packet.
TAIL_PAD_BYTES = 512
RING_SLOTS = 3  # chunk being decoded, chunk read ahead, chunk being read
# Regular uncompressed files are memory-mapped instead (measured: the read copy cost
# 0.4 s per GB; see docs/performance.md). The scanner and the hasher stay within
# MAP_AHEAD_BYTES of each other; pages both passed are dropped every DROP_STEP_BYTES.
MAP_FILES = True
MAP_AHEAD_BYTES = 4 * CHUNK_BYTES
DROP_STEP_BYTES = 16 * 2**20
HASH_STEP_BYTES = 4 * 2**20

MAX_TS_S = (2**63 - 1) // 10**9  # int64 nanoseconds end in April 2262
# glibc hands freed blocks of 128 KiB and more back to the OS, so every batch's numpy
# temporaries (15 k packets x 8 bytes) fault fresh pages in again. Keeping them in the heap
# measured 20 % faster for reader + decode (docs/performance.md). This is process-wide
# (glibc's mallopt; a no-op elsewhere); set TUNE_MALLOC = False before opening a capture
# to leave the allocator alone.
TUNE_MALLOC = True
MALLOC_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's own upper bound for its dynamic threshold
MALLOC_TRIM_THRESHOLD_BYTES = 64 * 2**20  # twice that, as glibc's dynamic rule does
MALLOC_TOP_PAD_BYTES = 16 * 2**20
MALLOC_DEFAULT_THRESHOLD_BYTES = 128 * 1024  # glibc's initial mmap and trim thresholds
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # <malloc.h>
_malloc_tuned = False

PCAP_HDR_LEN = 24
PCAP_REC_LEN = 16
MAGIC_GZIP = b"\x1f\x8b"
MAGIC_PCAPNG = b"\x0a\x0d\x0d\x0a"
PCAP_MAGICS: dict[bytes, tuple[str, str]] = {  # magic as stored -> (byte order, ts unit)
    b"\xd4\xc3\xb2\xa1": ("<", "usec"),
    b"\xa1\xb2\xc3\xd4": (">", "usec"),
    b"\x4d\x3c\xb2\xa1": ("<", "nsec"),
    b"\xa1\xb2\x3c\x4d": (">", "nsec"),
}

BT_SHB = 0x0A0D0D0A
BT_IDB = 1
BT_PB = 2  # obsolete Packet Block
BT_SPB = 3
BT_EPB = 6
EPB_MIN_LEN = 32
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

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


# --------------------------------------------------------------------------- byte sources


class _Replaying:
    """Bytes taken by peek() are handed out again by the next reads."""

    _prefix: bytes = b""

    def _replay_into(self, out: memoryview) -> int:
        k = min(len(self._prefix), len(out))
        out[:k] = self._prefix[:k]
        self._prefix = self._prefix[k:]
        return k


class _StoredSource(_Replaying):
    """The file as stored: counts and hashes every byte read; replays peeked bytes."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._prefix = b""
        self.sha = hashlib.sha256()
        self.size = 0

    def peek(self, n: int) -> bytes:
        while len(self._prefix) < n:
            more = self._fh.read(n - len(self._prefix))
            if not more:
                break
            self.sha.update(more)
            self.size += len(more)
            self._prefix += more
        return self._prefix[:n]

    def readinto(self, out: memoryview) -> int:
        if self._prefix:
            return self._replay_into(out)
        n = self._fh.readinto(out) or 0  # type: ignore[attr-defined]  # every binary file has it
        if n:
            self.sha.update(out[:n])
            self.size += n
        return n

    def read(self, n: int = -1) -> bytes:  # used by gzip.GzipFile
        if self._prefix:
            k = len(self._prefix) if n < 0 else min(n, len(self._prefix))
            out, self._prefix = self._prefix[:k], self._prefix[k:]
            return out
        data = self._fh.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self, scratch: memoryview) -> None:
        """Read (and hash) the rest of the stored file."""
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


def _read_full(src: _StoredSource | _GzipSource, out: memoryview) -> tuple[int, str | None]:
    """Fill `out` unless the stream ends; returns (bytes read, gzip damage or None)."""
    got = 0
    while got < len(out):
        try:
            n = src.readinto(out[got:])
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            return got, f"gzip stream damaged ({exc})"
        if not n:
            break
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
                n, err = _read_full(self._src, view)
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
        self.free.put(None)
        self.join()
        self.drain()


def _tune_malloc() -> None:
    """Once per process: keep batch-sized temporaries in the heap (see TUNE_MALLOC)."""
    global _malloc_tuned
    if _malloc_tuned or not TUNE_MALLOC or not sys.platform.startswith("linux"):
        return
    _malloc_tuned = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES)
    mallopt(_M_TOP_PAD, MALLOC_TOP_PAD_BYTES)


def release_heap() -> None:
    """Hand the heap's free pages back to the OS (glibc's malloc_trim; a no-op where that
    does not exist). The first call after reading also gives glibc its default thresholds
    back: TUNE_MALLOC keeps what the batches freed, which suits the read loop's same-sized
    temporaries but would let every later, one-off table build raise the process's peak
    for good. The next Capture tunes again. The pipeline calls this after reading and
    after classifying, so that the Arrow tables and the Parquet writer start from what is
    really in use."""
    global _malloc_tuned
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return
    if _malloc_tuned:
        _malloc_tuned = False
        mallopt(_M_MMAP_THRESHOLD, MALLOC_DEFAULT_THRESHOLD_BYTES)
        mallopt(_M_TRIM_THRESHOLD, MALLOC_DEFAULT_THRESHOLD_BYTES)
        mallopt(_M_TOP_PAD, 0)
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


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

    def run(self) -> None:
        pos = 0
        try:
            while pos < self._size and not self._stopped:
                end = min(pos + HASH_STEP_BYTES, self._size)
                self._window.wait_hasher(end)
                self._sha.update(self._mv[pos:end])
                pos = end
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


# ------------------------------------------------------------------------------- parsing


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    units_per_s: int  # timestamp units per second (from if_tsresol)
    offset_s: int  # if_tsoffset


@dataclass
class _Scan:
    """What one chunk yielded: packet-record offsets and per-record metadata."""

    offs: np.ndarray  # int64 offsets of the record headers (pcapng: blocks) in buf
    stop: int  # offset of the first byte not consumed
    corrupt: str | None = None  # warning text when reading must stop
    # pcapng only: (first record, byte order, interface base) per section; PB/SPB
    # positions; block lengths
    sections: list[tuple[int, str, int]] = field(default_factory=list)
    special: dict[int, int] = field(default_factory=dict)
    blen: np.ndarray | None = None
    hdr: np.ndarray | None = None  # pcap only: record headers as (n, 4) uint32


def _segments(
    sections: list[tuple[int, str, int]], n: int, n_ifaces: int = 0
) -> Iterator[tuple[int, int, str, int, int]]:
    """(first, last, byte order, interface base, interface count) of each section with
    records in [0, n); n_ifaces is the number of interfaces known so far."""
    for s, (first, order, base) in enumerate(sections):
        last = min(sections[s + 1][0] if s + 1 < len(sections) else n, n)
        nxt_base = sections[s + 1][2] if s + 1 < len(sections) else n_ifaces
        if last > first:
            yield first, last, order, base, nxt_base - base


def _blen_problem(blen: int, trail: int) -> str:
    if blen % 4:
        return f"block length {blen} is not a multiple of 4"
    if blen > PCAPNG_MAX_BLOCK:
        return f"block length {blen} exceeds {PCAPNG_MAX_BLOCK}"
    return f"block length {blen} does not match the trailing length {trail}"


class _Damage(Exception):
    def __init__(self, off: int, what: str) -> None:
        super().__init__(what)
        self.off = off
        self.what = what


def _u32_rows(buf: np.ndarray, offs: np.ndarray, width: int, order: str) -> np.ndarray:
    """The `width` bytes at each offset as rows of uint32 in the given byte order."""
    win = np.lib.stride_tricks.sliding_window_view(buf, width)
    return win[offs].view(order + "u4")


class Capture:
    """A capture file (or stdin) opened for reading; see the module docstring."""

    def __init__(self, path: str | Path, *, batch_packets: int = 65536) -> None:
        # batch_packets default: 64 Ki packets keep numpy's per-call overhead negligible
        # while the decoder's scratch arrays stay a few MiB.
        self._path = path
        self._batch = max(1, int(batch_packets))
        _tune_malloc()
        name = "<stdin>" if str(path) == "-" else str(path)
        self.stats = CaptureStats(name=name)
        self._fh: BinaryIO | None = None
        self._mm: mmap.mmap | None = None
        self._stored: _StoredSource | None = None
        self._src: _StoredSource | _GzipSource | None = None
        self._feeder: _Feeder | None = None
        self._hasher: _MappedHasher | None = None
        self._scout: scout.Scout | None = None
        self._kind = ""  # "pcap" or "pcapng"
        self._order = "<"
        self._ts_unit = "usec"
        self._stream_pos = 0  # stream offset of the first unconsumed byte
        self._record = 0  # packet records so far
        # pcap state
        self._linktype = 0
        # pcapng state
        self._ifaces: list[_Interface] = []  # all interfaces of all sections
        self._section_base = 0  # index in _ifaces of this section's interface 0
        self._last_ts = 0
        self._shb_seen = 0
        self._warned_clamp = False

    # ---------------------------------------------------------------- opening, format

    def __enter__(self) -> Capture:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._feeder is not None and self._feeder.is_alive():
            self._feeder.free.put(None)
            self._feeder.join(timeout=5)
        if self._hasher is not None:
            self._hasher.stop()
        if self._scout is not None:
            self._scout.close()
            self._scout = None
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
        self._stored = _StoredSource(self._fh)
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
        if head == MAGIC_PCAPNG:
            self._kind = "pcapng"
            self.stats.format = fmt_prefix + "pcapng"
        elif head in PCAP_MAGICS:
            self._kind = "pcap"
            self._order, self._ts_unit = PCAP_MAGICS[head]
            endian = "le" if self._order == "<" else "be"
            self.stats.format = f"{fmt_prefix}pcap-{endian}-{self._ts_unit}"
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
            return
        size = HEADROOM_BYTES + CHUNK_BYTES + TAIL_PAD_BYTES
        slots = [np.empty(size, dtype=np.uint8) for _ in range(RING_SLOTS)]
        feeder = _Feeder(self._stored, self._src, slots)
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
                if first:
                    start = self._file_header(buf, start, end)
                    first = False
                scan = self._scan(buf, start, end)
                if scan.corrupt is not None:
                    self._check_readable(scan)
                yield from self._emit(buf, scan)
                if scan.corrupt is not None:
                    self.stats.warnings.append(scan.corrupt)
                    feeder.stop_and_drain()
                    break
                carry = buf[scan.stop : end].copy()
                self._stream_pos += scan.stop - start
            if n == 0 or err is not None:
                self._end_of_stream(carry, err)
                break
            feeder.free.put(i)
        self._finalise()

    def _check_readable(self, scan: _Scan) -> None:
        """Damage before any record and before a usable section header: not a capture."""
        if (
            self._kind == "pcapng"
            and not self._ifaces
            and self._record == 0
            and scan.offs.shape[0] == 0
            and self._shb_seen == 0
        ):
            raise CaptureError(
                f"{self.stats.name}: damaged pcapng section header; "
                "the file holds no readable record"
            )

    def _batches_mapped(self, mm: mmap.mmap) -> Iterator[RawBatch]:
        """Regular uncompressed files: scan the memory-mapped file in place (no read copy);
        a helper thread hashes it; pages both are done with are dropped from the RSS."""
        buf = np.frombuffer(mm, dtype=np.uint8)
        size = buf.shape[0]
        window = _MappedWindow(mm, size)
        hasher = _MappedHasher(mm, size, window)
        self._hasher = hasher
        hasher.start()
        try:
            pos = self._file_header(buf, 0, size)
            if self._kind == "pcap":
                self._scout = scout.start(self._fh, size, pos, self._order)
            chunk = CHUNK_BYTES
            while True:
                end = min(pos + chunk, size)
                window.wait_main(end)
                scan = self._scan(buf, pos, end)
                if scan.corrupt is not None:
                    self._check_readable(scan)
                yield from self._emit(buf, scan)
                if scan.corrupt is not None:
                    self.stats.warnings.append(scan.corrupt)
                    break
                self._stream_pos += scan.stop - pos
                if end == size:
                    self._end_of_stream(buf[scan.stop : size], None)
                    break
                # a record longer than the chunk: widen the chunk until it fits
                chunk = chunk * 2 if scan.stop == pos else CHUNK_BYTES
                pos = scan.stop
                window.advance_main(pos)
        finally:
            window.advance_main(size)
        hasher.join()
        self.stats.size = size
        self.stats.sha256 = hasher.hexdigest()

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

    def _end_of_stream(self, carry: np.ndarray, gzip_error: str | None) -> None:
        name = self.stats.name
        if carry.shape[0]:
            self.stats.truncated = True
            self.stats.warnings.append(
                f"{name}: capture cut short at byte {self._stream_pos} "
                f"(record {self._record} incomplete); results cover the first "
                f"{self._record} records"
            )
        if self._kind == "pcapng" and self._shb_seen == 0:
            raise CaptureError(
                f"{name}: pcapng section header cut short; the file holds no readable record"
            )
        if gzip_error:
            self.stats.truncated = True
            self.stats.warnings.append(
                f"{name}: {gzip_error} after {self._stream_pos + carry.shape[0]} "
                f"uncompressed bytes; results cover the first {self._record} records"
            )

    def _finalise(self) -> None:
        assert self._stored is not None
        self.stats.size = self._stored.size
        self.stats.sha256 = self._stored.sha.hexdigest()

    # ------------------------------------------------------------------ file header

    def _file_header(self, buf: np.ndarray, start: int, end: int) -> int:
        if self._kind == "pcapng":
            return start  # the first SHB is parsed like any other block
        if end - start < PCAP_HDR_LEN:
            raise CaptureError(
                f"{self.stats.name}: pcap file header cut short ({end - start} of "
                f"{PCAP_HDR_LEN} bytes); the file is not a usable capture"
            )
        (network,) = struct.unpack_from(self._order + "I", buf.data, start + 20)
        self._linktype = network & 0xFFFF  # upper bits: FCS length flags
        self._stream_pos += PCAP_HDR_LEN
        return start + PCAP_HDR_LEN

    # --------------------------------------------------------------------- scanning

    def _scan(self, buf: np.ndarray, start: int, end: int) -> _Scan:
        if self._kind == "pcap":
            return self._scan_pcap(buf, start, end)
        return self._scan_pcapng(buf, start, end)

    def _scan_pcap(self, buf: np.ndarray, start: int, end: int) -> _Scan:
        unpack = struct.Struct(self._order + "I").unpack_from
        mv = buf.data[:end]
        starts = self._scout.starts(start, end) if self._scout is not None else None
        if starts is None:
            if self._scout is not None:  # the helper failed: walk on without it
                self._scout.close()
                self._scout = None
            starts = self._walk_pcap(mv, start)
        offs, nxt = starts[:-1], starts[1:]
        complete = int(np.searchsorted(nxt, end, side="right"))
        offs = offs[:complete]
        stop = int(starts[complete])
        corrupt = None
        hdr = _u32_rows(buf, offs, PCAP_REC_LEN, self._order)
        caplen = hdr[:, 2]
        bad = np.flatnonzero(caplen > PCAP_MAX_CAPLEN)
        if len(bad):
            k = int(bad[0])
            stop, offs, hdr = int(offs[k]), offs[:k], hdr[:k]
            corrupt = self._corrupt_msg(
                stop, f"caplen {int(caplen[k])} exceeds {PCAP_MAX_CAPLEN}", start, offs.shape[0]
            )
        elif stop + 12 <= end:  # the incomplete record's header is readable: check it
            (c,) = unpack(mv, stop + 8)
            if c > PCAP_MAX_CAPLEN:
                corrupt = self._corrupt_msg(
                    stop, f"caplen {c} exceeds {PCAP_MAX_CAPLEN}", start, offs.shape[0]
                )
        return _Scan(offs=offs, stop=stop, corrupt=corrupt, hdr=hdr)

    def _walk_pcap(self, mv: memoryview, start: int) -> np.ndarray:
        """Record starts from `start` on whose caplen field lies inside `mv`, plus the
        first one whose does not (the chain continues there)."""
        unpack = struct.Struct(self._order + "I").unpack_from
        qs: list[int] = []
        append = qs.append
        q = start + 8  # offset of caplen in the record header
        try:
            for _ in repeat(None):  # the hot loop: one unpack per record
                append(q)
                (c,) = unpack(mv, q)
                q += 16 + c  # PCAP_REC_LEN, as a literal: this is the hot loop
        except struct.error:
            pass
        return np.array(qs, dtype=np.int64) - 8  # the last one could not be read

    def _corrupt_msg(self, off: int, what: str, start: int, before: int) -> str:
        self.stats.skipped["corrupt_record"] += 1
        self.stats.packets += 1
        self.stats.truncated = True
        at = self._stream_pos + off - start
        total = self._record + before
        return (
            f"{self.stats.name}: corrupt record at byte {at} ({what}); reading stopped "
            f"there, results cover the first {total} records"
        )

    def _scan_pcapng(self, buf: np.ndarray, start: int, end: int) -> _Scan:
        mv = buf.data[:end]
        ps: list[int] = []
        append = ps.append
        special: dict[int, int] = {}  # position in ps -> block type (PB, SPB)
        sections: list[tuple[int, str, int]] = [(0, self._order, self._section_base)]
        unpack2 = struct.Struct(self._order + "II").unpack_from
        p = start
        corrupt_at: _Damage | None = None
        try:
            for _ in repeat(None):  # the hot loop: one unpack per block
                (btype, blen) = unpack2(mv, p)
                if btype == BT_EPB and blen >= EPB_MIN_LEN:
                    append(p)
                    p += blen
                    continue
                nxt = self._slow_block(mv, p, end, btype, blen)
                if nxt is None:
                    break
                if btype == BT_SHB:
                    unpack2 = struct.Struct(self._order + "II").unpack_from
                    sections.append((len(ps), self._order, self._section_base))
                elif btype in (BT_PB, BT_SPB):
                    special[len(ps)] = btype
                    append(p)
                p = nxt
        except struct.error:
            pass
        except _Damage as dmg:
            corrupt_at = dmg
        offs = np.array(ps, dtype=np.int64)
        return self._check_pcapng(buf, start, end, offs, p, special, sections, corrupt_at)

    def _slow_block(self, mv: memoryview, p: int, end: int, btype: int, blen: int) -> int | None:
        """Any block but a well-formed-looking EPB. Returns the next offset, None if the
        block is incomplete in this chunk; raises _Damage when reading must stop."""
        if btype == BT_SHB:
            if p + 12 > end:
                return None
            bom = bytes(mv[p + 8 : p + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise _Damage(p, "section header with an invalid byte-order magic")
            (blen,) = struct.unpack_from(order + "I", mv, p + 4)
            self._check_blen(p, blen)
            if p + blen > end:
                return None
            self._order = order
            self._section_base = len(self._ifaces)
            self._shb_seen += 1
            return p + blen
        self._check_blen(p, blen)
        if p + blen > end:
            return None
        (trail,) = struct.unpack_from(self._order + "I", mv, p + blen - 4)
        if trail != blen:
            raise _Damage(p, f"block length {blen} does not match the trailing length {trail}")
        if btype == BT_IDB:
            self._ifaces.append(self._parse_idb(mv, p, blen))
        elif btype == BT_EPB:  # too short to hold an EPB header
            raise _Damage(p, f"enhanced packet block of only {blen} bytes")
        elif btype == BT_PB and blen < EPB_MIN_LEN:
            raise _Damage(p, f"packet block of only {blen} bytes")
        elif btype == BT_SPB and blen < 16:
            raise _Damage(p, f"simple packet block of only {blen} bytes")
        return p + blen

    def _check_blen(self, p: int, blen: int) -> None:
        if blen < 12 or blen % 4:
            raise _Damage(p, f"block length {blen} is not a multiple of 4 of at least 12")
        if blen > PCAPNG_MAX_BLOCK:
            raise _Damage(p, f"block length {blen} exceeds {PCAPNG_MAX_BLOCK}")

    def _parse_idb(self, mv: memoryview, p: int, blen: int) -> _Interface:
        o = self._order
        linktype, _res, snaplen = struct.unpack_from(o + "HHI", mv, p + 8)
        units, offset_s = 10**6, 0  # pcapng default resolution: microseconds
        q, stop = p + 16, p + blen - 4
        while q + 4 <= stop:
            code, length = struct.unpack_from(o + "HH", mv, q)
            if code == 0:
                break
            val = bytes(mv[q + 4 : q + 4 + length])
            if code == OPT_IF_TSRESOL and length >= 1:
                r = val[0]
                units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** (r & 0x7F)
            elif code == OPT_IF_TSOFFSET and length >= 8:
                (offset_s,) = struct.unpack_from(o + "q", val)
            q += 4 + ((length + 3) & ~3)
        return _Interface(linktype=linktype, snaplen=snaplen, units_per_s=units, offset_s=offset_s)

    def _check_pcapng(
        self,
        buf: np.ndarray,
        start: int,
        end: int,
        offs: np.ndarray,
        p: int,
        special: dict[int, int],
        sections: list[tuple[int, str, int]],
        dmg: _Damage | None,
    ) -> _Scan:
        """Vectorised checks of the packet blocks the hot loop accepted on trust; picks
        the earliest place where this chunk stops (incomplete block or damage)."""
        n = offs.shape[0]
        blen = np.zeros(n, dtype=np.int64)
        for first, last, order, _base, _size in _segments(sections, n):
            blen[first:last] = _u32_rows(buf, offs[first:last], 8, order)[:, 1]
        complete = offs + blen <= end
        trail = np.zeros(n, dtype=np.int64)
        for first, last, order, _base, _size in _segments(sections, n):
            ok = np.flatnonzero(complete[first:last]) + first
            tail_off = offs[ok] + blen[ok] - 4
            trail[ok] = _u32_rows(buf, tail_off, 4, order)[:, 0]
        bad = (blen % 4 != 0) | (blen > PCAPNG_MAX_BLOCK) | (complete & (trail != blen))
        # (offset, damage text or None for "incomplete, continue with the next chunk")
        events: list[tuple[int, str | None]] = [(min(p, end), None)]
        if dmg is not None:
            events.append((dmg.off, dmg.what))
        if bad.any():
            k = int(np.argmax(bad))
            events.append((int(offs[k]), _blen_problem(int(blen[k]), int(trail[k]))))
        if not complete.all():
            events.append((int(offs[int(np.argmin(complete))]), None))
        stop, what = min(events, key=lambda e: (e[0], e[1] is None))
        cut = int(np.searchsorted(offs, stop))
        corrupt = self._corrupt_msg(stop, what, start, cut) if what is not None else None
        return _Scan(
            offs=offs[:cut],
            stop=stop,
            corrupt=corrupt,
            sections=sections,
            special={k: v for k, v in special.items() if k < cut},
            blen=blen[:cut],
        )

    # ------------------------------------------------------------------------ emit

    def _emit(self, buf: np.ndarray, scan: _Scan) -> Iterator[RawBatch]:
        n = scan.offs.shape[0]
        if n == 0:
            return
        if self._kind == "pcap":
            assert scan.hdr is not None
            cols = self._pcap_columns(scan.offs, scan.hdr)
        else:
            cols = self._pcapng_columns(buf, scan)
        data_off, caplen, wirelen, ts_ns, linktype, keep = cols
        index = np.arange(self._record, self._record + n, dtype=np.int64)
        self._record += n
        self.stats.packets += n
        if keep is not None:
            data_off, caplen, wirelen = data_off[keep], caplen[keep], wirelen[keep]
            ts_ns, linktype, index = ts_ns[keep], linktype[keep], index[keep]
        m = data_off.shape[0]
        for a in range(0, m, self._batch):
            b = min(a + self._batch, m)
            yield RawBatch(
                buf=buf,
                data_off=data_off[a:b],
                caplen=caplen[a:b],
                wirelen=wirelen[a:b],
                ts_ns=ts_ns[a:b],
                linktype=linktype[a:b],
                index=index[a:b],
            )

    def _pcap_columns(self, offs: np.ndarray, hdr: np.ndarray) -> tuple:
        sec = hdr[:, 0].astype(np.int64)
        frac = hdr[:, 1].astype(np.int64)
        ts_ns = sec * 1_000_000_000 + (frac * 1000 if self._ts_unit == "usec" else frac)
        caplen = hdr[:, 2].copy()
        wirelen = hdr[:, 3].copy()
        keep = None
        bad = caplen > wirelen
        if bad.any():
            self.stats.skipped["caplen_gt_wirelen"] += int(bad.sum())
            keep = ~bad
        linktype = np.full(offs.shape[0], self._linktype, dtype=np.uint16)
        return offs + PCAP_REC_LEN, caplen, wirelen, ts_ns, linktype, keep

    def _pcapng_columns(self, buf: np.ndarray, scan: _Scan) -> tuple:
        offs, sections, special = scan.offs, scan.sections, scan.special
        assert scan.blen is not None
        n = offs.shape[0]
        hdr = np.empty((n, 7), dtype=np.uint32)
        glob = np.empty(n, dtype=np.int64)
        valid_if = np.ones(n, dtype=bool)
        for first, last, order, base, size in _segments(sections, n, len(self._ifaces)):
            hdr[first:last] = _u32_rows(buf, offs[first:last], 28, order)
            local = hdr[first:last, 2].astype(np.int64)
            glob[first:last] = base + local
            valid_if[first:last] = local < size
        data_off = offs + 28
        caplen = hdr[:, 5].copy()
        wirelen = hdr[:, 6].copy()
        ts_raw = (hdr[:, 3].astype(np.uint64) << np.uint64(32)) | hdr[:, 4].astype(np.uint64)
        bad_cap = caplen.astype(np.int64) > scan.blen - EPB_MIN_LEN
        for k, btype in special.items():  # obsolete PB and SPB: rare, one at a time
            self._fix_special(
                buf, int(offs[k]), k, btype, sections, glob, valid_if, data_off, caplen, wirelen
            )
            bad_cap[k] = btype == BT_PB and caplen[k] > scan.blen[k] - EPB_MIN_LEN
        keep = valid_if.copy()
        if not valid_if.all():
            self.stats.skipped["bad_interface"] += int((~valid_if).sum())
        bad_cap &= keep
        if bad_cap.any():
            self.stats.skipped["bad_caplen"] += int(bad_cap.sum())
            keep &= ~bad_cap
        ts_ns = np.zeros(n, dtype=np.int64)
        linktype = np.zeros(n, dtype=np.uint16)
        for g in np.unique(glob[keep]):
            sel = glob == g
            iface = self._ifaces[int(g)]
            ts, clamped = _scale_ts(ts_raw[sel], iface.units_per_s)
            ts_ns[sel] = ts + iface.offset_s * 10**9
            if clamped and not self._warned_clamp:
                self._warned_clamp = True
                self.stats.warnings.append(
                    f"{self.stats.name}: timestamps beyond the year 2262 (interface "
                    f"{int(g)}) were clamped to 2262-04-11; the capture's clock is wrong"
                )
            linktype[sel] = iface.linktype
        for k, btype in sorted(special.items()):  # SPB has no timestamp: previous packet's
            if btype == BT_SPB:
                ts_ns[k] = ts_ns[k - 1] if k > 0 else self._last_ts
        self._last_ts = int(ts_ns[n - 1])
        return data_off, caplen, wirelen, ts_ns, linktype, (None if keep.all() else keep)

    def _fix_special(
        self,
        buf: np.ndarray,
        off: int,
        k: int,
        btype: int,
        sections: list[tuple[int, str, int]],
        glob: np.ndarray,
        valid_if: np.ndarray,
        data_off: np.ndarray,
        caplen: np.ndarray,
        wirelen: np.ndarray,
    ) -> None:
        segs = [seg for seg in _segments(sections, k + 1, len(self._ifaces)) if seg[0] <= k]
        _first, _last, order, base, size = segs[-1]
        if btype == BT_PB:  # like an EPB but with a 16-bit interface id
            (local,) = struct.unpack_from(order + "H", buf.data, off + 8)
            glob[k] = base + local
            valid_if[k] = local < size
            return
        (blen, orig) = struct.unpack_from(order + "II", buf.data, off + 4)
        glob[k] = base
        valid_if[k] = size > 0
        cap = min(orig, blen - 16)
        snap = self._ifaces[base].snaplen if size > 0 else 0
        if snap:
            cap = min(cap, snap)
        data_off[k] = off + 12
        caplen[k] = cap
        wirelen[k] = orig


def _scale_ts(raw: np.ndarray, units_per_s: int) -> tuple[np.ndarray, int]:
    """Timestamps in interface units -> (int64 nanoseconds, how many were clamped to the
    int64-nanosecond limit, 2262-04-11)."""
    units = np.uint64(units_per_s)
    sec = raw // units
    frac = raw % units
    shift = 0
    while units_per_s >> shift > 2**33:  # keep frac * 1e9 inside uint64
        shift += 1
    frac_ns = ((frac >> np.uint64(shift)) * np.uint64(10**9)) // np.uint64(units_per_s >> shift)
    over = sec >= np.uint64(MAX_TS_S)
    sec = np.where(over, np.uint64(MAX_TS_S - 1), sec)
    ts = sec.astype(np.int64) * 10**9 + frac_ns.astype(np.int64)
    return ts, int(over.sum())
