"""classify(): verdicts, reasons, findings and hosts over the shipped catalog, with flows
built directly as the FlowResult DataFrames flows.py documents."""

from __future__ import annotations

import itertools

import dpkt
import pandas as pd
import pyarrow as pa
import pytest
from conftest import flow_row

from analyzer import schema
from analyzer.classify import classify
from analyzer.flows import FlowResult
from analyzer.signatures import load_catalog
from analyzer.site import parse_site

T0 = pd.Timestamp("2024-05-01T10:00:00Z")
_uids = itertools.count(1)

CLIENT = "192.168.1.10"  # gemos_client / sesam_client in the site below
SERVER = "192.168.1.5"  # gemos_server
SESCOMM = "192.168.1.20"
ISENET = "192.168.1.50"
CMI = "192.168.1.40"
OFFICE = "192.168.1.77"  # no role
INTERNET = "203.0.113.9"
TA_SERVER = "198.51.100.7"

SITE = f"""
[[host]]
ip = "{CLIENT}"
roles = ["gemos_client", "sesam_client"]
[[host]]
ip = "{SERVER}"
role = "gemos_server"
[[host]]
ip = "{SESCOMM}"
roles = ["sescomm_server", "sesam_db"]
[[host]]
ip = "{ISENET}"
role = "isenet"
[[host]]
ip = "{CMI}"
role = "cmi"
"""


def flow(**overrides: object) -> dict[str, object]:
    """A complete flows row (flows.py columns + internal ones); override what matters."""
    n = next(_uids)
    row: dict[str, object] = {
        "uid": f"C{n:05d}",
        "ts": T0 + pd.Timedelta(seconds=n),
        "last_ts": T0 + pd.Timedelta(seconds=n + 1),
        "orig_h": CLIENT,
        "orig_p": 50000 + n % 10000,
        "resp_h": SERVER,
        "resp_p": 12000,
        "orig_pkts": 5,
        "resp_pkts": 4,
        "orig_bytes": 100,
        "resp_bytes": 80,
        "orig_ip_bytes": 360,
        "resp_ip_bytes": 300,
        "capture": "test.pcap",
    }
    row.update(overrides)
    if row.get("proto", "tcp") != "tcp" and "conn_state" not in overrides:
        row["conn_state"], row["history"], row["orig_evidence"] = "SF", "Dd", "first_packet"
    return flow_row(**row)


def result(rows: list[dict[str, object]], dns: list[dict[str, object]] | None = None) -> FlowResult:
    flows = pd.DataFrame(rows)
    ips = sorted(set(flows["orig_h"]) | set(flows["resp_h"][~flows["_resp_bcast"]]))
    hosts = pd.DataFrame(
        {"ip": ips, "mac": [None] * len(ips), "first_ts": T0, "last_ts": T0, "pkts": 1, "bytes": 60}
    )
    arp = pd.DataFrame({"ip": pd.Series(dtype=str), "mac": pd.Series(dtype=str), "ts": []})
    dns_df = pd.DataFrame(dns or [], columns=["ts", "client", "server", "payload"])
    return FlowResult(flows=flows, hosts=hosts, arp=arp, dns=dns_df)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def site():
    return parse_site(SITE, path="site.toml")


def run(rows, catalog, site=None, dns=None):
    return classify(result(rows, dns), catalog, site)


def one(row, catalog, site=None, dns=None) -> dict[str, object]:
    out = run([row], catalog, site, dns).flows
    return out.iloc[0].to_dict()


# --- ambiguities of systems.md, one test each, stating the reading ---------------------


def test_12008_is_the_symbol_server(catalog, site):
    """Reading: revision 4.2 added 12008 as the GEMOS4 symbol server; "nicht genutzt"
    belongs to the GEMOS3 column. So client -> server on 12008 is expected."""
    got = one(flow(resp_p=12008), catalog, site)
    assert (got["verdict"], got["signature_id"]) == ("expected", "gemos4.symbolserver-12008")


