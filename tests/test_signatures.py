"""The signature catalog: the shipped data against the vendor documents, and the
strict loader's behaviour on broken files (exact messages)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from analyzer.errors import InputError, SignatureError
from analyzer.schema import ROLE_SYSTEM, ROLES, SYSTEMS
from analyzer.signatures import (
    GENERIC_PORTS,
    PAYLOADS,
    STATUSES,
    Catalog,
    Signature,
    catalog_sha256,
    format_list,
    format_show,
    load_catalog,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "signatures"
SEEDS = ROOT.parent / "shared" / "seeds"
GEMOS_DOC = "000_3d736c8ff9cc7ce8.txt"
SESAM_DOC = "001_fc41212e649194d6.txt"
CMI_DOC = "002_c6f5411368648828.txt"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _pairs(catalog: Catalog, system: str) -> set[tuple[str, int]]:
    return {
        (sig.transport, port)
        for sig in catalog.signatures
        if sig.system == system
        for port in sig.ports
    }


def _ports(catalog: Catalog, system: str, status: str) -> set[tuple[str, int]]:
    return {
        (sig.transport, port)
        for sig in catalog.signatures
        if sig.system == system and sig.status == status
        for port in sig.ports
    }


def _tcp(*ports: int | range) -> set[tuple[str, int]]:
    return _expand("tcp", ports)


def _udp(*ports: int | range) -> set[tuple[str, int]]:
    return _expand("udp", ports)


def _expand(transport: str, ports: tuple[int | range, ...]) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for item in ports:
        out.update((transport, p) for p in (item if isinstance(item, range) else [item]))
    return out


# --- the shipped catalog ---------------------------------------------------------------------


def test_shipped_catalog_loads_all_four_files(catalog: Catalog) -> None:
    assert [Path(f).name for f in catalog.files] == [
        "cmi.toml",
        "common.toml",
        "gemos4.toml",
        "sesam.toml",
    ]
    counts = {s: sum(sig.system == s for sig in catalog.signatures) for s in SYSTEMS}
    assert counts == {"gemos4": 48, "sesam": 11, "cmi": 9, "common": 13}
    assert len({sig.id for sig in catalog.signatures}) == len(catalog.signatures) == 81
    assert all(isinstance(sig, Signature) for sig in catalog.signatures)


def test_default_catalog_is_the_checkout_folder_when_running_from_source(
    catalog: Catalog,
) -> None:
    explicit = load_catalog(SHIPPED)
    assert explicit.signatures == catalog.signatures
    assert explicit.sha256 == catalog.sha256


def test_gemos4_documents_exactly_the_rows_of_systems_md(catalog: Catalog) -> None:
    wut = {8000, 8100, 8200, 8300, 9084, 9184, 9284, 9384, 9094, 9194, 9294, 9394}
    reserved_untyped = (range(12003, 12008), range(12009, 12022))
    reserved_untyped += (range(12023, 12043), range(12044, 12078))
    expected = (
        _tcp(80, 443, 12000, 12001, 12002, 12008, 12022, 12043, 12079, 12080, 12443)
        | _tcp(12081, 12082, 12083, 12084, range(12085, 12090), range(12090, 12095))
        | _tcp(range(12095, 12099), 12099, 12100, range(12101, 12200))
        | _tcp(12288, 12289, 12290, 12291, 12911, 22, 3050, *wut, 10001)
        | _tcp(*reserved_untyped)
        | _udp(12000, 12099, 12290, 53, 30718, *reserved_untyped)
    )
    assert _pairs(catalog, "gemos4") == expected
    assert ("tcp", 12078) not in expected  # not in the document at all: undocumented


def test_wut_comserver_expands_to_exactly_twelve_ports(catalog: Catalog) -> None:
    sig = catalog.get("gemos4.wut-comserver")
    assert sorted(sig.ports) == [
        8000, 8100, 8200, 8300, 9084, 9094, 9184, 9194, 9284, 9294, 9384, 9394,
    ]  # fmt: skip
    assert (sig.orig_roles, sig.resp_roles) == ({"gemos_server"}, {"comserver"})
    assert "8x00 9x84 9x94" in sig.source.wording


def test_sesam_documents_exactly_the_rows_of_systems_md(catalog: Catalog) -> None:
    expected = _tcp(41800, 41796, 41801, 135, 69) | _udp(41799, 41797, 41798, 69)
    expected |= {("icmp", 8)}
    assert _pairs(catalog, "sesam") == expected


def test_cmi_documents_exactly_the_rows_of_systems_md(catalog: Catalog) -> None:
    expected = _tcp(80, 40001, 40002, 40003, 502) | _udp(53, 123, 5441, 5442)
    assert _pairs(catalog, "cmi") == expected


def test_common_names_the_infrastructure(catalog: Catalog) -> None:
    expected = _udp(53, 123, 67, 68, 5353, 5355, 1900, 137, 138) | _tcp(53, 139)
    expected |= {("icmp", 8), ("icmp6", 128)} | {("icmp6", t) for t in range(133, 138)}
    assert _pairs(catalog, "common") == expected
    assert all(
        not sig.orig_roles and not sig.resp_roles
        for sig in catalog.signatures
        if sig.system == "common"
    )


def test_special_statuses(catalog: Catalog) -> None:
    assert _ports(catalog, "gemos4", "obsolete") == _tcp(12289, 12291) | _udp(12290)
    untyped = (range(12003, 12008), range(12009, 12022), range(12023, 12043))
    untyped += (range(12044, 12078),)
    assert _ports(catalog, "gemos4", "reserved") == (
        _tcp(*untyped, range(12085, 12090), range(12095, 12099)) | _udp(*untyped)
    )
    assert _ports(catalog, "gemos4", "placeholder") == _tcp(12099) | _udp(12099)
    assert _ports(catalog, "gemos4", "auto-assigned") == _tcp(range(12101, 12200))
    assert _ports(catalog, "sesam", "rare") == _udp(41798, 69) | _tcp(69)
    assert _ports(catalog, "sesam", "obsolete") == _tcp(135)
    assert catalog.get("sesam.msrpc-135").versions == "up to 2.1-2"
    assert catalog.get("sesam.rpc-41801").versions == "Sesam >= 2.1-3"
    assert catalog.get("cmi.coe-v2-5442").versions == "C.M.I. firmware >= 1.43.1"
    assert catalog.get("gemos4.ha-agents-12290").status == "active"
    assert catalog.get("gemos4.symbolserver-12008").status == "active"
    assert {sig.status for sig in catalog.signatures} == set(STATUSES)


def test_12079_is_listed_twice_and_told_apart_by_payload(catalog: Catalog) -> None:
    pair = catalog.for_port("tcp", 12079)
    assert [sig.id for sig in pair] == ["gemos4.printer-12079", "gemos4.gdarcs-12079"]
    assert [sig.payload for sig in pair] == ["not_http", "http"]
    assert sorted(PAYLOADS) == sorted(sig.payload for sig in pair)


def test_directions_and_roles_of_the_key_rows(catalog: Catalog) -> None:
    lantronix = catalog.get("sesam.lantronix-41797")
    assert lantronix.orig_ports == frozenset({41797})
    assert lantronix.direction == "either"
    assert lantronix.resp_roles == {"isenet"}
    sescomm = catalog.get("sesam.sescomm-isenet-41796")
    assert (sescomm.orig_roles, sescomm.resp_roles, sescomm.direction) == (
        {"sescomm_server"},
        {"isenet"},
        "forward",
    )
    assert catalog.get("sesam.firebird-41800").orig_roles == {"sesam_client", "sescomm_server"}
    ping = catalog.get("sesam.ping-isenet")
    assert (ping.transport, ping.ports, ping.status) == ("icmp", {8}, "active")
    for sig in catalog.signatures:
        if sig.system == "cmi" and sig.id not in {"cmi.modbus-502"}:
            assert sig.orig_roles == {"cmi"} and not sig.resp_roles, sig.id
    modbus = catalog.get("cmi.modbus-502")
    assert (modbus.orig_roles, modbus.resp_roles, modbus.scope) == (set(), {"cmi"}, "local")
    assert catalog.get("cmi.ta-portal-40001").remote_hosts == ("cmi.ta.co.at",)
    assert catalog.get("cmi.ta-portal-40001").scope == "internet"
    assert catalog.get("cmi.ta-mail-40002").remote_hosts == (
        "cloudmail.services.ta.co.at",
        "cmi.ta.co.at",
    )
    assert catalog.get("cmi.ta-update-80").remote_hosts == ("www.ta.co.at",)
    assert catalog.get("gemos4.discovery-udp-12000").direction == "either"
    assert catalog.get("gemos4.ha-agents-12290").direction == "either"


def test_generic_is_true_exactly_for_the_contracts_generic_ports(catalog: Catalog) -> None:
    assert GENERIC_PORTS == {22, 53, 69, 80, 123, 135, 443, 502, 3050}
    for sig in catalog.signatures:
        if sig.transport in ("icmp", "icmp6"):
            assert sig.generic, sig.id
        else:
            assert sig.generic == bool(sig.ports & GENERIC_PORTS), sig.id


def test_roles_belong_to_the_entrys_system(catalog: Catalog) -> None:
    for sig in catalog.signatures:
        for role in sig.orig_roles | sig.resp_roles:
            assert role in ROLES and ROLE_SYSTEM[role] == sig.system, sig.id


def test_every_seed_entry_quotes_its_document(catalog: Catalog) -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"seed documents not found at {SEEDS}")
    texts = {p.name: _normalised(p.read_text(encoding="utf-8")) for p in SEEDS.glob("*.txt")}
    documents = {GEMOS_DOC: "gemos4", SESAM_DOC: "sesam", CMI_DOC: "cmi"}
    for sig in catalog.signatures:
        src = sig.source
        assert src.document and src.section and src.wording.strip(), sig.id
        if sig.system == "common":
            assert src.document.startswith("IANA "), sig.id
            continue
        assert documents[src.document] == sig.system, sig.id
        assert _normalised(src.section) in texts[src.document], sig.id
        assert _normalised(src.wording) in texts[src.document], sig.id


# Where spec/systems.md and a document differ, the document wins. These tests pin the
# readings; each entry's TOML comment says the same.


def test_document_names_no_port_for_legacy_ms_rpc(catalog: Catalog) -> None:
    # systems.md: "MS RPC (135 + dynamic)"; the document: "RPC (TCP)", no number.
    sig = catalog.get("sesam.msrpc-135")
    assert "135" not in sig.source.wording
    assert "Microsoft RPC" in sig.source.wording
    if SEEDS.is_dir():
        assert "135" not in (SEEDS / SESAM_DOC).read_text(encoding="utf-8")


def test_document_revision_table_decides_12008_symbol_server(catalog: Catalog) -> None:
    # The row's columns put "nicht genutzt" under GEMOS4; the revision table says the
    # symbol server was added in 4.2, so GEMOS4 = symbol server.
    sig = catalog.get("gemos4.symbolserver-12008")
    assert sig.source.wording == "12008 TCP, http nicht genutzt Symbolserver"
    assert (sig.status, sig.name) == ("active", "symbol server")
    if SEEDS.is_dir():
        text = _normalised((SEEDS / GEMOS_DOC).read_text(encoding="utf-8"))
        assert "4.2 19.08.2014 PA SSL-Port pro02, Port 12008 (Symbolserver) ergänzt" in text


def test_document_says_only_proprietary_udp_for_lantronix_30718(catalog: Catalog) -> None:
    # systems.md adds "(discovery/config)"; the document says "UDP, proprietär" only.
    sig = catalog.get("gemos4.lantronix-xport-30718")
    assert "discovery" not in sig.name.lower()
    assert "UDP, proprietär Lantronix XPort Comserver" in sig.source.wording


def test_document_keeps_tftp_on_tcp_too(catalog: Catalog) -> None:
    assert catalog.get("sesam.tftp-69-tcp").status == "rare"
    assert "69 UDP und TCP" in catalog.get("sesam.tftp-69-tcp").source.wording


# --- lookups -----------------------------------------------------------------------------------


def test_for_port_and_get(catalog: Catalog) -> None:
    assert [s.id for s in catalog.for_port("udp", 53)] == [
        "cmi.dns-53",
        "common.dns-udp",
        "gemos4.dns-53",
    ]
    assert catalog.for_port("tcp", 12078) == ()
    assert [s.id for s in catalog.for_port("tcp", 12150)] == ["gemos4.maint-auto-12101-12199"]
    assert catalog.get("cmi.ta-portal-40001").ports == {40001}
    with pytest.raises(KeyError, match="unknown signature id 'cmi.nope'"):
        catalog.get("cmi.nope")


def test_service_ports_leave_out_reserved_and_placeholder(catalog: Catalog) -> None:
    services = catalog.service_ports()
    assert {("tcp", 12000), ("udp", 41797), ("tcp", 12150), ("tcp", 135), ("udp", 69)} <= services
    assert ("tcp", 12005) not in services
    assert ("udp", 12005) not in services
    assert ("tcp", 12099) not in services
    assert ("tcp", 12087) not in services
    assert ("tcp", 12078) not in services
    documented = {(s.transport, p) for s in catalog.signatures for p in s.ports}
    reserved = {
        (s.transport, p)
        for s in catalog.signatures
        if s.status in ("reserved", "placeholder")
        for p in s.ports
    }
    assert services == documented - reserved


def test_overrides_replace_ports_and_leave_the_original(catalog: Catalog) -> None:
    moved = catalog.with_overrides({"gemos4.pro02-tcp": [13000, 13001]})
    assert moved.get("gemos4.pro02-tcp").ports == {13000, 13001}
    assert [s.id for s in moved.for_port("tcp", 13000)] == ["gemos4.pro02-tcp"]
    assert moved.for_port("tcp", 12000) == ()
    assert ("tcp", 13001) in moved.service_ports()
    assert catalog.get("gemos4.pro02-tcp").ports == {12000}
    assert moved.sha256 == catalog.sha256
    assert [s.id for s in moved.signatures] == [s.id for s in catalog.signatures]


def test_override_into_a_reserved_range_takes_the_port_out_of_it(catalog: Catalog) -> None:
    moved = catalog.with_overrides({"gemos4.pro02-tcp": [12005]})
    assert [s.id for s in moved.for_port("tcp", 12005)] == ["gemos4.pro02-tcp"]
    assert moved.get("gemos4.reserved-12003-12007-tcp").ports == {12003, 12004, 12006, 12007}
    assert moved.get("gemos4.reserved-12003-12007-udp").ports == set(range(12003, 12008))


def test_override_errors(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="unknown signature id 'gemos4.nope'"):
        catalog.with_overrides({"gemos4.nope": [1]})
    with pytest.raises(ValueError, match=r"override of cmi.modbus-502: port 70000 is not"):
        catalog.with_overrides({"cmi.modbus-502": [70000]})
    with pytest.raises(ValueError, match="override of cmi.modbus-502: list at least one port"):
        catalog.with_overrides({"cmi.modbus-502": []})


# --- views -------------------------------------------------------------------------------------


def test_format_list_shows_every_id_with_compact_ports(catalog: Catalog) -> None:
    text = format_list(catalog)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "system", "transport", "ports", "direction", "status"]
    assert len(lines) == len(catalog.signatures) + 1
    for sig, line in zip(catalog.signatures, lines[1:], strict=True):
        assert line.startswith(sig.id + " ")
    by_id = {line.split()[0]: " ".join(line.split()) for line in lines[1:]}
    assert by_id["gemos4.maint-auto-12101-12199"] == (
        "gemos4.maint-auto-12101-12199 gemos4 tcp 12101-12199 "
        "gemos_client -> gemos_server auto-assigned"
    )
    assert by_id["cmi.modbus-502"] == "cmi.modbus-502 cmi tcp 502 any -> cmi active"
    assert by_id["sesam.lantronix-41797"] == (
        "sesam.lantronix-41797 sesam udp 41797 sescomm_server/sesam_client <-> isenet active"
    )
    assert by_id["gemos4.wut-comserver"].split()[3] == (
        "8000,8100,8200,8300,9084,9094,9184,9194,9284,9294,9384,9394"
    )


def test_format_show_has_every_field_and_the_wording(catalog: Catalog) -> None:
    text = format_show(catalog.get("sesam.rpc-41801"))
    fields = [line.split()[0] for line in text.splitlines()]
    assert fields == [
        "id", "revision", "system", "name", "transport", "ports", "orig_ports",
        "orig_roles", "resp_roles", "direction", "scope", "status", "generic", "payload",
        "service", "versions", "remote_hosts", "document", "section", "wording", "defined",
    ]  # fmt: skip
    assert "versions      Sesam >= 2.1-3" in text
    assert "„CommParam.ini“" in text
    assert "defined in    sesam.toml:" in text


# --- loading from a path -----------------------------------------------------------------------


def test_sha256_covers_names_and_bytes(catalog: Catalog, tmp_path: Path) -> None:
    contents = [(p.name, p.read_bytes()) for p in SHIPPED.glob("*.toml")]
    assert catalog.sha256 == catalog_sha256(contents)
    copy = tmp_path / "sigs"
    shutil.copytree(SHIPPED, copy)
    assert load_catalog(copy).sha256 == catalog.sha256
    (copy / "cmi.toml").write_text((copy / "cmi.toml").read_text() + "\n# changed\n")
    assert load_catalog(copy).sha256 != catalog.sha256


def test_single_file_loads_alone(tmp_path: Path) -> None:
    one = load_catalog(SHIPPED / "sesam.toml")
    assert {sig.system for sig in one.signatures} == {"sesam"}
    assert one.files == (str(SHIPPED / "sesam.toml"),)
    assert one.signatures[0].file == "sesam.toml"
    assert one.signatures[0].line == 14  # the [[signature]] header of the first entry


def test_broken_file_in_a_directory_is_never_skipped(tmp_path: Path) -> None:
    copy = tmp_path / "sigs"
    shutil.copytree(SHIPPED, copy)
    (copy / "zz.toml").write_text("[[signature]]\nid = \n")
    with pytest.raises(SignatureError, match=r"^zz\.toml:2: TOML syntax error"):
        load_catalog(copy)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(SignatureError) as missing:
        load_catalog(tmp_path / "nope")
    assert str(missing.value) == f"{tmp_path / 'nope'}: no such signature file or directory"
    with pytest.raises(SignatureError) as empty:
        load_catalog(tmp_path)
    assert str(empty.value) == f"{tmp_path}: no signature files (*.toml) in this directory"
    assert issubclass(SignatureError, InputError)


# --- exact error messages ----------------------------------------------------------------------

ENTRY = """\
[[signature]]
id = "cmi.x"
revision = 1
system = "cmi"
name = "x"
transport = "tcp"
ports = [40001]
orig_roles = ["cmi"]
resp_roles = []
direction = "forward"
scope = "internet"
status = "active"
generic = false
remote_hosts = []
source = { document = "d.txt", section = "s", wording = "w" }
"""


def _load_error(tmp_path: Path, text: str, name: str = "cmi.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SignatureError) as info:
        load_catalog(path)
    return str(info.value)


def test_minimal_entry_loads(tmp_path: Path) -> None:
    path = tmp_path / "cmi.toml"
    path.write_text("# one entry\n\n" + ENTRY)
    (sig,) = load_catalog(path).signatures
    assert (sig.id, sig.line, sig.file, sig.ports, sig.orig_ports) == (
        "cmi.x",
        3,
        "cmi.toml",
        {40001},
        None,
    )


ALLOWED = (
    "id, revision, system, name, transport, ports, orig_ports, orig_roles, resp_roles, "
    "direction, scope, status, generic, payload, service, versions, remote_hosts, source"
)

ERROR_CASES = {
    "unknown key": (
        "# a comment\n" + ENTRY.replace("transport =", "prot ="),
        f"cmi.toml:2: entry cmi.x: unknown key 'prot' (line 7); allowed keys: {ALLOWED}",
    ),
    "unknown source key": (
        ENTRY.replace('wording = "w"', 'wording = "w", page = 3'),
        "cmi.toml:1: entry cmi.x: unknown key 'source.page' (line 15) in source; "
        "allowed keys: document, section, wording",
    ),
    "bad status": (
        ENTRY.replace('"active"', '"actve"'),
        "cmi.toml:1: entry cmi.x: status 'actve' (line 12) is not one of active, rare, "
        "obsolete, reserved, placeholder, auto-assigned",
    ),
    "port out of range": (
        ENTRY.replace("[40001]", "[40001, 70000]"),
        "cmi.toml:1: entry cmi.x: ports (line 7): port 70000 is out of range 0..65535",
    ),
    "bad range": (
        ENTRY.replace("[40001]", '["40003-40001"]'),
        "cmi.toml:1: entry cmi.x: ports (line 7): range '40003-40001' is reversed; "
        "write it as 'a-b' with a <= b",
    ),
    "range past 65535": (
        ENTRY.replace("[40001]", '["65000-65536"]'),
        "cmi.toml:1: entry cmi.x: ports (line 7): range '65000-65536' is out of range 0..65535",
    ),
    "not a port": (
        ENTRY.replace("[40001]", '["http"]'),
        "cmi.toml:1: entry cmi.x: ports (line 7): 'http' is not a port; "
        "write an integer or a range 'a-b'",
    ),
    "empty ports": (
        ENTRY.replace("[40001]", "[]"),
        "cmi.toml:1: entry cmi.x: ports (line 7): is empty; list at least one port",
    ),
    "unknown role": (
        ENTRY.replace('orig_roles = ["cmi"]', 'orig_roles = ["cmi_box"]'),
        "cmi.toml:1: entry cmi.x: orig_roles 'cmi_box' (line 8) is not one of gemos_server, "
        "gemos_client, sescomm_server, sesam_client, isenet, sesam_db, cmi, comserver",
    ),
    "role of another system": (
        ENTRY.replace("resp_roles = []", 'resp_roles = ["isenet"]'),
        "cmi.toml:1: entry cmi.x: resp_roles 'isenet' (line 9) is a role of system sesam, "
        "not cmi; use roles of cmi or leave the list empty (any host)",
    ),
    "wrong id prefix": (
        ENTRY.replace('id = "cmi.x"', 'id = "sesam.x"'),
        "cmi.toml:1: entry sesam.x: id 'sesam.x' (line 2) does not start with its system "
        "'cmi.'; rename it to 'cmi.x' or fix the system",
    ),
    "missing key": (
        ENTRY.replace('scope = "internet"\n', ""),
        "cmi.toml:1: entry cmi.x: missing key 'scope'; add it (one of local, internet, any)",
    ),
    "wrong type": (
        ENTRY.replace("revision = 1", 'revision = "1"'),
        "cmi.toml:1: entry cmi.x: revision '1' (line 3) must be an integer",
    ),
    "generic flag": (
        ENTRY.replace("generic = false", "generic = true"),
        "cmi.toml:1: entry cmi.x: generic (line 13) must be false: the generic ports are "
        "exactly 22,53,69,80,123,135,443,502,3050",
    ),
    "mixed generic": (
        ENTRY.replace("[40001]", "[80, 40001]"),
        "cmi.toml:1: entry cmi.x: ports (line 7) mix generic port(s) 80 with distinctive "
        "ones; split the entry",
    ),
    "empty wording": (
        ENTRY.replace('wording = "w"', 'wording = " "'),
        "cmi.toml:1: entry cmi.x: source.wording (line 15): must not be empty",
    ),
    "duplicate id": (
        ENTRY + "\n" + ENTRY,
        "cmi.toml:17: entry cmi.x: duplicate id, first defined at cmi.toml:1; "
        "give one of them another id",
    ),
    "contradictory overlap": (
        ENTRY + "\n" + ENTRY.replace('"cmi.x"', '"cmi.y"').replace('"active"', '"obsolete"'),
        "cmi.toml:17: entry cmi.y: contradicts cmi.x (cmi.toml:1): both match tcp port "
        "40001 in the same direction but status 'obsolete' differs from 'active'; give them "
        "different ports, roles or payloads, or the same status",
    ),
    "syntax error": (
        ENTRY.replace("revision = 1", "revision 1"),
        "cmi.toml:3: TOML syntax error: Expected '=' after a key in a key/value pair "
        "(at line 3, column 10); fix the TOML syntax there",
    ),
    "empty file": (
        "# nothing here yet\n",
        "cmi.toml:1: no [[signature]] entries; add at least one or remove the file",
    ),
    "unknown top-level key": (
        "version = 2\n" + ENTRY,
        "cmi.toml:1: unknown top-level key 'version'; a signature file holds only "
        "[[signature]] tables (and [[infrastructure]] tables)",
    ),
    "payload on udp": (
        ENTRY.replace('"tcp"', '"udp"').replace("remote_hosts", 'payload = "http"\nremote_hosts'),
        "cmi.toml:1: entry cmi.x: payload (line 14): only tcp entries may have a payload",
    ),
    "icmp type out of range": (
        ENTRY.replace('"tcp"', '"icmp"').replace("[40001]", "[300]").replace("= false", "= true"),
        "cmi.toml:1: entry cmi.x: ports (line 7): icmp entries list ICMP types 0..255",
    ),
    "entry without id": (
        ENTRY + "\n" + ENTRY.replace('id = "cmi.x"\n', ""),
        "cmi.toml:17: entry #2: missing key 'id'; add it",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_message(tmp_path: Path, case: str) -> None:
    text, message = ERROR_CASES[case]
    assert _load_error(tmp_path, text) == message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cmi.toml"
    path.write_bytes(ENTRY.replace('name = "x"', 'name = "\xfc"').encode("latin-1"))
    with pytest.raises(SignatureError) as info:
        load_catalog(path)
    assert str(info.value) == "cmi.toml: not UTF-8 text (byte 63); save the file as UTF-8"


def test_duplicate_id_across_files_names_both(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(ENTRY)
    (tmp_path / "b.toml").write_text("# second\n" + ENTRY)
    with pytest.raises(SignatureError) as info:
        load_catalog(tmp_path)
    assert str(info.value) == (
        "b.toml:2: entry cmi.x: duplicate id, first defined at a.toml:1; "
        "give one of them another id"
    )


def test_payload_tells_an_overlap_apart_and_roles_keep_entries_apart(tmp_path: Path) -> None:
    # The 12079 pattern: same port and roles, different payload -> no contradiction even
    # with different statuses.
    http = ENTRY.replace("remote_hosts", 'payload = "http"\nremote_hosts')
    other = (
        ENTRY.replace('"cmi.x"', '"cmi.y"')
        .replace('"active"', '"obsolete"')
        .replace("remote_hosts", 'payload = "not_http"\nremote_hosts')
    )
    path = tmp_path / "cmi.toml"
    path.write_text(http + "\n" + other)
    assert [s.payload for s in load_catalog(path).signatures] == ["http", "not_http"]
    # Same port, opposite roles, both forward: never the same connection. With one of
    # them "either", the reverse direction overlaps and the statuses contradict.
    forward = (
        ENTRY.replace('system = "cmi"', 'system = "sesam"')
        .replace('"cmi.x"', '"sesam.x"')
        .replace('orig_roles = ["cmi"]', 'orig_roles = ["sescomm_server"]')
        .replace("resp_roles = []", 'resp_roles = ["isenet"]')
    )
    backward = (
        forward.replace('"sesam.x"', '"sesam.y"')
        .replace('orig_roles = ["sescomm_server"]', 'orig_roles = ["isenet"]')
        .replace('resp_roles = ["isenet"]', 'resp_roles = ["sescomm_server"]')
        .replace('"active"', '"rare"')
    )
    path = tmp_path / "sesam.toml"
    path.write_text(forward + "\n" + backward)
    assert [s.status for s in load_catalog(path).signatures] == ["active", "rare"]
    either = backward.replace('"forward"', '"either"')
    assert _load_error(tmp_path, forward + "\n" + either, name="sesam.toml") == (
        "sesam.toml:17: entry sesam.y: contradicts sesam.x (sesam.toml:1): both match tcp "
        "port 40001 in the same direction but status 'rare' differs from 'active'; give them "
        "different ports, roles or payloads, or the same status"
    )


def test_shipped_12079_pair_without_payloads_would_contradict(tmp_path: Path) -> None:
    text = (SHIPPED / "gemos4.toml").read_text(encoding="utf-8")
    broken = text.replace('payload = "not_http"\n', "").replace('payload = "http"\n', "")
    start = broken.index('id = "gemos4.gdarcs-12079"')
    head, tail = broken[:start], broken[start:]
    broken = head + tail.replace('status = "active"', 'status = "rare"', 1)
    message = _load_error(tmp_path, broken, name="gemos4.toml")
    assert re.fullmatch(
        r"gemos4\.toml:\d+: entry gemos4\.gdarcs-12079: contradicts gemos4\.printer-12079 "
        r"\(gemos4\.toml:\d+\): both match tcp port 12079 in the same direction but status "
        r"'rare' differs from 'active'; give them different ports, roles or payloads, or the "
        r"same status",
        message,
    )


# --- per-role common infrastructure ([[infrastructure]]) ------------------------------------

PC_ROLES = ["gemos_server", "gemos_client", "sescomm_server", "sesam_client", "sesam_db"]


def test_shipped_infrastructure_follows_the_documents(catalog: Catalog) -> None:
    """spec/systems.md and issue 12: PCs (GEMOS servers/clients, SesComm and Sesam PCs, the
    Sesam database host) use ordinary infrastructure; the C.M.I. only what CMI-Portfreigabe
    lists (its DNS/NTP are cmi.toml entries); ISENets and com servers only their ports."""
    groups = {e.group: (sorted(e.roles), e.signatures) for e in catalog.infrastructure}
    every_common = (
        "common.dns-udp", "common.dns-tcp", "common.ntp", "common.dhcp", "common.mdns",
        "common.llmnr", "common.ssdp", "common.netbios-ns", "common.netbios-dgm",
        "common.netbios-ssn", "common.icmp-echo", "common.icmp6-echo", "common.icmp6-nd",
    )  # fmt: skip
    assert groups == {
        "pc": (sorted(PC_ROLES), every_common),
        "cmi": (["cmi"], ()),
        "isenet": (["isenet"], ()),
        "comserver": (["comserver"], ()),
    }
    assert all(e.file == "common.toml" for e in catalog.infrastructure)
    assert catalog.infrastructure_roles("common.dns-udp") == frozenset(PC_ROLES)
    assert catalog.infrastructure_of("isenet").signatures == ()
    assert [s.id for s in catalog.documented_for("comserver")] == [
        "gemos4.wut-comserver",
        "gemos4.lantronix-xport-10001",
        "gemos4.lantronix-xport-30718",
    ]


INFRA_COMMON = """\
[[signature]]
id = "common.x"
revision = 1
system = "common"
name = "x"
transport = "udp"
ports = [5353]
orig_roles = []
resp_roles = []
direction = "either"
scope = "local"
status = "active"
generic = false
remote_hosts = []
source = { document = "d", section = "s", wording = "w" }

