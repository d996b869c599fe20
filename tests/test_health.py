"""Capture health (issue 14): duplicate frames (a mirror of both ports of a link),
timestamps out of order, long time gaps, mostly-skipped captures; in the reader's
counters, the warnings, the pcapclass.health metadata and `--json`."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from test_decode import eth, ipv4, udp
from test_reader import pcap_bytes

from analyzer.health import DUP_MAX_NS, DUP_WINDOW
from analyzer.pipeline import analyze
from analyzer.reader import Capture

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000


def frame(i: int, payload: bytes = b"hello") -> bytes:
    """A UDP frame whose IP id is i: frames of different i differ in their first bytes."""
    pkt = bytearray(ipv4(17, udp(payload, sport=40000 + i % 1000, dport=47808)))
    struct.pack_into(">H", pkt, 4, i & 0xFFFF)
    return eth(0x0800, bytes(pkt))


def write(p: Path, recs: list[tuple[float, bytes]]) -> Path:
    """recs: (seconds since T0, frame), microsecond pcap, in this record order."""
    p.write_bytes(
        pcap_bytes(
            records=[(T0 + int(t), round((t % 1) * 1e6), f, len(f)) for t, f in recs]
        )
    )
    return p


def read_stats(p: Path, batch_packets: int = 65536):  # noqa: ANN201
    with Capture(p, batch_packets=batch_packets) as cap:
        for _ in cap.batches():
            pass
    return cap.stats


def test_mirror_copies_of_every_frame_are_duplicates(tmp_path: Path) -> None:
    """Each frame seen twice, 20 us apart: 50 of 100 frames are duplicates, also when
    every batch holds one frame (the look-back window carries across batches)."""
    recs = []
    for i in range(50):
        recs += [(i * 0.01, frame(i)), (i * 0.01 + 20e-6, frame(i))]
    p = write(tmp_path / "dup.pcap", recs)
    for batch in (65536, 1):
        assert read_stats(p, batch).duplicate_frames == 50
    result = analyze(p, write=False)
    assert result.capture.health["duplicate_frames"] == 50
    assert f"{p}: 50 duplicate frames (the same bytes again within 100 ms): the mirror " \
        "probably copies both ports of a link; packet and byte counts are inflated" in (
        result.capture.warnings
    )  # fmt: skip


def test_interleaved_copies_within_the_window_count(tmp_path: Path) -> None:
    """Two ports' copies arrive interleaved (A B C A' B' C'): each copy is found among
    the DUP_WINDOW frames before it."""
    k = DUP_WINDOW - 1
    recs = [(i * 1e-4, frame(i)) for i in range(k)]
    recs += [(0.01 + i * 1e-4, frame(i)) for i in range(k)]
    assert read_stats(write(tmp_path / "i.pcap", recs)).duplicate_frames == k
    # one more distinct frame in between pushes the first one out of the window
    recs = [(i * 1e-4, frame(i)) for i in range(DUP_WINDOW + 1)] + [(0.01, frame(0))]
    assert read_stats(write(tmp_path / "o.pcap", recs)).duplicate_frames == 0


def test_same_bytes_later_or_different_bytes_are_not_duplicates(tmp_path: Path) -> None:
    late = DUP_MAX_NS / 1e9 + 0.05  # the same frame again after the window: a resend
    recs = [(0.0, frame(1)), (late, frame(1)), (late + 1e-5, frame(2)), (late + 2e-5, frame(3))]
    recs.append((late + 3e-5, frame(3, b"hellp")))  # same headers, other payload byte
    recs.append((late + 4e-5, frame(3, b"hello") + b"\x00"))  # one byte longer
    stats = read_stats(write(tmp_path / "n.pcap", recs))
    assert stats.duplicate_frames == 0
    result = analyze(tmp_path / "n.pcap", write=False)
    assert not any("duplicate" in w for w in result.capture.warnings)


def test_few_duplicates_are_counted_without_a_warning(tmp_path: Path) -> None:
    """A duplicate share of up to 5 % is counted but not warned about."""
    recs = [(i * 0.01, frame(i)) for i in range(40)] + [(0.39 + 1e-5, frame(39))]
    result = analyze(write(tmp_path / "few.pcap", recs), write=False)
    assert result.capture.health["duplicate_frames"] == 1
    assert not any("duplicate" in w for w in result.capture.warnings)


def test_timestamps_out_of_order_and_time_gaps(tmp_path: Path) -> None:
    recs = [(0.0, frame(0)), (1.0, frame(1)), (0.5, frame(2)), (2.0, frame(3)), (1.5, frame(4))]
    recs += [(602.0, frame(5)), (603.0, frame(6))]
    p = write(tmp_path / "o.pcap", recs)
    stats = read_stats(p)
    assert (stats.ts_out_of_order, stats.time_gaps, stats.longest_gap_s) == (2, 1, 600.5)
    result = analyze(p, write=False)
    warnings = result.capture.warnings
    assert (
        f"{p}: 2 packets are dated earlier than the packet before them; durations and "
        "timeouts around them are unreliable"
    ) in warnings
    assert (
        f"{p}: 1 time gaps longer than 5 min (longest 600 s); connections across a gap are "
        "split in two"
    ) in warnings


def test_health_in_metadata_and_json(tmp_path: Path) -> None:
    """The contract: pcapclass.health in the Parquet metadata and `health` per capture
    in --json, with the same counts."""
    recs = []
    for i in range(30):
        recs += [(i * 0.01, frame(i)), (i * 0.01 + 1e-5, frame(i))]
    recs.append((0.0, frame(99)))  # dated earlier than the record before
    p = write(tmp_path / "h.pcap", recs)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main()", str(p), "-o", str(out),
         "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = json.loads(pq.read_schema(out / "flows.parquet").metadata[b"pcapclass.health"])
    js = json.loads(done.stdout)["captures"][0]["health"]
    for h in (meta, js):
        assert (h["packets"], h["duplicate_frames"], h["ts_out_of_order"]) == (61, 30, 1)
    assert meta == js
    assert f"pcapclass: warning: {p}: 30 duplicate frames" in done.stderr
