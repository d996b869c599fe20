"""Where one pcapclass run spends its time and memory, stage by stage, in one process (not
a test: prints figures for docs/performance.md).

    .venv/bin/python benchmarks/bench_stages.py                      # 2 M packets
    .venv/bin/python benchmarks/bench_stages.py --packets 10000000
    .venv/bin/python benchmarks/bench_stages.py --read-only 3   # the kernels' split, 3 runs

The stages are the calls analyzer.pipeline.analyze makes, in its order, on the capture
benchmarks/gen_capture.py makes (generated once, then reused). Per stage: wall time, CPU
time of this process (all its threads) and of any helper processes, resident set after
the stage and the process's peak so far (getrusage). "load kernels" loads the compiled
kernels (numba's cache) on a few packets first; then the reading stage's main-thread CPU
is split into the record walk with its frame counters (the reader's main-thread work;
the walk counts frames as it goes, health.count_frame), decode_batch and FlowTable.add.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_capture import ensure_capture  # noqa: E402

from analyzer import schema  # noqa: E402
from analyzer.classify import classify  # noqa: E402
from analyzer.decode import decode_batch  # noqa: E402
from analyzer.flows import FlowTable  # noqa: E402
from analyzer.output import RunInfo, metadata, write_tables  # noqa: E402
from analyzer.reader import Capture  # noqa: E402
from analyzer.signatures import load_catalog  # noqa: E402

T_IMPORTED, CPU_IMPORTED = time.perf_counter(), time.process_time()


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Stages:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, float, float, float]] = []

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        t0, c0, k0 = time.perf_counter(), time.process_time(), child_cpu()
        out = fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        self.rows.append((name, wall, cpu, child_cpu() - k0, rss_mib(), peak_mib()))
        return out

    def print(self, packets: int) -> None:
        print(f"{'stage':22s} {'wall':>7s} {'CPU':>7s} {'helper':>7s} {'RSS':>8s} {'peak':>8s}")
        for name, wall, cpu, child, rss, peak in self.rows:
            print(
                f"{name:22s} {wall:6.2f}s {cpu:6.2f}s {child:6.2f}s {rss:5.0f} MiB {peak:5.0f} MiB"
            )
        total = sum(r[1] for r in self.rows)
        print(f"{'total':22s} {total:6.2f}s  ({packets / total / 1e6:.2f} M packets/s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--connections", type=int, default=None, help="default: packets / 100")
    ap.add_argument(
        "--read-only",
        type=int,
        default=0,
        metavar="N",
        help="only the reading stage, N times: the kernels' main-thread CPU, medians",
    )
    args = ap.parse_args(argv)
    capture = ensure_capture(args.packets, args.connections or max(1, args.packets // 100))
    stages = Stages()
    imported = ("imports", T_IMPORTED - T_START, CPU_IMPORTED, 0.0, rss_mib(), peak_mib())
    stages.rows.append(imported)
    catalog = stages.run("load catalog", load_catalog)

    def warm_up() -> None:
        """Load (or, after an install, compile) the kernels on a few packets, so that
        the reading stage below times the kernels, not their loading."""
        with Capture(capture, batch_packets=64) as cap:
            raw = next(iter(cap.batches()))
            FlowTable(capture_name="warm-up").add(decode_batch(raw, Counter()))

    stages.run("load kernels", warm_up)
    kernel_cpu = {"record walk + frame counters": 0.0, "decode": 0.0}
    kernel_cpu["connection table"] = 0.0

    def read() -> tuple[FlowTable, Any]:
        main0 = time.thread_time()
        with Capture(capture) as cap:
            table = FlowTable(
                capture_name=capture.name,
                service_ports=catalog.service_ports(),
                dns_names={name for sig in catalog.signatures for name in sig.remote_hosts},
            )
            for raw in cap.batches():
                t0 = time.thread_time()
                batch = decode_batch(raw, cap.stats.skipped)
                t1 = time.thread_time()
                table.add(batch)
                kernel_cpu["decode"] += t1 - t0
                kernel_cpu["connection table"] += time.thread_time() - t1
        main = time.thread_time() - main0
        # the rest of the main thread: the walk kernel (which also counts the frames,
        # health.count_frame) and the reader's Python around it
        kernel_cpu["record walk + frame counters"] = main - sum(kernel_cpu.values())
        return table, cap.stats

    if args.read_only:
        return read_only(args.read_only, warm_up, read, kernel_cpu)
    table, stats = stages.run("read + decode + flows", read)
    result = stages.run("finish (flows table)", table.finish)
    classified = stages.run("classify", partial(classify, result, catalog, None))
    del result
    tables = stages.run(
        "to Arrow",
        lambda: {
            "flows": schema.to_arrow(classified.flows, schema.FLOWS),
            "findings": schema.to_arrow(classified.findings, schema.FINDINGS),
            "hosts": schema.to_arrow(classified.hosts, schema.HOSTS),
        },
    )
    with tempfile.TemporaryDirectory(prefix="pcapclass-stages-") as tmp:
        info = RunInfo(stats, catalog.sha256, None)
        stages.run("write Parquet", lambda: write_tables(Path(tmp), tables, metadata(info)))
    print(f"capture: {capture} ({stats.packets:,} packets, {len(tables['flows']):,} flows)")
    stages.print(stats.packets)
    main_cpu = sum(kernel_cpu.values())
    print(
        f"read + decode + flows, main thread: {main_cpu:.2f} s CPU "
        f"({stats.packets / main_cpu / 1e6:.2f} M packets/s); the rest of that stage's "
        "CPU is the SHA-256 thread"
    )
    for name, cpu in kernel_cpu.items():
        print(f"  {name:28s} {cpu:6.2f}s CPU  ({stats.packets / cpu / 1e6:5.1f} M packets/s)")
    return 0


def read_only(
    runs: int,
    warm_up: Callable[[], None],
    read: Callable[[], tuple[FlowTable, Any]],
    kernel_cpu: dict[str, float],
) -> int:
    """The reading stage `runs` times in this process; medians and all values of the
    main thread's CPU per kernel."""
    warm_up()
    seen: dict[str, list[float]] = {name: [] for name in kernel_cpu}
    seen["main thread"] = []
    for _ in range(runs):
        for name in kernel_cpu:
            kernel_cpu[name] = 0.0
        _table, stats = read()
        for name, cpu in kernel_cpu.items():
            seen[name].append(cpu)
        seen["main thread"].append(sum(kernel_cpu.values()))
    print(f"reading stage, {runs} runs, {stats.packets:,} packets: main-thread CPU, median (all)")
    for name, values in seen.items():
        median = sorted(values)[len(values) // 2]
        every = " ".join(f"{v:.3f}" for v in values)
        print(f"  {name:28s} {median:6.3f}s  ({every})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
