"""Link layers and IPv4/IPv6/TCP/UDP/ICMP header fields: one compiled loop over a RawBatch.

INTERFACE (fixed; other modules depend on it):

    decode_batch(raw: RawBatch, skipped: Counter[str]) -> PacketBatch

PacketBatch holds one numpy array per field, one element per packet kept. Packets that
cannot be decoded are counted in `skipped` by reason and dropped. ARP packets are kept
with kind == KIND_ARP (sender MAC in src_mac, sender IPv4 in src_lo/src_hi).

How it works: `_decode_packets` (a numba kernel, see analyzer/kernel.py) runs once per
batch and calls `_decode_one` for each packet, which calls one small function per layer
(`_link` -> `_vlan_tags` -> `_arp` | `_ipv4` | `_ipv6` -> `_transport`). Each layer checks
that the bytes it reads were captured before it reads them, writes its fields into the
packet's output row and returns a reason code: the first check that fails names the
packet's reason, and a kept packet's row is complete. Header layouts are declared once,
by field name and width, in the LAYOUTS section (as dpkt's ``__hdr__`` does); the code
reads ``p + IP4.ttl``, never a bare offset.

Link types: Ethernet (1) with any mix of 802.1Q (0x8100), 802.1ad (0x88a8) and 0x9100
tags, up to MAX_VLAN_TAGS deep (vlan = outermost id, inner_vlan = the second; further
tags are walked over), Linux SLL (113) and SLL2 (276) (tags after them are walked too;
has_mac is False: they carry only the sender's address), raw IP (101, 12, 14: version
from the first nibble; 228 IPv4; 229 IPv6), BSD loopback NULL (0; address family in
either byte order: 2 IPv4, 24/28/30 IPv6) and OpenBSD LOOP (108, big-endian family).

Lengths. ip_len is the IPv4 total length (0, as written by TCP segmentation offload,
is replaced by the captured wire length) or the IPv6 payload length + 40. payload_len
comes from the IP length: for UDP it is the IP payload minus 8, the UDP length field is
not used (a bad one would otherwise over- or under-count bytes); for TCP the IP payload
minus the data offset; for ICMP/ICMPv6 the IP payload minus 8; for other protocols and
non-first fragments the whole IP payload. Only the fixed 20 bytes of a TCP header must
be captured: options cut off by the snap length do not drop the packet. A first fragment
too short to hold the whole transport header is kept with has_l4 False and ports 0.
caplen_payload is how much of the payload was captured (never above payload_len). A
record whose caplen runs past the end of the batch buffer (never the case for batches
the reader makes) is decoded from the bytes the buffer holds.

Reason keys counted in `skipped` (one packet, one reason: the first check it fails):

    linktype:<n>              link type not decoded (e.g. linktype:147)
    ethertype:0x<hhhh>        neither IPv4, IPv6 nor ARP after any VLAN tags
    llc                       IEEE 802.3 frame with an LLC header (type field <= 1500)
    loopback_af:<n>           NULL/LOOP address family that is neither IPv4 nor IPv6
    bad_ip_version            raw-IP link type whose first nibble is neither 4 nor 6
    truncated_link_header     caplen shorter than the link header and its VLAN tags (raw IP: 0)
    vlan_stack_too_deep       more than MAX_VLAN_TAGS (16) stacked VLAN tags
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

from collections import Counter, namedtuple
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .kernel import inline_kernel, kernel, readonly
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


# The per-packet columns of a PacketBatch (everything but buf) and their dtypes, in the
# dataclass's order: the kernel writes one row of each per packet kept.
COLUMNS: dict[str, type] = {
    "index": np.int64,
    "ts_ns": np.int64,
    "kind": np.uint8,
    "src_mac": np.uint64,
    "dst_mac": np.uint64,
    "has_mac": np.bool_,
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
    "has_l4": np.bool_,
    "tcp_flags": np.uint8,
    "seq": np.uint32,
    "ack": np.uint32,
    "payload_len": np.uint32,
    "payload_off": np.int64,
    "caplen_payload": np.uint32,
}

# The kernel's output: one array per column, passed as a namedtuple so the kernel
# writes `out.sport[k]` (numba compiles attribute access on namedtuples).
_Columns = namedtuple("_Columns", list(COLUMNS))  # type: ignore[misc]


# ----------------------------------------------------------------------------- constants

LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_SLL2 = 0, 1, 101, 108, 113, 276
LT_RAW_ALT = (12, 14)  # DLT_RAW values of some BSDs, written as link types by old tools
LT_IPV4, LT_IPV6 = 228, 229
ET_IPV4, ET_IPV6, ET_ARP = 0x0800, 0x86DD, 0x0806
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, the pre-standard QinQ value
ETHER_MAX_LEN = 1500  # IEEE 802.3: type/length values up to 1500 are lengths (LLC frames)
AF_INET = 2
AF_INET6 = (24, 28, 30)  # NetBSD/OpenBSD, FreeBSD, macOS
MAX_VLAN_TAGS = 16  # tags walked; deeper stacks are counted as vlan_stack_too_deep
MAX_IPV6_EXT = 8  # extension headers walked (Linux's default limit is 8 too)
IPV6_EXT = (0, 43, 44, 51, 60)  # hop-by-hop, routing, fragment, AH, destination options
IPV6_HOPOPTS, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_AH, IPV6_DSTOPTS = IPV6_EXT
PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMP6 = 6, 17, 1, 58
IPV4_MAPPED = np.uint64(0x0000_FFFF_0000_0000)  # ::ffff:a.b.c.d


# ------------------------------------------------------------------------------- layouts


def _layout(*fields: tuple[str, int]) -> Any:
    """A header layout from (name, width in bytes) pairs, in wire order: a namedtuple of
    each field's offset from the header start, plus `size` (the fixed header's length).
    Kernels read e.g. ``p + TCP.flags`` (numba folds these into constants)."""
    names = [name for name, _ in fields] + ["size"]
    offsets: list[int] = []
    at = 0
    for _, width in fields:
        offsets.append(at)
        at += width
    layout = cast(Any, namedtuple)("Layout", names)
    return layout(*offsets, at)


ETH = _layout(("dst", 6), ("src", 6), ("type", 2))
VLAN = _layout(("tci", 2), ("type", 2))  # the 4 bytes a tag adds; its TPID is the type before
SLL = _layout(("pkttype", 2), ("hatype", 2), ("halen", 2), ("addr", 8), ("protocol", 2))
SLL2 = _layout(
    ("protocol", 2), ("reserved", 2), ("ifindex", 4), ("hatype", 2), ("pkttype", 1),
    ("halen", 1), ("addr", 8),
)  # fmt: skip
LOOPBACK = _layout(("family", 4))
ARP = _layout(
    ("hrd", 2), ("pro", 2), ("hln", 1), ("pln", 1), ("op", 2),
    ("sha", 6), ("spa", 4), ("tha", 6), ("tpa", 4),
)  # fmt: skip
IP4 = _layout(
    ("v_hl", 1), ("tos", 1), ("len", 2), ("id", 2), ("off", 2), ("ttl", 1), ("p", 1),
    ("sum", 2), ("src", 4), ("dst", 4),
)  # fmt: skip
IP6 = _layout(("v_fc_flow", 4), ("plen", 2), ("nxt", 1), ("hlim", 1), ("src", 16), ("dst", 16))
IP6_EXT = _layout(("nxt", 1), ("len", 1), ("data", 6))  # the common start of every one
IP6_FRAG = _layout(("nxt", 1), ("reserved", 1), ("off", 2), ("id", 4))
TCP = _layout(
    ("sport", 2), ("dport", 2), ("seq", 4), ("ack", 4), ("off_x2", 1), ("flags", 1),
    ("win", 2), ("sum", 2), ("urp", 2),
)  # fmt: skip
UDP = _layout(("sport", 2), ("dport", 2), ("ulen", 2), ("sum", 2))
ICMP = _layout(("type", 1), ("code", 1), ("sum", 2), ("data", 4))  # the same for ICMPv6

IP4_MF = 0x2000  # more-fragments flag in IP4.off
IP4_OFFMASK = 0x1FFF  # fragment offset (8-byte units) in IP4.off
VLAN_VID = 0x0FFF  # the VLAN id in a tag's TCI


# --------------------------------------------------------------------------- reason codes

# The kernel returns one code per packet (OK = kept) and, for the three keys that name a
# value, that value (`detail`). REASON_KEYS gives each code its key in `skipped`.
(
    OK,
    R_LINKTYPE,
    R_ETHERTYPE,
    R_LLC,
    R_LOOPBACK_AF,
    R_BAD_IP_VERSION,
    R_TRUNCATED_LINK,
    R_VLAN_TOO_DEEP,
    R_TRUNCATED_ARP,
    R_UNSUPPORTED_ARP,
    R_TRUNCATED_IPV4,
    R_BAD_IPV4,
    R_TRUNCATED_IPV6,
    R_BAD_IPV6,
    R_TRUNCATED_IPV6_EXT,
    R_IPV6_EXT_TOO_LONG,
    R_TRUNCATED_TCP,
    R_BAD_TCP,
    R_TRUNCATED_UDP,
    R_BAD_UDP,
    R_TRUNCATED_ICMP,
    R_BAD_ICMP,
) = range(22)

REASON_KEYS: tuple[str, ...] = (
    "",
    "linktype:{}",
    "ethertype:0x{:04x}",
    "llc",
    "loopback_af:{}",
    "bad_ip_version",
    "truncated_link_header",
    "vlan_stack_too_deep",
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


# ------------------------------------------------------------------------- byte reading
# Big-endian reads at absolute offsets into the batch buffer; callers check lengths first.


@inline_kernel
def _byte(buf: np.ndarray, p: int) -> int:
    """buf[p] as a signed 64-bit integer (numba's int() of an unsigned value stays
    unsigned, and unsigned mixed with signed arithmetic turns into floats)."""
    return np.int64(buf[p])  # type: ignore[return-value]


@inline_kernel
def _be16(buf: np.ndarray, p: int) -> int:
    return (_byte(buf, p) << 8) | _byte(buf, p + 1)


@inline_kernel
def _be32(buf: np.ndarray, p: int) -> int:
    return (_be16(buf, p) << 16) | _be16(buf, p + 2)


@inline_kernel
def _be48(buf: np.ndarray, p: int) -> np.uint64:
    return (np.uint64(_be16(buf, p)) << np.uint64(32)) | np.uint64(_be32(buf, p + 2))


@inline_kernel
def _be64(buf: np.ndarray, p: int) -> np.uint64:
    return (np.uint64(_be32(buf, p)) << np.uint64(32)) | np.uint64(_be32(buf, p + 4))


@inline_kernel
def _le16(buf: np.ndarray, p: int) -> int:
    return _byte(buf, p) | (_byte(buf, p + 1) << 8)


@inline_kernel
def _le32(buf: np.ndarray, p: int) -> int:
    return _le16(buf, p) | (_le16(buf, p + 2) << 16)


# ------------------------------------------------------------------------ layer results
# Every layer is a pure function: bytes in, a namedtuple of scalars out (its `reason` is OK
# or the first failed check). Only _decode_packets writes arrays, so the per-packet code
# holds no array references (numba would count references per call otherwise).

Link = namedtuple("Link", "reason detail l3 et has_mac dst_mac src_mac vlan inner_vlan")
Net = namedtuple("Net", "reason l4 payload frag proto ip_len ip_id src_hi src_lo dst_hi dst_lo")
Ports = namedtuple("Ports", "reason hdr sport dport seq ack flags")
ArpFields = namedtuple("ArpFields", "reason sha spa tha tpa")
U0 = np.uint64(0)


@inline_kernel
def _link_fail(reason: int, detail: int) -> Any:
    return Link(reason, detail, 0, 0, False, U0, U0, NO_VLAN, NO_VLAN)


@inline_kernel
def _net_fail(reason: int) -> Any:
    return Net(reason, 0, 0, FRAG_NONE, 0, 0, 0, U0, U0, U0, U0)


@inline_kernel
def _ports_fail(reason: int) -> Any:
    return Ports(reason, 0, 0, 0, 0, 0, 0)


# ---------------------------------------------------------------------------- link layer


@inline_kernel
def _is_vlan_tpid(et: int) -> bool:
    return et == VLAN_TPIDS[0] or et == VLAN_TPIDS[1] or et == VLAN_TPIDS[2]


@inline_kernel
def _vlan_tags(
    buf: np.ndarray, p: int, cap: int, l3: int, et: int, has_mac: bool, dst: Any, src: Any
) -> Any:
    """Walk stacked VLAN tags from `l3`: vlan = first id, inner_vlan = second."""
    vlan = inner_vlan = NO_VLAN
    depth = 0
    while _is_vlan_tpid(et):
        if depth == MAX_VLAN_TAGS:
            return _link_fail(R_VLAN_TOO_DEEP, 0)
        if cap < l3 + VLAN.size:
            return _link_fail(R_TRUNCATED_LINK, 0)
        vid = _be16(buf, p + l3 + VLAN.tci) & VLAN_VID
        if depth == 0:
            vlan = vid
        elif depth == 1:
            inner_vlan = vid
        et = _be16(buf, p + l3 + VLAN.type)
        l3 += VLAN.size
        depth += 1
    return Link(OK, 0, l3, et, has_mac, dst, src, vlan, inner_vlan)


@inline_kernel
def _ethernet(buf: np.ndarray, p: int, cap: int) -> Any:
    if cap < ETH.size:
        return _link_fail(R_TRUNCATED_LINK, 0)
    dst, src = _be48(buf, p + ETH.dst), _be48(buf, p + ETH.src)
    return _vlan_tags(buf, p, cap, ETH.size, _be16(buf, p + ETH.type), True, dst, src)


@inline_kernel
def _linux_cooked(buf: np.ndarray, p: int, cap: int, linktype: int) -> Any:
    """SLL and SLL2: only the sender's address, so has_mac stays False."""
    if linktype == LT_SLL:
        size, et_at = SLL.size, SLL.protocol
    else:
        size, et_at = SLL2.size, SLL2.protocol
    if cap < size:
        return _link_fail(R_TRUNCATED_LINK, 0)
    return _vlan_tags(buf, p, cap, size, _be16(buf, p + et_at), False, U0, U0)