def test_12079_http_is_gdarcs_and_other_payload_is_the_printer(catalog, site):
    http = one(flow(resp_p=12079, _orig_head=b"GET /config HTTP/1.1\r\nHost: x\r\n"), catalog, site)
    other = one(flow(resp_p=12079, _orig_head=b"\x1b@print job"), catalog, site)
    assert http["signature_id"] == "gemos4.gdarcs-12079"
    assert http["reason"].endswith("; the originator's first bytes are an HTTP request")
    assert other["signature_id"] == "gemos4.printer-12079"
    assert other["reason"].endswith("; the originator's first bytes are not HTTP")


def test_12079_without_payload_reports_the_printer_and_says_both(catalog, site):
    """Reading: no payload (SYN only) -> the two cannot be told apart; the printer entry
    (listed first in the document) is reported and the reason names both ids."""
    got = one(flow(resp_p=12079, conn_state="S0", resp_pkts=0), catalog, site)
    assert (got["verdict"], got["signature_id"]) == ("expected", "gemos4.printer-12079")
    assert got["reason"].endswith(
        "no payload seen, so gemos4.printer-12079, gemos4.gdarcs-12079 could not be told apart"
    )


def test_12099_placeholder_is_reserved(catalog, site):
    got = one(flow(resp_p=12099), catalog, site)
    assert (got["verdict"], got["severity"]) == ("reserved", "medium")
    assert got["signature_id"] == "gemos4.placeholder-12099-tcp"


def test_12101_to_12199_auto_assigned_is_expected(catalog, site):
    for port in (12101, 12150, 12199):
        got = one(flow(resp_p=port), catalog, site)
        assert (got["verdict"], got["signature_id"]) == (
            "expected",
            "gemos4.maint-auto-12101-12199",
        )


def test_sesam_msrpc_135_is_obsolete(catalog, site):
    """Reading: MS-RPC on 135 between a Sesam client and SesComm is the RPC of versions up
    to 2.1-2, documented as superseded by 41801: obsolete (medium)."""
    got = one(flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=135), catalog, site)
    assert (got["verdict"], got["severity"], got["signature_id"]) == (
        "obsolete",
        "medium",
        "sesam.msrpc-135",
    )


def test_msrpc_dynamic_port_follows_the_135_exchange(catalog, site):
    rows = [
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=135),
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=49712),
    ]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["obsolete", "obsolete"]
    assert out.at[1, "reason"].startswith(
        f"best effort: MS-RPC dynamic port after the endpoint mapper {CLIENT} -> {SESCOMM}:135"
    )


# --- C.M.I. -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "resp_pkts", "kind"),
    [
        ("SF", 4, "TCP connection"),
        ("S0", 0, "TCP connection attempt (no answer)"),
        ("REJ", 1, "TCP connection attempt (rejected)"),
    ],
)
def test_inbound_to_cmi_from_the_internet_is_critical(catalog, site, state, resp_pkts, kind):
    row = flow(orig_h=INTERNET, resp_h=CMI, resp_p=80, conn_state=state, resp_pkts=resp_pkts)
    got = one(row, catalog, site)
    assert (got["verdict"], got["severity"], got["system"]) == ("inbound_to_cmi", "critical", "cmi")
    assert got["reason"] == (
        f"inbound {kind} from {INTERNET} to C.M.I. {CMI}:80; "
        "the C.M.I. only opens connections itself (CMI-Portfreigabe)"
    )


def test_inbound_udp_to_cmi_from_lan_is_high(catalog, site):
    got = one(flow(proto="udp", orig_h=OFFICE, resp_h=CMI, resp_p=161), catalog, site)
    assert (got["verdict"], got["severity"]) == ("inbound_to_cmi", "high")


def test_modbus_and_coe_from_local_hosts_are_expected(catalog, site):
    rows = [
        flow(orig_h=OFFICE, resp_h=CMI, resp_p=502),
        flow(proto="udp", orig_h="192.168.1.41", orig_p=5441, resp_h=CMI, resp_p=5441),
        flow(proto="udp", orig_h="192.168.1.41", orig_p=5442, resp_h=CMI, resp_p=5442),
    ]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["expected"] * 3
    assert list(out["signature_id"]) == ["cmi.modbus-502", "cmi.coe-v1-5441", "cmi.coe-v2-5442"]


