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
    _orig_head  bytes | None   the originator's first payload bytes (up to HEAD_BYTES)
    _resp_head  bytes | None   the responder's first payload bytes
    _resp_bcast bool           responder address is broadcast or multicast
FlowResult.hosts: ip, mac, first_ts, last_ts, pkts, bytes (unicast addresses only)
FlowResult.arp:   ip, mac, ts  (ARP sender pairs)
FlowResult.dns:   ts, client, server, payload  (DNS responses: UDP from port 53)
FlowResult.evicted: int  connections expired early because the live table was full

All timestamp columns are pandas datetime64[us, UTC].

The per-packet work is `analyzer.conntable` (numba kernels): one loop that finds each
packet's connection in an open-addressing table keyed as below, updates it, and moves
connections that end (timeout, port reuse, eviction, end of capture) out of the live
table as columnar rows. Memory follows the live connections, not the capture.

Semantics (Zeek conn.log, with the contract's "Precise rules"):

- Key: (IP protocol, the two (address, port) endpoints unordered, vlan, inner_vlan).
  ICMP/ICMPv6 as Zeek keys them: the sender's port is its ICMP type, the receiver's
  port the counterpart type (echo 8 <-> 0, timestamp 13 <-> 14, info 15 <-> 16, router
  solicitation 10 <-> 9, mask 17 <-> 18; ICMPv6 echo 128 <-> 129, router 133 <-> 134,
  neighbour 135 <-> 136, MLD 130 <-> 131, node information 139 <-> 140, home agent
  144 <-> 145); other (one-way) types use the ICMP code as the counterpart, like
  Zeek's ICMP4_counterpart/ICMP6_counterpart. The ICMP identifier is ignored (Zeek
  does too). Other IP protocols are keyed by addresses with ports 0.
- Inactivity: a connection ends when a packet arrives at least the idle timeout after
  its previous packet (Zeek's inactivity timers: TCP 5 min, UDP and other protocols
  1 min, ICMP 1 min, from base/init-bare.zeek); that packet starts a new connection.
  The live table also drops connections idle for their timeout as the capture's clock
  (each packet's timestamp) passes it, which gives the same connections as long as
  timestamps do not run backwards by more than a timeout.
- Port reuse: (TCP) a SYN without ACK once the connection is closed (a RST seen, or a
  FIN from both sides) starts a new connection unless its sequence number is the
  connection's first SYN's (a retransmitted attempt): Zeek's
  TCPSessionAdapter::IsReuse. Zeek's tcp_close_delay (a closed connection lingers 5 s,
  later non-SYN packets start a new partial connection) is not emulated: late packets
  stay in their connection.
- Originator: decided at the connection's first packet. TCP: a SYN (without ACK, FIN,
  RST) makes its sender the originator (`syn`); a SYN-ACK its receiver (`synack`); else
  the service-port side is the responder when exactly one side's port is a service
  port (`port`); else the first sender (`first_packet`). A later SYN in a connection
  that had none moves the originator to its sender (`syn`), as Zeek's role flip. UDP:
  the first sender, unless its source port is a service port and the destination port
  is not (`port`). ICMP: the first sender, unless its type is a reply type (then the
  receiver, `port`: the type plays the port). A broadcast or multicast address is
  always the responder, and then a later SYN does not move it.
- Broadcast and multicast: IPv4 255.255.255.255, any x.x.x.255 (taken as a directed
  broadcast: the netmask is unknown, so this assumes prefixes of /24 or shorter, which
  is what building networks use), 224.0.0.0/4, IPv6 ff00::/8.
- Counters per direction: packets; payload bytes = sum of the transport payload
  lengths the headers state (decode.PacketBatch.payload_len; Zeek derives TCP bytes
  from sequence numbers instead, which differs on retransmissions and gaps); IP bytes
  = sum of ip_len. MACs come from the first packet each way.
- history (TCP), as Zeek's update_history, CheckHistory and ScaledHistoryEntry
  (TCP.cc, TCP_Endpoint.cc, Conn.cc), upper case = originator at the time of the
  packet: S (SYN), H (SYN-ACK), A (pure ACK), D (data), F (FIN), R (RST), I (FIN+RST),
  Q (other multi-flag), each once per role, except that S/H, F and R are written again
  when their relative sequence number differs from that endpoint's previous one (as
  Zeek does); T when a data segment does not advance the sender's last sequence number
  (a retransmission or reordering), at the 1st, 10th, 100th, ... time; '^' where the
  originator is not the sender of the connection's first packet (written first, as
  Zeek's flip at connection creation) or moves later (written there, Zeek's
  FlipRoles; letters before it keep their case). Relative sequence numbers follow
  Zeek's init_endpoint. UDP: D / d at the first datagram of each role (Zeek's UDP
  adapter), '^' as above. ICMP and other protocols: empty (Zeek records none).
