"""Bidirectional connection table with Zeek conn.log semantics: originator, conn_state,
history, per-direction counters, timeouts. Consumes decode.PacketBatch.

INTERFACE (fixed; other modules depend on it):

    table = FlowTable(capture_name="x.pcap", service_ports=frozenset({("tcp", 12000), ...}))
    for batch in batches:
        table.add(batch)
    result = table.finish()           # FlowResult

FlowResult.flows: pandas DataFrame with the connection columns of schema.FLOWS
(uid, ts, last_ts, duration, proto, orig_h, orig_p, resp_h, resp_p, orig_evidence,
orig_mac, resp_mac, vlan, inner_vlan, orig_pkts, resp_pkts, orig_bytes, resp_bytes,
orig_ip_bytes, resp_ip_bytes, conn_state, history, service (None here), capture),
sorted by (ts, uid), plus internal columns (dropped on output):
    _orig_head  bytes | None   first payload bytes (up to HEAD_BYTES) sent by the originator
    _resp_head  bytes | None   first payload bytes sent by the responder
    _resp_bcast bool           responder address is broadcast or multicast
FlowResult.hosts: ip, mac, first_ts, last_ts, pkts, bytes (unicast addresses only)
FlowResult.arp:   ip, mac, ts  (ARP sender pairs)
FlowResult.dns:   ts, client, server, payload  (DNS responses: UDP from port 53)
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

HEAD_BYTES = 128  # payload bytes kept per direction for service recognition


@dataclass
class FlowResult:
    flows: pd.DataFrame
    hosts: pd.DataFrame
    arp: pd.DataFrame
    dns: pd.DataFrame