@inline_kernel
def _is_raw_ip(linktype: int) -> bool:
    return (
        linktype == LT_RAW
        or linktype == LT_RAW_ALT[0]
        or linktype == LT_RAW_ALT[1]
        or linktype == LT_IPV4
        or linktype == LT_IPV6
    )


@inline_kernel
def _no_mac(l3: int, et: int) -> Any:
    return Link(OK, 0, l3, et, False, U0, U0, NO_VLAN, NO_VLAN)


@inline_kernel
def _raw_ip(buf: np.ndarray, p: int, cap: int, linktype: int) -> Any:
    """The packet starts with its IP header: the version comes from the link type (228,
    229) or the first nibble."""
    if cap < 1:
        return _link_fail(R_TRUNCATED_LINK, 0)
    if linktype == LT_IPV4:
        return _no_mac(0, ET_IPV4)
    if linktype == LT_IPV6:
        return _no_mac(0, ET_IPV6)
    version = buf[p] >> 4
    if version == 4:
        return _no_mac(0, ET_IPV4)
    if version == 6:
        return _no_mac(0, ET_IPV6)
    return _link_fail(R_BAD_IP_VERSION, 0)


@inline_kernel
def _loopback(buf: np.ndarray, p: int, cap: int, linktype: int) -> Any:
    """NULL: the address family in the capturing host's byte order (a value below 0x10000
    read little-endian is unambiguous); LOOP: big-endian."""
    if cap < LOOPBACK.size:
        return _link_fail(R_TRUNCATED_LINK, 0)
    af = _be32(buf, p + LOOPBACK.family)
    if linktype == LT_NULL:
        le = _le32(buf, p + LOOPBACK.family)
        if le < 0x10000:
            af = le
    if af == AF_INET:
        return _no_mac(LOOPBACK.size, ET_IPV4)
    if af == AF_INET6[0] or af == AF_INET6[1] or af == AF_INET6[2]:
        return _no_mac(LOOPBACK.size, ET_IPV6)
    return _link_fail(R_LOOPBACK_AF, af)


