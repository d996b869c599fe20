"""classify.prepare part by part, on the benchmark capture (not a test: prints figures for
docs/performance.md).

    .venv/bin/python benchmarks/bench_prepare.py                                   # 2 M / 20 k
    .venv/bin/python benchmarks/bench_prepare.py --packets 1000000 --connections 100000

Reads the capture once (benchmarks/gen_capture.py makes it), then runs prepare() on the
same FlowResult --rounds times after one warm-up, the parts (the functions prepare calls)
wrapped in process-CPU timers, with the collector thresholds of the pcapclass command
(cli.GC_THRESHOLDS; --default-gc for Python's). Per part the least CPU over the rounds;
"other" is what prepare spends outside the parts; per connection for prepare as a whole.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_capture import ensure_capture  # noqa: E402

from analyzer import classify  # noqa: E402
from analyzer.cli import GC_THRESHOLDS  # noqa: E402
from analyzer.decode import decode_batch  # noqa: E402
from analyzer.flows import FlowResult, FlowTable  # noqa: E402
from analyzer.reader import Capture  # noqa: E402
from analyzer.signatures import load_catalog  # noqa: E402

PARTS = (
    "dns_answers", "own_macs", "infer_roles", "_context", "recognise_column", "decide_all",
    "_mapper_answers", "follow_ons", "note_one_sided", "build_findings", "build_hosts",
)  # fmt: skip


def read(capture: Path, catalog: Any) -> FlowResult:
    with Capture(capture) as cap:
        table = FlowTable(
            capture_name=capture.name,
            service_ports=catalog.service_ports(),
            dns_names={name for sig in catalog.signatures for name in sig.remote_hosts},
        )
        for raw in cap.batches():
            table.add(decode_batch(raw, Counter()))
    return table.finish()


def timed(times: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            times[name].append(time.process_time() - t0)

    return wrapper


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--connections", type=int, default=None, help="default: packets / 100")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--default-gc", action="store_true", help="keep Python's collector thresholds")
    args = ap.parse_args(argv)
    if not args.default_gc:
        gc.set_threshold(*GC_THRESHOLDS)  # as the pcapclass command runs
    capture = ensure_capture(args.packets, args.connections or max(1, args.packets // 100))
    catalog = load_catalog()
    result = read(capture, catalog)
    times: dict[str, list[float]] = defaultdict(list)
    for name in PARTS:
        setattr(classify, name, timed(times, name, getattr(classify, name)))
    classify.prepare(result, catalog, None)  # warm-up: kernels loaded, caches filled
    times.clear()
    total = []
    for _ in range(args.rounds):
        t0 = time.process_time()
        classify.prepare(result, catalog, None)
        total.append(time.process_time() - t0)
    n = len(result.flows)
    print(f"capture: {capture} ({n:,} connections), CPU, least of {args.rounds} rounds")
    parts = {name: min(times[name]) for name in PARTS if times[name]}
    for name, cpu in parts.items():
        print(f"  {name:18s} {cpu:7.3f} s")
    print(f"  {'other':18s} {max(0.0, min(total) - sum(parts.values())):7.3f} s")
    print(f"prepare {min(total):.3f} s, {min(total) / max(n, 1) * 1e6:.1f} us per connection")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