def test_modbus_from_the_internet_is_critical(catalog, site):
    got = one(flow(orig_h=INTERNET, resp_h=CMI, resp_p=502), catalog, site)
    assert (got["verdict"], got["severity"]) == ("inbound_to_cmi", "critical")
    assert got["reason"] == (
        f"inbound TCP connection from {INTERNET} to C.M.I. {CMI}:502; the C.M.I. only opens "
        "connections itself, and 502/tcp (cmi.modbus-502) is documented for local hosts "
        "only (CMI-Portfreigabe)"
    )


def test_midstream_40001_with_port_evidence_is_expected(catalog, site):
    row = flow(orig_h=CMI, resp_h=TA_SERVER, resp_p=40001, orig_evidence="port")
    row.update(conn_state="OTH", history="DdA", duration=86000.0)
    got = one(row, catalog, site)
    assert (got["verdict"], got["signature_id"]) == ("expected", "cmi.ta-portal-40001")


def test_midstream_40001_seen_from_the_server_side_is_the_cmis_own(catalog, site):
    """Capture started late and the TA server's packet came first: not inbound_to_cmi."""
    row = flow(orig_h=TA_SERVER, orig_p=40001, resp_h=CMI, resp_p=49152)
    row.update(orig_evidence="first_packet", conn_state="OTH", history="DdA")
    got = one(row, catalog, site)
    assert (got["verdict"], got["signature_id"]) == ("expected", "cmi.ta-portal-40001")
    assert got["reason"].startswith(
        f"seen mid-stream (no handshake captured), so taken as C.M.I. {CMI}'s own connection; "
    )


def _dns_response(name: str, cname: str | None, address: str) -> bytes:
    msg = dpkt.dns.DNS(id=1, qr=dpkt.dns.DNS_R, rd=1, ra=1)
    msg.qd = [dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)]
    answers = []
    owner = name
    if cname is not None:
        answers.append(dpkt.dns.DNS.RR(name=name, type=dpkt.dns.DNS_CNAME, cname=cname, ttl=60))
        owner = cname
    rr = dpkt.dns.DNS.RR(name=owner, type=dpkt.dns.DNS_A, ttl=60)
    rr.rdata = bytes(int(x) for x in address.split("."))
    rr.ip = rr.rdata
    answers.append(rr)
    msg.an = answers
    return bytes(msg)


def test_dns_verified_destination_is_expected(catalog, site):
    dns = [
        {
            "ts": T0,
            "client": CMI,
            "server": "192.168.1.1",
            "payload": _dns_response("cmi.ta.co.at", "cmi.ta-servers.example", TA_SERVER),
        }
    ]
    got = one(flow(orig_h=CMI, resp_h=TA_SERVER, resp_p=40001), catalog, site, dns)
    assert got["verdict"] == "expected"
    assert got["reason"].endswith(
        f"; {TA_SERVER} is an address cmi.ta.co.at resolved to in this capture"
    )


def test_dns_contradicted_destination_is_unexpected_port(catalog, site):
    dns = [
        {
            "ts": T0,
            "client": CMI,
            "server": "192.168.1.1",
            "payload": _dns_response("cmi.ta.co.at", None, TA_SERVER),
        }
    ]
    got = one(flow(orig_h=CMI, resp_h="198.51.100.99", resp_p=40001), catalog, site, dns)
    assert (got["verdict"], got["system"], got["signature_id"]) == (
        "unexpected_port",
        "cmi",
        "cmi.ta-portal-40001",
    )
    assert got["reason"].endswith(
        "documented port, but 198.51.100.99 is not an address cmi.ta.co.at resolved to in "
        f"this capture ({TA_SERVER})"
    )


def test_flows_decided_together_keep_their_own_addresses_and_dns_facts(catalog, site):
    """Flows alike in everything but their addresses are decided once (decide_all's
    classes); each reason still names its own hosts, and a DNS-verified destination is
    told apart from an unverified one on the same port."""
    dns = [
        {
            "ts": T0,
            "client": CMI,
            "server": "192.168.1.1",
            "payload": _dns_response("cmi.ta.co.at", None, TA_SERVER),
        }
    ]
    others = [f"192.168.7.{i}" for i in range(1, 4)]
    rows = [flow(orig_h=CMI, resp_h=TA_SERVER, resp_p=40001)]
    rows += [flow(orig_h=CMI, resp_h="198.51.100.99", resp_p=40001)]
    rows += [flow(orig_h=ip, resp_h="192.168.8.1", resp_p=8443) for ip in others]
    out = run(rows, catalog, site, dns).flows
    assert list(out["verdict"]) == ["expected", "unexpected_port"] + ["unmonitored"] * 3
    assert f"; {TA_SERVER} is an address cmi.ta.co.at" in out.at[0, "reason"]
    assert "but 198.51.100.99 is not an address" in out.at[1, "reason"]
    for i, ip in enumerate(others, start=2):
        assert out.at[i, "reason"] == (
            f"TCP connection from {ip} to 192.168.8.1:8443: neither host belongs to a "
            "monitored system and no signature matches"
        )


