"""Small hostile files must not cost large memory (issue 14: a 1 MB gzip of 200 MiB of
pcapng interface blocks took 1.7 GiB, 300 MiB of section headers 1.2 GiB; a gzip bomb
of zeros passed as 67 M packets with no warning).

Each case runs the real `pcapclass` command in a child process and reads its peak
resident set with getrusage(RUSAGE_CHILDREN) in a launcher whose only child it is. The
bound is a behaviour bound, not a timing: the peak may exceed that of the same command
on a 3-packet capture (importing numpy, pandas, pyarrow and numba is most of it),
measured once numba's cache holds every kernel, by at most EXTRA_MIB, and never reach
ABSOLUTE_MIB. The user-visible warning is asserted literally. The hostile files are
made here by streaming zlib (each about 1 MB).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import zlib
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_reader import FRAMES, block, epb, idb, pcap_bytes, shb

from analyzer.walk import MAX_INTERFACES

ROOT = Path(__file__).resolve().parent.parent
EXTRA_MIB = 128  # what a hostile file may add over a tiny capture's peak
ABSOLUTE_MIB = 700  # the figures were 1,200 - 3,300 MiB
LE = "<"
MIB = 2**20

LAUNCHER = r"""
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(f"{done.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
sys.stdout.write(done.stderr)
"""


def run_measured(capture: Path, out: Path) -> tuple[int, float, str]:
    """(exit code, peak RSS of the pcapclass process in MiB, its stderr)."""
    cli = [sys.executable, "-c", "from analyzer.cli import main; main()"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cli, str(capture), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    head, _, stderr = done.stdout.partition("\n")
    code, kib = head.split()
    print(f"{capture.name}: exit {code}, peak RSS {int(kib) / 1024:.0f} MiB")  # shown with -s
    return int(code), int(kib) / 1024, stderr


@cache
def baseline_mib(tmp: str) -> float:
    """The peak of a 3-packet capture, after one run of each reading path the cases use
    (mapped and gzip-streamed, pcap and pcapng): a kernel missing from numba's cache is
    compiled there, so no measured peak includes the compiler (about 100 MiB)."""
    p = Path(tmp) / "tiny.pcap"
    p.write_bytes(pcap_bytes())
    ng = Path(tmp) / "tiny.pcapng.gz"
    ng.write_bytes(gzip.compress(shb(LE) + idb(LE, 1) + epb(LE, 0, 1, FRAMES[0])))
    gz = Path(tmp) / "tiny.pcap.gz"
    gz.write_bytes(gzip.compress(pcap_bytes()))
    for warm in (p, ng, gz):
        run_measured(warm, Path(tmp) / f"warm-{warm.name}")
    code, mib, stderr = run_measured(p, Path(tmp) / "tiny-out")
    assert code in (0, 1), stderr
    return mib


@pytest.fixture(scope="module")
def bound(tmp_path_factory: pytest.TempPathFactory) -> float:
    base = baseline_mib(str(tmp_path_factory.mktemp("baseline")))
    return min(base + EXTRA_MIB, ABSOLUTE_MIB)


def gzip_stream(path: Path, head: bytes, unit: bytes, total: int, tail: bytes = b"") -> int:
    """head + unit repeated to at least `total` bytes + tail, gzip-compressed while
    streamed (nothing large in memory); returns how many units were written."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = unit * (MIB // len(unit))
    units = 0
    with path.open("wb") as fh:
        fh.write(comp.compress(head))
        while units * len(unit) < total:
            fh.write(comp.compress(chunk))
            units += MIB // len(unit)
        fh.write(comp.compress(tail))
        fh.write(comp.flush())
    assert path.stat().st_size < 4 * MIB
    return units


def run_bounded(capture: Path, out: Path, bound: float) -> str:
    """Run pcapclass on `capture`: exit 0 and a peak RSS under `bound`; its stderr."""
    code, mib, stderr = run_measured(capture, out)
    assert code == 0, stderr
    assert mib < bound, f"peak {mib:.0f} MiB"
    return stderr


def all_skipped(capture: Path, n: int, reason: str) -> str:
    """The warning of a capture whose n packets were all skipped for `reason`."""
    return (
        f"pcapclass: warning: {capture}: most packets ({n:,} of {n:,}) were skipped: "
        f"{reason} {n:,}; the results cover only the rest"
    )


def health(out: Path) -> dict:
    meta = pq.read_schema(out / "flows.parquet").metadata
    return json.loads(meta[b"pcapclass.health"])


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("pcapclass: warning: ")]


