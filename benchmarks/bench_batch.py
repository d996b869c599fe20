"""pcapclass batch figures: wall time and packets/s with --workers 1, --workers 2 and a
Dask LocalCluster of 2 workers (--scheduler); peak RSS per worker process; and the
resume overhead of a run over a dataset whose captures are all done already.

    .venv/bin/python benchmarks/bench_batch.py --captures 20 --packets 200000

Captures: one benchmarks/gen_capture.py capture, copied --captures times with the first
record's timestamp changed so each copy has its own content (own SHA-256, own part
file). Each contender is its own `pcapclass batch` process on a fresh dataset;
--workers 1 and --workers 2 run interleaved, --rounds times, and the medians and the
per-round ratios are printed (the machine's load hits both alike).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gen_capture  # noqa: E402

PCAPCLASS = [sys.executable, "-m", "analyzer.cli", "batch"]


def make_inputs(directory: Path, captures: int, packets: int, connections: int) -> int:
    src = gen_capture.capture_path(packets, connections)
    if not src.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_capture.py"),
                        "--packets", str(packets), "--connections", str(connections)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(captures):
        dst = directory / f"capture.pcap{i}"
        shutil.copy(src, dst)
        with dst.open("r+b") as fh:  # first record's microseconds: distinct content
            fh.seek(28)
            usec = struct.unpack("<I", fh.read(4))[0]
            fh.seek(28)
            fh.write(struct.pack("<I", (usec + i) % 1_000_000))
    return src.stat().st_size * captures


def timed(args: list[str]) -> tuple[float, float, float, float]:
    """Wall seconds, peak RSS of the driver and of any one worker (MiB), and the CPU
    seconds (user + system) of the driver and all its descendants, sampled every 0.1 s
    (the last 0.1 s of a short-lived process is missed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[int, float] = {}
    cpu: dict[int, float] = {}
    me = psutil.Process()  # its children: the batch driver, its workers, a LocalCluster's

    def sample() -> None:
        while proc.poll() is None:
            for p in me.children(recursive=True):
                try:
                    rss = p.memory_info().rss / 2**20
                    times = p.cpu_times()
                except psutil.Error:
                    continue
                peaks[p.pid] = max(peaks.get(p.pid, 0.0), rss)
                cpu[p.pid] = times.user + times.system
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    proc.wait()
    wall = time.perf_counter() - start
    thread.join()
    workers = [v for k, v in peaks.items() if k != proc.pid]
    return wall, peaks.get(proc.pid, 0.0), max(workers, default=0.0), sum(cpu.values())


def resume_overhead(tmp: Path, captures: int) -> float:
    """A dataset whose manifest says `done` for `captures` small files: one more run."""
    from analyzer.batch import manifest
    from analyzer.signatures import load_catalog

    inp, out = tmp / "resume-in", tmp / "resume-ds"
    inp.mkdir()
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    sha = load_catalog().sha256
    rows = []
    for i in range(captures):
        path = inp / f"c{i:05d}.pcap"
        path.write_bytes(header + struct.pack("<IIII", i, 0, 0, 0))
        st = path.stat()
        rows.append({**manifest.empty_row(str(path), st.st_size, st.st_mtime), "status": "done",
                     "catalog_sha256": sha, "site_sha256": "", "sha256": f"{i:064x}"})  # fmt: skip
    with manifest.locked(out) as man:
        man.put(rows)
    wall, _, _, _ = timed([*PCAPCLASS, str(inp), "--out", str(out), "--settle", "0"])
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captures", type=int, default=20)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=2_000)
    ap.add_argument("--resume-captures", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of 1 and 2")
    ap.add_argument("--only", default="workers1,workers2,cluster,resume")
    opts = ap.parse_args()
    only = set(opts.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        total = make_inputs(tmp / "in", opts.captures, opts.packets, opts.connections)
        packets = opts.captures * opts.packets
        print(f"{opts.captures} captures x {opts.packets:,} packets, {total / 2**20:,.0f} MiB")
        print(f"load average before: {psutil.getloadavg()[0]:.2f} on {psutil.cpu_count()} CPUs")
        results: dict[str, list[tuple[float, float, float, float]]] = {}
        base = [*PCAPCLASS, str(tmp / "in"), "--settle", "0"]
        contenders = [(f"--workers {n}", ["--workers", str(n)]) for n in (1, 2)
                      if f"workers{n}" in only]  # fmt: skip
        for r in range(opts.rounds):  # interleaved: the machine's load hits both alike
            for name, extra in contenders:
                out = tmp / f"ds-{r}-{name[-1]}"
                results.setdefault(name, []).append(timed([*base, "--out", str(out), *extra]))
                shutil.rmtree(out, ignore_errors=True)
        if "cluster" in only:
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                              host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
                address = ["--scheduler", cluster.scheduler_address]
                results["LocalCluster(2) --scheduler"] = [
                    timed([*base, "--out", str(tmp / "ds3"), *address])
                ]
        print(f"median of {opts.rounds} interleaved rounds (cluster: one run)")
        print("| run | wall | packets/s | CPU, all processes | driver peak RSS | worker peak RSS |")
        print("|---|---|---|---|---|---|")
        for name, runs in results.items():
            wall, drv, wrk, cpu = (statistics.median(col) for col in zip(*runs, strict=True))
            print(f"| {name} | {wall:.2f} s | {packets / wall / 1e6:.2f} M | {cpu:.1f} s "
                  f"| {drv:.0f} MiB | {wrk:.0f} MiB |")  # fmt: skip
        if "--workers 1" in results and "--workers 2" in results:
            ratios = [a[0] / b[0] for a, b in zip(results["--workers 1"], results["--workers 2"],
                                                  strict=True)]  # fmt: skip
            print("speed-up --workers 2 / --workers 1 per round: "
                  + ", ".join(f"{x:.2f}x" for x in ratios)
                  + f"; median {statistics.median(ratios):.2f}x")  # fmt: skip
        if "resume" in only:
            print(f"resume over {opts.resume_captures} done captures: "
                  f"{resume_overhead(tmp, opts.resume_captures):.2f} s")  # fmt: skip
        print(f"load average after: {psutil.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
