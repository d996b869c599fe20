"""Service recognition from the first payload bytes of a connection, and DNS answers.

    recognise("tcp", 80, b"GET / HTTP/1.1\\r\\n...", b"HTTP/1.1 200 OK...")  -> "http"
    recognise_column(flows["proto"], flows["resp_p"], orig_heads, resp_heads) -> names
    is_http_request(b"GET /index.html HTTP/1.0")                            -> True
    dns_answers(flow_result.dns)  -> DataFrame[ts, client, qname, answer]

Payload decides: when a head is present, only what it holds counts (an HTTP request
to port 22 is http, not ssh; an unknown payload on port 80 is None). The port is a
fallback only where no payload was seen in either direction (e.g. a SYN without answer).
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .flows import HEAD_BYTES
from .kernel import inline_kernel, kernel, readonly

HTTP_METHODS: tuple[bytes, ...] = (  # RFC 9110 section 9 + PATCH (RFC 5789)
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
)
TFTP_MODES: tuple[bytes, ...] = (b"netascii", b"octet", b"mail")  # RFC 1350
DHCP_MAGIC = b"\x63\x82\x53\x63"  # RFC 2131 section 3: magic cookie at offset 236
DHCP_PORTS = (67, 68)  # RFC 2131 server / client ports
NTP_PACKET_LEN = 48  # RFC 5905 header without extensions
NTP_MAX_LEN = 48 + 4 + 20  # header + key id + SHA-1 digest (RFC 5905 section 7.3)
NETBIOS_NS_PORT = 137  # RFC 1002 section 4.2 (NetBIOS name service)
MAX_CNAME_CHAIN = 16  # loop guard when following CNAMEs

# Fallback when no payload was seen: IANA well-known ports of the recognised services.
PORT_SERVICES: dict[tuple[str, int], str] = {
    ("tcp", 22): "ssh",
    ("tcp", 53): "dns",
    ("tcp", 80): "http",
    ("tcp", 443): "tls",
    ("tcp", 502): "modbus",
    ("udp", 53): "dns",
    ("udp", 67): "dhcp",
    ("udp", 68): "dhcp",
    ("udp", 69): "tftp",
    ("udp", 123): "ntp",
    ("udp", 137): "netbios-ns",  # RFC 1002 name service: DNS-like wire format, not DNS
    ("udp", 5353): "dns",  # mDNS uses the DNS message format (RFC 6762)
    ("udp", 5355): "dns",  # LLMNR uses the DNS message format (RFC 4795)
}


# --- single recognisers: each looks at one head, d[a : a + n] --------------------------
# Kernels (analyzer/kernel.py), so that recognise_column runs them over every connection
# without Python per row; the is_* functions below call them for one head.

_METHODS = np.frombuffer(b"".join(HTTP_METHODS), dtype=np.uint8)
_METHOD_END = np.cumsum([len(m) for m in HTTP_METHODS]).astype(np.int64)
_HTTP_1 = np.frombuffer(b" HTTP/1.", dtype=np.uint8)
_HTTP_10 = np.frombuffer(b"HTTP/1.0", dtype=np.uint8)
_SSH_2 = np.frombuffer(b"SSH-2.0-", dtype=np.uint8)
_SSH_199 = np.frombuffer(b"SSH-1.99-", dtype=np.uint8)
_MODES = np.frombuffer(b"".join(TFTP_MODES), dtype=np.uint8)
_MODE_END = np.cumsum([len(m) for m in TFTP_MODES]).astype(np.int64)
_DHCP_MAGIC = np.frombuffer(DHCP_MAGIC, dtype=np.uint8)


@inline_kernel
def _same(d, a, n, word, w0, w1):  # type: ignore[no-untyped-def]
    """d[a : a + n] equals word[w0 : w1]."""
    if n != w1 - w0:
        return False
    for i in range(n):
        if d[a + i] != word[w0 + i]:
            return False
    return True


@inline_kernel
def _starts(d, a, n, word):  # type: ignore[no-untyped-def]
    return n >= word.size and _same(d, a, word.size, word, 0, word.size)


@inline_kernel
def _u16(d, at):  # type: ignore[no-untyped-def]
    return (np.int64(d[at]) << 8) | np.int64(d[at + 1])


@inline_kernel
def _http_request(d, a, n):  # type: ignore[no-untyped-def]
    """An HTTP/1.x request line ("GET /x HTTP/1.1"): a method of HTTP_METHODS, a space,
    and " HTTP/1." in the line (or the line ending in "HTTP/1.0"); a line cut by the
    head limit passes when its target is printable."""
    space = -1
    for i in range(n):
        if d[a + i] == 32:
            space = i
            break
    if space < 0:
        return False
    method = False
    w0 = 0
    for w1 in _METHOD_END:
        if _same(d, a, space, _METHODS, w0, w1):
            method = True
        w0 = w1
    if not method:
        return False
    start, end = a + space + 1, a + n
    newline = -1
    for i in range(start, end):
        if d[i] == 10:
            newline = i
            break
    if newline < 0:  # cut by the head limit: a printable target
        if start == end:
            return False
        for i in range(start, end):
            if d[i] == 32:
                break
            if not 32 < d[i] < 127:
                return False
        return True
    for i in range(start, newline - _HTTP_1.size + 1):
        if _same(d, i, _HTTP_1.size, _HTTP_1, 0, _HTTP_1.size):
            return True
    stop = newline
    while stop > start and d[stop - 1] == 13:
        stop -= 1
    return stop - start >= _HTTP_10.size and _same(
        d, stop - _HTTP_10.size, _HTTP_10.size, _HTTP_10, 0, _HTTP_10.size
    )


@inline_kernel
def _http_response(d, a, n):  # type: ignore[no-untyped-def]
    """Starts with "HTTP/1.0 " or "HTTP/1.1 "."""
    return (
        n >= 9
        and _same(d, a, 7, _HTTP_10, 0, 7)
        and (d[a + 7] == 48 or d[a + 7] == 49)
        and d[a + 8] == 32
    )


@inline_kernel
def _tls(d, a, n):  # type: ignore[no-untyped-def]
    """TLS handshake record: content type 22, version 3.x (SSL 3.0 .. TLS 1.3 records)."""
    return n >= 3 and d[a] == 0x16 and d[a + 1] == 3 and d[a + 2] <= 4


@inline_kernel
def _ssh(d, a, n):  # type: ignore[no-untyped-def]
    return _starts(d, a, n, _SSH_2) or _starts(d, a, n, _SSH_199)


@inline_kernel
def _modbus(d, a, n):  # type: ignore[no-untyped-def]
    """MBAP header: protocol id 0, length 2..254 covering unit id + PDU, a function code
    (the high bit marks an exception response)."""
    if n < 8 or _u16(d, a + 2) != 0 or not 2 <= _u16(d, a + 4) <= 254:
        return False
    return 1 <= (d[a + 7] & 0x7F) <= 127


@inline_kernel
def _tftp_request(d, a, n):  # type: ignore[no-untyped-def]
    """RRQ (1) or WRQ (2): opcode, NUL-terminated file name, NUL-terminated mode (any
    case)."""
    if n < 4 or d[a] != 0 or not (d[a + 1] == 1 or d[a + 1] == 2):
        return False
    first = -1
    for i in range(a + 2, a + n):
        if d[i] == 0:
            first = i
            break
    if first <= a + 2:  # no NUL, or an empty file name
        return False
    second = -1
    for i in range(first + 1, a + n):
        if d[i] == 0:
            second = i
            break
    if second < 0:
        return False
    w0 = 0
    for w1 in _MODE_END:
        if second - first - 1 == w1 - w0:
            same = True
            for k in range(w1 - w0):
                c = d[first + 1 + k]
                if 65 <= c <= 90:
                    c += 32  # lower case
                if c != _MODES[w0 + k]:
                    same = False
                    break
            if same:
                return True
        w0 = w1
    return False


@inline_kernel
def _dhcp(d, a, n):  # type: ignore[no-untyped-def]
    """BOOTP/DHCP message (RFC 2131): op 1/2, Ethernet htype 1 / hlen 6, and the magic
    cookie at offset 236 when the head reaches it (heads are cut at HEAD_BYTES)."""
    if n < 28 or not (d[a] == 1 or d[a] == 2) or d[a + 1] != 1 or d[a + 2] != 6:
        return False
    if n >= 240:
        return _same(d, a + 236, 4, _DHCP_MAGIC, 0, 4)
    return n >= HEAD_BYTES


@inline_kernel
def _ntp(d, a, n):  # type: ignore[no-untyped-def]
    """NTP v1-4 header: 48 bytes (plus an optional MAC), mode 1-5, stratum <= 16."""
    if not NTP_PACKET_LEN <= n <= NTP_MAX_LEN:
        return False
    version = (d[a] >> 3) & 0x7
    return 1 <= version <= 4 and 1 <= (d[a] & 0x7) <= 5 and d[a + 1] <= 16


@inline_kernel
def _ntp_control(d, a, n):  # type: ignore[no-untyped-def]
    """NTP mode 6 control message (RFC 1305 appendix B): 12-byte header."""
    if n < 12:
        return False
    version = (d[a] >> 3) & 0x7
    return 1 <= version <= 4 and (d[a] & 0x7) >= 6


@inline_kernel
def _netbios_ns(d, a, n):  # type: ignore[no-untyped-def]
    """A NetBIOS name service packet (RFC 1002 section 4.2.1): the 12-byte DNS-style
    header; its NBSTAT and name records need not parse as DNS."""
    return n >= 12


@inline_kernel
def _dns(d, a, n):  # type: ignore[no-untyped-def]
    """A DNS message: sane header counts and a question that parses to its end."""
    if n < 17:
        return False
    opcode = (_u16(d, a + 2) >> 11) & 0xF
    if _u16(d, a + 4) != 1 or not (opcode <= 2 or opcode == 4 or opcode == 5):
        return False
    if max(_u16(d, a + 6), _u16(d, a + 8), _u16(d, a + 10)) > 64:
        return False
    pos = 12
    ended = False
    while pos < n:
        label = d[a + pos]
        if label == 0:
            pos += 1
            ended = True
            break
        if label > 63:
            return False
        pos += 1 + label
    if not ended:
        return False
    if pos + 4 > n:
        return n >= 120  # head cut by the limit inside the question
    qclass = _u16(d, a + pos + 2) & 0x7FFF  # mDNS: top bit = QU
    return qclass == 1 or qclass == 3 or qclass == 4 or qclass == 254 or qclass == 255


def _one(check: Any, head: bytes | bytearray | memoryview | None) -> bool:
    """Run the kernel `check` on one head (None: no payload)."""
    if head is None:
        return False
    d = readonly(np.frombuffer(head, dtype=np.uint8))
    return bool(check(d, 0, d.size))


def is_http_request(head: bytes | None) -> bool:
    """True when `head` starts with an HTTP/1.x request line ("GET /x HTTP/1.1")."""
    return _one(_http_request, head)


def is_http_response(head: bytes | None) -> bool:
    return _one(_http_response, head)


def is_tls(head: bytes | None) -> bool:
    return _one(_tls, head)


def is_ssh(head: bytes | None) -> bool:
    return _one(_ssh, head)


def is_modbus(head: bytes | None) -> bool:
    return _one(_modbus, head)


def is_tftp_request(head: bytes | None) -> bool:
    return _one(_tftp_request, head)


def is_dhcp(head: bytes | None) -> bool:
    return _one(_dhcp, head)


def is_ntp(head: bytes | None) -> bool:
    return _one(_ntp, head)


def is_ntp_control(head: bytes | None) -> bool:
    return _one(_ntp_control, head)


def is_netbios_ns(head: bytes | None) -> bool:
    return _one(_netbios_ns, head)


def is_dns(head: bytes | None) -> bool:
    return _one(_dns, head)


# --- every connection -------------------------------------------------------------------

SERVICES: tuple[str, ...] = (
    "tls", "ssh", "http", "modbus", "dhcp", "ntp", "netbios-ns", "tftp", "dns",
)  # fmt: skip
(TLS, SSH, HTTP, MODBUS, DHCP, NTP, NETBIOS_NS, TFTP, DNS) = range(len(SERVICES))
NONE = -1  # payload seen, nothing recognised (or not TCP/UDP)
BY_PORT = -2  # no payload either way: PORT_SERVICES decides
PROTO_OTHER, PROTO_TCP, PROTO_UDP = 0, 1, 2


@inline_kernel
def _tcp_service(d, a, n, e, b, m):  # type: ignore[no-untyped-def]
    """The service of a TCP connection whose heads are d[a : a + n] and e[b : b + m]: the
    first of these checks that either head passes."""
    if _tls(d, a, n) or _tls(e, b, m):
        return TLS
    if _ssh(d, a, n) or _ssh(e, b, m):
        return SSH
    if _http_request(d, a, n) or _http_request(e, b, m):
        return HTTP
    if _http_response(d, a, n) or _http_response(e, b, m):
        return HTTP
    if _modbus(d, a, n) or _modbus(e, b, m):
        return MODBUS
    return NONE


@inline_kernel
def _udp_service(port, d, a, n, e, b, m):  # type: ignore[no-untyped-def]
    """The service of a UDP connection to `port`: DHCP, NTP and NetBIOS names only on
    their ports (RFC 1002 reuses the DNS header on udp/137: not DNS), then TFTP, DNS."""
    if (port == DHCP_PORTS[0] or port == DHCP_PORTS[1]) and (_dhcp(d, a, n) or _dhcp(e, b, m)):
        return DHCP
    if port == 123 and (_ntp(d, a, n) or _ntp_control(d, a, n) or _ntp(e, b, m)):
        return NTP
    if port == NETBIOS_NS_PORT and (_netbios_ns(d, a, n) or _netbios_ns(e, b, m)):
        return NETBIOS_NS
    if _tftp_request(d, a, n) or _tftp_request(e, b, m):
        return TFTP
    if _dns(d, a, n) or _dns(e, b, m):
        return DNS
    return NONE


@kernel
def _services(proto, resp_p, o_off, o_data, r_off, r_data, out):  # type: ignore[no-untyped-def]
    """out[i]: index into SERVICES of connection i, NONE or BY_PORT. Heads are Arrow
    binary columns (offsets, data); a null head has length 0, as an empty one."""
    for i in range(proto.size):
        a, n = o_off[i], o_off[i + 1] - o_off[i]
        b, m = r_off[i], r_off[i + 1] - r_off[i]
        if n == 0 and m == 0:
            out[i] = BY_PORT
        elif proto[i] == PROTO_TCP:
            out[i] = _tcp_service(o_data, a, n, r_data, b, m)
        elif proto[i] == PROTO_UDP:
            out[i] = _udp_service(resp_p[i], o_data, a, n, r_data, b, m)
        else:
            out[i] = NONE


@kernel
def _http_requests(rows, off, data, out):  # type: ignore[no-untyped-def]
    """out[i] = whether head i starts with an HTTP request line, for the `rows` only."""
    for i in rows:
        out[i] = _http_request(data, off[i], off[i + 1] - off[i])


def _port_table() -> np.ndarray:
    table = np.full((3, 65536), NONE, dtype=np.int8)
    for (proto, port), name in PORT_SERVICES.items():
        table[PROTO_TCP if proto == "tcp" else PROTO_UDP, port] = SERVICES.index(name)
    return table


_BY_PORT = _port_table()  # [PROTO_*, port] -> service index (NONE: not a known port)
_NAMES = np.array([*SERVICES, None, None], dtype=object)  # [NONE] and [BY_PORT]: None


def _proto_codes(proto: Any) -> np.ndarray:
    """PROTO_TCP, PROTO_UDP or PROTO_OTHER per transport name (a column of them)."""
    names = pd.Series(proto)
    return np.where(names == "tcp", PROTO_TCP, np.where(names == "udp", PROTO_UDP, 0)).astype(
        np.int8
    )


def head_buffers(heads: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a column of heads (bytes or None), as Arrow lays them out: head
    i is data[offsets[i] : offsets[i + 1]], empty for None."""
    arr = pa.array(heads, type=pa.large_binary())
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    raw = np.zeros(0, dtype=np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)
    return readonly(off), readonly(raw)


