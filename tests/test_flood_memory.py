"""Memory per connection of a SYN flood (issue 14, "Bounded memory against hostile
traffic"; docs/hardening.md, "SYN flood"). The real `pcapclass` command runs in a child
on two floods made by benchmarks/bench_flood.py's generator (single-packet connections
from 80 spoofed sources to distinct ports of a C.M.I.), and the growth of its peak RSS
(getrusage(RUSAGE_CHILDREN) of a launcher whose only child it is) between them is
divided by the added connections. A bound on that slope, not a timing: before the flows
were written in chunks (main at fa97a70) this test measured 1,199 bytes per connection
(408 -> 637 MiB), with chunked writing 836 (402 -> 562 MiB); the bound is 1,000. The
findings table must keep one row per source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_flood import LAUNCHER, SITE, generate  # noqa: E402

SOURCES = 80
SMALL, LARGE = 100_000, 300_000
BYTES_PER_CONNECTION = 1_000


def peak_mib(capture: Path, site: Path, out: Path) -> float:
    cli = [sys.executable, "-m", "analyzer.cli", str(capture), "--site", str(site), "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cli],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=600,
        check=True,
    )
    head, _, stderr = done.stdout.partition("\n")
    code, kib, _wall = head.split()
    assert code == "1", stderr  # findings: exit 1
    return int(kib) / 1024


def test_syn_flood_memory_per_connection(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    peaks = {}
    for n in (SMALL, LARGE):
        capture = tmp_path / f"flood{n}.pcap"
        generate(n, SOURCES, capture)
        out = tmp_path / f"out{n}"
        peaks[n] = peak_mib(capture, site, out)
        findings = pq.read_table(out / "findings.parquet")
        assert findings.num_rows == SOURCES
        assert set(findings.column("n_ports").to_pylist()) == {n // SOURCES}
        assert pq.read_metadata(out / "flows.parquet").num_rows == n
        capture.unlink()
    slope = (peaks[LARGE] - peaks[SMALL]) * 2**20 / (LARGE - SMALL)
    print(f"peak RSS {peaks}, {slope:,.0f} bytes per connection")  # shown with -s
    assert slope <= BYTES_PER_CONNECTION
