"""Hostile frames through decode_batch: random bytes under every link type, truncations
and bit flips of real frames, absurd header fields. Nothing escapes as an exception and
every packet is either kept or counted under exactly one reason. The last test runs the
compiled kernels again with numba's bounds checks on, so a read past the buffer fails."""

from __future__ import annotations

import os
import struct
from collections import Counter
from pathlib import Path

from boundscheck import run_with_bounds_checks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_decode import eth, ipv4, ipv6, raw_batch, tcp, udp

from analyzer.decode import MAX_VLAN_TAGS, decode_batch

ROOT = Path(__file__).resolve().parent.parent
LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]
BUDGET = settings(  # benchmarks/fuzz_long.py raises the budget and randomizes
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=list(HealthCheck),
)

ARP = struct.pack(
    ">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, b"\x02" * 6, b"\x0a" * 4, bytes(6), b"\x0b" * 4
)
REAL = [
    (eth(0x0800, ipv4(6, tcp(b"payload", doff=6))), 1),
    (eth(0x0800, ipv4(17, udp(b"dns?")), ((0x8100, 5), (0x88A8, 6))), 1),
    (
        eth(
            0x86DD,
            ipv6(
                0, struct.pack(">BB6s", 44, 0, bytes(6)) + struct.pack(">BBHI", 6, 0, 1, 7) + tcp()
            ),
        ),
        1,
    ),
    (eth(0x0806, ARP), 1),
    (struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x86DD) + ipv6(58, bytes(8)), 113),
    (struct.pack(">HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, bytes(8)) + ipv4(1, bytes(8)), 276),
    (struct.pack("<I", 2) + ipv4(6, tcp()), 0),
    (struct.pack(">I", 24) + ipv6(17, udp()), 108),
    (ipv6(17, udp(b"raw")), 101),
    (ipv4(6, tcp(b"x")), 228),
]


def decode_all(frames: list[tuple[bytes, int]], wirelens: list[int] | None = None) -> None:
    """Decode `frames` as one batch: kept + newly counted == frames in, nothing raised."""
    skipped: Counter[str] = Counter({"earlier": 5})
    if not frames:
        return
    pb = decode_batch(raw_batch(frames, wirelens=wirelens), skipped)
    counted = sum(skipped.values()) - 5
    assert pb.n + counted == len(frames), (pb.n, dict(skipped))
    assert all(v > 0 for v in skipped.values())
    assert (pb.caplen_payload <= pb.payload_len).all()


@BUDGET
@given(st.lists(st.tuples(st.binary(max_size=120), st.sampled_from(LINKTYPES)), max_size=20))
def test_random_bytes_under_every_link_type(frames: list[tuple[bytes, int]]) -> None:
    decode_all(frames)


@BUDGET
@given(
    st.lists(
        st.tuples(
            st.sampled_from(range(len(REAL))),
            st.lists(st.tuples(st.integers(0, 200), st.integers(0, 7)), max_size=4),
            st.integers(0, 200),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_truncations_and_bit_flips_of_real_frames(
    cases: list[tuple[int, list[tuple[int, int]], int]],
) -> None:
    frames = []
    for which, flips, cut in cases:
        frame, lt = REAL[which]
        data = bytearray(frame)
        for at, bit in flips:
            data[at % len(data)] ^= 1 << bit
        frames.append((bytes(data[: min(cut, len(data))]), lt))
    decode_all(frames, wirelens=[len(REAL[w][0]) for w, _, _ in cases])


@BUDGET
@given(st.integers(0, 15), st.integers(0, 0xFFFF), st.binary(max_size=80))
def test_ipv4_ihl_and_total_length(ihl: int, total: int, rest: bytes) -> None:
    """IHL below 5 or past the packet, any total length: kept or counted, never read beyond."""
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, 0, 64, 6, 0, bytes(4), bytes(4))
    decode_all([(eth(0x0800, hdr + rest), 1), (hdr + rest, 228)], wirelens=[0, 0])


@BUDGET
@given(st.integers(0, 15), st.binary(max_size=60))
def test_tcp_data_offset(doff: int, rest: bytes) -> None:
    seg = tcp(doff=5)
    seg = seg[:12] + bytes([doff << 4]) + seg[13:] + rest
    decode_all([(eth(0x0800, ipv4(6, seg)), 1)])


@BUDGET
@given(st.lists(st.sampled_from([0, 43, 44, 51, 60, 6, 17, 59]), max_size=30), st.integers(0, 255))
def test_ipv6_extension_chains_long_or_looping(chain: list[int], hlen: int) -> None:
    """Chains of any length, each header naming the next (a hop-by-hop naming itself is a
    loop): at most MAX_IPV6_EXT are walked, the rest is counted."""
    body = b"".join(
        struct.pack(">BB6s", nxt, hlen if i % 2 else 0, bytes(6)) for i, nxt in enumerate(chain)
    )
    decode_all([(ipv6(0, body), 229), (ipv6(0, body + tcp()), 229)])


def test_ipv6_hop_by_hop_loop_is_counted() -> None:
    loop = struct.pack(">BB6s", 0, 0, bytes(6)) * 40  # each names hop-by-hop again
    skipped: Counter[str] = Counter()
    pb = decode_batch(raw_batch([(ipv6(0, loop), 229)]), skipped)
    assert pb.n == 0 and skipped == {"ipv6_ext_chain_too_long": 1}


def test_200_stacked_vlan_tags_are_counted_and_16_are_walked() -> None:
    deep = eth(0x0800, ipv4(17, udp(b"q")), tuple((0x8100, i) for i in range(200)))
    ok = eth(0x0800, ipv4(17, udp(b"q")), tuple((0x88A8, i + 1) for i in range(MAX_VLAN_TAGS)))
    skipped: Counter[str] = Counter()
    pb = decode_batch(raw_batch([(deep, 1), (ok, 1), (deep[:300], 1)]), skipped)
    assert skipped == {"vlan_stack_too_deep": 2}
    assert pb.n == 1 and (pb.vlan[0], pb.inner_vlan[0], pb.dport[0]) == (1, 2, 53)


def test_zero_length_frames_of_every_link_type() -> None:
    skipped: Counter[str] = Counter()
    pb = decode_batch(raw_batch([(b"", lt) for lt in LINKTYPES] + [(b"x", 1)]), skipped)
    assert pb.n == 0
    # 147 is no link type we decode (checked first); the others have no header; b"x"
    # is one byte of a 14-byte Ethernet header
    assert skipped == {"truncated_link_header": len(LINKTYPES), "linktype:147": 1}


BOUNDSCHECK_SCRIPT = r"""
import struct, sys
from collections import Counter
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_decode_fuzz import LINKTYPES, REAL
from test_decode import raw_batch
from analyzer.decode import decode_batch

rng = np.random.default_rng(14)
frames, wirelens = [], []
for i in range(6000):
    if i % 3 == 0:
        data = rng.integers(0, 256, int(rng.integers(0, 90)), dtype=np.uint8).tobytes()
        frames.append((data, LINKTYPES[i % len(LINKTYPES)]))
    else:
        frame, lt = REAL[i % len(REAL)]
        data = bytearray(frame)
        for _ in range(int(rng.integers(0, 4))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        frames.append((bytes(data[: int(rng.integers(0, len(data) + 1))]), lt))
    wirelens.append(int(rng.integers(0, 2000)))
# every frame in a batch of its own, cut exactly at its end: a read past the frame
# is a read past the buffer, which the bounds check turns into an IndexError
kept = counted = 0
for frame, wl in zip(frames, wirelens):
    raw = raw_batch([frame], wirelens=[wl])
    raw.buf = raw.buf[: len(frame[0])].copy()
    skipped = Counter()
    kept += decode_batch(raw, skipped).n
    counted += sum(skipped.values())
assert kept + counted == len(frames), (kept, counted)
print("ok", kept, counted)
"""


def test_kernels_with_numba_bounds_checks(tmp_path: Path) -> None:
    kept, counted = run_with_bounds_checks(BOUNDSCHECK_SCRIPT, cache_dir=tmp_path / "cache")
    assert kept + counted == 6000