def test_no_dns_answer_says_the_destination_was_not_verified(catalog, site):
    got = one(flow(orig_h=CMI, resp_h=TA_SERVER, resp_p=40003), catalog, site)
    assert got["verdict"] == "expected"
    name = catalog.get("cmi.ta-datalog-40003").name
    assert got["reason"] == (
        f"TCP connection from C.M.I. {CMI} to {TA_SERVER}:40003: {name} "
        "(cmi.ta-datalog-40003), documented cmi -> any host (CMI-Portfreigabe); "
        "destination not verified (no DNS answer for api.ta.co.at in this capture)"
    )


# --- generic vs distinctive ports ----------------------------------------------------------


def test_office_https_between_unmonitored_hosts_is_unmonitored_never_gemos(catalog, site):
    got = one(flow(orig_h=OFFICE, resp_h="192.168.1.78", resp_p=443), catalog, site)
    assert (got["verdict"], got["system"], got["signature_id"]) == ("unmonitored", None, None)
    assert got["reason"] == (
        "TCP connection from 192.168.1.77 to 192.168.1.78:443: neither host belongs to a "
        "monitored system and no signature matches"
    )


def test_distinctive_port_applies_by_port_alone(catalog):
    got = one(flow(orig_h="10.0.0.1", resp_h="10.0.0.2", resp_p=41796), catalog)
    assert (got["verdict"], got["system"], got["signature_id"]) == (
        "expected",
        "sesam",
        "sesam.sescomm-isenet-41796",
    )


def test_common_infrastructure_between_unmonitored_hosts(catalog):
    rows = [
        flow(proto="udp", orig_h=OFFICE, resp_h="192.168.1.1", resp_p=53),
        flow(proto="icmp", orig_h=OFFICE, orig_p=8, resp_h="192.168.1.1", resp_p=0),
    ]
    out = run(rows, catalog).flows
    assert list(out["verdict"]) == ["unmonitored", "unmonitored"]
    assert list(out["system"]) == ["common", "common"]
    assert list(out["signature_id"]) == ["common.dns-udp", "common.icmp-echo"]


# --- wrong direction, unexpected port -----------------------------------------------------


def test_isenet_opening_41796_to_sescomm_is_wrong_direction(catalog, site):
    got = one(flow(orig_h=ISENET, resp_h=SESCOMM, resp_p=41796), catalog, site)
    assert (got["verdict"], got["severity"]) == ("wrong_direction", "high")
    name = catalog.get("sesam.sescomm-isenet-41796").name
    assert got["reason"] == (
        f"TCP connection opened by ISENet {ISENET} to SesComm server {SESCOMM}:41796; "
        f"{name} (sesam.sescomm-isenet-41796) is opened by sescomm_server -> isenet only "
        "(Netzwerkverbindungen und verwendete Ports)"
    )


def test_gemos_server_opening_12000_on_a_client_is_wrong_direction(catalog, site):
    got = one(flow(orig_h=SERVER, resp_h=CLIENT, resp_p=12000), catalog, site)
    assert (got["verdict"], got["signature_id"]) == ("wrong_direction", "gemos4.pro02-tcp")


def test_unexpected_port_names_the_monitored_system(catalog, site):
    got = one(flow(orig_h=OFFICE, resp_h=ISENET, resp_p=3389), catalog, site)
    assert (got["verdict"], got["severity"], got["system"], got["signature_id"]) == (
        "unexpected_port",
        "medium",
        "sesam",
        None,
    )
    assert got["reason"] == (
        f"TCP connection from {OFFICE} to ISENet {ISENET}:3389: no signature documents "
        f"3389/tcp for {ISENET} as isenet"
    )


