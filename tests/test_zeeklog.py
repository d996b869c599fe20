"""Zeek TSV logs: read back by an existing Zeek log reader (parsezeeklogs, not our own
parser) and compared with the Arrow tables cell by cell; exact goldens for the samples;
Zeek's escaping of separators, control characters and the unset/empty markers."""

from __future__ import annotations

import difflib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from analyzer import schema
from analyzer.pipeline import analyze
from analyzer.site import load_site
from analyzer.zeeklog import conn_log, findings_log, render_set, write_zeek_logs

parsezeeklogs = pytest.importorskip("parsezeeklogs", reason="pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLE_FILES = [
    "cmi_site.pcap.gz",
    "gemos_site.vlan.pcap",
    "mixed_site.pcapng",
    "sesam_site.sll2.pcap",
]

# conn.log fields and types as Zeek's Conn::Info declares them (base/protocols/conn/
# main.zeek), the mac-logging and vlan-logging policy fields, then ours.
CONN_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"),
    ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"),
    ("conn_state", "string"), ("local_orig", "bool"), ("local_resp", "bool"),
    ("history", "string"), ("orig_pkts", "count"), ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"), ("resp_ip_bytes", "count"), ("ip_proto", "count"),
    ("orig_l2_addr", "string"), ("resp_l2_addr", "string"), ("vlan", "int"),
    ("inner_vlan", "int"), ("pcapclass_system", "string"),
    ("pcapclass_signature_id", "string"), ("pcapclass_verdict", "string"),
    ("pcapclass_severity", "string"), ("pcapclass_reason", "string"),
]  # fmt: skip
# Zeek's transport_proto enum knows tcp, udp, icmp (ICMPv6 too) and unknown_transport;
# its SSL analyzer names TLS "ssl".
ZEEK_PROTO = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmp6": "icmp"}
IANA_PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}
ZEEK_SERVICE = {"tls": "ssl"}


def site_file(sample: str) -> Path:
    return SAMPLES / (sample.split(".")[0] + ".site.toml")


@pytest.fixture(scope="module")
def analysed() -> dict[str, tuple[object, object]]:
    out = {}
    for sample in SAMPLE_FILES:
        site = load_site(site_file(sample))
        out[sample] = (analyze(SAMPLES / sample, site=site, write=False), site)
    return out


def read_back(path: Path) -> list[dict]:
    return list(parsezeeklogs.read_zeek(path))


