"""Open classic pcap / pcapng, optionally gzip-compressed, or stdin; detect the format
from magic bytes (never the file name) and yield raw records in batches. No decoding.

INTERFACE (fixed; other modules depend on it):

    with Capture(path_or_dash, batch_packets=65536) as cap:
        for raw in cap.batches():      # RawBatch
            ...
        cap.stats                      # CaptureStats, complete after batches() is exhausted

A RawBatch's arrays may live in buffers reused by the next batch: consumers must copy
what they keep beyond the current batch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


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
