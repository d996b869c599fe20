"""Every documented row of ../shared/spec/systems.md, both ways, with its verdict written
out here (not derived from classify's tables): a connection in the documented direction
between hosts holding the documented roles, and the same connection opened by the other
side (the hosts swapped, the ports kept). A side the document gives as "any host" is a
host without a role; "the internet" is 198.51.100.20, everything else is local.

Then every role's common infrastructure (signatures/common.toml [[infrastructure]],
issue 12): each common signature used by a host of each role, as originator and as
responder, towards a host without a role.

The catalog is loaded by a fixture: a catalog that fails to load fails every test."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
from conftest import flow_row

from analyzer.classify import classify
from analyzer.flows import FlowResult
from analyzer.signatures import Catalog, load_catalog
from analyzer.site import parse_site

T0 = pd.Timestamp("2024-05-01T10:00:00Z")
A, B = "10.1.0.1", "10.1.0.2"  # originator and responder of the documented direction
NET = "198.51.100.20"  # a responder on the internet
BCAST = "255.255.255.255"
HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
BINARY = b"\x00\x01\x02binary"
ICMP_REPLY = {("icmp", 8): 0, ("icmp6", 128): 129, ("icmp6", 133): 134, ("icmp6", 135): 136}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()  # any SignatureError fails the test


@dataclass(frozen=True)
class Row:
    """One documented row: what is opened, by whom, and the two verdicts.

    `back` is (verdict, system, signature_id) of the reversed connection; None only where
    no reversed connection exists (a broadcast cannot open anything)."""

    sig: str
    proto: str
    port: int  # responder port; ICMP: the request type
    orig_role: str | None
    resp_role: str | None
    fwd: tuple[str, str | None, str | None]
    back: tuple[str, str | None, str | None] | None
    orig_p: int = 50001
    resp_h: str = B
    head: bytes | None = None


def exp(sig: str, system: str) -> tuple[str, str, str]:
    return ("expected", system, sig)


def wrong(sig: str, system: str) -> tuple[str, str, str]:
    return ("wrong_direction", system, sig)


G, GC, CS = "gemos_server", "gemos_client", "comserver"
SC, SCL, ISE, DB, CMI = "sescomm_server", "sesam_client", "isenet", "sesam_db", "cmi"
INBOUND_LOCAL = ("inbound_to_cmi", "cmi", None)  # severity high (test below)
INBOUND_NET = ("inbound_to_cmi", "cmi", None)  # severity critical


def _gemos_http(sig: str, port: int, status: str = "expected") -> Row:
    """A client -> server row of the GEMOS table (UI, maintenance accesses)."""
    fwd = (status, "gemos4", sig)
    return Row(sig, "tcp", port, GC, G, fwd, wrong(sig, "gemos4"))


def _reserved(sig: str, proto: str, port: int) -> Row:
    """An unused/reserved range: reserved whoever opens it, between GEMOS hosts."""
    r = ("reserved", "gemos4", sig)
    return Row(sig, proto, port, GC, G, r, r)


ROWS: tuple[Row, ...] = (
    # --- 1. GEMOS 4, "Portnummern im GEMOS4-System" (client -> server unless stated)
    _gemos_http("gemos4.ui-http-80", 80),
    _gemos_http("gemos4.ui-https-443", 443),
    _gemos_http("gemos4.pro02-tcp", 12000),
    # discovery: may be broadcast, any GEMOS host, either way
    Row(
        "gemos4.discovery-udp-12000", "udp", 12000, G, GC,
        exp("gemos4.discovery-udp-12000", "gemos4"), exp("gemos4.discovery-udp-12000", "gemos4"),
    ),
    # server-internal / between servers: the same role on both sides, so both ways fit
    Row(
        "gemos4.dynrd-gacd-12001", "tcp", 12001, G, G,
        exp("gemos4.dynrd-gacd-12001", "gemos4"), exp("gemos4.dynrd-gacd-12001", "gemos4"),
    ),
    Row(
        "gemos4.pro02-sync-12002", "tcp", 12002, G, G,
        exp("gemos4.pro02-sync-12002", "gemos4"), exp("gemos4.pro02-sync-12002", "gemos4"),
    ),
    _reserved("gemos4.reserved-12003-12007-tcp", "tcp", 12005),
    _reserved("gemos4.reserved-12003-12007-udp", "udp", 12003),
    _gemos_http("gemos4.symbolserver-12008", 12008),
    _reserved("gemos4.reserved-12009-12021-tcp", "tcp", 12009),
    _reserved("gemos4.reserved-12009-12021-udp", "udp", 12021),
    _gemos_http("gemos4.pro02-aes-12022", 12022),
    _reserved("gemos4.reserved-12023-12042-tcp", "tcp", 12030),
    _reserved("gemos4.reserved-12023-12042-udp", "udp", 12042),
    _gemos_http("gemos4.pro02-tls-12043", 12043),
    _reserved("gemos4.reserved-12044-12077-tcp", "tcp", 12077),
    _reserved("gemos4.reserved-12044-12077-udp", "udp", 12044),
    # 12079 twice in the document: told apart by the originator's first bytes
    Row(
        "gemos4.printer-12079", "tcp", 12079, GC, G,
        exp("gemos4.printer-12079", "gemos4"), wrong("gemos4.printer-12079", "gemos4"),
        head=BINARY,
    ),
    Row(
        "gemos4.gdarcs-12079", "tcp", 12079, GC, G,
        exp("gemos4.gdarcs-12079", "gemos4"), wrong("gemos4.gdarcs-12079", "gemos4"),
        head=HTTP,
    ),
    _gemos_http("gemos4.ui-alt-http-12080", 12080),
    _gemos_http("gemos4.ui-alt-https-12443", 12443),
    _gemos_http("gemos4.maint-gzrouter-12081", 12081),
    _gemos_http("gemos4.maint-gbackup-12082", 12082),
    _gemos_http("gemos4.maint-i2-12083", 12083),
    _gemos_http("gemos4.maint-vms2-12084", 12084),
    _reserved("gemos4.reserved-12085-12089-tcp", "tcp", 12085),
    _gemos_http("gemos4.maint-gacd-12090", 12090),
    _gemos_http("gemos4.maint-gemacd-12091", 12091),
    _gemos_http("gemos4.maint-logd-12092", 12092),
    _gemos_http("gemos4.maint-gacschleused-12093", 12093),
    _gemos_http("gemos4.maint-ga-dynrd-12094", 12094),
    _reserved("gemos4.reserved-12095-12098-tcp", "tcp", 12098),
    # 12099: a placeholder, not a port: flagged like a reserved one
    _reserved("gemos4.placeholder-12099-tcp", "tcp", 12099),
    _reserved("gemos4.placeholder-12099-udp", "udp", 12099),
    Row(
        "gemos4.gzrouter-busconf-12100", "tcp", 12100, G, G,
        exp("gemos4.gzrouter-busconf-12100", "gemos4"),
        exp("gemos4.gzrouter-busconf-12100", "gemos4"),
    ),
    # 12101-12199: automatic assignment of maintenance accesses, expected client -> server
    _gemos_http("gemos4.maint-auto-12101-12199", 12150),
    _gemos_http("gemos4.maint-ha-agent-12288", 12288),
    _gemos_http("gemos4.maint-ha-pro02router-12289", 12289, "obsolete"),
    Row(
        "gemos4.ha-agents-12290", "tcp", 12290, G, G,
        exp("gemos4.ha-agents-12290", "gemos4"), exp("gemos4.ha-agents-12290", "gemos4"),
    ),
    # UDP 12290 is the superseded form of the HA agents' communication
    Row(
        "gemos4.ha-agents-udp-12290", "udp", 12290, G, G,
        ("obsolete", "gemos4", "gemos4.ha-agents-udp-12290"),
        ("obsolete", "gemos4", "gemos4.ha-agents-udp-12290"),
    ),
    _gemos_http("gemos4.maint-ha-cguardian-12291", 12291, "obsolete"),
    _gemos_http("gemos4.maint-ha-proxy-12911", 12911),
    # section 3, typical system services. ssh and Firebird: any host -> the GEMOS server;
    # reversed, the server opens towards a host without a role (unknown = compatible).
    Row(
        "gemos4.ssh-22", "tcp", 22, None, G,
        exp("gemos4.ssh-22", "gemos4"), exp("gemos4.ssh-22", "gemos4"),
    ),
    # DNS: a GEMOS host asks a name server; reversed, a host asks the GEMOS host
    Row(
        "gemos4.dns-53", "udp", 53, G, None,
        exp("gemos4.dns-53", "gemos4"), exp("gemos4.dns-53", "gemos4"),
    ),
    Row(
        "gemos4.firebird-3050", "tcp", 3050, None, G,
        exp("gemos4.firebird-3050", "gemos4"), exp("gemos4.firebird-3050", "gemos4"),
    ),
    # com servers: GEMOS server -> com server
    Row(
        "gemos4.wut-comserver", "tcp", 9294, G, CS,
        exp("gemos4.wut-comserver", "gemos4"), wrong("gemos4.wut-comserver", "gemos4"),
    ),
    Row(
        "gemos4.lantronix-xport-10001", "tcp", 10001, G, CS,
        exp("gemos4.lantronix-xport-10001", "gemos4"),
        wrong("gemos4.lantronix-xport-10001", "gemos4"),
    ),
    Row(
        "gemos4.lantronix-xport-30718", "udp", 30718, G, CS,
        exp("gemos4.lantronix-xport-30718", "gemos4"),
        wrong("gemos4.lantronix-xport-30718", "gemos4"),
    ),
    # --- 2. Sesam, "Netzwerkverbindungen und verwendete Ports"
    Row(
        "sesam.firebird-41800", "tcp", 41800, SCL, DB,
        exp("sesam.firebird-41800", "sesam"), wrong("sesam.firebird-41800", "sesam"),
    ),
    Row(
        "sesam.firebird-password-41799", "udp", 41799, SC, DB,
        exp("sesam.firebird-password-41799", "sesam"),
        wrong("sesam.firebird-password-41799", "sesam"),
    ),
    # 41797 -> 41797 both ways: the ISENet's answers are its own connections
    Row(
        "sesam.lantronix-41797", "udp", 41797, SC, ISE,
        exp("sesam.lantronix-41797", "sesam"), exp("sesam.lantronix-41797", "sesam"),
        orig_p=41797,
    ),
    # the search: PC IP broadcast -> all ISENets:41797 (a broadcast opens nothing back)
    Row(
        "sesam.isenet-search-broadcast-41797", "udp", 41797, SCL, None,
        exp("sesam.isenet-search-broadcast-41797", "sesam"), None,
        resp_h=BCAST,
    ),
    # the same broadcast sent from 41797 (as SesComm does): still the search entry, not
    # the unicast 41797 <-> 41797 one (a broadcast address is no ISENet)
    Row(
        "sesam.isenet-search-broadcast-41797", "udp", 41797, SC, None,
        exp("sesam.isenet-search-broadcast-41797", "sesam"), None,
        orig_p=41797, resp_h=BCAST,
    ),
    Row(
        "sesam.sescomm-isenet-41796", "tcp", 41796, SC, ISE,
        exp("sesam.sescomm-isenet-41796", "sesam"), wrong("sesam.sescomm-isenet-41796", "sesam"),
    ),
    Row(
        "sesam.rpc-41801", "tcp", 41801, SCL, SC,
        exp("sesam.rpc-41801", "sesam"), wrong("sesam.rpc-41801", "sesam"),
    ),
    Row(
        "sesam.msrpc-135", "tcp", 135, SCL, SC,
        ("obsolete", "sesam", "sesam.msrpc-135"), wrong("sesam.msrpc-135", "sesam"),
    ),
    # debug and TFTP: "PC <-> isenet", exceptional cases only
    Row(
        "sesam.debug-41798", "udp", 41798, None, ISE,
        ("rare", "sesam", "sesam.debug-41798"), ("rare", "sesam", "sesam.debug-41798"),
    ),
    Row(
        "sesam.tftp-69-udp", "udp", 69, None, ISE,
        ("rare", "sesam", "sesam.tftp-69-udp"), ("rare", "sesam", "sesam.tftp-69-udp"),
    ),
    Row(
        "sesam.tftp-69-tcp", "tcp", 69, None, ISE,
        ("rare", "sesam", "sesam.tftp-69-tcp"), ("rare", "sesam", "sesam.tftp-69-tcp"),
    ),
    # "Rechner Ping -> <- ISENet Reply": the PC pings the ISENet; an ISENet pinging the PC
    # is the documented ping the wrong way round (issue 12, item 2)
    Row(
        "sesam.ping-isenet", "icmp", 8, SC, ISE,
        exp("sesam.ping-isenet", "sesam"), wrong("sesam.ping-isenet", "sesam"),
    ),
    # --- 3. C.M.I., "CMI-Portfreigabe": all connections are opened by the C.M.I.
    Row("cmi.dns-53", "udp", 53, CMI, None, exp("cmi.dns-53", "cmi"), INBOUND_LOCAL),
    Row(
        "cmi.ta-update-80", "tcp", 80, CMI, None,
        exp("cmi.ta-update-80", "cmi"), INBOUND_NET, resp_h=NET, head=HTTP,
    ),
    Row("cmi.ntp-123", "udp", 123, CMI, None, exp("cmi.ntp-123", "cmi"), INBOUND_LOCAL),
    Row(
        "cmi.ta-portal-40001", "tcp", 40001, CMI, None,
        exp("cmi.ta-portal-40001", "cmi"), INBOUND_NET, resp_h=NET,
    ),
    Row(
        "cmi.ta-mail-40002", "tcp", 40002, CMI, None,
        exp("cmi.ta-mail-40002", "cmi"), INBOUND_NET, resp_h=NET,
    ),
    Row(
        "cmi.ta-datalog-40003", "tcp", 40003, CMI, None,
        exp("cmi.ta-datalog-40003", "cmi"), INBOUND_NET, resp_h=NET,
    ),
    # local services: Modbus TCP towards the C.M.I. from a local host; reversed, the C.M.I.
    # opens 502 towards a host without a role (unknown = compatible)
    Row(
        "cmi.modbus-502", "tcp", 502, None, CMI,
        exp("cmi.modbus-502", "cmi"), exp("cmi.modbus-502", "cmi"),
    ),
    # CoE: C.M.I. <-> C.M.I. (or other CoE devices), either side sends
    Row(
        "cmi.coe-v1-5441", "udp", 5441, CMI, CMI,
        exp("cmi.coe-v1-5441", "cmi"), exp("cmi.coe-v1-5441", "cmi"),
    ),
    Row(
        "cmi.coe-v2-5442", "udp", 5442, CMI, None,
        exp("cmi.coe-v2-5442", "cmi"), exp("cmi.coe-v2-5442", "cmi"),
    ),
)  # fmt: skip


def _run(
    catalog: Catalog,
    proto: str,
    orig: tuple[str, str | None],
    resp: tuple[str, str | None],
    orig_p: int,
    resp_p: int,
    head: bytes | None = None,
) -> dict[str, object]:
    """classify one connection between two hosts with the given roles (None: no role)."""
    hosts = [orig, resp]
    site_text = "".join(f'[[host]]\nip = "{ip}"\nrole = "{r}"\n' for ip, r in hosts if r)
    site = parse_site(site_text, path="site.toml")
    if proto in ("icmp", "icmp6"):
        orig_p, resp_p = resp_p, ICMP_REPLY.get((proto, resp_p), 0)
    row = flow_row(
        uid="C1",
        ts=T0,
        last_ts=T0 + pd.Timedelta(seconds=1),
        proto=proto,
        orig_h=orig[0],
        orig_p=orig_p,
        resp_h=resp[0],
        resp_p=resp_p,
        orig_evidence="syn" if proto == "tcp" else "first_packet",
        orig_pkts=3,
        resp_pkts=3,
        orig_bytes=40,
        resp_bytes=40,
        orig_ip_bytes=200,
        resp_ip_bytes=200,
        history="ShADadFf" if proto == "tcp" else "Dd",
        capture="t.pcap",
        _orig_head=head,
        _resp_bcast=resp[0] == BCAST,
    )
    ips = [orig[0], resp[0]]
    result = FlowResult(
        flows=pd.DataFrame([row]),
        hosts=pd.DataFrame(
            {"ip": ips, "mac": [None, None], "first_ts": T0, "last_ts": T0, "pkts": 3, "bytes": 200}
        ),
        arp=pd.DataFrame(columns=["ip", "mac", "ts"]),
        dns=pd.DataFrame(columns=["ts", "client", "server", "payload"]),
    )
    return classify(result, catalog, site).flows.iloc[0].to_dict()


def _got(flow: dict[str, object]) -> tuple[object, object, object]:
    return tuple(
        None if pd.isna(flow[c]) else flow[c] for c in ("verdict", "system", "signature_id")
    )  # type: ignore[return-value]


def _forward(catalog: Catalog, row: Row) -> dict[str, object]:
    return _run(
        catalog, row.proto, (A, row.orig_role), (row.resp_h, row.resp_role),
        row.orig_p, row.port, row.head,
    )  # fmt: skip


def _backward(catalog: Catalog, row: Row) -> dict[str, object]:
    return _run(
        catalog, row.proto, (row.resp_h, row.resp_role), (A, row.orig_role),
        row.orig_p, row.port, row.head,
    )  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.sig for r in ROWS])
def test_documented_direction(catalog: Catalog, row: Row) -> None:
    got = _forward(catalog, row)
    assert _got(got) == row.fwd, got["reason"]


@pytest.mark.parametrize("row", [r for r in ROWS if r.back], ids=[r.sig for r in ROWS if r.back])
def test_reversed_direction(catalog: Catalog, row: Row) -> None:
    got = _backward(catalog, row)
    assert _got(got) == row.back, got["reason"]


def test_every_signature_has_a_row(catalog: Catalog) -> None:
    """Every system entry of the catalog is a row above (the common ones are tested per
    role below); a new entry needs its row, written from the document."""
    systems = {s.id for s in catalog.signatures if s.system != "common"}
    assert {r.sig for r in ROWS} == systems
    assert len(systems) == 68  # a second row of one entry (the search broadcast) is extra


def test_inbound_severity_by_origin(catalog: Catalog) -> None:
    """From a local host: high; from outside the local networks: critical."""
    rows = {r.sig: r for r in ROWS}
    assert _backward(catalog, rows["cmi.dns-53"])["severity"] == "high"
    assert _backward(catalog, rows["cmi.ta-portal-40001"])["severity"] == "critical"


def test_the_reversed_ping_says_who_pings_whom(catalog: Catalog) -> None:
    rows = {r.sig: r for r in ROWS}
    got = _backward(catalog, rows["sesam.ping-isenet"])
    assert (got["severity"], got["reason"]) == (
        "high",
        f"ICMP echo request opened by ISENet {B} to SesComm server {A}; ping of an ISENet "
        "before administrating/processing (sesam.ping-isenet) is opened by "
        "sesam_client/sescomm_server -> isenet only (Netzwerkverbindungen und verwendete "
        "Ports)",
    )


# --- per-role common infrastructure (signatures/common.toml [[infrastructure]]) -------------

# Each common signature: (transport, responder port or ICMP type, originator port)
COMMON: dict[str, tuple[str, int, int]] = {
    "common.dns-udp": ("udp", 53, 50001),
    "common.dns-tcp": ("tcp", 53, 50001),
    "common.ntp": ("udp", 123, 123),
    "common.dhcp": ("udp", 67, 68),
    "common.mdns": ("udp", 5353, 5353),
    "common.llmnr": ("udp", 5355, 50001),
    "common.ssdp": ("udp", 1900, 50001),
    "common.netbios-ns": ("udp", 137, 137),
    "common.netbios-dgm": ("udp", 138, 138),
    "common.netbios-ssn": ("tcp", 139, 50001),
    "common.icmp-echo": ("icmp", 8, 0),
    "common.icmp6-echo": ("icmp6", 128, 0),
    "common.icmp6-nd": ("icmp6", 135, 0),
}
PCS = (G, GC, SC, SCL, DB)
SYSTEM = {G: "gemos4", GC: "gemos4", SC: "sesam", SCL: "sesam", DB: "sesam",
          ISE: "sesam", CS: "gemos4", CMI: "cmi"}  # fmt: skip
UNEXPECTED = "unexpected_port"


def _expected_infra(role: str, sig: str, *, role_opens: bool) -> tuple[str, str, str | None]:
    """The verdict of common signature `sig` used by a host of `role` towards (role_opens)
    or from a host without a role, as issue 12 and the documents say, exceptions named."""
    proto, port, _ = COMMON[sig]
    if role in PCS:
        # GEMOS lists DNS 53/udp for its own hosts: that entry is the more specific one
        if sig == "common.dns-udp" and role in (G, GC):
            return exp("gemos4.dns-53", "gemos4")
        # a Sesam PC pinging a local host without a role may be pinging an ISENet: the
        # documented Sesam ping (unknown roles are compatible) is the more specific entry
        if sig == "common.icmp-echo" and role in (SC, SCL) and role_opens:
            return exp("sesam.ping-isenet", "sesam")
        return exp(sig, "common")
    if role == CMI and sig == "common.icmp6-nd":
        # neighbour discovery opens no connection (not a request type): not inbound, but
        # nothing CMI-Portfreigabe lists either way
        return (UNEXPECTED, "cmi", None)
    if role == CMI:
        if not role_opens:  # anything opened towards a C.M.I. (contract, CMI-Portfreigabe)
            return ("inbound_to_cmi", "cmi", None)
        if sig == "common.dns-udp":
            return exp("cmi.dns-53", "cmi")  # the C.M.I.'s own documented DNS and NTP
        if sig == "common.ntp":
            return exp("cmi.ntp-123", "cmi")
        return (UNEXPECTED, "cmi", None)
    if role == ISE and sig == "common.icmp-echo" and not role_opens:
        # a host without a role may be the Sesam PC: the documented ping (unknown roles are
        # compatible); pinged by a known non-Sesam PC it is unexpected (test below)
        return exp("sesam.ping-isenet", "sesam")
    if role == ISE and sig == "common.icmp-echo":
        return wrong("sesam.ping-isenet", "sesam")  # the ISENet pings: the ping reversed
    return (UNEXPECTED, SYSTEM[role], None)


INFRA_CASES = [
    pytest.param(role, sig, opens, id=f"{role}-{'opens' if opens else 'accepts'}-{sig}")
    for role in SYSTEM
    for sig in COMMON
    for opens in (True, False)
]


@pytest.mark.parametrize(("role", "sig", "role_opens"), INFRA_CASES)
def test_role_infrastructure_both_ways(
    catalog: Catalog, role: str, sig: str, role_opens: bool
) -> None:
    proto, port, orig_p = COMMON[sig]
    me, other = (A, role), (B, None)
    orig, resp = (me, other) if role_opens else (other, me)
    got = _run(catalog, proto, orig, resp, orig_p, port)
    assert _got(got) == _expected_infra(role, sig, role_opens=role_opens), got["reason"]


def test_every_role_infrastructure_list_is_exercised_both_ways(catalog: Catalog) -> None:
    """Every role of the catalog and every common signature appear above, both ways; a
    role's list in common.toml is exactly what its cases expect to be `expected common`."""
    declared = catalog.infrastructure_map()
    assert set(declared) == set(SYSTEM)
    assert {s.id for s in catalog.signatures if s.system == "common"} == set(COMMON)
    cases = {(p.values[0], p.values[1], p.values[2]) for p in INFRA_CASES}
    assert len(cases) == len(SYSTEM) * len(COMMON) * 2
    for role, ids in declared.items():
        allowed = {
            sig
            for sig in COMMON
            if _expected_infra(role, sig, role_opens=True)[1] in ("common", SYSTEM[role])
            and _expected_infra(role, sig, role_opens=True)[0] == "expected"
            and _expected_infra(role, sig, role_opens=False)[0] == "expected"
        }
        # PCs: everything (DNS of GEMOS hosts via gemos4.dns-53); devices: nothing
        assert allowed == (set(COMMON) if role in PCS else set()), role
        assert (ids == frozenset(COMMON)) == (role in PCS), role


