"""Generate a deterministic benchmark capture (classic pcap, Ethernet) and cache it.

    .venv/bin/python benchmarks/gen_capture.py --packets 2000000 --connections 20000
    -> prints the path, e.g. benchmarks/out/bench_p2000000_c20000_s1.pcap

Traffic mix (fixed seed, so the same parameters always give the same bytes):
- 80 % TCP connections: handshake, request/response data (small requests, mostly
  full-size 1460-byte response segments, pure ACKs), FIN teardown; 20 % UDP
  request/response exchanges (DNS/NTP-sized datagrams);
- about 5 % of connections over IPv6, about 5 % VLAN-tagged (802.1Q);
- frame sizes 60..1514 bytes, bimodal (ACKs/requests near 60..250, responses 1514);
- connections start uniformly over CAPTURE_SPAN_S and interleave in time.
Packets are built from per-connection header templates patched with struct.pack_into,
so 2 M packets take well under a minute.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import dpkt
import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "out"
FORMAT_VERSION = 2  # bump when the generated traffic changes (invalidates the cache)
SEED = 1
CAPTURE_SPAN_S = 3600.0  # one hour of traffic
START_TS = 1_700_000_000.0  # 2023-11-14, an arbitrary fixed epoch
TCP_SHARE = 0.8
IPV6_SHARE = 0.05
VLAN_SHARE = 0.05
MSS = 1460
MIN_FRAME = 60  # Ethernet minimum without FCS
PAYLOAD = bytes(np.random.default_rng(SEED).integers(0, 256, 4096, dtype=np.uint8))


def capture_path(packets: int, connections: int) -> Path:
    return OUT_DIR / f"bench_p{packets}_c{connections}_s{SEED}_v{FORMAT_VERSION}.pcap"


def _mac(i: int) -> bytes:
    return bytes([0x02, 0x00]) + struct.pack(">I", i)


def _templates(
    c: int, v6: bool, vlan: bool, tcp: bool, rng: np.random.Generator
) -> tuple[bytearray, bytearray, int, int]:
    """Header templates (client->server, server->client) and the IP/L4 offsets."""
    cli, srv = 0x0A000000 + 2 + (c % 50_000), 0xC0A80A00 + 1 + (c % 200)
    sport, dport = 30_000 + (c % 30_000), (502, 443, 80, 12000, 40001, 53, 123)[c % 7]
    if not tcp:
        dport = (53, 123, 47808)[c % 3]
    cmac, smac = _mac(cli), _mac(srv)
    out = []
    for src, dst, smc, dmc, sp, dp in (
        (cli, srv, cmac, smac, sport, dport),
        (srv, cli, smac, cmac, dport, sport),
    ):
        et = 0x86DD if v6 else 0x0800
        eth = dmc + smc
        eth += struct.pack(">HHH", 0x8100, 100 + c % 50, et) if vlan else struct.pack(">H", et)
        if v6:
            ip = struct.pack(">IHBB", 0x60000000, 0, 6 if tcp else 17, 64)
            ip += struct.pack(">QQQQ", 0x20010DB8_00000000, src, 0x20010DB8_00000000, dst)
        else:
            ip = struct.pack(
                ">BBHHHBBHII", 0x45, 0, 0, 0, 0x4000, 64, 6 if tcp else 17, 0, src, dst
            )
        l4 = (
            struct.pack(">HHIIBBHHH", sp, dp, 0, 0, 0x50, 0, 65535, 0, 0)
            if tcp
            else struct.pack(">HHHH", sp, dp, 0, 0)
        )
        out.append(bytearray(eth + ip + l4))
    ip_off = 18 if vlan else 14
    l4_off = ip_off + (40 if v6 else 20)
    return out[0], out[1], ip_off, l4_off


def _frame(
    tpl: bytearray,
    ip_off: int,
    l4_off: int,
    v6: bool,
    tcp: bool,
    payload: int,
    flags: int = 0,
    seq: int = 0,
    ack: int = 0,
) -> bytes:
    hdr = bytearray(tpl)
    l4len = (20 if tcp else 8) + payload
    if v6:
        struct.pack_into(">H", hdr, ip_off + 4, l4len)
    else:
        struct.pack_into(">H", hdr, ip_off + 2, 20 + l4len)
    if tcp:
        struct.pack_into(">IIBB", hdr, l4_off + 4, seq, ack, 0x50, flags)
    else:
        struct.pack_into(">H", hdr, l4_off + 4, l4len)
    frame = bytes(hdr) + PAYLOAD[:payload]
    if len(frame) < MIN_FRAME:
        frame += bytes(MIN_FRAME - len(frame))
    return frame


def _connection_sizes(rng: np.random.Generator, packets: int, connections: int) -> np.ndarray:
    """Packets per connection: a heavy-tailed mix that sums to exactly `packets`."""
    w = rng.pareto(1.5, connections) + 1.0
    sizes = np.maximum(6, np.floor(w / w.sum() * packets)).astype(np.int64)
    diff = packets - int(sizes.sum())
    order = np.argsort(-sizes)
    i = 0
    while diff != 0:  # spread the rounding remainder over the biggest connections
        k = order[i % connections]
        step = 1 if diff > 0 else -1
        if sizes[k] + step >= 6:
            sizes[k] += step
            diff -= step
        i += 1
    return sizes


class _Conn:
    """One connection's templates and sequence numbers; frames are made in order, one at
    a time, so memory does not grow with the capture (10 M packets fit in a few MB)."""

    def __init__(
        self, rng: np.random.Generator, c: int, n: int, tcp: bool, v6: bool, vlan: bool
    ) -> None:
        self.up, self.down, self.ip_off, self.l4_off = _templates(c, v6, vlan, tcp, rng)
        self.n, self.tcp, self.v6 = n, tcp, v6
        self.cs, self.ss = int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
        self.req = int(rng.integers(40, 200))
        self.sizes = rng.integers(20, 300, n) if not tcp else rng.integers(200, MSS + 1, n)

    def frame(self, k: int) -> bytes:
        if not self.tcp:  # request / response datagrams
            tpl = self.up if k % 2 == 0 else self.down
            return _frame(tpl, self.ip_off, self.l4_off, self.v6, False, int(self.sizes[k]))
        m = 2**32
        up, down = self.up, self.down
        if k == 0:
            return self._tcp(up, 0, 0x02, self.cs, 0)
        if k == 1:
            return self._tcp(down, 0, 0x12, self.ss, (self.cs + 1) % m)
        if k == 2:
            self.cs, self.ss = (self.cs + 1) % m, (self.ss + 1) % m
            return self._tcp(up, 0, 0x10, self.cs, self.ss)
        last = self.n - 1
        if k == last - 2:
            return self._tcp(up, 0, 0x11, self.cs, self.ss)
        if k == last - 1:
            return self._tcp(down, 0, 0x11, self.ss, (self.cs + 1) % m)
        if k == last:
            return self._tcp(up, 0, 0x10, (self.cs + 1) % m, (self.ss + 1) % m)
        phase = (k - 3) % 4
        if phase == 0:  # request
            out = self._tcp(up, self.req, 0x18, self.cs, self.ss)
            self.cs = (self.cs + self.req) % m
            return out
        if phase in (1, 2):  # full-size response segments
            size = MSS if phase == 1 else int(self.sizes[k])
            out = self._tcp(down, size, 0x18, self.ss, self.cs)
            self.ss = (self.ss + size) % m
            return out
        return self._tcp(up, 0, 0x10, self.cs, self.ss)  # pure ACK

    def _tcp(self, tpl: bytearray, size: int, flags: int, seq: int, ack: int) -> bytes:
        return _frame(tpl, self.ip_off, self.l4_off, self.v6, True, size, flags, seq, ack)


def generate(packets: int, connections: int, path: Path) -> None:
    rng = np.random.default_rng(SEED)
    sizes = _connection_sizes(rng, packets, connections)
    start = rng.uniform(0, CAPTURE_SPAN_S, connections)
    # each connection's packets are spread over up to a few minutes after its start
    dur = rng.uniform(0.05, 300.0, connections)
    conn_of = np.repeat(np.arange(connections), sizes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    k = np.arange(packets) - np.repeat(first, sizes)
    ts = start[conn_of] + dur[conn_of] * k / np.repeat(sizes, sizes)
    order = np.argsort(ts, kind="stable")
    kind = rng.random((connections, 3))
    conns = [
        _Conn(
            rng,
            c,
            int(sizes[c]),
            kind[c, 0] < TCP_SHARE,
            kind[c, 1] < IPV6_SHARE,
            kind[c, 2] < VLAN_SHARE,
        )
        for c in range(connections)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    conn_sorted, k_sorted, ts_sorted = conn_of[order], k[order], ts[order] + START_TS
    with tmp.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB)
        for c, j, t in zip(
            conn_sorted.tolist(), k_sorted.tolist(), ts_sorted.tolist(), strict=True
        ):
            writer.writepkt(conns[c].frame(j), ts=t)
    tmp.replace(path)


def ensure_capture(packets: int, connections: int) -> Path:
    path = capture_path(packets, connections)
    if not path.exists():
        generate(packets, connections, path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument(
        "--connections",
        type=int,
        default=None,
        help="default: packets / 100 (2 M packets -> 20 k connections)",
    )
    args = ap.parse_args(argv)
    conns = args.connections or max(1, args.packets // 100)
    print(ensure_capture(args.packets, conns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
