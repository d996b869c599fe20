"""The reader alone, in-process: records per second of `Capture.batches()` (record walk,
batch columns, frame counters, SHA-256 on the helper thread), no decoding.

    .venv/bin/python benchmarks/bench_reader.py                     # 2 M packets, best of 3
    .venv/bin/python benchmarks/bench_reader.py --capture FILE --repeat 5
    .venv/bin/python benchmarks/bench_reader.py --gzip              # the stream path

Each run is a fresh Capture in this process after one warm-up run (so numba's compile
cache is loaded, and the file is in the page cache). Prints wall time, records/s and the
CPU time of the main thread and of the whole process (the hashing thread is the rest).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_capture import ensure_capture  # noqa: E402

from analyzer.reader import Capture  # noqa: E402


def read_once(path: Path) -> tuple[float, float, float, int]:
    t0, main0, cpu0 = time.perf_counter(), time.thread_time(), time.process_time()
    records = 0
    with Capture(path) as cap:
        for raw in cap.batches():
            records += raw.n
    wall = time.perf_counter() - t0
    return wall, time.thread_time() - main0, time.process_time() - cpu0, cap.stats.packets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--capture", type=Path, default=None, help="default: the 2 M benchmark")
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="read a gzip copy (stream path)")
    args = ap.parse_args(argv)
    path = args.capture or ensure_capture(args.packets, args.packets // 100)
    tmp = None
    if args.gzip:
        tmp = Path(tempfile.mkdtemp(prefix="bench-reader-"))
        gz = tmp / (path.name + ".gz")
        with path.open("rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 2**22)
        path = gz
    try:
        read_once(path)  # warm-up: compile cache, page cache
        runs = [read_once(path) for _ in range(args.repeat)]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)
    wall, main_cpu, cpu, packets = min(runs)
    print(
        f"reader alone on {path.name} ({packets:,} records): best of {args.repeat} "
        f"{wall:.3f} s wall, {packets / wall / 1e6:.2f} M records/s; CPU main thread "
        f"{main_cpu:.2f} s, whole process {cpu:.2f} s "
        f"(all walls: {', '.join(f'{r[0]:.3f}' for r in runs)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