def test_an_isenet_doing_dns_says_what_its_document_lists(catalog: Catalog) -> None:
    got = _run(catalog, "udp", (A, ISE), ("8.8.8.8", None), 50001, 53)
    assert (got["verdict"], got["severity"], got["system"]) == (
        "unexpected_port",
        "medium",
        "sesam",
    )
    assert got["reason"] == (
        f"UDP traffic from ISENet {A} to 8.8.8.8:53: DNS (common.dns-udp) is common "
        f"infrastructure the catalog does not document for isenet; {A} as isenet uses only "
        "what its documents list: tcp 69, 41796; udp 69, 41797-41798; ICMP echo request "
        "(Netzwerkverbindungen und verwendete Ports)"
    )


def test_the_device_is_blamed_when_a_pc_talks_to_it(catalog: Catalog) -> None:
    """A GEMOS server asks a com server for DNS: the com server is the one that may not
    serve it (system gemos4, the com server named)."""
    got = _run(catalog, "udp", (A, G), (B, CS), 50001, 53)
    assert (got["verdict"], got["system"]) == ("unexpected_port", "gemos4")
    assert f"{B} as comserver uses only what its documents list: tcp 8000, 8100" in got["reason"]
    # the reversed ping and the ping by a known PC of another system
    got = _run(catalog, "icmp", (A, G), (B, ISE), 0, 8)
    assert (got["verdict"], got["system"], got["signature_id"]) == (
        "unexpected_port",
        "sesam",
        None,
    )


