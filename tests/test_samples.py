"""The generated sample captures: reproducible byte for byte, clean in tshark, and shaped
like the protocols they claim to carry (checked with dpkt, independently of pcapclass)."""

from __future__ import annotations

import gzip
import importlib.util
import ipaddress
import re
import struct
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import dpkt
import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "sample_pcaps"

EXPECTED_FILES = {
    "mixed_site.pcapng",
    "cmi_site.pcap.gz",
    "sesam_site.sll2.pcap",
    "gemos_site.vlan.pcap",
}


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_generate", SAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sample_generate"] = module
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("samples")
    return out, GEN.generate_all(out)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Pkt:
    ts_ns: int
    src_mac: str
    dst_mac: str
    vlan: int | None
    ip: dpkt.ip.IP | dpkt.ip6.IP6 | None
    arp: dpkt.arp.ARP | None
    iface: int


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def raw_records(path: Path) -> tuple[list[int], list[tuple[int, int, bytes]]]:
    """(linktypes per interface, [(interface, ts_ns, data)]) parsed with struct, so that
    the test does not depend on any reader's handling of if_tsresol or nanosecond pcap."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic = struct.unpack_from("<I", data)[0]
    if magic == 0x0A0D0D0A:
        return _pcapng_records(data)
    nano = magic == 0xA1B23C4D
    assert magic in (0xA1B2C3D4, 0xA1B23C4D)
    linktype = struct.unpack_from("<I", data, 20)[0]
    records, off = [], 24
    while off < len(data):
        sec, frac, caplen, _ = struct.unpack_from("<IIII", data, off)
        ts = sec * 10**9 + (frac if nano else frac * 1000)
        records.append((0, ts, data[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    return [linktype], records


def _pcapng_records(data: bytes) -> tuple[list[int], list[tuple[int, int, bytes]]]:
    linktypes: list[int] = []
    tsres: list[int] = []
    records = []
    off = 0
    while off < len(data):
        kind, total = struct.unpack_from("<II", data, off)
        body = data[off + 8 : off + total - 4]
        if kind == 1:
            linktypes.append(struct.unpack_from("<H", body)[0])
            tsres.append(_tsresol(body[8:]))
        elif kind == 6:
            iface, hi, lo, caplen, _ = struct.unpack_from("<IIIII", body)
            units = (hi << 32) | lo
            records.append((iface, units * 10 ** (9 - tsres[iface]), body[20 : 20 + caplen]))
        off += total
    return linktypes, records


def _tsresol(options: bytes) -> int:
    off = 0
    while off + 4 <= len(options):
        code, length = struct.unpack_from("<HH", options, off)
        if code == 0:
            break
        if code == 9:
            return options[off + 4]
        off += 4 + length + (-length % 4)
    return 6


def read_packets(path: Path) -> list[Pkt]:
    linktypes, records = raw_records(path)
    out = []
    for iface, ts, buf in records:
        if linktypes[iface] == 276:  # LINUX_SLL2
            ethertype = struct.unpack_from(">H", buf)[0]
            src, dst, vlan, payload = _mac(buf[12:18]), "", None, buf[20:]
        else:
            eth = dpkt.ethernet.Ethernet(buf)
            ethertype = {dpkt.ip.IP: 0x0800, dpkt.ip6.IP6: 0x86DD, dpkt.arp.ARP: 0x0806}.get(
                type(eth.data), eth.type
            )
            src, dst = _mac(eth.src), _mac(eth.dst)
            vlan = eth.vlan_tags[0].id if getattr(eth, "vlan_tags", None) else None
            payload = bytes(eth.data)
        ip = arp = None
        if ethertype == 0x0800:
            ip = dpkt.ip.IP(payload)
        elif ethertype == 0x86DD:
            ip = dpkt.ip6.IP6(payload)
        elif ethertype == 0x0806:
            arp = dpkt.arp.ARP(payload)
        out.append(Pkt(ts, src, dst, vlan, ip, arp, iface))
    return out


def addr(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def l4(pkt: Pkt, kind: type) -> object | None:
    if pkt.ip is None or not isinstance(pkt.ip.data, kind):
        return None
    return pkt.ip.data


@pytest.fixture(scope="module", params=sorted(EXPECTED_FILES))
def sample(request: pytest.FixtureRequest) -> Path:
    return SAMPLES / request.param


# ----------------------------------------------------------------------------- determinism


def test_generator_writes_exactly_the_committed_files(regenerated: tuple[Path, dict[str, int]]):
    out, counts = regenerated
    assert set(counts) == EXPECTED_FILES
    assert {p.name for p in out.iterdir()} == EXPECTED_FILES


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_regeneration_is_byte_identical(name: str, regenerated: tuple[Path, dict[str, int]]):
    out, _ = regenerated
    assert (out / name).read_bytes() == (SAMPLES / name).read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_generator_reports_the_packets_in_the_file(name: str, regenerated):
    _, counts = regenerated
    assert len(raw_records(SAMPLES / name)[1]) == counts[name]


def test_samples_stay_small():
    total = sum(p.stat().st_size for p in SAMPLES.iterdir() if p.name in EXPECTED_FILES)
    assert total < 1_000_000


def test_every_sample_has_a_site_file():
    for name in EXPECTED_FILES:
        assert (SAMPLES / (name.split(".")[0] + ".site.toml")).is_file()


def test_gzip_header_carries_no_time_or_name():
    head = (SAMPLES / "cmi_site.pcap.gz").read_bytes()[:10]
    flags, mtime, os_byte = head[3], struct.unpack_from("<I", head, 4)[0], head[9]
    assert (flags, mtime, os_byte) == (0, 0, 255)


def test_pcapng_section_header_names_only_the_generator():
    data = (SAMPLES / "mixed_site.pcapng").read_bytes()
    total = struct.unpack_from("<I", data, 4)[0]
    options = data[24 : total - 4]
    codes, off = [], 0
    while off < len(options):
        code, length = struct.unpack_from("<HH", options, off)
        codes.append((code, options[off + 4 : off + 4 + length]))
        off += 4 + length + (-length % 4)
    assert codes == [(4, b"pcapclass sample_pcaps/generate.py"), (0, b"")]


# ----------------------------------------------------------------------------- tshark

# Warnings the scenario intends: the refused connection attempts in the demo.
EXPECTED_TSHARK_WARNINGS = {
    "mixed_site.pcapng": Counter({"Connection reset (RST)": 3}),
}


CHECKSUMS = [
    "-o", "ip.check_checksum:TRUE",
    "-o", "tcp.check_checksum:TRUE",
    "-o", "udp.check_checksum:TRUE",
]  # fmt: skip
EXPERT_LINE = re.compile(r"^\s+(\d+)\s+\S+\s+\S+\s+(.*?)\s*$")


def tshark_report(tshark: str, path: Path) -> tuple[int, int, Counter[str]]:
    """(packets, malformed packets, expert summaries at warning level or above -> count)
    as tshark sees the file with IP/TCP/UDP checksum validation switched on."""
    fields = [tshark, "-n", "-r", str(path), *CHECKSUMS, "-T", "fields", "-e", "_ws.malformed"]
    lines = subprocess.run(fields, capture_output=True, text=True, check=True).stdout.splitlines()
    malformed = sum(1 for line in lines if line.strip())
    expert = [tshark, "-n", "-r", str(path), *CHECKSUMS, "-q", "-z", "expert,warn"]
    report = subprocess.run(expert, capture_output=True, text=True, check=True).stdout
    problems: Counter[str] = Counter()
    for line in report.splitlines():
        if m := EXPERT_LINE.match(line):
            problems[m.group(2)] += int(m.group(1))
    return len(lines), malformed, problems


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_tshark_reads_every_packet_without_warnings(tshark: str, name: str, regenerated):
    _, counts = regenerated
    packets, malformed, problems = tshark_report(tshark, SAMPLES / name)
    assert (packets, malformed) == (counts[name], 0)
    assert problems == EXPECTED_TSHARK_WARNINGS.get(name, Counter())


# ----------------------------------------------------------------------------- TCP realism


def test_tcp_sequence_and_ack_numbers_are_consistent(sample: Path):
    """Every segment starts where the previous one of its direction ended, and every ACK
    acknowledges exactly what the peer has sent so far (no gaps, no retransmissions)."""
    next_seq: dict[tuple, int] = {}
    checked = 0
    for pkt in read_packets(sample):
        tcp = l4(pkt, dpkt.tcp.TCP)
        if tcp is None:
            continue
        me = (addr(pkt.ip.src), tcp.sport, addr(pkt.ip.dst), tcp.dport)
        peer = (me[2], me[3], me[0], me[1])
        if me in next_seq and not tcp.flags & dpkt.tcp.TH_SYN:
            assert tcp.seq == next_seq[me], me
        if tcp.flags & dpkt.tcp.TH_ACK and peer in next_seq:
            assert tcp.ack == next_seq[peer], me
            checked += 1
        step = len(tcp.data) + (1 if tcp.flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
        next_seq[me] = (tcp.seq + step) & 0xFFFFFFFF
    assert checked > 100


def test_timestamps_start_on_the_fixed_morning_and_never_go_back(sample: Path):
    _, records = raw_records(sample)
    stamps = [ts for _, ts, _ in records]
    assert stamps == sorted(stamps)
    start = 1772438400 * 10**9  # 2026-03-02 08:00:00 UTC
    assert start <= stamps[0] < start + 5 * 10**9
    assert 9 * 60 * 10**9 < stamps[-1] - stamps[0] < 16 * 60 * 10**9


def test_short_ethernet_frames_are_padded_like_on_the_wire():
    _, records = raw_records(SAMPLES / "mixed_site.pcapng")
    assert min(len(buf) for _, _, buf in records) == 60


# ----------------------------------------------------------------------------- C.M.I.


def cmi_packets() -> list[Pkt]:
    return read_packets(SAMPLES / "cmi_site.pcap.gz")


def test_cmi_dns_answers_decode_to_the_ta_servers():
    answers = {}
    for pkt in cmi_packets():
        udp = l4(pkt, dpkt.udp.UDP)
        if udp is None or udp.sport != 53:
            continue
        msg = dpkt.dns.DNS(udp.data)
        assert msg.qr == dpkt.dns.DNS_R and msg.rcode == 0
        answers[msg.qd[0].name] = [addr(rr.ip) for rr in msg.an if rr.type == dpkt.dns.DNS_A]
    assert answers == {
        "pool.ntp.org": ["192.0.2.123"],
        "cmi.ta.co.at": ["198.51.100.20"],
        "api.ta.co.at": ["198.51.100.30"],
        "www.ta.co.at": ["198.51.100.10"],
        "cloudmail.services.ta.co.at": ["198.51.100.21"],
    }


def test_cmi_opens_each_ta_port_to_the_address_its_name_resolved_to():
    syns = Counter()
    for pkt in cmi_packets():
        tcp = l4(pkt, dpkt.tcp.TCP)
        if tcp is not None and tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
            syns[(addr(pkt.ip.src), addr(pkt.ip.dst), tcp.dport)] += 1
    assert syns == Counter(
        {
            ("192.168.1.40", "198.51.100.20", 40001): 1,
            ("192.168.1.40", "198.51.100.30", 40003): 1,
            ("192.168.1.40", "198.51.100.21", 40002): 1,
            ("192.168.1.40", "198.51.100.10", 80): 2,
            ("192.168.1.60", "192.168.1.40", 502): 1,
        }
    )


def test_cmi_closes_its_mail_connection_itself():
    fins = [
        addr(p.ip.src)
        for p in cmi_packets()
        if (t := l4(p, dpkt.tcp.TCP)) is not None
        and 40002 in (t.sport, t.dport)
        and t.flags & dpkt.tcp.TH_FIN
    ]
    assert fins == ["192.168.1.40", "198.51.100.21"]


def test_cmi_update_check_is_a_real_http_get():
    requests = []
    for pkt in cmi_packets():
        tcp = l4(pkt, dpkt.tcp.TCP)
        if tcp is not None and tcp.dport == 80 and tcp.data:
            requests.append(dpkt.http.Request(tcp.data))
    assert [(r.method, r.uri, r.version, r.headers["host"]) for r in requests] == [
        ("GET", "/downloads/cmi/version.txt", "1.1", "www.ta.co.at")
    ] * 2


def test_modbus_frames_are_mbap_read_holding_registers():
    requests, responses = {}, {}
    for pkt in cmi_packets():
        tcp = l4(pkt, dpkt.tcp.TCP)
        if tcp is None or 502 not in (tcp.sport, tcp.dport) or not tcp.data:
            continue
        trans, proto, length, unit, func = struct.unpack_from(">HHHBB", tcp.data)
        assert (proto, unit, func, length) == (0, 1, 3, len(tcp.data) - 6)
        if tcp.dport == 502:
            requests[trans] = struct.unpack_from(">HH", tcp.data, 8)
        else:
            assert tcp.data[8] == len(tcp.data) - 9
            responses[trans] = tcp.data[8] // 2
    assert len(requests) == 58
    assert {t: count for t, (_, count) in requests.items()} == responses


def test_ntp_packets_are_48_byte_client_server_pairs():
    modes = [
        (p.ip.data.sport, len(p.ip.data.data), p.ip.data.data[0] & 7)
        for p in cmi_packets()
        if (u := l4(p, dpkt.udp.UDP)) is not None and 123 in (u.sport, u.dport)
    ]
    assert modes == [(123, 48, 3), (123, 48, 4)] * 2


def test_coe_v1_and_v2_flow_between_the_two_cmis():
    seen = Counter()
    for pkt in cmi_packets():
        udp = l4(pkt, dpkt.udp.UDP)
        if udp is not None and udp.dport in (5441, 5442):
            seen[(addr(pkt.ip.src), addr(pkt.ip.dst), udp.sport, udp.dport, len(udp.data))] += 1
    assert set(seen) == {
        ("192.168.1.40", "192.168.1.41", 5441, 5441, 14),
        ("192.168.1.41", "192.168.1.40", 5442, 5442, 28),
    }


# ----------------------------------------------------------------------------- Sesam


def test_sesam_search_is_a_broadcast_and_unicast_replies_41797_to_41797():
    pkts = read_packets(SAMPLES / "sesam_site.sll2.pcap")
    searches = defaultdict(list)
    current = None
    for pkt in pkts:
        udp = l4(pkt, dpkt.udp.UDP)
        if udp is None or udp.dport != 41797:
            continue
        assert udp.sport == 41797
        if addr(pkt.ip.dst) == "255.255.255.255":
            current = pkt.ts_ns
            assert addr(pkt.ip.src) == "192.168.20.50"
        elif addr(pkt.ip.dst) == "192.168.20.50" and pkt.ts_ns - current < 10**8:
            assert pkt.src_mac.startswith("00:20:4a:")
            searches[current].append(addr(pkt.ip.src))
    isenets = [f"192.168.20.{n}" for n in (201, 202, 203, 204)]
    assert list(searches.values()) == [isenets, isenets]


def test_sesam_tftp_server_answers_from_a_new_port_in_lock_step():
    pkts = read_packets(SAMPLES / "sesam_site.sll2.pcap")
    tftp = [
        (addr(p.ip.src), u.sport, u.dport, struct.unpack_from(">H", u.data)[0])
        for p in pkts
        if (u := l4(p, dpkt.udp.UDP)) is not None
        and addr(p.ip.src) in ("192.168.20.50", "192.168.20.202")
        and addr(p.ip.dst) in ("192.168.20.50", "192.168.20.202")
        and 41798 not in (u.sport, u.dport)
        and 41797 not in (u.sport, u.dport)
    ]
    requests = [t for t in tftp if t[2] == 69]
    assert [t[3] for t in requests] == [1, 2]  # RRQ, then WRQ
    wrq_at = tftp.index(requests[1])
    server_port = tftp[wrq_at + 1][1]
    assert server_port != 69
    assert tftp[wrq_at + 1][3] == 4  # ACK 0
    opcodes = [t[3] for t in tftp[wrq_at + 2 :]]
    assert opcodes == [3, 4] * 28  # 14000 bytes: 27 full blocks and one short block


def test_sll2_records_carry_ethernet_arphrd_and_the_sensor_interface():
    _, records = raw_records(SAMPLES / "sesam_site.sll2.pcap")
    heads = {struct.unpack_from(">IHB", buf, 4) for _, _, buf in records}
    assert {(ifindex, hatype) for ifindex, hatype, _ in heads} == {(3, 1)}
    assert {kind for *_, kind in heads} == {1, 3}  # broadcast, other host (promiscuous)


# ----------------------------------------------------------------------------- GEMOS


def test_gemos_mirror_port_frames_are_all_vlan_tagged():
    pkts = read_packets(SAMPLES / "gemos_site.vlan.pcap")
    by_vlan = Counter(p.vlan for p in pkts)
    assert set(by_vlan) == {120, 130}
    field = {addr(p.ip.src) for p in pkts if p.vlan == 130 and p.ip is not None}
    assert field == {"10.13.0.10", "10.13.0.31", "10.13.0.32", "10.13.0.40"}


def sni_of(payload: bytes) -> str | None:
    """The server_name of a TLS ClientHello record, parsed by hand."""
    if payload[:1] != b"\x16" or payload[5:6] != b"\x01":
        return None
    off = 9 + 2 + 32
    off += 1 + payload[off]
    off += 2 + struct.unpack_from(">H", payload, off)[0]
    off += 1 + payload[off]
    end = off + 2 + struct.unpack_from(">H", payload, off)[0]
    off += 2
    while off < end:
        kind, length = struct.unpack_from(">HH", payload, off)
        if kind == 0:
            return payload[off + 9 : off + 4 + length].decode()
        off += 4 + length
    return None


def test_tls_client_hellos_carry_sni():
    hellos = Counter()
    for name in ("gemos_site.vlan.pcap", "mixed_site.pcapng"):
        for pkt in read_packets(SAMPLES / name):
            tcp = l4(pkt, dpkt.tcp.TCP)
            if tcp is not None and tcp.data and (sni := sni_of(bytes(tcp.data))):
                hellos[(tcp.dport, sni)] += 1
    assert hellos[(12043, "gemos.local")] == 1
    assert hellos[(443, "gemos1.leitstelle.local")] == 1
    assert hellos[(12443, "gemos1.leitstelle.local")] == 1
    assert hellos[(443, "outlook.office365.com")] >= 1
    assert all(port in (443, 12043, 12443) for port, _ in hellos)


def test_gemos_maintenance_requests_hit_documented_ports():
    ports = Counter()
    for pkt in read_packets(SAMPLES / "gemos_site.vlan.pcap"):
        tcp = l4(pkt, dpkt.tcp.TCP)
        if tcp is not None and tcp.data[:4] == b"GET ":
            ports[tcp.dport] += 1
    assert sorted(ports) == [
        80, 12008, 12079, 12080, 12081, 12082, 12083, 12084, 12090, 12091, 12092, 12093,
        12094, 12101, 12102, 12288, 12911,
    ]  # fmt: skip
    assert ports[12288] == 2  # the HA agent's page on both servers
