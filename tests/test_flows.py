"""FlowTable: Zeek conn.log semantics on packets built in code (no capture files)."""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzer import schema
from analyzer.decode import FRAG_FIRST, FRAG_LATER, FRAG_NONE, KIND_ARP, KIND_IP, PacketBatch
from analyzer.flows import FlowResult, FlowTable, is_service_port

PROTO = {"icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58}
FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"


def _addr(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    if addr.version == 4:
        return 0, 0xFFFF_0000_0000 | int(addr)
    value = int(addr)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def _mac(text: str | None) -> int:
    return 0 if text is None else int(text.replace(":", ""), 16)


def make_batch(rows: list[dict[str, Any]], *, first_index: int = 0) -> PacketBatch:
    """A PacketBatch with every array filled from `rows` (one dict per packet).

    Row keys: ts (s), src, dst, proto ("tcp"...), sport, dport (ICMP: type, code),
    flags ("S", "SA", "PA", ...), payload (bytes), vlan, inner_vlan, src_mac, dst_mac
    (None = no link layer), frag, ip_id, kind ("arp" for ARP), ip_len (default: 20 +
    transport header + payload)."""
    n = len(rows)
    buf = bytearray()
    cols: dict[str, list[Any]] = {k: [] for k in PacketBatch.__dataclass_fields__}
    for i, r in enumerate(rows):
        proto = PROTO[r.get("proto", "tcp")]
        payload = r.get("payload", b"")
        src_mac = r.get("src_mac", MAC1)
        sh, sl = _addr(r["src"])
        dh, dl = _addr(r.get("dst", "0.0.0.0"))
        hdr = {6: 20, 17: 8, 1: 8, 58: 8}.get(proto, 0)
        ip_hdr = 20 if sl >> 32 == 0xFFFF and sh == 0 else 40
        frag = r.get("frag", FRAG_NONE)
        if frag == FRAG_LATER:
            hdr = 0
        cols["index"].append(first_index + i)
        cols["ts_ns"].append(round(r["ts"] * 1e9))
        cols["kind"].append(KIND_ARP if r.get("kind") == "arp" else KIND_IP)
        cols["src_mac"].append(_mac(src_mac))
        cols["dst_mac"].append(_mac(r.get("dst_mac", MAC2)))
        cols["has_mac"].append(src_mac is not None)
        cols["vlan"].append(r.get("vlan", -1))
        cols["inner_vlan"].append(r.get("inner_vlan", -1))
        cols["ip_version"].append(4 if ip_hdr == 20 else 6)
        cols["src_hi"].append(sh)
        cols["src_lo"].append(sl)
        cols["dst_hi"].append(dh)
        cols["dst_lo"].append(dl)
        cols["proto"].append(proto)
        cols["ip_len"].append(r.get("ip_len", ip_hdr + hdr + len(payload)))
        cols["frag"].append(frag)
        cols["ip_id"].append(r.get("ip_id", 0))
        cols["sport"].append(r.get("sport", 0) if frag != FRAG_LATER else 0)
        cols["dport"].append(r.get("dport", 0) if frag != FRAG_LATER else 0)
        cols["has_l4"].append(frag != FRAG_LATER)
        cols["tcp_flags"].append(sum(FLAG_BITS[c] for c in r.get("flags", "")))
        cols["seq"].append(r.get("seq", 0))
        cols["ack"].append(r.get("ack", 0))
        cols["payload_len"].append(r.get("payload_len", len(payload)))
        cols["payload_off"].append(len(buf))
        cols["caplen_payload"].append(len(payload))
        buf += payload
    dtypes = {
        "index": np.int64,
        "ts_ns": np.int64,
        "kind": np.uint8,
        "src_mac": np.uint64,
        "dst_mac": np.uint64,
        "has_mac": bool,
        "vlan": np.int32,
        "inner_vlan": np.int32,
        "ip_version": np.uint8,
        "src_hi": np.uint64,
        "src_lo": np.uint64,
        "dst_hi": np.uint64,
        "dst_lo": np.uint64,
        "proto": np.uint8,
        "ip_len": np.uint32,
        "frag": np.uint8,
        "ip_id": np.uint32,
        "sport": np.uint16,
        "dport": np.uint16,
        "has_l4": bool,
        "tcp_flags": np.uint8,
        "seq": np.uint32,
        "ack": np.uint32,
        "payload_len": np.uint32,
        "payload_off": np.int64,
        "caplen_payload": np.uint32,
    }
    arrays = {k: np.array(cols[k], dtype=dt).reshape(n) for k, dt in dtypes.items()}
    return PacketBatch(**arrays, buf=np.frombuffer(bytes(buf), dtype=np.uint8).copy())


def run(rows: list[dict[str, Any]], *, splits: tuple[int, ...] = (), **options: Any) -> FlowResult:
    """Feed `rows` to a FlowTable, cut into batches at the `splits` positions."""
    options.setdefault("capture_name", "unit.pcap")
    table = FlowTable(**options)
    bounds = [0, *splits, len(rows)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi > lo:
            table.add(make_batch(rows[lo:hi], first_index=lo))
    return table.finish()


def flows_of(rows: list[dict[str, Any]], **options: Any) -> pd.DataFrame:
    return run(rows, **options).flows


def tcp(
    ts: float,
    src: str,
    sport: int,
    dst: str,
    dport: int,
    flags: str,
    payload: bytes = b"",
    seq: int = 0,
):
    return {
        "seq": seq,
        "ts": ts,
        "src": src,
        "sport": sport,
        "dst": dst,
        "dport": dport,
        "proto": "tcp",
        "flags": flags,
        "payload": payload,
    }


def udp(ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes = b"x", **kw: Any):
    return {
        "ts": ts,
        "src": src,
        "sport": sport,
        "dst": dst,
        "dport": dport,
        "proto": "udp",
        "payload": payload,
        **kw,
    }


C, S = "10.0.0.1", "10.0.0.2"


def c2s(ts: float, flags: str, payload: bytes = b"", sport: int = 40000, dport: int = 80, seq=0):
    return tcp(ts, C, sport, S, dport, flags, payload, seq)


def s2c(ts: float, flags: str, payload: bytes = b"", sport: int = 40000, dport: int = 80, seq=0):
    return tcp(ts, S, dport, C, sport, flags, payload, seq)


def full_connection(t0: float = 0.0) -> list[dict[str, Any]]:
    """A complete HTTP-like exchange; the SYN's sequence number depends on t0."""
    isn = 1000 + round(t0 * 1000)
    return [
        c2s(t0 + 0.0, "S", seq=isn),
        s2c(t0 + 0.1, "SA", seq=5000),
        c2s(t0 + 0.2, "A", seq=isn + 1),
        c2s(t0 + 0.3, "PA", b"GET / HTTP", seq=isn + 1),
        s2c(t0 + 0.4, "A", seq=5001),
        s2c(t0 + 0.5, "PA", b"HTTP/1.1 200 OK\r\n\r\nhi", seq=5001),
        c2s(t0 + 0.6, "FA", seq=isn + 11),
        s2c(t0 + 0.7, "FA", seq=5022),
        c2s(t0 + 0.8, "A", seq=isn + 12),
    ]


def one(frame: pd.DataFrame) -> dict[str, Any]:
    assert len(frame) == 1, frame[["proto", "orig_h", "orig_p", "resp_h", "resp_p"]]
    return frame.iloc[0].to_dict()


# --- TCP: originator, history, conn_state, counters ---------------------------------------


def test_full_handshake_and_fin_gives_sf_with_exact_counters():
    f = one(flows_of(full_connection()))
    assert (f["orig_h"], f["orig_p"], f["resp_h"], f["resp_p"]) == (C, 40000, S, 80)
    assert f["proto"] == "tcp"
    assert f["orig_evidence"] == "syn"
    assert f["history"] == "ShADadFf"
    assert f["conn_state"] == "SF"
    assert (f["orig_pkts"], f["resp_pkts"]) == (5, 4)
    assert (f["orig_bytes"], f["resp_bytes"]) == (10, 21)
    assert (f["orig_ip_bytes"], f["resp_ip_bytes"]) == (5 * 40 + 10, 4 * 40 + 21)
    assert f["ts"] == pd.Timestamp(0, unit="s", tz="UTC")
    assert f["last_ts"] == pd.Timestamp("1970-01-01 00:00:00.800", tz="UTC")
    assert f["duration"] == pytest.approx(0.8)
    assert (f["orig_mac"], f["resp_mac"]) == (MAC1, MAC1)
    assert pd.isna(f["vlan"]) and pd.isna(f["inner_vlan"])
    assert f["_orig_head"] == b"GET / HTTP"
    assert f["_resp_head"] == b"HTTP/1.1 200 OK\r\n\r\nhi"
    assert f["_resp_bcast"] is False or f["_resp_bcast"] == np.False_
    assert f["service"] is None
    assert f["capture"] == "unit.pcap"


def test_rejected_connection_is_rej():
    f = one(flows_of([c2s(0, "S"), s2c(0.1, "RA")]))
    assert (f["orig_h"], f["history"], f["conn_state"]) == (C, "Sr", "REJ")


@pytest.mark.parametrize("syns", [1, 3])
def test_unanswered_syn_is_s0(syns):
    f = one(flows_of([c2s(i, "S") for i in range(syns)]))
    assert (f["orig_h"], f["history"], f["conn_state"], f["orig_pkts"]) == (C, "S", "S0", syns)
    assert f["resp_pkts"] == 0 and f["resp_mac"] is None


@pytest.mark.parametrize(
    ("tail", "history", "state"),
    [
        ([c2s(0.3, "RA")], "ShAR", "RSTO"),
        ([s2c(0.3, "RA")], "ShAr", "RSTR"),
    ],
)
def test_reset_after_establishment(tail, history, state):
    rows = [c2s(0, "S"), s2c(0.1, "SA"), c2s(0.2, "A"), *tail]
    f = one(flows_of(rows))
    assert (f["history"], f["conn_state"]) == (history, state)


def test_syn_then_originator_reset_is_rstos0():
    f = one(flows_of([c2s(0, "S"), c2s(0.1, "R")]))
    assert (f["history"], f["conn_state"]) == ("SR", "RSTOS0")


def test_midstream_with_service_port_responder_is_oth():
    rows = [s2c(0, "PA", b"abc"), c2s(0.1, "A")]
    f = one(flows_of(rows))
    assert (f["orig_h"], f["orig_p"], f["resp_p"]) == (C, 40000, 80)
    assert f["orig_evidence"] == "port"
    assert (f["history"], f["conn_state"]) == ("^dA", "OTH")  # flipped at the first packet
    assert (f["orig_pkts"], f["resp_pkts"], f["resp_bytes"]) == (1, 1, 3)


def test_midstream_catalog_port_on_sender_side_makes_receiver_the_originator():
    rows = [s2c(0, "PA", b"x", dport=12000), c2s(0.1, "A", dport=12000)]
    with_catalog = one(flows_of(rows, service_ports=frozenset({("tcp", 12000)})))
    assert (with_catalog["orig_h"], with_catalog["orig_evidence"]) == (C, "port")
    without = one(flows_of(rows))
    assert (without["orig_h"], without["orig_evidence"]) == (S, "first_packet")


def test_midstream_without_or_with_two_service_ports_takes_the_first_sender():
    rows = [tcp(0, S, 50001, C, 50000, "A"), tcp(0.1, C, 50000, S, 50001, "A")]
    f = one(flows_of(rows))
    assert (f["orig_h"], f["orig_p"], f["orig_evidence"]) == (S, 50001, "first_packet")
    both = [tcp(0, S, 443, C, 80, "A"), tcp(0.1, C, 80, S, 443, "A")]
    f = one(flows_of(both))
    assert (f["orig_h"], f["orig_p"], f["orig_evidence"]) == (S, 443, "first_packet")


def test_synack_first_makes_its_receiver_the_originator():
    f = one(flows_of([s2c(0, "SA"), c2s(0.1, "A"), c2s(0.2, "PA", b"q")]))
    assert (f["orig_h"], f["orig_evidence"]) == (C, "synack")
    assert (f["history"], f["conn_state"]) == ("^hAD", "S1")


def test_syn_sender_wins_even_when_it_uses_the_service_port():
    f = one(flows_of([tcp(0, S, 80, C, 40000, "S"), tcp(0.1, C, 40000, S, 80, "SA")]))
    assert (f["orig_h"], f["orig_p"], f["orig_evidence"]) == (S, 80, "syn")


def seqd(rows: list[tuple[str, str, int, bytes]]) -> list[dict[str, Any]]:
    """TCP packets between C:40000 and S:80 from (direction, flags, seq, payload);
    direction ">" = C to S, "<" = S to C; 0.1 s apart."""
    out = []
    for i, (way, flags, seq, payload) in enumerate(rows):
        make = c2s if way == ">" else s2c
        out.append(make(i * 0.1, flags, payload, seq=seq))
    return out


@pytest.mark.parametrize(
    ("packets", "history", "state"),
    [
        ([(">", "S", 1, b""), ("<", "SA", 9, b""), (">", "A", 2, b""), (">", "FA", 2, b""),
          ("<", "FA", 10, b""), (">", "A", 3, b"")], "ShAFf", "SF"),
        ([(">", "S", 1, b""), ("<", "SA", 9, b"")], "Sh", "S1"),
        ([(">", "S", 1, b""), ("<", "SA", 9, b""), (">", "A", 2, b""), (">", "PA", 2, b"x"),
          (">", "FA", 3, b"")], "ShADF", "S2"),
        ([(">", "S", 1, b""), ("<", "SA", 9, b""), (">", "A", 2, b""), (">", "PA", 2, b"x"),
          ("<", "FA", 10, b"")], "ShADf", "S3"),
        ([(">", "S", 1, b""), (">", "F", 2, b"")], "SF", "SH"),
        ([("<", "SA", 9, b""), (">", "A", 2, b""), ("<", "RA", 10, b"")], "^hAr", "RSTR"),
        ([("<", "SA", 9, b""), ("<", "R", 10, b"")], "^hr", "RSTRH"),
        ([("<", "SA", 9, b""), ("<", "FA", 10, b"")], "^hf", "SHR"),
        ([(">", "A", 2, b""), (">", "R", 2, b"")], "AR", "OTH"),
        ([(">", "S", 1, b""), ("<", "RA", 0, b"")], "Sr", "REJ"),
        ([(">", "S", 1, b""), ("<", "SA", 9, b""), (">", "R", 2, b"")], "ShR", "RSTO"),
    ],
)  # fmt: skip
def test_zeek_state_machine_per_packet(packets, history, state):
    f = one(flows_of(seqd(packets)))
    assert (f["history"], f["conn_state"]) == (history, state)


HANDSHAKE = [(">", "S", 1, b""), ("<", "SA", 9, b""), (">", "A", 2, b"")]


def test_retransmitted_data_is_t_at_1_10_100():
    """Zeek's DidRxmit through ScaledHistoryEntry: a data segment that does not advance
    the sender's sequence writes T at the 1st, 10th and 100th time, not more."""
    once = seqd([*HANDSHAKE, (">", "PA", 2, b"abc"), (">", "PA", 2, b"abc")])
    assert one(flows_of(once))["history"] == "ShADT"
    many = seqd([*HANDSHAKE, (">", "PA", 2, b"abc")] + [(">", "PA", 2, b"abc")] * 150)
    assert one(flows_of(many))["history"] == "ShADTTT"
    answered = seqd([*HANDSHAKE, ("<", "PA", 10, b"ok"), ("<", "PA", 10, b"ok")])
    assert one(flows_of(answered))["history"] == "ShAdt"


def test_new_data_after_a_gap_or_in_order_is_no_retransmission():
    rows = seqd([*HANDSHAKE, (">", "PA", 2, b"abc"), (">", "PA", 5, b"def"), (">", "PA", 50, b"g")])
    assert one(flows_of(rows))["history"] == "ShAD"


@pytest.mark.parametrize(
    ("resets", "history"),
    [((2, 2), "ShAR"), ((2, 7), "ShARR"), ((2, 7, 7, 9), "ShARRR")],
)
def test_reset_letter_repeats_when_its_sequence_number_moves(resets, history):
    """Zeek's update_history: R again when the RST's relative sequence number differs
    from the endpoint's previous RST; the same for F and for S/H."""
    rows = seqd([*HANDSHAKE] + [(">", "R", seq, b"") for seq in resets])
    assert one(flows_of(rows))["history"] == history


def test_fin_letter_repeats_when_its_sequence_number_moves():
    rows = seqd([*HANDSHAKE, (">", "FA", 2, b""), (">", "FA", 2, b""), (">", "FA", 4, b"")])
    assert one(flows_of(rows))["history"] == "ShAFF"


def test_later_syn_moves_the_originator_and_writes_a_caret():
    """Midstream start without service ports: the first sender is the originator, until
    the other side sends a SYN (Zeek's FlipRoles writes '^' there; earlier letters keep
    their case)."""
    rows = [tcp(0, C, 40000, S, 50000, "A", seq=5), tcp(0.1, S, 50000, C, 40000, "S", seq=9)]
    f = one(flows_of(rows))
    assert (f["orig_h"], f["orig_p"], f["orig_evidence"]) == (S, 50000, "syn")
    assert f["history"] == "A^S"


def test_syn_ack_first_writes_a_caret_before_the_first_letter():
    f = one(flows_of([s2c(0, "SA", seq=9), c2s(0.1, "A", seq=2)]))
    assert (f["orig_h"], f["orig_evidence"], f["history"]) == (C, "synack", "^hA")


# --- UDP, broadcast, ICMP ---------------------------------------------------------------------


def test_udp_request_response_is_one_sf_connection():
    rows = [udp(0, C, 40000, S, 53, b"q" * 30), udp(0.01, S, 53, C, 40000, b"r" * 50)]
    f = one(flows_of(rows))
    assert (f["orig_h"], f["orig_p"], f["resp_h"], f["resp_p"]) == (C, 40000, S, 53)
    assert (f["orig_evidence"], f["history"], f["conn_state"]) == ("first_packet", "Dd", "SF")
    assert (f["orig_bytes"], f["resp_bytes"]) == (30, 50)
    assert (f["orig_ip_bytes"], f["resp_ip_bytes"]) == (58, 78)


def test_udp_only_request_is_s0():
    f = one(flows_of([udp(0, C, 40000, S, 53)]))
    assert (f["history"], f["conn_state"]) == ("D", "S0")


def test_udp_from_a_service_port_to_a_client_port_is_flipped():
    f = one(flows_of([udp(0, S, 123, C, 40000)]))
    assert (f["orig_h"], f["orig_p"], f["resp_h"], f["resp_p"]) == (C, 40000, S, 123)
    assert (f["orig_evidence"], f["history"], f["conn_state"]) == ("port", "^d", "SHR")


def test_udp_between_two_service_ports_keeps_the_first_sender():
    f = one(flows_of([udp(0, S, 137, C, 137), udp(1, C, 137, S, 137)]))
    assert (f["orig_h"], f["orig_evidence"]) == (S, "first_packet")


@pytest.mark.parametrize(
    ("dst", "dport"),
    [("255.255.255.255", 50000), ("10.0.0.255", 50000), ("224.0.0.251", 5353), ("ff02::fb", 5353)],
)
def test_broadcast_or_multicast_destination_is_always_the_responder(dst, dport):
    src = "fe80::1" if ":" in dst else "10.0.0.5"
    rows = [udp(0, src, 12000, dst, dport)]
    f = one(flows_of(rows, service_ports=frozenset({("udp", 12000)})))
    assert (f["orig_h"], f["orig_p"], f["resp_h"], f["resp_p"]) == (src, 12000, dst, dport)
    assert f["orig_evidence"] == "first_packet"
    assert bool(f["_resp_bcast"]) is True


def test_unicast_answers_to_a_broadcast_request_are_their_own_connection():
    rows = [
        udp(0, "10.0.0.5", 40000, "255.255.255.255", 12000),
        udp(0.1, "10.0.0.7", 12000, "10.0.0.5", 40000),
        udp(0.2, "10.0.0.8", 12000, "10.0.0.5", 40000),
    ]
    frame = flows_of(rows, service_ports=frozenset({("udp", 12000)}))
    got = frame[["orig_h", "resp_h", "resp_p", "orig_evidence", "_resp_bcast"]]
    assert got.values.tolist() == [
        ["10.0.0.5", "255.255.255.255", 12000, "first_packet", True],
        ["10.0.0.5", "10.0.0.7", 12000, "port", False],
        ["10.0.0.5", "10.0.0.8", 12000, "port", False],
    ]


def icmp(ts: float, src: str, dst: str, icmp_type: int, code: int = 0, proto: str = "icmp"):
    return {
        "ts": ts,
        "src": src,
        "dst": dst,
        "proto": proto,
        "sport": icmp_type,
        "dport": code,
        "payload": b"p" * 8,
    }


def test_icmp_echo_request_and_reply_are_one_connection():
    rows = [icmp(0, C, S, 8), icmp(0.001, S, C, 0), icmp(1, C, S, 8), icmp(1.001, S, C, 0)]
    f = one(flows_of(rows))
    assert (f["proto"], f["orig_h"], f["orig_p"], f["resp_h"], f["resp_p"]) == ("icmp", C, 8, S, 0)
    assert (f["orig_pkts"], f["resp_pkts"], f["conn_state"], f["history"]) == (2, 2, "OTH", "")


def test_icmp_reply_seen_first_still_makes_the_requester_the_originator():
    f = one(flows_of([icmp(0, S, C, 0), icmp(1, C, S, 8)]))
    assert (f["orig_h"], f["orig_p"], f["resp_p"], f["orig_evidence"]) == (C, 8, 0, "port")


def test_icmp6_echo_pairs_128_with_129():
    a, b = "2001:db8::1", "2001:db8::2"
    f = one(flows_of([icmp(0, a, b, 128, proto="icmp6"), icmp(0.1, b, a, 129, proto="icmp6")]))
    assert (f["proto"], f["orig_h"], f["orig_p"], f["resp_p"]) == ("icmp6", a, 128, 129)


def test_icmp_error_uses_the_code_as_counterpart():
    f = one(flows_of([icmp(0, "10.0.0.254", C, 3, code=1)]))
    assert (f["orig_h"], f["orig_p"], f["resp_p"]) == ("10.0.0.254", 3, 1)


# --- splitting: timeouts and port reuse ---------------------------------------------------------


@pytest.mark.parametrize(
    ("gap_s", "expected"), [(299.0, 1), (299.999999, 1), (300.0, 2), (301.0, 2)]
)
def test_tcp_idle_timeout_is_five_minutes(gap_s, expected):
    """A gap of at least the timeout ends the connection (Zeek's inactivity timer)."""
    rows = [c2s(0, "PA", b"a"), c2s(gap_s, "PA", b"b")]
    assert len(flows_of(rows)) == expected


@pytest.mark.parametrize(("gap_s", "expected"), [(59.0, 1), (60.0, 2), (61.0, 2)])
def test_udp_idle_timeout_is_one_minute(gap_s, expected):
    rows = [udp(0, C, 40000, S, 53), udp(gap_s, C, 40000, S, 53)]
    assert len(flows_of(rows)) == expected


def test_idle_timeouts_are_options():
    rows = [udp(0, C, 40000, S, 53), udp(10, C, 40000, S, 53)]
    assert len(flows_of(rows, udp_idle_timeout_s=5.0)) == 2


def test_timeout_split_gives_two_connections_with_their_own_counters():
    rows = [udp(0, C, 40000, S, 53), udp(0.5, S, 53, C, 40000), udp(100, C, 40000, S, 53)]
    frame = flows_of(rows)
    assert frame[["orig_pkts", "resp_pkts", "conn_state"]].values.tolist() == [
        [1, 1, "SF"],
        [1, 0, "S0"],
    ]
    assert frame["uid"].nunique() == 2


def test_new_syn_after_fin_close_starts_a_new_connection():
    frame = flows_of(full_connection(0) + full_connection(2.0))
    assert frame["conn_state"].tolist() == ["SF", "SF"]
    assert frame["orig_pkts"].tolist() == [5, 5]


def test_new_syn_after_reset_starts_a_new_connection():
    rows = [c2s(0, "S", seq=1), s2c(0.1, "RA"), c2s(1, "S", seq=2), s2c(1.1, "SA"), c2s(1.2, "A")]
    frame = flows_of(rows)
    assert frame[["history", "conn_state"]].values.tolist() == [["Sr", "REJ"], ["ShA", "S1"]]


def test_syn_retransmitted_after_reset_with_the_same_isn_stays_one_connection():
    # Windows retries a refused connect with the same initial sequence number; Zeek's
    # IsReuse does not count that as a new connection (nor does tshark).
    rows = [c2s(0, "S", seq=7), s2c(0.1, "RA"), c2s(0.5, "S", seq=7), s2c(0.6, "RA")]
    f = one(flows_of(rows))
    assert (f["orig_pkts"], f["resp_pkts"], f["conn_state"]) == (2, 2, "REJ")


def test_retransmitted_syn_in_an_open_connection_does_not_split():
    rows = [c2s(0, "S"), s2c(0.1, "SA"), c2s(0.2, "A"), c2s(0.3, "S")]
    assert len(flows_of(rows)) == 1


def test_several_reuses_within_one_batch():
    rows = full_connection(0) + full_connection(1) + full_connection(2)
    frame = flows_of(rows)
    assert frame["conn_state"].tolist() == ["SF", "SF", "SF"]
    assert frame["ts"].dt.second.tolist() == [0, 1, 2]


# --- keys, identity, batch boundaries -------------------------------------------------------------


def test_vlans_separate_connections_and_are_reported():
    rows = [
        {**udp(0, C, 40000, S, 53), "vlan": 10},
        {**udp(0.1, C, 40000, S, 53), "vlan": 10, "inner_vlan": 20},
        udp(0.2, C, 40000, S, 53),
    ]
    frame = flows_of(rows)
    assert frame["vlan"].tolist()[:2] == [10, 10]
    assert pd.isna(frame["vlan"].iloc[2])
    assert pd.isna(frame["inner_vlan"].iloc[0]) and frame["inner_vlan"].iloc[1] == 20


def test_ipv6_addresses_are_compressed_text():
    f = one(flows_of([udp(0, "2001:db8:0:0::1", 40000, "2001:0db8::0002", 53)]))
    assert (f["orig_h"], f["resp_h"]) == ("2001:db8::1", "2001:db8::2")


def test_missing_link_layer_gives_null_macs():
    f = one(flows_of([{**udp(0, C, 40000, S, 53), "src_mac": None}]))
    assert f["orig_mac"] is None and f["resp_mac"] is None


def test_uids_are_stable_and_distinct():
    rows = full_connection(0) + [udp(0.05, C, 40000, S, 53), icmp(0.06, C, S, 8)]
    first, second = flows_of(rows), flows_of(rows)
    assert first["uid"].tolist() == second["uid"].tolist()
    assert first["uid"].nunique() == 3
    assert all(u.startswith("C") and len(u) == 12 and u.isalnum() for u in first["uid"])
    renamed = flows_of(rows, capture_name="<stdin>")  # same packets, another name
    assert renamed["uid"].tolist() == first["uid"].tolist()
    later = flows_of([{**r, "ts": r["ts"] + 1.0} for r in rows])  # other packets
    assert set(later["uid"]).isdisjoint(first["uid"])


def scenario() -> list[dict[str, Any]]:
    """Interleaved connections exercising every cross-batch state."""
    rows = []
    rows += full_connection(0.0)
    rows += [udp(0.05 + i * 0.01, C, 41000, S, 53, bytes(i + 1)) for i in range(3)]
    rows += [icmp(0.2, C, S, 8), icmp(0.21, S, C, 0)]
    rows += [c2s(0.9, "S", sport=40001, seq=5), s2c(0.95, "RA", sport=40001)]
    rows += full_connection(1.0)  # port reuse after close
    rows += [udp(70.0, C, 41000, S, 53)]  # UDP timeout split
    rows += [s2c(80.0, "PA", b"late", sport=40002), c2s(80.1, "A", sport=40002)]
    rows += [c2s(80.2, "S", sport=40001, seq=6), s2c(80.3, "SA", sport=40001)]
    rows += [c2s(80.4, "S", sport=40001, seq=6), s2c(80.5, "RA", sport=40001)]
    rows += [c2s(80.6, "S", sport=40001, seq=6), c2s(80.7, "S", sport=40001, seq=8)]
    rows.sort(key=lambda r: r["ts"])
    return rows


def test_connections_do_not_depend_on_batch_boundaries():
    rows = scenario()
    whole = flows_of(rows)
    assert len(whole) == 9
    for cut in range(1, len(rows)):
        pd.testing.assert_frame_equal(flows_of(rows, splits=(cut,)), whole)
    pd.testing.assert_frame_equal(flows_of(rows, splits=tuple(range(1, len(rows)))), whole)


# --- fragments, ARP, DNS, hosts -----------------------------------------------------------------


def test_later_fragment_joins_the_connection_of_its_first_fragment():
    rows = [
        {**udp(0, C, 40000, S, 53, b"a" * 100), "frag": FRAG_FIRST, "ip_id": 7},
        {**udp(0.001, C, 0, S, 0, b"b" * 60), "frag": FRAG_LATER, "ip_id": 7},
        {**udp(0.002, C, 0, S, 0, b"c" * 60), "frag": FRAG_LATER, "ip_id": 8},
    ]
    frame = flows_of(rows)
    got = frame[["orig_p", "resp_p", "orig_pkts", "orig_bytes", "orig_ip_bytes"]]
    assert got.values.tolist() == [[40000, 53, 2, 160, 128 + 80], [0, 0, 1, 60, 80]]


def test_arp_makes_no_connection_and_reports_sender_pairs():
    arp = {"ts": 1.0, "src": "10.0.0.9", "kind": "arp", "proto": "tcp", "src_mac": MAC2}
    probe = {**arp, "src": "0.0.0.0", "ts": 1.5}
    result = run([arp, {**arp, "ts": 2.0}, probe, udp(3, C, 40000, S, 53)])
    assert len(result.flows) == 1
    assert result.arp.values.tolist() == [["10.0.0.9", MAC2, pd.Timestamp(1, unit="s", tz="UTC")]]


def test_dns_responses_are_collected_with_their_payload():
    rows = [udp(0, C, 40000, S, 53, b"query"), udp(0.1, S, 53, C, 40000, b"answer")]
    dns = run(rows).dns
    assert dns[["client", "server", "payload"]].values.tolist() == [[C, S, b"answer"]]
    assert dns["ts"].iloc[0] == pd.Timestamp("1970-01-01 00:00:00.1", tz="UTC")


def test_hosts_sum_their_connections_and_skip_broadcast():
    rows = full_connection(0) + [
        udp(5, C, 68, "255.255.255.255", 67),
        udp(1, C, 5353, "224.0.0.251", 5353),
        udp(1, "ff::1", 5353, "ff02::fb", 5353),
        udp(1, "0.0.0.0", 68, "10.0.0.255", 67),
    ]
    hosts = run(rows).hosts.set_index("ip")
    assert sorted(hosts.index) == [C, S, "ff::1"]
    assert hosts.loc[C, "pkts"] == 11 and hosts.loc[S, "pkts"] == 9
    assert hosts.loc[S, "bytes"] == 5 * 40 + 10 + 4 * 40 + 21
    assert hosts.loc[C, "last_ts"] == pd.Timestamp(5, unit="s", tz="UTC")
    assert hosts.loc[C, "mac"] == MAC1


def test_empty_table_gives_typed_empty_frames():
    result = FlowTable(capture_name="empty.pcap").finish()
    assert len(result.flows) == 0 and list(result.hosts.columns) == [
        "ip",
        "mac",
        "first_ts",
        "last_ts",
        "pkts",
        "bytes",
    ]
    assert str(result.flows["ts"].dtype) == "datetime64[us, UTC]"
    assert len(result.arp) == 0 and len(result.dns) == 0


@pytest.mark.parametrize("rows", [[], scenario()], ids=["empty", "scenario"])
def test_flows_convert_to_the_output_schema(rows):
    frame = flows_of(rows).copy()
    frame["system"] = None
    frame["signature_id"] = None
    frame["verdict"] = "unmonitored"
    frame["severity"] = "info"
    frame["reason"] = "r"
    table = schema.to_arrow(frame, schema.FLOWS)
    assert table.num_rows == len(rows and frame)
    assert table.schema.field("ts").type == schema.TS


def test_is_service_port():
    ports = frozenset({("tcp", 12000)})
    assert is_service_port("tcp", 443, ports)
    assert is_service_port("tcp", 12000, ports)
    assert not is_service_port("udp", 12000, ports)
    assert not is_service_port("tcp", 0, ports)
    assert not is_service_port("tcp", 1024, ports)


def test_idle_connections_leave_the_live_table_without_changing_results():
    rows = [udp(i * 120.0, C, 40000 + i, S, 53) for i in range(40)]
    table = FlowTable(capture_name="unit.pcap")
    for i, row in enumerate(rows):
        table.add(make_batch([row], first_index=i))
        assert table.live_connections == 1  # the previous one expired at this packet
    frame = table.finish().flows
    assert len(frame) == 40 and frame["orig_p"].tolist() == list(range(40000, 40040))


def test_dns_responses_kept_only_when_they_mention_a_wanted_name():
    """With dns_names, responses about other names are dropped at collection time (memory
    must not grow with the capture); the match is on the uncompressed question name and
    ignores case (DNS 0x20)."""
    wanted = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x03CMI\x02ta\x02co\x02at\x00"
    other = b"\x12\x35\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x03www\x02ta\x02co\x02de\x00"
    suffix_only = b"\x12\x36\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x04xcmi\x02ta\x02co\x02at\x00"
    rows = [
        udp(0.1, S, 53, C, 40000, wanted),
        udp(0.2, S, 53, C, 40001, other),
        udp(0.3, S, 53, C, 40002, suffix_only),
    ]
    dns = run(rows, dns_names={"cmi.ta.co.at", "api.ta.co.at"}).dns
    assert dns["payload"].tolist() == [wanted]
    assert run(rows, dns_names=set()).dns.empty
    assert len(run(rows).dns) == 3  # no filter: every response


def test_dns_name_filter_keeps_the_right_responses_of_one_batch():
    """The filter searches all of a batch's responses at once: each hit must land on its
    own packet, whatever its position, with empty payloads and several hits around it."""
    head = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    cmi = head + b"\x03cmi\x02ta\x02co\x02at\x00"
    api = head + b"\x03api\x02ta\x02co\x02at\x00\xc0\x0c" + b"\x03cmi\x02ta\x02co\x02at\x00"
    other = head + b"\x03www\x07example\x00"
    payloads = [other, b"", cmi, other, other, api, b"", cmi]
    rows = [udp(0.1 * (i + 1), S, 53, C, 40000 + i, p) for i, p in enumerate(payloads)]
    dns = run(rows, dns_names={"cmi.ta.co.at", "api.ta.co.at"}).dns
    assert dns["payload"].tolist() == [cmi, api, cmi]


# --- bounded live table, payload heads ------------------------------------------------------------


def test_a_syn_flood_is_bounded_by_the_live_cap_and_keeps_every_connection():
    """Beyond max_live_connections the least recently active connection is expired early:
    it is still a row (flows keep every connection) and counted in `evicted`."""
    rows = [c2s(i * 0.001, "S", dport=1000 + i, seq=i) for i in range(300)]
    table = FlowTable(capture_name="unit.pcap", max_live_connections=50)
    for lo in range(0, 300, 64):
        table.add(make_batch(rows[lo : lo + 64], first_index=lo))
        assert table.live_connections <= 50
    result = table.finish()
    assert result.evicted == 250
    assert len(result.flows) == 300
    assert sorted(result.flows["resp_p"]) == list(range(1000, 1300))
    assert set(result.flows["conn_state"]) == {"S0"}
    uncapped = run(rows)
    assert uncapped.evicted == 0
    pd.testing.assert_frame_equal(result.flows, uncapped.flows)


def test_an_evicted_connection_that_sends_again_continues_as_a_new_one():
    rows = [c2s(0, "PA", b"a", seq=1), udp(0.1, C, 40000, S, 53), c2s(0.2, "PA", b"b", seq=2)]
    result = run(rows, max_live_connections=1)
    assert result.evicted == 2
    assert result.flows["proto"].tolist() == ["tcp", "udp", "tcp"]


def test_heads_join_the_first_256_bytes_of_each_direction_across_packets():
    """The MS-RPC endpoint-mapper answer sits about 200 bytes into the responder's
    stream (bind_ack, then the ept_map response): the head spans both segments."""
    bind_ack, ept_map = bytes(range(100)) + b"\x01" * 20, b"\x02" * 300
    rows = seqd(
        [*HANDSHAKE, (">", "PA", 2, b"req"), ("<", "PA", 10, bind_ack),
         ("<", "PA", 10, bind_ack), ("<", "PA", 130, ept_map)]
    )  # fmt: skip
    f = one(flows_of(rows))
    assert f["_resp_head"] == (bind_ack + ept_map)[:256]  # the retransmission adds nothing
    assert f["_orig_head"] == b"req"
    assert f["history"] == "ShADdt"


def test_a_snaplen_cut_packet_ends_its_head():
    cut = {**c2s(0.3, "PA", b"abc", seq=2), "payload_len": 1000}
    rows = [*seqd(HANDSHAKE), cut, c2s(0.4, "PA", b"later", seq=1002)]
    assert one(flows_of(rows))["_orig_head"] == b"abc"


def test_heads_do_not_depend_on_batch_boundaries():
    rows = seqd([*HANDSHAKE] + [(">", "PA", 2 + 40 * i, bytes([i]) * 40) for i in range(8)])
    whole = one(flows_of(rows))["_orig_head"]
    assert whole == b"".join(bytes([i]) * 40 for i in range(7))[:256]
    for cut in range(1, len(rows)):
        assert one(flows_of(rows, splits=(cut,)))["_orig_head"] == whole
