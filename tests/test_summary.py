"""summary: what a person reads: non-IP frames named apart from damage, findings most
severe first, wrapped to the terminal, control characters escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import summary

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


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
def test_narrow_terminal_wraps_messages_under_their_row() -> None:
    from analyzer.pipeline import analyze

    result = analyze(SAMPLE, write=False)
    text = summary.summary(result, limit=3, width=100)
    assert all(len(line) <= 100 for line in text.splitlines() if line.startswith("  "))
    lines = text.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("  critical"))
    assert lines[first + 1].startswith("    inbound TCP connection from 203.0.113.66")
    assert lines[-1] == f"  ... and {result.findings.num_rows - 3} more in the findings table"