@inline_kernel
def _link(buf: np.ndarray, p: int, cap: int, linktype: int) -> Any:
    if linktype == LT_ETHERNET:
        return _ethernet(buf, p, cap)
    if linktype == LT_SLL or linktype == LT_SLL2:
        return _linux_cooked(buf, p, cap, linktype)
    if _is_raw_ip(linktype):
        return _raw_ip(buf, p, cap, linktype)
    if linktype == LT_NULL or linktype == LT_LOOP:
        return _loopback(buf, p, cap, linktype)
    return _link_fail(R_LINKTYPE, linktype)


# ---------------------------------------------------------------------------------- ARP


@inline_kernel
def _arp(buf: np.ndarray, p: int, avail: int) -> Any:
    """Ethernet/IPv4 ARP: sender and target MAC and IPv4."""
    if avail < ARP.size:
        return ArpFields(R_TRUNCATED_ARP, U0, U0, U0, U0)
    if (
        _be16(buf, p + ARP.hrd) != 1
        or _be16(buf, p + ARP.pro) != ET_IPV4
        or buf[p + ARP.hln] != 6
        or buf[p + ARP.pln] != 4
    ):
        return ArpFields(R_UNSUPPORTED_ARP, U0, U0, U0, U0)
    return ArpFields(
        OK,
        _be48(buf, p + ARP.sha),
        np.uint64(_be32(buf, p + ARP.spa)) | IPV4_MAPPED,
        _be48(buf, p + ARP.tha),
        np.uint64(_be32(buf, p + ARP.tpa)) | IPV4_MAPPED,
    )