def epoch(value: datetime) -> float:
    return value.timestamp()


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_conn_log_reads_back_cell_by_cell(sample, analysed, tmp_path):
    result, site = analysed[sample]
    paths = write_zeek_logs(result, tmp_path, site=site)
    assert paths == {"conn": tmp_path / "conn.log", "findings": tmp_path / "pcapclass_findings.log"}
    with parsezeeklogs.ZeekLog(paths["conn"]) as log:
        assert log.path == "conn"
        assert list(log.types.items()) == CONN_FIELDS
        records = list(log)
    flows = sorted(result.flows.to_pylist(), key=lambda r: (r["ts"], r["uid"]))
    assert len(records) == len(flows) == result.flows.num_rows > 0
    for rec, row in zip(records, flows, strict=True):
        expected = {
            "ts": epoch(row["ts"]),
            "uid": row["uid"],
            "id.orig_h": row["orig_h"],
            "id.orig_p": row["orig_p"],
            "id.resp_h": row["resp_h"],
            "id.resp_p": row["resp_p"],
            "proto": ZEEK_PROTO[row["proto"]],
            "service": ZEEK_SERVICE.get(row["service"], row["service"]),
            "duration": round(row["duration"], 6),
            "orig_bytes": row["orig_bytes"],
            "resp_bytes": row["resp_bytes"],
            "conn_state": row["conn_state"],
            "local_orig": site.is_local(row["orig_h"]),
            "local_resp": site.is_local(row["resp_h"]),
            "history": row["history"] or None,  # Zeek leaves an empty history unset
            "orig_pkts": row["orig_pkts"],
            "orig_ip_bytes": row["orig_ip_bytes"],
            "resp_pkts": row["resp_pkts"],
            "resp_ip_bytes": row["resp_ip_bytes"],
            "ip_proto": IANA_PROTO[row["proto"]],
            "orig_l2_addr": row["orig_mac"],
            "resp_l2_addr": row["resp_mac"],
            "vlan": row["vlan"],
            "inner_vlan": row["inner_vlan"],
            "pcapclass_system": row["system"],
            "pcapclass_signature_id": row["signature_id"],
            "pcapclass_verdict": row["verdict"],
            "pcapclass_severity": row["severity"],
            "pcapclass_reason": row["reason"],
        }
        assert rec == expected, row["uid"]


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_findings_log_reads_back_cell_by_cell(sample, analysed, tmp_path):
    result, site = analysed[sample]
    path = write_zeek_logs(result, tmp_path, site=site)["findings"]
    records = read_back(path)
    findings = sorted(
        result.findings.to_pylist(),
        key=lambda r: (
            r["first_ts"], r["verdict"], r["orig_h"], r["resp_h"], r["proto"], r["resp_p"],
            r["signature_id"] is None, r["signature_id"] or "",
        ),
    )  # fmt: skip
    assert len(records) == len(findings) == result.findings.num_rows
    for rec, row in zip(records, findings, strict=True):
        assert rec == {
            "ts": epoch(row["first_ts"]),
            "uid": row["uids"][0] if len(row["uids"]) == 1 else None,
            "id.orig_h": row["orig_h"],
            "id.orig_p": None,
            "id.resp_h": row["resp_h"],
            "id.resp_p": row["resp_p"],
            "proto": ZEEK_PROTO[row["proto"]],
            "note": f"Pcapclass::{row['verdict']}",
            "msg": row["message"],
            "src": row["orig_h"],
            "dst": row["resp_h"],
            "p": row["resp_p"],
            "n": row["flows"],
            "actions": ["Notice::ACTION_LOG"],
            "pcapclass_last_ts": epoch(row["last_ts"]),
            "pcapclass_system": row["system"],
            "pcapclass_signature_id": row["signature_id"],
            "pcapclass_verdict": row["verdict"],
            "pcapclass_severity": row["severity"],
            "pcapclass_orig_pkts": row["orig_pkts"],
            "pcapclass_resp_pkts": row["resp_pkts"],
            "pcapclass_orig_bytes": row["orig_bytes"],
            "pcapclass_resp_bytes": row["resp_bytes"],
            "pcapclass_capture": row["capture"],
            "pcapclass_uids": row["uids"],
            "pcapclass_ports": row["ports"],
            "pcapclass_n_ports": row["n_ports"],
            "pcapclass_hosts": row["hosts"],
            "pcapclass_n_hosts": row["n_hosts"],
        }


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


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_logs_match_golden(sample, analysed, tmp_path, request):
    result, site = analysed[sample]
    paths = write_zeek_logs(result, tmp_path, site=site)
    update = request.config.getoption("--update-golden")
    stem = sample.split(".")[0]
    compare_golden(paths["conn"].read_text(), GOLDEN / f"{stem}.conn.log", update)
    compare_golden(paths["findings"].read_text(), GOLDEN / f"{stem}.pcapclass_findings.log", update)


def flow_row(**changes: object) -> dict[str, object]:
    ts = datetime(2026, 3, 2, 8, 0, 1, 500000, tzinfo=UTC)
    row: dict[str, object] = {
        "uid": "Cabc", "ts": ts, "last_ts": ts, "duration": 0.0, "proto": "tcp",
        "orig_h": "192.168.1.40", "orig_p": 50000, "resp_h": "198.51.100.30",
        "resp_p": 40001, "orig_evidence": "syn", "orig_mac": None, "resp_mac": None,
        "vlan": None, "inner_vlan": None, "orig_pkts": 1, "resp_pkts": 0, "orig_bytes": 0,
        "resp_bytes": 0, "orig_ip_bytes": 60, "resp_ip_bytes": 0, "conn_state": "S0",
        "history": "S", "service": None, "system": "cmi", "signature_id": None,
        "verdict": "expected", "severity": "info", "reason": "r", "capture": "x.pcap",
    }  # fmt: skip
    row.update(changes)
    return row


def flows_table(*rows: dict[str, object]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema.arrow_schema(schema.FLOWS))


def records_of(text: str, tmp_path: Path) -> list[dict]:
    path = tmp_path / "conn.log"
    path.write_text(text)
    return read_back(path)