# --- site allows and overrides -------------------------------------------------------------


def test_site_allow_turns_a_finding_into_expected(catalog):
    site = parse_site(
        SITE
        + f"""
[[allow]]
orig = "{OFFICE}"
resp = "{CMI}"
proto = "tcp"
port = 80
reason = "technician uses the local C.M.I. web page"
""",
        path="site.toml",
    )
    rows = [flow(orig_h=OFFICE, resp_h=CMI, resp_p=80), flow(orig_h=OFFICE, resp_h=CMI, resp_p=81)]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["expected", "inbound_to_cmi"]
    assert out.at[0, "signature_id"] == "site:allow:1"
    assert out.at[0, "reason"] == "technician uses the local C.M.I. web page"


def test_site_override_moves_pro02_to_another_port(catalog):
    site = parse_site(
        SITE + '\n[[override]]\nsignature = "gemos4.pro02-tcp"\nports = [13000]\n',
        path="site.toml",
    )
    out = run([flow(resp_p=13000), flow(resp_p=12000)], catalog, site).flows
    assert out.at[0, "signature_id"] == "gemos4.pro02-tcp"
    assert out.at[0, "verdict"] == "expected"
    assert out.at[1, "verdict"] == "unexpected_port"


def test_override_of_an_unknown_signature_is_a_site_error(catalog):
    from analyzer.errors import SiteError

    site = parse_site('[[override]]\nsignature = "gemos4.pro2-tcp"\nports = [1]\n', path="s.toml")
    with pytest.raises(SiteError) as err:
        run([flow()], catalog, site)
    assert str(err.value) == (
        "s.toml:1: override: unknown signature 'gemos4.pro2-tcp'; did you mean 'gemos4.pro02-tcp'?"
    )


# --- precedence, follow-ons, findings -----------------------------------------------------


def test_precedence_inbound_to_cmi_beats_wrong_direction(catalog, site):
    """A host opening UDP 53 towards the C.M.I. is wrong_direction for cmi.dns-53 (high)
    and inbound_to_cmi from a local host (high): equal severity, inbound_to_cmi first."""
    got = one(flow(proto="udp", orig_h=SERVER, resp_h=CMI, resp_p=53), catalog, site)
    assert (got["verdict"], got["severity"]) == ("inbound_to_cmi", "high")


def test_tftp_transfer_takes_the_verdict_of_its_request(catalog, site):
    rows = [
        flow(
            proto="udp",
            orig_h=CLIENT,
            orig_p=40000,
            resp_h=ISENET,
            resp_p=69,
            _orig_head=b"\x00\x02fw.bin\x00octet\x00",
        ),
        flow(proto="udp", orig_h=ISENET, orig_p=50123, resp_h=CLIENT, resp_p=40000),
    ]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["rare", "rare"]
    assert list(out["service"]) == ["tftp", "tftp"]
    assert out.at[1, "reason"].startswith(
        f"TFTP transfer answering the request {CLIENT} -> {ISENET}:69 (uid "
    )
    # the request's reason, with the request's addresses (not the transfer's)
    assert out.at[1, "reason"].endswith("same verdict as the request: " + out.at[0, "reason"])
    assert f"to ISENet {ISENET}" in out.at[0, "reason"]


def test_isenet_answer_to_a_search_broadcast_is_expected(catalog, site):
    rows = [
        flow(
            proto="udp",
            orig_h=SESCOMM,
            orig_p=41797,
            resp_h="192.168.1.255",
            resp_p=41797,
            _resp_bcast=True,
            resp_pkts=0,
        ),
        flow(proto="udp", orig_h=ISENET, orig_p=41797, resp_h=SESCOMM, resp_p=41797, resp_pkts=0),
    ]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["expected", "expected"]
    assert out.at[1, "signature_id"] == "sesam.lantronix-41797"


