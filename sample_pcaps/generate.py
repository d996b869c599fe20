"""Regenerate every sample capture in this folder, byte for byte.

    python sample_pcaps/generate.py [OUTDIR]        # default: the folder of this script

Each scenario is a function building a `Trace` (seeded RNG, fixed start time
2026-03-02 08:00:00 UTC); nothing depends on the clock, the host or dict/set order.
The traffic follows the vendor documents in ../../shared/seeds/ (see README.md here).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dpkt

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script from a checkout without install
    sys.path.insert(0, str(HERE.parent))
if str(HERE) not in sys.path:  # synth.py lives beside this script, not in the package
    sys.path.insert(0, str(HERE))

from synth import (  # noqa: E402
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    TFTP_RRQ,
    TFTP_WRQ,
    Frame,
    Host,
    Interface,
    Trace,
    Written,
    broadcast,
    coe_v1,
    coe_v2,
    dhcp_message,
    dns_answer,
    dns_query,
    gzip_bytes,
    http_request,
    http_response,
    modbus_read_request,
    modbus_read_response,
    multicast,
    ntp_client,
    ntp_server,
    remote,
    seconds,
    tftp_ack,
    tftp_data,
    tftp_request,
    tls_app_data,
    tls_client_finish,
    tls_client_hello,
    tls_server_flight,
    to_sll2,
    ts_ns,
    write_pcap,
    write_pcapng,
)

START_NS = ts_ns(2026, 3, 2, 8, 0, 0)  # Monday morning, fixed so output never changes
MS = 1_000_000  # nanoseconds per millisecond
USERAPPL = "pcapclass sample_pcaps/generate.py"

WINDOWS_PING = b"abcdefghijklmnopqrstuvwabcdefghi"  # payload of Windows ping.exe (32 bytes)

# TA's servers (documentation addresses, RFC 5737) as the C.M.I. document names them.
TA_DNS = {
    "www.ta.co.at": "198.51.100.10",
    "cmi.ta.co.at": "198.51.100.20",
    "cloudmail.services.ta.co.at": "198.51.100.21",
    "api.ta.co.at": "198.51.100.30",
    "pool.ntp.org": "192.0.2.123",
}
CMI_FIRMWARE = "1.43.1"
CMI_AGENT = f"CMI/{CMI_FIRMWARE}"


# ============================================================================ C.M.I.


@dataclass(frozen=True)
class CmiSite:
    cmi: Host
    resolver: Host  # the user-defined DNS server (the site's router)
    gateway: Host  # router towards the internet
    ta: dict[str, Host]  # TA host name -> its address behind the gateway


def ta_hosts(gateway: Host) -> dict[str, Host]:
    return {name: remote(gateway, ip, ttl=52) for name, ip in TA_DNS.items()}


def dns_lookup(tr: Trace, t_ns: int, client: Host, resolver: Host, name: str, addr: str) -> int:
    """One A query/answer over UDP 53; returns the time of the answer."""
    ident = tr.rng.randrange(1 << 16)
    rtt = (12 + tr.rng.randrange(30)) * MS
    return tr.udp_exchange(
        t_ns,
        client,
        resolver,
        tr.ephemeral_port(client),
        53,
        dns_query(ident, name),
        dns_answer(ident, name, [addr], ttl_s=300),
        rtt_ns=rtt,
    )


def cmi_lookup(tr: Trace, t_ns: int, site: CmiSite, name: str) -> int:
    return dns_lookup(tr, t_ns, site.cmi, site.resolver, name, TA_DNS[name])


def cmi_ntp(tr: Trace, t_ns: int, site: CmiSite) -> None:
    """SNTP query to pool.ntp.org (time source "WEB"), after resolving the name."""
    t = cmi_lookup(tr, t_ns, site, "pool.ntp.org") + 3 * MS
    server = site.ta["pool.ntp.org"]
    rtt = (18 + tr.rng.randrange(10)) * MS
    tr.udp_exchange(
        t, site.cmi, server, 123, 123, ntp_client(t), ntp_server(t, t + rtt), rtt_ns=rtt
    )


def cmi_update_check(tr: Trace, t_ns: int, site: CmiSite) -> None:
    """The periodic firmware check: HTTP GET to www.ta.co.at:80, server closes."""
    t = cmi_lookup(tr, t_ns, site, "www.ta.co.at") + 2 * MS
    www = site.ta["www.ta.co.at"]
    s = tr.tcp(site.cmi, www, tr.ephemeral_port(site.cmi), 80, at_ns=t, rtt_ns=24 * MS).open()
    body = f"{CMI_FIRMWARE}\r\n".encode()
    s.exchange(
        http_request("GET", "/downloads/cmi/version.txt", "www.ta.co.at", user_agent=CMI_AGENT),
        http_response("200 OK", body, content_type="text/plain", server="Apache"),
        after_s=0.0005,
        think_s=0.004,
    )
    s.close(by_client=False, after_s=0.001)


def cmi_permanent(
    tr: Trace,
    site: CmiSite,
    name: str,
    port: int,
    *,
    begin_s: float,
    end_s: float,
    period_s: float,
    resume: bool,
) -> None:
    """A permanent C.M.I. connection (40001 portal, 40003 logging) with periodic small
    exchanges both ways; `resume` = it was opened before the capture started."""
    server = site.ta[name]
    t0 = tr.at(begin_s)
    s = tr.tcp(site.cmi, server, tr.ephemeral_port(site.cmi), port, at_ns=t0, rtt_ns=23 * MS)
    s.resume() if resume else s.open()
    t = begin_s + 0.5
    turn = 0
    while t < end_s:
        gap = period_s + tr.jitter(period_s / 10)
        t += gap
        if t >= end_s:
            break
        turn += 1
        if port == 40001 and turn % 4 == 0:  # the portal asks the C.M.I. for a page
            s.exchange(
                tr.random_bytes(64),
                tr.random_bytes(1800 + tr.rng.randrange(600)),
                after_s=gap,
                from_client=False,
            )
        elif port == 40003:  # logging values go up, the server acknowledges
            s.exchange(tr.random_bytes(180 + tr.rng.randrange(40)), tr.random_bytes(8), after_s=gap)
        else:  # heartbeat
            s.exchange(tr.random_bytes(16), tr.random_bytes(16), after_s=gap)


def cmi_mail(tr: Trace, t_ns: int, site: CmiSite) -> None:
    """E-mail service: a temporary 40002 connection, closed by the C.M.I. after the transfer."""
    t = cmi_lookup(tr, t_ns, site, "cloudmail.services.ta.co.at") + 2 * MS
    mail = site.ta["cloudmail.services.ta.co.at"]
    s = tr.tcp(site.cmi, mail, tr.ephemeral_port(site.cmi), 40002, at_ns=t, rtt_ns=26 * MS).open()
    s.exchange(tr.random_bytes(48), tr.random_bytes(12), after_s=0.001)
    s.exchange(tr.random_bytes(420), tr.random_bytes(12), after_s=0.002)
    s.close(by_client=True, after_s=0.05)


def modbus_poll(
    tr: Trace, master: Host, slave: Host, *, begin_s: float, end_s: float, period_s: float
) -> None:
    """A Modbus/TCP master polling holding registers over one connection."""
    s = tr.tcp(master, slave, tr.ephemeral_port(master), 502, at_ns=tr.at(begin_s), rtt_ns=MS // 2)
    s.open()
    t, transaction = begin_s, 0
    values = [215, 480, 562, 0, 1, 31]
    while t + period_s < end_s:
        gap = period_s + tr.jitter(0.05)
        t += gap
        transaction += 1
        values = [v + tr.rng.randrange(-2, 3) for v in values]
        s.exchange(
            modbus_read_request(transaction, 1, 0, len(values)),
            modbus_read_response(transaction, 1, values),
            after_s=gap,
            think_s=0.003,
        )
    s.close(by_client=True, after_s=0.5)


def coe_traffic(tr: Trace, a: Host, b: Host, *, begin_s: float, end_s: float) -> None:
    """CoE V1 (5441) from a to b and CoE V2 (5442) from b to a, every minute or so."""
    t = begin_s
    while t < end_s:
        at = tr.at(t)
        for block in (0, 1):
            values = [tr.rng.randrange(-50, 900) for _ in range(4)]
            tr.udp(at + block * MS, a, b, 5441, 5441, coe_v1(1, block, values, [1, 1, 1, 0]))
        entries = [(2, i + 1, 1, tr.rng.randrange(100, 700)) for i in range(3)]
        tr.udp(at + seconds(0.3), b, a, 5442, 5442, coe_v2(entries))
        t += 60 + tr.jitter(2.0)


# ============================================================================ Sesam


@dataclass(frozen=True)
class SesamSite:
    sescomm: Host  # SesComm server service + Firebird (sesam_db) on one Windows PC
    config_pc: Host  # SesConfigPro / ISENetConfig workstation
    isenets: tuple[Host, ...]


def isenet_answer(tr: Trace, isenet: Host, serial: int) -> bytes:
    """A search answer: serial number, firmware version, MAC (proprietary layout)."""
    text = f"ISENet SN={serial:08d} FW=V6.71 ".encode()
    return text + tr.random_bytes(96 - len(text))


def sesam_search(tr: Trace, t_ns: int, pc: Host, isenets: Sequence[Host]) -> None:
    """Search: PC:41797 -> 255.255.255.255:41797, each ISENet answers unicast 41797 -> 41797."""
    tr.udp(t_ns, pc, broadcast(like=pc), 41797, 41797, b"\x00\x01ISENET?" + bytes(8))
    for i, isenet in enumerate(isenets):
        delay = (4 + 7 * i + tr.rng.randrange(5)) * MS
        tr.udp(t_ns + delay, isenet, pc, 41797, 41797, isenet_answer(tr, isenet, 21040100 + i))


def sesam_manual(tr: Trace, t_ns: int, pc: Host, isenet: Host, serial: int) -> int:
    """Manual connection by IP: one 41797 request/answer pair."""
    rtt = (2 + tr.rng.randrange(3)) * MS
    return tr.udp_exchange(
        t_ns,
        pc,
        isenet,
        41797,
        41797,
        b"\x00\x02GETINFO" + bytes(8),
        isenet_answer(tr, isenet, serial),
        rtt_ns=rtt,
    )


def sesam_ping(tr: Trace, t_ns: int, pc: Host, isenet: Host, *, seq: int) -> None:
    tr.icmp_echo(t_ns, pc, isenet, ident=1, seq=seq, rtt_ns=MS, payload=WINDOWS_PING)


def sescomm_sync(
    tr: Trace, site: SesamSite, isenet: Host, *, begin_s: float, end_s: float, period_s: float
) -> None:
    """Process ("Abarbeiten"): ping, then SesComm -> ISENet:41796, polling until end_s."""
    sesam_ping(tr, tr.at(begin_s), site.sescomm, isenet, seq=tr.rng.randrange(100, 900))
    s = tr.tcp(
        site.sescomm,
        isenet,
        tr.ephemeral_port(site.sescomm),
        41796,
        at_ns=tr.at(begin_s + 0.05),
        rtt_ns=2 * MS,
    ).open()
    t = begin_s + 0.05
    while t + period_s < end_s:
        gap = period_s + tr.jitter(period_s / 8)
        t += gap
        s.exchange(tr.random_bytes(24), tr.random_bytes(40 + tr.rng.randrange(60)), after_s=gap)
    s.close(by_client=True, after_s=0.2)


def sesam_administrate(tr: Trace, t_ns: int, pc: Host, isenet: Host, serial: int) -> None:
    """Administrate: 41797 exchange, ping, TCP to ISENet:41796 (configuration download)."""
    t = sesam_manual(tr, t_ns, pc, isenet, serial) + 40 * MS
    sesam_ping(tr, t, pc, isenet, seq=tr.rng.randrange(100, 900))
    t += 300 * MS
    s = tr.tcp(pc, isenet, tr.ephemeral_port(pc), 41796, at_ns=t, rtt_ns=2 * MS).open()
    for _ in range(6):
        s.exchange(tr.random_bytes(256), tr.random_bytes(16), after_s=0.08)
    s.close(by_client=True, after_s=0.3)


def sesam_config_rpc(tr: Trace, t_ns: int, client: Host, sescomm: Host, *, calls: int) -> None:
    """SesConfigPro -> SesComm RPC on 41801 (software 2.1-3 and later)."""
    s = tr.tcp(client, sescomm, tr.ephemeral_port(client), 41801, at_ns=t_ns, rtt_ns=MS // 2)
    s.open()
    for _ in range(calls):
        s.exchange(
            tr.random_bytes(60 + tr.rng.randrange(80)),
            tr.random_bytes(120 + tr.rng.randrange(900)),
            after_s=0.2 + tr.rng.random(),
        )
    s.close(by_client=True, after_s=1.0)


def sesam_database(tr: Trace, t_ns: int, client: Host, db: Host) -> None:
    """Firebird: password service 41799/udp (encryption negotiation), then 41800/tcp."""
    port = tr.ephemeral_port(client)
    tr.udp_exchange(
        t_ns, client, db, port, 41799, tr.random_bytes(32), tr.random_bytes(48), rtt_ns=MS // 2
    )
    s = tr.tcp(client, db, tr.ephemeral_port(client), 41800, at_ns=t_ns + 20 * MS, rtt_ns=MS // 2)
    s.open()
    for _ in range(5):
        s.exchange(tr.random_bytes(100 + tr.rng.randrange(200)), tr.random_bytes(900), after_s=0.05)
    s.close(by_client=True, after_s=2.0)


def tftp_transfer(
    tr: Trace, t_ns: int, client: Host, server: Host, *, opcode: int, filename: str, size: int
) -> None:
    """TFTP (RFC 1350): request to 69, the server answers from a new port; lock-step
    DATA/ACK blocks of 512 bytes, the last one short."""
    cport = tr.ephemeral_port(client)
    sport = 1024 + tr.rng.randrange(3000)
    tr.udp(t_ns, client, server, cport, 69, tftp_request(opcode, filename))
    data = tr.random_bytes(size)
    blocks = [data[i : i + 512] for i in range(0, size + 1, 512)]
    sender, receiver = (client, server) if opcode == TFTP_WRQ else (server, client)
    s_port, r_port = (cport, sport) if opcode == TFTP_WRQ else (sport, cport)
    t = t_ns + 3 * MS
    if opcode == TFTP_WRQ:
        tr.udp(t, server, client, sport, cport, tftp_ack(0))
        t += MS
    for n, block in enumerate(blocks, start=1):
        tr.udp(t, sender, receiver, s_port, r_port, tftp_data(n, block))
        tr.udp(t + 2 * MS, receiver, sender, r_port, s_port, tftp_ack(n))
        t += 3 * MS + tr.rng.randrange(2000) * 1000


# ============================================================================ GEMOS


def pro02_session(
    tr: Trace,
    client: Host,
    server: Host,
    port: int,
    *,
    begin_s: float,
    end_s: float,
    period_s: float,
    resume: bool,
    tls: bool = False,
) -> None:
    """A pro02 client connection (12000 plain, 12022 AES, 12043 TLS) with event traffic."""
    sport = tr.ephemeral_port(client)
    s = tr.tcp(client, server, sport, port, at_ns=tr.at(begin_s), rtt_ns=MS // 2)
    if resume:
        s.resume()
    else:
        s.open()
        if tls:
            hello = tls_client_hello(tr.rng, "gemos.local", tls13=True)
            s.exchange(hello, tls_server_flight(tr.rng, hello, app_data_bytes=2400), after_s=0.001)
            s.send(True, tls_client_finish(tr.rng), after_s=0.002)
    t = begin_s
    while t + period_s < end_s:
        gap = period_s + tr.jitter(period_s / 5)
        t += gap
        if tls:
            s.exchange(tls_app_data(tr.rng, 90), tls_app_data(tr.rng, 300), after_s=gap)
        else:
            s.exchange(
                tr.random_bytes(40 + tr.rng.randrange(40)),
                tr.random_bytes(80 + tr.rng.randrange(400)),
                after_s=gap,
                from_client=tr.rng.random() < 0.5,
            )


def server_link(
    tr: Trace, a: Host, b: Host, port: int, *, begin_s: float, end_s: float, period_s: float
) -> None:
    """A permanent server-to-server link (12002 sync, 12290 HA agents), opened before."""
    s = tr.tcp(a, b, tr.ephemeral_port(a), port, at_ns=tr.at(begin_s), rtt_ns=MS // 4).resume()
    t = begin_s
    while t + period_s < end_s:
        gap = period_s + tr.jitter(period_s / 10)
        t += gap
        s.exchange(tr.random_bytes(32 + tr.rng.randrange(64)), tr.random_bytes(32), after_s=gap)


def http_get(
    tr: Trace,
    t_ns: int,
    client: Host,
    server: Host,
    port: int,
    path: str,
    *,
    host_header: str,
    body_bytes: int,
    status: str = "200 OK",
    agent: str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/123.0",
) -> None:
    """One HTTP/1.1 request/response on its own connection, closed by the server."""
    s = tr.tcp(client, server, tr.ephemeral_port(client), port, at_ns=t_ns, rtt_ns=MS // 2).open()
    page = b"<html><head><title>GEMOS</title></head><body>" + b"x" * body_bytes + b"</body></html>"
    s.exchange(
        http_request(
            "GET", path, f"{host_header}:{port}" if port != 80 else host_header, user_agent=agent
        ),
        http_response(status, page, content_type="text/html", server="gzrouter"),
        after_s=0.0005,
        think_s=0.01,
    )
    s.close(by_client=False, after_s=0.002)


def http_series(
    tr: Trace,
    *,
    start_s: float,
    step_s: float,
    body_bytes: tuple[int, int],
    visits: list[tuple[Host, Host, int, str]],
) -> None:
    """http_get for each (client, server, port, path), step_s apart from start_s; the
    server's address as Host header, bodies of first + i * increment bytes."""
    first, increment = body_bytes
    for i, (client, server, port, path) in enumerate(visits):
        http_get(
            tr,
            tr.at(start_s + step_s * i),
            client,
            server,
            port,
            path,
            host_header=server.ip,
            body_bytes=first + increment * i,
        )