[[infrastructure]]
group = "all"
roles = ALL_ROLES
signatures = ["common.x"]
any_host = true
note = "n"
"""
ALL_ROLES = (
    '["gemos_server", "gemos_client", "sescomm_server", "sesam_client", "isenet", "sesam_db", '
    '"cmi", "comserver"]'
)
INFRA_COMMON = INFRA_COMMON.replace("roles = ALL_ROLES", f"roles = {ALL_ROLES}")


def test_infrastructure_entry_loads(tmp_path: Path) -> None:
    path = tmp_path / "common.toml"
    path.write_text(INFRA_COMMON)
    catalog = load_catalog(path)
    (entry,) = catalog.infrastructure
    assert (entry.group, entry.signatures, entry.note, entry.file, entry.line) == (
        "all",
        ("common.x",),
        "n",
        "common.toml",
        17,
    )
    assert catalog.infrastructure_map()["isenet"] == frozenset({"common.x"})
    # overrides keep the declarations
    assert catalog.with_overrides({"common.x": [5354]}).infrastructure == catalog.infrastructure


INFRA_ERRORS = {
    "unknown signature id": (
        INFRA_COMMON.replace('signatures = ["common.x"]', 'signatures = ["common.y"]'),
        "common.toml:17: infrastructure all: unknown signature id 'common.y'; list common "
        "signatures (common.x)",
    ),
    "a system's signature": (
        INFRA_COMMON.replace('signatures = ["common.x"]', 'signatures = ["common.x", "cmi.x"]')
        + "\n"
        + ENTRY,
        "common.toml:17: infrastructure all: cmi.x is a cmi signature (common.toml:24), not "
        "common infrastructure; list only signatures of system common",
    ),
    "unknown role": (
        INFRA_COMMON.replace('"isenet", "sesam_db"', '"isnet", "sesam_db"'),
        "common.toml:17: infrastructure all: roles 'isnet' (line 19) is not one of "
        "gemos_server, gemos_client, sescomm_server, sesam_client, isenet, sesam_db, cmi, "
        "comserver",
    ),
    "role declared twice": (
        INFRA_COMMON + '\n[[infrastructure]]\ngroup = "dev"\nroles = ["isenet"]\n'
        'signatures = []\nany_host = false\nnote = "n"\n',
        "common.toml:24: infrastructure dev: role 'isenet' is already declared by group all "
        "(common.toml:17); declare each role once",
    ),
    "a role not declared": (
        INFRA_COMMON.replace(', "comserver"]', "]"),
        "common.toml:17: infrastructure: no entry declares role 'comserver'; add it to an "
        "[[infrastructure]] table (signatures = [] for none)",
    ),
    "unknown key": (
        INFRA_COMMON.replace('note = "n"', 'note = "n"\nports = [53]'),
        "common.toml:17: infrastructure all: unknown key 'ports' (line 23); allowed keys: "
        "group, roles, signatures, any_host, note",
    ),
    "empty note": (
        INFRA_COMMON.replace('note = "n"', 'note = " "'),
        "common.toml:17: infrastructure all: note (line 22): must not be empty; say what the "
        "documents list for these roles",
    ),
    "missing signatures": (
        INFRA_COMMON.replace('signatures = ["common.x"]\n', ""),
        "common.toml:17: infrastructure all: missing key 'signatures'; add it",
    ),
    "id listed twice": (
        INFRA_COMMON.replace('["common.x"]', '["common.x", "common.x"]'),
        "common.toml:17: infrastructure all: signatures (line 20) list 'common.x' twice",
    ),
    "duplicate group": (
        INFRA_COMMON.replace(ALL_ROLES, '["cmi"]')
        + '\n[[infrastructure]]\ngroup = "all"\nroles = ["isenet"]\nsignatures = []\n'
        'any_host = false\nnote = "n"\n',
        "common.toml:24: infrastructure all: duplicate group, first defined at "
        "common.toml:17; give one of them another name",
    ),
}


@pytest.mark.parametrize("case", list(INFRA_ERRORS))
def test_infrastructure_error_message(tmp_path: Path, case: str) -> None:
    text, message = INFRA_ERRORS[case]
    assert _load_error(tmp_path, text, name="common.toml") == message


def test_shipped_infrastructure_with_a_typo_names_file_and_line(tmp_path: Path) -> None:
    copy = tmp_path / "sigs"
    shutil.copytree(SHIPPED, copy)
    text = (copy / "common.toml").read_text(encoding="utf-8")
    (copy / "common.toml").write_text(text.replace('  "common.ssdp",\n', '  "common.sdp",\n'))
    with pytest.raises(SignatureError) as info:
        load_catalog(copy)
    line = text[: text.index('group = "pc"')].count("\n")  # the [[infrastructure]] header
    assert str(info.value).startswith(
        f"common.toml:{line}: infrastructure pc: unknown signature id 'common.sdp'; list "
        "common signatures (common.dns-udp, "
    )
