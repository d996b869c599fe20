"""decode_batch on frames built in code: every link type, VLAN/QinQ, IPv6 extension
headers, fragments, ARP, snaplen truncation and each damage reason."""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pytest

from analyzer.decode import (
    FRAG_FIRST,
    FRAG_LATER,
    FRAG_NONE,
    HEADER_FIELDS,
    KIND_ARP,
    KIND_IP,
    NO_VLAN,
    PacketBatch,
    decode_batch,
)
from analyzer.reader import RawBatch

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("02000000000b")
V4_A, V4_B = bytes([192, 168, 1, 10]), bytes([192, 168, 1, 40])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("fe800000000000000000000000000002")


def mapped(v4: bytes) -> int:
    return 0x0000_FFFF_0000_0000 | int.from_bytes(v4, "big")


def eth(et: int, payload: bytes, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    hdr = MAC_B + MAC_A
    for tpid, vid in tags:
        hdr += struct.pack(">HH", tpid, vid)
    return hdr + struct.pack(">H", et) + payload


def ipv4(
    proto: int,
    payload: bytes,
    *,
    ihl: int = 5,
    total: int | None = None,
    flags_off: int = 0,
    ident: int = 7,
    version: int = 4,
) -> bytes:
    opts = bytes(ihl * 4 - 20) if ihl >= 5 else b""
    tl = 20 + len(opts) + len(payload) if total is None else total
    hdr = struct.pack(
        ">BBHHHBBH4s4s", (version << 4) | ihl, 0, tl, ident, flags_off, 64, proto, 0, V4_A, V4_B
    )
    return hdr + opts + payload


def ipv6(nh: int, payload: bytes, *, plen: int | None = None) -> bytes:
    pl = len(payload) if plen is None else plen
    return struct.pack(">IHBB", 0x60000000, pl, nh, 64) + V6_A + V6_B + payload


def tcp(
    payload: bytes = b"",
    *,
    sport: int = 40000,
    dport: int = 502,
    seq: int = 1000,
    ack: int = 2000,
    flags: int = 0x18,
    doff: int = 5,
) -> bytes:
    opts = bytes(max(doff - 5, 0) * 4)
    return (
        struct.pack(">HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 8192, 0, 0)
        + opts
        + payload
    )


def udp(
    payload: bytes = b"", *, sport: int = 5353, dport: int = 53, ulen: int | None = None
) -> bytes:
    return (
        struct.pack(">HHHH", sport, dport, 8 + len(payload) if ulen is None else ulen, 0) + payload
    )


def raw_batch(
    frames: list[tuple[bytes, int]],
    wirelens: list[int] | None = None,
    caplens: list[int] | None = None,
) -> RawBatch:
    buf = b"".join(f for f, _ in frames)
    offs = np.cumsum([0] + [len(f) for f, _ in frames[:-1]]).astype(np.int64)
    n = len(frames)
    cl = np.array(caplens or [len(f) for f, _ in frames], dtype=np.uint32)
    return RawBatch(
        buf=np.frombuffer(buf, dtype=np.uint8).copy(),
        data_off=offs,
        caplen=cl,
        wirelen=np.array(wirelens or [len(f) for f, _ in frames], dtype=np.uint32),
        ts_ns=np.arange(n, dtype=np.int64) * 1000,
        linktype=np.array([lt for _, lt in frames], dtype=np.uint16),
        index=np.arange(n, dtype=np.int64) + 100,
    )


def decode(frames: list[tuple[bytes, int]], **kw: list[int]) -> tuple[PacketBatch, Counter]:
    skipped: Counter[str] = Counter()
    return decode_batch(raw_batch(frames, **kw), skipped), skipped


def row(pb: PacketBatch, k: int = 0) -> dict[str, int]:
    return {n: int(getattr(pb, n)[k]) for n in HEADER_FIELDS}


def payload(pb: PacketBatch, k: int = 0) -> bytes:
    off = int(pb.payload_off[k])
    return pb.buf[off : off + int(pb.caplen_payload[k])].tobytes()


# ------------------------------------------------------------------ happy paths


def test_ethernet_ipv4_tcp_with_options() -> None:
    body = b"MODBUS-REQUEST"
    frame = eth(0x0800, ipv4(6, tcp(body, doff=8, flags=0x02), ihl=6))
    pb, skipped = decode([(frame, 1)])
    assert skipped == {}
    assert row(pb) == {
        "kind": KIND_IP,
        "src_mac": int.from_bytes(MAC_A, "big"),
        "dst_mac": int.from_bytes(MAC_B, "big"),
        "has_mac": 1,
        "vlan": NO_VLAN,
        "inner_vlan": NO_VLAN,
        "ip_version": 4,
        "src_hi": 0,
        "src_lo": mapped(V4_A),
        "dst_hi": 0,
        "dst_lo": mapped(V4_B),
        "proto": 6,
        "ip_len": 24 + 32 + len(body),
        "frag": FRAG_NONE,
        "ip_id": 7,
        "sport": 40000,
        "dport": 502,
        "has_l4": 1,
        "tcp_flags": 0x02,
        "seq": 1000,
        "ack": 2000,
        "payload_len": len(body),
        "caplen_payload": len(body),
    }
    assert payload(pb) == body
    assert pb.index.tolist() == [100] and pb.ts_ns.tolist() == [0]


def test_ethernet_padding_is_not_payload() -> None:
    frame = eth(0x0800, ipv4(6, tcp(flags=0x10))) + bytes(6)  # padded to 60 bytes
    pb, _ = decode([(frame, 1)])
    assert row(pb)["payload_len"] == 0 and row(pb)["caplen_payload"] == 0


@pytest.mark.parametrize(
    ("tags", "vlan", "inner"),
    [
        (((0x8100, 0x2000 | 10),), 10, NO_VLAN),  # priority bits are not part of the id
        (((0x88A8, 100), (0x8100, 200)), 100, 200),
        (((0x9100, 5), (0x8100, 6), (0x8100, 7)), 5, 6),
    ],
)
def test_vlan_and_qinq(tags: tuple[tuple[int, int], ...], vlan: int, inner: int) -> None:
    pb, skipped = decode([(eth(0x0800, ipv4(17, udp(b"q")), tags), 1)])
    assert skipped == {}
    r = row(pb)
    assert (r["vlan"], r["inner_vlan"], r["sport"], r["dport"]) == (vlan, inner, 5353, 53)
    assert payload(pb) == b"q"


def test_link_types_all_reach_the_same_ip_fields() -> None:
    ip4 = ipv4(17, udp(b"x"))
    ip6 = ipv6(17, udp(b"y"))
    sll = struct.pack(">HHH8sH", 0, 1, 6, MAC_A + b"\0\0", 0x0800) + ip4
    sll2 = struct.pack(">HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, MAC_A + b"\0\0") + ip6
    frames = [
        (sll, 113),
        (sll2, 276),
        (ip4, 101),
        (ip6, 101),
        (ip4, 12),
        (ip4, 228),
        (ip6, 229),
        (struct.pack("<I", 2) + ip4, 0),
        (struct.pack(">I", 2) + ip4, 0),
        (struct.pack("<I", 24) + ip6, 0),
        (struct.pack("<I", 28) + ip6, 0),
        (struct.pack(">I", 30) + ip6, 0),
        (struct.pack(">I", 2) + ip4, 108),
        (eth(0x86DD, ip6), 1),
    ]
    pb, skipped = decode(frames)
    assert skipped == {}
    assert pb.n == len(frames)
    assert pb.ip_version.tolist() == [4, 6, 4, 6, 4, 4, 6, 4, 4, 6, 6, 6, 4, 6]
    assert pb.has_mac.tolist() == [False] * 13 + [True]
    assert all(payload(pb, k) in (b"x", b"y") for k in range(pb.n))
    assert pb.src_hi[1] == 0x20010DB8_00000000 and pb.src_lo[1] == 1
    assert pb.dst_hi[1] == 0xFE800000_00000000 and pb.dst_lo[1] == 2
    assert pb.ip_len.tolist()[:2] == [20 + 9, 40 + 9]


def test_ipv6_extension_headers_and_fragments() -> None:
    t = tcp(b"abc", flags=0x02)
    hop = struct.pack(">BB6s", 60, 0, bytes(6))  # hop-by-hop -> destination options
    dst = struct.pack(">BB14s", 44, 1, bytes(14))  # 16 bytes -> fragment
    frag_first = struct.pack(">BBHI", 6, 0, 1, 0xDEADBEEF)  # offset 0, M=1
    frag_later = struct.pack(">BBHI", 6, 0, (185 << 3), 0xDEADBEEF)  # offset 1480, M=0
    ah = struct.pack(">BBHII", 17, 1, 0, 0, 0)  # (1 + 2) * 4 = 12 bytes
    frames = [
        (ipv6(0, hop + dst + frag_first + t), 229),
        (ipv6(44, frag_later + b"rest of data"), 229),
        (ipv6(51, ah + udp(b"u")), 229),
        (ipv6(50, b"\0" * 16), 229),  # ESP: stop, no transport header
        (ipv6(59, b""), 229),
    ]
    pb, skipped = decode(frames)
    assert skipped == {}
    assert pb.proto.tolist() == [6, 6, 17, 50, 59]
    assert pb.frag.tolist() == [FRAG_FIRST, FRAG_LATER, FRAG_NONE, FRAG_NONE, FRAG_NONE]
    assert pb.ip_id.tolist()[:2] == [0xDEADBEEF, 0xDEADBEEF]
    assert pb.has_l4.tolist() == [True, False, True, False, False]
    assert pb.sport.tolist() == [40000, 0, 5353, 0, 0]
    assert payload(pb, 0) == b"abc" and payload(pb, 1) == b"rest of data"
    assert payload(pb, 2) == b"u"
    assert pb.payload_len.tolist() == [3, 12, 1, 16, 0]


def test_ipv4_fragments() -> None:
    frames = [
        (eth(0x0800, ipv4(17, udp(b"A" * 16), flags_off=0x2000, ident=99)), 1),
        (eth(0x0800, ipv4(17, b"B" * 24, flags_off=3, ident=99)), 1),
    ]
    pb, skipped = decode(frames)
    assert skipped == {}
    assert pb.frag.tolist() == [FRAG_FIRST, FRAG_LATER]
    assert pb.ip_id.tolist() == [99, 99]
    assert pb.has_l4.tolist() == [True, False]
    assert pb.sport.tolist() == [5353, 0] and pb.dport.tolist() == [53, 0]
    assert pb.payload_len.tolist() == [16, 24]


def test_tiny_first_fragment_is_kept_without_ports() -> None:
    frame = eth(0x0800, ipv4(6, tcp()[:8], flags_off=0x2000))
    pb, skipped = decode([(frame, 1)])
    assert skipped == {} and pb.n == 1
    assert (pb.frag[0], pb.has_l4[0], pb.sport[0], pb.payload_len[0]) == (FRAG_FIRST, 0, 0, 8)


def test_udp_length_comes_from_ip_not_udp_header() -> None:
    frame = eth(0x0800, ipv4(17, udp(b"0123456789", ulen=500)))
    pb, _ = decode([(frame, 1)])
    assert pb.payload_len.tolist() == [10]


def test_icmp_and_icmpv6_type_code() -> None:
    frames = [
        (eth(0x0800, ipv4(1, struct.pack(">BBHHH", 8, 0, 0, 1, 1) + b"ping")), 1),
        (eth(0x86DD, ipv6(58, struct.pack(">BBHI", 129, 0, 0, 0))), 1),
        (eth(0x0800, ipv4(1, struct.pack(">BBHI", 3, 13, 0, 0))), 1),
    ]
    pb, _ = decode(frames)
    assert pb.sport.tolist() == [8, 129, 3] and pb.dport.tolist() == [0, 0, 13]
    assert pb.proto.tolist() == [1, 58, 1] and pb.has_l4.all()
    assert pb.payload_len.tolist() == [4, 0, 0]


def test_other_ip_protocol_has_no_ports() -> None:
    pb, _ = decode([(eth(0x0800, ipv4(47, b"\0" * 12)), 1)])
    assert (pb.proto[0], pb.has_l4[0], pb.sport[0], pb.payload_len[0]) == (47, 0, 0, 12)


def test_arp_fields() -> None:
    arp = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, V4_A, bytes(6), V4_B)
    pb, skipped = decode([(eth(0x0806, arp, ((0x8100, 3),)), 1)])
    assert skipped == {}
    r = row(pb)
    assert r["kind"] == KIND_ARP and r["has_mac"] == 1 and r["vlan"] == 3
    assert r["src_mac"] == int.from_bytes(MAC_A, "big") and r["dst_mac"] == 0
    assert (r["src_lo"], r["dst_lo"], r["ip_version"]) == (mapped(V4_A), mapped(V4_B), 4)
    assert (r["proto"], r["ip_len"], r["has_l4"], r["payload_len"]) == (0, 0, 0, 0)


def test_snaplen_truncated_packet_is_kept() -> None:
    body = b"x" * 1000
    frame = eth(0x0800, ipv4(6, tcp(body)))
    cut = frame[: 14 + 20 + 20 + 10]
    pb, skipped = decode([(cut, 1)], wirelens=[len(frame)])
    assert skipped == {}
    assert (pb.payload_len[0], pb.caplen_payload[0], pb.ip_len[0]) == (1000, 10, 1040)


def test_tso_zero_total_length_uses_wire_length() -> None:
    frame = eth(0x0800, ipv4(6, tcp(b"y" * 100), total=0))
    pb, skipped = decode([(frame, 1)])
    assert skipped == {} and pb.ip_len.tolist() == [140] and pb.payload_len.tolist() == [100]


def test_mixed_link_types_in_one_batch_keep_record_order() -> None:
    ip4 = ipv4(17, udp(b"m"))
    frames = [(eth(0x0800, ip4), 1), (ip4, 101), (b"\0" * 30, 147), (eth(0x0800, ip4), 1)]
    pb, skipped = decode(frames)
    assert pb.index.tolist() == [100, 101, 103]
    assert skipped == {"linktype:147": 1}


# ---------------------------------------------------------------------- damage


def bad(frame: bytes, linktype: int = 1) -> Counter:
    pb, skipped = decode([(frame, linktype)])
    assert pb.n == 0
    return skipped


def test_damage_reasons() -> None:
    arp_ok = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, V4_A, bytes(6), V4_B)
    cases = {
        "truncated_link_header": [
            (eth(0x0800, b"")[:10], 1),
            (eth(0x0800, b"", ((0x8100, 1),))[:16], 1),
        ],
        "bad_ip_version": [(b"\x50" + bytes(30), 101)],
        "truncated_arp": [(eth(0x0806, arp_ok[:20]), 1)],
        "unsupported_arp": [(eth(0x0806, arp_ok[:4] + b"\xff" + arp_ok[5:]), 1)],
        "truncated_ipv4_header": [
            (eth(0x0800, ipv4(6, tcp())[:15]), 1),
            (eth(0x0800, ipv4(6, b"", ihl=15)[:30]), 1),
        ],
        "bad_ipv4_header": [
            (eth(0x0800, ipv4(6, tcp(), ihl=4)), 1),
            (eth(0x0800, ipv4(6, tcp(), total=12)), 1),
            (eth(0x0800, ipv4(6, tcp(), version=5)), 1),
        ],
        "truncated_ipv6_header": [(eth(0x86DD, ipv6(6, tcp())[:30]), 1)],
        "bad_ipv6_header": [(b"\x40" + ipv6(6, tcp())[1:], 229)],
        "truncated_ipv6_ext_header": [(ipv6(0, b"\x06\x00\x00"), 229)],
        "ipv6_ext_chain_too_long": [
            (ipv6(60, b"\x3c\x00" + bytes(6) * 1 + (b"\x3c\x00" + bytes(6)) * 9), 229)
        ],
        "truncated_tcp_header": [(eth(0x0800, ipv4(6, tcp()[:12], total=40)), 1)],
        "bad_tcp_header": [
            (eth(0x0800, ipv4(6, tcp(doff=3))), 1),
            (eth(0x0800, ipv4(6, tcp()[:12] + b"\xa0" + tcp()[13:])), 1),
        ],
        "truncated_udp_header": [(eth(0x0800, ipv4(17, udp()[:4], total=28)), 1)],
        "bad_udp_header": [(eth(0x0800, ipv4(17, udp(), total=24)), 1)],
        "truncated_icmp_header": [(eth(0x0800, ipv4(1, b"\x08\x00", total=28)), 1)],
        "bad_icmp_header": [(eth(0x0800, ipv4(1, bytes(8), total=24)), 1)],
        "linktype:147": [(b"\0" * 40, 147)],
        "ethertype:0x88cc": [(eth(0x88CC, bytes(46)), 1)],
        "llc": [(eth(0x0026, bytes(46)), 1)],
        "loopback_af:99": [(struct.pack("<I", 99) + ipv4(6, tcp()), 0)],
    }
    for reason, frames in cases.items():
        for frame, lt in frames:
            assert bad(frame, lt) == {reason: 1}, reason


def test_damaged_packets_are_dropped_others_kept() -> None:
    good = eth(0x0800, ipv4(17, udp(b"ok")))
    frames = [(good, 1), (eth(0x0800, ipv4(6, tcp(doff=2))), 1), (good, 1)]
    pb, skipped = decode(frames)
    assert pb.index.tolist() == [100, 102]
    assert skipped == {"bad_tcp_header": 1}


def test_empty_batch() -> None:
    raw = raw_batch([(b"\0", 1)])
    empty = RawBatch(
        buf=raw.buf,
        data_off=raw.data_off[:0],
        caplen=raw.caplen[:0],
        wirelen=raw.wirelen[:0],
        ts_ns=raw.ts_ns[:0],
        linktype=raw.linktype[:0],
        index=raw.index[:0],
    )
    pb = decode_batch(empty, Counter())
    assert pb.n == 0 and pb.sport.dtype == np.uint16
