"""Service recognition from payload heads, and DNS answers with CNAME chains."""

from __future__ import annotations

import random
import struct
from collections import Counter
from pathlib import Path

import dpkt
import pandas as pd
import pytest

from analyzer import services
from analyzer.services import dns_answers, is_http_request, recognise

TLS_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
MODBUS_READ = bytes.fromhex("0001 0000 0006 01 03 0000 000a".replace(" ", ""))
NTP_CLIENT = bytes([0x23]) + bytes(47)  # v4, mode 3 (client)
TFTP_RRQ = b"\x00\x01firmware.bin\x00octet\x00"
DHCP_DISCOVER = bytes([1, 1, 6, 0]) + bytes(232) + b"\x63\x82\x53\x63" + b"\x35\x01\x01\xff"


def _dns_query(name: str) -> bytes:
    msg = dpkt.dns.DNS(id=7, rd=1)
    msg.qd = [dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)]
    return bytes(msg)


@pytest.mark.parametrize(
    ("proto", "port", "orig", "resp", "service"),
    [
        ("tcp", 80, b"GET /index.html HTTP/1.1\r\nHost: a\r\n", None, "http"),
        ("tcp", 8080, None, b"HTTP/1.1 200 OK\r\n", "http"),
        ("tcp", 22, b"GET / HTTP/1.1\r\n", None, "http"),  # payload beats the port
        ("tcp", 443, TLS_HELLO, None, "tls"),
        ("tcp", 2222, None, b"SSH-2.0-OpenSSH_9.6\r\n", "ssh"),
        ("tcp", 502, MODBUS_READ, None, "modbus"),
        ("tcp", 80, b"\x00\x01garbage", None, None),  # payload present, not HTTP: no guess
        ("udp", 123, NTP_CLIENT, None, "ntp"),
        ("udp", 69, TFTP_RRQ, None, "tftp"),
        ("udp", 67, DHCP_DISCOVER, None, "dhcp"),
        ("udp", 67, DHCP_DISCOVER[:128], None, None),  # heads reach 256 bytes: 128 is all
        ("udp", 67, DHCP_DISCOVER[:100], None, None),  # a short datagram is not BOOTP
        ("udp", 53, _dns_query("cmi.ta.co.at"), None, "dns"),
        ("udp", 40000, b"\x01\x02\x03", None, None),
        # no payload either way: the port decides
        ("tcp", 443, None, None, "tls"),
        ("tcp", 502, b"", None, "modbus"),
        ("udp", 69, None, None, "tftp"),
        ("tcp", 12000, None, None, None),
    ],
)
def test_recognise(proto, port, orig, resp, service):
    assert recognise(proto, port, orig, resp) == service


def test_tcp_answer_is_the_first_check_in_order_either_head_passes():
    """Over heads that pass each TCP check (some two at once) and random ones, recognise()
    answers what calling the reference's checks in their order (TLS, SSH, HTTP request,
    HTTP response, Modbus) on both heads gives."""
    import services_reference as ref

    rng = random.Random(7)
    heads = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"PATCH /x HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x0a",
        b"\x16\x03\x00\x00\x00\x06\x01\x03",  # TLS and Modbus at once: TLS first
        b"Hello",
        b"S",
        None,
        b"",
    ]
    heads += [rng.randbytes(rng.randint(1, 40)) for _ in range(3000)]
    heads += [bytes([b]) + rng.randbytes(10) for b in range(256)]
    for orig in heads:
        resp = rng.choice(heads)
        if not orig and not resp:
            continue  # no payload: the port decides
        for name, check in ref.TCP_CHECKS:
            if check(orig) or check(resp):
                expected = name
                break
        else:
            expected = None
        assert recognise("tcp", 9999, orig, resp) == expected, (orig, resp)


def test_ntp_needs_port_123_and_a_48_byte_header():
    assert recognise("udp", 124, NTP_CLIENT, None) is None
    assert recognise("udp", 123, NTP_CLIENT[:40], None) is None


def test_is_http_request():
    assert is_http_request(b"POST /api HTTP/1.0\r\n")
    assert is_http_request(b"GET /" + b"a" * 200)  # request line cut by the head limit
    assert not is_http_request(b"GETX / HTTP/1.1\r\n")
    assert not is_http_request(b"get / HTTP/1.1\r\n")
    assert not is_http_request(b"\x16\x03\x01")
    assert not is_http_request(None)
    assert not is_http_request(b"")


