"""Throughput and peak memory of pcapclass against tshark and a naive dpkt loop, on the
same generated capture, in one run. Not a test: prints figures for docs/performance.md.

    .venv/bin/python benchmarks/bench_pipeline.py                  # 2 M packets
    .venv/bin/python benchmarks/bench_pipeline.py --packets 10000000 --only pcapclass,reader
    .venv/bin/python benchmarks/bench_pipeline.py --repeat 3       # best of 3 on a shared machine

Each contender runs as its own subprocess; wall time is measured around it and its peak
RSS comes from os.wait4 (ru_maxrss of that child, or of a helper process it started
and waited for, such as the reader's record scout, if that was larger). Contenders:
  pcapclass  `.venv/bin/pcapclass FILE -o TMPDIR` end to end (skipped, and said so, while
             the CLI does not exist yet)
  reader     analyzer.reader + analyzer.decode alone (what the hot path costs)
  tshark     `tshark -r FILE -q -z conv,tcp -z conv,udp`
  dpkt       dpkt.pcap.Reader + dpkt.ethernet.Ethernet on every packet (a naive Python decoder)
  breakdown  reader + decode in-process: wall time without interpreter start-up, and CPU
             time of the main thread (record scan, decode) and of the helper threads
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
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

BREAKDOWN_SNIPPET = """
import resource, sys, time
from analyzer.reader import Capture
from analyzer.decode import decode_batch
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0, main0 = time.perf_counter(), time.thread_time()
dec = 0.0
with Capture(sys.argv[1]) as cap:
    for raw in cap.batches():
        d0 = time.thread_time()
        pb = decode_batch(raw, cap.stats.skipped)
        dec += time.thread_time() - d0
wall, main = time.perf_counter() - t0, time.thread_time() - main0
r1 = resource.getrusage(resource.RUSAGE_SELF)
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
n = cap.stats.packets
print(f"in-process reader+decode: {wall:.2f} s wall ({n / wall / 1e6:.2f} M packets/s); "
      f"CPU: main thread {main:.2f} s (scan + batch arrays {main - dec:.2f} s, "
      f"decode {dec:.2f} s), helper threads (read/SHA-256) {cpu - main:.2f} s, "
      f"record-scout process {ch.ru_utime + ch.ru_stime:.2f} s")
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


def run_child(name: str, argv: list[str], *, timeout_s: float, cwd: Path = ROOT) -> Run:
    """Run argv, return wall time and the child's own peak RSS (os.wait4); a child still
    running after timeout_s is killed and reported as not finished."""
    # Output goes to temporary files, not pipes: a child printing more than a pipe holds
    # (pcapclass's findings table) would block forever while we sit in wait4.
    with tempfile.TemporaryFile() as out_fh, tempfile.TemporaryFile() as err_fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out_fh, stderr=err_fh)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        out_fh.seek(0)
        err_fh.seek(0)
        out = out_fh.read().decode(errors="replace")
        err = err_fh.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    ok = code in (0, 1)  # pcapclass exits 1 when it has findings
    if not ok and wall >= timeout_s:
        note = f"did not finish within {timeout_s:.0f} s"
    else:
        note = "" if ok else f"exit {code}: {(err or out).strip().splitlines()[-1:]}"
    return Run(name, wall, usage.ru_maxrss / 1024, ok, note)


def summarise(tries: list[Run]) -> Run:
    """Best wall time of the runs that finished, with the highest peak RSS of all."""
    done = [r for r in tries if r.ok]
    if not done:
        return tries[-1]
    best = min(done, key=lambda r: r.wall_s)
    return Run(best.name, best.wall_s, max(r.peak_rss_mib for r in tries), True)


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
        "breakdown": [PYTHON, "-c", BREAKDOWN_SNIPPET, str(capture)],
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
        default="pcapclass,reader,tshark,dpkt,breakdown",
        help="comma-separated subset of contenders (breakdown: where reader+decode "
        "spend their CPU time, measured in-process)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each contender this many times, alternating; report the best and the "
        "median wall time and the highest peak RSS (for machines shared with other jobs)",
    )
    ap.add_argument(
        "--timeout-s",
        type=float,
        default=900.0,
        help="kill a contender still running after this many seconds (default 900)",
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
    runs: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="pcapclass-bench-") as tmp:
        for round_no in range(max(1, args.repeat)):
            for name, cmd in contenders(capture, Path(tmp) / f"out{round_no}").items():
                if name not in wanted:
                    continue
                if isinstance(cmd, str):
                    if round_no == 0:
                        print(f"{name:10s} {cmd}")
                    continue
                if name == "breakdown":  # prints its own figures
                    done_run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                    print(done_run.stdout.strip() or done_run.stderr.strip().splitlines()[-1])
                    continue
                run = run_child(name, cmd, timeout_s=args.timeout_s)
                runs.setdefault(name, []).append(run)
                rate = args.packets / run.wall_s / 1e6 if run.ok else 0.0
                status = "" if run.ok else f"  FAILED ({run.note})"
                print(
                    f"{name:10s} {run.wall_s:7.2f} s  {rate:6.2f} M packets/s  "
                    f"peak RSS {run.peak_rss_mib:7.1f} MiB{status}"
                )
    for name, tries in runs.items():
        results[name] = summarise(tries)
        if len(tries) > 1 and results[name].ok:
            best = results[name]
            walls = sorted(r.wall_s for r in tries)
            print(
                f"{name:10s} best of {len(tries)}: {best.wall_s:.2f} s "
                f"({args.packets / best.wall_s / 1e6:.2f} M packets/s), median "
                f"{walls[len(walls) // 2]:.2f} s, highest peak RSS {best.peak_rss_mib:.1f} MiB"
            )
    done = {name: run for name, run in results.items() if run.ok}
    base = done.get("pcapclass") or done.get("reader")
    if base is not None:
        for other in ("tshark", "dpkt"):
            if other in done:
                print(f"{base.name} vs {other}: {done[other].wall_s / base.wall_s:.1f}x faster")
        if "pcapclass" in done and "reader" in done:
            share = done["reader"].wall_s / done["pcapclass"].wall_s
            print(f"reader+decode share of the end-to-end time: {share:.0%}")
    return 0 if all(r.ok for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
