"""A SYN flood through the real CLI (issue 14, "Bounded memory against hostile traffic"):
peak RSS and wall time of `pcapclass`, beside argus on the same file in the same run.

    .venv/bin/python benchmarks/bench_flood.py --packets 5000000

The capture (generated once with numpy, cached in benchmarks/out/): --packets TCP SYNs,
54-byte Ethernet/IPv4/TCP frames, from --sources spoofed addresses of 203.0.113.0/24
(outside the local networks) with random source ports, each source to its own share
of distinct ports 1..65535 of one C.M.I. (192.168.1.40, role cmi in a site file written
here), in random order over one hour. No packet is answered: 5 M single-packet
connections (S0), each `inbound_to_cmi`. With the scan rule the findings table must
have one row per source (`n_ports` = packets / sources); the live connection table
stays capped (flows.MAX_LIVE), so memory is bounded by the finished rows, not the
flood's connections.

Peak RSS is getrusage(RUSAGE_CHILDREN).ru_maxrss of a launcher whose only child is the
measured command. The goal in the issue: <= 400 MiB for pcapclass.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "out"
FORMAT_VERSION = 1  # bump when the generated traffic changes
SEED = 14
START_TS = 1_772_438_400  # 2026-03-02 08:00:00 UTC
SPAN_S = 3600
TARGET = bytes([192, 168, 1, 40])
FRAME = 54  # Ethernet 14 + IPv4 20 + TCP 20
GOAL_MIB = 400
SITE = """\
local_networks = ["192.168.1.0/24"]

[[host]]
ip = "192.168.1.40"
role = "cmi"
"""
LAUNCHER = r"""
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.write(f"{done.returncode} {rss} {wall:.3f}\n")
sys.stdout.write(done.stderr.decode(errors="replace"))
"""


def capture_path(packets: int, sources: int) -> Path:
    return OUT_DIR / f"flood_p{packets}_s{sources}_seed{SEED}_v{FORMAT_VERSION}.pcap"


def generate(packets: int, sources: int, path: Path) -> None:
    """Classic pcap (microseconds), every record built at once as rows of a byte array."""
    per = -(-packets // sources)
    if per > 65535:
        raise SystemExit(f"{packets:,} SYNs from {sources} sources exceed 65,535 ports each")
    rng = np.random.default_rng(SEED)
    src = np.repeat(np.arange(sources, dtype=np.int64), per)[:packets]
    dport = (np.tile(np.arange(1, per + 1, dtype=np.int64), sources))[:packets]
    order = rng.permutation(packets)
    src, dport = src[order], dport[order]
    sport = rng.integers(1024, 65536, packets)
    usec = np.sort(rng.integers(0, SPAN_S * 1_000_000, packets))
    rec = np.zeros((packets, 16 + FRAME), dtype=np.uint8)

    def put(col: int, values: np.ndarray, width: int, order: str) -> None:
        as_bytes = values.astype(f"{order}u{width}").view(np.uint8).reshape(packets, width)
        rec[:, col : col + width] = as_bytes

    put(0, START_TS + usec // 1_000_000, 4, "<")
    put(4, usec % 1_000_000, 4, "<")
    put(8, np.full(packets, FRAME), 4, "<")
    put(12, np.full(packets, FRAME), 4, "<")
    e = 16
    rec[:, e : e + 6] = np.frombuffer(b"\x3c\xcd\x5a\x01\x3f\xc1", np.uint8)
    rec[:, e + 6 : e + 12] = np.frombuffer(b"\x02\x00\x00\x00\x00\x01", np.uint8)
    rec[:, e + 12 : e + 14] = (0x08, 0x00)
    ip = e + 14
    rec[:, ip] = 0x45
    put(ip + 2, np.full(packets, 40), 2, ">")
    put(ip + 4, np.arange(packets) & 0xFFFF, 2, ">")
    rec[:, ip + 8] = 64
    rec[:, ip + 9] = 6
    rec[:, ip + 12 : ip + 15] = (203, 0, 113)
    rec[:, ip + 15] = (1 + src).astype(np.uint8)
    rec[:, ip + 16 : ip + 20] = np.frombuffer(TARGET, np.uint8)
    tcp = ip + 20
    put(tcp, sport, 2, ">")
    put(tcp + 2, dport, 2, ">")
    put(tcp + 4, rng.integers(0, 2**32, packets), 4, ">")
    rec[:, tcp + 12] = 0x50
    rec[:, tcp + 13] = 0x02  # SYN
    put(tcp + 14, np.full(packets, 64240), 2, ">")
    header = np.array([0xA1B2C3D4, 0x00040002, 0, 0, 262144, 1], dtype="<u4").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(header)
        fh.write(rec.tobytes())
    tmp.replace(path)


def measured(args: list[str]) -> tuple[int, float, float, str]:
    """(exit code, peak RSS MiB, wall seconds, stderr) of one command."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], capture_output=True, text=True, check=True
    )
    head, _, stderr = done.stdout.partition("\n")
    code, kib, wall = head.split()
    return int(code), int(kib) / 1024, float(wall), stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=5_000_000)
    ap.add_argument("--sources", type=int, default=80)
    args = ap.parse_args(argv)
    cap = capture_path(args.packets, args.sources)
    if not cap.exists():
        generate(args.packets, args.sources, cap)
    print(f"capture: {cap} ({cap.stat().st_size / 2**20:,.0f} MiB, {args.packets:,} SYNs)")
    work = Path(tempfile.mkdtemp(prefix="bench_flood_"))
    try:
        site = work / "site.toml"
        site.write_text(SITE)
        out = work / "out"
        cli = [sys.executable, "-m", "analyzer.cli", str(cap), "--site", str(site), "-o", str(out)]
        code, rss, wall, stderr = measured(cli)
        if code not in (0, 1):
            print(stderr, file=sys.stderr)
            return 1
        findings = pq.read_table(out / "findings.parquet")
        flows = pq.read_metadata(out / "flows.parquet").num_rows
        n_ports = sorted(set(findings.column("n_ports").to_pylist()), key=str)
        goal = "within" if rss <= GOAL_MIB else "OVER"
        print(
            f"pcapclass: {wall:.1f} s, peak RSS {rss:,.0f} MiB ({goal} the {GOAL_MIB} MiB goal); "
            f"{flows:,} flows, {findings.num_rows} findings rows (n_ports {n_ports})"
        )
        argus = shutil.which("argus")
        if argus is None:
            print("argus: not installed (apt-get install argus-server)")
            return 0
        a_code, a_rss, a_wall, a_err = measured([argus, "-r", str(cap), "-w", str(work / "a")])
        if a_code != 0:
            print(f"argus: exit {a_code}: {a_err.strip()}")
            return 0
        print(f"argus: {a_wall:.1f} s, peak RSS {a_rss:,.0f} MiB")
        print(f"ratio pcapclass/argus: time {wall / a_wall:.2f}x, peak RSS {rss / a_rss:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