def test_200_mib_of_interface_blocks(tmp_path: Path, bound: float) -> None:
    p = tmp_path / "idb.pcapng.gz"
    units = gzip_stream(p, shb(LE), idb(LE, 1), 200 * MIB, epb(LE, 0, 1, FRAMES[0]))
    stderr = run_bounded(p, tmp_path / "out", bound)
    assert warnings_of(stderr)[0] == (
        f"pcapclass: warning: {p}: {units - MAX_INTERFACES:,} interface description blocks "
        f"beyond {MAX_INTERFACES} in one section were ignored; their packets are skipped "
        "as bad_interface"
    )
    assert health(tmp_path / "out")["reader_events"]["idb_over_cap"] == units - MAX_INTERFACES


def test_300_mib_of_section_headers(tmp_path: Path, bound: float) -> None:
    p = tmp_path / "shb.pcapng.gz"
    units = gzip_stream(p, b"", shb(LE), 300 * MIB, idb(LE, 1) + epb(LE, 0, 1, FRAMES[0]))
    run_bounded(p, tmp_path / "out", bound)
    h = health(tmp_path / "out")
    assert h["reader_events"]["sections"] == units and h["packets"] == 1


@pytest.mark.parametrize("length", [2**31, 0xFFFFFFFC])
def test_a_block_claiming_gigabytes(tmp_path: Path, bound: float, length: int) -> None:
    good = shb(LE) + idb(LE, 1) + epb(LE, 0, 1, FRAMES[0])
    claim = struct.pack(LE + "II", 6, length) + bytes(64)
    p = tmp_path / "claim.pcapng"
    p.write_bytes(good + claim)
    stderr = run_bounded(p, tmp_path / "out", bound)
    assert warnings_of(stderr)[0] == (
        f"pcapclass: warning: {p}: corrupt record at byte {len(good)} (block length "
        f"{length} exceeds 16777216); reading stopped there, results cover the first 1 records"
    )


def test_gzip_bomb_of_zeros_after_a_pcap_header(tmp_path: Path, bound: float) -> None:
    """1 GiB of zeros: 67,108,864 16-byte record headers with caplen 0, each counted as
    zero_caplen, and the capture said to be mostly skipped."""
    p = tmp_path / "bomb.pcap.gz"
    header = pcap_bytes(records=[])
    gzip_stream(p, header, bytes(64 * 1024), 1024 * MIB)
    stderr = run_bounded(p, tmp_path / "out", bound)
    n = 1024 * MIB // 16
    assert warnings_of(stderr) == [all_skipped(p, n, "zero_caplen")]


def test_pcap_records_claiming_caplen_ffffffff(tmp_path: Path, bound: float) -> None:
    """Classic pcap: a caplen above 262,144 cannot be resynchronised: the first one stops
    reading, so a million of them cost nothing."""
    rec = struct.pack(LE + "IIII", 1, 0, 0xFFFFFFFF, 0xFFFFFFFF) + bytes(48)
    p = tmp_path / "caplen.pcap.gz"
    gzip_stream(p, pcap_bytes(records=[]), rec, 64 * MIB)
    stderr = run_bounded(p, tmp_path / "out", bound)
    assert warnings_of(stderr)[0] == (
        f"pcapclass: warning: {p}: corrupt record at byte 24 (caplen 4294967295 exceeds "
        "262144); reading stopped there, results cover the first 0 records"
    )


def test_pcapng_packets_claiming_caplen_ffffffff(tmp_path: Path, bound: float) -> None:
    """pcapng: the block frames each packet, so every EPB whose caplen runs past its block
    is skipped alone and counted (bad_caplen), and the capture said to be mostly skipped."""
    bad = block(LE, 6, struct.pack(LE + "IIIII", 0, 0, 1, 0xFFFFFFFF, 0xFFFFFFFF) + FRAMES[0])
    p = tmp_path / "caplen.pcapng.gz"
    units = gzip_stream(p, shb(LE) + idb(LE, 1), bad, 64 * MIB)
    stderr = run_bounded(p, tmp_path / "out", bound)
    assert warnings_of(stderr) == [all_skipped(p, units, "bad_caplen")]