# ---------------------------------------------------------------------------- IP layers
# l4: transport header offset from the IP header; payload: IP payload bytes after all IP
# headers per the IP length.


@inline_kernel
def _ipv4(buf: np.ndarray, p: int, avail: int, wire: int) -> Any:
    if avail < IP4.size:
        return _net_fail(R_TRUNCATED_IPV4)
    ihl = (_byte(buf, p + IP4.v_hl) & 0x0F) * 4
    if ihl >= IP4.size and avail < ihl:
        return _net_fail(R_TRUNCATED_IPV4)
    total = _be16(buf, p + IP4.len)
    if total == 0:  # TCP segmentation offload: the wire length says
        total = wire
    if buf[p + IP4.v_hl] >> 4 != 4 or ihl < IP4.size or total < ihl:
        return _net_fail(R_BAD_IPV4)
    off = _be16(buf, p + IP4.off)
    if off & IP4_OFFMASK:
        frag = FRAG_LATER
    elif off & IP4_MF:
        frag = FRAG_FIRST
    else:
        frag = FRAG_NONE
    return Net(
        OK,
        ihl,
        total - ihl,
        frag,
        _byte(buf, p + IP4.p),
        total,
        _be16(buf, p + IP4.id),
        U0,
        np.uint64(_be32(buf, p + IP4.src)) | IPV4_MAPPED,
        U0,
        np.uint64(_be32(buf, p + IP4.dst)) | IPV4_MAPPED,
    )


