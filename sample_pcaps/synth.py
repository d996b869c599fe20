"""Deterministic traffic synthesis on dpkt: frames, sessions, payload shapes and capture
writers. Used by `sample_pcaps/generate.py` and by tests that need packets built in code.

Nothing here reads the clock or the host: every timestamp is given (integer nanoseconds
since the Unix epoch, UTC), every random byte comes from the caller's seeded
`random.Random`, and the writers emit no host name, OS or creation time.

    trace = Trace(seed=1, start_ns=ts_ns(2026, 3, 2, 8, 0, 0))
    cmi = Host(ip="192.168.1.40", mac="00:1b:0f:00:12:34", os="embedded")
    dns = Host(ip="192.168.1.1", mac="00:0d:b9:4f:2a:01", os="linux")
    trace.udp(trace.start_ns, cmi, dns, 49152, 53, dns_query(0x1234, "cmi.ta.co.at"))
    s = trace.tcp(cmi, portal, 50001, 40001, at_ns=..., rtt_ns=25_000_000).open()
    s.exchange(b"...", b"...", after_s=30.0)
    s.close(by_client=True, after_s=1.0)
    write_pcap(trace.frames(), linktype=LINKTYPE_ETHERNET)   # -> bytes

Frames are Ethernet (optionally 802.1Q-tagged), padded to the 60-byte minimum as a
mirror port delivers them; `to_sll2` turns one into a Linux "any"-device cooked record.
"""

from __future__ import annotations

import calendar
import gzip
import io
import ipaddress
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dpkt

NS_PER_S = 1_000_000_000
NS_PER_US = 1_000

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL2 = 276

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_8021Q = 0x8100
ETH_TYPE_IP6 = 0x86DD