def https_visit(
    tr: Trace,
    t_ns: int,
    client: Host,
    server: Host,
    sni: str,
    *,
    rtt_ns: int,
    down_bytes: int,
    port: int = 443,
) -> None:
    """A browser HTTPS visit: ClientHello with SNI, TLS 1.3 flight, some data, client closes."""
    s = tr.tcp(client, server, tr.ephemeral_port(client), port, at_ns=t_ns, rtt_ns=rtt_ns).open()
    hello = tls_client_hello(tr.rng, sni)
    s.exchange(hello, tls_server_flight(tr.rng, hello, app_data_bytes=3200), after_s=0.0003)
    s.send(True, tls_client_finish(tr.rng), after_s=0.001, ack=False)
    s.exchange(tls_app_data(tr.rng, 420), tls_app_data(tr.rng, down_bytes), after_s=0.0002)
    s.close(by_client=True, after_s=2.0 + tr.rng.random() * 5)


def gemos_discovery(tr: Trace, t_ns: int, client: Host, servers: Sequence[Host]) -> None:
    """UDP 12000 search broadcast; each GEMOS server answers unicast from 12000."""
    port = tr.ephemeral_port(client)
    tr.udp(t_ns, client, broadcast(like=client), port, 12000, b"GEMOS?" + tr.random_bytes(10))
    for i, server in enumerate(servers):
        tr.udp(t_ns + (1 + i) * MS, server, client, 12000, port, tr.random_bytes(64))


