"""Reference decoder: one packet at a time, clear and slow on purpose.

    decode_record(data: bytes, linktype: int, wirelen: int) -> dict | str

Returns the PacketBatch fields of one packet (payload_off relative to the packet's first
byte) or the skip reason (the same keys as decode.py's module docstring). It follows
the rules documented in analyzer/decode.py, but reads each header with dpkt's header
classes (ARP, IPv4, TCP, UDP) or struct, written independently of the compiled kernels;
the differential test (test_decode_differential.py) checks that the two agree on every
packet. It lives with the tests: the product never imports dpkt.
"""

from __future__ import annotations

import struct
from typing import Any

import dpkt

from analyzer.decode import (
    AF_INET,
    AF_INET6,
    ETHER_MAX_LEN,
    FRAG_FIRST,
    FRAG_LATER,
    FRAG_NONE,
    IPV6_EXT,
    KIND_ARP,
    KIND_IP,
    MAX_IPV6_EXT,
    MAX_VLAN_TAGS,
    NO_VLAN,
    VLAN_TPIDS,
)

IPV4_MAPPED = 0x0000_FFFF_0000_0000


def decode_record(data: bytes, linktype: int, wirelen: int) -> dict[str, Any] | str:
    f: dict[str, Any] = {
        "kind": KIND_IP,
        "src_mac": 0,
        "dst_mac": 0,
        "has_mac": False,
        "vlan": NO_VLAN,
        "inner_vlan": NO_VLAN,
        "ip_version": 0,
        "src_hi": 0,
        "src_lo": 0,
        "dst_hi": 0,
        "dst_lo": 0,
        "proto": 0,
        "ip_len": 0,
        "frag": FRAG_NONE,
        "ip_id": 0,
        "sport": 0,
        "dport": 0,
        "has_l4": False,
        "tcp_flags": 0,
        "seq": 0,
        "ack": 0,
        "payload_len": 0,
        "payload_off": 0,
        "caplen_payload": 0,
    }
    link = _link(data, linktype, f)
    if isinstance(link, str):
        return link
    l3, et = link
    if et == 0x0806:
        return _arp(data, l3, f)
    if et == 0x0800:
        net = _ipv4(data, l3, wirelen, f)
    elif et == 0x86DD:
        net = _ipv6(data, l3, f)
    elif f["has_mac"] and et <= ETHER_MAX_LEN:
        return "llc"
    else:
        return f"ethertype:0x{et:04x}"
    if isinstance(net, str):
        return net
    l4, ip_payload = net
    return _transport(data, l3 + l4, ip_payload, f)


