"""Decode throughput in-process: the time spent in decode_batch alone, over the benchmark
capture (not a test: prints a figure for docs/performance.md).

    .venv/bin/python benchmarks/bench_decode.py                  # 2 M packets
    .venv/bin/python benchmarks/bench_decode.py --packets 10000000 --repeat 3

The capture is benchmarks/gen_capture.py's (generated once, then reused). The reader runs
as usual; only the decode_batch calls are timed (perf_counter around each), so the
figure is packets decoded per second of decode time. The first batch is decoded once
before timing, so loading (or compiling) the kernels is not part of the figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_capture import ensure_capture  # noqa: E402

from analyzer.decode import decode_batch  # noqa: E402
from analyzer.reader import Capture  # noqa: E402


def decode_seconds(capture: Path) -> tuple[int, int, float]:
    """(packets read, packets kept, seconds inside decode_batch)."""
    packets = kept = 0
    spent = 0.0
    skipped: Counter[str] = Counter()
    with Capture(capture) as cap:
        for raw in cap.batches():
            t0 = time.perf_counter()
            pb = decode_batch(raw, skipped)
            spent += time.perf_counter() - t0
            packets += raw.n
            kept += pb.n
    return packets, kept, spent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--connections", type=int, default=None, help="default: packets / 100")
    ap.add_argument("--repeat", type=int, default=2, help="runs; the best is reported")
    args = ap.parse_args(argv)
    capture = ensure_capture(args.packets, args.connections or max(1, args.packets // 100))
    with Capture(capture) as cap:  # warm-up: load or compile the kernels
        decode_batch(next(iter(cap.batches())), Counter())
    runs = [decode_seconds(capture) for _ in range(args.repeat)]
    packets, kept, best = min(runs, key=lambda r: r[2])
    times = ", ".join(f"{r[2]:.3f} s" for r in runs)
    print(f"capture: {capture.name} ({packets:,} packets, {kept:,} kept)")
    print(f"decode_batch: best {best:.3f} s of [{times}] = {packets / best / 1e6:.2f} M packets/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
