"""Service recognition from payload heads, and DNS answers with CNAME chains."""

from __future__ import annotations

import random
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


def test_tcp_first_byte_filter_changes_no_answer():
    """recognise() skips a check when the head's first byte cannot start what it looks
    for; over heads that pass each check and random ones, the answer is that of calling
    every check in order."""
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
        for name, check in services.TCP_CHECKS:
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