def _response(name: str, records: list[tuple[str, str, str]]) -> bytes:
    msg = dpkt.dns.DNS(id=1, qr=dpkt.dns.DNS_R, rd=1, ra=1)
    msg.qd = [dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)]
    answers = []
    for owner, kind, value in records:
        if kind == "CNAME":
            answers.append(dpkt.dns.DNS.RR(name=owner, type=dpkt.dns.DNS_CNAME, cname=value))
        elif kind == "A":
            rr = dpkt.dns.DNS.RR(name=owner, type=dpkt.dns.DNS_A)
            rr.rdata = rr.ip = bytes(int(x) for x in value.split("."))
            answers.append(rr)
        else:
            import ipaddress

            rr = dpkt.dns.DNS.RR(name=owner, type=dpkt.dns.DNS_AAAA)
            rr.rdata = rr.ip6 = ipaddress.ip_address(value).packed
            answers.append(rr)
    msg.an = answers
    return bytes(msg)


def test_dns_answers_follow_cname_chains():
    payload = _response(
        "CMI.ta.co.at",
        [
            ("cmi.ta.co.at", "CNAME", "edge.ta-cdn.example"),
            ("edge.ta-cdn.example", "CNAME", "lb.ta-cdn.example"),
            ("lb.ta-cdn.example", "A", "198.51.100.7"),
            ("lb.ta-cdn.example", "AAAA", "2001:db8::7"),
        ],
    )
    ts = pd.Timestamp("2024-05-01T10:00:00Z")
    dns = pd.DataFrame(
        [{"ts": ts, "client": "192.168.1.40", "server": "192.168.1.1", "payload": payload}]
    )
    out = dns_answers(dns)
    got = sorted(zip(out["qname"], out["answer"], strict=True))
    assert got == sorted(
        (n, a)
        for n in ("cmi.ta.co.at", "edge.ta-cdn.example", "lb.ta-cdn.example")
        for a in ("198.51.100.7", "2001:db8::7")
    )
    assert set(out["client"]) == {"192.168.1.40"}
    assert list(out.columns) == ["ts", "client", "qname", "answer"]


def test_malformed_dns_payloads_are_ignored_and_counted():
    good = _response("api.ta.co.at", [("api.ta.co.at", "A", "198.51.100.8")])
    rows = [
        {"ts": 1, "client": "c", "server": "s", "payload": good},
        {"ts": 2, "client": "c", "server": "s", "payload": b"\x00\x01\x02"},
        {"ts": 3, "client": "c", "server": "s", "payload": _dns_query("x.example")},  # a query
    ]
    skipped: Counter[str] = Counter()
    out = dns_answers(pd.DataFrame(rows), skipped=skipped)
    assert list(zip(out["qname"], out["answer"], strict=True)) == [("api.ta.co.at", "198.51.100.8")]
    assert skipped == Counter({"dns_malformed": 2})
    assert out.attrs["malformed"] == 2


def test_no_dns_gives_an_empty_table():
    out = dns_answers(pd.DataFrame(columns=["ts", "client", "server", "payload"]))
    assert list(out.columns) == ["ts", "client", "qname", "answer"]
    assert len(out) == 0


# --- against tshark on public captures ------------------------------------------------

PUBLIC = Path(__file__).resolve().parent.parent.parent / "shared" / "pcaps" / "public"

DNS_CAPTURES = [
    "zeek/pcapng-multi-interface.pcapng",
    "nfstream/KakaoTalk_chat.pcap",  # Linux SLL
    "nfstream/tls_certificate_too_long.pcap",
    "dpkt/dns_icmp.pcap",
]
# tshark's dns.a covers every section; dns_answers reads the answer section only, so the
# comparison uses responses without authority/additional records.
ANSWER_ONLY = (
    "dns.flags.response==1 && udp.srcport==53 && dns.count.auth_rr==0 && dns.count.add_rr==0"
)


def _link(buf: bytes, linktype: int):
    return dpkt.sll.SLL(buf).data if linktype == 113 else dpkt.ethernet.Ethernet(buf).data


