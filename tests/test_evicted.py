"""Connections ended early at the connection table's cap (FlowResult.evicted) reach the
user: Result.evicted, the Parquet metadata key `pcapclass.evicted`, a warning line and
`--json` (contract "Connection table cap")."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

from analyzer import cli, flows
from analyzer.output import read_metadata
from analyzer.pipeline import analyze

T0 = 1_700_000_000
CLIENTS = 5  # five UDP exchanges live at once, one datagram each


def udp_frame(src_last: int) -> bytes:
    udp = dpkt.udp.UDP(sport=40000 + src_last, dport=5000, data=b"hello")
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(
        src=bytes([192, 168, 1, src_last]), dst=bytes([192, 168, 1, 200]), p=17, data=udp
    )
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(
        src=bytes([2, 0, 0, 0, 0, src_last]), dst=b"\x02\x00\x00\x00\x00\xc8", data=ip
    )
    return bytes(eth)


def capture(tmp_path: Path) -> Path:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i in range(CLIENTS):  # a millisecond apart: all well inside the UDP timeout
        frame = udp_frame(10 + i)
        out += struct.pack("<IIII", T0, 1000 * i, len(frame), len(frame)) + frame
    path = tmp_path / "five.pcap"
    path.write_bytes(out)
    return path


def test_cap_of_two_evicts_three_of_five_live_connections(tmp_path: Path) -> None:
    """Cap 2: the 3rd, 4th and 5th connection each push the least recently active one
    out, so 3 are evicted; every connection still is a flow."""
    path = capture(tmp_path)
    result = analyze(path, outdir=tmp_path / "o", max_live_connections=2)
    assert result.evicted == 3
    assert result.flows.num_rows == CLIENTS
    assert read_metadata(tmp_path / "o" / "flows.parquet")["pcapclass.evicted"] == "3"
    assert result.capture.warnings == [
        f"{path}: 3 connections ended early because 2 connections were live at once "
        "(the connection table's cap); a later packet of one starts a new connection"
    ]


def test_under_the_cap_nothing_is_evicted_and_the_key_says_0(tmp_path: Path) -> None:
    result = analyze(capture(tmp_path), outdir=tmp_path / "o")
    assert result.evicted == 0
    assert result.capture.warnings == []
    assert read_metadata(tmp_path / "o" / "hosts.parquet")["pcapclass.evicted"] == "0"


def test_cli_warns_and_json_counts_the_evicted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default cap is read at each run (flows.MAX_LIVE_CONNECTIONS): lowered here."""
    monkeypatch.setattr(flows, "MAX_LIVE_CONNECTIONS", 3)
    capture(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli.main, ["five.pcap", "-o", "o", "--json"])
    assert res.exit_code == 0, res.output
    assert res.stderr == (
        "pcapclass: warning: five.pcap: 2 connections ended early because 3 connections "
        "were live at once (the connection table's cap); a later packet of one starts a "
        "new connection\n"
    )
    obj = json.loads(res.stdout)
    assert obj["captures"][0]["evicted"] == 2
    assert read_metadata(tmp_path / "o" / "findings.parquet")["pcapclass.evicted"] == "2"