- Differences from Zeek's history that remain: W / w (zero window) is not produced:
  PacketBatch carries no window field. C / c (bad checksum) is not produced: checksums
  are not verified (Zeek drops such packets by default as well). G / g (content gap)
  needs Zeek's reassembler and is not produced. Sequence-number wraps beyond 4 GiB per
  endpoint are not tracked (Zeek keeps a wrap count; only equality of relative numbers
  is used here). At most HIST_MAX letters are kept per connection (later letters are
  dropped; Zeek keeps all).
- conn_state: TCP from the endpoint states of Zeek's state machine
  (TCPSessionAdapter::UpdateStateMachine, run per packet), then Zeek's conn_state()
  table (base/protocols/conn/main.zeek); its REJ test on "no bytes" uses payload bytes.
  UDP: S0 (only the originator sent), SF (both), SHR (only the responder); ICMP and
  other protocols: OTH, as Zeek.
- IP fragments: a first fragment (FRAG_FIRST) carries ports and counts normally. A
  later fragment (FRAG_LATER) takes the ports of the first fragment with the same
  (source, destination, protocol, IP id) seen earlier (the last FRAG_TABLE first
  fragments are remembered, direct-mapped by hash), so it joins that connection;
  otherwise it forms its own connection with ports 0. Every fragment counts as one
  packet (Zeek counts reassembled datagrams); payload bytes add up the fragments' own
  payloads (decode derives payload_len from the IP length, not from the UDP length
  field), so a reassembled datagram counts its bytes once.
- Payload heads: the first HEAD_BYTES payload bytes of each direction's stream,
  concatenated across packets in arrival order. TCP segments that do not advance the
  sequence (retransmissions, the T above) add nothing; a packet cut by the snap length
  ends its direction's head (the bytes after it would not line up).
- Bounded live table (against floods: a port scan, SYNs from spoofed sources): at most
  `max_live_connections` connections are live (default MAX_LIVE_CONNECTIONS). When a
  new connection would exceed it, the least recently active live connection is
  expired early: it becomes a row like any other (flows keep every connection) and is
  counted in FlowResult.evicted. Policy after Suricata's flow table (flow.memcap, and
  in emergency mode the oldest flows are reused), without its emergency timeouts;
  Zeek sets no cap and relies on its timeouts. A connection expired early whose peer
  sends again continues as a new connection.
- ARP packets make no connection; their (sender IP, sender MAC) pairs go to
  FlowResult.arp, one row per distinct pair with the first time it was seen; probes
  from 0.0.0.0 are left out.
- hosts: built from the connections: pkts / bytes (IP bytes) / first_ts / last_ts over
  every connection the address takes part in; mac = the MAC of its first connection in
  which it sent a packet. Broadcast, multicast and unspecified addresses are left out.
- dns: every UDP packet from port 53 (not later fragments), payload as captured; with
  dns_names given, only those whose payload mentions one of the names.