@inline_kernel
def _is_ipv6_ext(nh: int) -> bool:
    return (
        nh == IPV6_HOPOPTS
        or nh == IPV6_ROUTING
        or nh == IPV6_FRAGMENT
        or nh == IPV6_AH
        or nh == IPV6_DSTOPTS
    )


@inline_kernel
def _ipv6(buf: np.ndarray, p: int, avail: int) -> Any:
    """The fixed header, then extension headers until a transport protocol, ESP,
    no-next-header or a non-first fragment; at most MAX_IPV6_EXT of them."""
    if avail < IP6.size:
        return _net_fail(R_TRUNCATED_IPV6)
    if buf[p + IP6.v_fc_flow] >> 4 != 6:
        return _net_fail(R_BAD_IPV6)
    plen = _be16(buf, p + IP6.plen)
    nh = _byte(buf, p + IP6.nxt)
    cur = IP6.size
    frag = FRAG_NONE
    ident = 0
    steps = 0
    while _is_ipv6_ext(nh) and frag != FRAG_LATER:
        if steps == MAX_IPV6_EXT:
            return _net_fail(R_IPV6_EXT_TOO_LONG)
        if avail < cur + IP6_EXT.size:
            return _net_fail(R_TRUNCATED_IPV6_EXT)
        at = p + cur
        if nh == IPV6_FRAGMENT:
            off = _be16(buf, at + IP6_FRAG.off)
            if off >> 3:
                frag = FRAG_LATER
            elif off & 1:
                frag = FRAG_FIRST
            else:
                frag = FRAG_NONE
            ident = _be32(buf, at + IP6_FRAG.id)
            length = IP6_FRAG.size
        elif nh == IPV6_AH:  # length in 4-byte units, minus 2
            length = (_byte(buf, at + IP6_EXT.len) + 2) * 4
        else:  # length in 8-byte units, minus 1
            length = (_byte(buf, at + IP6_EXT.len) + 1) * 8
        nh = _byte(buf, at + IP6_EXT.nxt)
        cur += length
        steps += 1
    return Net(
        OK,
        cur,
        max(plen + IP6.size - cur, 0),
        frag,
        nh,
        plen + IP6.size,
        ident,
        _be64(buf, p + IP6.src),
        _be64(buf, p + IP6.src + 8),
        _be64(buf, p + IP6.dst),
        _be64(buf, p + IP6.dst + 8),
    )


