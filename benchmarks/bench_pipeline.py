"""Throughput and peak memory of pcapclass beside the C flow meter argus and tshark, on the
same generated capture, in one run: several rounds, the contenders interleaved in each,
medians quoted as ratios. Not a test: prints figures for docs/performance.md.

    .venv/bin/python benchmarks/bench_pipeline.py --repeat 3       # what `make bench` runs
    .venv/bin/python benchmarks/bench_pipeline.py --packets 10000000 --only pcapclass,argus
    .venv/bin/python benchmarks/bench_pipeline.py --only breakdown  # kernels in-process

Each contender runs as its own subprocess (or a short sequence of them); wall time is
measured around it and its peak RSS is ru_maxrss from os.wait4 (the highest of the
steps, for a contender of several). Contenders:
  pcapclass  `.venv/bin/pcapclass FILE -o TMPDIR` end to end, interpreter start-up included
  demo       the same on sample_pcaps/mixed_site.pcapng (1,399 packets): the start-up cost
             and the memory baseline (imports, compiled kernels) of any run
  reader     analyzer.reader + analyzer.decode alone
  argus      `argus -r FILE -w TMP.argus`, then `ra -n -r TMP.argus` printing the flow
             records (Debian's argus-server and argus-client); the comparable C job:
             read, decode, a flow table, one record per flow (argus also writes a status
             record per flow every 5 s of capture time, its default)
  tshark     `tshark -n -r FILE -q -z conv,tcp -z conv,udp` (conversation statistics)
  dpkt       dpkt.pcap.Reader + dpkt.ethernet.Ethernet on every packet (a naive Python
             decoder; not in the default set: about 30 s per round)
  breakdown  in one process, after a warm-up: CPU time of the main thread in the record
             walk (reader batches, frame counters), decode_batch and FlowTable.add, and
             of the SHA-256 thread; the kernels' packets per second
A contender whose tool is not installed is skipped, and said so.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
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
DEMO_CAPTURE = ROOT / "sample_pcaps" / "mixed_site.pcapng"
DEFAULT_CONTENDERS = "pcapclass,argus,tshark,reader,demo,breakdown"

READER_SNIPPET = """
import sys
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
from collections import Counter
from analyzer.reader import Capture
from analyzer.decode import decode_batch
from analyzer.flows import FlowTable
from analyzer.signatures import load_catalog
catalog = load_catalog()
with Capture(sys.argv[1], batch_packets=64) as cap:  # warm-up: load (or compile) the kernels
    raw = next(iter(cap.batches()))
    FlowTable(capture_name="warm-up").add(decode_batch(raw, Counter()))
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0, main0 = time.perf_counter(), time.thread_time()
dec = add = 0.0
table = FlowTable(  # as pipeline.analyze makes it
    capture_name="bench",
    service_ports=catalog.service_ports(),
    dns_names={name for sig in catalog.signatures for name in sig.remote_hosts},
)
with Capture(sys.argv[1]) as cap:
    for raw in cap.batches():
        d0 = time.thread_time()
        pb = decode_batch(raw, cap.stats.skipped)
        d1 = time.thread_time()
        table.add(pb)
        dec += d1 - d0
        add += time.thread_time() - d1
wall, main = time.perf_counter() - t0, time.thread_time() - main0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
n = cap.stats.packets
walk = main - dec - add
print(f"in-process read + decode + flows: {wall:.2f} s wall ({n / wall / 1e6:.2f} M packets/s),"
      f" main thread {main:.2f} s CPU ({n / main / 1e6:.2f} M packets/s): walk + frame"
      f" counters {walk:.2f} s ({n / walk / 1e6:.1f} M/s), decode {dec:.2f} s"
      f" ({n / dec / 1e6:.1f} M/s), connection table {add:.2f} s ({n / add / 1e6:.1f} M/s);"
      f" SHA-256 thread {cpu - main:.2f} s CPU")
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
    # (pcapclass's findings table, ra's records) would block forever while we sit in wait4.
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


def run_steps(name: str, steps: list[list[str]], *, timeout_s: float) -> Run:
    """A contender of several commands run one after the other (argus, then ra): the
    wall times add up, the peak RSS is the highest step's; the first failure ends it."""
    wall = peak = 0.0
    for argv in steps:
        run = run_child(name, argv, timeout_s=timeout_s)
        wall += run.wall_s
        peak = max(peak, run.peak_rss_mib)
        if not run.ok:
            return Run(name, wall, peak, False, run.note)
    return Run(name, wall, peak, True)


@dataclass(frozen=True)
class Summary:
    name: str
    rounds: int
    median_s: float
    best_s: float
    peak_rss_mib: float  # highest over the rounds


def summarise(tries: list[Run]) -> Summary | None:
    """Median and best wall time of the runs that finished, the highest peak RSS of all."""
    done = [r.wall_s for r in tries if r.ok]
    if not done:
        return None
    peak = max(r.peak_rss_mib for r in tries)
    return Summary(tries[0].name, len(done), statistics.median(done), min(done), peak)


