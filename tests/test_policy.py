"""The site's policy as an nftables allow-list: which connections the rules let through
(written from spec/systems.md and the contract, not from the code), exact goldens for the
samples, `nft -c -f` on every ruleset, narrowing by a capture output or a batch dataset."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer.pipeline import analyze
from analyzer.policy import build_policy, load_seen, render_nftables
from analyzer.signatures import load_catalog
from analyzer.site import load_site, parse_site

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLE_FILES = {
    "cmi_site": "cmi_site.pcap.gz",
    "gemos_site": "gemos_site.vlan.pcap",
    "mixed_site": "mixed_site.pcapng",
    "sesam_site": "sesam_site.sll2.pcap",
}
INTERNET = "198.51.100.20"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def site_of(stem: str):
    return load_site(SAMPLES / f"{stem}.site.toml")


def nft_check(path: Path) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)
    if nft is None:
        pytest.skip("nft is not installed (apt-get install -y nftables); .ci/run installs it")
    probe = path.parent / "probe.nft"
    probe.write_text("table inet pcapclass_probe\n")
    done = subprocess.run([nft, "-c", "-f", str(probe)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"nft -c cannot run here (needs netlink, CAP_NET_ADMIN): {done.stderr.strip()}")
    return subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True)


def compare_golden(actual: str, golden: Path, update: bool) -> None:
    if update:
        golden.write_text(actual)
        return
    if not golden.exists():
        pytest.fail(f"{golden} is missing: run `pytest --update-golden` and review it")
    expected = golden.read_text()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), str(golden), "now", lineterm=""
        )
        pytest.fail("\n".join(list(diff)[:60]))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """Each sample analysed once into BASE/<stem>/ (the -o folder of `pcapclass CAPTURE`)."""
    base = tmp_path_factory.mktemp("outputs")
    for stem, capture in SAMPLE_FILES.items():
        analyze(SAMPLES / capture, outdir=base / stem, site=SAMPLES / f"{stem}.site.toml")
    return base


# --- what the rules let through -------------------------------------------------------------


def cmi_policy(catalog):
    return build_policy(catalog, site_of("cmi_site"))


def test_cmi_opens_its_online_services_and_nothing_reaches_it_from_outside(catalog):
    policy = cmi_policy(catalog)
    cmi = "192.168.1.40"
    # C.M.I. -> internet: DNS, NTP, HTTP (firmware check), 40001-40003 (systems.md §3)
    for proto, port in [("udp", 53), ("udp", 123), ("tcp", 80), ("tcp", 40001), ("tcp", 40002)]:
        assert policy.accepts(cmi, INTERNET, proto, 50000, port), (proto, port)
    assert policy.accepts(cmi, INTERNET, "tcp", 50000, 40003)
    # "Der TA-Server initiiert keinen Verbindungsaufbau zum C.M.I.": nothing inbound
    for proto, port in [("tcp", 40001), ("tcp", 80), ("tcp", 502), ("udp", 5441), ("tcp", 22)]:
        assert not policy.accepts(INTERNET, cmi, proto, 50000, port), (proto, port)
    # its local services, from local hosts only
    assert policy.accepts("192.168.1.60", cmi, "tcp", 50000, 502)
    assert policy.accepts("192.168.1.41", cmi, "udp", 5441, 5441)
    assert policy.accepts("192.168.1.41", cmi, "udp", 5442, 5442)
    assert not policy.accepts("192.168.1.60", cmi, "tcp", 50000, 80)
    assert not policy.accepts("192.168.1.60", cmi, "icmp", 8, 0)
    # the C.M.I. is not a DNS server for anyone
    assert not policy.accepts("192.168.1.60", cmi, "udp", 50000, 53)
    # firmware check and portal go to the internet, not to a local host
    assert not policy.accepts(cmi, "192.168.1.60", "tcp", 50000, 40001)


def test_documented_direction_only_and_wrong_direction_dropped(catalog):
    policy = build_policy(catalog, site_of("mixed_site"))
    client, server = "192.168.10.21", "192.168.10.5"
    assert policy.accepts(client, server, "tcp", 50000, 12000)  # pro02 client -> server
    assert not policy.accepts(server, client, "tcp", 50000, 12000)  # the wrong direction
    sescomm, isenet = "192.168.10.10", "192.168.10.201"
    assert policy.accepts(sescomm, isenet, "tcp", 50000, 41796)
    assert not policy.accepts(isenet, sescomm, "tcp", 50000, 41796)
    # 41797: both ends use port 41797, either side may start (search answers)
    assert policy.accepts(isenet, "192.168.10.50", "udp", 41797, 41797)
    assert not policy.accepts(isenet, "192.168.10.50", "udp", 50000, 41797)
    # the PC pings the ISENet, not the other way round
    assert policy.accepts(sescomm, isenet, "icmp", 8, 0)
    assert not policy.accepts(isenet, sescomm, "icmp", 8, 0)
    # W&T com server ports: GEMOS server -> com server
    assert policy.accepts(server, "192.168.10.31", "tcp", 50000, 9184)
    assert not policy.accepts("192.168.10.31", server, "tcp", 50000, 9184)


def test_common_infrastructure_for_pcs_only(catalog):
    policy = build_policy(catalog, site_of("mixed_site"))
    dns = "192.168.10.1"
    for pc in ("192.168.10.5", "192.168.10.21", "192.168.10.10", "192.168.10.50"):
        assert policy.accepts(pc, dns, "udp", 50000, 53), pc
        assert policy.accepts(pc, "192.0.2.123", "udp", 50000, 123), pc
    # embedded devices get only what their documents list: no DNS, NTP or ping
    for device in ("192.168.10.201", "192.168.10.31"):
        assert not policy.accepts(device, dns, "udp", 50000, 53), device
        assert not policy.accepts(device, "192.0.2.123", "udp", 50000, 123), device
        assert not policy.accepts(device, dns, "icmp", 8, 0), device
    # an unlisted host gets nothing
    assert not policy.accepts("192.168.10.120", dns, "udp", 50000, 53)


def test_rare_obsolete_and_reserved_are_not_allowed(catalog):
    policy = build_policy(catalog, site_of("mixed_site"))
    pc, isenet, server = "192.168.10.50", "192.168.10.201", "192.168.10.5"
    assert not policy.accepts(pc, isenet, "udp", 50000, 69)  # TFTP firmware update: rare
    assert not policy.accepts(pc, isenet, "udp", 50000, 41798)  # debug port: rare
    assert not policy.accepts(pc, "192.168.10.10", "tcp", 50000, 135)  # MS-RPC: obsolete
    assert not policy.accepts("192.168.10.21", server, "tcp", 50000, 12289)  # obsolete
    assert not policy.accepts("192.168.10.21", server, "tcp", 50000, 12005)  # reserved
    assert not policy.accepts("192.168.10.21", server, "tcp", 50000, 12099)  # placeholder
    text = render_nftables(policy)
    assert "\t\t# disabled (rare: a finding when seen; enable by hand if needed):" in text
    assert (
        "\t\t# ip saddr @local_v4 ip saddr != @comserver_v4 ip daddr @isenet_v4 udp dport 69 "
        'accept comment "sesam.tftp' in text  # the com server is no "any host" (issue 12)
    )
    assert "12005" not in text and "12099" not in text


def test_site_allow_and_override(catalog):
    site = parse_site(
        'local_networks = ["10.0.0.0/24"]\n'
        '[[host]]\nip = "10.0.0.5"\nrole = "gemos_server"\n'
        '[[host]]\nip = "10.0.0.21"\nrole = "gemos_client"\n'
        '[[host]]\nip = "10.0.0.40"\nrole = "cmi"\n'
        '[[override]]\nsignature = "gemos4.pro02-tcp"\nports = [13000]\n'
        '[[allow]]\norig = "10.0.0.77"\nresp = "10.0.0.40"\nproto = "tcp"\nport = 80\n'
        'reason = "technician uses the local C.M.I. web page"\n',
        path="site.toml",
    )
    policy = build_policy(catalog, site)
    assert policy.accepts("10.0.0.21", "10.0.0.5", "tcp", 50000, 13000)
    assert not policy.accepts("10.0.0.21", "10.0.0.5", "tcp", 50000, 12000)
    assert policy.accepts("10.0.0.77", "10.0.0.40", "tcp", 50000, 80)
    assert not policy.accepts("10.0.0.78", "10.0.0.40", "tcp", 50000, 80)
    text = render_nftables(policy)
    assert (
        "\t\t# site:allow:1: technician uses the local C.M.I. web page\n"
        "\t\t#   source: site.toml\n"
        "\t\tip saddr 10.0.0.77 ip daddr 10.0.0.40 tcp dport 80 accept "
        'comment "site:allow:1; site.toml"\n'
    ) in text
    assert "ip saddr @gemos_client_v4 ip daddr @gemos_server_v4 tcp dport 13000 accept" in text
    # the C.M.I. has an address: open responders exclude it
    assert "ip saddr @pc_v4 ip daddr != @cmi_v4 udp dport 53 accept" in text


def test_hosts_given_by_mac_only_are_named_with_the_rules_they_miss(catalog, capsys):
    policy = build_policy(catalog, site_of("sesam_site"))
    assert policy.notes == (
        "host ISENet Lieferzone (mac 00:20:4a:c4:13:4f, isenet) is given by MAC only: left "
        "out of the rules of 6 signature(s) (sesam.lantronix-41797, sesam.sescomm-isenet-41796, "
        "sesam.debug-41798, sesam.tftp-69-udp, sesam.tftp-69-tcp, sesam.ping-isenet); a "
        "forwarding firewall sees the last hop's MAC, never the responder's; give its address "
        'in the site file (ip = "...") or use --from with a capture that shows it',
    )
    text = render_nftables(policy)
    assert f"#   - {policy.notes[0]}\n" in text
    assert "00:20:4a:c4:13:4f" not in text.split("table inet pcapclass {", 1)[1]


def test_a_cmi_by_mac_only_is_a_caveat(catalog):
    notes = build_policy(catalog, site_of("cmi_site")).notes
    assert notes[1] == (
        "host C.M.I. Unterstation (mac 3c:cd:5a:01:3f:c2) is a C.M.I. without an address: "
        "rules whose responder is any host cannot exclude it, so connections towards it are "
        "not blocked by those rules; give its address in the site file"
    )


# --- goldens and nft -c -------------------------------------------------------------------------


@pytest.mark.parametrize("stem", sorted(SAMPLE_FILES))
def test_policy_matches_golden_and_nft_accepts_it(stem, catalog, tmp_path, request):
    text = render_nftables(build_policy(catalog, site_of(stem)))
    compare_golden(text, GOLDEN / f"{stem}.policy.nft", request.config.getoption("--update-golden"))
    path = tmp_path / "policy.nft"
    path.write_text(text)
    done = nft_check(path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("stem", sorted(SAMPLE_FILES))
def test_narrowed_policy_matches_golden_and_nft_accepts_it(
    stem, catalog, outputs, tmp_path, request, monkeypatch
):
    monkeypatch.chdir(outputs)
    policy = build_policy(catalog, site_of(stem), seen=load_seen(stem))
    text = render_nftables(policy)
    update = request.config.getoption("--update-golden")
    compare_golden(text, GOLDEN / f"{stem}.policy-seen.nft", update)
    path = tmp_path / "policy.nft"
    path.write_text(text)
    done = nft_check(path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("stem", sorted(SAMPLE_FILES))
def test_narrowed_policy_keeps_exactly_the_expected_connections(stem, catalog, outputs):
    seen = load_seen(outputs / stem)
    full = build_policy(catalog, site_of(stem), seen=None)
    narrowed = build_policy(catalog, site_of(stem), seen=seen)
    flows = seen.flows.to_pylist()
    accepted = [
        f
        for f in flows
        if narrowed.accepts(f["orig_h"], f["resp_h"], f["proto"], f["orig_p"], f["resp_p"])
    ]
    # every accepted connection was classified expected; nothing else gets through
    assert accepted and {f["verdict"] for f in accepted} == {"expected"}
    dropped = sum(d.flows for d in narrowed.dropped)
    assert len(accepted) + dropped + narrowed.link_only == len(flows)
    # no wrong_direction or inbound_to_cmi connection passes either ruleset
    for f in flows:
        if f["verdict"] in ("wrong_direction", "inbound_to_cmi"):
            args = (f["orig_h"], f["resp_h"], f["proto"], f["orig_p"], f["resp_p"])
            assert not narrowed.accepts(*args) and not full.accepts(*args), f["uid"]


def test_mixed_site_narrowed_writes_the_cmi_by_its_seen_address(catalog, outputs):
    policy = build_policy(catalog, site_of("mixed_site"), seen=load_seen(outputs / "mixed_site"))
    assert policy.notes[0] == (
        "host C.M.I. Heizung (mac 3c:cd:5a:02:44:90, cmi) is given by MAC only: written with "
        "the address(es) the capture showed for it: 192.168.10.40"
    )
    assert policy.accepts("192.168.10.40", "198.51.100.20", "tcp", 50000, 40001)
    by = {(d.verdict, d.orig_h, d.resp_h, d.resp_p): d.flows for d in policy.dropped}
    assert by[("inbound_to_cmi", "203.0.113.66", "192.168.10.40", 40001)] == 1
    assert by[("wrong_direction", "192.168.10.202", "192.168.10.10", 41796)] == 2


def test_a_batch_dataset_narrows_like_its_capture_folder(catalog, outputs, tmp_path):
    dataset = tmp_path / "dataset"
    for table in ("flows", "hosts"):
        part = dataset / table / "site=mixed" / "date=2026-03-02"
        part.mkdir(parents=True)
        pq.write_table(
            pq.read_table(outputs / "mixed_site" / f"{table}.parquet"), part / "p.parquet"
        )
    seen = load_seen(dataset)
    assert "site" in seen.flows.column_names and seen.flows.num_rows > 0
    site = site_of("mixed_site")
    from_dataset = build_policy(catalog, site, seen=seen)
    from_folder = build_policy(catalog, site, seen=load_seen(outputs / "mixed_site"))
    assert from_dataset.rules == from_folder.rules
    assert from_dataset.dropped == from_folder.dropped


def test_load_seen_rejects_a_folder_without_tables(tmp_path):
    from analyzer.errors import UsageError

    with pytest.raises(UsageError, match="neither a capture output folder"):
        load_seen(tmp_path)


# --- the command ------------------------------------------------------------------------------


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analyzer.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_cli_policy_to_file_and_stdout(tmp_path):
    site = str(SAMPLES / "sesam_site.site.toml")
    out = tmp_path / "sesam.nft"
    done = run("policy", site, "--format", "nftables", "-o", str(out))
    assert done.returncode == 0, done.stderr
    golden = (GOLDEN / "sesam_site.policy.nft").read_text()
    assert out.read_text() == golden
    assert done.stdout == ""
    assert done.stderr.startswith("pcapclass: warning: host ISENet Lieferzone (mac ")
    done = run("policy", site)
    assert done.returncode == 0 and done.stdout == golden


def test_cli_policy_from_and_bad_input(tmp_path, outputs):
    site = str(SAMPLES / "mixed_site.site.toml")
    done = run("policy", site, "--from", "mixed_site", cwd=outputs)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (GOLDEN / "mixed_site.policy-seen.nft").read_text()
    assert (
        "pcapclass: 32 connection(s) seen would be dropped; listed at the end of the ruleset"
        in done.stderr
    )
    done = run("policy", site, "--from", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == (
        f"pcapclass: error: {tmp_path}: neither a capture output folder (flows.parquet) nor a "
        "batch dataset (flows/); give the -o folder of `pcapclass CAPTURE` or the --out of "
        "`pcapclass batch`\n"
    )
    done = run("policy", str(tmp_path / "missing.toml"))
    assert done.returncode == 2
    assert done.stderr == f"pcapclass: error: {tmp_path / 'missing.toml'}: no such file\n"


def test_empty_arrow_flows_narrow_to_no_rule(catalog, tmp_path):
    from analyzer import schema

    folder = tmp_path / "empty"
    folder.mkdir()
    pq.write_table(schema.empty_table(schema.FLOWS), folder / "flows.parquet")
    policy = build_policy(catalog, site_of("cmi_site"), seen=load_seen(folder))
    assert policy.rules == () and policy.dropped == () and policy.link_only == 0
    assert isinstance(load_seen(folder).flows, pa.Table)


def test_common_infrastructure_follows_the_catalog_roles(catalog):
    """Issue 12: PCs use DNS/NTP/ping; the ISENets and the com server only their documented
    ports, as classify reads the same [[infrastructure]] entries."""
    policy = build_policy(catalog, site_of("mixed_site"))
    pc, isenet, comserver, server = (
        "192.168.10.50",
        "192.168.10.201",
        "192.168.10.31",
        "192.168.10.5",
    )
    assert policy.accepts(pc, "192.0.2.53", "udp", 50000, 53)  # a PC asks any name server
    assert policy.accepts(server, "192.168.10.1", "udp", 123, 123)
    assert not policy.accepts(isenet, "192.0.2.53", "udp", 50000, 53)  # the ISENet may not
    assert not policy.accepts(comserver, "192.168.10.1", "udp", 123, 123)
    assert not policy.accepts(server, comserver, "udp", 50000, 53)  # nor serve it
    assert not policy.accepts("192.168.10.1", isenet, "udp", 123, 123)
    assert policy.accepts(pc, isenet, "icmp", 8, 0)  # the documented ping, PC -> ISENet
    assert not policy.accepts(isenet, pc, "icmp", 8, 0)  # not the other way round
    assert not policy.accepts(comserver, server, "tcp", 50000, 22)  # ssh: "any host", not it
    assert policy.accepts("192.168.10.99", server, "tcp", 50000, 22)
