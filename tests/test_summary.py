"""summary: what a person reads: non-IP frames named apart from damage, findings most
severe first, wrapped to the terminal, control characters escaped."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analyzer import schema, summary

SAMPLE = Path(__file__).resolve().parent.parent / "sample_pcaps" / "mixed_site.pcapng"


def test_non_ip_frames_are_named_and_apart_from_damage() -> None:
    not_ip, damaged = summary.skipped_groups(
        {"ethertype:0x88cc": 120, "llc": 48, "ethertype:0x9999": 2, "bad_ipv4_header": 3}
    )
    assert not_ip == {"LLDP": 120, "STP/LLC (802.3)": 48, "EtherType 0x9999": 2}
    assert damaged == {"bad_ipv4_header": 3}


def test_printable_escapes_control_characters() -> None:
    assert summary.printable("a\nb\x1b[2J") == "a\\nb\\x1b[2J"
    assert summary.printable("Müller.pcap") == "Müller.pcap"


def _run(tmp_path: Path, columns: int, out: str = "out") -> tuple[list[str], Path]:
    """`pcapclass SAMPLE -o OUT --limit 3` with COLUMNS set, stdout a pipe."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer.cli", str(SAMPLE), "-o", out, "--limit", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": str(columns)},
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # critical findings at --fail-on high
    return proc.stdout.splitlines(), tmp_path / out


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
@pytest.mark.parametrize("columns", [80, 200])
def test_every_summary_line_fits_the_terminal_and_keeps_the_key_facts(
    tmp_path: Path, columns: int
) -> None:
    import pyarrow.parquet as pq

    lines, out = _run(tmp_path, columns)
    assert lines and all(len(line) <= columns for line in lines), [
        ln for ln in lines if len(ln) > columns
    ]
    text = " ".join(ln.strip() for ln in lines)  # wrapped lists read as one
    verdicts = pq.read_table(out / "flows.parquet").column("verdict").to_pylist()
    for verdict in set(verdicts):
        assert f"{verdict} {verdicts.count(verdict)}" in text
    findings = pq.read_table(out / "findings.parquet")
    severities = findings.column("severity").to_pylist()
    assert f"findings: {len(severities)} (critical 2, high 3, medium 3)" in lines
    head = next(i for i, ln in enumerate(lines) if ln.startswith("  SEVERITY"))
    table = lines[head:-2]
    assert table[0].split()[:3] == ["SEVERITY", "VERDICT", "SYSTEM" if columns > 100 else "ORIG"]
    rows = [ln.split() for ln in table[1:]]
    assert [r[0] for r in rows] == ["critical", "critical", "high"]
    assert [r[1] for r in rows[:2]] == ["inbound_to_cmi", "inbound_to_cmi"]
    # the critical rows: from 203.0.113.66 to the C.M.I. at tcp/80 and tcp/40001
    for row, port in zip(rows[:2], ["tcp/80", "tcp/40001"], strict=True):
        assert "203.0.113.66 -> 192.168.10.40" in " ".join(row) and port in row
    assert lines[-2] == "  ... and 5 more in out/findings.parquet"
    assert lines[-1] == "outputs: out/{flows,findings,hosts}.parquet"
    if columns == 200:  # room for the messages
        assert "inbound TCP connection from 203.0.113.66 to C.M.I. 192.168.10.40:80" in table[1]


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
def test_a_long_output_path_keeps_its_end_at_80_columns(tmp_path: Path) -> None:
    deep = "a-folder-with-a-long-name/" * 4 + "run"
    lines, _ = _run(tmp_path, 80, deep)
    assert all(len(line) <= 80 for line in lines)
    assert lines[-2].startswith("  ... and 5 more in \u2026")
    assert lines[-2].endswith("-name/run/findings.parquet")
    assert lines[-1].startswith("outputs: \u2026") and lines[-1].endswith(
        "/run/{flows,findings,hosts}.parquet"
    )


def test_table_rows_are_cut_with_an_ellipsis_never_wrapped() -> None:
    row = {
        "severity": "high",
        "verdict": "wrong_direction",
        "system": "sesam",
        "orig_h": "192.168.10.202",
        "resp_h": "192.168.10.10",
        "proto": "tcp",
        "resp_p": 41796,
        "flows": 1234,
        "message": "TCP connection opened by ISENet 192.168.10.202 " * 3,
    }
    for width in (40, 60, 80, 100, 200):
        lines = summary._table([row], width)
        assert len(lines) == 2 and all(len(ln) <= width for ln in lines)
        assert lines[1].split()[0] == "high"
        if width >= 60:  # narrower than the narrowest table: the row is cut at the edge
            assert "1,234" in lines[1]
    assert summary._table([row], 100)[1].endswith("\u2026")
    assert "…" not in summary._table([row], 300)[1]  # wide enough: nothing cut


def _random_findings(seed: int, n: int, dictionary: bool) -> pa.Table:
    """Findings key columns with ties, nulls and non-ASCII text, and an `id` per row."""
    rng = random.Random(seed)
    texts = ["", "10.0.0.2", "10.0.0.10", "fe80::1", "Ä", "é", "z"]
    table = pa.table(
        {
            "id": list(range(n)),
            "severity": [rng.choice(schema.SEVERITIES) for _ in range(n)],
            "flows": [rng.choice([None, 1, 2, 2, 30]) for _ in range(n)],
            "verdict": [rng.choice(schema.VERDICTS[:3]) for _ in range(n)],
            "orig_h": [rng.choice(texts) for _ in range(n)],
            "resp_h": [rng.choice([None, *texts]) for _ in range(n)],
            "proto": [rng.choice(["tcp", "udp", "icmp"]) for _ in range(n)],
            "resp_p": pa.array([rng.choice([None, 0, 80, 443]) for _ in range(n)], pa.int32()),
        }
    )
    if dictionary:
        for name in ("severity", "verdict"):
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pc.dictionary_encode(table[name]))
    return table


@pytest.mark.parametrize("dictionary", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_sorted_findings_is_the_stable_sort_by_finding_order(seed: int, dictionary: bool) -> None:
    """Arrow's sort gives exactly Python's stable sort by summary.finding_order (the
    definition), ties in table order; `limit` takes its first rows."""
    table = _random_findings(seed, 300, dictionary)
    result = SimpleNamespace(findings=table)
    expected = [r["id"] for r in sorted(table.to_pylist(), key=summary.finding_order)]
    got = summary.sorted_findings(result)  # type: ignore[arg-type]
    assert [r["id"] for r in got] == expected
    top = summary.sorted_findings(result, 7)  # type: ignore[arg-type]
    assert [r["id"] for r in top] == expected[:7]
    assert summary.sorted_findings(result, 0) == []  # type: ignore[arg-type]
