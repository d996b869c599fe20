"""Link layers and IPv4/IPv6/TCP/UDP/ICMP header fields, vectorised over a RawBatch.

INTERFACE (fixed; other modules depend on it):

    decode_batch(raw: RawBatch, skipped: Counter[str]) -> PacketBatch

PacketBatch holds one numpy array per field, one element per packet kept. Packets that
cannot be decoded are counted in `skipped` by reason and dropped. ARP packets are kept
with kind == KIND_ARP (sender MAC in src_mac, sender IPv4 in src_lo/src_hi).

How it works: no per-packet Python. Fixed-width windows of bytes are gathered at every
packet's link, network and transport header (one fancy index each, through a sliding
window view of the batch buffer), and every field is computed from them with array
arithmetic. The IPv6 extension-header walk and VLAN tags are bounded loops over the few
packets that need another step.

Link types: Ethernet (1) with any mix of 802.1Q (0x8100), 802.1ad (0x88a8) and 0x9100
tags (vlan = outermost id, inner_vlan = the second; further tags are skipped over), Linux
SLL (113) and SLL2 (276) (tags after them are walked too; has_mac is False: they carry
only the sender's address), raw IP (101, 12, 14: version from the first nibble; 228
IPv4; 229 IPv6), BSD loopback NULL (0; address family in either byte order: 2 IPv4,
24/28/30 IPv6) and OpenBSD LOOP (108, big-endian family).

Lengths. ip_len is the IPv4 total length (0, as written by TCP segmentation offload,
is replaced by the captured wire length) or the IPv6 payload length + 40. payload_len
comes from the IP length: for UDP it is the IP payload minus 8, the UDP length field is
not used (a bad one would otherwise over- or under-count bytes); for TCP the IP payload
minus the data offset; for ICMP/ICMPv6 the IP payload minus 8; for other protocols and
non-first fragments the whole IP payload. Only the fixed 20 bytes of a TCP header must
be captured: options cut off by the snap length do not drop the packet. A first fragment
too short to hold the whole transport header is kept with has_l4 False and ports 0.
caplen_payload
is how much of the payload was captured (never above payload_len).

Reason keys counted in `skipped` (one packet, one reason: the first check it fails):

    linktype:<n>              link type not decoded (e.g. linktype:147)
    ethertype:0x<hhhh>        neither IPv4, IPv6 nor ARP after any VLAN tags
    llc                       IEEE 802.3 frame with an LLC header (type field <= 1500)
    loopback_af:<n>           NULL/LOOP address family that is neither IPv4 nor IPv6
    bad_ip_version            raw-IP link type whose first nibble is neither 4 nor 6
    truncated_link_header     caplen shorter than the link header and its VLAN tags (raw IP: 0)
    truncated_arp             ARP shorter than 28 bytes
    unsupported_arp           ARP that is not Ethernet/IPv4 (htype 1, ptype 0x0800, 6/4)
    truncated_ipv4_header     fewer bytes captured than 20 or the IHL says
    bad_ipv4_header           version is not 4, IHL < 5 or total length < header length
    truncated_ipv6_header     fewer than 40 bytes captured
    bad_ipv6_header           version is not 6
    truncated_ipv6_ext_header an extension header runs past the captured bytes
    ipv6_ext_chain_too_long   more than MAX_IPV6_EXT extension headers
    truncated_tcp_header      fewer than 20 TCP bytes captured
    bad_tcp_header            data offset < 5 or beyond the IP payload
    truncated_udp_header      fewer than 8 UDP bytes captured
    bad_udp_header            IP payload shorter than a UDP header
    truncated_icmp_header     fewer than 8 ICMP/ICMPv6 bytes captured
    bad_icmp_header           IP payload shorter than 8 bytes
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .reader import RawBatch

KIND_IP = 1
KIND_ARP = 2

FRAG_NONE = 0  # not a fragment
FRAG_FIRST = 1  # offset 0 with more-fragments set: carries the transport header
FRAG_LATER = 2  # offset > 0: no transport header

NO_VLAN = -1


# The per-packet header fields of a PacketBatch that a decoder determines; the dpkt
# reference decoder returns the same names, and the differential tests compare them.
HEADER_FIELDS: tuple[str, ...] = (
    "kind",
    "src_mac",
    "dst_mac",
    "has_mac",
    "vlan",
    "inner_vlan",
    "ip_version",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "proto",
    "ip_len",
    "frag",
    "ip_id",
    "sport",
    "dport",
    "has_l4",
    "tcp_flags",
    "seq",
    "ack",
    "payload_len",
    "caplen_payload",
)


@dataclass
class PacketBatch:
    index: np.ndarray  # int64 record number in the capture
    ts_ns: np.ndarray  # int64 ns since epoch
    kind: np.ndarray  # uint8 KIND_IP / KIND_ARP
    src_mac: np.ndarray  # uint64 (48-bit value), 0 where has_mac is False
    dst_mac: np.ndarray  # uint64
    has_mac: np.ndarray  # bool: link layer carries Ethernet addresses
    vlan: np.ndarray  # int32 outermost VLAN id or NO_VLAN
    inner_vlan: np.ndarray  # int32 second tag's id or NO_VLAN
    ip_version: np.ndarray  # uint8 4 or 6 (ARP: 4)
    src_hi: np.ndarray  # uint64 high 64 bits of the IPv6 address; IPv4: 0x0000_0000_0000_0000
    src_lo: np.ndarray  # uint64 low 64 bits; IPv4: 0x0000_ffff_XXXX_XXXX (IPv4-mapped)
    dst_hi: np.ndarray  # uint64
    dst_lo: np.ndarray  # uint64
    proto: np.ndarray  # uint8 IP protocol number (after IPv6 extension headers)
    ip_len: np.ndarray  # uint32 IP-level bytes (IPv4 total length; IPv6 payload length + 40)
    frag: np.ndarray  # uint8 FRAG_NONE / FRAG_FIRST / FRAG_LATER
    ip_id: np.ndarray  # uint32 IPv4 identification / IPv6 fragment identification
    sport: np.ndarray  # uint16 (ICMP/ICMPv6: type)
    dport: np.ndarray  # uint16 (ICMP/ICMPv6: code)
    has_l4: np.ndarray  # bool: transport header present and complete
    tcp_flags: np.ndarray  # uint8 (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ...)
    seq: np.ndarray  # uint32 TCP sequence number
    ack: np.ndarray  # uint32 TCP acknowledgement number
    payload_len: np.ndarray  # uint32 transport payload bytes per the IP/UDP/TCP headers
    payload_off: np.ndarray  # int64 offset of the payload in `buf`
    caplen_payload: np.ndarray  # uint32 payload bytes actually captured (<= payload_len)
    buf: np.ndarray  # uint8 the RawBatch buffer (valid for this batch only)

    @property
    def n(self) -> int:
        return int(self.index.shape[0])


# ----------------------------------------------------------------------------- constants

LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_SLL2 = 0, 1, 101, 108, 113, 276
LT_RAW_ALT = (12, 14)  # DLT_RAW values of some BSDs, written as link types by old tools
LT_IPV4, LT_IPV6 = 228, 229
ET_IPV4, ET_IPV6, ET_ARP = 0x0800, 0x86DD, 0x0806
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
ETHER_MAX_LEN = 1500  # IEEE 802.3: type/length values up to 1500 are lengths (LLC frames)
AF_INET = 2
AF_INET6 = (24, 28, 30)  # NetBSD/OpenBSD, FreeBSD, macOS
MAX_VLAN_TAGS = 4  # tags walked; 2 are reported, stacks deeper than 4 are not seen in practice
MAX_IPV6_EXT = 8  # extension headers walked (Linux's default limit is 8 too)
IPV6_EXT = (0, 43, 44, 51, 60)  # hop-by-hop, routing, fragment, AH, destination options
PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMP6 = 6, 17, 1, 58
LINK_WIN = 32  # Ethernet + 4 tags + ethertype, SLL2 + 3 tags
L3_WIN = 40  # IPv6 fixed header (IPv4 fields and ARP need less)
L4_WIN = 16  # TCP ports, seq, ack, data offset, flags
HEAD_WIN = 64  # gathered once per packet: Ethernet + IPv4 + TCP/UDP of common packets
IPV4_MAPPED = np.uint64(0x0000_FFFF_0000_0000)

# fixed reason codes (0 = decoded); variable keys (linktype:, ethertype:, loopback_af:)
# are counted where they are found and marked COUNTED
REASONS = (
    "",
    "counted",
    "truncated_link_header",
    "bad_ip_version",
    "truncated_arp",
    "unsupported_arp",
    "truncated_ipv4_header",
    "bad_ipv4_header",
    "truncated_ipv6_header",
    "bad_ipv6_header",
    "truncated_ipv6_ext_header",
    "ipv6_ext_chain_too_long",
    "truncated_tcp_header",
    "bad_tcp_header",
    "truncated_udp_header",
    "bad_udp_header",
    "truncated_icmp_header",
    "bad_icmp_header",
)
R = {name: i for i, name in enumerate(REASONS)}
COUNTED = R["counted"]


# ------------------------------------------------------------------------------- helpers


def _window(buf: np.ndarray, offs: np.ndarray, width: int) -> np.ndarray:
    """(len(offs), width) uint8: the bytes at each offset (one fancy index). Windows
    running past the end of `buf` are zero-padded (the reader leaves slack after its
    data, so this only happens for hand-made batches and damaged headers)."""
    limit = buf.shape[0] - width
    if offs.shape[0] == 0 or int(offs.max()) <= limit:
        return np.lib.stride_tricks.sliding_window_view(buf, width)[offs]
    over = offs > limit
    win = np.zeros((offs.shape[0], width), dtype=np.uint8)
    if buf.shape[0] >= width:
        win[~over] = np.lib.stride_tricks.sliding_window_view(buf, width)[offs[~over]]
    for k in np.flatnonzero(over).tolist():  # the few windows at the very end
        o = int(offs[k])
        tail = buf[o : o + width] if o < buf.shape[0] else buf[:0]
        win[k, : tail.shape[0]] = tail
    return win


def _be16(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (buf[pos].astype(np.int64) << 8) | buf[pos + 1]


def _fail(reason: np.ndarray, bad: np.ndarray, code: int) -> None:
    """Give `code` to the packets in `bad` that have no reason yet."""
    reason[bad & (reason == 0)] = code


def _count_keys(skipped: Counter[str], fmt: str, values: np.ndarray) -> None:
    if values.shape[0]:
        keys, counts = np.unique(values, return_counts=True)
        for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
            skipped[fmt.format(k)] += c


@dataclass
class _Link:
    """Link-layer result for every packet of the batch."""

    l3: np.ndarray  # int64 offset of the network header from the packet start
    et: np.ndarray  # int64 ethertype (VLAN tags already walked); -1 when not applicable
    src_mac: np.ndarray
    dst_mac: np.ndarray
    has_mac: np.ndarray
    vlan: np.ndarray
    inner_vlan: np.ndarray


# ---------------------------------------------------------------------------- link layer


def _link_layer(
    head: np.ndarray,
    raw: RawBatch,
    caplen: np.ndarray,
    reason: np.ndarray,
    skipped: Counter[str],
) -> _Link:
    n = raw.n
    lt = raw.linktype
    link = _Link(
        l3=np.zeros(n, dtype=np.int64),
        et=np.full(n, -1, dtype=np.int64),
        src_mac=np.zeros(n, dtype=np.uint64),
        dst_mac=np.zeros(n, dtype=np.uint64),
        has_mac=np.zeros(n, dtype=bool),
        vlan=np.full(n, NO_VLAN, dtype=np.int32),
        inner_vlan=np.full(n, NO_VLAN, dtype=np.int32),
    )
    first = int(lt[0])
    if (lt == first).all():
        groups: list[tuple[int, np.ndarray | None]] = [(first, None)]
    else:
        groups = [(int(v), np.flatnonzero(lt == v)) for v in np.unique(lt)]
    walk_tags = False
    family = np.zeros(n, dtype=np.int64)  # NULL/LOOP address family
    empty = np.zeros(n, dtype=bool)  # raw IP with caplen 0
    for value, rows in groups:
        sel = slice(None) if rows is None else rows
        win = head[:, :LINK_WIN] if rows is None else head[rows, :LINK_WIN]
        count = raw.n if rows is None else rows.shape[0]
        if value == LT_ETHERNET:
            _ethernet(win, link, sel)
            walk_tags = True
        elif value in (LT_SLL, LT_SLL2):
            hlen, et_at = (16, 14) if value == LT_SLL else (20, 0)
            link.l3[sel] = hlen
            link.et[sel] = win.view(">u2")[:, et_at // 2]
            walk_tags = True
        elif value in (LT_RAW, *LT_RAW_ALT, LT_IPV4, LT_IPV6):
            link.et[sel] = _raw_ip(win, value)
            empty[sel] = caplen[sel] < 1  # not even a version nibble
        elif value in (LT_NULL, LT_LOOP):
            link.l3[sel] = 4
            link.et[sel], family[sel] = _loopback(win, value)
        else:
            skipped[f"linktype:{value}"] += count
            reason[sel] = COUNTED
            continue
    _fail(reason, (caplen < link.l3) | empty, R["truncated_link_header"])
    unknown_af = (link.et == -3) & (reason == 0)
    if unknown_af.any():
        _count_keys(skipped, "loopback_af:{}", family[unknown_af])
        reason[unknown_af] = COUNTED
    if walk_tags:
        _vlan_tags(raw.buf, raw.data_off, caplen, link, reason)
    _fail(reason, link.et == -2, R["bad_ip_version"])
    other = (reason == 0) & (link.et != ET_IPV4) & (link.et != ET_IPV6) & (link.et != ET_ARP)
    llc = other & link.has_mac & (link.et <= ETHER_MAX_LEN)  # an 802.3 length, not a type
    if llc.any():
        skipped["llc"] += int(llc.sum())
        reason[llc] = COUNTED
        other &= ~llc
    if other.any():
        _count_keys(skipped, "ethertype:0x{:04x}", link.et[other])
        reason[other] = COUNTED
    return link


def _ethernet(win: np.ndarray, link: _Link, sel: slice | np.ndarray) -> None:
    w64 = win.view(">u8")
    c0, c1 = w64[:, 0], w64[:, 1]
    link.dst_mac[sel] = c0 >> np.uint64(16)
    link.src_mac[sel] = ((c0 & np.uint64(0xFFFF)) << np.uint64(32)) | (c1 >> np.uint64(32))
    link.has_mac[sel] = True
    link.l3[sel] = 14
    link.et[sel] = win.view(">u2")[:, 6]


def _raw_ip(win: np.ndarray, value: int) -> np.ndarray | int:
    if value == LT_IPV4:
        return ET_IPV4
    if value == LT_IPV6:
        return ET_IPV6
    version = win[:, 0] >> 4
    return np.where(version == 4, ET_IPV4, np.where(version == 6, ET_IPV6, -2))


def _loopback(win: np.ndarray, value: int) -> tuple[np.ndarray, np.ndarray]:
    """(ethertype or -3, address family) of NULL/LOOP headers."""
    be = win.view(">u4")[:, 0].astype(np.int64)
    if value == LT_LOOP:
        af = be
    else:  # host byte order of the capturing machine: small values are unambiguous
        le = win.view("<u4")[:, 0].astype(np.int64)
        af = np.where(le < 0x10000, le, be)
    et = np.where(af == AF_INET, ET_IPV4, np.where(np.isin(af, AF_INET6), ET_IPV6, -3))
    return et, af


def _vlan_tags(
    buf: np.ndarray, data_off: np.ndarray, caplen: np.ndarray, link: _Link, reason: np.ndarray
) -> None:
    """Walk 802.1Q/802.1ad tags: vlan = first id, inner_vlan = second, l3 past them all."""
    for depth in range(MAX_VLAN_TAGS):
        et = link.et
        tagged = (et == VLAN_TPIDS[0]) | (et == VLAN_TPIDS[1]) | (et == VLAN_TPIDS[2])
        rows = np.flatnonzero(tagged & (reason == 0))
        if rows.shape[0] == 0:
            return
        short = caplen[rows] < link.l3[rows] + 4
        if short.any():
            reason[rows[short]] = R["truncated_link_header"]
            rows = rows[~short]
        pos = data_off[rows] + link.l3[rows]
        vid = (_be16(buf, pos) & 0x0FFF).astype(np.int32)
        if depth == 0:
            link.vlan[rows] = vid
        elif depth == 1:
            link.inner_vlan[rows] = vid
        link.et[rows] = _be16(buf, pos + 2)
        link.l3[rows] += 4


# ---------------------------------------------------------------------------- IP layers


def decode_batch(raw: RawBatch, skipped: Counter[str]) -> PacketBatch:
    n = raw.n
    if n == 0:
        return _empty(raw.buf)
    buf, off = raw.buf, raw.data_off
    caplen = raw.caplen.astype(np.int64)
    reason = np.zeros(n, dtype=np.uint8)  # link-layer reasons; later ones are derived
    head = _window(buf, off, HEAD_WIN)
    link = _link_layer(head, raw, caplen, reason, skipped)
    w3 = _shifted(head, buf, off, link.l3, L3_WIN)
    ok = reason == 0
    et = link.et
    is4 = ok & (et == ET_IPV4)
    is6 = ok & (et == ET_IPV6)
    isarp = ok & (et == ET_ARP)
    net = _network(buf, w3, is4, is6, link.l3, off, caplen, raw.wirelen)
    arp_fail = _arp(w3[isarp], isarp, caplen - link.l3, net, link) if isarp.any() else None
    l4 = _transport_all(head, buf, off, caplen, link.l3, net)
    keep = ok & (net.ok | isarp) & l4.ok
    if arp_fail is not None:
        keep &= ~arp_fail[0] & ~arp_fail[1]
    if not keep.all():
        _count_reasons(skipped, ~keep, reason, net, l4, arp_fail)
    return _assemble(raw, buf, link, net, l4, keep, isarp)


def _shifted(
    head: np.ndarray, buf: np.ndarray, off: np.ndarray, shift: np.ndarray, width: int
) -> np.ndarray:
    """(n, width) bytes starting `shift` bytes into each packet: a copy of a column range
    of `head` for the packets sharing the most common shift, a gather for the others."""
    common = int(np.bincount(np.clip(shift, 0, HEAD_WIN)).argmax())
    if common + width > head.shape[1]:
        return _window(buf, off + shift, width)
    out = np.ascontiguousarray(head[:, common : common + width])
    other = np.flatnonzero(shift != common)
    if other.shape[0]:
        out[other] = _window(buf, off[other] + shift[other], width)
    return out


@dataclass
class _Net:
    """Network-layer fields for every packet (meaningful where ok)."""

    ok: np.ndarray  # IPv4/IPv6 header fine
    fails: list[tuple[int, np.ndarray]]  # (reason code, mask) in checking order
    ip_version: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray
    ip_len: np.ndarray
    frag: np.ndarray
    ip_id: np.ndarray
    l4: np.ndarray  # transport header offset from the network header
    payload: np.ndarray  # bytes after the network headers per the IP length


def _network(
    buf: np.ndarray,
    w3: np.ndarray,
    is4: np.ndarray,
    is6: np.ndarray,
    l3: np.ndarray,
    off: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
) -> _Net:
    """IPv4 and IPv6 headers, computed for every packet and selected by version."""
    n = w3.shape[0]
    avail = caplen - l3
    b0 = w3[:, 0]
    version = b0 >> 4
    h16 = w3.view(">u2")
    h32 = w3.view(">u4")
    ihl = (b0 & 0x0F).astype(np.int64) << 2
    total = h16[:, 1].astype(np.int64)
    tso = total == 0  # TCP segmentation offload writes 0: use the captured wire length
    if tso.any():
        total = np.where(tso, wirelen.astype(np.int64) - l3, total)
    v4_trunc = is4 & ((avail < 20) | ((avail < ihl) & (ihl >= 20)))
    v4_bad = is4 & ~v4_trunc & ((version != 4) | (ihl < 20) | (total < ihl))
    fl = h16[:, 3]
    frag = np.where(
        (fl & 0x1FFF) > 0, FRAG_LATER, np.where((fl & 0x2000) > 0, FRAG_FIRST, FRAG_NONE)
    ).astype(np.uint8)
    net = _Net(
        ok=is4 & ~v4_trunc & ~v4_bad,
        fails=[(R["truncated_ipv4_header"], v4_trunc), (R["bad_ipv4_header"], v4_bad)],
        ip_version=np.full(n, 4, dtype=np.uint8),
        src_hi=np.zeros(n, dtype=np.uint64),
        src_lo=h32[:, 3].astype(np.uint64) | IPV4_MAPPED,
        dst_hi=np.zeros(n, dtype=np.uint64),
        dst_lo=h32[:, 4].astype(np.uint64) | IPV4_MAPPED,
        proto=w3[:, 9].copy(),
        ip_len=total,
        frag=frag,
        ip_id=h16[:, 2].astype(np.int64),
        l4=ihl,
        payload=total - ihl,
    )
    if is6.any():
        _ipv6_into(net, buf, w3, is6, l3, off, avail)
    return net


def _ipv6_into(
    net: _Net,
    buf: np.ndarray,
    w3: np.ndarray,
    is6: np.ndarray,
    l3: np.ndarray,
    off: np.ndarray,
    avail: np.ndarray,
) -> None:
    rows = np.flatnonzero(is6)
    w = w3[rows]
    av = avail[rows]
    bad = np.zeros(rows.shape[0], dtype=np.uint8)
    bad[av < 40] = R["truncated_ipv6_header"]
    bad[(bad == 0) & ((w[:, 0] >> 4) != 6)] = R["bad_ipv6_header"]
    plen = w.view(">u2")[:, 2].astype(np.int64)
    h64 = w.view(">u8")
    nh = w[:, 6].astype(np.int64)
    cur = np.full(rows.shape[0], 40, dtype=np.int64)
    frag = np.zeros(rows.shape[0], dtype=np.uint8)
    ident = np.zeros(rows.shape[0], dtype=np.int64)
    _ipv6_ext_walk(buf, off[rows] + l3[rows], av, nh, cur, frag, ident, bad)
    net.ip_version[rows] = 6
    net.src_hi[rows] = h64[:, 1]
    net.src_lo[rows] = h64[:, 2]
    net.dst_hi[rows] = h64[:, 3]
    net.dst_lo[rows] = h64[:, 4]
    net.proto[rows] = nh
    net.ip_len[rows] = plen + 40
    net.frag[rows] = frag
    net.ip_id[rows] = ident
    net.l4[rows] = cur
    net.payload[rows] = np.maximum(plen + 40 - cur, 0)
    good = bad == 0
    net.ok[rows[good]] = True
    for code in np.unique(bad[~good]).tolist():
        mask = np.zeros(is6.shape[0], dtype=bool)
        mask[rows[bad == code]] = True
        net.fails.append((int(code), mask))


@dataclass
class _L4:
    ok: np.ndarray
    fails: list[tuple[int, np.ndarray]]
    has_l4: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    payload_rel: np.ndarray  # payload offset from the network header
    payload_len: np.ndarray


def _transport_all(
    head: np.ndarray,
    buf: np.ndarray,
    off: np.ndarray,
    caplen: np.ndarray,
    l3: np.ndarray,
    net: _Net,
) -> _L4:
    """TCP/UDP/ICMP headers, computed for every packet and selected by protocol."""
    rel = l3 + net.l4  # transport header offset from the packet start
    w = _shifted(head, buf, off, rel, L4_WIN)
    proto = net.proto
    carries = net.ok & (net.frag != FRAG_LATER)
    tcp = carries & (proto == PROTO_TCP)
    udp = carries & (proto == PROTO_UDP)
    icmp = carries & ((proto == PROTO_ICMP) | (proto == PROTO_ICMP6))
    pay = net.payload
    need = np.where(tcp, 20, 8)
    tiny = (net.frag == FRAG_FIRST) & (pay < need)  # kept, without ports
    has = (tcp | udp | icmp) & ~tiny
    trunc = has & (caplen - rel < need)
    checked = has & ~trunc
    doff = (w[:, 12] >> 4).astype(np.int64) << 2
    tcp_bad = checked & tcp & ((doff < 20) | (doff > pay))
    short = checked & (pay < 8)
    udp_bad = short & udp
    icmp_bad = short & icmp
    h16 = w.view(">u2")
    h32 = w.view(">u4")
    hdr = np.where(tcp, doff, 8)
    is_icmp_hdr = has & icmp
    sport = np.where(is_icmp_hdr, w[:, 0], h16[:, 0])
    dport = np.where(is_icmp_hdr, w[:, 1], h16[:, 1])
    tcp_hdr = has & tcp
    return _L4(
        ok=~(trunc | tcp_bad | udp_bad | icmp_bad),
        fails=[
            (R["truncated_tcp_header"], trunc & tcp),
            (R["truncated_udp_header"], trunc & udp),
            (R["truncated_icmp_header"], trunc & icmp),
            (R["bad_tcp_header"], tcp_bad),
            (R["bad_udp_header"], udp_bad),
            (R["bad_icmp_header"], icmp_bad),
        ],
        has_l4=has,
        sport=np.where(has, sport, 0).astype(np.uint16),
        dport=np.where(has, dport, 0).astype(np.uint16),
        tcp_flags=np.where(tcp_hdr, w[:, 13], 0).astype(np.uint8),
        seq=np.where(tcp_hdr, h32[:, 1], 0).astype(np.uint32),
        ack=np.where(tcp_hdr, h32[:, 2], 0).astype(np.uint32),
        payload_rel=np.where(has, net.l4 + hdr, net.l4),
        payload_len=np.where(has, np.maximum(pay - hdr, 0), pay),
    )


def _count_reasons(
    skipped: Counter[str],
    dropped: np.ndarray,
    reason: np.ndarray,
    net: _Net,
    l4: _L4,
    arp_fail: tuple[np.ndarray, np.ndarray] | None,
) -> None:
    """The first failed check of each dropped packet, counted by reason."""
    rows = np.flatnonzero(dropped)
    r = reason[rows].copy()
    ordered = list(net.fails)
    if arp_fail is not None:
        ordered += [(R["truncated_arp"], arp_fail[0]), (R["unsupported_arp"], arp_fail[1])]
    ordered += l4.fails
    for code, mask in ordered:
        r[(r == 0) & mask[rows]] = code
    counts = np.bincount(r, minlength=len(REASONS))
    for code in range(2, len(REASONS)):
        if counts[code]:
            skipped[REASONS[code]] += int(counts[code])


def _arp(
    w: np.ndarray, rows_mask: np.ndarray, avail3: np.ndarray, net: _Net, link: _Link
) -> tuple[np.ndarray, np.ndarray]:
    """ARP fields into net/link; returns the (truncated, unsupported) masks."""
    rows = np.flatnonzero(rows_mask)
    h16 = w.view(">u2")
    n = rows_mask.shape[0]
    trunc = np.zeros(n, dtype=bool)
    unsup = np.zeros(n, dtype=bool)
    t = avail3[rows] < 28
    trunc[rows[t]] = True
    good = (h16[:, 0] == 1) & (h16[:, 1] == ET_IPV4) & (w[:, 4] == 6) & (w[:, 5] == 4)
    unsup[rows[~t & ~good]] = True
    net.ip_version[rows] = 4
    net.src_hi[rows] = 0
    net.dst_hi[rows] = 0
    link.src_mac[rows] = _mac(w, 8)
    link.dst_mac[rows] = _mac(w, 18)
    link.has_mac[rows] = True
    net.src_lo[rows] = _u32(w, 14).astype(np.uint64) | IPV4_MAPPED
    net.dst_lo[rows] = _u32(w, 24).astype(np.uint64) | IPV4_MAPPED
    return trunc, unsup


def _mac(w: np.ndarray, at: int) -> np.ndarray:
    v = np.zeros(w.shape[0], dtype=np.uint64)
    for k in range(6):
        v = (v << np.uint64(8)) | w[:, at + k].astype(np.uint64)
    return v


def _u32(w: np.ndarray, at: int) -> np.ndarray:
    v = np.zeros(w.shape[0], dtype=np.uint64)
    for k in range(4):
        v = (v << np.uint64(8)) | w[:, at + k].astype(np.uint64)
    return v


def _assemble(
    raw: RawBatch,
    buf: np.ndarray,
    link: _Link,
    net: _Net,
    l4: _L4,
    keep: np.ndarray,
    isarp: np.ndarray,
) -> PacketBatch:
    all_kept = bool(keep.all())

    def k(a: np.ndarray) -> np.ndarray:
        return a if all_kept else a[keep]

    kind = KIND_IP + isarp.astype(np.uint8)  # KIND_ARP == KIND_IP + 1
    ip_only = ~isarp
    has_arp = bool(isarp.any())

    def ip(a: np.ndarray) -> np.ndarray:  # 0 for ARP packets
        return k(np.where(ip_only, a, 0) if has_arp else a)

    payload_len = l4.payload_len
    captured = raw.caplen.astype(np.int64) - link.l3 - l4.payload_rel
    caplen_payload = np.minimum(np.maximum(captured, 0), payload_len)
    has_mac = link.has_mac
    return PacketBatch(
        index=k(raw.index),
        ts_ns=k(raw.ts_ns),
        kind=k(kind),
        src_mac=k(np.where(has_mac, link.src_mac, np.uint64(0))),
        dst_mac=k(np.where(has_mac, link.dst_mac, np.uint64(0))),
        has_mac=k(has_mac),
        vlan=k(link.vlan),
        inner_vlan=k(link.inner_vlan),
        ip_version=k(net.ip_version),
        src_hi=k(net.src_hi),
        src_lo=k(net.src_lo),
        dst_hi=k(net.dst_hi),
        dst_lo=k(net.dst_lo),
        proto=ip(net.proto).astype(np.uint8),
        ip_len=ip(net.ip_len).astype(np.uint32),
        frag=ip(net.frag).astype(np.uint8),
        ip_id=ip(net.ip_id).astype(np.uint32),
        sport=k(l4.sport),
        dport=k(l4.dport),
        has_l4=k(l4.has_l4),
        tcp_flags=k(l4.tcp_flags),
        seq=k(l4.seq),
        ack=k(l4.ack),
        payload_len=ip(payload_len).astype(np.uint32),
        payload_off=ip(raw.data_off + link.l3 + l4.payload_rel),
        caplen_payload=ip(caplen_payload).astype(np.uint32),
        buf=buf,
    )


def _ipv6_ext_walk(
    buf: np.ndarray,
    base: np.ndarray,
    av: np.ndarray,
    nh: np.ndarray,
    cur: np.ndarray,
    frag: np.ndarray,
    ident: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Follow extension headers (in place) until a transport protocol, ESP, no-next-header
    or a non-first fragment; at most MAX_IPV6_EXT steps."""
    for _step in range(MAX_IPV6_EXT + 1):
        walking = np.isin(nh, IPV6_EXT) & (bad == 0) & (frag != FRAG_LATER)
        rows = np.flatnonzero(walking)
        if rows.shape[0] == 0:
            return
        if _step == MAX_IPV6_EXT:
            bad[rows] = R["ipv6_ext_chain_too_long"]
            return
        at = cur[rows]
        short = av[rows] < at + 8
        bad[rows[short]] = R["truncated_ipv6_ext_header"]
        rows, at = rows[~short], at[~short]
        pos = base[rows] + at
        this = nh[rows]
        nxt = buf[pos].astype(np.int64)
        hlen = np.where(
            this == 51,
            (buf[pos + 1].astype(np.int64) + 2) * 4,
            (buf[pos + 1].astype(np.int64) + 1) * 8,
        )
        isfrag = this == 44
        hlen = np.where(isfrag, 8, hlen)
        if isfrag.any():
            fr = rows[isfrag]
            fpos = pos[isfrag]
            offflags = _be16(buf, fpos + 2)
            later = (offflags >> 3) > 0
            more = (offflags & 1) != 0
            frag[fr] = np.where(later, FRAG_LATER, np.where(more, FRAG_FIRST, FRAG_NONE))
            ident[fr] = (_be16(buf, fpos + 4) << 16) | _be16(buf, fpos + 6)
        nh[rows] = nxt
        cur[rows] = at + hlen


def _empty(buf: np.ndarray) -> PacketBatch:
    def z(dtype: type) -> np.ndarray:
        return np.zeros(0, dtype=dtype)

    return PacketBatch(
        index=z(np.int64),
        ts_ns=z(np.int64),
        kind=z(np.uint8),
        src_mac=z(np.uint64),
        dst_mac=z(np.uint64),
        has_mac=z(np.bool_),
        vlan=z(np.int32),
        inner_vlan=z(np.int32),
        ip_version=z(np.uint8),
        src_hi=z(np.uint64),
        src_lo=z(np.uint64),
        dst_hi=z(np.uint64),
        dst_lo=z(np.uint64),
        proto=z(np.uint8),
        ip_len=z(np.uint32),
        frag=z(np.uint8),
        ip_id=z(np.uint32),
        sport=z(np.uint16),
        dport=z(np.uint16),
        has_l4=z(np.bool_),
        tcp_flags=z(np.uint8),
        seq=z(np.uint32),
        ack=z(np.uint32),
        payload_len=z(np.uint32),
        payload_off=z(np.int64),
        caplen_payload=z(np.uint32),
        buf=buf,
    )
