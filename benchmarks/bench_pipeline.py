"""Throughput and peak memory of pcapclass against tshark and a naive dpkt loop, on the
same generated capture, in one run. Not a test: prints figures for docs/performance.md.

    .venv/bin/python benchmarks/bench_pipeline.py                  # 2 M packets
    .venv/bin/python benchmarks/bench_pipeline.py --packets 10000000 --only pcapclass,reader

Each contender runs as its own subprocess; wall time is measured around it and its peak
RSS comes from os.wait4 (ru_maxrss of that child alone). Contenders:
  pcapclass  `.venv/bin/pcapclass FILE -o TMPDIR` end to end (skipped, and said so, while
             the CLI does not exist yet)
  reader     analyzer.reader + analyzer.decode alone (what the hot path costs)
  tshark     `tshark -r FILE -q -z conv,tcp -z conv,udp`
  dpkt       dpkt.pcap.Reader + dpkt.ethernet.Ethernet on every packet (a naive Python decoder)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_capture import ensure_capture  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable

READER_SNIPPET = """
import sys
from collections import Counter
from analyzer.reader import Capture
from analyzer.decode import decode_batch
kept = 0
with Capture(sys.argv[1]) as cap:
    for raw in cap.batches():
        kept += decode_batch(raw, cap.stats.skipped).n
print(cap.stats.packets, kept, cap.stats.sha256)
"""

DPKT_SNIPPET = """
import sys
import dpkt
n = 0
with open(sys.argv[1], "rb") as fh:
    for ts, buf in dpkt.pcap.Reader(fh):
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            l4 = ip.data
            if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                n += 1
print(n)
"""


@dataclass(frozen=True)
class Run:
    name: str
    wall_s: float
    peak_rss_mib: float
    ok: bool
    note: str = ""


def run_child(name: str, argv: list[str], *, cwd: Path = ROOT) -> Run:
    """Run argv, return wall time and the child's own peak RSS (os.wait4)."""
    # Output goes to temporary files, not pipes: a child printing more than a pipe holds
    # (pcapclass's findings table) would block forever while we sit in wait4.
    with tempfile.TemporaryFile() as out_fh, tempfile.TemporaryFile() as err_fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out_fh, stderr=err_fh)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out_fh.seek(0)
        err_fh.seek(0)
        out = out_fh.read().decode(errors="replace")
        err = err_fh.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    ok = code in (0, 1)  # pcapclass exits 1 when it has findings
    note = "" if ok else f"exit {code}: {(err or out).strip().splitlines()[-1:]}"
    return Run(name, wall, usage.ru_maxrss / 1024, ok, note)


def contenders(capture: Path, outdir: Path) -> dict[str, list[str] | str]:
    cli = VENV_BIN / "pcapclass"
    tshark = shutil.which("tshark")
    return {
        "pcapclass": [str(cli), str(capture), "-o", str(outdir)]
        if cli.exists()
        else "skipped: .venv/bin/pcapclass does not exist yet",
        "reader": [PYTHON, "-c", READER_SNIPPET, str(capture)],
        "tshark": [tshark, "-n", "-r", str(capture), "-q", "-z", "conv,tcp", "-z", "conv,udp"]
        if tshark
        else "skipped: tshark is not installed",
        "dpkt": [PYTHON, "-c", DPKT_SNIPPET, str(capture)],
    }


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({model}), "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--connections", type=int, default=None, help="default: packets / 100")
    ap.add_argument(
        "--only",
        default="pcapclass,reader,tshark,dpkt",
        help="comma-separated subset of contenders",
    )
    args = ap.parse_args(argv)
    conns = args.connections or max(1, args.packets // 100)
    t0 = time.perf_counter()
    capture = ensure_capture(args.packets, conns)
    size_mb = capture.stat().st_size / 1e6
    print(
        f"capture: {capture} ({args.packets:,} packets, {conns:,} connections, "
        f"{size_mb:,.0f} MB; ready in {time.perf_counter() - t0:.1f} s)"
    )
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    results: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="pcapclass-bench-") as tmp:
        for name, cmd in contenders(capture, Path(tmp) / "out").items():
            if name not in wanted:
                continue
            if isinstance(cmd, str):
                print(f"{name:10s} {cmd}")
                continue
            run = run_child(name, cmd)
            results[name] = run
            rate = args.packets / run.wall_s / 1e6
            status = "" if run.ok else f"  FAILED ({run.note})"
            print(
                f"{name:10s} {run.wall_s:7.2f} s  {rate:6.2f} M packets/s  "
                f"peak RSS {run.peak_rss_mib:7.1f} MiB{status}"
            )
    base = results.get("pcapclass") or results.get("reader")
    if base is not None:
        for other in ("tshark", "dpkt"):
            if other in results:
                print(f"{base.name} vs {other}: {results[other].wall_s / base.wall_s:.1f}x faster")
        if "pcapclass" in results and "reader" in results:
            share = results["reader"].wall_s / results["pcapclass"].wall_s
            print(f"reader+decode share of the end-to-end time: {share:.0%}")
    return 0 if all(r.ok for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