def _dns_responses(path, frames: set[int]) -> pd.DataFrame:
    """UDP payloads of the given frames (1-based), read with dpkt (not the project's
    reader)."""
    rows = []
    with open(path, "rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if path.suffix == ".pcapng" else dpkt.pcap.Reader(fh)
        linktype = reader.datalink()
        for number, (ts, buf) in enumerate(reader, start=1):
            if number in frames:
                udp = _link(buf, linktype).data
                rows.append({"ts": ts, "client": "c", "server": "s", "payload": bytes(udp.data)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rel", DNS_CAPTURES)
def test_dns_answer_addresses_match_tshark(rel, tshark):
    import subprocess

    path = PUBLIC / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    fields = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-Y",
            ANSWER_ONLY,
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "dns.a",
            "-e",
            "dns.aaaa",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    frames, truth = set(), set()
    for line in fields.splitlines():
        number, *addresses = line.split("\t")
        frames.add(int(number))
        truth |= {a for field in addresses for a in field.split(",") if a}
    got = set(dns_answers(_dns_responses(path, frames))["answer"])
    assert got == truth
    assert len(truth) >= 1


def _nbns_query(encoded_name: bytes) -> bytes:
    """A NetBIOS name query (RFC 1002 section 4.2.12): id, flags 0x0110 (broadcast, rd),
    one question of type NB (0x20), class IN."""
    header = bytes.fromhex("8a2f 0110 0001 0000 0000 0000".replace(" ", ""))
    return header + bytes([32]) + encoded_name + b"\x00" + bytes.fromhex("00200001")


def test_netbios_name_service_is_not_dns() -> None:
    # RFC 1002 first-level encoding of "WORKGROUP" padded to 16 bytes with spaces
    name = b"".join(bytes([65 + (c >> 4), 65 + (c & 15)]) for c in b"WORKGROUP       ")
    assert recognise("udp", 137, _nbns_query(name), None) == "netbios-ns"
    assert recognise("udp", 137, None, None) == "netbios-ns"  # by port, no payload
    assert recognise("udp", 53, _dns_query("cmi.ta.co.at"), None) == "dns"


# --- the kernels against the pure-Python reference (tests/services_reference.py) -------

CHECK_NAMES = (
    "is_http_request", "is_http_response", "is_tls", "is_ssh", "is_modbus",
    "is_tftp_request", "is_dhcp", "is_ntp", "is_ntp_control", "is_netbios_ns", "is_dns",
)  # fmt: skip
PORTS = (0, 22, 53, 67, 68, 69, 80, 123, 124, 135, 137, 443, 502, 5353, 5355, 9999, 65535)


def _shaped_heads() -> list[bytes]:
    """Heads that pass, almost pass and just fail each recogniser's rules."""
    heads = [TLS_HELLO, MODBUS_READ, NTP_CLIENT, TFTP_RRQ, DHCP_DISCOVER]
    heads += [m + b" /x HTTP/1.1\r\n" for m in services.HTTP_METHODS]
    heads += [b"GET / HTTP/1.0", b"GET /x\r\r\nHost", b"GET /x HTTP/1.0\r\r\n", b"GET  /x",
              b"GET ", b"GET /a b HTTP/1.1\n", b"GET /\x7f", b"GET /\x00abc", b"GETX / HTTP/1.1",
              b"get / HTTP/1.1\r\n", b"OPTIONS * HTTP/1.1\r\n", b"GET /x HTTP/2\r\n",
              b"GET / HTTP/1.1", b"HTTP/1.1 200 OK", b"HTTP/1.0 ", b"HTTP/1.2 200", b"HTTP/1.1",
              b"SSH-2.0-x", b"SSH-1.99-x", b"SSH-1.5-x", b"SSH-2.0", b"\x16\x03\x04",
              b"\x16\x03\x05", b"\x16\x02\x01", b"\x16\x03"]  # fmt: skip
    for mode in (b"octet", b"OCTET", b"NetAscii", b"mail", b"binary", b""):
        heads += [
            b"\x00\x01f\x00" + mode + b"\x00",
            b"\x00\x02f\x00" + mode,
            b"\x00\x01\x00" + mode + b"\x00",
        ]
    heads += [b"\x00\x03f\x00octet\x00", b"\x00\x01f\x00octet\x00\x00", b"\x00\x01"]
    for length in (0, 1, 2, 254, 255, 300):
        for function in (0, 1, 0x83, 0x80, 127):
            heads.append(struct.pack(">HHHBB", 1, 0, length, 1, function) + b"\x00\x01")
    heads.append(struct.pack(">HHHBB", 1, 1, 6, 1, 3) + b"\x00\x01")
    for first in range(256):
        heads.append(bytes([first, 16]) + bytes(46))
        heads.append(bytes([first, 17]) + bytes(46))
        heads.append(bytes([first, 0]) + bytes(10))
    heads += [bytes([0x23]) + bytes(n - 1) for n in (47, 48, 52, 72, 73)]
    for n in (27, 28, 100, 239, 240, 255, 256):
        for op in (1, 2, 3):
            heads.append((bytes([op, 1, 6, 0]) + bytes(232) + DHCP_MAGIC_BYTES + bytes(16))[:n])
    heads.append(bytes([1, 1, 6, 0]) + bytes(232) + b"\x63\x82\x53\x64" + bytes(16))
    heads.append(bytes([1, 6, 1, 0]) + bytes(252))
    for name in ("cmi.ta.co.at", "a", "x" * 63 + ".example", "_ldap._tcp.dc"):
        q = _dns_query(name)
        heads += [q[:n] for n in range(len(q) + 1)]
        for cls in (1, 2, 3, 4, 254, 255, 0x8001, 0x8002):
            heads.append(q[:-2] + struct.pack(">H", cls))
    heads.append(_dns_query("x" * 60 + "." + "y" * 60)[:120])
    heads.append(_dns_query("x" * 60 + "." + "y" * 60)[:119])
    q = bytearray(_dns_query("cmi.ta.co.at"))
    for at, value in ((4, 2), (5, 2), (2, 0x18), (2, 0x20), (2, 0x28), (7, 65), (12, 64)):
        bad = bytearray(q)
        bad[at] = value
        heads.append(bytes(bad))
    return heads


DHCP_MAGIC_BYTES = b"\x63\x82\x53\x63"


def _corpus(rng: random.Random) -> list[bytes | None]:
    shaped = _shaped_heads()
    heads: list[bytes | None] = [None, b"", *shaped]
    for h in shaped:  # one flipped bit, one byte changed, cut short
        if h:
            i = rng.randrange(len(h))
            heads.append(h[:i] + bytes([h[i] ^ (1 << rng.randrange(8))]) + h[i + 1 :])
            heads.append(h[:i] + bytes([rng.randrange(256)]) + h[i + 1 :])
            heads.append(h[: rng.randrange(len(h))])
    heads += [rng.randbytes(rng.choice((1, 3, 8, 12, 17, 48, 120, 240, 256))) for _ in range(2000)]
    return heads


def test_each_recogniser_answers_as_the_reference():
    import services_reference as ref

    heads = _corpus(random.Random(11))
    for name in CHECK_NAMES:
        mine, theirs = getattr(services, name), getattr(ref, name)
        wrong = [h for h in heads if mine(h) != theirs(h)]
        assert wrong == [], (name, wrong[:5])


def test_recognise_column_answers_as_the_reference_per_connection():
    """Over connections drawn from the corpus (both heads, every transport and the ports
    with a rule), the column kernel gives the reference's recognise() of each row."""
    import services_reference as ref

    rng = random.Random(12)
    heads = _corpus(rng)
    n = 20_000
    proto = [rng.choice(("tcp", "udp", "udp", "icmp", "gre")) for _ in range(n)]
    port = [rng.choice(PORTS) for _ in range(n)]
    orig = [rng.choice(heads) for _ in range(n)]
    resp = [rng.choice(heads) if rng.random() < 0.5 else None for _ in range(n)]
    got = services.recognise_column(
        pd.Series(proto),
        pd.Series(port),
        pd.Series(orig, dtype=object),
        pd.Series(resp, dtype=object),
    )
    expected = [ref.recognise(*row) for row in zip(proto, port, orig, resp, strict=True)]
    rows = list(zip(proto, port, orig, resp, strict=True))
    wrong = [(r, g, e) for r, g, e in zip(rows, got, expected, strict=True) if g != e]
    assert wrong == [], wrong[:5]
    assert services.recognise_column(pd.Series(proto), pd.Series(port), None, None).tolist() == [
        ref.recognise(p, q, None, None) for p, q in zip(proto, port, strict=True)
    ]
    assert {e for e in expected} >= set(services.SERVICES) | {None}  # every answer was drawn