def _no_heads(n: int) -> tuple[np.ndarray, np.ndarray]:
    return readonly(np.zeros(n + 1, dtype=np.int64)), readonly(np.zeros(0, dtype=np.uint8))


def recognise_column(proto: Any, resp_p: Any, orig_head: Any, resp_head: Any) -> np.ndarray:
    """recognise() of every connection (columns in; a heads column None for none): an
    object array of service names and None."""
    codes = _proto_codes(proto)
    ports = readonly(np.ascontiguousarray(resp_p, dtype=np.int64))  # one compiled version
    n = codes.size
    o_off, o_data = _no_heads(n) if orig_head is None else head_buffers(orig_head)
    r_off, r_data = _no_heads(n) if resp_head is None else head_buffers(resp_head)
    out = np.empty(n, dtype=np.int8)
    _services(codes, ports, o_off, o_data, r_off, r_data, out)
    by_port = np.flatnonzero(out == BY_PORT)
    if by_port.size:
        port = np.clip(ports[by_port], 0, 65535)
        out[by_port] = _BY_PORT[codes[by_port], port]
    return _NAMES[out]


def recognise(
    proto: str, resp_p: int, orig_head: bytes | None, resp_head: bytes | None
) -> str | None:
    """The application protocol of one connection, or None. Payload decides: when a
    head is present, only what it holds counts; the port only when neither is."""
    return recognise_column([proto], [resp_p], [orig_head], [resp_head])[0]  # type: ignore[no-any-return]


