"""Seconds per plot of analyzer.plots on generated frames (not a test).

100,000 connections over 24 h between 400 hosts (60 of them with a role), ports and
signature ids drawn from the catalog, a fifth unexplained, verdicts/severities in
roughly the mix of a real site; the frames go through analyzer.dataset's dtypes (as
open_dataset returns them). Each plot is built, then rendered to PNG at the report's
DPI (analyzer.report.render.PNG_DPI); best of --repeat runs. Target: < 2 s per plot.

    python benchmarks/bench_plots.py                  # 100k connections, best of 3
    python benchmarks/bench_plots.py --flows 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analyzer import plots, schema  # noqa: E402
from analyzer.dataset import frame  # noqa: E402
from analyzer.signatures import load_catalog  # noqa: E402

PNG_DPI = 110  # analyzer/report/render.py


def generate(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    catalog = load_catalog()
    sigs = [s for s in catalog.signatures if s.ports]
    hosts_n = 400
    ips = np.array([f"10.{i // 250}.{i % 250}.{(i * 7) % 250 + 1}" for i in range(hosts_n)])
    roles = np.array([schema.ROLES[i % len(schema.ROLES)] if i < 60 else None
                      for i in range(hosts_n)], dtype=object)  # fmt: skip
    start = pd.Timestamp("2026-03-02T00:00:00Z").value // 1000
    ts = np.sort(start + rng.integers(0, 86_400_000_000, n))
    dur = rng.exponential(5_000_000, n).astype(np.int64)
    pick = rng.integers(0, len(sigs), n)
    explained = rng.random(n) > 0.2
    sig_id = np.array([sigs[k].id for k in pick], dtype=object)
    sig_id[~explained] = None
    proto = np.array([sigs[k].transport for k in pick], dtype=object)
    port = np.array([min(sigs[k].ports) for k in pick], dtype=np.int32)
    port[~explained] = rng.choice([443, 80, 8080, 3389, 445, 5000], (~explained).sum())
    system = np.array([sigs[k].system for k in pick], dtype=object)
    system[~explained & (rng.random(n) < 0.5)] = None
    verdict = rng.choice(schema.VERDICTS, n, p=[0.55, 0.02, 0.02, 0.01, 0.05, 0.02, 0.01, 0.32])
    severity = np.array([schema.VERDICT_SEVERITY[v] for v in verdict], dtype=object)
    orig = rng.integers(0, hosts_n, n)
    resp = (orig + 1 + rng.integers(0, hosts_n - 1, n)) % hosts_n
    pkts = rng.integers(1, 200, n)
    data = {
        "uid": [f"C{i:011d}" for i in range(n)],
        "ts": pd.to_datetime(ts, unit="us", utc=True),
        "last_ts": pd.to_datetime(ts + dur, unit="us", utc=True),
        "duration": dur / 1e6,
        "proto": proto,
        "orig_h": ips[orig],
        "orig_p": rng.integers(32768, 61000, n).astype(np.int32),
        "resp_h": ips[resp],
        "resp_p": port,
        "orig_evidence": "syn",
        "orig_mac": None,
        "resp_mac": None,
        "vlan": None,
        "inner_vlan": None,
        "orig_pkts": pkts,
        "resp_pkts": pkts,
        "orig_bytes": pkts * 60,
        "resp_bytes": pkts * 300,
        "orig_ip_bytes": pkts * 100,
        "resp_ip_bytes": pkts * 340,
        "conn_state": "SF",
        "history": "ShADadFf",
        "service": rng.choice(np.array(["http", "tls", "dns", "modbus", None], dtype=object), n),
        "system": system,
        "signature_id": sig_id,
        "verdict": verdict,
        "severity": severity,
        "reason": "generated",
        "capture": "bench.pcap",
    }
    data = {k: [v] * n if v is None or isinstance(v, str) else v for k, v in data.items()}
    flows_table = pa.Table.from_pydict(data, schema=schema.arrow_schema(schema.FLOWS))
    flows = frame(flows_table, schema.FLOWS)
    host_rows = {
        "ip": ips,
        "mac": [None] * hosts_n,
        "vendor": [None] * hosts_n,
        "role": roles,
        "roles": [[r] if r else [] for r in roles],
        "role_source": ["site" if r else None for r in roles],
        "role_evidence": [None] * hosts_n,
        "name": [f"host {i}" if i < 60 else None for i in range(hosts_n)],
        "local": [True] * hosts_n,
        "first_ts": pd.to_datetime([start] * hosts_n, unit="us", utc=True),
        "last_ts": pd.to_datetime([start + 86_400_000_000] * hosts_n, unit="us", utc=True),
        "pkts": [1000] * hosts_n,
        "bytes": [100000] * hosts_n,
        "systems": [[] for _ in range(hosts_n)],
    }
    hosts = frame(pa.Table.from_pydict(host_rows, schema=schema.arrow_schema(schema.HOSTS)),
                  schema.HOSTS)  # fmt: skip
    findings_n = n // 100
    f_idx = rng.integers(0, n, findings_n)
    findings = pd.DataFrame(
        {
            "first_ts": flows["ts"].to_numpy()[f_idx],
            "severity": flows["severity"].to_numpy()[f_idx],
        }
    )
    findings["first_ts"] = pd.to_datetime(findings["first_ts"], utc=True)
    findings["severity"] = findings["severity"].astype(flows["severity"].dtype)
    return flows, findings, hosts


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(seconds to build, seconds to build and render to PNG), best of `repeat`."""
    build = render = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fig = fn()
        t1 = time.perf_counter()
        fig.savefig(io.BytesIO(), format="png", dpi=PNG_DPI)  # type: ignore[attr-defined]
        t2 = time.perf_counter()
        build, render = min(build, t1 - t0), min(render, t2 - t0)
    return build, render


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    flows, findings, hosts = generate(args.flows)
    catalog = load_catalog()
    print(f"generated {len(flows):,} connections, {len(hosts)} hosts, {len(findings):,} findings "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    cases: dict[str, Callable[[], object]] = {
        "traffic_over_time(connections)": lambda: plots.traffic_over_time(flows),
        "traffic_over_time(service, bytes)": lambda: plots.traffic_over_time(
            flows, by="service", value="bytes"
        ),
        "communication_matrix": lambda: plots.communication_matrix(flows, hosts),
        "findings_over_time": lambda: plots.findings_over_time(findings, flows=flows),
        "top_talkers": lambda: plots.top_talkers(flows),
        "unexplained_ports": lambda: plots.unexplained_ports(flows),
        "signature_coverage": lambda: plots.signature_coverage(flows, catalog),
        "host_card": lambda: plots.host_card(hosts, flows, str(hosts["ip"].iloc[0])),
    }

    # the fixed cost of any figure, measured in the same run: an empty plot of the same
    # size to PNG (the ratio column stays comparable on a loaded machine)
    def empty() -> object:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(plots.WIDTH_IN, plots.HEIGHT_IN), layout="constrained")
        FigureCanvasAgg(fig)
        fig.add_subplot().set_title("empty")
        return fig

    base = best(empty, args.repeat)[1]
    print(f"{'plot':36s} {'build s':>8s} {'+png s':>8s} {'x empty':>8s}")
    print(f"{'(empty figure, same size)':36s} {'':8s} {base:8.3f} {1.0:8.1f}")
    worst = 0.0
    for name, fn in cases.items():
        build, render = best(fn, args.repeat)
        worst = max(worst, render)
        print(f"{name:36s} {build:8.3f} {render:8.3f} {render / base:8.1f}")
    t = time.perf_counter()
    table = plots.coverage_table(flows, catalog)
    took = time.perf_counter() - t
    print(f"{'coverage_table (DataFrame)':36s} {took:8.3f} {'':>8s}  {len(table)} rows")
    print(f"slowest plot incl. PNG: {worst:.3f} s (target < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