# ------------------------------------------------------------------------ transport layer


@inline_kernel
def _transport(buf: np.ndarray, p: int, avail: int, pay: int, frag: int, proto: int) -> Any:
    """TCP, UDP and ICMP/ICMPv6 headers at `p` (`avail` bytes captured from there, `pay`
    bytes of IP payload); other protocols and later fragments are all payload (hdr 0)."""
    none = Ports(OK, 0, 0, 0, 0, 0, 0)
    if frag == FRAG_LATER:
        return none
    if proto == PROTO_TCP:
        if frag == FRAG_FIRST and pay < TCP.size:
            return none  # a tiny first fragment: kept without ports
        if avail < TCP.size:
            return _ports_fail(R_TRUNCATED_TCP)
        hdr = (_byte(buf, p + TCP.off_x2) >> 4) * 4
        if hdr < TCP.size or hdr > pay:
            return _ports_fail(R_BAD_TCP)
        return Ports(
            OK,
            hdr,
            _be16(buf, p + TCP.sport),
            _be16(buf, p + TCP.dport),
            _be32(buf, p + TCP.seq),
            _be32(buf, p + TCP.ack),
            _byte(buf, p + TCP.flags),
        )
    if proto == PROTO_UDP:
        if frag == FRAG_FIRST and pay < UDP.size:
            return none
        if avail < UDP.size:
            return _ports_fail(R_TRUNCATED_UDP)
        if pay < UDP.size:
            return _ports_fail(R_BAD_UDP)
        return Ports(OK, UDP.size, _be16(buf, p + UDP.sport), _be16(buf, p + UDP.dport), 0, 0, 0)
    if proto == PROTO_ICMP or proto == PROTO_ICMP6:
        if frag == FRAG_FIRST and pay < ICMP.size:
            return none
        if avail < ICMP.size:
            return _ports_fail(R_TRUNCATED_ICMP)
        if pay < ICMP.size:
            return _ports_fail(R_BAD_ICMP)
        return Ports(OK, ICMP.size, _byte(buf, p + ICMP.type), _byte(buf, p + ICMP.code), 0, 0, 0)
    return none


