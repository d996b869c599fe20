"""Scans fold into one findings row (issue 14; contract, Precise rules, "Scans"): one
originator to more than `scan_threshold` (default 20) distinct ports of one host, or to
more than that many hosts on one port, with the same verdict and signature_id. Captures
are generated with dpkt; expectations come from the contract (the C.M.I. only opens
connections: an inbound SYN from outside is inbound_to_cmi, critical; a C.M.I. opening
an undocumented port is unexpected_port, medium)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import dpkt
import pyarrow.parquet as pq
import pytest

from analyzer import schema
from analyzer.errors import SiteError
from analyzer.pipeline import analyze
from analyzer.site import parse_site

T0 = 1_772_438_400  # 2026-03-02 08:00:00 UTC
CMI = "192.168.1.40"  # role cmi in the site file below
OUTSIDE = "203.0.113.9"  # TEST-NET-3: outside the local networks
SITE = f"""\
local_networks = ["192.168.1.0/24"]
{{threshold}}
[[host]]
ip = "{CMI}"
role = "cmi"
"""
SCAN_COLUMNS = ("ports", "n_ports", "hosts", "n_hosts")


def syn(src: str, dst: str, sport: int, dport: int) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, flags=dpkt.tcp.TH_SYN, seq=1, off=5)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, ttl=64, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    mac = b"\x02\x00\x00\x00\x00\x01"
    return bytes(dpkt.ethernet.Ethernet(src=mac, dst=mac[::-1], type=0x0800, data=ip))


def capture(tmp_path: Path, conns: list[tuple[str, str, int]], name: str = "scan.pcap") -> Path:
    """One SYN per (orig, resp, port), 1 ms apart, source ports 40000 + i."""
    path = tmp_path / name
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh)
        for i, (orig, resp, port) in enumerate(conns):
            writer.writepkt(syn(orig, resp, 40000 + i, port), ts=T0 + i / 1000)
    return path


def site_file(tmp_path: Path, threshold: int | None = None) -> Path:
    path = tmp_path / "site.toml"
    line = "" if threshold is None else f"scan_threshold = {threshold}\n"
    path.write_text(SITE.format(threshold=line))
    return path


def findings(tmp_path: Path, conns: list[tuple[str, str, int]], threshold: int | None = None):
    result = analyze(capture(tmp_path, conns), site=site_file(tmp_path, threshold), write=False)
    return result, result.findings.to_pylist()


def port_scan(n: int) -> list[tuple[str, str, int]]:
    return [(OUTSIDE, CMI, 20001 + i) for i in range(n)]


def host_sweep(n: int) -> list[tuple[str, str, int]]:
    return [(CMI, f"192.168.1.{101 + i}", 20001) for i in range(n)]


def inbound_reason(port: int) -> str:
    return (
        f"inbound TCP connection attempt (no answer) from {OUTSIDE} to C.M.I. {CMI}:{port}; "
        "the C.M.I. only opens connections itself (CMI-Portfreigabe)"
    )


def test_25_ports_of_one_host_are_one_port_scan_row(tmp_path: Path) -> None:
    result, rows = findings(tmp_path, port_scan(25))
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("verdict", "severity", "system", "signature_id")} == {
        "verdict": "inbound_to_cmi",
        "severity": "critical",
        "system": "cmi",
        "signature_id": None,
    }
    assert (row["orig_h"], row["resp_h"], row["proto"], row["resp_p"]) == (
        OUTSIDE,
        CMI,
        "tcp",
        None,
    )
    assert row["ports"] == list(range(20001, 20026))
    assert (row["n_ports"], row["hosts"], row["n_hosts"]) == (25, None, None)
    assert (row["flows"], row["orig_pkts"], row["resp_pkts"]) == (25, 25, 0)
    assert row["message"] == (
        f"port scan: {OUTSIDE} -> 25 tcp ports of {CMI} (20001-20025), 25 connections; "
        f"first: {inbound_reason(20001)}"
    )
    # flows keep their own verdicts, one row per connection; uids join them all
    flows = result.flows.to_pylist()
    assert [f["resp_p"] for f in flows] == list(range(20001, 20026))
    assert {f["verdict"] for f in flows} == {"inbound_to_cmi"}
    assert [f["reason"] for f in flows] == [inbound_reason(20001 + i) for i in range(25)]
    assert sorted(row["uids"]) == sorted(f["uid"] for f in flows)


def test_20_ports_are_no_scan_the_threshold_is_more_than(tmp_path: Path) -> None:
    _, rows = findings(tmp_path, port_scan(20))
    assert sorted(r["resp_p"] for r in rows) == list(range(20001, 20021))
    assert all(r[k] is None for r in rows for k in SCAN_COLUMNS)
    assert {(r["resp_h"], r["flows"]) for r in rows} == {(CMI, 1)}
    assert rows[0]["message"] == inbound_reason(rows[0]["resp_p"])


def test_25_hosts_on_one_port_are_one_host_sweep_row(tmp_path: Path) -> None:
    _, rows = findings(tmp_path, host_sweep(25))
    assert len(rows) == 1
    row = rows[0]
    assert (row["verdict"], row["severity"], row["system"]) == ("unexpected_port", "medium", "cmi")
    assert (row["orig_h"], row["resp_h"], row["proto"], row["resp_p"]) == (CMI, None, "tcp", 20001)
    hosts = [f"192.168.1.{101 + i}" for i in range(25)]
    assert (row["hosts"], row["n_hosts"], row["ports"], row["n_ports"]) == (hosts, 25, None, None)
    assert row["flows"] == 25
    assert row["message"].startswith(
        f"host sweep: {CMI} -> tcp/20001 on 25 hosts (192.168.1.101, 192.168.1.102, "
        "192.168.1.103, 192.168.1.104, 192.168.1.105, ...), 25 connections; first: "
    )


def test_different_verdicts_never_fold_together(tmp_path: Path) -> None:
    """15 ports from outside (inbound_to_cmi) and 15 from the C.M.I. towards the same
    outside host (unexpected_port): 30 distinct pairs, but neither group passes 20."""
    conns = port_scan(15) + [(CMI, OUTSIDE, 30001 + i) for i in range(15)]
    _, rows = findings(tmp_path, conns)
    assert len(rows) == 30
    assert all(r["n_ports"] is None and r["resp_p"] is not None for r in rows)


@pytest.mark.parametrize(("threshold", "n", "rows"), [(30, 25, 25), (5, 6, 1), (5, 5, 5)])
def test_the_site_file_sets_the_threshold(
    tmp_path: Path, threshold: int, n: int, rows: int
) -> None:
    _, got = findings(tmp_path, port_scan(n), threshold=threshold)
    assert len(got) == rows
    assert [r["n_ports"] for r in got] == ([n] if rows == 1 else [None] * rows)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "0",
            "site.toml:2: scan_threshold 0 is out of range; give a whole number of at least 1 "
            "(default 20: more than 20 distinct ports or hosts from one originator is a scan)",
        ),
        ("20.5", "site.toml:2: 'scan_threshold' must be an integer, got 20.5"),
        ('"20"', "site.toml:2: 'scan_threshold' must be an integer, got '20'"),
        ("true", "site.toml:2: 'scan_threshold' must be an integer, got True"),
    ],
)
def test_a_bad_scan_threshold_is_a_precise_site_error(value: str, message: str) -> None:
    with pytest.raises(SiteError) as err:
        parse_site(f'site = "x"\nscan_threshold = {value}\n', path="site.toml")
    assert str(err.value) == message


def test_cli_parquet_json_zeek_log_and_summary_agree(tmp_path: Path) -> None:
    cap = capture(tmp_path, port_scan(25) + host_sweep(21))
    site = site_file(tmp_path)
    args = [str(cap), "--site", str(site), "-o", str(tmp_path / "out"), "--zeek-logs"]
    cmd = [sys.executable, "-m", "analyzer.cli", *args]
    # a wide terminal: every column shown (pytest's readline exports COLUMNS=80 to children)
    wide = {**os.environ, "COLUMNS": "200"}
    text = subprocess.run(cmd, capture_output=True, text=True, check=False, env=wide)
    assert text.returncode == 1, text.stderr  # a critical finding, --fail-on high
    lines = text.stdout.splitlines()
    assert lines[3] == "findings: 2 (critical 1, medium 1)"
    cells = [ln.split() for ln in lines[5:7]]
    assert cells[0][:7] == ["critical", "inbound_to_cmi", "cmi", OUTSIDE, "->", CMI, "tcp/*"]
    assert cells[0][7:11] == ["(scan:", "25", "ports)", "25"]
    assert cells[1][3:11] == [CMI, "->", "*", "tcp/20001", "(scan:", "21", "hosts)", "21"]

    table = pq.read_table(tmp_path / "out" / "findings.parquet")
    assert table.schema == schema.arrow_schema(schema.FINDINGS).with_metadata(table.schema.metadata)
    parquet = {r["verdict"]: r for r in table.to_pylist()}
    assert parquet["inbound_to_cmi"]["ports"] == list(range(20001, 20026))
    assert parquet["unexpected_port"]["hosts"] == [f"192.168.1.{101 + i}" for i in range(21)]

    obj = json.loads(
        subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=False).stdout
    )
    got = {r["verdict"]: r for r in obj["findings"]}
    for verdict, row in parquet.items():
        for key in ("resp_h", "resp_p", *SCAN_COLUMNS, "message", "flows"):
            assert got[verdict][key] == row[key], key

    log = (tmp_path / "out" / "pcapclass_findings.log").read_text().splitlines()
    fields = log[6].split("\t")[1:]
    records = [dict(zip(fields, ln.split("\t"), strict=True)) for ln in log[8:-1]]
    by_note = {r["note"]: r for r in records}
    scan, sweep = by_note["Pcapclass::inbound_to_cmi"], by_note["Pcapclass::unexpected_port"]
    assert (scan["id.resp_h"], scan["id.resp_p"], scan["p"], scan["n"]) == (CMI, "-", "-", "25")
    assert scan["pcapclass_ports"] == ",".join(str(20001 + i) for i in range(25))
    assert (scan["pcapclass_n_ports"], scan["pcapclass_hosts"], scan["pcapclass_n_hosts"]) == (
        "25",
        "-",
        "-",
    )
    assert (sweep["id.resp_h"], sweep["dst"], sweep["id.resp_p"]) == ("-", "-", "20001")
    assert sweep["pcapclass_hosts"] == ",".join(f"192.168.1.{101 + i}" for i in range(21))
    assert (sweep["pcapclass_n_hosts"], sweep["pcapclass_ports"]) == ("21", "-")


def test_connections_closed_early_by_a_full_live_table_are_counted(tmp_path: Path) -> None:
    """25 unanswered SYNs with room for 10 live connections: 15 are closed early (each
    still a flow, the scan still one row), and pcapclass.health says how many."""
    out = tmp_path / "out"
    result = analyze(
        capture(tmp_path, port_scan(25)),
        site=site_file(tmp_path),
        outdir=out,
        max_live_connections=10,
    )
    assert result.flows.num_rows == 25
    assert result.findings.column("n_ports").to_pylist() == [25]
    meta = pq.read_schema(out / "flows.parquet").metadata
    assert json.loads(meta[b"pcapclass.health"])["connections_evicted"] == 15
    assert (result.evicted, meta[b"pcapclass.evicted"]) == (15, b"15")
