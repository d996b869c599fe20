"""Follow-on connections (TFTP transfers, MS-RPC after the endpoint mapper) are found by
joins in classify; the per-flow loops they replaced are kept here as the reference,
and both must give every flow the same decision over random small sites: few hosts,
ports 69/135/dynamic/other, random start times, signed or unsigned requests, endpoint
mapper answers missing, empty or naming ports."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd

from analyzer.classify import (
    DYNAMIC_PORTS,
    MSRPC_PORT,
    TFTP_PORT,
    Decision,
    Decisions,
    follow_ons,
    render,
)


def _follow_on(request: Decision, uid: str, what: str, orig_h: str, resp_h: str) -> Decision:
    prefix = f"{what} (uid {uid}); same verdict as the request: "
    return replace(request, reason=prefix + render(request, orig_h, resp_h))


def reference(flows: pd.DataFrame, decisions: Decisions, mapped: dict) -> Decisions:
    """classify.follow_ons as it was until 2026-12-04: a Python loop over the flows."""
    out = decisions.copy()
    proto = flows["proto"].to_numpy(dtype=object)
    resp_p = flows["resp_p"].to_numpy()
    orig_h = flows["orig_h"].to_numpy(dtype=object)
    resp_h = flows["resp_h"].to_numpy(dtype=object)
    uids = flows["uid"].to_numpy(dtype=object)
    orig_p = flows["orig_p"].to_numpy()
    ts = flows["ts"].to_numpy()
    udp = proto == "udp"
    requests: dict = {}
    for i in np.flatnonzero(udp & (resp_p == TFTP_PORT)):
        requests.setdefault((orig_h[i], resp_h[i], int(orig_p[i])), int(i))
    for i in np.flatnonzero(udp & (resp_p != TFTP_PORT)):
        req = requests.get((resp_h[i], orig_h[i], int(resp_p[i])))
        if req is None or ts[i] < ts[req]:
            continue
        what = f"TFTP transfer answering the request {orig_h[req]} -> {resp_h[req]}:{TFTP_PORT}"
        out[i] = _follow_on(out[req], uids[req], what, orig_h[req], resp_h[req])
    tcp = proto == "tcp"
    mapper_rows = [i for i in np.flatnonzero(tcp & (resp_p == MSRPC_PORT)) if out[i].signature_id]
    mappers: dict = {}
    named: dict = {}
    for i in mapper_rows:
        pair = (orig_h[i], resp_h[i])
        mappers.setdefault(pair, int(i))
        ports = mapped.get(int(i))
        if ports is not None:
            named.setdefault(pair, set()).update(ports)
    for i in np.flatnonzero(tcp & (resp_p != MSRPC_PORT)):
        pair = (orig_h[i], resp_h[i])
        req = mappers.get(pair)
        if req is None or out[i].signature_id is not None or out[i].fits or ts[i] < ts[req]:
            continue
        port = int(resp_p[i])
        if pair in named:
            if port not in named[pair]:
                continue
            what = (
                f"MS-RPC port {port} named by the endpoint mapper's answer "
                f"{orig_h[req]} -> {resp_h[req]}:{MSRPC_PORT}"
            )
        elif port in DYNAMIC_PORTS:
            what = (
                "best effort: MS-RPC dynamic port after the endpoint mapper "
                f"{orig_h[req]} -> {resp_h[req]}:{MSRPC_PORT}, whose answer was not captured"
            )
        else:
            continue
        out[i] = _follow_on(out[req], uids[req], what, orig_h[req], resp_h[req])
    return out


def _site(rng: random.Random) -> tuple[pd.DataFrame, Decisions, dict]:
    hosts = [f"10.0.0.{k}" for k in range(1, rng.randint(2, 4))]
    ports = [TFTP_PORT, MSRPC_PORT, MSRPC_PORT, 49152, 49152, 49700, 65535, 49151, 1024, 3000, 5000]
    n = rng.randint(1, 60)
    rows = []
    for k in range(n):
        proto = rng.choice(("tcp", "tcp", "udp", "icmp"))
        rows.append(
            {
                "uid": f"C{k:04d}",
                "ts": pd.Timestamp("2026-01-01") + pd.Timedelta(seconds=rng.randint(0, 20)),
                "proto": proto,
                "orig_h": rng.choice(hosts),
                "resp_h": rng.choice(hosts),
                "orig_p": rng.choice(ports),
                "resp_p": rng.choice(ports),
            }
        )
    flows = pd.DataFrame(rows)
    flows["proto"] = flows["proto"].astype("str")
    table = [
        Decision("expected", "info", "gemos", "gemos-135", "ORIG -> RESP: documented", True),
        Decision("unexpected_port", "warning", None, None, "ORIG -> RESP: not documented"),
        Decision("wrong_direction", "warning", "sesam", "sesam-x", "RESP opened to ORIG"),
        Decision("unexpected_port", "warning", None, None, "fits", True),
        Decision("unexpected_port", "warning", None, "", "an empty id: no request, no follow-on"),
    ]
    index = np.array([rng.choice((0, 0, 1, 1, 2, 3, 4)) for _ in range(n)], dtype=np.int64)
    mapped = {}
    for i in range(n):
        if rows[i]["resp_p"] == MSRPC_PORT and rng.random() < 0.6:
            mapped[i] = tuple(rng.sample([49152, 49700, 3000], rng.randint(0, 2)))
    return flows, Decisions(table, index), mapped


def test_joins_decide_every_flow_as_the_per_flow_loop():
    rng = random.Random(5)
    kinds: Counter[str] = Counter()
    for _ in range(400):
        flows, decisions, mapped = _site(rng)
        want = reference(flows, decisions, mapped)
        got = follow_ons(flows, decisions, mapped)
        assert [got[i] for i in range(len(flows))] == [want[i] for i in range(len(flows))]
        for i in range(len(flows)):
            if got[i] != decisions[i]:
                kinds[got[i].reason.split(" ", 2)[0]] += 1
    # every kind of follow-on was exercised: TFTP, named by the mapper, best effort
    assert min(kinds[k] for k in ("TFTP", "MS-RPC", "best")) >= 10, kinds
