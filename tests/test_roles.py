"""Role inference from behaviour (majority rule), MAC vendors, site roles winning."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from conftest import flow_row

from analyzer.roles import infer_roles, is_lantronix, is_wut, own_macs, vendor
from analyzer.signatures import load_catalog
from analyzer.site import parse_site

T0 = pd.Timestamp("2024-05-01T10:00:00Z")
_n = itertools.count(1)
SESCOMM, ISENET, CLIENT, CMI = "192.168.1.20", "192.168.1.50", "192.168.1.10", "192.168.1.40"


def flow(**overrides: object) -> dict[str, object]:
    n = next(_n)
    row: dict[str, object] = {
        "uid": f"C{n}",
        "ts": T0 + pd.Timedelta(seconds=n),
        "last_ts": T0,
        "orig_h": SESCOMM,
        "orig_p": 50000 + n,
        "resp_h": ISENET,
        "resp_p": 41796,
        "orig_pkts": 5,
        "resp_pkts": 4,
        "orig_bytes": 10,
        "resp_bytes": 10,
        "orig_ip_bytes": 300,
        "resp_ip_bytes": 250,
        "capture": "t.pcap",
    }
    row.update(overrides)
    return flow_row(**row)


EMPTY_ARP = pd.DataFrame(columns=["ip", "mac", "ts"])


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def roles(rows, catalog, site=None, arp=EMPTY_ARP, dns=None) -> pd.DataFrame:
    flows = pd.DataFrame(rows)
    hosts = pd.DataFrame(columns=["ip", "mac", "first_ts", "last_ts", "pkts", "bytes"])
    return infer_roles(flows, hosts, arp, catalog, site, dns=dns).set_index("ip")


def test_sescomm_and_isenet_from_41796(catalog):
    out = roles([flow() for _ in range(3)], catalog)
    assert list(out.at[ISENET, "roles"]) == ["isenet"]
    assert out.at[ISENET, "role_source"] == "inferred"
    assert out.at[ISENET, "role_evidence"] == (
        f"isenet: accepted 41796/tcp from {SESCOMM} (3 connections)"
    )
    assert list(out.at[SESCOMM, "roles"]) == ["sescomm_server"]
    assert out.at[SESCOMM, "role_evidence"] == (
        f"sescomm_server: opened 41796/tcp to {ISENET} (3 connections)"
    )


def test_one_odd_connection_does_not_flip_a_role(catalog):
    rows = [flow() for _ in range(5)] + [flow(orig_h=ISENET, resp_h=SESCOMM)]
    out = roles(rows, catalog)
    assert out.at[ISENET, "role"] == "isenet"
    assert list(out.at[ISENET, "roles"]) == ["isenet"]
    assert out.at[ISENET, "role_evidence"] == (
        f"isenet: accepted 41796/tcp from {SESCOMM} (5 connections). "
        "Outweighs sescomm_server (1 connection)"
    )
    assert list(out.at[SESCOMM, "roles"]) == ["sescomm_server"]


def test_rejected_syn_is_no_evidence_of_serving(catalog):
    rows = [flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=41800, conn_state="REJ", resp_pkts=1)]
    out = roles(rows, catalog)
    assert list(out.at[SESCOMM, "roles"]) == []
    assert list(out.at[CLIENT, "roles"]) == ["sesam_client"]


def test_sesam_db_and_client(catalog):
    rows = [flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=41800) for _ in range(2)]
    rows += [flow(orig_h=CLIENT, resp_h=SESCOMM, resp_p=41801)]
    out = roles(rows, catalog)
    assert list(out.at[SESCOMM, "roles"]) == ["sesam_db", "sescomm_server"]
    assert list(out.at[CLIENT, "roles"]) == ["sesam_client"]


def test_sescomm_opening_the_database_stays_sescomm(catalog):
    """41800 openers may be a client or SesComm: the ambiguous evidence joins the role the
    host already shows (here sescomm_server by 41796)."""
    rows = [flow() for _ in range(2)]
    rows += [flow(orig_h=SESCOMM, resp_h="192.168.1.21", resp_p=41800) for _ in range(4)]
    out = roles(rows, catalog)
    assert list(out.at[SESCOMM, "roles"]) == ["sescomm_server"]
    assert list(out.at["192.168.1.21", "roles"]) == ["sesam_db"]


def test_cmi_from_outbound_ta_connections_only_to_the_internet(catalog):
    rows = [flow(orig_h=CMI, resp_h="198.51.100.7", resp_p=40001)]
    rows += [flow(orig_h="192.168.1.41", resp_h="192.168.1.42", resp_p=40001)]
    out = roles(rows, catalog)
    assert list(out.at[CMI, "roles"]) == ["cmi"]
    assert list(out.at["192.168.1.41", "roles"]) == []


def test_gemos_server_and_client_from_pro02(catalog):
    rows = [flow(orig_h=CLIENT, resp_h="192.168.1.5", resp_p=12000) for _ in range(2)]
    rows += [flow(orig_h="192.168.1.5", resp_h="192.168.1.6", resp_p=12002)]
    out = roles(rows, catalog)
    assert list(out.at["192.168.1.5", "roles"]) == ["gemos_server"]
    assert list(out.at["192.168.1.6", "roles"]) == ["gemos_server"]
    assert list(out.at[CLIENT, "roles"]) == ["gemos_client"]


def test_a_vendor_alone_gives_no_role(catalog):
    """Issue 11: Lantronix chips sit in com servers, ISENets and unrelated devices; W&T
    makes more than com servers. A MAC prefix without documented behaviour is no role."""
    arp = pd.DataFrame(
        {
            "ip": ["192.168.1.60", "192.168.1.61", ISENET],
            "mac": ["00:20:4a:00:00:01", "00:c0:3d:00:00:01", "00:80:a3:00:00:02"],
            "ts": [T0, T0, T0],
        }
    )
    rows = [flow(), flow(orig_h=CLIENT, resp_h="192.168.1.61", resp_p=80)]
    out = roles(rows, catalog, arp=arp)
    for ip in ("192.168.1.60", "192.168.1.61"):
        assert list(out.at[ip, "roles"]) == [], ip
        assert pd.isna(out.at[ip, "role"]) and pd.isna(out.at[ip, "role_evidence"])
    assert list(out.at[ISENET, "roles"]) == ["isenet"]
    assert out.at[ISENET, "role_evidence"] == (
        f"isenet: accepted 41796/tcp from {SESCOMM} (1 connection); "
        "MAC vendor Lantronix (supporting)"
    )


def test_lantronix_mac_supports_the_comserver_its_ports_show(catalog):
    server, xport = "192.168.1.5", "192.168.1.62"
    arp = pd.DataFrame({"ip": [xport], "mac": ["00:20:4a:00:00:09"], "ts": [T0]})
    rows = [flow(orig_h=server, resp_h=xport, resp_p=10001)]
    out = roles(rows, catalog, arp=arp)
    assert list(out.at[xport, "roles"]) == ["comserver"]
    assert out.at[xport, "role_evidence"] == (
        f"comserver: accepted 10001/tcp from {server} (1 connection); "
        "MAC vendor Lantronix (supporting)"
    )


def test_a_vendor_never_supports_a_role_its_devices_cannot_hold(catalog):
    """A Lantronix MAC on a host that behaves as the SesComm PC: the vendor supports
    neither PC role, so the evidence names the behaviour only."""
    arp = pd.DataFrame({"ip": [SESCOMM], "mac": ["00:20:4a:00:00:03"], "ts": [T0]})
    out = roles([flow()], catalog, arp=arp)
    assert list(out.at[SESCOMM, "roles"]) == ["sescomm_server"]
    assert out.at[SESCOMM, "role_evidence"] == (
        f"sescomm_server: opened 41796/tcp to {ISENET} (1 connection)"
    )


def test_wut_mac_supports_a_comserver_seen_on_its_ports(catalog):
    rows = [
        flow(orig_h="192.168.1.5", resp_h="192.168.1.70", resp_p=80, resp_mac="00:c0:3d:01:02:03")
    ]
    out = roles(rows, catalog)
    assert list(out.at["192.168.1.70", "roles"]) == []  # HTTP 80 is not a com-server port
    rows.append(
        flow(orig_h="192.168.1.5", resp_h="192.168.1.70", resp_p=8000, resp_mac="00:c0:3d:01:02:03")
    )
    out = roles(rows, catalog)
    assert list(out.at["192.168.1.70", "roles"]) == ["comserver"]
    assert out.at["192.168.1.70", "role_evidence"] == (
        "comserver: accepted 8000/tcp from 192.168.1.5 (1 connection); "
        "MAC vendor WIESEMANN & THEIS GMBH (supporting)"
    )


def test_site_roles_win(catalog):
    site = parse_site(f'[[host]]\nip = "{ISENET}"\nrole = "sesam_db"\n', path="site.toml")
    out = roles([flow() for _ in range(3)], catalog, site=site)
    assert list(out.at[ISENET, "roles"]) == ["sesam_db"]
    assert (out.at[ISENET, "role_source"], out.at[ISENET, "role_evidence"]) == (
        "site",
        "given in site.toml",
    )


def test_dns_for_ta_names_only_supports_existing_cmi_evidence(catalog):
    dns = pd.DataFrame(
        {
            "ts": [T0, T0],
            "client": [CMI, "192.168.1.1"],
            "qname": ["cmi.ta.co.at"] * 2,
            "answer": ["198.51.100.7"] * 2,
        }
    )
    rows = [flow(orig_h=CMI, resp_h="198.51.100.7", resp_p=40001)]
    out = roles(rows, catalog, dns=dns)
    assert out.at[CMI, "role_evidence"] == (
        "cmi: opened 40001/tcp to 198.51.100.7 (1 connection); "
        "asked DNS for cmi.ta.co.at (1 times, supporting)"
    )
    assert "192.168.1.1" not in out.index or list(out.at["192.168.1.1", "roles"]) == []


def test_own_macs_skip_router_macs():
    router = "aa:bb:cc:dd:ee:ff"
    flows = pd.DataFrame(
        [
            flow(orig_h="8.8.8.8", orig_mac=router, resp_h=CLIENT, resp_mac="00:11:22:33:44:55"),
            flow(
                orig_h="192.168.2.9", orig_mac=router, resp_h=CLIENT, resp_mac="00:11:22:33:44:55"
            ),
        ]
    )
    hosts = pd.DataFrame(columns=["ip", "mac"])
    macs = own_macs(flows, EMPTY_ARP, hosts, lambda ip: ip.startswith("192.168."))
    assert macs == {CLIENT: ["00:11:22:33:44:55"]}


def test_vendor_lookup_from_the_ieee_registry():
    # 00:20:4A is used by Lantronix XPort modules but registered to PRONET GMBH
    assert vendor("00:20:4a:12:34:56") == "PRONET GMBH"
    assert is_lantronix("00:20:4a:12:34:56")
    assert vendor("00:80:a3:00:00:01") == "Lantronix"
    assert vendor("00:c0:3d:01:02:03") == "WIESEMANN & THEIS GMBH"
    assert is_wut("00-C0-3D-01-02-03")
    assert not is_lantronix("00:c0:3d:01:02:03")
    assert vendor("not a mac") is None
    assert vendor(None) is None


def test_vendor_accepts_any_mac_spelling_and_caches_per_oui() -> None:
    from analyzer.roles import _vendor_of_oui, vendor

    assert vendor("00-C0-3D-01-B3-31") == vendor("00:c0:3d:ff:ff:ff") == "WIESEMANN & THEIS GMBH"
    assert vendor("not a mac") is None and vendor(None) is None and vendor("") is None
    before = _vendor_of_oui.cache_info().currsize
    vendor("00:c0:3d:12:34:56")
    assert _vendor_of_oui.cache_info().currsize == before  # same OUI, no new entry


def test_https_to_a_lantronix_ethernet_ip_device_is_no_gemos_finding():
    """Public capture (ICS-Security-Tools): 192.168.10.106 has a Lantronix MAC (00:80:a3)
    and serves HTTPS to 192.168.10.200 (tshark: one TCP conversation on 443, 1,959 frames,
    one direction). No documented port, so no role, so no GEMOS unexpected_port."""
    from conftest import PUBLIC

    from analyzer.pipeline import analyze

    capture = PUBLIC / "ICS-Security-Tools" / "EIP-IPAddressChangeAttempt.pcap"
    if not capture.exists():
        pytest.skip(f"{capture} not present")
    result = analyze(capture, write=False)
    hosts = result.hosts.to_pandas().set_index("ip")
    assert hosts.at["192.168.10.106", "vendor"] == "Lantronix"
    assert hosts.at["192.168.10.106", "mac"] == "00:80:a3:8c:33:62"
    assert pd.isna(hosts.at["192.168.10.106", "role"])
    assert list(hosts.at["192.168.10.106", "roles"]) == []
    flows = result.flows.to_pylist()
    https = [f for f in flows if f["resp_h"] == "192.168.10.106" and f["resp_p"] == 443]
    assert [(f["verdict"], f["system"]) for f in https] == [("unmonitored", None)]
    assert result.findings.num_rows == 0


def test_vendor_names_what_netaddr_registers() -> None:
    """The registry is read without netaddr.eui.ieee (its import parses the whole index):
    the same organisation as netaddr.OUI(...).registration().org for a spread of
    registered OUIs, OUIs registered twice (netaddr takes the first) and unregistered
    ones."""
    import netaddr

    from analyzer.roles import _oui_index, _vendor_of_oui

    keys, _, _ = _oui_index()
    twice = keys[1:][keys[1:] == keys[:-1]][:50].tolist()
    cases = keys[:: max(1, len(keys) // 500)].tolist() + twice + [0xFFFFFE, 0x000000, 0x123457]

    def registered(oui: int) -> str | None:
        try:
            return str(netaddr.OUI(oui).registration().org).strip() or None
        except netaddr.NotRegisteredError:
            return None

    assert [_vendor_of_oui(o) for o in cases] == [registered(o) for o in cases]
    assert len(twice) > 0 and sum(registered(o) is None for o in cases) >= 1