# ----------------------------------------------------------------------- one packet, all


@inline_kernel
def _not_ip(linktype: int, et: int) -> tuple[int, int]:
    """(reason, detail) of a frame that is neither IPv4, IPv6 nor ARP."""
    if linktype == LT_ETHERNET and et <= ETHER_MAX_LEN:  # an 802.3 length, not a type
        return R_LLC, 0
    return R_ETHERTYPE, et


@inline_kernel
def _store_ip(
    out: Any, k: int, index: int, ts_ns: int, link: Any, net: Any, l4: Any, at: int, avail: int
) -> None:
    """Row k of `out`: an IP packet whose transport header starts at `at`, `avail` bytes
    captured from there. (One straight block: the arrays of `out` are not re-counted.)"""
    payload_len = net.payload - l4.hdr
    out.index[k] = index
    out.ts_ns[k] = ts_ns
    out.kind[k] = KIND_IP
    out.src_mac[k] = link.src_mac
    out.dst_mac[k] = link.dst_mac
    out.has_mac[k] = link.has_mac
    out.vlan[k] = link.vlan
    out.inner_vlan[k] = link.inner_vlan
    out.ip_version[k] = 4 if link.et == ET_IPV4 else 6
    out.src_hi[k] = net.src_hi
    out.src_lo[k] = net.src_lo
    out.dst_hi[k] = net.dst_hi
    out.dst_lo[k] = net.dst_lo
    out.proto[k] = net.proto
    out.ip_len[k] = net.ip_len
    out.frag[k] = net.frag
    out.ip_id[k] = net.ip_id
    out.sport[k] = l4.sport
    out.dport[k] = l4.dport
    out.has_l4[k] = l4.hdr > 0
    out.tcp_flags[k] = l4.flags
    out.seq[k] = l4.seq
    out.ack[k] = l4.ack
    out.payload_len[k] = payload_len
    out.payload_off[k] = at + l4.hdr
    out.caplen_payload[k] = min(max(avail - l4.hdr, 0), payload_len)


@inline_kernel
def _store_arp(out: Any, k: int, index: int, ts_ns: int, link: Any, arp: Any) -> None:
    """Row k of `out`: an ARP packet (no IP-level fields)."""
    out.index[k] = index
    out.ts_ns[k] = ts_ns
    out.kind[k] = KIND_ARP
    out.src_mac[k] = arp.sha
    out.dst_mac[k] = arp.tha
    out.has_mac[k] = True
    out.vlan[k] = link.vlan
    out.inner_vlan[k] = link.inner_vlan
    out.ip_version[k] = 4
    out.src_hi[k] = U0
    out.src_lo[k] = arp.spa
    out.dst_hi[k] = U0
    out.dst_lo[k] = arp.tpa
    out.proto[k] = 0
    out.ip_len[k] = 0
    out.frag[k] = FRAG_NONE
    out.ip_id[k] = 0
    out.sport[k] = 0
    out.dport[k] = 0
    out.has_l4[k] = False
    out.tcp_flags[k] = 0
    out.seq[k] = 0
    out.ack[k] = 0
    out.payload_len[k] = 0
    out.payload_off[k] = 0
    out.caplen_payload[k] = 0