def contenders(capture: Path, outdir: Path) -> dict[str, list[list[str]] | str]:
    """name -> the commands one run of it takes, or why it is skipped."""
    cli = VENV_BIN / "pcapclass"
    tshark = shutil.which("tshark")
    argus = shutil.which("argus", path=os.environ.get("PATH", "") + ":/usr/sbin")
    ra = shutil.which("ra")
    argus_file = str(outdir) + ".argus"
    return {
        "pcapclass": [[str(cli), str(capture), "-o", str(outdir)]]
        if cli.exists()
        else "skipped: .venv/bin/pcapclass does not exist",
        "argus": [[argus, "-r", str(capture), "-w", argus_file], [ra, "-n", "-r", argus_file]]
        if argus and ra
        else "skipped: argus or ra is not installed (Debian: argus-server, argus-client)",
        "tshark": [[tshark, "-n", "-r", str(capture), "-q", "-z", "conv,tcp", "-z", "conv,udp"]]
        if tshark
        else "skipped: tshark is not installed",
        "reader": [[PYTHON, "-c", READER_SNIPPET, str(capture)]],
        "demo": [[str(cli), str(DEMO_CAPTURE), "-o", str(outdir) + "-demo"]]
        if cli.exists()
        else "skipped: .venv/bin/pcapclass does not exist",
        "dpkt": [[PYTHON, "-c", DPKT_SNIPPET, str(capture)]],
        "breakdown": [[PYTHON, "-c", BREAKDOWN_SNIPPET, str(capture)]],
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
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({model}), "
        f"Python {platform.python_version()}, {load}"
    )


def print_ratios(sums: dict[str, Summary], packets: int) -> None:
    """The figures issue 8 sets targets for, from the medians of this run."""
    pc = sums.get("pcapclass")
    if pc is None:
        return
    print(
        f"pcapclass end to end: {packets / pc.median_s / 1e6:.2f} M packets/s (median), "
        f"peak RSS {pc.peak_rss_mib:.0f} MiB"
    )
    if "argus" in sums:
        a = sums["argus"]
        print(
            f"pcapclass vs argus: {a.median_s / pc.median_s:.2f}x as fast "
            f"(argus median {a.median_s:.2f} s / pcapclass median {pc.median_s:.2f} s); "
            f"peak RSS {pc.peak_rss_mib:.0f} vs {a.peak_rss_mib:.0f} MiB"
        )
    if "tshark" in sums:
        t = sums["tshark"]
        print(
            f"tshark vs pcapclass: tshark takes {t.median_s / pc.median_s:.1f}x as long "
            f"({t.median_s:.2f} s / {pc.median_s:.2f} s); "
            f"peak RSS {t.peak_rss_mib:.0f} vs {pc.peak_rss_mib:.0f} MiB"
        )
    if "reader" in sums:
        share = sums["reader"].median_s / pc.median_s
        print(f"reader + decode (own process) share of the end-to-end time: {share:.0%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--connections", type=int, default=None, help="default: packets / 100")
    ap.add_argument(
        "--only",
        default=DEFAULT_CONTENDERS,
        help=f"comma-separated contenders (default {DEFAULT_CONTENDERS}; also: dpkt)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds; each runs every contender once, in turn (default 3): medians of "
        "interleaved runs are what a shared machine allows comparing",
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
    runs: dict[str, list[Run]] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="pcapclass-bench-") as tmp:
        for round_no in range(max(1, args.repeat)):
            table = contenders(capture, Path(tmp) / f"out{round_no}")
            for name in wanted:
                cmd = table.get(name, f"unknown contender (known: {', '.join(table)})")
                if isinstance(cmd, str):
                    if round_no == 0:
                        print(f"{name:10s} {cmd}")
                    continue
                if name == "breakdown":  # prints its own figures
                    done_run = subprocess.run(cmd[0], cwd=ROOT, capture_output=True, text=True)
                    lines = (done_run.stdout.strip() or done_run.stderr.strip()).splitlines()
                    print(f"{'breakdown':10s} {lines[-1] if lines else 'no output'}")
                    continue
                run = run_steps(name, cmd, timeout_s=args.timeout_s)
                runs.setdefault(name, []).append(run)
                rate = args.packets / run.wall_s / 1e6 if run.ok else 0.0
                speed = "  (1,399 packets) " if name == "demo" else f"{rate:6.2f} M packets/s"
                status = "" if run.ok else f"  FAILED ({run.note})"
                failed |= not run.ok
                print(
                    f"{name:10s} round {round_no + 1}: {run.wall_s:7.2f} s  {speed}  "
                    f"peak RSS {run.peak_rss_mib:7.1f} MiB{status}"
                )
            for path in Path(tmp).glob("*.argus"):  # 90 MB each: not kept between rounds
                path.unlink()
    sums: dict[str, Summary] = {}
    for name, tries in runs.items():
        summary = summarise(tries)
        if summary is None:
            continue
        sums[name] = summary
        print(
            f"{name:10s} median of {summary.rounds}: {summary.median_s:.2f} s "
            f"(best {summary.best_s:.2f} s), highest peak RSS {summary.peak_rss_mib:.1f} MiB"
        )
    print_ratios(sums, args.packets)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