def test_findings_group_flows_and_sort_by_severity(catalog, site):
    rows = [flow(orig_h=OFFICE, resp_h=ISENET, resp_p=3389) for _ in range(3)]
    rows += [flow(orig_h=INTERNET, resp_h=CMI, resp_p=80, conn_state="S0", resp_pkts=0)] * 1
    rows += [flow(resp_p=12000)]
    c = run(rows, catalog, site)
    f = c.findings
    assert list(f["verdict"]) == ["inbound_to_cmi", "unexpected_port"]
    assert list(f["severity"]) == ["critical", "medium"]
    assert list(f["flows"]) == [1, 3]
    assert list(f["orig_pkts"]) == [5, 15]
    assert f.at[1, "uids"] == list(c.flows["uid"][:3])
    assert f.at[1, "message"].endswith("as isenet (3 connections)")
    assert list(f.columns) == schema.column_names(schema.FINDINGS)


# --- hosts ------------------------------------------------------------------------------------


def test_hosts_table(catalog, site):
    rows = [
        flow(
            orig_h=CMI,
            resp_h=TA_SERVER,
            resp_p=40001,
            orig_mac="00:0a:cd:00:00:01",
            resp_mac="aa:bb:cc:00:00:01",
        ),
        flow(proto="udp", orig_h=CLIENT, resp_h="192.168.1.255", resp_p=12000, _resp_bcast=True),
    ]
    h = run(rows, catalog, site).hosts.set_index("ip")
    assert "192.168.1.255" not in h.index
    assert h.at[CMI, "mac"] == "00:0a:cd:00:00:01"
    assert pd.isna(h.at[TA_SERVER, "mac"])  # the router's MAC is not the TA server's
    assert (h.at[CMI, "role"], h.at[CMI, "role_source"]) == ("cmi", "site")
    assert list(h.at[CMI, "systems"]) == ["cmi"]
    assert bool(h.at[CMI, "local"]) and not bool(h.at[TA_SERVER, "local"])
    assert list(h.at[CLIENT, "roles"]) == ["gemos_client", "sesam_client"]
    assert list(h.at[CLIENT, "systems"]) == ["gemos4", "sesam"]


def _vocab_ok(frame: pd.DataFrame, columns) -> None:
    table = pa.Table.from_pandas(
        frame[schema.column_names(columns)],
        schema=schema.arrow_schema(columns),
        preserve_index=False,
    )
    for col in columns:
        values = table.column(col.name).to_pylist()
        if not col.nullable:
            assert None not in values, col.name
        if col.values is not None:
            assert {v for v in values if v is not None} <= set(col.values), col.name


def test_output_tables_fit_the_schema(catalog, site):
    rows = [
        flow(),
        flow(orig_h=OFFICE, resp_h="8.8.8.8", resp_p=443),
        flow(orig_h=INTERNET, resp_h=CMI, resp_p=80),
    ]
    c = run(rows, catalog, site)
    _vocab_ok(c.flows, schema.FLOWS)
    _vocab_ok(c.findings, schema.FINDINGS)
    _vocab_ok(c.hosts, schema.HOSTS)


def test_schema_to_arrow_accepts_classified_tables(catalog, site):
    rows = [flow(orig_h=OFFICE, resp_h="8.8.8.8", resp_p=443), flow(resp_p=12099)]
    c = run(rows, catalog, site)
    assert schema.to_arrow(c.flows, schema.FLOWS).num_rows == 2
    assert schema.to_arrow(c.findings, schema.FINDINGS).num_rows == 1
    assert schema.to_arrow(c.hosts, schema.HOSTS).num_rows == 4


def test_empty_capture_gives_empty_typed_tables(catalog, site):
    empty = FlowResult(
        flows=pd.DataFrame(columns=list(flow().keys())),
        hosts=pd.DataFrame(columns=["ip", "mac", "first_ts", "last_ts", "pkts", "bytes"]),
        arp=pd.DataFrame(columns=["ip", "mac", "ts"]),
        dns=pd.DataFrame(columns=["ts", "client", "server", "payload"]),
    )
    c = classify(empty, catalog, site)
    assert (len(c.flows), len(c.findings), len(c.hosts)) == (0, 0, 0)
    assert list(c.findings.columns) == schema.column_names(schema.FINDINGS)
    assert list(c.hosts.columns) == schema.column_names(schema.HOSTS)