@kernel
def _decode_packets(
    buf: np.ndarray,
    data_off: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    linktype: np.ndarray,
    index: np.ndarray,
    ts_ns: np.ndarray,
    out: Any,
    reason: np.ndarray,
    detail: np.ndarray,
) -> int:
    """Decode every packet of a batch; kept packets fill `out` from row 0 in record
    order. Every packet's reason code (OK when kept) and detail go to reason/detail.
    Returns the number kept."""
    k = 0  # the next output row
    size = buf.shape[0]
    for i in range(data_off.shape[0]):
        p: int = np.int64(data_off[i])  # type: ignore[assignment]
        cap: int = np.int64(caplen[i])  # type: ignore[assignment]
        if p < 0 or p > size:  # never from the reader: nothing of the packet is in buf
            p, cap = 0, 0
        cap = min(cap, size - p)
        lt: int = np.int64(linktype[i])  # type: ignore[assignment]
        reason[i], detail[i] = OK, 0

        link = _link(buf, p, cap, lt)
        if link.reason != OK:
            reason[i], detail[i] = link.reason, link.detail
            continue
        l3 = p + link.l3  # absolute offset of the network header
        if link.et == ET_ARP:
            arp = _arp(buf, l3, cap - link.l3)
            if arp.reason != OK:
                reason[i] = arp.reason
                continue
            _store_arp(out, k, index[i], ts_ns[i], link, arp)
            k += 1
            continue
        if link.et == ET_IPV4:
            net = _ipv4(buf, l3, cap - link.l3, np.int64(wirelen[i]) - link.l3)
        elif link.et == ET_IPV6:
            net = _ipv6(buf, l3, cap - link.l3)
        else:
            reason[i], detail[i] = _not_ip(lt, link.et)
            continue
        if net.reason != OK:
            reason[i] = net.reason
            continue
        avail = cap - link.l3 - net.l4  # bytes captured from the transport header on
        l4 = _transport(buf, l3 + net.l4, avail, net.payload, net.frag, net.proto)
        if l4.reason != OK:
            reason[i] = l4.reason
            continue
        _store_ip(out, k, index[i], ts_ns[i], link, net, l4, l3 + net.l4, avail)
        k += 1
    return k


# ---------------------------------------------------------------------------- the batch


def decode_batch(raw: RawBatch, skipped: Counter[str]) -> PacketBatch:
    n = raw.n
    out = _Columns(*(np.empty(n, dtype=dtype) for dtype in COLUMNS.values()))
    reason = np.empty(n, dtype=np.uint8)
    detail = np.empty(n, dtype=np.int64)
    buf = readonly(np.ascontiguousarray(raw.buf, dtype=np.uint8))
    kept = _decode_packets(
        buf,
        np.ascontiguousarray(raw.data_off, dtype=np.int64),
        np.ascontiguousarray(raw.caplen, dtype=np.uint32),
        np.ascontiguousarray(raw.wirelen, dtype=np.uint32),
        np.ascontiguousarray(raw.linktype, dtype=np.uint16),
        np.ascontiguousarray(raw.index, dtype=np.int64),
        np.ascontiguousarray(raw.ts_ns, dtype=np.int64),
        out,
        reason,
        detail,
    )
    if kept < n:
        count_reasons(skipped, reason, detail)
    columns = {name: getattr(out, name)[:kept] for name in COLUMNS}
    return PacketBatch(**columns, buf=buf)


def count_reasons(skipped: Counter[str], reason: np.ndarray, detail: np.ndarray) -> None:
    """Add each dropped packet's reason key to `skipped` (codes from the kernel)."""
    counts = np.bincount(reason, minlength=len(REASON_KEYS))
    for code in np.flatnonzero(counts[1:]).tolist():
        code += 1
        key = REASON_KEYS[code]
        if "{" not in key:
            skipped[key] += int(counts[code])
            continue
        values, per_value = np.unique(detail[reason == code], return_counts=True)
        for value, c in zip(values.tolist(), per_value.tolist(), strict=True):
            skipped[key.format(value)] += c
