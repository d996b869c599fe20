"""Link layers and IPv4/IPv6/TCP/UDP/ICMP header fields, vectorised over a RawBatch.

INTERFACE (fixed; other modules depend on it):

    decode_batch(raw: RawBatch, skipped: Counter[str]) -> PacketBatch

PacketBatch holds one numpy array per field, one element per packet kept. Packets that
cannot be decoded are counted in `skipped` by reason and dropped. ARP packets are kept
with kind == KIND_ARP (sender MAC in src_mac, sender IPv4 in src_lo/src_hi).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KIND_IP = 1
KIND_ARP = 2

FRAG_NONE = 0  # not a fragment
FRAG_FIRST = 1  # offset 0 with more-fragments set: carries the transport header
FRAG_LATER = 2  # offset > 0: no transport header

NO_VLAN = -1


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