@pytest.mark.parametrize(
    ("ip", "unicast"),
    [
        ("ff02::fb", False),
        ("FF05::1:3", False),
        ("ff::1", True),  # 00ff::1, not in ff00::/8
        ("fe80::1", True),
        ("224.0.0.251", False),
        ("239.255.255.250", False),
        ("255.255.255.255", False),
        ("223.255.255.255", False),  # x.x.x.255: directed broadcast (flows' /24 rule)
        ("240.0.0.1", True),
        ("10.0.0.1", True),
    ],
)
def test_unicast_test_used_for_host_rows(ip: str, unicast: bool) -> None:
    from analyzer.flows import is_unicast_text

    assert is_unicast_text(ip) is unicast


def _epm_answer(port: int) -> bytes:
    from test_epm import bind_ack, response

    return bind_ack() + response(port)


def test_msrpc_follow_on_is_the_port_the_endpoint_mapper_named(catalog, site):
    """Issue 12 / contract precise rules: only the port in the ept_map answer follows."""
    rows = [
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=135, _resp_head=_epm_answer(49671)),
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=49671),
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=49712),
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=41802),
    ]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["obsolete", "obsolete", "unexpected_port", "unexpected_port"]
    assert out.at[1, "reason"].startswith(
        f"MS-RPC port 49671 named by the endpoint mapper's answer {CLIENT} -> {SESCOMM}:135"
    )
    assert "best effort" not in out.at[1, "reason"]


def test_msrpc_without_the_answer_falls_back_to_the_dynamic_range(catalog, site):
    rows = [
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=135),
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=41802),  # below 49152: not RPC
        flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=49152),
    ]
    out = run(rows, catalog, site).flows
    assert list(out["verdict"]) == ["obsolete", "unexpected_port", "obsolete"]
    assert out.at[2, "reason"].startswith(
        f"best effort: MS-RPC dynamic port after the endpoint mapper {CLIENT} -> {SESCOMM}:135"
    )


# --- one-way mirror (issue 14): direction verdicts on one-sided evidence -------------------


def _one_way_capture(wrong_both_ways: bool) -> list[dict[str, object]]:
    """Ten office TCP connections with data seen one way only (the mirror copies one
    direction: health.py's one-way mirror), plus an ISENet opening 41796 to SesComm."""
    rows = [
        flow(orig_h=OFFICE, resp_h=INTERNET, resp_p=443, resp_pkts=0, resp_bytes=0,
             resp_ip_bytes=0, conn_state="S0", history="ShAD")
        for _ in range(10)
    ]  # fmt: skip
    back = {} if wrong_both_ways else {"resp_pkts": 0, "resp_bytes": 0, "resp_ip_bytes": 0}
    rows.append(
        flow(orig_h=ISENET, resp_h=SESCOMM, resp_p=41796, conn_state="S0", history="ShAD", **back)
    )
    return rows


def test_wrong_direction_on_one_sided_evidence_says_so(catalog, site):
    out = run(_one_way_capture(wrong_both_ways=False), catalog, site).flows
    row = out.iloc[-1]
    assert (row["verdict"], row["signature_id"]) == (
        "wrong_direction",
        "sesam.sescomm-isenet-41796",
    )
    assert row["reason"] == (
        f"TCP connection attempt (no answer) opened by ISENet {ISENET} to SesComm server "
        f"{SESCOMM}:41796; data connection SesComm -> ISENet (controller synchronisation) "
        "(sesam.sescomm-isenet-41796) is opened by sescomm_server -> isenet only "
        "(Netzwerkverbindungen und verwendete Ports) (one-sided capture: direction not "
        "verified)"
    )
    assert row["orig_evidence"] == "syn"  # stays what the packets showed
    findings = run(_one_way_capture(wrong_both_ways=False), catalog, site).findings
    wrong = findings[findings["verdict"] == "wrong_direction"]
    assert wrong["message"].iloc[0].endswith("(one-sided capture: direction not verified)")


def test_wrong_direction_seen_both_ways_or_in_a_healthy_capture_has_no_note(catalog, site):
    both = run(_one_way_capture(wrong_both_ways=True), catalog, site).flows.iloc[-1]
    assert both["verdict"] == "wrong_direction"
    assert "one-sided" not in both["reason"]  # this connection's packets went both ways
    alone = run(_one_way_capture(wrong_both_ways=False)[-1:], catalog, site).flows.iloc[0]
    assert alone["verdict"] == "wrong_direction"
    assert "one-sided" not in alone["reason"]  # one SYN unanswered in a healthy capture
