"""Site file: every error message exactly, MAC hosts, role merge, default networks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from analyzer.errors import SiteError
from analyzer.schema import ROLES
from analyzer.signatures import load_catalog
from analyzer.site import DEFAULT_LOCAL_NETWORKS, load_site, parse_site

ROLE_LIST = ", ".join(ROLES)

GOOD = """\
site = "Rathaus Nord"
local_networks = ["192.168.10.0/24", "10.20.0.0/16"]

[[host]]
ip = "192.168.10.40"
role = "cmi"
name = "C.M.I. Heizung"

[[host]]
mac = "00:20:4A:12:34:56"
roles = ["isenet"]
name = "ISENet Tor 1"

[[host]]
ip = "192.168.10.5"
role = "gemos_server"

[[host]]
ip = "192.168.10.5"
roles = ["sesam_db", "gemos_server"]

[[override]]
signature = "gemos4.pro02-tcp"
ports = [13000]

[[allow]]
orig = "192.168.10.77"
resp = "192.168.10.40"
proto = "tcp"
port = 80
reason = "technician uses the local C.M.I. web page"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def error(text: str) -> str:
    with pytest.raises(SiteError) as err:
        parse_site(text, path="site.toml")
    return str(err.value)


def test_good_site(tmp_path):
    site = load_site(write(tmp_path, GOOD))
    assert site.name == "Rathaus Nord"
    assert site.local_networks == (
        ipaddress.ip_network("192.168.10.0/24"),
        ipaddress.ip_network("10.20.0.0/16"),
    )
    assert dict(site.overrides) == {"gemos4.pro02-tcp": frozenset({13000})}
    allow = site.allows[0]
    assert (allow.n, allow.signature_id, allow.proto, allow.port) == (1, "site:allow:1", "tcp", 80)
    assert site.allow_for("192.168.10.77", "192.168.10.40", "tcp", 80) is allow
    assert site.allow_for("192.168.10.77", "192.168.10.40", "tcp", 81) is None
    assert len(site.sha256) == 64


def test_given_networks_replace_the_default_but_link_local_stays_local(tmp_path):
    site = load_site(write(tmp_path, GOOD))
    assert site.is_local("192.168.10.7") and site.is_local("10.20.3.4")
    assert not site.is_local("192.168.11.7") and not site.is_local("10.0.0.1")
    assert site.is_local("fe80::1c2d:5eff:fe31:a7c0") and site.is_local("169.254.3.3")


def test_roles_of_one_address_merge(tmp_path):
    site = load_site(write(tmp_path, GOOD))
    assert site.roles_for("192.168.10.5") == ("gemos_server", "sesam_db")


def test_mac_host_covers_local_ips_seen_with_that_mac(tmp_path):
    site = load_site(write(tmp_path, GOOD))
    mac = frozenset({"00:20:4a:12:34:56"})
    assert site.roles_for("192.168.10.60", mac) == ("isenet",)
    assert site.name_for("192.168.10.60", mac) == "ISENet Tor 1"
    # an address behind a router, seen with the router's (here: same) MAC: not covered
    assert site.roles_for("203.0.113.5", mac) == ()
    assert site.roles_for("192.168.10.61") == ()


def test_default_local_networks():
    site = parse_site('site = "x"\n')
    assert [str(n) for n in site.local_networks] == list(DEFAULT_LOCAL_NETWORKS)
    assert DEFAULT_LOCAL_NETWORKS == (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fe80::/10",
        "fc00::/7",
    )
    for ip in ("10.1.2.3", "172.31.0.1", "192.168.0.1", "169.254.1.1", "fe80::1", "fd00::5"):
        assert site.is_local(ip), ip
    for ip in ("172.32.0.1", "8.8.8.8", "2001:db8::1"):
        assert not site.is_local(ip), ip


def test_missing_file(tmp_path):
    with pytest.raises(SiteError) as err:
        load_site(tmp_path / "x.toml")
    assert str(err.value) == f"{tmp_path / 'x.toml'}: no such file"


def test_unknown_top_level_key_suggests_the_right_one():
    assert error('site = "x"\n\nlocal_network = ["10.0.0.0/8"]\n') == (
        "site.toml:3: unknown key 'local_network'; did you mean 'local_networks'?"
    )


def test_unknown_role():
    text = '[[host]]\nip = "10.0.0.1"\n\n[[host]]\nip = "192.168.10.40"\n\nrole = "cmi_box"\n'
    assert error(text) == (
        f"site.toml:7: host 192.168.10.40: unknown role 'cmi_box'; roles are {ROLE_LIST}"
    )


def test_unknown_key_in_a_host():
    assert error('[[host]]\nip = "10.0.0.1"\nrol = "cmi"\n') == (
        "site.toml:3: host 10.0.0.1: unknown key 'rol'; did you mean 'role'?"
    )


def test_bad_ip_address():
    assert error('[[host]]\nip = "192.168.10.400"\nrole = "cmi"\n') == (
        "site.toml:2: host 192.168.10.400: bad IP address '192.168.10.400'; "
        'write it as "192.168.10.40" or "fd00::40"'
    )


def test_bad_mac_address():
    assert error('[[host]]\nrole = "cmi"\nmac = "00:11:22:33:44:zz"\n') == (
        "site.toml:3: host 00:11:22:33:44:zz: bad MAC address '00:11:22:33:44:zz'; "
        'write it as six hex pairs, e.g. "00:11:22:33:44:55"'
    )


def test_host_needs_exactly_one_address():
    assert error('[[host]]\nip = "10.0.0.1"\nmac = "00:11:22:33:44:55"\n') == (
        "site.toml:1: host entry has both ip and mac; give exactly one: "
        'ip = "192.168.10.40" or mac = "00:11:22:33:44:55"'
    )


