"""The compiled decoder and the one-packet-at-a-time dpkt reference agree on every
per-packet field of every packet, and on the skip counts, for every public capture and
every capture in sample_pcaps/."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import SAMPLES, public_params
from refdecode import decode_record

from analyzer.decode import HEADER_FIELDS, decode_batch
from analyzer.reader import Capture

FIELDS = HEADER_FIELDS
# Captures where the two legitimately differ: none so far. Add "path": "reason" here.
KNOWN_DIFFERENCES: dict[str, str] = {}
MAX_PACKETS = 20_000  # the reference is slow; larger captures are compared on a prefix


def sample_captures() -> list:
    files = sorted(
        p for pat in ("*.pcap", "*.pcapng", "*.gz") for p in SAMPLES.glob(pat) if p.is_file()
    )
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="sample_pcaps/ is empty"))]
    return [pytest.param(p, id=p.name) for p in files]


def compare(path: Path) -> None:
    fast_skipped: Counter[str] = Counter()
    ref_skipped: Counter[str] = Counter()
    seen = 0
    with Capture(path, batch_packets=4096) as cap:
        for raw in cap.batches():
            pb = decode_batch(raw, fast_skipped)
            fast = {int(i): k for k, i in enumerate(pb.index)}
            for j in range(raw.n):
                off, cl = int(raw.data_off[j]), int(raw.caplen[j])
                data = raw.buf[off : off + cl].tobytes()
                ref = decode_record(data, int(raw.linktype[j]), int(raw.wirelen[j]))
                idx = int(raw.index[j])
                where = f"{path.name} record {idx}"
                if isinstance(ref, str):
                    ref_skipped[ref] += 1
                    assert idx not in fast, f"{where}: reference skips ({ref}), fast keeps"
                    continue
                assert idx in fast, f"{where}: fast path drops a packet the reference keeps"
                k = fast[idx]
                got = {name: int(getattr(pb, name)[k]) for name in FIELDS}
                got["payload_off"] = int(pb.payload_off[k]) - off if ref["payload_len"] else 0
                want = {name: int(ref[name]) for name in FIELDS}
                want["payload_off"] = int(ref["payload_off"]) if ref["payload_len"] else 0
                assert int(pb.ts_ns[k]) == int(raw.ts_ns[j])
                diff = {n: (got[n], want[n]) for n in want if got[n] != want[n]}
                assert not diff, f"{where}: fields differ (fast, reference): {diff}"
            seen += raw.n
            if seen >= MAX_PACKETS:
                break
    assert fast_skipped == ref_skipped


@pytest.mark.parametrize("cap", public_params())
def test_public_capture_fast_equals_reference(cap) -> None:  # noqa: ANN001
    if cap.rel in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[cap.rel])
    compare(cap.path)


@pytest.mark.parametrize("path", sample_captures())
def test_sample_capture_fast_equals_reference(path: Path) -> None:
    if path.name in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[path.name])
    compare(path)


def test_fuzzed_frames_fast_equals_reference(tmp_path: Path) -> None:
    """Valid frames of every link type with random bytes overwritten and random cuts
    (fixed seed): the two decoders agree on every field and every skip reason."""
    import struct

    import numpy as np
    from test_decode import eth, ipv4, ipv6, tcp, udp

    hop = struct.pack(">BB6s", 44, 0, bytes(6))
    frag = struct.pack(">BBHI", 6, 0, 1, 77)
    arp = struct.pack(
        ">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, b"\x02" * 6, b"\x0a" * 4, bytes(6), b"\x0b" * 4
    )
    seeds = [
        (eth(0x0800, ipv4(6, tcp(b"payload", doff=6))), 1),
        (eth(0x0800, ipv4(17, udp(b"dns?")), ((0x8100, 5), (0x8100, 6))), 1),
        (eth(0x86DD, ipv6(0, hop + frag + tcp(b"v6"))), 1),
        (eth(0x0806, arp), 1),
        (eth(0x0800, ipv4(1, struct.pack(">BBHI", 8, 0, 0, 0) + b"ping", flags_off=0x2000)), 1),
        (struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x86DD) + ipv6(58, bytes(8)), 113),
        (struct.pack("<I", 2) + ipv4(6, tcp()), 0),
        (ipv6(17, udp(b"raw")), 101),
    ]
    rng = np.random.default_rng(7)
    records = []
    for i in range(3000):
        frame, lt = seeds[i % len(seeds)]
        data = bytearray(frame)
        for _ in range(int(rng.integers(0, 3))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        cut = len(data) if rng.random() < 0.7 else int(rng.integers(0, len(data) + 1))
        records.append((bytes(data[:cut]), lt, len(data)))
    # one pcapng interface per link type, so each record keeps its own
    lts = sorted({lt for _, lt, _ in records})
    o = "<"

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return (
            struct.pack(o + "II", btype, len(body) + 12)
            + body
            + struct.pack(o + "I", len(body) + 12)
        )

    out = block(0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    for lt in lts:
        out += block(1, struct.pack(o + "HHI", lt, 0, 0))
    for k, (data, lt, wirelen) in enumerate(records):
        out += block(6, struct.pack(o + "IIIII", lts.index(lt), 0, k, len(data), wirelen) + data)
    path = tmp_path / "fuzz.pcapng"
    path.write_bytes(out)
    compare(path)
