"""Self-measurement of FlowTable.add on realistic batches (not a test).
2,000,000 packets over 20,000 connections (TCP 80%, UDP 15%, ICMP 5%), interleaved,
batches of 65536 packets.

    python benchmarks/bench_flows.py            # throughput, best of 3
    python benchmarks/bench_flows.py --syn-flood 5000000
        # the table stage under a flood: N SYNs to distinct ports (one source, one
        # target), time and peak RSS of add + finish's row building"""

import resource
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from analyzer.decode import PacketBatch  # noqa: E402
from analyzer.flows import FlowTable  # noqa: E402

N, CONNS, B = 2_000_000, 20_000, 65536
rng = np.random.default_rng(1)
conn = np.sort(rng.integers(0, CONNS, N))  # packet -> connection
rng.shuffle(conn)  # interleave
ts = np.sort(rng.integers(0, 600_000_000_000, N)) + 1_700_000_000_000_000_000
kind = rng.random(CONNS)
proto = np.where(kind < 0.8, 6, np.where(kind < 0.95, 17, 1)).astype(np.uint8)[conn]
cli = (0xFFFF_0A00_0000 + rng.integers(1, 2000, CONNS)).astype(np.uint64)[conn]
srv = (0xFFFF_0A01_0000 + rng.integers(1, 50, CONNS)).astype(np.uint64)[conn]
cport = rng.integers(32768, 60999, CONNS)[conn]
sport_srv = rng.choice([80, 443, 12000, 502, 40001, 53], CONNS)[conn]
to_srv = rng.random(N) < 0.55
flags = np.where(to_srv, 0x10, 0x18).astype(np.uint8)
flags[proto != 6] = 0
src = np.where(to_srv, cli, srv)
dst = np.where(to_srv, srv, cli)
sp = np.where(to_srv, cport, sport_srv)
dp = np.where(to_srv, sport_srv, cport)
icmp = proto == 1
sp = np.where(icmp, np.where(to_srv, 8, 0), sp)
dp = np.where(icmp, 0, dp)
plen = rng.integers(0, 1400, N).astype(np.uint32)
buf = np.zeros(2_000, np.uint8)


def batch(lo, hi):
    n = hi - lo
    return PacketBatch(
        index=np.arange(lo, hi, dtype=np.int64),
        ts_ns=ts[lo:hi],
        kind=np.ones(n, np.uint8),
        src_mac=np.full(n, 0x020000000001, np.uint64),
        dst_mac=np.full(n, 0x020000000002, np.uint64),
        has_mac=np.ones(n, bool),
        vlan=np.full(n, -1, np.int32),
        inner_vlan=np.full(n, -1, np.int32),
        ip_version=np.full(n, 4, np.uint8),
        src_hi=np.zeros(n, np.uint64),
        src_lo=src[lo:hi],
        dst_hi=np.zeros(n, np.uint64),
        dst_lo=dst[lo:hi],
        proto=proto[lo:hi],
        ip_len=(plen[lo:hi] + 40).astype(np.uint32),
        frag=np.zeros(n, np.uint8),
        ip_id=np.zeros(n, np.uint32),
        sport=sp[lo:hi].astype(np.uint16),
        dport=dp[lo:hi].astype(np.uint16),
        has_l4=np.ones(n, bool),
        tcp_flags=flags[lo:hi],
        seq=np.zeros(n, np.uint32),
        ack=np.zeros(n, np.uint32),
        payload_len=plen[lo:hi],
        payload_off=np.zeros(n, np.int64),
        caplen_payload=np.minimum(plen[lo:hi], 100).astype(np.uint32),
        buf=buf,
    )


def syn_flood(n: int) -> None:
    """n SYNs from 10.0.0.1 to 10.0.0.2, each to its own (port, source port) pair."""
    table = FlowTable(capture_name="flood.pcap")
    t0 = time.perf_counter()
    for lo in range(0, n, B):
        k = min(B, n - lo)
        idx = np.arange(lo, lo + k, dtype=np.int64)
        fb = PacketBatch(
            index=idx,
            ts_ns=1_700_000_000_000_000_000 + idx * 10_000,
            kind=np.ones(k, np.uint8),
            src_mac=np.full(k, 0x020000000001, np.uint64),
            dst_mac=np.full(k, 0x020000000002, np.uint64),
            has_mac=np.ones(k, bool),
            vlan=np.full(k, -1, np.int32),
            inner_vlan=np.full(k, -1, np.int32),
            ip_version=np.full(k, 4, np.uint8),
            src_hi=np.zeros(k, np.uint64),
            src_lo=np.full(k, 0xFFFF_0A00_0001, np.uint64),
            dst_hi=np.zeros(k, np.uint64),
            dst_lo=np.full(k, 0xFFFF_0A00_0002, np.uint64),
            proto=np.full(k, 6, np.uint8),
            ip_len=np.full(k, 40, np.uint32),
            frag=np.zeros(k, np.uint8),
            ip_id=np.zeros(k, np.uint32),
            sport=(1024 + idx // 65536).astype(np.uint16),
            dport=(idx % 65536).astype(np.uint16),
            has_l4=np.ones(k, bool),
            tcp_flags=np.full(k, 0x02, np.uint8),
            seq=idx.astype(np.uint32),
            ack=np.zeros(k, np.uint32),
            payload_len=np.zeros(k, np.uint32),
            payload_off=np.zeros(k, np.int64),
            caplen_payload=np.zeros(k, np.uint32),
            buf=np.zeros(1, np.uint8),
        )
        table.add(fb)
    t1 = time.perf_counter()
    rss_add = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = table.finish()
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"syn flood: {n} SYNs -> {len(res.flows)} connections, evicted {res.evicted}")
    print(
        f"add: {t1 - t0:.2f} s ({n / (t1 - t0) / 1e6:.2f} M packets/s), peak RSS {rss_add:.0f} MiB"
    )
    print(f"finish (frame of {len(res.flows)} rows): {t2 - t1:.2f} s, peak RSS {rss:.0f} MiB")


if "--syn-flood" in sys.argv:
    syn_flood(int(sys.argv[sys.argv.index("--syn-flood") + 1]))
    sys.exit(0)

batches = [batch(lo, min(lo + B, N)) for lo in range(0, N, B)]
best_add = best_fin = 1e9
for _ in range(3):
    table = FlowTable(capture_name="bench.pcap", service_ports=frozenset({("tcp", 12000)}))
    t0 = time.perf_counter()
    for b in batches:
        table.add(b)
    t1 = time.perf_counter()
    res = table.finish()
    t2 = time.perf_counter()
    best_add, best_fin = min(best_add, t1 - t0), min(best_fin, t2 - t1)
print(f"packets {N}, connections {len(res.flows)}, hosts {len(res.hosts)}")
print(f"add: {best_add:.3f} s = {N / best_add / 1e6:.2f} M packets/s; finish: {best_fin:.3f} s")