- uid: "C" + 11 base62 digits of a 64-bit hash of (timestamp and record index of the
  connection's first packet, key): the same packets give the same uids, whatever the
  capture's name or path, file or standard input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer import conntable as ct
from analyzer import flowtext as ft
from analyzer import schema
from analyzer.decode import KIND_ARP, NO_VLAN, PacketBatch
from analyzer.kernel import readonly

HEAD_BYTES = ct.HEAD_BYTES  # payload bytes kept per direction for service recognition
HIST_MAX = ct.HIST_MAX

# Zeek's defaults (base/init-bare.zeek): tcp_inactivity_timeout = 5 min,
# udp_inactivity_timeout = 1 min, icmp_inactivity_timeout = 1 min. Protocols other
# than TCP/UDP/ICMP use the UDP value (Zeek's unknown_ip_inactivity_timeout is 1 min).
TCP_IDLE_TIMEOUT_S = 300.0
UDP_IDLE_TIMEOUT_S = 60.0
ICMP_IDLE_TIMEOUT_S = 60.0

# Live connections at most (see the module doc). A live connection costs about 400
# bytes of table (plus 2 x 256 bytes of payload heads while it has payload), so the
# default bounds the live table near 200 MiB even when every one carries payload;
# ordinary captures stay far below it (the 10 M packet benchmark: 100,000 connections
# in all).
MAX_LIVE_CONNECTIONS = 250_000

# Well-known ports (IANA: 0-1023) are service ports besides the catalog's ports.
WELL_KNOWN_PORT_LIMIT = 1024

PROTO_ICMP = ct.PROTO_ICMP
PROTO_TCP = ct.PROTO_TCP
PROTO_UDP = ct.PROTO_UDP
PROTO_ICMP6 = ct.PROTO_ICMP6
PROTO_NAMES: dict[int, str] = {
    PROTO_ICMP: "icmp",
    PROTO_TCP: "tcp",
    PROTO_UDP: "udp",
    PROTO_ICMP6: "icmp6",
}

# names of conntable's codes
EVIDENCE = ("first_packet", "syn", "synack", "port")
CONN_STATES = (
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
)  # fmt: skip

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

INITIAL_SLOTS = 1024  # live table rows at the start; doubled when full, up to the cap
INITIAL_BLOCKS = 256  # payload-head blocks at the start; doubled when short
CHUNK_ROWS = 16384  # rows per output chunk
CHUNK_VAR_BYTES = CHUNK_ROWS * 64  # history and head bytes per output chunk (at least)


@dataclass
class FlowResult:
    flows: pd.DataFrame
    hosts: pd.DataFrame
    arp: pd.DataFrame
    dns: pd.DataFrame
    evicted: int = field(default=0)


def is_service_port(proto: str, port: int, service_ports: frozenset[tuple[str, int]]) -> bool:
    """A well-known port (1..1023) or a port the catalog documents for `proto`."""
    return 0 < port < WELL_KNOWN_PORT_LIMIT or (proto, port) in service_ports


def _service_ports(proto: str, service_ports: frozenset[tuple[str, int]]) -> np.ndarray:
    """uint8[65536]: is_service_port(proto, port) for every port."""
    table = np.zeros(65536, dtype=np.uint8)
    table[1:WELL_KNOWN_PORT_LIMIT] = 1
    for name, port in service_ports:
        if name == proto and 0 <= port < 65536:
            table[port] = 1
    return table


def _icmp_tables() -> tuple[np.ndarray, np.ndarray]:
    """counterpart[2, 256] (-1 = one-way type, use the code) and is_reply[2, 256];
    row 0 = ICMPv4, row 1 = ICMPv6."""
    counterpart = np.full((2, 256), -1, dtype=np.int64)
    is_reply = np.zeros((2, 256), dtype=np.bool_)
    for row, pairs in enumerate((ICMP4_PAIRS, ICMP6_PAIRS)):
        for request, reply in pairs:
            counterpart[row, request] = reply
            counterpart[row, reply] = request
            is_reply[row, reply] = True
    return counterpart, is_reply


ICMP_COUNTERPART, ICMP_IS_REPLY = _icmp_tables()


def _proto_classes() -> np.ndarray:
    classes = np.full(256, ct.CLASS_UDP, dtype=np.uint8)
    classes[PROTO_TCP] = ct.CLASS_TCP
    classes[PROTO_ICMP] = ct.CLASS_ICMP
    classes[PROTO_ICMP6] = ct.CLASS_ICMP
    return classes


PROTO_CLASSES = _proto_classes()


# --- the table --------------------------------------------------------------------------


class _Live:
    """The live table's arrays (one row per slot; columns as conntable names them)."""

    def __init__(self, capacity: int, blocks: int) -> None:
        self.K = np.zeros((capacity, ct.K_COLS), dtype=np.uint64)
        self.L = np.zeros((capacity, ct.N_L), dtype=np.int64)
        self.N = np.full((capacity, ct.N_N), -1, dtype=np.int64)
        self.I = np.zeros((capacity, ct.N_I), dtype=np.int32)
        self.U = np.zeros((capacity, ct.N_U), dtype=np.uint8)
        self.H = np.zeros((capacity, ct.HIST_MAX), dtype=np.uint8)
        self.free = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # a stack: pops 0 first
        self.index = np.full(_index_size(capacity), -1, dtype=np.int64)
        self.heads = np.zeros((blocks, ct.HEAD_BYTES), dtype=np.uint8)
        self.blk_free = np.arange(blocks - 1, -1, -1, dtype=np.int64)
        self.M = np.zeros(ct.N_M, dtype=np.int64)
        self.M[ct.M_FREE_TOP] = capacity
        self.M[ct.M_BLK_TOP] = blocks
        self.M[ct.M_HEAD0 : ct.M_HEAD0 + ct.N_CLASSES] = -1
        self.M[ct.M_TAIL0 : ct.M_TAIL0 + ct.N_CLASSES] = -1

    @property
    def capacity(self) -> int:
        return int(self.K.shape[0])

    def grow_slots(self, capacity: int) -> None:
        """More slots (ids stay), and an index sized for them."""
        old = self.capacity
        for name in ("K", "L", "N", "I", "U", "H"):
            arr = getattr(self, name)
            grown = np.full((capacity, *arr.shape[1:]), -1 if name == "N" else 0, arr.dtype)
            grown[:old] = arr
            setattr(self, name, grown)
        top = int(self.M[ct.M_FREE_TOP])
        free = np.empty(capacity, dtype=np.int64)
        free[: capacity - old] = np.arange(capacity - 1, old - 1, -1)
        free[capacity - old : capacity - old + top] = self.free[:top]
        self.free = free
        self.M[ct.M_FREE_TOP] = top + capacity - old
        live = np.ones(capacity, dtype=np.bool_)
        live[self.free[: int(self.M[ct.M_FREE_TOP])]] = False
        self.index = np.full(_index_size(capacity), -1, dtype=np.int64)
        ct.rebuild_index(self.index, self.L, np.flatnonzero(live))

    def grow_blocks(self) -> None:
        old = self.heads.shape[0]
        heads = np.zeros((2 * old, ct.HEAD_BYTES), dtype=np.uint8)
        heads[:old] = self.heads
        self.heads = heads
        top = int(self.M[ct.M_BLK_TOP])
        blk_free = np.empty(2 * old, dtype=np.int64)
        blk_free[:old] = np.arange(2 * old - 1, old - 1, -1)
        blk_free[old : old + top] = self.blk_free[:top]
        self.blk_free = blk_free
        self.M[ct.M_BLK_TOP] = top + old


def _index_size(capacity: int) -> int:
    """Buckets for `capacity` slots: a power of two, at most half full."""
    return 1 << max(4, (2 * capacity - 1).bit_length())


@dataclass
class _Rows:
    """Connections that left the live table: columnar chunks, as conntable writes them."""

    OK: np.ndarray
    OL: np.ndarray
    OI: np.ndarray
    OU: np.ndarray
    var: np.ndarray

    @classmethod
    def empty(cls, rows: int = CHUNK_ROWS, var_bytes: int = CHUNK_VAR_BYTES) -> _Rows:
        return cls(
            OK=np.zeros((rows, ct.N_OK), dtype=np.uint64),
            OL=np.zeros((rows, ct.N_OL), dtype=np.int64),
            OI=np.zeros((rows, ct.N_OI), dtype=np.int32),
            OU=np.zeros((rows, ct.N_OU), dtype=np.uint8),
            var=np.zeros(max(var_bytes, 4 * ct.ROW_VAR_MAX), dtype=np.uint8),
        )

    def trimmed(self, rows: int, var_bytes: int) -> _Rows:
        return _Rows(
            OK=self.OK[:rows].copy(),
            OL=self.OL[:rows].copy(),
            OI=self.OI[:rows].copy(),
            OU=self.OU[:rows].copy(),
            var=self.var[:var_bytes].copy(),
        )


class FlowTable:
    """Connection table fed batch by batch; the per-packet loop is conntable.run_batch."""

    def __init__(
        self,
        *,
        capture_name: str,
        service_ports: frozenset[tuple[str, int]] = frozenset(),
        tcp_idle_timeout_s: float = TCP_IDLE_TIMEOUT_S,
        udp_idle_timeout_s: float = UDP_IDLE_TIMEOUT_S,
        icmp_idle_timeout_s: float = ICMP_IDLE_TIMEOUT_S,
        dns_names: Iterable[str] | None = None,
        max_live_connections: int = MAX_LIVE_CONNECTIONS,
    ) -> None:
        if max_live_connections < 1:
            raise ValueError("max_live_connections must be at least 1")
        self.capture_name = capture_name
        # DNS responses are kept only where they mention one of these names (None: all).
        # Classification needs the answers for the catalog's documented destinations
        # only; keeping every response made memory grow with the capture's length.
        self._dns_names = _dns_wire_names(dns_names) if dns_names is not None else None
        self._svc_tcp = _service_ports("tcp", service_ports)
        self._svc_udp = _service_ports("udp", service_ports)
        self._timeout_ns = np.empty(ct.N_CLASSES, dtype=np.int64)
        self._timeout_ns[ct.CLASS_TCP] = round(tcp_idle_timeout_s * 1e9)
        self._timeout_ns[ct.CLASS_UDP] = round(udp_idle_timeout_s * 1e9)
        self._timeout_ns[ct.CLASS_ICMP] = round(icmp_idle_timeout_s * 1e9)
        self._max_live = max_live_connections
        self._live = _Live(min(INITIAL_SLOTS, max_live_connections), INITIAL_BLOCKS)
        self._live.M[ct.M_MAX_LIVE] = max_live_connections
        self._frag_key = np.zeros((ct.FRAG_TABLE, 5), dtype=np.uint64)
        self._frag_ports = np.zeros((ct.FRAG_TABLE, 2), dtype=np.int32)
        self._out = _Rows.empty()
        self._chunks: list[_Rows] = []
        self._arp: dict[tuple[int, int], int] = {}  # (ipv4, mac) -> first ts_ns
        self._dns: list[tuple[np.ndarray, ...]] = []  # ts, dst hi/lo, src hi/lo per batch
        self._dns_payloads: list[bytes] = []

    @property
    def live_connections(self) -> int:
        """Connections in the live table now."""
        return int(self._live.M[ct.M_LIVE])

    @property
    def evicted(self) -> int:
        """Connections expired early so far because the live table was full."""
        return int(self._live.M[ct.M_EVICTED])

    # -- feeding --------------------------------------------------------------------

    def add(self, batch: PacketBatch) -> None:
        """Account every packet of `batch` (record order) to its connection."""
        if batch.n == 0:
            return
        is_arp = batch.kind == KIND_ARP
        if is_arp.any():
            self._add_arp(batch, np.flatnonzero(is_arp))
        self._collect_dns(batch)
        b = batch
        buf = readonly(b.buf)  # one compiled run_batch, whoever made the batch
        live = self._live
        at = 0
        while True:
            status, at = ct.run_batch(
                at,
                b.index, b.ts_ns, b.kind, b.src_mac, b.has_mac, b.vlan, b.inner_vlan,
                b.src_hi, b.src_lo, b.dst_hi, b.dst_lo, b.proto, b.ip_len, b.frag,
                b.ip_id, b.sport, b.dport, b.tcp_flags, b.seq, b.payload_len,
                b.payload_off, b.caplen_payload, buf,
                self._timeout_ns, PROTO_CLASSES, self._svc_tcp, self._svc_udp,
                ICMP_COUNTERPART, ICMP_IS_REPLY,
                self._frag_key, self._frag_ports,
                live.index, live.K, live.L, live.N, live.I, live.U, live.H, live.free,
                live.heads, live.blk_free, live.M,
                self._out.OK, self._out.OL, self._out.OI, self._out.OU, self._out.var,
            )  # fmt: skip
            if status == ct.DONE:
                return
            self._make_room(status)

    def _make_room(self, status: int) -> None:
        if status == ct.NEED_OUT:
            self._flush_rows()
        elif status == ct.NEED_BLOCK:
            self._live.grow_blocks()
        elif status == ct.NEED_SLOT:
            self._live.grow_slots(min(2 * self._live.capacity, self._max_live))

    def _flush_rows(self) -> None:
        """Keep the filled part of the current output chunk and start a new one."""
        m = self._live.M
        rows, var_bytes = int(m[ct.M_ROWS]), int(m[ct.M_VAR])
        if rows:
            self._chunks.append(self._out.trimmed(rows, var_bytes))
        m[ct.M_ROWS] = 0
        m[ct.M_VAR] = 0

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

    def _collect_dns(self, b: PacketBatch) -> None:
        rows = np.flatnonzero(
            (b.kind != KIND_ARP)
            & (b.proto == PROTO_UDP)
            & (b.sport == 53)
            & b.has_l4
            & (b.frag != ct.FRAG_LATER)
        )
        if rows.size == 0:
            return
        if self._dns_names is not None:
            rows = self._dns_mentioning(b, rows)
            if rows.size == 0:
                return
        ends = b.payload_off[rows] + b.caplen_payload[rows]
        payloads = [
            b.buf[o:e].tobytes()
            for o, e in zip(b.payload_off[rows].tolist(), ends.tolist(), strict=True)
        ]
        self._dns.append(
            (b.ts_ns[rows], b.dst_hi[rows], b.dst_lo[rows], b.src_hi[rows], b.src_lo[rows])
        )
        self._dns_payloads.extend(payloads)

    def _dns_mentioning(self, b: PacketBatch, rows: np.ndarray) -> np.ndarray:
        """The `rows` whose payload holds one of the wanted names, in any letter case (DNS
        0x20). The payloads are joined by 0xFF (no byte of a wire-encoded host name),
        lower-cased once and searched with bytes.find per name: a case-insensitive regex
        over the same bytes took 15 ms per MB."""
        assert self._dns_names is not None
        offs = b.payload_off[rows]
        lens = b.caplen_payload[rows].astype(np.int64)
        view = b.buf.data
        joined = b"\xff".join(
            [view[o : o + n] for o, n in zip(offs.tolist(), lens.tolist(), strict=True)]
        ).lower()
        starts = np.cumsum(lens + 1) - (lens + 1)  # where each payload begins in `joined`
        hits = [at for name in self._dns_names for at in _find_all(joined, name)]
        if not hits:
            return rows[:0]
        which = np.unique(np.searchsorted(starts, np.asarray(hits), side="right") - 1)
        return rows[which]

    # -- results ---------------------------------------------------------------------------

    def finish(self) -> FlowResult:
        """Build the result tables from every connection seen. The table is spent: its
        live state and row chunks are released as the result is built."""
        live = self._live
        while True:
            status = ct.flush_all(
                live.K, live.L, live.N, live.I, live.U, live.H, live.heads, live.index,
                live.free, live.blk_free, live.M,
                self._out.OK, self._out.OL, self._out.OI, self._out.OU, self._out.var,
            )  # fmt: skip
            self._flush_rows()
            if status == ct.DONE:
                break
        evicted = self.evicted
        self._live = _Live(1, 1)
        self._out = _Rows.empty(1, 0)
        rows = _concat_rows(self._chunks)
        self._chunks = []
        flows, hosts = self._frames(rows)
        del rows
        result = FlowResult(
            flows=flows,
            hosts=hosts,
            arp=self._arp_frame(),
            dns=self._dns_frame(),
            evicted=evicted,
        )
        self._arp.clear()
        self._dns.clear()
        self._dns_payloads.clear()
        return result

    def _frames(self, rows: _Rows | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The flows frame (FLOW_COLUMNS, in (ts, uid) order) and the hosts frame."""
        if rows is None or rows.OL.shape[0] == 0:
            return _empty_flows(), _empty_hosts()
        OK, OL, OI, OU = rows.OK, rows.OL, rows.OI, rows.OU
        c = {
            "a_hi": OK[:, ct.OK_A_HI],
            "a_lo": OK[:, ct.OK_A_LO],
            "b_hi": OK[:, ct.OK_B_HI],
            "b_lo": OK[:, ct.OK_B_LO],
            "first_index": OL[:, ct.OL_FIRST_INDEX],
            "proto": OU[:, ct.OU_PROTO],
            "a_port": OI[:, ct.OI_A_PORT],
            "b_port": OI[:, ct.OI_B_PORT],
            "vlan": OI[:, ct.OI_VLAN],
            "inner_vlan": OI[:, ct.OI_INNER_VLAN],
            "ts_first": OL[:, ct.OL_TS_FIRST],
        }
        uid = _uids(c)
        # Rows in the table's order (ts, then uid) from the start: sorting the finished
        # frame instead would hold two copies of it at once. (The uids' bytes sort as
        # their text: base62 digits are ASCII.)
        order = np.lexsort((uid, OL[:, ct.OL_TS_FIRST]))
        uid = uid[order]
        # the rows in that order replace the unordered ones (which the caller's `rows`
        # would otherwise keep alive while the frame is built)
        rows.OK = OK = OK[order]
        rows.OL = OL = OL[order]
        rows.OI = OI = OI[order]
        rows.OU = OU = OU[order]
        del c
        pick = _Orienter(OU[:, ct.OU_ORIG_IS_A] != 0)
        # every address once: codes into the distinct (hi, lo) pairs of both ends
        hi, lo, codes = ft.unique_addresses(
            np.concatenate([OK[:, ct.OK_A_HI], OK[:, ct.OK_B_HI]]),
            np.concatenate([OK[:, ct.OK_A_LO], OK[:, ct.OK_B_LO]]),
        )
        n = OK.shape[0]
        orig_code = pick.orig(codes[:n], codes[n:])
        resp_code = pick.resp(codes[:n], codes[n:])
        addresses = ft.address_text(hi, lo)
        bcast = ft.is_group(hi, lo)
        macs = _Macs(
            pick.orig(OL[:, ct.OL_MAC_A], OL[:, ct.OL_MAC_B]),
            pick.orig(OU[:, ct.OU_MACOK_A], OU[:, ct.OU_MACOK_B]) != 0,
            pick.resp(OL[:, ct.OL_MAC_A], OL[:, ct.OL_MAC_B]),
            pick.resp(OU[:, ct.OU_MACOK_A], OU[:, ct.OU_MACOK_B]) != 0,
        )
        ts_first, ts_last = OL[:, ct.OL_TS_FIRST], OL[:, ct.OL_TS_LAST]
        counts = {
            f"{me}_{what}": getattr(pick, me)(OL[:, col_a], OL[:, col_b])
            for what, col_a, col_b in (
                ("pkts", ct.OL_PKTS_A, ct.OL_PKTS_B),
                ("bytes", ct.OL_BYTES_A, ct.OL_BYTES_B),
                ("ip_bytes", ct.OL_IPB_A, ct.OL_IPB_B),
            )
            for me in ("orig", "resp")
        }
        hist_off, hist_len = OL[:, ct.OL_VAR], OI[:, ct.OI_HIST_LEN]
        head_a_len, head_b_len = OI[:, ct.OI_HEAD_A], OI[:, ct.OI_HEAD_B]
        head_a_off = hist_off + hist_len
        head_b_off = head_a_off + np.maximum(head_a_len, 0)
        heads = {
            f"_{me}_head": _byte_objects(
                rows.var,
                getattr(pick, me)(head_a_off, head_b_off),
                getattr(pick, me)(head_a_len, head_b_len),
            )
            for me in ("orig", "resp")
        }
        frame = pd.DataFrame(
            {
                "uid": ft.str_series(_uid_text(uid)),
                "ts": _timestamps(ts_first),
                "last_ts": _timestamps(ts_last),
                "duration": (ts_last - ts_first) / 1e9,
                "proto": ft.str_series(_PROTO_TEXT.take(OU[:, ct.OU_PROTO])),
                "orig_h": ft.str_series(addresses.take(orig_code)),
                "orig_p": pick.orig(OI[:, ct.OI_A_PORT], OI[:, ct.OI_B_PORT]).astype(np.int32),
                "resp_h": ft.str_series(addresses.take(resp_code)),
                "resp_p": pick.resp(OI[:, ct.OI_A_PORT], OI[:, ct.OI_B_PORT]).astype(np.int32),
                "orig_evidence": ft.str_series(_EVIDENCE_TEXT.take(OU[:, ct.OU_EVIDENCE])),
                "orig_mac": ft.str_series(macs.orig_text()),
                "resp_mac": ft.str_series(macs.resp_text()),
                "vlan": _nullable_vlan(OI[:, ct.OI_VLAN]),
                "inner_vlan": _nullable_vlan(OI[:, ct.OI_INNER_VLAN]),
                **counts,
                "conn_state": ft.str_series(_STATE_TEXT.take(OU[:, ct.OU_CONN_STATE])),
                "history": ft.str_series(ft.text_array(*ft.gathered(rows.var, hist_off, hist_len))),
                "service": pd.Series(np.full(n, None, dtype=object), dtype=object),
                "capture": ft.str_series(pa.array([self.capture_name]).take(np.zeros(n, np.int64))),
                **heads,
                "_resp_bcast": bcast[resp_code],
            },
            copy=False,  # each column its own block: no second, consolidated copy
        )
        hosts = _hosts_frame(
            addresses, ft.is_unicast(hi, lo), orig_code, resp_code, ts_first, ts_last,
            counts, macs,
        )  # fmt: skip
        return frame, hosts

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


def _concat_rows(chunks: list[_Rows]) -> _Rows | None:
    """One set of row columns from the chunks; byte-buffer offsets made global."""
    if not chunks:
        return None
    base = np.cumsum([0] + [c.var.size for c in chunks[:-1]])
    for chunk, at in zip(chunks, base.tolist(), strict=True):
        chunk.OL[:, ct.OL_VAR] += at
    rows = _Rows(
        OK=np.concatenate([c.OK for c in chunks]),
        OL=np.concatenate([c.OL for c in chunks]),
        OI=np.concatenate([c.OI for c in chunks]),
        OU=np.concatenate([c.OU for c in chunks]),
        var=np.concatenate([c.var for c in chunks]),
    )
    chunks.clear()
    return rows


def _byte_objects(var: np.ndarray, off: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """bytes per row (None where the length is -1: nothing sent that way)."""
    offsets, data = ft.gathered(var, off, lens)
    return ft.binary_array(offsets, data, lens >= 0).to_numpy(zero_copy_only=False)


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


class _Orienter:
    """Pick originator / responder values from (A, B) columns."""

    def __init__(self, orig_is_a: np.ndarray) -> None:
        self.a = orig_is_a

    def orig(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(self.a, a, b)

    def resp(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(self.a, b, a)


class _Macs:
    """The first MAC of each direction, per connection (ok False: none seen that way),
    with every distinct MAC's text made once."""

    def __init__(
        self, orig: np.ndarray, orig_ok: np.ndarray, resp: np.ndarray, resp_ok: np.ndarray
    ) -> None:
        self.orig_ok, self.resp_ok = orig_ok, resp_ok
        uniq, codes = np.unique(np.concatenate([orig, resp]).astype(np.uint64), return_inverse=True)
        self.distinct = ft.mac_text(uniq)
        codes = codes.ravel().astype(np.int64)
        self.orig_code, self.resp_code = codes[: orig.size], codes[orig.size :]

    def orig_text(self) -> pa.Array:
        return self.distinct.take(pa.array(self.orig_code, mask=~self.orig_ok))

    def resp_text(self) -> pa.Array:
        return self.distinct.take(pa.array(self.resp_code, mask=~self.resp_ok))


def _addr_strings(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Address text per row (Python strings); each distinct address is formatted once."""
    if hi.size == 0:
        return np.empty(0, dtype=object)
    uhi, ulo, codes = ft.unique_addresses(hi, lo)
    return ft.address_text(uhi, ulo).take(codes).to_numpy(zero_copy_only=False)


def _mac_strings(mac: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """MAC text per row (Python strings), None where not ok."""
    out = np.full(mac.size, None, dtype=object)
    if mac.size == 0:
        return out
    uniq, codes = np.unique(mac.astype(np.uint64), return_inverse=True)
    text = ft.mac_text(uniq).take(codes.ravel()).to_numpy(zero_copy_only=False)
    out[ok] = text[ok]
    return out


def _nullable_vlan(vlan: np.ndarray) -> pd.Series:
    return pd.Series(pd.array(np.where(vlan == NO_VLAN, 0, vlan), dtype="Int32")).mask(
        vlan == NO_VLAN
    )


def _timestamps(ts_ns: np.ndarray) -> pd.Series:
    return pd.Series((ts_ns // 1000).astype("datetime64[us]")).dt.tz_localize("UTC")


# the text of the small code columns, taken per row by code
_PROTO_TEXT = pa.array([PROTO_NAMES.get(p, str(p)) for p in range(256)], pa.large_string())
_EVIDENCE_TEXT = pa.array(EVIDENCE, pa.large_string())
_STATE_TEXT = pa.array(CONN_STATES, pa.large_string())


_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)


def _uids(c: dict[str, np.ndarray]) -> np.ndarray:
    """'C' + 11 base62 digits of a hash of the connection's content: its first packet's
    record index and timestamp and its key. Not the capture's name: the same packets give
    the same uids whether read from a file or from standard input."""
    n = c["first_index"].size
    words = np.empty((n, 8), dtype=np.uint64)
    words[:, 0] = c["ts_first"].astype(np.uint64)
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
    return digits.view("S12").ravel()


def _uid_text(uid: np.ndarray) -> pa.Array:
    """The uids (S12 values) as an Arrow string array, sharing their bytes."""
    data = np.ascontiguousarray(uid).view(np.uint8)
    return ft.text_array(np.arange(uid.size + 1, dtype=np.int64) * 12, data)


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


# --- hosts and empty tables ---------------------------------------------------------------------


def _hosts_frame(
    addresses: pa.Array,
    unicast: np.ndarray,
    orig_code: np.ndarray,
    resp_code: np.ndarray,
    ts_first: np.ndarray,
    ts_last: np.ndarray,
    counts: dict[str, np.ndarray],
    macs: _Macs,
) -> pd.DataFrame:
    """Per unicast address, in text order: first/last time, packets and IP bytes of the
    connections it takes part in (a connection from an address to itself counts twice),
    and the MAC of its earliest connection in which it sent one (ties: originator sides
    first, then flow order). `addresses` and `unicast` per address code, the rest per
    flow (flows in (ts, uid) order)."""
    # one row per (connection, side): the originator sides, then the responder sides
    code = np.concatenate([orig_code, resp_code])
    rows = np.flatnonzero(unicast[code])
    if rows.size == 0:
        return _empty_hosts()
    pkts = np.tile(counts["orig_pkts"] + counts["resp_pkts"], 2)
    ip_bytes = np.tile(counts["orig_ip_bytes"] + counts["resp_ip_bytes"], 2)
    first = np.concatenate([ts_first, ts_first])
    last = np.concatenate([ts_last, ts_last])
    by_host = rows[np.argsort(code[rows], kind="stable")]  # each host's rows together
    host = code[by_host]
    starts = np.flatnonzero(np.r_[True, host[1:] != host[:-1]])
    hosts = host[starts]
    # the MAC: of the host's earliest row (ts, then row order) that sent with a MAC
    sent = np.concatenate([counts["orig_pkts"] > 0, counts["resp_pkts"] > 0])
    mac_ok = np.concatenate([macs.orig_ok, macs.resp_ok])
    cand = by_host[sent[by_host] & mac_ok[by_host]]
    cand = cand[np.lexsort((cand, first[cand], code[cand]))]
    lead = cand[np.r_[True, code[cand][1:] != code[cand][:-1]]] if cand.size else cand
    mac_of = np.full(len(addresses), -1, dtype=np.int64)
    mac_of[code[lead]] = np.concatenate([macs.orig_code, macs.resp_code])[lead]
    mac = mac_of[hosts]
    text = addresses.take(hosts)
    order = pc.sort_indices(text).to_numpy()  # the hosts table is in address text order
    mac_text = macs.distinct.take(pa.array(mac, mask=mac < 0)).take(order)
    return pd.DataFrame(
        {
            "ip": ft.str_series(text.take(order)),
            "mac": pd.Series(mac_text.to_numpy(zero_copy_only=False), dtype=object),
            "first_ts": _timestamps(np.minimum.reduceat(first[by_host], starts)[order]),
            "last_ts": _timestamps(np.maximum.reduceat(last[by_host], starts)[order]),
            "pkts": np.add.reduceat(pkts[by_host], starts)[order],
            "bytes": np.add.reduceat(ip_bytes[by_host], starts)[order],
        }
    )


def is_unicast_text(ip: str) -> bool:
    """Not broadcast, multicast or unspecified (flowtext.is_unicast, on the text that
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
