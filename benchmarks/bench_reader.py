"""The reader alone, in-process: records per second of `Capture.batches()` (record walk,
batch columns, frame counters, SHA-256 on the helper thread), no decoding.

    .venv/bin/python benchmarks/bench_reader.py                     # 2 M packets, best of 3
    .venv/bin/python benchmarks/bench_reader.py --capture FILE --repeat 5
    .venv/bin/python benchmarks/bench_reader.py --gzip              # the stream path
    .venv/bin/python benchmarks/bench_reader.py --hot               # walk kernel, cache-hot

Each run is a fresh Capture in this process after one warm-up run (so numba's compile
cache is loaded, and the file is in the page cache). Prints wall time, records/s and the
CPU time of the main thread and of the whole process (the hashing thread is the rest).
--hot times the record walk kernel alone (with its frame counters) over the capture's
first 4 MiB, copied into memory and walked 50 times in each of 11 blocks: its compute
cost per record without the misses of reading the file.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_capture import ensure_capture  # noqa: E402

from analyzer import health, walk  # noqa: E402
from analyzer.reader import BATCH_PACKETS, Capture  # noqa: E402

HOT_BYTES = 4 * 2**20
HOT_ROUNDS = 50
HOT_BLOCKS = 11


def walk_hot(path: Path) -> None:
    """ns per record of walk.walk_pcap over an in-memory copy of the first HOT_BYTES."""
    with path.open("rb") as fh:
        data = fh.read(24 + HOT_BYTES)
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        raise SystemExit("--hot needs a little-endian microsecond classic pcap")
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    columns = [np.empty(BATCH_PACKETS, dt) for dt in (np.int64, np.uint32, np.uint32)]
    columns += [np.empty(BATCH_PACKETS, dt) for dt in (np.int64, np.uint16, np.int64)]

    def once() -> int:
        st, cnt, _ifc = walk.new_state()
        fr = health.FrameCounters()
        linktype = int.from_bytes(data[20:24], "little") & 0xFFFF
        _status, _pos, n = walk.walk_pcap(
            buf, 24, buf.shape[0], False, 1000, linktype, st, cnt, *columns,
            fr.hc, fr.ring_hash, fr.ring_ts,
        )  # fmt: skip
        return int(n)

    n = once()
    blocks = []
    for _ in range(HOT_BLOCKS):
        t0 = time.thread_time()
        for _ in range(HOT_ROUNDS):
            once()
        blocks.append((time.thread_time() - t0) / (HOT_ROUNDS * n) * 1e9)
    blocks.sort()
    print(
        f"walk kernel, cache-hot: best {blocks[0]:.1f}, median {blocks[len(blocks) // 2]:.1f} "
        f"ns per record ({HOT_BLOCKS} blocks of {n:,} records x {HOT_ROUNDS})"
    )


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
    ap.add_argument("--hot", action="store_true", help="walk kernel alone, cache-hot")
    args = ap.parse_args(argv)
    path = args.capture or ensure_capture(args.packets, args.packets // 100)
    if args.hot:
        walk_hot(path)
        return 0
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