def test_bad_cidr():
    assert error('site = "x"\nlocal_networks = ["192.168.10.0/33"]\n') == (
        "site.toml:2: bad network '192.168.10.0/33' in local_networks; "
        'write a CIDR such as "192.168.10.0/24"'
    )


def test_two_names_for_one_address():
    text = '[[host]]\nip = "10.0.0.1"\nname = "A"\n[[host]]\nip = "10.0.0.1"\nname = "B"\n'
    assert error(text) == (
        "site.toml:6: host 10.0.0.1: name 'B' differs from 'A' given at line 1; "
        "an address has one name: remove or align one of them"
    )


def test_allow_without_reason():
    text = '[[allow]]\norig = "10.0.0.1"\nresp = "10.0.0.2"\nproto = "tcp"\nport = 80\n'
    assert error(text) == (
        "site.toml:1: allow #1: missing key 'reason'; add reason = "
        '"why this connection is acceptable"'
    )


def test_allow_with_empty_reason_bad_proto_and_bad_address():
    base = '[[allow]]\norig = "10.0.0.1"\nresp = "10.0.0.2"\nproto = "tcp"\nport = 80\n'
    assert error(base + 'reason = " "\n') == (
        "site.toml:6: allow #1: reason is empty; say why this connection is acceptable, "
        'e.g. reason = "technician laptop"'
    )
    assert error(base.replace('"tcp"', '"sctp"') + 'reason = "r"\n') == (
        "site.toml:4: allow #1: unknown proto 'sctp'; use one of tcp, udp, icmp, icmp6"
    )
    assert error(base.replace('"10.0.0.2"', '"srv"') + 'reason = "r"\n') == (
        "site.toml:3: allow #1: bad address 'srv' in resp; write an IP address or CIDR, "
        'e.g. "192.168.10.77"'
    )


def test_wrong_type():
    text = (
        '[[allow]]\norig = "10.0.0.1"\nresp = "10.0.0.2"\nproto = "tcp"\nport = "80"\n'
        'reason = "r"\n'
    )
    assert error(text) == "site.toml:5: allow #1: 'port' must be an integer, got '80'"


def test_invalid_toml():
    assert error('site = "x"\nsite = "y"\n') == (
        "site.toml:2: invalid TOML: Cannot overwrite a value; fix the syntax (https://toml.io)"
    )
    assert error('site = "x"\nlocal_networks = [\n') == (
        "site.toml:2: invalid TOML: Invalid value; fix the syntax (https://toml.io)"
    )


def test_override_of_unknown_signature_with_the_catalog(tmp_path):
    path = write(tmp_path, '\n[[override]]\nsignature = "gemos4.pro02-tpc"\nports = [13000]\n')
    with pytest.raises(SiteError) as err:
        load_site(path, catalog=load_catalog())
    assert str(err.value) == (
        f"{path}:2: override: unknown signature 'gemos4.pro02-tpc'; "
        "did you mean 'gemos4.pro02-tcp'?"
    )


def test_override_ports_out_of_range():
    assert error('[[override]]\nsignature = "gemos4.pro02-tcp"\nports = [70000]\n') == (
        "site.toml:3: override gemos4.pro02-tcp: port 70000 is out of range; "
        "give ports between 0 and 65535, e.g. ports = [13000]"
    )


def test_is_local_agrees_with_ipaddress_at_the_edges():
    """The integer comparison behind is_local answers as ipaddress membership does: network
    edges, IPv6, a scope id, IPv4-mapped IPv6 and text that is no address at all."""
    import ipaddress

    from analyzer.site import is_local

    networks = tuple(
        ipaddress.ip_network(n) for n in ("10.1.0.0/16", "192.168.10.0/24", "fd00:1::/64")
    )
    cases = [
        "10.1.0.0", "10.1.255.255", "10.0.255.255", "10.2.0.0", "192.168.10.255",
        "192.168.11.0", "fd00:1::", "fd00:1::ffff:ffff:ffff:ffff", "fd00:1:0:1::",
        "fd00:1::5%eth0", "::ffff:10.1.2.3", "01.1.2.3", "10.1.2", "not an address", "",
    ]  # fmt: skip

    def expected(ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in networks)

    assert [is_local(ip, networks) for ip in cases] == [expected(ip) for ip in cases]
    assert sum(expected(ip) for ip in cases) == 6  # the cases do test both answers


def test_local_flags_of_a_column_agree_with_ipaddress():
    """local_flags (a whole column: dotted quads in bulk, the rest one by one) answers as
    ipaddress membership does, on the edge cases above and on quads that only look like
    addresses (an octet over 255, a leading zero, trailing blanks)."""
    from analyzer.site import Locality, local_flags

    networks = tuple(ipaddress.ip_network(n) for n in ("10.1.0.0/16", "fd00:1::/64"))
    cases = [
        "10.1.0.0", "10.1.255.255", "10.0.255.255", "10.2.0.0", "10.1.256.1", "010.1.2.3",
        "10.1.2.3 ", "10.1.2", "fd00:1::5", "fd00:1::5%eth0", "::ffff:10.1.2.3", "fd00:2::",
        "x", "",
    ]  # fmt: skip
    want = [True, True, False, False, False, False, False, False, True, True, False, False]
    want += [False, False]
    assert local_flags(cases, networks).tolist() == want
    locality = Locality(lambda ips: local_flags(ips, networks))
    assert locality.mask(cases + cases[::-1]).tolist() == want + want[::-1]
    assert [locality(ip) for ip in cases] == want
