"""The pure-Python service recognisers that were the product until 2026-12-04, kept as
the reference the kernels in analyzer/services.py are compared with (test_services.py):
the same rules written a second way, over the same heads, must give the same answers.
Not shipped; do not change a rule here without the documents that say so. The data
(methods, modes, magic numbers, ports) is the product's, imported; the rules are not."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from analyzer.services import (
    DHCP_MAGIC,
    DHCP_PORTS,
    HEAD_BYTES,
    HTTP_METHODS,
    NETBIOS_NS_PORT,
    NTP_MAX_LEN,
    NTP_PACKET_LEN,
    PORT_SERVICES,
    TFTP_MODES,
)

# --- single recognisers: each looks at one head --------------------------------------


def is_http_request(head: bytes | None) -> bool:
    """True when `head` starts with an HTTP/1.x request line ("GET /x HTTP/1.1")."""
    if not head:
        return False
    method, sep, rest = head.partition(b" ")
    if not sep or method not in HTTP_METHODS:
        return False
    line, newline, _ = rest.partition(b"\n")
    if newline:
        return b" HTTP/1." in line or line.rstrip(b"\r").endswith(b"HTTP/1.0")
    # request line cut by the head limit: accept a printable target
    return bool(line) and all(32 < b < 127 for b in line.split(b" ")[0])


def is_http_response(head: bytes | None) -> bool:
    return head is not None and head.startswith((b"HTTP/1.0 ", b"HTTP/1.1 "))


def is_tls(head: bytes | None) -> bool:
    """TLS handshake record: content type 22, version 3.x (SSL 3.0 .. TLS 1.3 records)."""
    return head is not None and len(head) >= 3 and head[0] == 0x16 and head[1] == 3 and head[2] <= 4


def is_ssh(head: bytes | None) -> bool:
    return head is not None and head.startswith((b"SSH-2.0-", b"SSH-1.99-"))


def is_modbus(head: bytes | None) -> bool:
    """MBAP header: protocol id 0, length 2..254 covering unit id + PDU, a function code."""
    if head is None or len(head) < 8:
        return False
    _tid, proto_id, length = struct.unpack_from(">HHH", head)
    if proto_id != 0 or not 2 <= length <= 254:
        return False
    function = head[7] & 0x7F  # high bit = exception response
    return 1 <= function <= 127 and len(head) >= min(6 + length, 8)


def is_tftp_request(head: bytes | None) -> bool:
    """RRQ (1) or WRQ (2): opcode, NUL-terminated file name, NUL-terminated mode."""
    if head is None or len(head) < 4 or head[0] != 0 or head[1] not in (1, 2):
        return False
    parts = head[2:].split(b"\x00")
    return len(parts) >= 3 and bool(parts[0]) and parts[1].lower() in TFTP_MODES


def is_dhcp(head: bytes | None) -> bool:
    """BOOTP/DHCP message (RFC 2131): op 1/2, Ethernet htype 1 / hlen 6, and the magic
    cookie at offset 236 when the head reaches it (heads are cut at flows.HEAD_BYTES)."""
    if head is None or len(head) < 28 or head[0] not in (1, 2) or head[1:3] != b"\x01\x06":
        return False
    if len(head) >= 240:
        return head[236:240] == DHCP_MAGIC
    return len(head) >= HEAD_BYTES


def is_ntp(head: bytes | None) -> bool:
    """NTP v1-4 header: 48 bytes (plus an optional MAC), mode 1-5, stratum <= 16."""
    if head is None or not NTP_PACKET_LEN <= len(head) <= NTP_MAX_LEN:
        return False
    version = (head[0] >> 3) & 0x7
    mode = head[0] & 0x7
    return 1 <= version <= 4 and 1 <= mode <= 5 and head[1] <= 16


def is_ntp_control(head: bytes | None) -> bool:
    """NTP mode 6 control message (RFC 1305 appendix B): 12-byte header."""
    if head is None or len(head) < 12:
        return False
    version = (head[0] >> 3) & 0x7
    return 1 <= version <= 4 and head[0] & 0x7 in (6, 7)


def is_netbios_ns(head: bytes | None) -> bool:
    """A NetBIOS name service packet (RFC 1002 section 4.2.1): the 12-byte DNS-style
    header; its NBSTAT and name records need not parse as DNS."""
    return head is not None and len(head) >= 12


def is_dns(head: bytes | None) -> bool:
    """A DNS message: sane header counts and a question that parses to its end."""
    if head is None or len(head) < 17:
        return False
    _id, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", head)
    opcode = (flags >> 11) & 0xF
    if qd != 1 or opcode not in (0, 1, 2, 4, 5) or max(an, ns, ar) > 64:
        return False
    pos = 12
    while pos < len(head):
        label = head[pos]
        if label == 0:
            pos += 1
            break
        if label > 63:
            return False
        pos += 1 + label
    else:
        return False
    if pos + 4 > len(head):
        return len(head) >= 120  # head cut by the limit inside the question
    qclass = struct.unpack_from(">H", head, pos + 2)[0] & 0x7FFF  # mDNS: top bit = QU
    return qclass in (1, 3, 4, 254, 255)


# --- one connection ---------------------------------------------------------------------

Check = Callable[[bytes | None], bool]
TCP_CHECKS: tuple[tuple[str, Check], ...] = (
    ("tls", is_tls),
    ("ssh", is_ssh),
    ("http", is_http_request),
    ("http", is_http_response),
    ("modbus", is_modbus),
)
# Per TCP check, the first bytes it can accept (None: any).
_TCP_FIRST_BYTES: tuple[frozenset[int] | None, ...] = (
    frozenset({0x16}),  # TLS handshake record
    frozenset(b"S"),  # "SSH-"
    frozenset(m[0] for m in HTTP_METHODS),
    frozenset(b"H"),  # "HTTP/1."
    None,  # Modbus: starts with a transaction id
)
UDP_CHECKS: tuple[tuple[str, Check], ...] = (
    ("tftp", is_tftp_request),
    ("dns", is_dns),
)


def _tcp_rank(head: bytes | None) -> int:
    """Index in TCP_CHECKS of the first check `head` passes, len(TCP_CHECKS) if none.
    A check is called only when the head's first byte is one it can accept: most heads
    (binary protocols) are turned away by a set lookup per check."""
    if not head:
        return len(TCP_CHECKS)
    first = head[0]
    for rank, firsts in enumerate(_TCP_FIRST_BYTES):
        if (firsts is None or first in firsts) and TCP_CHECKS[rank][1](head):
            return rank
    return len(TCP_CHECKS)


def recognise(
    proto: str, resp_p: int, orig_head: bytes | None, resp_head: bytes | None
) -> str | None:
    """The application protocol of one connection, or None."""
    if not orig_head and not resp_head:
        return PORT_SERVICES.get((proto, int(resp_p)))
    if proto == "tcp":
        # the first check either head passes, as _first_match(TCP_CHECKS, ...) finds it
        rank = min(_tcp_rank(orig_head), _tcp_rank(resp_head))
        return TCP_CHECKS[rank][0] if rank < len(TCP_CHECKS) else None
    if proto == "udp":
        if resp_p in DHCP_PORTS and (is_dhcp(orig_head) or is_dhcp(resp_head)):
            return "dhcp"
        if resp_p == 123 and (is_ntp(orig_head) or is_ntp_control(orig_head) or is_ntp(resp_head)):
            return "ntp"
        if resp_p == NETBIOS_NS_PORT and (is_netbios_ns(orig_head) or is_netbios_ns(resp_head)):
            return "netbios-ns"  # RFC 1002 reuses the DNS header on udp/137; not DNS
        return _first_match(UDP_CHECKS, orig_head, resp_head)
    return None


def _first_match(
    checks: tuple[tuple[str, Check], ...], orig_head: bytes | None, resp_head: bytes | None
) -> str | None:
    for name, check in checks:
        if check(orig_head) or check(resp_head):
            return name
    return None


def recognise_all(
    proto: Iterable[str],
    resp_p: Iterable[int],
    orig_head: Iterable[bytes | None],
    resp_head: Iterable[bytes | None],
) -> list[str | None]:
    """recognise() over columns; connections without payload cost a dict lookup."""
    out: list[str | None] = []
    for pr, port, oh, rh in zip(proto, resp_p, orig_head, resp_head, strict=True):
        if not oh and not rh:
            out.append(PORT_SERVICES.get((pr, int(port))))
        else:
            out.append(recognise(pr, int(port), oh, rh))
    return out