ETH_MIN_FRAME = 60  # IEEE 802.3 minimum frame length without the 4-byte FCS
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ts_ns(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    """Nanoseconds since the epoch for a UTC wall-clock time (no local time zone involved)."""
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * NS_PER_S


def seconds(value_s: float) -> int:
    """Seconds -> integer nanoseconds rounded to whole microseconds (pcap usec resolution)."""
    return round(value_s * 1_000_000) * NS_PER_US


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def ip_bytes(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


# ----------------------------------------------------------------------------- hosts


@dataclass(frozen=True)
class StackProfile:
    """How an operating system's TCP/IP stack shapes its packets."""

    ttl: int  # initial IPv4 TTL / IPv6 hop limit
    syn_window: int  # window field in the SYN / SYN-ACK
    window: int  # receive window in bytes after the handshake
    window_scale: int | None  # shift offered in the SYN (None: option not sent)
    sack: bool  # SACK-permitted option in the SYN
    mss: int


# Values as these stacks send them by default (Windows 10/11, Linux 6.x, small embedded
# stacks such as lwIP on the C.M.I. or the Lantronix XPort/ISENet chip).
PROFILES: dict[str, StackProfile] = {
    "windows": StackProfile(
        ttl=128, syn_window=64240, window=262656, window_scale=8, sack=True, mss=1460
    ),
    "linux": StackProfile(
        ttl=64, syn_window=64240, window=64256, window_scale=7, sack=True, mss=1460
    ),
    "embedded": StackProfile(
        ttl=64, syn_window=5840, window=5840, window_scale=None, sack=False, mss=1460
    ),
}


@dataclass(frozen=True)
class Host:
    """One address as seen on the capture link. An internet host is seen behind the
    router: give it the router's MAC and a TTL already lowered by the hops."""

    ip: str
    mac: str
    os: str = "linux"  # key of PROFILES
    ttl: int | None = None  # TTL as captured; None = the profile's initial TTL
    vlan: int | None = None  # 802.1Q tag the mirror port shows on this host's frames
    iface: int = 0  # pcapng interface whose mirror port sees this host's frames

    @property
    def profile(self) -> StackProfile:
        return PROFILES[self.os]

    @property
    def hop_limit(self) -> int:
        return self.ttl if self.ttl is not None else self.profile.ttl

    @property
    def is_v6(self) -> bool:
        return ":" in self.ip


def remote(gateway: Host, ip: str, *, ttl: int, os: str = "linux") -> Host:
    """A host on another network: its frames carry the gateway's MAC, VLAN and interface."""
    return Host(ip=ip, mac=gateway.mac, os=os, ttl=ttl, vlan=gateway.vlan, iface=gateway.iface)


def broadcast(ip: str = "255.255.255.255", *, like: Host | None = None) -> Host:
    """The broadcast destination (limited or subnet-directed) on `like`'s VLAN/interface."""
    vlan = like.vlan if like else None
    iface = like.iface if like else 0
    return Host(ip=ip, mac=BROADCAST_MAC, vlan=vlan, iface=iface)


def multicast(ip: str, *, like: Host | None = None) -> Host:
    """A multicast group with its mapped MAC (RFC 1112 01:00:5e / RFC 2464 33:33)."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        low = int(addr) & 0x7FFFFF
        mac = "01:00:5e:" + ":".join(f"{b:02x}" for b in low.to_bytes(3, "big"))
    else:
        mac = "33:33:" + ":".join(f"{b:02x}" for b in addr.packed[-4:])
    vlan = like.vlan if like else None
    iface = like.iface if like else 0
    return Host(ip=ip, mac=mac, vlan=vlan, iface=iface)


# ----------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    ts_ns: int
    data: bytes  # Ethernet frame as captured (no FCS)
    iface: int = 0


def ethernet(
    src_mac: str, dst_mac: str, ethertype: int, payload: bytes, *, vlan: int | None
) -> bytes:
    """An Ethernet II frame, 802.1Q-tagged when `vlan` is given, padded to the minimum."""
    head = mac_bytes(dst_mac) + mac_bytes(src_mac)
    if vlan is not None:
        head += struct.pack(">HH", ETH_TYPE_8021Q, vlan & 0x0FFF)
    frame = head + struct.pack(">H", ethertype) + payload
    minimum = ETH_MIN_FRAME + (4 if vlan is not None else 0)
    return frame + bytes(max(0, minimum - len(frame)))


class Trace:
    """Collects frames from many conversations; `frames()` returns them in time order."""

    def __init__(self, *, seed: int, start_ns: int) -> None:
        self.rng = random.Random(seed)
        self.start_ns = start_ns
        self._frames: list[tuple[int, int, Frame]] = []
        self._ip_id: dict[str, int] = {}
        self._ephemeral: dict[str, int] = {}

    # -- bookkeeping ------------------------------------------------------------------
    def at(self, offset_s: float) -> int:
        """Absolute timestamp `offset_s` seconds after the trace start."""
        return self.start_ns + seconds(offset_s)

    def jitter(self, spread_s: float) -> float:
        """A seeded random offset in [-spread_s, +spread_s], rounded to microseconds."""
        return round(self.rng.uniform(-spread_s, spread_s), 6)

    def random_bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def ephemeral_port(self, host: Host) -> int:
        """The host's next ephemeral source port (Windows/Linux ranges, sequential)."""
        if host.ip not in self._ephemeral:
            low, high = (49152, 65535) if host.os != "linux" else (32768, 60999)
            self._ephemeral[host.ip] = self.rng.randrange(low, high - 2000)
        self._ephemeral[host.ip] += 1 if host.os != "linux" else self.rng.randrange(1, 40)
        return self._ephemeral[host.ip]

    def _next_ip_id(self, host: Host) -> int:
        if host.ip not in self._ip_id:
            self._ip_id[host.ip] = self.rng.randrange(0, 0xFFFF)
        self._ip_id[host.ip] = (self._ip_id[host.ip] + 1) & 0xFFFF
        return self._ip_id[host.ip]

    def add_frame(self, t_ns: int, data: bytes, *, iface: int) -> None:
        self._frames.append((t_ns, len(self._frames), Frame(ts_ns=t_ns, data=data, iface=iface)))

    def frames(self) -> list[Frame]:
        return [f for _, _, f in sorted(self._frames, key=lambda item: (item[0], item[1]))]

    # -- layer 3 ----------------------------------------------------------------------
    def ip(self, t_ns: int, src: Host, dst: Host, proto: int, l4: dpkt.Packet, *, df: bool) -> None:
        """Send one IPv4/IPv6 packet carrying `l4` (checksums computed by dpkt)."""
        if src.is_v6:
            packet = _ipv6(src, dst, proto, l4)
            ethertype = ETH_TYPE_IP6
        else:
            packet = _ipv4(src, dst, proto, l4, ip_id=self._next_ip_id(src), df=df)
            ethertype = ETH_TYPE_IP
        frame = ethernet(src.mac, dst.mac, ethertype, packet, vlan=src.vlan)
        self.add_frame(t_ns, frame, iface=src.iface)

    def udp(self, t_ns: int, src: Host, dst: Host, sport: int, dport: int, payload: bytes) -> None:
        datagram = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
        self.ip(t_ns, src, dst, dpkt.ip.IP_PROTO_UDP, datagram, df=False)

    def udp_exchange(
        self,
        t_ns: int,
        client: Host,
        server: Host,
        sport: int,
        dport: int,
        request: bytes,
        response: bytes | None,
        *,
        rtt_ns: int,
    ) -> int:
        """Request and (optional) reply; returns the time of the last packet."""
        self.udp(t_ns, client, server, sport, dport, request)
        if response is None:
            return t_ns
        self.udp(t_ns + rtt_ns, server, client, dport, sport, response)
        return t_ns + rtt_ns

    def icmp_echo(
        self, t_ns: int, src: Host, dst: Host, *, ident: int, seq: int, rtt_ns: int, payload: bytes
    ) -> None:
        """ICMP echo request and reply (Windows `ping` sends 32 bytes 'abcdefghi...')."""
        for i, (a, b, kind) in enumerate(((src, dst, 8), (dst, src, 0))):
            echo = dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=payload)
            msg = dpkt.icmp.ICMP(type=kind, code=0, data=echo)
            self.ip(t_ns + i * rtt_ns, a, b, dpkt.ip.IP_PROTO_ICMP, msg, df=False)

    def arp(
        self, t_ns: int, asker: Host, target_ip: str, *, answer: Host | None, rtt_ns: int
    ) -> None:
        """ARP who-has from `asker` (broadcast) and, if `answer` is given, its unicast reply."""
        request = _arp_packet(dpkt.arp.ARP_OP_REQUEST, asker, "00:00:00:00:00:00", target_ip)
        self.add_frame(
            t_ns,
            ethernet(asker.mac, BROADCAST_MAC, ETH_TYPE_ARP, request, vlan=asker.vlan),
            iface=asker.iface,
        )
        if answer is None:
            return
        reply = _arp_packet(dpkt.arp.ARP_OP_REPLY, answer, asker.mac, asker.ip)
        self.add_frame(
            t_ns + rtt_ns,
            ethernet(answer.mac, asker.mac, ETH_TYPE_ARP, reply, vlan=answer.vlan),
            iface=answer.iface,
        )

    def tcp(
        self,
        client: Host,
        server: Host,
        sport: int,
        dport: int,
        *,
        at_ns: int,
        rtt_ns: int,
    ) -> TcpSession:
        """A TCP connection from client:sport to server:dport; call .open() or .resume()."""
        return TcpSession(self, client, server, sport, dport, t_ns=at_ns, rtt_ns=rtt_ns)


def _ipv4(src: Host, dst: Host, proto: int, l4: dpkt.Packet, *, ip_id: int, df: bool) -> bytes:
    packet = dpkt.ip.IP(
        src=ip_bytes(src.ip),
        dst=ip_bytes(dst.ip),
        p=proto,
        ttl=src.hop_limit if not dst.ip.startswith("224.0.0.") else 255,
        id=ip_id,
        df=1 if df else 0,
        data=l4,
    )
    return bytes(packet)


def _ipv6(src: Host, dst: Host, proto: int, l4: dpkt.Packet) -> bytes:
    hlim = 255 if dst.ip.lower().startswith("ff02:") else src.hop_limit
    body = bytes(l4)
    packet = dpkt.ip6.IP6(
        src=ip_bytes(src.ip), dst=ip_bytes(dst.ip), nxt=proto, hlim=hlim, plen=len(body), data=l4
    )
    packet.p = proto
    raw = bytes(packet)
    if proto == dpkt.ip.IP_PROTO_UDP and l4.sum == 0:  # RFC 8200 8.1: zero is sent as 0xffff
        l4.sum = 0xFFFF
        raw = bytes(packet)
    return raw


def _arp_packet(op: int, sender: Host, target_mac: str, target_ip: str) -> bytes:
    packet = dpkt.arp.ARP(
        op=op,
        sha=mac_bytes(sender.mac),
        spa=ip_bytes(sender.ip),
        tha=mac_bytes(target_mac),
        tpa=ip_bytes(target_ip),
    )
    return bytes(packet)


# ----------------------------------------------------------------------------- TCP


@dataclass
class _Side:
    host: Host
    port: int
    seq: int  # next sequence number this side sends
    window: int  # window field value this side advertises after the handshake


class TcpSession:
    """One TCP connection with consistent sequence/acknowledgement numbers.

    Every method advances the session clock; `after_s` is the pause before the step.
    The capture point is next to the client: the server's answers appear one RTT later.
    """

    def __init__(
        self,
        trace: Trace,
        client: Host,
        server: Host,
        sport: int,
        dport: int,
        *,
        t_ns: int,
        rtt_ns: int,
    ) -> None:
        self.trace = trace
        self.t_ns = t_ns
        self.rtt_ns = rtt_ns
        rng = trace.rng
        self.c = _Side(client, sport, rng.randrange(1 << 32), client.profile.syn_window)
        self.s = _Side(server, dport, rng.randrange(1 << 32), server.profile.syn_window)
        self.mss = min(client.profile.mss, server.profile.mss)

    # -- low level --------------------------------------------------------------------
    def _segment(
        self, src: _Side, dst: _Side, flags: int, payload: bytes, *, opts: bytes = b""
    ) -> None:
        segment = dpkt.tcp.TCP(
            sport=src.port,
            dport=dst.port,
            seq=src.seq,
            ack=dst.seq if flags & TCP_ACK else 0,
            flags=flags,
            win=0 if flags & TCP_RST else src.window,
            opts=opts,
            data=payload,
        )
        segment.off = (20 + len(opts)) // 4
        self.trace.ip(self.t_ns, src.host, dst.host, dpkt.ip.IP_PROTO_TCP, segment, df=True)
        src.seq = (src.seq + len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) & 0xFFFFFFFF

    def _sides(self, from_client: bool) -> tuple[_Side, _Side]:
        return (self.c, self.s) if from_client else (self.s, self.c)

    def _advance(self, delta_ns: int) -> None:
        self.t_ns += max(delta_ns, 0)

    def _reaction_ns(self, side: _Side) -> int:
        """Time between the packet `side` answers and the answer, as the capture sees it.

        An internet host (TTL given) answers one RTT later; a local host next to an
        internet peer answers at once; between two local hosts half the RTT each way."""
        other = self.s if side is self.c else self.c
        if side.host.ttl is not None:
            return self.rtt_ns
        if other.host.ttl is not None:
            return seconds(0.00015)
        return max(self.rtt_ns // 2, seconds(0.00005))

    # -- connection life ---------------------------------------------------------------
    def open(self) -> TcpSession:
        """Three-way handshake with each stack's SYN options; windows scale when both offer."""
        cp, sp = self.c.host.profile, self.s.host.profile
        both_scale = cp.window_scale is not None and sp.window_scale is not None
        both_sack = cp.sack and sp.sack
        self._segment(self.c, self.s, TCP_SYN, b"", opts=_syn_options(cp, sack=cp.sack))
        self._advance(self._reaction_ns(self.s))
        self._segment(
            self.s, self.c, TCP_SYN | TCP_ACK, b"", opts=_synack_options(sp, cp, sack=both_sack)
        )
        self._advance(self._reaction_ns(self.c))
        self.c.window = _window_field(cp, scaled=both_scale)
        self.s.window = _window_field(sp, scaled=both_scale)
        self._segment(self.c, self.s, TCP_ACK, b"")
        return self

    def resume(self) -> TcpSession:
        """Continue a connection opened before the capture started (no handshake seen)."""
        self.c.window = _window_field(self.c.host.profile, scaled=False)
        self.s.window = _window_field(self.s.host.profile, scaled=False)
        return self

    def reject(self) -> None:
        """SYN answered by RST-ACK: a closed port (Zeek REJ)."""
        self._segment(
            self.c, self.s, TCP_SYN, b"", opts=_syn_options(self.c.host.profile, sack=True)
        )
        self._advance(self._reaction_ns(self.s))
        self._segment(self.s, self.c, TCP_RST | TCP_ACK, b"")

    def send(self, from_client: bool, payload: bytes, *, after_s: float, ack: bool = True) -> None:
        """Data from one side, split at the MSS, acknowledged by the peer (delayed ACK)."""
        self._advance(seconds(after_s))
        self._push(from_client, payload)
        if ack:
            src, dst = self._sides(not from_client)
            self._advance(self._reaction_ns(src))
            self._segment(src, dst, TCP_ACK, b"")

    def exchange(
        self,
        request: bytes,
        response: bytes,
        *,
        after_s: float,
        from_client: bool = True,
        think_s: float = 0.002,
    ) -> None:
        """Request, response piggybacking the ACK, then the requester's ACK."""
        self._advance(seconds(after_s))
        self._push(from_client, request)
        requester, responder = self._sides(from_client)
        self._advance(self._reaction_ns(responder) + seconds(think_s))
        self._push(not from_client, response)
        self._advance(self._reaction_ns(requester))
        self._segment(requester, responder, TCP_ACK, b"")

    def _push(self, from_client: bool, payload: bytes) -> None:
        src, dst = self._sides(from_client)
        chunks = [payload[i : i + self.mss] for i in range(0, len(payload), self.mss)]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if i:
                self._advance(seconds(0.00012))
            self._segment(src, dst, TCP_ACK | (TCP_PSH if last else 0), chunk)
            if i % 2 == 1 and not last:  # the receiver acknowledges every second segment
                self._advance(seconds(0.00004))
                self._segment(dst, src, TCP_ACK, b"")

    def close(self, *, by_client: bool, after_s: float) -> None:
        """Orderly release: FIN, the peer's FIN-ACK, final ACK (Zeek SF)."""
        self._advance(seconds(after_s))
        first, second = self._sides(by_client)
        self._segment(first, second, TCP_FIN | TCP_ACK, b"")
        self._advance(self._reaction_ns(second))
        self._segment(second, first, TCP_FIN | TCP_ACK, b"")
        self._advance(self._reaction_ns(first))
        self._segment(first, second, TCP_ACK, b"")

    def reset(self, *, by_client: bool, after_s: float) -> None:
        """Abort with RST-ACK (e.g. an application killed mid-connection)."""
        self._advance(seconds(after_s))
        src, dst = self._sides(by_client)
        self._segment(src, dst, TCP_RST | TCP_ACK, b"")


def _syn_options(profile: StackProfile, *, sack: bool) -> bytes:
    opts = struct.pack(">BBH", 2, 4, profile.mss)
    if profile.window_scale is not None:
        opts += b"\x01" + struct.pack(">BBB", 3, 3, profile.window_scale)
    if sack and profile.sack:
        opts += b"\x01\x01" + b"\x04\x02"
    return opts


def _synack_options(server: StackProfile, client: StackProfile, *, sack: bool) -> bytes:
    opts = struct.pack(">BBH", 2, 4, server.mss)
    if server.window_scale is not None and client.window_scale is not None:
        opts += b"\x01" + struct.pack(">BBB", 3, 3, server.window_scale)
    if sack:
        opts += b"\x01\x01" + b"\x04\x02"
    return opts


def _window_field(profile: StackProfile, *, scaled: bool) -> int:
    if scaled and profile.window_scale is not None:
        return min(0xFFFF, profile.window >> profile.window_scale)
    return min(0xFFFF, profile.window)


# ----------------------------------------------------------------------------- payloads


def dns_query(ident: int, name: str, *, qtype: int = dpkt.dns.DNS_A, mdns: bool = False) -> bytes:
    msg = dpkt.dns.DNS(id=ident, op=0 if mdns else dpkt.dns.DNS_RD, qd=[], an=[], ns=[], ar=[])
    msg.qd.append(dpkt.dns.DNS.Q(name=name, type=qtype, cls=dpkt.dns.DNS_IN))
    return bytes(msg)


def dns_answer(ident: int, name: str, addresses: Sequence[str], *, ttl_s: int) -> bytes:
    """A recursive resolver's answer: the question plus one A record per address."""
    msg = dpkt.dns.DNS(
        id=ident,
        op=dpkt.dns.DNS_RD | dpkt.dns.DNS_RA,
        qr=dpkt.dns.DNS_R,
        qd=[dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)],
        an=[],
        ns=[],
        ar=[],
    )
    msg.qr = dpkt.dns.DNS_R
    for addr in addresses:
        rr = dpkt.dns.DNS.RR(
            name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN, ttl=ttl_s, ip=ip_bytes(addr)
        )
        rr.rlen = 4
        msg.an.append(rr)
    return bytes(msg)


NTP_EPOCH_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01


def ntp_timestamp(t_ns: int) -> bytes:
    sec, frac_ns = divmod(t_ns, NS_PER_S)
    return struct.pack(">II", sec + NTP_EPOCH_OFFSET_S, (frac_ns << 32) // NS_PER_S)


def ntp_client(t_ns: int) -> bytes:
    """SNTPv4 client request (mode 3): 48 bytes, only the transmit timestamp set."""
    return (
        struct.pack(">BBbb", (0 << 6) | (4 << 3) | 3, 0, 6, -20) + bytes(36) + ntp_timestamp(t_ns)
    )


def ntp_server(request_ns: int, t_ns: int, *, ref_id: bytes = b"PTB\x00") -> bytes:
    """Stratum-1 server reply (mode 4) to a request sent at `request_ns`."""
    head = struct.pack(">BBbb", (0 << 6) | (4 << 3) | 4, 1, 6, -23)
    head += struct.pack(">II", 0, 16) + ref_id
    return (
        head
        + ntp_timestamp(t_ns - 16 * NS_PER_S)
        + ntp_timestamp(request_ns)
        + (ntp_timestamp(t_ns - 200_000) + ntp_timestamp(t_ns - 180_000))
    )


def http_request(method: str, path: str, host: str, *, user_agent: str, extra: str = "") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
        f"Accept: */*\r\n{extra}Connection: close\r\n\r\n"
    ).encode()


def http_response(
    status: str, body: bytes, *, content_type: str, server: str, extra: str = ""
) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nServer: {server}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode() + body


def modbus_read_request(transaction: int, unit: int, address: int, count: int) -> bytes:
    """Modbus/TCP MBAP header + function 3 (read holding registers)."""
    pdu = struct.pack(">BHH", 3, address, count)
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


def modbus_read_response(transaction: int, unit: int, registers: Sequence[int]) -> bytes:
    pdu = struct.pack(">BB", 3, 2 * len(registers)) + b"".join(
        struct.pack(">H", r & 0xFFFF) for r in registers
    )
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


def coe_v1(node: int, block: int, values: Sequence[int], units: Sequence[int]) -> bytes:
    """CAN-over-Ethernet V1 (5441/udp): node, block, four 16-bit values, four unit bytes."""
    return (
        struct.pack("<BB", node, block)
        + b"".join(struct.pack("<h", v) for v in values)
        + bytes(units)
    )


def coe_v2(entries: Sequence[tuple[int, int, int, int]]) -> bytes:
    """CAN-over-Ethernet V2 (5442/udp): version header, then (node, index, unit, value32)."""
    body = b"".join(struct.pack("<BHBi", n, i, u, v) for n, i, u, v in entries)
    return struct.pack("<BBBB", 2, 0, 4 + len(body), len(entries)) + body


def tftp_request(opcode: int, filename: str, mode: str = "octet") -> bytes:
    return struct.pack(">H", opcode) + filename.encode() + b"\x00" + mode.encode() + b"\x00"


def tftp_data(block: int, data: bytes) -> bytes:
    return struct.pack(">HH", 3, block) + data


def tftp_ack(block: int) -> bytes:
    return struct.pack(">HH", 4, block)


TFTP_RRQ, TFTP_WRQ = 1, 2


def _vec(width: int, data: bytes) -> bytes:
    return len(data).to_bytes(width, "big") + data


def _tls_ext(kind: int, data: bytes) -> bytes:
    return struct.pack(">H", kind) + _vec(2, data)


def tls_client_hello(rng: random.Random, sni: str, *, tls13: bool = True) -> bytes:
    """One TLS record holding a ClientHello with SNI, as a current browser sends it."""
    suites = [0x1301, 0x1302, 0x1303] if tls13 else []
    suites += [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D]
    sni_entry = b"\x00" + _vec(2, sni.encode())
    exts = _tls_ext(0x0000, _vec(2, sni_entry))
    exts += _tls_ext(0x0017, b"")  # extended_master_secret
    exts += _tls_ext(0xFF01, b"\x00")  # renegotiation_info
    exts += _tls_ext(0x000A, _vec(2, struct.pack(">HHH", 0x001D, 0x0017, 0x0018)))
    exts += _tls_ext(0x000B, _vec(1, b"\x00"))
    exts += _tls_ext(
        0x000D, _vec(2, struct.pack(">6H", 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501))
    )
    if tls13:
        exts += _tls_ext(0x002B, _vec(1, struct.pack(">HH", 0x0304, 0x0303)))
        exts += _tls_ext(0x002D, _vec(1, b"\x01"))
        exts += _tls_ext(0x0033, _vec(2, struct.pack(">H", 0x001D) + _vec(2, rng.randbytes(32))))
    body = struct.pack(">H", 0x0303) + rng.randbytes(32) + _vec(1, rng.randbytes(32))
    body += _vec(2, b"".join(struct.pack(">H", s) for s in suites)) + _vec(1, b"\x00")
    body += _vec(2, exts)
    handshake = b"\x01" + _vec(3, body)
    return b"\x16\x03\x01" + _vec(2, handshake)


def tls_server_flight(rng: random.Random, client_hello: bytes, *, app_data_bytes: int) -> bytes:
    """TLS 1.3 ServerHello + ChangeCipherSpec + encrypted records (certificate etc.)."""
    session_id = client_hello[44:76]
    exts = _tls_ext(0x002B, struct.pack(">H", 0x0304))
    exts += _tls_ext(0x0033, struct.pack(">H", 0x001D) + _vec(2, rng.randbytes(32)))
    body = struct.pack(">H", 0x0303) + rng.randbytes(32) + _vec(1, session_id)
    body += struct.pack(">HB", 0x1301, 0) + _vec(2, exts)
    hello = b"\x16\x03\x03" + _vec(2, b"\x02" + _vec(3, body))
    ccs = b"\x14\x03\x03\x00\x01\x01"
    return hello + ccs + tls_app_data(rng, app_data_bytes)


def tls_app_data(rng: random.Random, n: int) -> bytes:
    """Encrypted TLS application data records totalling about `n` payload bytes."""
    out = b""
    while n > 0:
        size = min(n, 16384)
        out += b"\x17\x03\x03" + _vec(2, rng.randbytes(size))
        n -= size
    return out


def tls_client_finish(rng: random.Random) -> bytes:
    """The client's ChangeCipherSpec + encrypted Finished."""
    return b"\x14\x03\x03\x00\x01\x01" + tls_app_data(rng, 53)


def dhcp_message(
    *,
    op: int,
    xid: int,
    client_mac: str,
    msg_type: int,
    yiaddr: str = "0.0.0.0",
    siaddr: str = "0.0.0.0",
    options: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """A BOOTP/DHCP message (RFC 2131) with the magic cookie and the given options."""
    opts = [(dpkt.dhcp.DHCP_OPT_MSGTYPE, bytes([msg_type])), *options]
    msg = dpkt.dhcp.DHCP(
        op=op,
        xid=xid,
        flags=0,
        chaddr=mac_bytes(client_mac) + bytes(10),
        yiaddr=int.from_bytes(ip_bytes(yiaddr), "big"),
        siaddr=int.from_bytes(ip_bytes(siaddr), "big"),
        opts=opts,
    )
    return bytes(msg)


# ----------------------------------------------------------------------------- writers


@dataclass(frozen=True)
class Interface:
    """One pcapng interface description block."""

    name: str
    description: str
    linktype: int = LINKTYPE_ETHERNET
    snaplen: int = 262144
    tsresol: int = 6  # if_tsresol: timestamps in units of 10^-tsresol seconds


@dataclass(frozen=True)
class Written:
    data: bytes
    packets: int


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _options(items: Iterable[tuple[int, bytes]]) -> bytes:
    body = b"".join(_option(c, v) for c, v in items)
    return body + struct.pack("<HH", 0, 0) if body else b""


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def write_pcapng(
    frames: Sequence[Frame], interfaces: Sequence[Interface], *, userappl: str
) -> Written:
    """pcapng: one section, one IDB per interface, one EPB per frame (little endian).
    The SHB carries only `shb_userappl`; no hardware, OS or time is embedded."""
    out = io.BytesIO()
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _options([(4, userappl.encode())])
    out.write(_block(0x0A0D0D0A, shb))
    for itf in interfaces:
        opts = [(2, itf.name.encode()), (3, itf.description.encode())]
        if itf.tsresol != 6:
            opts.append((9, bytes([itf.tsresol])))
        idb = struct.pack("<HHI", itf.linktype, 0, itf.snaplen) + _options(opts)
        out.write(_block(0x00000001, idb))
    for frame in frames:
        units = frame.ts_ns // (10 ** (9 - interfaces[frame.iface].tsresol))
        epb = struct.pack(
            "<IIIII", frame.iface, units >> 32, units & 0xFFFFFFFF, len(frame.data), len(frame.data)
        )
        out.write(_block(0x00000006, epb + _pad4(frame.data)))
    return Written(out.getvalue(), len(frames))


def write_pcap(
    frames: Sequence[Frame], *, linktype: int, nanosecond: bool = False, snaplen: int = 262144
) -> Written:
    """Classic libpcap file, little endian, micro- or nanosecond timestamps."""
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = io.BytesIO()
    out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    for frame in frames:
        sec, frac_ns = divmod(frame.ts_ns, NS_PER_S)
        frac = frac_ns if nanosecond else frac_ns // NS_PER_US
        out.write(struct.pack("<IIII", sec, frac, len(frame.data), len(frame.data)))
        out.write(frame.data)
    return Written(out.getvalue(), len(frames))


# Linux packet types (include/uapi/linux/if_packet.h) as SLL2 records carry them.
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = 0, 1, 2, 3, 4
ARPHRD_ETHER = 1


def to_sll2(frame: Frame, *, if_index: int, local_macs: frozenset[str] = frozenset()) -> Frame:
    """Rewrite an untagged Ethernet frame as `tcpdump -i any` records it (LINKTYPE_LINUX_SLL2):
    protocol, interface index, ARPHRD_ETHER, packet type, the source MAC."""
    dst, src, ethertype = frame.data[0:6], frame.data[6:12], frame.data[12:14]
    dst_mac = ":".join(f"{b:02x}" for b in dst)
    src_mac = ":".join(f"{b:02x}" for b in src)
    if src_mac in local_macs:
        kind = PACKET_OUTGOING
    elif dst_mac in local_macs:
        kind = PACKET_HOST
    elif dst == b"\xff" * 6:
        kind = PACKET_BROADCAST
    elif dst[0] & 1:
        kind = PACKET_MULTICAST
    else:
        kind = PACKET_OTHERHOST
    head = ethertype + b"\x00\x00" + struct.pack(">IHBB", if_index, ARPHRD_ETHER, kind, 6)
    return Frame(
        ts_ns=frame.ts_ns, data=head + src + b"\x00\x00" + frame.data[14:], iface=frame.iface
    )


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no file name and mtime 0, so the output depends only on `data`."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as fh:
        fh.write(data)
    return out.getvalue()


@dataclass(frozen=True)
class SampleFile:
    """What a scenario wrote: its file name and how many packets went in."""

    name: str
    packets: int
    extra: dict[str, int] = field(default_factory=dict)