def comserver_link(
    tr: Trace,
    gemos: Host,
    box: Host,
    port: int,
    *,
    begin_s: float,
    end_s: float,
    period_s: float,
    resume: bool,
) -> None:
    """GEMOS server -> com server TCP port carrying serial data (e.g. a fire panel)."""
    s = tr.tcp(gemos, box, tr.ephemeral_port(gemos), port, at_ns=tr.at(begin_s), rtt_ns=MS)
    s.resume() if resume else s.open()
    t = begin_s
    while t + period_s < end_s:
        gap = period_s + tr.jitter(period_s / 4)
        t += gap
        s.exchange(b"\x02" + tr.random_bytes(10) + b"\x03", b"\x06", after_s=gap)


def lantronix_query(tr: Trace, t_ns: int, asker: Host, xport: Host) -> None:
    """Lantronix 30718/udp device query (00 00 00 F6) and its reply (00 00 00 F7 ...)."""
    tr.udp_exchange(
        t_ns,
        asker,
        xport,
        tr.ephemeral_port(asker),
        30718,
        b"\x00\x00\x00\xf6",
        b"\x00\x00\x00\xf7" + tr.random_bytes(26),
        rtt_ns=2 * MS,
    )


def xdr_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data + bytes(-len(data) % 4)


def firebird_session(tr: Trace, t_ns: int, client: Host, server: Host, port: int) -> None:
    """Firebird remote protocol: op_connect / op_accept, op_attach / op_response, detach."""
    s = tr.tcp(client, server, tr.ephemeral_port(client), port, at_ns=t_ns, rtt_ns=MS // 2).open()
    path = b"C:\\GEMOS\\DATA\\GEMOS.FDB"
    user = b"\x01\x05gemos\x04\x06techpc\x06\x00"
    prefs = b"".join(struct.pack(">5I", 0xFFFF800D - i, 1, 0, 5, 8 - i) for i in range(3))
    connect = struct.pack(">4I", 1, 19, 3, 1) + xdr_string(path) + struct.pack(">I", 3)
    connect += xdr_string(user) + prefs
    s.exchange(connect, struct.pack(">4I", 3, 0xFFFF800D, 1, 5), after_s=0.001)
    attach = struct.pack(">2I", 19, 0) + xdr_string(path) + xdr_string(b"\x01\x1c\x06SYSDBA")
    response = struct.pack(">2IQ", 9, 1, 0) + xdr_string(b"") + struct.pack(">2I", 1, 0)
    response += struct.pack(">I", 0)
    s.exchange(attach, response, after_s=0.001)
    s.exchange(
        struct.pack(">2I", 21, 1),
        struct.pack(">2IQ", 9, 0, 0) + xdr_string(b"") + struct.pack(">3I", 1, 0, 0),
        after_s=3.0,
    )
    s.close(by_client=True, after_s=0.01)


def ssh_session(tr: Trace, t_ns: int, client: Host, server: Host, *, minutes: float) -> None:
    """SSH: banners, binary KEXINIT packets, then encrypted traffic; client logs out."""
    s = tr.tcp(client, server, tr.ephemeral_port(client), 22, at_ns=t_ns, rtt_ns=MS // 2).open()
    s.send(False, b"SSH-2.0-OpenSSH_7.4\r\n", after_s=0.003)
    s.send(True, b"SSH-2.0-PuTTY_Release_0.81\r\n", after_s=0.002)
    s.exchange(ssh_kexinit(tr), ssh_kexinit(tr), after_s=0.001)
    s.exchange(ssh_packet(tr, 30, xdr_string(tr.random_bytes(32))), ssh_kex_reply(tr), after_s=0.01)
    s.send(True, ssh_packet(tr, 21, b""), after_s=0.002)
    t = 0.0
    while t < minutes * 60:
        gap = 2 + tr.rng.random() * 20
        t += gap
        s.exchange(
            tr.random_bytes(36 + 16 * tr.rng.randrange(3)),
            tr.random_bytes(52 + 16 * tr.rng.randrange(40)),
            after_s=gap,
        )
    s.close(by_client=True, after_s=0.5)


def ssh_packet(tr: Trace, msg: int, body: bytes) -> bytes:
    payload = bytes([msg]) + body
    pad = 8 - (5 + len(payload)) % 8
    if pad < 4:
        pad += 8
    return struct.pack(">IB", 1 + len(payload) + pad, pad) + payload + tr.random_bytes(pad)


def ssh_kexinit(tr: Trace) -> bytes:
    lists = [
        b"curve25519-sha256,ecdh-sha2-nistp256",
        b"ssh-rsa",
        b"chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
        b"chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
        b"hmac-sha2-256-etm@openssh.com",
        b"hmac-sha2-256-etm@openssh.com",
        b"none",
        b"none",
        b"",
        b"",
    ]
    body = tr.random_bytes(16) + b"".join(xdr_string_raw(x) for x in lists) + b"\x00" + bytes(4)
    return ssh_packet(tr, 20, body)


def xdr_string_raw(data: bytes) -> bytes:
    """An SSH `string`: uint32 length + bytes (no padding, unlike XDR)."""
    return struct.pack(">I", len(data)) + data


def ssh_kex_reply(tr: Trace) -> bytes:
    """KEX_ECDH_REPLY with an RSA host key (e = 65537, 2048-bit n) and a legacy ssh-rsa
    signature (an older OpenSSH 7.4 server), then NEWKEYS. Wireshark 4.0 decodes only
    ssh-rsa/ssh-dss signatures without an expert warning."""
    modulus = b"\x00\xc1" + tr.random_bytes(255)
    key = xdr_string_raw(b"ssh-rsa") + xdr_string_raw(b"\x01\x00\x01") + xdr_string_raw(modulus)
    sig = xdr_string_raw(b"ssh-rsa") + xdr_string_raw(tr.random_bytes(256))
    body = xdr_string_raw(key) + xdr_string_raw(tr.random_bytes(32)) + xdr_string_raw(sig)
    return ssh_packet(tr, 31, body) + ssh_packet(tr, 21, b"")


# ============================================================================ office


def dhcp_lease(tr: Trace, t_ns: int, pc: Host, server: Host, *, hostname: str) -> None:
    """DORA: DISCOVER/REQUEST broadcast from 0.0.0.0:68, OFFER/ACK from the server:67."""
    xid = tr.rng.randrange(1 << 32)
    nobody = Host(ip="0.0.0.0", mac=pc.mac, os=pc.os, vlan=pc.vlan, iface=pc.iface)
    bcast = broadcast(like=pc)
    opts_c = [(12, hostname.encode()), (55, bytes([1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119]))]
    lease = [
        (54, bytes(map(int, server.ip.split(".")))),
        (51, struct.pack(">I", 864000)),
        (1, bytes([255, 255, 255, 0])),
        (3, bytes(map(int, server.ip.split(".")))),
        (6, bytes(map(int, server.ip.split(".")))),
    ]
    req = [(50, bytes(map(int, pc.ip.split(".")))), (54, lease[0][1]), *opts_c]
    steps = [
        (nobody, bcast, 68, 67, dict(op=1, msg_type=1, options=opts_c)),
        (
            server,
            bcast,
            67,
            68,
            dict(op=2, msg_type=2, yiaddr=pc.ip, siaddr=server.ip, options=lease),
        ),
        (nobody, bcast, 68, 67, dict(op=1, msg_type=3, options=req)),
        (
            server,
            bcast,
            67,
            68,
            dict(op=2, msg_type=5, yiaddr=pc.ip, siaddr=server.ip, options=lease),
        ),
    ]
    for i, (src, dst, sport, dport, kw) in enumerate(steps):
        tr.udp(
            t_ns + i * 4 * MS,
            src,
            dst,
            sport,
            dport,
            dhcp_message(xid=xid, client_mac=pc.mac, **kw),
        )


def mdns_query(tr: Trace, t_ns: int, pc: Host, pc6: Host | None, service: str) -> None:
    """mDNS PTR query to 224.0.0.251:5353 (and ff02::fb from the IPv6 link-local address)."""
    query = dns_query(0, service, qtype=12, mdns=True)
    tr.udp(t_ns, pc, multicast("224.0.0.251", like=pc), 5353, 5353, query)
    if pc6 is not None:
        tr.udp(t_ns + 200_000, pc6, multicast("ff02::fb", like=pc6), 5353, 5353, query)


def netbios_name(name: str, suffix: int) -> bytes:
    """First-level encoded NetBIOS name (RFC 1001 14.1), as a DNS label."""
    raw = name.upper().ljust(15).encode()[:15] + bytes([suffix])
    encoded = b"".join(bytes([0x41 + (b >> 4), 0x41 + (b & 15)]) for b in raw)
    return b"\x20" + encoded + b"\x00"


def windows_chatter(tr: Trace, t_ns: int, pc: Host, pc6: Host, *, subnet_bcast: str) -> None:
    """What a Windows PC says on its own after boot: IPv6 router solicitation, LLMNR and
    NetBIOS name queries for WPAD, an SSDP M-SEARCH."""
    mac = bytes(int(x, 16) for x in pc6.mac.split(":"))
    rs = dpkt.icmp6.ICMP6(type=133, code=0, data=bytes(4) + b"\x01\x01" + mac)
    tr.ip(t_ns, pc6, multicast("ff02::2", like=pc6), dpkt.ip.IP_PROTO_ICMP6, rs, df=False)
    llmnr = dns_query(tr.rng.randrange(1 << 16), "wpad", mdns=True)
    tr.udp(t_ns + 2 * MS, pc, multicast("224.0.0.252", like=pc), tr.ephemeral_port(pc), 5355, llmnr)
    nbns = struct.pack(">HHHHHH", tr.rng.randrange(1 << 16), 0x0110, 1, 0, 0, 0)
    nbns += netbios_name("WPAD", 0) + struct.pack(">HH", 0x20, 1)
    tr.udp(t_ns + 4 * MS, pc, broadcast(subnet_bcast, like=pc), 137, 137, nbns)
    ssdp = (
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
        b"MX: 1\r\nST: urn:dial-multiscreen-org:service:dial:1\r\n\r\n"
    )
    tr.udp(
        t_ns + 6 * MS, pc, multicast("239.255.255.250", like=pc), tr.ephemeral_port(pc), 1900, ssdp
    )


def arp_round(tr: Trace, t_ns: int, asker: Host, target: Host) -> None:
    tr.arp(t_ns, asker, target.ip, answer=target, rtt_ns=300_000)


# ============================================================================ scenarios


def cmi_site() -> Sequence[Frame]:
    """A heating plant room: C.M.I. booting (ARP, DNS, NTP, portal + logging connections,
    update check), a mail, a second C.M.I. exchanging CoE, a PLC polling Modbus."""
    tr = Trace(seed=1001, start_ns=START_NS)
    router = Host(ip="192.168.1.1", mac="3c:a6:2f:5e:81:01", os="linux")
    cmi = Host(ip="192.168.1.40", mac="3c:cd:5a:01:2b:7e", os="embedded")
    cmi2 = Host(ip="192.168.1.41", mac="3c:cd:5a:01:3f:c2", os="embedded")
    plc = Host(ip="192.168.1.60", mac="00:1b:1b:6a:40:11", os="embedded")
    site = CmiSite(cmi=cmi, resolver=router, gateway=router, ta=ta_hosts(router))
    duration = 600.0
    arp_round(tr, tr.at(0.2), cmi, router)
    cmi_ntp(tr, tr.at(0.5), site)
    for name in ("cmi.ta.co.at", "api.ta.co.at"):
        cmi_lookup(tr, tr.at(1.0 if name.startswith("cmi") else 1.4), site, name)
    cmi_permanent(
        tr, site, "cmi.ta.co.at", 40001, begin_s=1.1, end_s=duration, period_s=30, resume=False
    )
    cmi_permanent(
        tr, site, "api.ta.co.at", 40003, begin_s=1.5, end_s=duration, period_s=60, resume=False
    )
    cmi_update_check(tr, tr.at(5.0), site)
    cmi_mail(tr, tr.at(187.0), site)
    cmi_update_check(tr, tr.at(305.0), site)
    cmi_ntp(tr, tr.at(520.0), site)
    arp_round(tr, tr.at(9.0), plc, cmi)
    modbus_poll(tr, plc, cmi, begin_s=10.0, end_s=duration - 5, period_s=10.0)
    arp_round(tr, tr.at(20.0), cmi2, cmi)
    coe_traffic(tr, cmi, cmi2, begin_s=21.0, end_s=duration)
    return tr.frames()


def sesam_hosts(*, net: str, iface: int) -> tuple[SesamSite, Host]:
    """SesComm + Firebird PC, configuration PC, four ISENets (Lantronix OUI 00:20:4a),
    and a service laptop; `net` is the first three octets."""
    site = SesamSite(
        sescomm=Host(ip=f"{net}.10", mac="84:7b:eb:21:5c:10", os="windows", iface=iface),
        config_pc=Host(ip=f"{net}.50", mac="64:4e:d7:9a:03:50", os="windows", iface=iface),
        isenets=tuple(
            Host(
                ip=f"{net}.{201 + i}",
                mac=f"00:20:4a:c4:1{i}:{0x3A + 7 * i:02x}",
                os="embedded",
                iface=iface,
            )
            for i in range(4)
        ),
    )
    laptop = Host(ip=f"{net}.77", mac="d4:81:d7:5e:77:01", os="windows", iface=iface)
    return site, laptop


def sesam_site() -> Sequence[Frame]:
    """An access-control LAN, 15 minutes: search, SesComm <-> ISENet sync, the config PC
    talking to SesComm (41801) and Firebird (41800/41799), administrate, a TFTP firmware
    update and a debug session (rare), a service laptop's telnet check of 41796 (allowed)."""
    tr = Trace(seed=2002, start_ns=START_NS)
    site, laptop = sesam_hosts(net="192.168.20", iface=0)
    duration = 900.0
    pc, sescomm = site.config_pc, site.sescomm
    for i, isenet in enumerate(site.isenets):
        arp_round(tr, tr.at(0.5 + i * 0.2), sescomm, isenet)
    sesam_search(tr, tr.at(2.0), pc, site.isenets)
    for i, isenet in enumerate(site.isenets):
        sescomm_sync(tr, site, isenet, begin_s=4.0 + i * 0.7, end_s=duration - 2, period_s=20.0)
    arp_round(tr, tr.at(29.5), pc, sescomm)
    sesam_database(tr, tr.at(30.0), pc, sescomm)
    sesam_config_rpc(tr, tr.at(36.0), pc, sescomm, calls=8)
    # SesConfigPro on the SesComm PC itself administrates controller 3
    sesam_administrate(tr, tr.at(120.0), sescomm, site.isenets[2], 21040102)
    sesam_config_rpc(tr, tr.at(180.0), pc, sescomm, calls=4)
    sesam_manual(tr, tr.at(300.0), pc, site.isenets[3], 21040103)
    tftp_transfer(
        tr, tr.at(400.0), pc, site.isenets[1], opcode=TFTP_RRQ, filename="version.txt", size=180
    )
    tftp_transfer(
        tr, tr.at(402.0), pc, site.isenets[1], opcode=TFTP_WRQ, filename="ISENET.ROM", size=14_000
    )
    for k in range(3):
        tr.udp_exchange(
            tr.at(470.0 + k),
            pc,
            site.isenets[1],
            41798,
            41798,
            tr.random_bytes(12),
            tr.random_bytes(64),
            rtt_ns=2 * MS,
        )
    arp_round(tr, tr.at(539.5), laptop, site.isenets[0])
    s = tr.tcp(
        laptop, site.isenets[0], tr.ephemeral_port(laptop), 41796, at_ns=tr.at(540.0), rtt_ns=2 * MS
    ).open()
    s.close(by_client=True, after_s=4.2)
    sesam_search(tr, tr.at(700.0), pc, site.isenets)
    return tr.frames()


def gemos_site() -> Sequence[Frame]:
    """A GEMOS control room behind a VLAN trunk mirror: HA pair (12002, 12290), operator
    stations (pro02 12000/12022/12043, UI 80/443, UDP 12000 search), a technician
    (maintenance HTTP, ssh, Firebird), W&T and Lantronix com servers on the field VLAN."""
    tr = Trace(seed=3003, start_ns=START_NS)
    duration = 600.0
    g1 = Host(ip="10.12.0.10", mac="00:50:56:8a:10:01", os="linux", vlan=120)
    g1_field = Host(ip="10.13.0.10", mac=g1.mac, os="linux", vlan=130)
    g2 = Host(ip="10.12.0.11", mac="00:50:56:8a:10:02", os="linux", vlan=120)
    op1 = Host(ip="10.12.0.21", mac="98:90:96:b1:00:21", os="windows", vlan=120)
    op2 = Host(ip="10.12.0.22", mac="98:90:96:b1:00:22", os="windows", vlan=120)
    op3 = Host(ip="10.12.0.23", mac="98:90:96:b1:00:23", os="windows", vlan=120)
    tech = Host(ip="10.12.0.50", mac="a4:bb:6d:50:50:50", os="windows", vlan=120)
    wut1 = Host(ip="10.13.0.31", mac="00:c0:3d:01:a2:31", os="embedded", vlan=130)
    wut2 = Host(ip="10.13.0.32", mac="00:c0:3d:01:a2:32", os="embedded", vlan=130)
    xport = Host(ip="10.13.0.40", mac="00:20:4a:9b:00:40", os="embedded", vlan=130)
    dc = Host(ip="10.12.0.2", mac="00:50:56:8a:10:f2", os="windows", vlan=120)

    server_link(tr, g1, g2, 12002, begin_s=0.1, end_s=duration, period_s=5.0)
    server_link(tr, g1, g2, 12290, begin_s=0.2, end_s=duration, period_s=10.0)
    server_link(tr, g2, g1, 12290, begin_s=0.3, end_s=duration, period_s=10.0)
    pro02_session(tr, op1, g1, 12000, begin_s=0.4, end_s=duration, period_s=8.0, resume=True)
    pro02_session(tr, op2, g1, 12022, begin_s=0.5, end_s=duration, period_s=8.0, resume=True)
    comserver_link(
        tr, g1_field, wut1, 8000, begin_s=0.6, end_s=duration, period_s=15.0, resume=True
    )
    comserver_link(
        tr, g1_field, wut2, 8100, begin_s=0.7, end_s=duration, period_s=15.0, resume=True
    )
    comserver_link(
        tr, g1_field, xport, 10001, begin_s=0.8, end_s=duration, period_s=20.0, resume=True
    )
    # operator station 3 starts its pro02 client: search, then TLS pro02 and the web UI
    gemos_discovery(tr, tr.at(58.0), op3, [g1, g2])
    arp_round(tr, tr.at(59.5), op3, g1)
    pro02_session(
        tr, op3, g1, 12043, begin_s=60.0, end_s=duration, period_s=9.0, resume=False, tls=True
    )
    http_get(
        tr,
        tr.at(75.0),
        op3,
        g1,
        80,
        "/",
        host_header="gemos1",
        body_bytes=0,
        status="301 Moved Permanently",
    )
    https_visit(
        tr, tr.at(75.2), op3, g1, "gemos1.leitstelle.local", rtt_ns=MS // 2, down_bytes=9000
    )
    # technician: maintenance pages, ssh, database check
    arp_round(tr, tr.at(119.5), tech, g1)
    http_series(
        tr,
        start_s=120.0,
        step_s=9,
        body_bytes=(600, 100),
        visits=[
            (tech, g1, 12081, "/"),
            (tech, g1, 12090, "/status"),
            (tech, g1, 12288, "/"),
            (tech, g2, 12288, "/"),
            (tech, g1, 12911, "/stats"),
            (tech, g1, 12101, "/"),
            (tech, g1, 12102, "/"),
            (tech, g1, 12092, "/log"),
        ],
    )
    http_series(
        tr,
        start_s=400.0,
        step_s=7,
        body_bytes=(400, 50),
        visits=[
            (tech, g1, 12082, "/backup"),
            (tech, g1, 12083, "/"),
            (tech, g1, 12084, "/"),
            (tech, g1, 12091, "/"),
            (tech, g1, 12093, "/"),
            (tech, g1, 12094, "/"),
            (tech, g1, 12079, "/gdarcs/config"),
            (op1, g1, 12008, "/symbols/bmz.svg"),
            (op2, g1, 12080, "/"),
        ],
    )
    https_visit(
        tr,
        tr.at(470.0),
        op2,
        g1,
        "gemos1.leitstelle.local",
        rtt_ns=MS // 2,
        down_bytes=5000,
        port=12443,
    )
    printer_job(tr, tr.at(480.0), op1, g1)
    server_link(tr, g2, g1, 12001, begin_s=0.9, end_s=duration, period_s=30.0)
    for k, name in enumerate(("mail.leitstelle.local", "ntp.leitstelle.local")):
        dns_lookup(tr, tr.at(200.0 + 60 * k), g1, dc, name, f"10.12.0.{3 + k}")
    ssh_session(tr, tr.at(240.0), tech, g1, minutes=3.0)
    firebird_session(tr, tr.at(460.0), tech, g1, 3050)
    lantronix_query(tr, tr.at(300.0), g1_field, xport)
    for t in (0.05, 300.0):
        comserver_status(tr, tr.at(t + 1.0), g1_field, wut1, 9084)
    return tr.frames()


def printer_job(tr: Trace, t_ns: int, client: Host, server: Host) -> None:
    """The GEMOS printer service on 12079 (proprietary, not HTTP): one print job."""
    s = tr.tcp(client, server, tr.ephemeral_port(client), 12079, at_ns=t_ns, rtt_ns=MS // 2)
    s.open()
    s.exchange(
        b"\x00\x00\x01\x2cPRN" + tr.random_bytes(293), b"\x00\x00\x00\x04OK\x00\x00", after_s=0.001
    )
    s.close(by_client=True, after_s=0.01)


def comserver_status(tr: Trace, t_ns: int, gemos: Host, box: Host, port: int) -> None:
    """A short control connection to a W&T com server's 9x84 port."""
    s = tr.tcp(gemos, box, tr.ephemeral_port(gemos), port, at_ns=t_ns, rtt_ns=MS).open()
    s.exchange(tr.random_bytes(8), tr.random_bytes(24), after_s=0.01)
    s.close(by_client=True, after_s=0.05)


def mixed_site() -> Sequence[Frame]:
    """THE DEMO. One building, all three systems plus office noise, 10 minutes, two
    mirror ports (interface 0: core switch, interface 1: access-control switch), and
    the problems listed in README.md."""
    tr = Trace(seed=4004, start_ns=START_NS)
    duration = 600.0
    router = Host(ip="192.168.10.1", mac="00:0d:b9:5a:0c:01", os="linux")
    cmi = Host(ip="192.168.10.40", mac="3c:cd:5a:02:44:90", os="embedded")
    plc = Host(ip="192.168.10.60", mac="00:1b:1b:6a:40:60", os="embedded")
    g1 = Host(ip="192.168.10.5", mac="00:50:56:8a:20:05", os="linux")
    g2 = Host(ip="192.168.10.6", mac="00:50:56:8a:20:06", os="linux")
    op = Host(ip="192.168.10.21", mac="98:90:96:b1:10:21", os="windows")
    tech = Host(ip="192.168.10.77", mac="a4:bb:6d:50:10:77", os="windows")
    wut = Host(ip="192.168.10.31", mac="00:c0:3d:01:b3:31", os="embedded")
    sesam, _ = sesam_hosts(net="192.168.10", iface=1)
    isenets = sesam.isenets[:2]
    office = [
        Host(ip=f"192.168.10.{120 + i}", mac=f"f0:ee:7a:11:22:{0x30 + i:02x}", os="windows")
        for i in range(3)
    ]
    office6 = Host(ip="fe80::1c2d:5eff:fe31:a7c0", mac=office[0].mac, os="windows")
    office6_b = Host(ip="fe80::8d4e:2b1f:77c3:9a02", mac=office[2].mac, os="windows")
    attacker = remote(router, "203.0.113.66", ttl=47)
    site = CmiSite(cmi=cmi, resolver=router, gateway=router, ta=ta_hosts(router))

    # --- C.M.I.: permanent connections already up, update check, NTP, Modbus, CoE-free
    cmi_permanent(
        tr, site, "cmi.ta.co.at", 40001, begin_s=0.3, end_s=duration, period_s=30, resume=True
    )
    cmi_permanent(
        tr, site, "api.ta.co.at", 40003, begin_s=0.6, end_s=duration, period_s=60, resume=True
    )
    cmi_update_check(tr, tr.at(120.0), site)
    cmi_ntp(tr, tr.at(360.0), site)
    arp_round(tr, tr.at(4.5), plc, cmi)
    modbus_poll(tr, plc, cmi, begin_s=5.0, end_s=duration - 3, period_s=15.0)

    # --- GEMOS: HA pair, operator station, com server, technician
    server_link(tr, g1, g2, 12002, begin_s=0.1, end_s=duration, period_s=10.0)
    server_link(tr, g1, g2, 12290, begin_s=0.2, end_s=duration, period_s=20.0)
    pro02_session(tr, op, g1, 12000, begin_s=0.4, end_s=duration, period_s=12.0, resume=True)
    comserver_link(tr, g1, wut, 8000, begin_s=0.5, end_s=duration, period_s=20.0, resume=True)
    gemos_discovery(tr, tr.at(90.0), op, [g1, g2])
    https_visit(tr, tr.at(95.0), op, g1, "gemos.rathaus.local", rtt_ns=MS // 2, down_bytes=6000)
    arp_round(tr, tr.at(149.5), tech, g1)
    http_get(tr, tr.at(150.0), tech, g1, 12081, "/", host_header=g1.ip, body_bytes=700)
    http_get(tr, tr.at(156.0), tech, g1, 12101, "/", host_header=g1.ip, body_bytes=500)
    ssh_session(tr, tr.at(420.0), tech, g1, minutes=1.5)

    # --- Sesam on the access-control switch (interface 1)
    for i, isenet in enumerate(isenets):
        sescomm_sync(tr, sesam, isenet, begin_s=1.0 + i * 0.5, end_s=duration - 1, period_s=30.0)
    sesam_search(tr, tr.at(200.0), sesam.config_pc, isenets)
    sesam_database(tr, tr.at(210.0), sesam.config_pc, sesam.sescomm)
    sesam_config_rpc(tr, tr.at(215.0), sesam.config_pc, sesam.sescomm, calls=5)

    # --- office noise: DHCP, DNS, HTTPS with SNI, mDNS, ARP
    dhcp_lease(tr, tr.at(12.0), office[2], router, hostname="BUERO-PC03")
    sites = [
        ("outlook.office365.com", "192.0.2.40"),
        ("www.google.com", "192.0.2.50"),
        ("www.heise.de", "192.0.2.60"),
        ("update.googleapis.com", "192.0.2.51"),
    ]
    for k in range(12):
        pc = office[k % 3]
        name, addr = sites[(k * 7) % len(sites)]
        t = tr.at(20.0 + 45.0 * k + tr.rng.random() * 10)
        t = dns_lookup(tr, t, pc, router, name, addr) + MS
        https_visit(
            tr,
            t,
            pc,
            remote(router, addr, ttl=55),
            name,
            rtt_ns=18 * MS,
            down_bytes=4000 + tr.rng.randrange(9000),
        )
    for k in range(4):
        mdns_query(tr, tr.at(33.0 + 140 * k), office[0], office6, "_googlecast._tcp.local")
    windows_chatter(tr, tr.at(12.5), office[2], office6_b, subnet_bcast="192.168.10.255")
    for k in range(5):
        arp_round(tr, tr.at(61.0 + 110 * k), router, office[k % 3])

    # --- the problems
    # 1+2. from the internet to the C.M.I. (a port forward on the router): a SYN to 40001
    #      refused, then the C.M.I.'s web page on 80 fetched
    tr.tcp(attacker, cmi, 51234, 40001, at_ns=tr.at(249.0), rtt_ns=31 * MS).reject()
    http_get(
        tr,
        tr.at(250.0),
        attacker,
        cmi,
        80,
        "/",
        host_header="203.0.113.1",
        body_bytes=0,
        status="401 Unauthorized",
        agent="Mozilla/5.0 zgrab/0.x",
    )
    # 3. an office PC opens the C.M.I. web page (local, not allowed) ...
    arp_round(tr, tr.at(329.5), office[1], cmi)
    http_get(
        tr,
        tr.at(330.0),
        office[1],
        cmi,
        80,
        "/",
        host_header=cmi.ip,
        body_bytes=0,
        status="401 Unauthorized",
    )
    # ... and the technician does the same (allowed by the site file)
    arp_round(tr, tr.at(399.5), tech, cmi)
    http_get(
        tr,
        tr.at(400.0),
        tech,
        cmi,
        80,
        "/",
        host_header=cmi.ip,
        body_bytes=0,
        status="401 Unauthorized",
    )
    # 4. a GEMOS service installed on reserved port 12005
    http_get(tr, tr.at(160.0), tech, g1, 12005, "/", host_header=g1.ip, body_bytes=300)
    # 5. the obsolete HA-Pro02router maintenance port 12289
    http_get(tr, tr.at(165.0), tech, g1, 12289, "/", host_header=g1.ip, body_bytes=300)
    # 6. the 12099 placeholder from an old service.cfg template
    http_get(tr, tr.at(170.0), tech, g1, 12099, "/", host_header=g1.ip, body_bytes=200)
    # 7. an ISENet opening TCP to the SesComm PC's 41796 (refused, twice)
    for k in range(2):
        isenet = isenets[1]
        tr.tcp(
            isenet, sesam.sescomm, 1024 + 17 * k, 41796, at_ns=tr.at(280.0 + 3 * k), rtt_ns=MS // 2
        ).reject()
    return tr.frames()


def main(argv: Sequence[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else HERE
    for name, packets in generate_all(outdir).items():
        print(f"{name}: {packets} packets")
    return 0


def build_cmi_site() -> Written:
    frames = cmi_site()
    plain = write_pcap(frames, linktype=LINKTYPE_ETHERNET)
    return Written(gzip_bytes(plain.data), plain.packets)


SENSOR_IF_INDEX = 3  # eth1 on the Linux sensor, as `ip link` numbers it


def build_sesam_site() -> Written:
    frames = [to_sll2(f, if_index=SENSOR_IF_INDEX) for f in sesam_site()]
    return write_pcap(frames, linktype=LINKTYPE_LINUX_SLL2, nanosecond=True)


def build_gemos_site() -> Written:
    return write_pcap(gemos_site(), linktype=LINKTYPE_ETHERNET)


def build_mixed_site() -> Written:
    interfaces = [
        Interface(name="eth1", description="mirror of core switch port 24 (router uplink)"),
        Interface(name="eth2", description="mirror of access-control switch", tsresol=9),
    ]
    return write_pcapng(mixed_site(), interfaces, userappl=USERAPPL)


BUILDERS: dict[str, Callable[[], Written]] = {
    "mixed_site.pcapng": build_mixed_site,
    "cmi_site.pcap.gz": build_cmi_site,
    "sesam_site.sll2.pcap": build_sesam_site,
    "gemos_site.vlan.pcap": build_gemos_site,
}


def generate_all(outdir: Path) -> dict[str, int]:
    """Write every sample into `outdir`; returns file name -> packets written."""
    outdir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name, build in BUILDERS.items():
        written = build()
        (outdir / name).write_bytes(written.data)
        counts[name] = written.packets
    return counts


if __name__ == "__main__":
    sys.exit(main(sys.argv))