def test_hosts_without_a_role_keep_infrastructure_unmonitored(catalog: Catalog) -> None:
    for sig, (proto, port, orig_p) in COMMON.items():
        got = _run(catalog, proto, (A, None), (B, None), orig_p, port)
        assert _got(got) == ("unmonitored", "common", sig), got["reason"]


def test_a_device_is_no_any_host(catalog: Catalog) -> None:
    """A side the document leaves open ("any host": the ssh opener, the DNS server of GEMOS
    hosts, the search broadcast's responder) is no ISENet, com server or C.M.I., whose
    documents list their own ports; a side naming the device's role still fits it."""
    got = _run(catalog, "tcp", (A, CS), (B, G), 50001, 22)
    assert _got(got) == (UNEXPECTED, "gemos4", None)
    assert got["reason"] == (
        f"TCP connection from com server {A} to GEMOS server {B}:22: remote maintenance (ssh) "
        "(gemos4.ssh-22) leaves this side open to any host, which is no comserver: a device "
        f"whose documents list its own ports; {A} as comserver uses only what its documents "
        "list: tcp 8000, 8100, 8200, 8300, 9084, 9094, 9184, 9194, 9284, 9294, 9384, 9394, "
        "10001; udp 30718 (Portnummern im GEMOS4-System)"
    )
    # unicast search from another port than 41797: not the broadcast row
    got = _run(catalog, "udp", (A, SC), (B, ISE), 50001, 41797)
    assert _got(got) == (UNEXPECTED, "sesam", None), got["reason"]
    # the same from 41797 is the documented unicast exchange
    got = _run(catalog, "udp", (A, SC), (B, ISE), 41797, 41797)
    assert _got(got) == exp("sesam.lantronix-41797", "sesam"), got["reason"]
    # CoE names the C.M.I. on one side: a C.M.I. is the "any CoE device" on the other
    got = _run(catalog, "udp", (A, CMI), (B, CMI), 5441, 5441)
    assert _got(got) == exp("cmi.coe-v1-5441", "cmi"), got["reason"]
    # a reserved range: whoever uses it
    got = _run(catalog, "tcp", (A, ISE), (B, G), 50001, 12005)
    assert _got(got) == ("reserved", "gemos4", "gemos4.reserved-12003-12007-tcp")