def http_request_mask(off: np.ndarray, data: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """is_http_request of each head of a column (`head_buffers`' offsets and data), for
    `rows` (a bool mask) only; False elsewhere."""
    out = np.zeros(len(rows), dtype=bool)
    if rows.any():
        _http_requests(np.flatnonzero(rows), off, data, out)
    return out


# --- DNS answers ------------------------------------------------------------------------

DNS_COLUMNS = ["ts", "client", "qname", "answer"]


def dns_answers(dns: pd.DataFrame, *, skipped: Counter[str] | None = None) -> pd.DataFrame:
    """A and AAAA answers of DNS responses, one row per (response, name, address).

    `dns` holds ts, client, server, payload (flows.FlowResult.dns). CNAME chains are
    followed, so a question for cmi.ta.co.at answered with CNAME x + A(x) yields a row
    (cmi.ta.co.at, address) as well as (x, address). Names are lower case without the
    trailing dot. Payloads that do not parse are left out and counted in `skipped`
    under "dns_malformed" (and in the result's attrs["malformed"])."""
    rows: list[tuple[object, str, str, str]] = []
    malformed = 0
    if len(dns):
        for ts, client, payload in zip(dns["ts"], dns["client"], dns["payload"], strict=True):
            pairs = _resolve(payload)
            if pairs is None:
                malformed += 1
                continue
            rows += [(ts, client, name, addr) for name, addr in pairs]
    out = pd.DataFrame(rows, columns=DNS_COLUMNS)
    if not rows and len(dns):
        out["ts"] = out["ts"].astype(dns["ts"].dtype)
    out.attrs["malformed"] = malformed
    if skipped is not None and malformed:
        skipped["dns_malformed"] += malformed
    return out


def _resolve(payload: bytes | None) -> list[tuple[str, str]] | None:
    """(name, address) pairs of one DNS response, or None if it does not parse."""
    if not payload:
        return None
    import dpkt  # imported on the first DNS answer (70 ms of start-up otherwise)

    try:
        msg = dpkt.dns.DNS(bytes(payload))
    except (dpkt.UnpackError, struct.error, IndexError, ValueError):
        return None
    if msg.qr != dpkt.dns.DNS_R:
        return None
    cnames: dict[str, str] = {}
    addresses: dict[str, list[str]] = {}
    for rr in msg.an:
        name = _name(rr.name)
        if rr.type == dpkt.dns.DNS_CNAME:
            cnames[name] = _name(rr.cname)
        elif rr.type in (dpkt.dns.DNS_A, dpkt.dns.DNS_AAAA):
            addresses.setdefault(name, []).append(_address(rr))
    names = list(dict.fromkeys([_name(q.name) for q in msg.qd] + list(cnames) + list(addresses)))
    return [(n, a) for n in names for a in _follow(n, cnames, addresses)]


def _follow(name: str, cnames: dict[str, str], addresses: dict[str, list[str]]) -> list[str]:
    for _ in range(MAX_CNAME_CHAIN):
        if name in addresses:
            return addresses[name]
        if name not in cnames:
            return []
        name = cnames[name]
    return []


def _name(text: str) -> str:
    return text.rstrip(".").lower()


def _address(rr: Any) -> str:  # a dpkt.dns.DNS.RR
    return str(ipaddress.ip_address(rr.rdata))
