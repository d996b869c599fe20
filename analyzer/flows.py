"""Bidirectional connection table with Zeek conn.log semantics: originator, conn_state,
history, per-direction counters, timeouts. Consumes decode.PacketBatch.

INTERFACE (fixed; other modules depend on it):

    table = FlowTable(capture_name="x.pcap", service_ports=frozenset({("tcp", 12000), ...}))
    for batch in batches:
        table.add(batch)
    result = table.finish()           # FlowResult

FlowResult.flows: pandas DataFrame with the connection columns of schema.FLOWS
(uid, ts, last_ts, duration, proto, orig_h, orig_p, resp_h, resp_p, orig_evidence,
orig_mac, resp_mac, vlan, inner_vlan, orig_pkts, resp_pkts, orig_bytes, resp_bytes,
orig_ip_bytes, resp_ip_bytes, conn_state, history, service (None here), capture),
sorted by (ts, uid), plus internal columns (dropped on output):
    _orig_head  bytes | None   first payload bytes (up to HEAD_BYTES) sent by the originator
    _resp_head  bytes | None   first payload bytes sent by the responder
    _resp_bcast bool           responder address is broadcast or multicast
FlowResult.hosts: ip, mac, first_ts, last_ts, pkts, bytes (unicast addresses only)
FlowResult.arp:   ip, mac, ts  (ARP sender pairs)
FlowResult.dns:   ts, client, server, payload  (DNS responses: UDP from port 53)

All timestamp columns are pandas datetime64[us, UTC].

Semantics (Zeek conn.log, with the contract's "Precise rules"):

- Key: (IP protocol, the two (address, port) endpoints unordered, vlan, inner_vlan).
  ICMP/ICMPv6 as Zeek keys them: the sender's port is its ICMP type, the receiver's
  port the counterpart type (echo 8 <-> 0, timestamp 13 <-> 14, info 15 <-> 16, router
  solicitation 10 <-> 9, mask 17 <-> 18; ICMPv6 echo 128 <-> 129, router 133 <-> 134,
  neighbour 135 <-> 136, MLD 130 <-> 131, node information 139 <-> 140, home agent
  144 <-> 145); other (one-way) types use the ICMP code as the counterpart, like
  Zeek's ICMP4_counterpart/ICMP6_counterpart. The ICMP identifier is ignored (Zeek
  does too). Other IP protocols are keyed by addresses with ports 0.
- Connections split when a packet arrives more than the idle timeout after the
  connection's previous packet, and (TCP) at a SYN without ACK once the connection is
  closed (a RST seen, or a FIN from both sides) and its sequence number differs from
  the connection's first SYN (same number = a retransmission): Zeek's port-reuse
  rule (TCPSessionAdapter::IsReuse). Zeek's
  tcp_close_delay (a closed connection lingers 5 s, later non-SYN packets start a
  new partial connection) is not emulated: late packets stay in their connection.
- Originator: see `_originator`. TCP: the first SYN's sender (`syn`); else, when the
  first packet is a SYN-ACK, its receiver (`synack`); else the service-port side is
  the responder when exactly one side's port is a service port (`port`); else the
  first sender (`first_packet`). UDP: the first sender, unless its source port is a
  service port and the destination port is not (`port`). ICMP: the first sender,
  unless its type is a reply type (then the receiver, `port`: the type plays the
  port). A broadcast or multicast address is always the responder.
- Broadcast and multicast: IPv4 255.255.255.255, any x.x.x.255 (taken as a directed
  broadcast: the netmask is unknown, so this assumes prefixes of /24 or shorter, which
  is what building networks use), 224.0.0.0/4, IPv6 ff00::/8.
- Counters per direction: packets; payload bytes = sum of the transport payload
  lengths the headers state (decode.PacketBatch.payload_len; Zeek derives TCP bytes
  from sequence numbers instead, which differs on retransmissions and gaps); IP bytes
  = sum of ip_len. MACs come from the first packet each way.
- history: Zeek's letters S H A D F R plus I (FIN+RST) and Q (other multi-flag),
  upper case = originator, each letter once per direction, in order of first
  occurrence. UDP: D / d for the first datagram each way. ICMP and other protocols:
  empty (Zeek records no history for them). Not produced: Zeek's repeat letters,
  T W C G (retransmission, window, content gap, ...) and the '^' flip marker.
- conn_state: TCP from Zeek's endpoint state machine (TCPSessionAdapter) replayed on
  the history letters, then Zeek's conn_state() table (base/protocols/conn/main.zeek);
  UDP: S0 (only the originator sent), SF (both), SHR (only the responder); ICMP and
  other protocols: OTH, as Zeek.
- IP fragments: a first fragment (FRAG_FIRST) carries ports and counts normally. A
  later fragment (FRAG_LATER) takes the ports of the first fragment with the same
  (source, destination, protocol, IP id) seen earlier in the capture, so it joins that
  connection; otherwise it forms its own connection with ports 0. Every fragment
  counts as one packet (Zeek counts reassembled datagrams); payload bytes add up the
  fragments' own payloads (decode derives payload_len from the IP length, not from the
  UDP length field), so a reassembled datagram counts its bytes once.
- ARP packets make no connection; their (sender IP, sender MAC) pairs go to
  FlowResult.arp, one row per distinct pair with the first time it was seen; probes
  from 0.0.0.0 are left out.
- hosts: built from the connections: pkts / bytes (IP bytes) / first_ts / last_ts over
  every connection the address takes part in; mac = the MAC of its first connection in
  which it sent a packet. Broadcast, multicast and unspecified addresses are left out.
- dns: every UDP packet from port 53 (not later fragments), payload as captured; with
  dns_names given, only those whose payload mentions one of the names.
- Speed: no per-packet Python. Per batch, keys are hashed to 64 bits, grouped with one
  sort of (hash | position) values and verified word by word; keys are looked up in a
  sorted array of live keys (np.searchsorted); counters are per-segment reductions
  scattered into per-connection numpy columns. Keys idle past their timeout leave the
  live index every PRUNE_EVERY_BATCHES batches, so memory follows the connections.
- uid: "C" + 11 base62 digits of a 64-bit hash of (capture name, index of the
  connection's first packet, key): the same capture gives the same uids.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analyzer import schema
from analyzer.decode import FRAG_FIRST, FRAG_LATER, KIND_ARP, NO_VLAN, PacketBatch

HEAD_BYTES = 256  # payload bytes kept per direction for service recognition
PRUNE_EVERY_BATCHES = 8  # how often idle keys leave the live index (memory, not semantics)

# Zeek's defaults (base/init-bare.zeek): tcp_inactivity_timeout = 5 min,
# udp_inactivity_timeout = 1 min, icmp_inactivity_timeout = 1 min. Protocols other
# than TCP/UDP/ICMP use the UDP value (Zeek's unknown_ip_inactivity_timeout is 1 min).
TCP_IDLE_TIMEOUT_S = 300.0
UDP_IDLE_TIMEOUT_S = 60.0
ICMP_IDLE_TIMEOUT_S = 60.0

# Well-known ports (IANA: 0-1023) are service ports besides the catalog's ports.
WELL_KNOWN_PORT_LIMIT = 1024

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_NAMES: dict[int, str] = {
    PROTO_ICMP: "icmp",
    PROTO_TCP: "tcp",
    PROTO_UDP: "udp",
    PROTO_ICMP6: "icmp6",
}

TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_ACK = 0x10

# History events, in the order of the per-connection event columns. Column e holds the
# first packet index of event e from endpoint A, column N_EVENTS + e from endpoint B.
EVENT_LETTERS = "SHADFRIQ"
EV_S, EV_H, EV_A, EV_D, EV_F, EV_R, EV_I, EV_Q = range(8)
N_EVENTS = len(EVENT_LETTERS)
EV_NONE = 2 * N_EVENTS  # packet contributes no history letter

NEVER = np.iinfo(np.int64).max  # "event not seen" / "no position"

# ICMP request <-> reply counterparts (Zeek's ICMP4_counterpart / ICMP6_counterpart).
ICMP4_PAIRS: tuple[tuple[int, int], ...] = ((8, 0), (13, 14), (15, 16), (10, 9), (17, 18))
ICMP6_PAIRS: tuple[tuple[int, int], ...] = (
    (128, 129),
    (133, 134),
    (135, 136),
    (130, 131),
    (139, 140),
    (144, 145),
)

# Classify fills these columns of schema.FLOWS; the flow table produces all the others,
# in the schema's order, plus internal columns that output drops.
CLASSIFICATION_COLUMNS: tuple[str, ...] = (
    "system",
    "signature_id",
    "verdict",
    "severity",
    "reason",
)
INTERNAL_COLUMNS: tuple[str, ...] = ("_orig_head", "_resp_head", "_resp_bcast")
FLOW_COLUMNS: tuple[str, ...] = (
    *(c.name for c in schema.FLOWS if c.name not in CLASSIFICATION_COLUMNS),
    *INTERNAL_COLUMNS,
)
HOST_COLUMNS: tuple[str, ...] = ("ip", "mac", "first_ts", "last_ts", "pkts", "bytes")
ARP_COLUMNS: tuple[str, ...] = ("ip", "mac", "ts")
DNS_COLUMNS: tuple[str, ...] = ("ts", "client", "server", "payload")


@dataclass
class FlowResult:
    flows: pd.DataFrame
    hosts: pd.DataFrame
    arp: pd.DataFrame
    dns: pd.DataFrame


def is_service_port(proto: str, port: int, service_ports: frozenset[tuple[str, int]]) -> bool:
    """A well-known port (1..1023) or a port the catalog documents for `proto`."""
    return 0 < port < WELL_KNOWN_PORT_LIMIT or (proto, port) in service_ports


def _service_table(service_ports: frozenset[tuple[str, int]]) -> np.ndarray:
    """bool[256, 65536]: is_service_port for every (IP protocol number, port)."""
    table = np.zeros((256, 65536), dtype=bool)
    table[:, 1:WELL_KNOWN_PORT_LIMIT] = True
    numbers = {name: num for num, name in PROTO_NAMES.items()}
    for proto, port in service_ports:
        if proto in numbers and 0 <= port < 65536:
            table[numbers[proto], port] = True
    return table


def _icmp_tables() -> tuple[np.ndarray, np.ndarray]:
    """counterpart[2, 256] (-1 = one-way type, use the code) and is_reply[2, 256];
    row 0 = ICMPv4, row 1 = ICMPv6."""
    counterpart = np.full((2, 256), -1, dtype=np.int64)
    is_reply = np.zeros((2, 256), dtype=bool)
    for row, pairs in enumerate((ICMP4_PAIRS, ICMP6_PAIRS)):
        for request, reply in pairs:
            counterpart[row, request] = reply
            counterpart[row, reply] = request
            is_reply[row, reply] = True
    return counterpart, is_reply


ICMP_COUNTERPART, ICMP_IS_REPLY = _icmp_tables()


# --- per-connection storage -----------------------------------------------------------

_SLOT_FIELDS: dict[str, Any] = {
    # key, canonical orientation: endpoint A sorts before endpoint B
    "a_hi": np.uint64,
    "a_lo": np.uint64,
    "b_hi": np.uint64,
    "b_lo": np.uint64,
    "w4": np.uint64,  # proto | ports, as in the key words
    "w5": np.uint64,  # vlan ids + 1, as in the key words
    "a_port": np.int32,
    "b_port": np.int32,
    "proto": np.uint8,
    "vlan": np.int32,
    "inner_vlan": np.int32,
    # first packet
    "first_index": np.int64,
    "ts_first": np.int64,
    "first_ab": bool,
    "first_flags": np.uint8,
    "ts_last": np.int64,
    # per direction (ab = sent by A, ba = sent by B)
    "pkts_ab": np.int64,
    "pkts_ba": np.int64,
    "bytes_ab": np.int64,
    "bytes_ba": np.int64,
    "ipb_ab": np.int64,
    "ipb_ba": np.int64,
    "flags_ab": np.uint8,
    "flags_ba": np.uint8,
    "mac_ab": np.uint64,
    "mac_ba": np.uint64,
    "macok_ab": bool,
    "macok_ba": bool,
    "head_ab": bool,
    "head_ba": bool,
    "ev_seen": np.uint16,  # bit e: history event column e seen
    "syn_seq": np.int64,  # sequence number of the first SYN without ACK, -1 = none
}
_SLOT_INIT: dict[str, int] = {"ts_last": np.iinfo(np.int64).min, "syn_seq": -1}


class _Slots:
    """Growable column store, one row per connection (never per packet)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.cols: dict[str, np.ndarray] = {
            name: np.full(capacity, _SLOT_INIT.get(name, 0), dtype=dt)
            for name, dt in _SLOT_FIELDS.items()
        }
        self.events = np.full((capacity, 2 * N_EVENTS), NEVER, dtype=np.int64)
        self.heads_ab: dict[int, bytes] = {}
        self.heads_ba: dict[int, bytes] = {}

    def alloc(self, count: int) -> np.ndarray:
        """Reserve `count` new rows; returns their ids."""
        need = self.n + count
        capacity = self.events.shape[0]
        if need > capacity:
            new_cap = max(need, 2 * capacity)
            for name, arr in self.cols.items():
                grown = np.full(new_cap, _SLOT_INIT.get(name, 0), dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[name] = grown
            events = np.full((new_cap, 2 * N_EVENTS), NEVER, dtype=np.int64)
            events[: self.n] = self.events[: self.n]
            self.events = events
        ids = np.arange(self.n, need, dtype=np.int64)
        self.n = need
        return ids

    def view(self) -> dict[str, np.ndarray]:
        return {name: arr[: self.n] for name, arr in self.cols.items()}


# --- the table --------------------------------------------------------------------------


class FlowTable:
    """Connection table fed batch by batch; vectorised per batch (no per-packet Python)."""

    def __init__(
        self,
        *,
        capture_name: str,
        service_ports: frozenset[tuple[str, int]] = frozenset(),
        tcp_idle_timeout_s: float = TCP_IDLE_TIMEOUT_S,
        udp_idle_timeout_s: float = UDP_IDLE_TIMEOUT_S,
        icmp_idle_timeout_s: float = ICMP_IDLE_TIMEOUT_S,
        dns_names: Iterable[str] | None = None,
    ) -> None:
        self.capture_name = capture_name
        # DNS responses are kept only where they mention one of these names (None: all).
        # Classification needs the answers for the catalog's documented destinations
        # only; keeping every response made memory grow with the capture's length.
        self._dns_names = _dns_wire_names(dns_names) if dns_names is not None else None
        self._service = _service_table(service_ports)
        timeouts = np.full(256, int(udp_idle_timeout_s * 1e9), dtype=np.int64)
        timeouts[PROTO_TCP] = int(tcp_idle_timeout_s * 1e9)
        timeouts[PROTO_ICMP] = int(icmp_idle_timeout_s * 1e9)
        timeouts[PROTO_ICMP6] = int(icmp_idle_timeout_s * 1e9)
        self._timeout_ns = timeouts
        self._slots = _Slots()
        self._live = _LiveIndex()
        self._batches = 0
        self._frag_ports: dict[tuple[int, ...], tuple[int, int]] = {}
        self._arp: dict[tuple[int, int], int] = {}  # (ipv4, mac) -> first ts_ns
        self._dns: list[tuple[np.ndarray, ...]] = []  # ts, dst hi/lo, src hi/lo per batch
        self._dns_payloads: list[bytes] = []

    # -- feeding --------------------------------------------------------------------

    def add(self, batch: PacketBatch) -> None:
        """Account every packet of `batch` (record order) to its connection."""
        if batch.n == 0:
            return
        is_arp = batch.kind == KIND_ARP
        if is_arp.any():
            self._add_arp(batch, np.flatnonzero(is_arp))
            keep = np.flatnonzero(~is_arp)
            if keep.size == 0:
                return
        else:
            keep = None
        pk = _Packets.from_batch(batch, keep)
        self._fix_fragments(pk)
        self._collect_dns(pk, batch.buf)
        self._account(pk, batch.buf)
        self._batches += 1
        if self._batches % PRUNE_EVERY_BATCHES == 0:
            self._prune(int(pk.ts_ns.min()))

    def _prune(self, now_ns: int) -> None:
        """Forget keys idle for longer than their timeout: their next packet would start a
        new connection anyway, so this bounds memory by the active connections."""
        cols = self._slots.cols
        slots = self._live.slot
        idle = now_ns - cols["ts_last"][slots]
        self._live.keep(idle <= self._timeout_ns[cols["proto"][slots]])

    def _add_arp(self, batch: PacketBatch, rows: np.ndarray) -> None:
        ip = (batch.src_lo[rows] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        mac = batch.src_mac[rows].astype(np.int64)
        ts = batch.ts_ns[rows]
        ok = (ip != 0) & batch.has_mac[rows]
        for ip_v, mac_v, ts_v in zip(
            ip[ok].tolist(), mac[ok].tolist(), ts[ok].tolist(), strict=True
        ):
            key = (ip_v, mac_v)
            if key not in self._arp:
                self._arp[key] = ts_v

    def _fix_fragments(self, pk: _Packets) -> None:
        """Give later fragments the ports of their first fragment (see module doc)."""
        rows = np.flatnonzero(pk.frag != 0)
        if rows.size == 0:
            return
        frag_ports = self._frag_ports
        if len(frag_ports) > 65536:  # fragments are reassembled within seconds; forget old
            frag_ports.clear()
        fields = zip(
            rows.tolist(),
            pk.frag[rows].tolist(),
            pk.src_hi[rows].tolist(),
            pk.src_lo[rows].tolist(),
            pk.dst_hi[rows].tolist(),
            pk.dst_lo[rows].tolist(),
            pk.proto[rows].tolist(),
            pk.ip_id[rows].tolist(),
            pk.sport[rows].tolist(),
            pk.dport[rows].tolist(),
            strict=True,
        )
        for row, frag, sh, sl, dh, dl, proto, ip_id, sport, dport in fields:
            key = (sh, sl, dh, dl, proto, ip_id)
            if frag == FRAG_FIRST:
                frag_ports[key] = (sport, dport)
            elif frag == FRAG_LATER and key in frag_ports:
                pk.sport[row], pk.dport[row] = frag_ports[key]
                pk.orphan[row] = False
            elif frag == FRAG_LATER:
                pk.sport[row] = pk.dport[row] = 0

    def _collect_dns(self, pk: _Packets, buf: np.ndarray) -> None:
        rows = np.flatnonzero(
            (pk.proto == PROTO_UDP) & (pk.sport == 53) & pk.has_l4 & (pk.frag != FRAG_LATER)
        )
        if rows.size == 0:
            return
        if self._dns_names is not None:
            rows = self._dns_mentioning(pk, buf, rows)
            if rows.size == 0:
                return
        ends = pk.payload_off[rows] + pk.caplen_payload[rows]
        payloads = [
            buf[o:e].tobytes()
            for o, e in zip(pk.payload_off[rows].tolist(), ends.tolist(), strict=True)
        ]
        self._dns.append(
            (pk.ts_ns[rows], pk.dst_hi[rows], pk.dst_lo[rows], pk.src_hi[rows], pk.src_lo[rows])
        )
        self._dns_payloads.extend(payloads)

    def _dns_mentioning(self, pk: _Packets, buf: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The `rows` whose payload holds one of the wanted names, in any letter case (DNS
        0x20). The payloads are joined by 0xFF (no byte of a wire-encoded host name),
        lower-cased once and searched with bytes.find per name: a case-insensitive regex
        over the same bytes took 15 ms per MB."""
        assert self._dns_names is not None
        offs = pk.payload_off[rows]
        lens = pk.caplen_payload[rows].astype(np.int64)
        view = buf.data
        joined = b"\xff".join(
            [view[o : o + n] for o, n in zip(offs.tolist(), lens.tolist(), strict=True)]
        ).lower()
        starts = np.cumsum(lens + 1) - (lens + 1)  # where each payload begins in `joined`
        hits = [at for name in self._dns_names for at in _find_all(joined, name)]
        if not hits:
            return rows[:0]
        which = np.unique(np.searchsorted(starts, np.asarray(hits), side="right") - 1)
        return rows[which]

    def _account(self, pk: _Packets, buf: np.ndarray) -> None:
        keys = _canonical_keys(pk)
        h = _hash_words(keys.words)
        order, gstart = _group(h, keys.words)
        s = _Sorted(pk, keys, order)
        g_rows = order[gstart]
        hg, wg = h[g_rows], keys.words[g_rows]
        slot_g, loc_g = self._live.lookup(hg, wg)
        boundary, is_new = self._segments(s, gstart, slot_g)
        starts = np.flatnonzero(boundary)
        seg_slot, new_slot_g = self._assign_slots(starts, is_new, gstart, slot_g)
        self._live.store(hg, wg, loc_g, new_slot_g, new_slot_g != slot_g)
        self._update_slots(s, starts, seg_slot, is_new[starts], buf)

    # -- segmentation: timeouts and port reuse ----------------------------------------

    def _segments(
        self, s: _Sorted, gstart: np.ndarray, slot_g: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Split each key's packets into connections. Returns (boundary, is_new): boundary
        marks each connection's first packet in sorted order; is_new (at boundaries) is
        False only where the packets continue the key's live connection."""
        cols = self._slots.cols
        n = s.n
        gid = np.cumsum(gstart) - 1
        slot_p = slot_g[gid]
        cont = gstart & (slot_p >= 0)  # group starts that may continue a live slot
        prev_ts = np.empty(n, dtype=np.int64)
        prev_ts[0] = 0
        prev_ts[1:] = s.ts[:-1]
        cont_rows = np.flatnonzero(cont)
        prev_ts[cont_rows] = cols["ts_last"][slot_p[cont_rows]]
        gap = (s.ts - prev_ts) > self._timeout_ns[s.proto]
        gap &= ~gstart | cont
        boundary = gstart | gap
        cont &= ~gap
        is_tcp = s.proto == PROTO_TCP
        syn_only = is_tcp & ((s.flags & (TH_SYN | TH_ACK)) == TH_SYN)
        if syn_only.any():
            seq = s.pk.seq[s.order].astype(np.int64)
            slot_isn = np.full(n, -1, dtype=np.int64)
            slot_isn[cont] = cols["syn_seq"][slot_p[cont]]
            carry = _slot_closed_parts(cols, slot_p, cont)
            reuse_at_start = cont & syn_only & _closed(*carry) & (seq != slot_isn)
            cont &= ~reuse_at_start
            carry = tuple(c & cont for c in carry)
            slot_isn[~cont] = -1
            _split_on_reuse(s, boundary, syn_only, carry, seq, slot_isn)
        is_new = boundary & ~cont
        return boundary, is_new

    def _assign_slots(
        self,
        starts: np.ndarray,
        is_new: np.ndarray,
        gstart: np.ndarray,
        slot_g: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slot of every connection piece, and each key's latest slot."""
        seg_new = is_new[starts]
        seg_gid = np.cumsum(gstart)[starts] - 1
        seg_slot = np.empty(starts.size, dtype=np.int64)
        seg_slot[~seg_new] = slot_g[seg_gid[~seg_new]]
        seg_slot[seg_new] = self._slots.alloc(int(seg_new.sum()))
        last_seg = np.r_[np.flatnonzero(np.diff(seg_gid)), starts.size - 1]
        return seg_slot, seg_slot[last_seg]

    # -- counters ------------------------------------------------------------------------

    def _update_slots(
        self,
        s: _Sorted,
        starts: np.ndarray,
        seg_slot: np.ndarray,
        seg_new: np.ndarray,
        buf: np.ndarray,
    ) -> None:
        cols = self._slots.cols
        n = s.n
        ab = s.ab
        nseg = starts.size
        counts = np.diff(np.r_[starts, n])
        new = seg_slot[seg_new]
        first = starts[seg_new]
        rows = s.order[first]
        words = s.keys.words[rows]
        for j, name in enumerate(("a_hi", "a_lo", "b_hi", "b_lo", "w4", "w5")):
            cols[name][new] = words[:, j]
        cols["a_port"][new] = s.keys.a_port[rows]
        cols["b_port"][new] = s.keys.b_port[rows]
        cols["proto"][new] = s.proto[first]
        cols["vlan"][new] = s.pk.vlan[rows]
        cols["inner_vlan"][new] = s.pk.inner_vlan[rows]
        cols["first_index"][new] = s.index[first]
        cols["ts_first"][new] = s.ts[first]
        cols["first_ab"][new] = ab[first]
        cols["first_flags"][new] = s.flags[first]

        seg_id = np.repeat(np.arange(nseg, dtype=np.int64), counts)
        self._set_macs(s, seg_slot, ab, seg_id, "ab")
        self._set_macs(s, seg_slot, ~ab, seg_id, "ba")

        pkts_ab = _seg_sum(seg_id, ab, nseg)
        cols["pkts_ab"][seg_slot] += pkts_ab
        cols["pkts_ba"][seg_slot] += counts - pkts_ab
        for src, name in ((s.payload_len, "bytes"), (s.ip_len, "ipb")):
            total = _seg_sum(seg_id, src, nseg)
            part_ab = _seg_sum(seg_id, np.where(ab, src, 0), nseg)
            cols[f"{name}_ab"][seg_slot] += part_ab
            cols[f"{name}_ba"][seg_slot] += total - part_ab
        cols["flags_ab"][seg_slot] |= np.bitwise_or.reduceat(np.where(ab, s.flags, 0), starts)
        cols["flags_ba"][seg_slot] |= np.bitwise_or.reduceat(np.where(ab, 0, s.flags), starts)
        cols["ts_last"][seg_slot] = np.maximum(
            cols["ts_last"][seg_slot], np.maximum.reduceat(s.ts, starts)
        )
        self._update_events(s, starts, seg_slot, seg_id)
        self._set_isn(s, seg_slot, seg_id)
        has_payload = s.has_payload
        for direction, mask in (("ab", ab & has_payload), ("ba", ~ab & has_payload)):
            self._set_heads(s, seg_slot, mask, seg_id, direction, buf)

    def _set_isn(self, s: _Sorted, seg_slot: np.ndarray, seg_id: np.ndarray) -> None:
        """Remember the sequence number of each connection's first SYN without ACK."""
        isn = self._slots.cols["syn_seq"]
        syn_only = (s.proto == PROTO_TCP) & ((s.flags & (TH_SYN | TH_ACK)) == TH_SYN)
        if not syn_only.any() or not (isn[seg_slot] < 0).any():
            return
        slots, rows = _first_where(s, seg_slot, seg_id, syn_only, isn[seg_slot] < 0)
        isn[slots] = s.pk.seq[rows]

    def _set_macs(
        self,
        s: _Sorted,
        seg_slot: np.ndarray,
        mask: np.ndarray,
        seg_id: np.ndarray,
        direction: str,
    ) -> None:
        """MAC of each connection's first packet in `direction` (packets where `mask`)."""
        cols = self._slots.cols
        unseen = cols[f"pkts_{direction}"][seg_slot] == 0
        if not unseen.any():
            return
        slots, rows = _first_where(s, seg_slot, seg_id, mask, unseen)
        cols[f"mac_{direction}"][slots] = s.pk.src_mac[rows]
        cols[f"macok_{direction}"][slots] = s.pk.has_mac[rows]

    def _update_events(
        self, s: _Sorted, starts: np.ndarray, seg_slot: np.ndarray, seg_id: np.ndarray
    ) -> None:
        """First index of each history event per connection. Only connections that see
        an event for the first time are touched (batches come in record order, so an
        event already seen keeps its earlier index)."""
        bits = np.left_shift(np.uint32(1), s.event.astype(np.uint32)) & np.uint32(0xFFFF)
        seg_bits = np.bitwise_or.reduceat(bits, starts)
        seen = self._slots.cols["ev_seen"]
        fresh = seg_bits & ~seen[seg_slot].astype(np.uint32)
        touch = np.flatnonzero(fresh)
        if touch.size == 0:
            return
        seen[seg_slot[touch]] |= fresh[touch].astype(np.uint16)
        local = np.full(seg_id[-1] + 1, -1, dtype=np.int64)
        local[touch] = np.arange(touch.size)
        pkt_local = local[seg_id]
        rows = np.flatnonzero((pkt_local >= 0) & (s.event != EV_NONE))
        width = 2 * N_EVENTS
        found = np.full(touch.size * width, NEVER, dtype=np.int64)
        np.minimum.at(found, pkt_local[rows] * width + s.event[rows], s.index[rows])
        events = self._slots.events
        slots = seg_slot[touch]
        events[slots] = np.minimum(events[slots], found.reshape(touch.size, width))

    def _set_heads(
        self,
        s: _Sorted,
        seg_slot: np.ndarray,
        mask: np.ndarray,
        seg_id: np.ndarray,
        direction: str,
        buf: np.ndarray,
    ) -> None:
        """First HEAD_BYTES captured payload bytes per connection and direction."""
        done = self._slots.cols[f"head_{direction}"]
        missing = ~done[seg_slot]
        if not missing.any():
            return
        slots, rows = _first_where(s, seg_slot, seg_id, mask, missing)
        if slots.size == 0:
            return
        heads = self._slots.heads_ab if direction == "ab" else self._slots.heads_ba
        offs = s.pk.payload_off[rows].tolist()
        lens = np.minimum(s.pk.caplen_payload[rows], HEAD_BYTES).tolist()
        for slot, off, ln in zip(slots.tolist(), offs, lens, strict=True):
            heads[slot] = buf[off : off + ln].tobytes()
        done[slots] = True

    # -- results ---------------------------------------------------------------------------

    def finish(self) -> FlowResult:
        """Build the result tables from every connection seen. The table is spent: its
        per-connection state is released (it would double the memory the result needs)."""
        flows = self._flows_frame()
        result = FlowResult(
            flows=flows,
            hosts=_hosts_frame(flows),
            arp=self._arp_frame(),
            dns=self._dns_frame(),
        )
        self._slots = _Slots(capacity=1)
        self._live = _LiveIndex()
        self._arp.clear()
        self._dns.clear()
        self._dns_payloads.clear()
        return result

    def _flows_frame(self) -> pd.DataFrame:
        slots = self._slots
        if slots.n == 0:
            return _empty_flows()
        c = slots.view()
        uid = _uids(self.capture_name, c)
        # Rows in the table's order (ts, then uid) from the start: sorting the finished
        # frame instead would hold two copies of it at once.
        order = np.lexsort((uid, c["ts_first"]))
        c = {name: column[order] for name, column in c.items()}
        uid = uid[order]
        events = slots.events[: slots.n][order]
        orig_is_a, evidence = _originator(c, events, self._service)
        pick = _Orienter(orig_is_a)
        bcast_a = _is_bcast(c["a_hi"], c["a_lo"])
        bcast_b = _is_bcast(c["b_hi"], c["b_lo"])
        addr_a = _addr_strings(c["a_hi"], c["a_lo"])
        addr_b = _addr_strings(c["b_hi"], c["b_lo"])
        ev_orig = np.where(orig_is_a[:, None], events, np.roll(events, N_EVENTS, axis=1))
        history = _history(ev_orig, c["proto"])
        orig_pkts = pick.orig(c["pkts_ab"], c["pkts_ba"])
        resp_pkts = pick.resp(c["pkts_ab"], c["pkts_ba"])
        orig_bytes = pick.orig(c["bytes_ab"], c["bytes_ba"])
        resp_bytes = pick.resp(c["bytes_ab"], c["bytes_ba"])
        mac_ab = _mac_strings(c["mac_ab"], c["macok_ab"])
        mac_ba = _mac_strings(c["mac_ba"], c["macok_ba"])
        rows = order.tolist()
        heads_ab = [slots.heads_ab.get(i) for i in rows]
        heads_ba = [slots.heads_ba.get(i) for i in rows]
        frame = pd.DataFrame(
            {
                "uid": uid,
                "ts": _timestamps(c["ts_first"]),
                "last_ts": _timestamps(c["ts_last"]),
                "duration": (c["ts_last"] - c["ts_first"]) / 1e9,
                "proto": _proto_names(c["proto"]),
                "orig_h": pick.orig_obj(addr_a, addr_b),
                "orig_p": pick.orig(c["a_port"], c["b_port"]).astype(np.int32),
                "resp_h": pick.resp_obj(addr_a, addr_b),
                "resp_p": pick.resp(c["a_port"], c["b_port"]).astype(np.int32),
                "orig_evidence": evidence,
                "orig_mac": pick.orig_obj(mac_ab, mac_ba),
                "resp_mac": pick.resp_obj(mac_ab, mac_ba),
                "vlan": _nullable_vlan(c["vlan"]),
                "inner_vlan": _nullable_vlan(c["inner_vlan"]),
                "orig_pkts": orig_pkts,
                "resp_pkts": resp_pkts,
                "orig_bytes": orig_bytes,
                "resp_bytes": resp_bytes,
                "orig_ip_bytes": pick.orig(c["ipb_ab"], c["ipb_ba"]),
                "resp_ip_bytes": pick.resp(c["ipb_ab"], c["ipb_ba"]),
                "conn_state": _conn_states(
                    c["proto"], history, orig_pkts, resp_pkts, orig_bytes + resp_bytes
                ),
                "history": history,
                "service": None,
                "capture": self.capture_name,
                "_orig_head": pick.orig_obj(heads_ab, heads_ba),
                "_resp_head": pick.resp_obj(heads_ab, heads_ba),
                "_resp_bcast": np.where(orig_is_a, bcast_b, bcast_a),
            }
        )
        frame["service"] = frame["service"].astype(object)
        return frame

    def _arp_frame(self) -> pd.DataFrame:
        if not self._arp:
            return pd.DataFrame(
                {
                    "ip": pd.Series([], dtype=object),
                    "mac": pd.Series([], dtype=object),
                    "ts": _timestamps(np.zeros(0, dtype=np.int64)),
                }
            )
        keys = list(self._arp)
        ips = np.array([k[0] for k in keys], dtype=np.uint64) | np.uint64(0xFFFF_0000_0000)
        macs = np.array([k[1] for k in keys], dtype=np.uint64)
        ts = np.array(list(self._arp.values()), dtype=np.int64)
        frame = pd.DataFrame(
            {
                "ip": _addr_strings(np.zeros(len(keys), dtype=np.uint64), ips),
                "mac": _mac_strings(macs, np.ones(len(keys), dtype=bool)),
                "ts": _timestamps(ts),
            }
        )
        return frame.sort_values(["ts", "ip", "mac"], kind="stable").reset_index(drop=True)

    def _dns_frame(self) -> pd.DataFrame:
        parts = self._dns
        cols = [
            np.concatenate([p[j] for p in parts]) if parts else np.zeros(0, dtype=np.uint64)
            for j in range(5)
        ]
        payload = np.empty(len(self._dns_payloads), dtype=object)
        payload[:] = self._dns_payloads
        return pd.DataFrame(
            {
                "ts": _timestamps(cols[0].astype(np.int64)),
                "client": _addr_strings(cols[1], cols[2]),
                "server": _addr_strings(cols[3], cols[4]),
                "payload": payload,
            }
        )


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _dns_wire_names(names: Iterable[str]) -> tuple[bytes, ...]:
    """Lower-case DNS wire encodings of host names (cmi.ta.co.at -> 3 cmi 2 ta 2 co 2 at 0).
    The question name of a response is never compressed, so a response about one of
    these names contains its encoding verbatim."""
    out = []
    for name in names:
        labels = [lab.encode("ascii") for lab in name.lower().strip(".").split(".") if lab]
        out.append(b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\x00")
    return tuple(out)


# --- per-batch packet views ----------------------------------------------------------------


@dataclass
class _Packets:
    """The IP packets of one batch (ARP removed), with private copies of the fields the
    table rewrites (ports, payload length)."""

    index: np.ndarray
    ts_ns: np.ndarray
    src_mac: np.ndarray
    has_mac: np.ndarray
    vlan: np.ndarray
    inner_vlan: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray
    ip_len: np.ndarray
    frag: np.ndarray
    ip_id: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    has_l4: np.ndarray
    tcp_flags: np.ndarray
    seq: np.ndarray
    payload_len: np.ndarray
    payload_off: np.ndarray
    caplen_payload: np.ndarray
    orphan: np.ndarray  # bool: later fragment whose first fragment was not seen

    @classmethod
    def from_batch(cls, b: PacketBatch, rows: np.ndarray | None) -> _Packets:
        def take(arr: np.ndarray, dtype: Any = None) -> np.ndarray:
            out = arr if rows is None else arr[rows]
            return out.astype(dtype) if dtype is not None else out

        return cls(
            index=take(b.index),
            ts_ns=take(b.ts_ns),
            src_mac=take(b.src_mac),
            has_mac=take(b.has_mac),
            vlan=take(b.vlan),
            inner_vlan=take(b.inner_vlan),
            src_hi=take(b.src_hi),
            src_lo=take(b.src_lo),
            dst_hi=take(b.dst_hi),
            dst_lo=take(b.dst_lo),
            proto=take(b.proto),
            ip_len=take(b.ip_len, np.int64),  # sums of uint32 would overflow
            frag=take(b.frag),
            ip_id=take(b.ip_id),
            sport=take(b.sport, np.int64),
            dport=take(b.dport, np.int64),
            has_l4=take(b.has_l4),
            tcp_flags=take(b.tcp_flags),
            seq=take(b.seq),
            payload_len=take(b.payload_len, np.int64),
            payload_off=take(b.payload_off),
            caplen_payload=take(b.caplen_payload),
            orphan=take(b.frag) == FRAG_LATER,
        )


@dataclass
class _Keys:
    words: np.ndarray  # uint64 (n, 6): a_hi, a_lo, b_hi, b_lo, proto|ports, vlans
    a_is_src: np.ndarray  # bool: the packet was sent by endpoint A
    a_port: np.ndarray  # int64 key port of A (ICMP: type or counterpart)
    b_port: np.ndarray


def _key_ports(pk: _Packets) -> tuple[np.ndarray, np.ndarray]:
    """Ports used in the key: transport ports; ICMP: (type, counterpart or code)."""
    sport, dport = pk.sport, pk.dport
    rows = np.flatnonzero(((pk.proto == PROTO_ICMP) | (pk.proto == PROTO_ICMP6)) & ~pk.orphan)
    if rows.size == 0:
        return sport, dport
    dport = dport.copy()
    row6 = (pk.proto[rows] == PROTO_ICMP6).astype(np.int64)
    icmp_type = sport[rows] & 0xFF
    counter = ICMP_COUNTERPART[row6, icmp_type]
    dport[rows] = np.where(counter >= 0, counter, dport[rows])
    return sport, dport


def _canonical_keys(pk: _Packets) -> _Keys:
    sport, dport = _key_ports(pk)
    sh, sl, dh, dl = pk.src_hi, pk.src_lo, pk.dst_hi, pk.dst_lo
    a_is_src = (sh < dh) | ((sh == dh) & ((sl < dl) | ((sl == dl) & (sport <= dport))))
    a_port = np.where(a_is_src, sport, dport)
    b_port = np.where(a_is_src, dport, sport)
    words = np.empty((pk.index.size, 6), dtype=np.uint64)
    words[:, 0] = np.where(a_is_src, sh, dh)
    words[:, 1] = np.where(a_is_src, sl, dl)
    words[:, 2] = np.where(a_is_src, dh, sh)
    words[:, 3] = np.where(a_is_src, dl, sl)
    words[:, 4] = (
        (pk.proto.astype(np.uint64) << np.uint64(32))
        | (a_port.astype(np.uint64) << np.uint64(16))
        | b_port.astype(np.uint64)
    )
    words[:, 5] = ((pk.vlan.astype(np.int64) + 1).astype(np.uint64) << np.uint64(16)) | (
        pk.inner_vlan.astype(np.int64) + 1
    ).astype(np.uint64)
    return _Keys(words=words, a_is_src=a_is_src, a_port=a_port, b_port=b_port)


_MIX = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
)


def _hash_words(words: np.ndarray) -> np.ndarray:
    """64-bit mix of each row (splitmix64-style); equal rows -> equal hashes."""
    h = np.zeros(words.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h = (h ^ words[:, j]) * _MIX[j % 2]
            h ^= h >> np.uint64(31)
        h *= _MIX[2]
        h ^= h >> np.uint64(29)
    return h


def _group(h: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order packets by key, record order within a key, and mark where each key's run
    starts. One sort of (hash high bits | position) values groups the keys; the key words
    are then compared within each group, and on a hash collision the exact (slower)
    lexicographic sort is used instead."""
    n = h.size
    pbits = max(1, (n - 1).bit_length())
    low = np.uint64((1 << pbits) - 1)
    packed = np.sort((h & ~low) | np.arange(n, dtype=np.uint64))
    order = (packed & low).astype(np.int64)
    hs = packed >> np.uint64(pbits)
    gstart = np.empty(n, dtype=bool)
    gstart[0] = True
    np.not_equal(hs[1:], hs[:-1], out=gstart[1:])
    rows = words.view(np.dtype((np.void, 8 * words.shape[1]))).ravel()
    rep = order[np.flatnonzero(gstart)[np.cumsum(gstart) - 1]]
    if np.array_equal(_as_words(rows[order]), _as_words(rows[rep])):
        return order, gstart
    order = np.lexsort(tuple(words[:, j] for j in range(words.shape[1] - 1, -1, -1)))
    ws = words[order]
    gstart[1:] = (ws[1:] != ws[:-1]).any(axis=1)
    return order, gstart


def _seg_sum(seg_id: np.ndarray, values: np.ndarray, nseg: int) -> np.ndarray:
    """Per-segment sums (exact: a batch's sums stay far below 2**53)."""
    return np.bincount(seg_id, weights=values, minlength=nseg).astype(np.int64)


def _first_where(
    s: _Sorted, seg_slot: np.ndarray, seg_id: np.ndarray, mask: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For the connections of this batch where `wanted` (one flag per segment) that have a
    packet where `mask`: their slots and the packet row of the first such packet."""
    first_pos = _first_in_segment(mask, seg_id, seg_slot.size)
    need = wanted & (first_pos != NEVER)
    return seg_slot[need], s.order[first_pos[need]]


def _first_in_segment(mask: np.ndarray, seg_id: np.ndarray, nseg: int) -> np.ndarray:
    """Per segment, the first sorted position where `mask` holds, or NEVER."""
    out = np.full(nseg, NEVER, dtype=np.int64)
    pos = np.flatnonzero(mask)
    if pos.size:
        seg = seg_id[pos]
        first = np.empty(pos.size, dtype=bool)
        first[0] = True
        np.not_equal(seg[1:], seg[:-1], out=first[1:])
        out[seg[first]] = pos[first]
    return out


def _as_words(rows: np.ndarray) -> np.ndarray:
    return rows.view(np.uint64)


class _Sorted:
    """The per-packet fields the reductions need, in key order; `order` maps a sorted
    position back to the packet's row in `pk` / `keys` for single lookups."""

    def __init__(self, pk: _Packets, keys: _Keys, order: np.ndarray) -> None:
        self.pk = pk
        self.keys = keys
        self.order = order
        self.n = int(order.size)
        self.index = pk.index[order]
        self.ts = pk.ts_ns[order]
        self.proto = pk.proto[order]
        self.flags = pk.tcp_flags[order]
        self.ab = keys.a_is_src[order]
        self.payload_len = pk.payload_len[order]
        self.ip_len = pk.ip_len[order]
        self.has_payload = pk.caplen_payload[order] > 0
        self.event = _packet_events(self)


class _LiveIndex:
    """Key -> slot of the key's latest connection, searched vectorised: sorted 64-bit key
    hashes with their exact key words. A key whose hash another live key already holds
    (a 64-bit collision: practically never) is kept in a dict by its exact bytes."""

    def __init__(self) -> None:
        self.h = np.empty(0, dtype=np.uint64)
        self.slot = np.empty(0, dtype=np.int64)
        self.words = np.empty((0, 6), dtype=np.uint64)
        self.collided: dict[bytes, int] = {}

    def lookup(self, hg: np.ndarray, wg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot or -1, location) per key; location: index in the arrays, -1 = absent,
        -2 = held in the collision dict."""
        slot = np.full(hg.size, -1, dtype=np.int64)
        loc = np.full(hg.size, -1, dtype=np.int64)
        if self.h.size == 0:
            return slot, loc
        at = np.minimum(np.searchsorted(self.h, hg), self.h.size - 1)
        hit = self.h[at] == hg
        exact = hit & (self.words[at] == wg).all(axis=1)
        slot[exact] = self.slot[at[exact]]
        loc[exact] = at[exact]
        for g in np.flatnonzero(hit & ~exact).tolist():
            slot[g] = self.collided.get(wg[g].tobytes(), -1)
            loc[g] = -2
        return slot, loc

    def store(
        self, hg: np.ndarray, wg: np.ndarray, loc: np.ndarray, slot: np.ndarray, changed: np.ndarray
    ) -> None:
        """Point the `changed` keys at their new `slot`."""
        upd = changed & (loc >= 0)
        self.slot[loc[upd]] = slot[upd]
        for g in np.flatnonzero(changed & (loc == -2)).tolist():
            self.collided[wg[g].tobytes()] = int(slot[g])
        ins = np.flatnonzero(changed & (loc == -1))
        if ins.size == 0:
            return
        uniq, first = np.unique(hg[ins], return_index=True)
        dup = np.setdiff1d(np.arange(ins.size), first)
        for g in ins[dup].tolist():  # same hash as another new key of this batch
            self.collided[wg[g].tobytes()] = int(slot[g])
        rows = ins[first]
        at = np.searchsorted(self.h, uniq)
        self.h = np.insert(self.h, at, uniq)
        self.slot = np.insert(self.slot, at, slot[rows])
        self.words = np.insert(self.words, at, wg[rows], axis=0)

    def keep(self, mask: np.ndarray) -> None:
        self.h, self.slot, self.words = self.h[mask], self.slot[mask], self.words[mask]


def _packet_events(s: _Sorted) -> np.ndarray:
    """History event column per packet (0..15, EV_NONE), as Zeek's update_history."""
    f = s.flags
    syn = (f & TH_SYN) != 0
    fin = (f & TH_FIN) != 0
    rst = (f & TH_RST) != 0
    ack = (f & TH_ACK) != 0
    nbits = syn.astype(np.int8) + fin + rst
    tcp_ev = np.select(
        [nbits > 1, syn, fin, rst, s.payload_len > 0, ack],
        [np.where(fin & rst, EV_I, EV_Q), np.where(ack, EV_H, EV_S), EV_F, EV_R, EV_D, EV_A],
        EV_NONE,
    )
    ev = np.where(s.proto == PROTO_TCP, tcp_ev, np.where(s.proto == PROTO_UDP, EV_D, EV_NONE))
    return np.where((ev != EV_NONE) & ~s.ab, ev + N_EVENTS, ev).astype(np.int64)


# --- port reuse ------------------------------------------------------------------------------


def _slot_closed_parts(
    cols: dict[str, np.ndarray], slot_p: np.ndarray, cont: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RST seen, FIN from A, FIN from B) of the live slot, at continuing group starts."""
    rows = np.flatnonzero(cont)
    fa = np.zeros(cont.size, dtype=np.uint8)
    fb = np.zeros(cont.size, dtype=np.uint8)
    fa[rows] = cols["flags_ab"][slot_p[rows]]
    fb[rows] = cols["flags_ba"][slot_p[rows]]
    return ((fa | fb) & TH_RST) != 0, (fa & TH_FIN) != 0, (fb & TH_FIN) != 0


def _closed(rst: np.ndarray, fin_a: np.ndarray, fin_b: np.ndarray) -> np.ndarray:
    return rst | (fin_a & fin_b)


def _split_on_reuse(
    s: _Sorted,
    boundary: np.ndarray,
    syn_only: np.ndarray,
    carry: tuple[np.ndarray, np.ndarray, np.ndarray],
    seq: np.ndarray,
    slot_isn: np.ndarray,
) -> None:
    """Mark (in place, in `boundary`) every SYN without ACK that arrives after its
    connection closed, unless it repeats the connection's initial sequence number (a
    retransmission, as in Zeek's TCPSessionAdapter::IsReuse). Each round accepts the
    first such SYN per connection, since the new connection starts with a clean state."""
    is_tcp = s.proto == PROTO_TCP
    rst = is_tcp & ((s.flags & TH_RST) != 0)
    fin = is_tcp & ((s.flags & TH_FIN) != 0)
    parts = (rst, fin & s.ab, fin & ~s.ab)
    cums = [np.cumsum(p, dtype=np.int64) - p for p in parts]  # events strictly before
    while True:
        seg_start = np.flatnonzero(boundary)
        seg_id = np.cumsum(boundary) - 1
        before = [
            (cum - cum[seg_start][seg_id] + c[seg_start][seg_id]) > 0
            for cum, c in zip(cums, carry, strict=True)
        ]
        isn = slot_isn[seg_start]
        first_syn = _first_in_segment(syn_only, seg_id, seg_start.size)
        own = (isn < 0) & (first_syn != NEVER)
        isn[own] = seq[first_syn[own]]
        cand = np.flatnonzero(syn_only & ~boundary & _closed(*before) & (seq != isn[seg_id]))
        if cand.size == 0:
            return
        cand_seg = seg_id[cand]
        first = cand[np.r_[True, cand_seg[1:] != cand_seg[:-1]]]
        boundary[first] = True


# --- result building ---------------------------------------------------------------------------


class _Orienter:
    """Pick originator / responder values from (A, B) columns."""

    def __init__(self, orig_is_a: np.ndarray) -> None:
        self.a = orig_is_a

    def orig(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(self.a, a, b)

    def resp(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(self.a, b, a)

    def orig_obj(self, a: Any, b: Any) -> np.ndarray:
        return np.where(self.a, _objects(a), _objects(b))

    def resp_obj(self, a: Any, b: Any) -> np.ndarray:
        return np.where(self.a, _objects(b), _objects(a))


def _objects(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _originator(
    c: dict[str, np.ndarray], events: np.ndarray, service: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(orig_is_a, evidence) per connection; rules in the module docstring."""
    proto = c["proto"].astype(np.int64)
    first_ab = c["first_ab"]
    svc_a = service[proto, c["a_port"]]
    svc_b = service[proto, c["b_port"]]
    svc_first_src = np.where(first_ab, svc_a, svc_b)
    svc_first_dst = np.where(first_ab, svc_b, svc_a)

    syn_a = events[:, EV_S]
    syn_b = events[:, N_EVENTS + EV_S]
    any_syn = (syn_a != NEVER) | (syn_b != NEVER)
    synack_first = (c["first_flags"] & (TH_SYN | TH_ACK | TH_RST)) == (TH_SYN | TH_ACK)

    is_tcp = proto == PROTO_TCP
    is_udp = proto == PROTO_UDP
    is_icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMP6)
    first_port = np.where(first_ab, c["a_port"], c["b_port"]) & 0xFF
    icmp_reply_first = is_icmp & ICMP_IS_REPLY[(proto == PROTO_ICMP6).astype(np.int64), first_port]

    bcast_a = _is_bcast(c["a_hi"], c["a_lo"])
    bcast_b = _is_bcast(c["b_hi"], c["b_lo"])
    one_bcast = bcast_a != bcast_b

    conditions = [
        one_bcast,
        is_tcp & any_syn,
        is_tcp & synack_first,
        is_tcp & (svc_a != svc_b),
        is_udp & svc_first_src & ~svc_first_dst,
        icmp_reply_first,
    ]
    orig_is_a = np.select(
        conditions,
        [bcast_b, syn_a <= syn_b, ~first_ab, svc_b, ~first_ab, ~first_ab],
        first_ab,
    )
    evidence = np.select(
        conditions,
        ["first_packet", "syn", "synack", "port", "port", "port"],
        "first_packet",
    ).astype(object)
    return orig_is_a.astype(bool), evidence


def _is_bcast(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == 0xFFFF)
    low8 = lo & np.uint64(0xFF)
    top4 = (lo >> np.uint64(28)) & np.uint64(0xF)
    v4_bcast = v4 & ((low8 == 0xFF) | (top4 == 0xE))
    v6_mcast = ~v4 & ((hi >> np.uint64(56)) == 0xFF)
    return v4_bcast | v6_mcast


def _addr_strings(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Address text per row; each distinct address is formatted once."""
    out = np.empty(hi.size, dtype=object)
    if hi.size == 0:
        return out
    order = np.lexsort((lo, hi))
    hs, ls = hi[order], lo[order]
    new = np.empty(order.size, dtype=bool)
    new[0] = True
    new[1:] = (hs[1:] != hs[:-1]) | (ls[1:] != ls[:-1])
    text = np.array(
        [_addr_text(h, low) for h, low in zip(hs[new].tolist(), ls[new].tolist(), strict=True)],
        dtype=object,
    )
    out[order] = text[np.cumsum(new) - 1]
    return out


def _addr_text(hi: int, lo: int) -> str:
    if hi == 0 and (lo >> 32) == 0xFFFF:  # dotted quad, as ipaddress writes it, 10x faster
        return socket.inet_ntop(socket.AF_INET, (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _mac_strings(mac: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out = np.full(mac.size, None, dtype=object)
    if mac.size == 0:
        return out
    uniq, inverse = np.unique(mac, return_inverse=True)
    text = np.array([_mac_text(int(m)) for m in uniq.tolist()], dtype=object)
    out[ok] = text[inverse][ok]
    return out


def _mac_text(mac: int) -> str:
    return mac.to_bytes(6, "big").hex(":")


def _nullable_vlan(vlan: np.ndarray) -> pd.Series:
    return pd.Series(pd.array(np.where(vlan == NO_VLAN, 0, vlan), dtype="Int32")).mask(
        vlan == NO_VLAN
    )


def _timestamps(ts_ns: np.ndarray) -> pd.Series:
    return pd.Series((ts_ns // 1000).astype("datetime64[us]")).dt.tz_localize("UTC")


def _proto_names(proto: np.ndarray) -> np.ndarray:
    names = np.array([PROTO_NAMES.get(p, str(p)) for p in range(256)], dtype=object)
    return names[proto.astype(np.int64)]


_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)


def _uids(capture_name: str, c: dict[str, np.ndarray]) -> np.ndarray:
    """'C' + 11 base62 digits of a hash of (capture name, first packet index, key)."""
    seed = int.from_bytes(hashlib.sha256(capture_name.encode()).digest()[:8], "little")
    n = c["first_index"].size
    words = np.empty((n, 8), dtype=np.uint64)
    words[:, 0] = np.uint64(seed)
    words[:, 1] = c["first_index"].astype(np.uint64)
    for j, name in enumerate(("a_hi", "a_lo", "b_hi", "b_lo"), start=2):
        words[:, j] = c[name]
    words[:, 6] = (
        (c["proto"].astype(np.uint64) << np.uint64(32))
        | (c["a_port"].astype(np.uint64) << np.uint64(16))
        | c["b_port"].astype(np.uint64)
    )
    words[:, 7] = c["vlan"].astype(np.int64).astype(np.uint64) ^ (
        c["inner_vlan"].astype(np.int64).astype(np.uint64) << np.uint64(20)
    )
    h = _hash_words(words)
    digits = np.empty((n, 12), dtype=np.uint8)
    digits[:, 0] = ord("C")
    for j in range(11, 0, -1):
        digits[:, j] = _B62[(h % np.uint64(62)).astype(np.int64)]
        h //= np.uint64(62)
    return digits.view("S12").ravel().astype(str).astype(object)


def _history(ev_orig: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """History strings from first-occurrence indices (orig columns first)."""
    n = ev_orig.shape[0]
    if n == 0:
        return np.empty(0, dtype=object)
    letters = np.frombuffer((EVENT_LETTERS + EVENT_LETTERS.lower()).encode(), np.uint8)
    order = np.argsort(ev_orig, axis=1, kind="stable")
    seen = np.take_along_axis(ev_orig, order, axis=1) != NEVER
    chars = np.where(seen, letters[order], 0).astype(np.uint8)
    text = np.ascontiguousarray(chars).view(f"S{2 * N_EVENTS}").ravel().astype(str)
    keep = (proto == PROTO_TCP) | (proto == PROTO_UDP)
    return np.where(keep, text, "").astype(object)


def _conn_states(
    proto: np.ndarray,
    history: np.ndarray,
    orig_pkts: np.ndarray,
    resp_pkts: np.ndarray,
    payload_bytes: np.ndarray,
) -> np.ndarray:
    udp = np.select(
        [(orig_pkts > 0) & (resp_pkts > 0), orig_pkts > 0, resp_pkts > 0],
        ["SF", "S0", "SHR"],
        "OTH",
    ).astype(object)
    out = np.where(proto == PROTO_UDP, udp, "OTH").astype(object)
    tcp_rows = np.flatnonzero(proto == PROTO_TCP)
    cache: dict[tuple[str, bool], str] = {}
    for row, hist, no_bytes in zip(
        tcp_rows.tolist(),
        history[tcp_rows].tolist(),
        (payload_bytes[tcp_rows] == 0).tolist(),
        strict=True,
    ):
        key = (hist, no_bytes)
        if key not in cache:
            cache[key] = tcp_conn_state(hist, no_bytes=no_bytes)
        out[row] = cache[key]
    return out


# --- Zeek's TCP endpoint state machine, replayed on history letters ----------------------------

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

_LETTER_FLAGS: dict[str, tuple[int, bool]] = {  # letter -> (flags, carries payload)
    "S": (TH_SYN, False),
    "H": (TH_SYN | TH_ACK, False),
    "A": (TH_ACK, False),
    "D": (TH_ACK, True),
    "F": (TH_FIN | TH_ACK, False),
    "R": (TH_RST, False),
    "I": (TH_FIN | TH_RST, False),
    "Q": (TH_SYN | TH_FIN, False),
}


class _Endpoint:
    def __init__(self) -> None:
        self.state = INACTIVE
        self.prev = INACTIVE

    def set(self, state: int) -> None:
        self.prev, self.state = self.state, state


def _step(ep: _Endpoint, peer: _Endpoint, flags: int, data: bool, is_orig: bool) -> None:
    """One packet through Zeek's TCPSessionAdapter::UpdateStateMachine (state only)."""
    syn, fin, rst, ack = (bool(flags & f) for f in (TH_SYN, TH_FIN, TH_RST, TH_ACK))
    if ep.state == INACTIVE:
        if syn and is_orig:
            ep.set(SYN_ACK_SENT if ack else SYN_SENT)
        elif syn:
            if peer.state == SYN_SENT:
                peer.set(ESTABLISHED)
            ep.set(ESTABLISHED)
        if fin:
            ep.set(CLOSED)
        if rst:
            ep.set(RESET)
        if ep.state == INACTIVE:
            if not is_orig and not data and peer.state == SYN_SENT:
                pass
            elif ack and peer.state == ESTABLISHED:
                ep.set(ESTABLISHED)
            else:
                ep.set(PARTIAL)
    elif ep.state in (SYN_SENT, SYN_ACK_SENT):
        if fin:
            ep.set(CLOSED)
        if rst:
            ep.set(RESET)
    elif ep.state in (ESTABLISHED, PARTIAL):
        if syn and ep.state == PARTIAL and peer.state == INACTIVE and not ack:
            ep.set(SYN_SENT)
        if fin and not rst:
            ep.set(CLOSED)
            if peer.state == RESET and peer.prev == CLOSED:
                peer.set(CLOSED)
        if rst:
            ep.set(RESET)
    elif ep.state == CLOSED:
        if rst and peer.state != CLOSED:
            ep.set(RESET)


def tcp_conn_state(history: str, *, no_bytes: bool) -> str:
    """Zeek's conn_state for a TCP connection with this history; `no_bytes`: neither side
    sent payload (Zeek's REJ test on orig/resp size)."""
    orig, resp = _Endpoint(), _Endpoint()
    for ch in history:
        flags, data = _LETTER_FLAGS[ch.upper()]
        if ch.isupper():
            _step(orig, resp, flags, data, True)
        else:
            _step(resp, orig, flags, data, False)
    return _zeek_conn_state(orig.state, resp.state, history, no_bytes)


def _zeek_conn_state(os: int, rs: int, history: str, no_bytes: bool) -> str:
    """base/protocols/conn/main.zeek conn_state(), TCP branch."""
    o_inactive = os in (INACTIVE, PARTIAL)
    r_inactive = rs in (INACTIVE, PARTIAL)
    if rs == RESET:
        if os in (SYN_SENT, SYN_ACK_SENT) or (os == RESET and no_bytes):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os == RESET:
        if r_inactive:
            return "RSTOS0" if _rstos0_history(history) else "OTH"
        return "RSTO"
    if rs == CLOSED and os == CLOSED:
        return "SF"
    if os == CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == CLOSED:
        return "SHR" if o_inactive else "S3"
    if os == SYN_SENT and rs == INACTIVE:
        return "S0"
    if os == ESTABLISHED and rs == ESTABLISHED:
        return "S1"
    return "OTH"


def _rstos0_history(history: str) -> bool:
    """Zeek's /^\\^?S[^HAFGIQ]*R.*/: starts with S, then an R before any H A F G I Q."""
    if not history.startswith("S"):
        return False
    for ch in history[1:]:
        if ch == "R":
            return True
        if ch in "HAFGIQ":
            return False
    return False


# --- hosts and empty tables ---------------------------------------------------------------------


def _hosts_frame(flows: pd.DataFrame) -> pd.DataFrame:
    """Per unicast address: first MAC it sent from, first/last time, packets and IP bytes
    from or to it (summed over its connections)."""
    if flows.empty:
        return _empty_hosts()
    sides = []
    for me in ("orig", "resp"):
        sides.append(
            pd.DataFrame(
                {
                    "ip": flows[f"{me}_h"],
                    "mac": flows[f"{me}_mac"],
                    "sent": flows[f"{me}_pkts"] > 0,
                    "first_ts": flows["ts"],
                    "last_ts": flows["last_ts"],
                    "pkts": flows["orig_pkts"] + flows["resp_pkts"],
                    "bytes": flows["orig_ip_bytes"] + flows["resp_ip_bytes"],
                }
            )
        )
    both = pd.concat(sides, ignore_index=True)
    unicast = {ip: is_unicast_text(ip) for ip in both["ip"].unique().tolist()}
    both = both[both["ip"].map(unicast).astype(bool)]
    grouped = both.groupby("ip", sort=True)
    hosts = grouped.agg(
        first_ts=("first_ts", "min"),
        last_ts=("last_ts", "max"),
        pkts=("pkts", "sum"),
        bytes=("bytes", "sum"),
    )
    macs = both[both["sent"] & both["mac"].notna()].sort_values("first_ts", kind="stable")
    hosts["mac"] = macs.groupby("ip")["mac"].first()
    hosts = hosts.reset_index()
    hosts["mac"] = hosts["mac"].astype(object).where(hosts["mac"].notna(), None)
    return hosts[list(HOST_COLUMNS)]


def is_unicast_text(ip: str) -> bool:
    """Not broadcast, multicast or unspecified (the test of _is_bcast, on the text that
    _addr_text writes). The one unicast test for address strings; classify uses it too."""
    if ip in ("0.0.0.0", "::"):
        return False
    if ":" in ip:
        first = ip.split(":", 1)[0]
        return not (len(first) == 4 and first.lower().startswith("ff"))
    return not (ip.endswith(".255") or 224 <= int(ip.split(".", 1)[0]) <= 239)


def _empty_flows() -> pd.DataFrame:
    ts = _timestamps(np.zeros(0, dtype=np.int64))
    data: dict[str, Any] = {name: pd.Series([], dtype=object) for name in FLOW_COLUMNS}
    data.update(
        ts=ts,
        last_ts=ts,
        duration=pd.Series([], dtype=np.float64),
        orig_p=pd.Series([], dtype=np.int32),
        resp_p=pd.Series([], dtype=np.int32),
        vlan=pd.Series([], dtype="Int32"),
        inner_vlan=pd.Series([], dtype="Int32"),
        _resp_bcast=pd.Series([], dtype=bool),
    )
    for name in (
        "orig_pkts",
        "resp_pkts",
        "orig_bytes",
        "resp_bytes",
        "orig_ip_bytes",
        "resp_ip_bytes",
    ):
        data[name] = pd.Series([], dtype=np.int64)
    return pd.DataFrame(data)[list(FLOW_COLUMNS)]


def _empty_hosts() -> pd.DataFrame:
    ts = _timestamps(np.zeros(0, dtype=np.int64))
    return pd.DataFrame(
        {
            "ip": pd.Series([], dtype=object),
            "mac": pd.Series([], dtype=object),
            "first_ts": ts,
            "last_ts": ts,
            "pkts": pd.Series([], dtype=np.int64),
            "bytes": pd.Series([], dtype=np.int64),
        }
    )