def _mac(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _link(data: bytes, linktype: int, f: dict[str, Any]) -> tuple[int, int] | str:
    """(network header offset, ethertype) or a skip reason."""
    tags = False
    if linktype == 1:
        if len(data) < 14:
            return "truncated_link_header"
        f["dst_mac"], f["src_mac"], f["has_mac"] = _mac(data[0:6]), _mac(data[6:12]), True
        l3, et = 14, struct.unpack(">H", data[12:14])[0]
        tags = True
    elif linktype in (113, 276):
        hlen = 16 if linktype == 113 else 20
        if len(data) < hlen:
            return "truncated_link_header"
        cls = dpkt.sll.SLL if linktype == 113 else dpkt.sll2.SLL2
        l3, et = hlen, cls(data[:hlen]).ethtype
        tags = True
    elif linktype in (101, 12, 14, 228, 229):
        l3 = 0
        if len(data) < 1:
            return "truncated_link_header"
        version = {228: 4, 229: 6}.get(linktype, data[0] >> 4)
        et = {4: 0x0800, 6: 0x86DD}.get(version, -1)
        if et == -1:
            return "bad_ip_version"
    elif linktype in (0, 108):
        if len(data) < 4:
            return "truncated_link_header"
        be = struct.unpack(">I", data[:4])[0]
        le = struct.unpack("<I", data[:4])[0]
        af = be if linktype == 108 or le >= 0x10000 else le
        if af == AF_INET:
            et = 0x0800
        elif af in AF_INET6:
            et = 0x86DD
        else:
            return f"loopback_af:{af}"
        l3 = 4
    else:
        return f"linktype:{linktype}"
    depth = 0
    while tags and et in VLAN_TPIDS:
        if depth == MAX_VLAN_TAGS:
            return "vlan_stack_too_deep"
        if len(data) < l3 + 4:
            return "truncated_link_header"
        tci, et = struct.unpack(">HH", data[l3 : l3 + 4])
        if depth == 0:
            f["vlan"] = tci & 0x0FFF
        elif depth == 1:
            f["inner_vlan"] = tci & 0x0FFF
        l3 += 4
        depth += 1
    return l3, et


def _arp(data: bytes, l3: int, f: dict[str, Any]) -> dict[str, Any] | str:
    if len(data) - l3 < 28:
        return "truncated_arp"
    arp = dpkt.arp.ARP(data[l3 : l3 + 28])
    if (arp.hrd, arp.pro, arp.hln, arp.pln) != (1, 0x0800, 6, 4):
        return "unsupported_arp"
    f.update(
        kind=KIND_ARP,
        ip_version=4,
        has_mac=True,
        src_mac=_mac(arp.sha),
        dst_mac=_mac(arp.tha),
        src_lo=IPV4_MAPPED | _mac(arp.spa),
        dst_lo=IPV4_MAPPED | _mac(arp.tpa),
    )
    return f


def _ipv4(data: bytes, l3: int, wirelen: int, f: dict[str, Any]) -> tuple[int, int] | str:
    avail = len(data) - l3
    if avail < 20:
        return "truncated_ipv4_header"
    ihl = (data[l3] & 0x0F) * 4
    if ihl >= 20 and avail < ihl:
        return "truncated_ipv4_header"
    total = struct.unpack(">H", data[l3 + 2 : l3 + 4])[0]
    if total == 0:  # TCP segmentation offload
        total = wirelen - l3
    if data[l3] >> 4 != 4 or ihl < 20 or total < ihl:
        return "bad_ipv4_header"
    ip = dpkt.ip.IP(data[l3 : l3 + ihl])
    frag_off = ip.offset  # in 8-byte units
    f.update(
        ip_version=4,
        src_lo=IPV4_MAPPED | _mac(ip.src),
        dst_lo=IPV4_MAPPED | _mac(ip.dst),
        proto=ip.p,
        ip_len=total,
        ip_id=ip.id,
    )
    f["frag"] = FRAG_LATER if frag_off > 0 else FRAG_FIRST if ip.mf else FRAG_NONE
    return ihl, total - ihl


def _ipv6(data: bytes, l3: int, f: dict[str, Any]) -> tuple[int, int] | str:
    if len(data) - l3 < 40:
        return "truncated_ipv6_header"
    if data[l3] >> 4 != 6:
        return "bad_ipv6_header"
    plen, nh = struct.unpack(">HB", data[l3 + 4 : l3 + 7])
    src_hi, src_lo, dst_hi, dst_lo = struct.unpack(">QQQQ", data[l3 + 8 : l3 + 40])
    f.update(
        ip_version=6, src_hi=src_hi, src_lo=src_lo, dst_hi=dst_hi, dst_lo=dst_lo, ip_len=plen + 40
    )
    cur, steps = 40, 0
    while nh in IPV6_EXT and f["frag"] != FRAG_LATER:
        if steps == MAX_IPV6_EXT:
            return "ipv6_ext_chain_too_long"
        if len(data) - l3 < cur + 8:
            return "truncated_ipv6_ext_header"
        at = l3 + cur
        nxt, hdr_len = data[at], data[at + 1]
        if nh == 44:
            offflags, ident = struct.unpack(">HI", data[at + 2 : at + 8])
            more = offflags & 1
            f["frag"] = FRAG_LATER if offflags >> 3 else FRAG_FIRST if more else FRAG_NONE
            f["ip_id"] = ident
            length = 8
        elif nh == 51:
            length = (hdr_len + 2) * 4
        else:
            length = (hdr_len + 1) * 8
        nh, cur, steps = nxt, cur + length, steps + 1
    f["proto"] = nh
    return cur, max(plen + 40 - cur, 0)


def _transport(data: bytes, l4: int, ip_payload: int, f: dict[str, Any]) -> dict[str, Any] | str:
    f["payload_off"], f["payload_len"] = l4, ip_payload
    proto = f["proto"]
    if f["frag"] != FRAG_LATER and proto in (6, 17, 1, 58):
        tcp = proto == 6
        need = 20 if tcp else 8
        name = "tcp" if tcp else "udp" if proto == 17 else "icmp"
        if f["frag"] == FRAG_FIRST and ip_payload < need:
            pass  # tiny first fragment: kept without ports
        elif len(data) - l4 < need:
            return f"truncated_{name}_header"
        else:
            hdr = data[l4 : l4 + need]
            if tcp:
                doff = (hdr[12] >> 4) * 4  # checked first: dpkt rejects a data offset < 5
                if doff < 20 or doff > ip_payload:
                    return "bad_tcp_header"
                seg = dpkt.tcp.TCP(hdr)
                # dpkt's flags hold 12 bits (NS and reserved too); the contract's are byte 13
                flags = seg.flags & 0xFF
                f.update(
                    sport=seg.sport, dport=seg.dport, seq=seg.seq, ack=seg.ack, tcp_flags=flags
                )
            else:
                if ip_payload < 8:
                    return f"bad_{name}_header"
                doff = 8
                if proto == 17:
                    dgram = dpkt.udp.UDP(hdr)
                    f.update(sport=dgram.sport, dport=dgram.dport)
                else:
                    f.update(sport=hdr[0], dport=hdr[1])  # ICMP/ICMPv6 type and code
            f["has_l4"] = True
            f["payload_off"] = l4 + doff
            f["payload_len"] = max(ip_payload - doff, 0)
    f["caplen_payload"] = min(max(len(data) - f["payload_off"], 0), f["payload_len"])
    return f