def test_tab_newline_backslash_are_escaped_as_zeek_escapes(tmp_path):
    reason = "tab\there, newline\nthere, back\\slash, bell\x07, umlaut ä"
    text = conn_log(flows_table(flow_row(reason=reason)))
    record_line = text.splitlines()[8]
    assert record_line.split("\t")[-1] == (
        "tab\\x09here, newline\\x0athere, back\\x5cslash, bell\\x07, umlaut ä"
    )
    assert records_of(text, tmp_path)[0]["pcapclass_reason"] == reason


def test_values_equal_to_the_markers_are_escaped(tmp_path):
    text = conn_log(
        flows_table(flow_row(uid="C1", reason="-"), flow_row(uid="C2", reason="(empty)"))
    )
    reasons = [line.split("\t")[-1] for line in text.splitlines()[8:10]]
    assert reasons == ["\\x2d", "\\x28empty)"]
    assert [r["pcapclass_reason"] for r in records_of(text, tmp_path)] == ["-", "(empty)"]


def test_empty_string_is_empty_field_and_null_is_unset(tmp_path):
    text = conn_log(flows_table(flow_row(reason="", service=None, history="")))
    lines = text.splitlines()
    cells = dict(zip(lines[6].split("\t")[1:], lines[8].split("\t"), strict=True))
    assert cells["pcapclass_reason"] == "(empty)"
    assert cells["service"] == "-"
    assert cells["history"] == "-"
    assert cells["vlan"] == "-"
    record = records_of(text, tmp_path)[0]
    assert record["pcapclass_reason"] == "" and record["service"] is None


def test_sets_use_the_set_separator_and_empty_marker():
    assert render_set([]) == "(empty)"
    assert render_set(["Ca", "Cb"]) == "Ca,Cb"
    assert render_set(["a,b", "c\td"]) == "a\\x2cb,c\\x09d"


def test_header_and_footer_lines_exactly():
    text = conn_log(flows_table(flow_row()))
    lines = text.splitlines()
    assert lines[:6] == [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#open\t2026-03-02-08-00-01",
    ]
    assert lines[6] == "#fields\t" + "\t".join(name for name, _ in CONN_FIELDS)
    assert lines[7] == "#types\t" + "\t".join(kind for _, kind in CONN_FIELDS)
    assert lines[8].startswith("1772438401.500000\tCabc\t192.168.1.40\t50000\t")
    assert lines[9] == "#close\t2026-03-02-08-00-01"
    assert text.endswith("\n") and len(lines) == 10


def test_icmp6_and_other_protocols_as_zeek_names_them(tmp_path):
    text = conn_log(
        flows_table(
            flow_row(uid="C1", proto="icmp6", orig_p=128, resp_p=129),
            flow_row(uid="C2", proto="47", orig_p=0, resp_p=0),
        )
    )
    records = records_of(text, tmp_path)
    assert [(r["proto"], r["ip_proto"]) for r in records] == [
        ("icmp", 58),
        ("unknown_transport", 47),
    ]


def test_empty_tables_give_header_and_footer_only(tmp_path):
    empty_flows = schema.empty_table(schema.FLOWS)
    empty_findings = schema.empty_table(schema.FINDINGS)
    paths = write_zeek_logs({"flows": empty_flows, "findings": empty_findings}, tmp_path)
    for path in paths.values():
        lines = path.read_text().splitlines()
        assert [line[:6] for line in lines] == [
            "#separ", "#set_s", "#empty", "#unset", "#path\t", "#open\t", "#field",
            "#types", "#close",
        ]  # fmt: skip
        assert read_back(path) == []
    assert findings_log(empty_findings).splitlines()[4] == "#path\tpcapclass_findings"


def test_cli_zeek_logs_option_writes_both_logs(tmp_path):
    out = tmp_path / "out"
    sample = SAMPLES / "cmi_site.pcap.gz"
    cmd = [sys.executable, "-m", "analyzer.cli", str(sample), "-o", str(out)]
    site = ["--site", str(site_file(sample.name))]
    done = subprocess.run([*cmd, *site, "--zeek-logs"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "conn.log", "findings.parquet", "flows.parquet", "hosts.parquet",
        "pcapclass_findings.log",
    ]  # fmt: skip
    assert (out / "conn.log").read_text() == (GOLDEN / "cmi_site.conn.log").read_text()
    again = tmp_path / "plain"
    done = subprocess.run([*cmd[:-1], str(again), *site], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (again / "conn.log").exists()
