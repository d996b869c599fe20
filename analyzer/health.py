"""Capture health: is this capture fit to judge a network by?

    counters = FrameCounters()            # the reader keeps one per capture; its record
                                          # walk counts each kept record (walk.count_frame)
    health = capture_health(stats, flows)      # after the connection table is built
    health.warnings()                          # one line each, for stderr and metadata
    health.as_dict()                           # JSON: metadata key pcapclass.health, --json

What it looks at, and the rule for each (thresholds are the module's constants; those
the record walk applies, GAP_S and DUP_*, are walk.py's, beside walk.count_frame):

- skipped records by reason (reader and decoder), split into *damage* (cut, impossible
  or empty records and headers) and *not IP* (other link types and EtherTypes, named
  where known: LLDP, STP/LLC, PROFINET, ...). More than half of all records skipped:
  a warning naming the largest reasons.
- snaplen-cut packets (``caplen < wirelen``): more than half cut, a warning (payload-based
  recognition then sees only the first bytes).
- timestamps out of order (earlier than the record before): any, a warning.
- time gaps longer than GAP_S (Zeek's TCP inactivity timeout: every connection across
  such a gap is split in two): any, a warning with the longest.
- duplicate frames: the same first DUP_HEAD_BYTES bytes and lengths as one of the
  DUP_WINDOW frames before, at most DUP_MAX_NS later (what a mirror of both ports of a
  link makes). More than DUP_WARN_SHARE of the frames: a warning.
- one-way mirror: among TCP connections that carry payload, more than half saw packets
  in one direction only (``orig_pkts == 0`` or ``resp_pkts == 0``: TCP cannot move data
  without acknowledgements coming back). With at least ONE_WAY_MIN_CONNS such
  connections: a loud warning, since direction verdicts cannot be trusted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .walk import (
    DUP_MAX_NS,
    DUP_WINDOW,
    GAP_S,
    HC_DUPLICATES,
    HC_GAPS,
    HC_LONGEST_GAP_NS,
    HC_OUT_OF_ORDER,
    HC_SLOTS,
    HC_SNAPLEN_CUT,
)

if TYPE_CHECKING:
    import pandas as pd

    from .reader import CaptureStats

# GAP_S, DUP_WINDOW, DUP_MAX_NS, DUP_HEAD_BYTES: defined in walk.py, beside the kernel
# that applies them (walk.count_frame); see there why
DUP_WARN_SHARE = 0.05
NEVER = np.iinfo(np.int64).max
MOSTLY = 0.5  # "most": more than half
ONE_WAY_MIN_CONNS = 10  # fewer TCP connections with data prove nothing either way

# reasons that are traffic pcapclass does not analyse, not damage
NOT_IP_PREFIXES = ("linktype:", "ethertype:", "loopback_af:")
NOT_IP_REASONS = frozenset({"llc", "unsupported_arp"})
ETHERTYPE_NAMES = {  # IEEE registry names of EtherTypes common on building networks
    0x88CC: "LLDP",
    0x8892: "PROFINET",
    0x88E1: "HomePlug AV",
    0x8899: "Realtek RRCP",
    0x88A4: "EtherCAT",
    0x88B8: "IEC 61850 GOOSE",
    0x88BA: "IEC 61850 SV",
    0x88F7: "PTP",
    0x888E: "EAPOL",
    0x8863: "PPPoE discovery",
    0x8864: "PPPoE session",
    0x8035: "RARP",
    0x9000: "Ethernet loopback",
    0x8847: "MPLS",
    0x88E5: "MACsec",
    0x893A: "IEEE 1905",
    0x22F0: "AVTP",
    0x8808: "Ethernet flow control",
    0x88E3: "MRP",
    0x8100: "802.1Q",
}
LLC_NAME = "LLC (STP, CDP, ...)"

class FrameCounters:
    """What the reader notices about the frames it passes on, over a whole capture: the
    state arrays the record walk updates (walk.count_frame, per kept record)."""

    def __init__(self) -> None:
        self.hc = np.zeros(HC_SLOTS, dtype=np.int64)
        self.ring_hash = np.zeros(DUP_WINDOW, dtype=np.uint64)
        self.ring_ts = np.full(DUP_WINDOW, NEVER, dtype=np.int64)  # no frame yet

    def into(self, stats: CaptureStats) -> None:
        hc = self.hc
        stats.snaplen_cut = int(hc[HC_SNAPLEN_CUT])
        stats.ts_out_of_order = int(hc[HC_OUT_OF_ORDER])
        stats.time_gaps = int(hc[HC_GAPS])
        stats.longest_gap_s = int(hc[HC_LONGEST_GAP_NS]) / 1e9
        stats.duplicate_frames = int(hc[HC_DUPLICATES])


# ----------------------------------------------------------------------------- verdict


def not_ip_name(reason: str) -> str | None:
    """The traffic a not-IP skip reason stands for (EtherType names where known), or
    None for a damage reason."""
    if reason == "llc":
        return LLC_NAME
    if reason.startswith("ethertype:"):
        try:
            value = int(reason.split(":", 1)[1], 16)
        except ValueError:
            return reason
        return ETHERTYPE_NAMES.get(value, reason)
    if reason in NOT_IP_REASONS or reason.startswith(NOT_IP_PREFIXES):
        return reason
    return None


@dataclass(frozen=True)
class Health:
    """The health of one capture; see the module docstring for the rules."""

    name: str
    packets: int
    skipped: dict[str, int]
    skipped_damaged: int
    not_ip: dict[str, int]  # traffic name -> packets
    truncated: bool
    snaplen_cut: int
    ts_out_of_order: int
    time_gaps: int
    longest_gap_s: float
    duplicate_frames: int
    tcp_with_data: int
    tcp_one_way: int
    reader_events: dict[str, int] = field(default_factory=dict)
    # connections closed early because the live table was full (a flood; flows.py's
    # bounded live table): still rows of flows.parquet, counted here
    connections_evicted: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def kept(self) -> int:
        return self.packets - self.skipped_total

    @property
    def one_way_mirror(self) -> bool:
        return is_one_way_mirror(self.tcp_with_data, self.tcp_one_way)

    def warnings(self) -> list[str]:
        out: list[str] = []
        n = self.name
        if self.one_way_mirror:
            out.append(
                f"{n}: ONE-WAY CAPTURE: {self.tcp_one_way:,} of {self.tcp_with_data:,} TCP "
                "connections with data show packets in one direction only; the mirror port "
                "copies one direction, so direction verdicts cannot be trusted"
            )
        if self.packets and self.skipped_total > MOSTLY * self.packets:
            top = sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            what = ", ".join(f"{k} {v:,}" for k, v in top)
            out.append(
                f"{n}: most packets ({self.skipped_total:,} of {self.packets:,}) were "
                f"skipped: {what}; the results cover only the rest"
            )
        if self.kept and self.snaplen_cut > MOSTLY * self.kept:
            out.append(
                f"{n}: most packets ({self.snaplen_cut:,} of {self.kept:,}) were cut by the "
                "snap length; payload-based recognition sees only their first bytes"
            )
        if self.kept and self.duplicate_frames > DUP_WARN_SHARE * self.kept:
            out.append(
                f"{n}: {self.duplicate_frames:,} duplicate frames (the same bytes again "
                f"within {DUP_MAX_NS // 1_000_000} ms): the mirror probably copies both ports "
                "of a link; packet and byte counts are inflated"
            )
        if self.ts_out_of_order:
            out.append(
                f"{n}: {self.ts_out_of_order:,} packets are dated earlier than the packet "
                "before them; durations and timeouts around them are unreliable"
            )
        if self.time_gaps:
            out.append(
                f"{n}: {self.time_gaps:,} time gaps longer than {GAP_S // 60} min (longest "
                f"{self.longest_gap_s:,.0f} s); connections across a gap are split in two"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped_total"] = self.skipped_total
        d["one_way_mirror"] = self.one_way_mirror
        d["warnings"] = self.warnings()
        return d


def is_one_way_mirror(tcp_with_data: int, tcp_one_way: int) -> bool:
    """The one-way mirror rule (module docstring), from tcp_direction_counts."""
    return tcp_with_data >= ONE_WAY_MIN_CONNS and tcp_one_way > MOSTLY * tcp_with_data


def tcp_direction_counts(flows: pd.DataFrame) -> tuple[int, int]:
    """(TCP connections carrying payload, those with packets in one direction only)."""
    if flows is None or len(flows) == 0 or "proto" not in flows:
        return 0, 0
    tcp = flows[flows["proto"] == "tcp"]
    data = tcp[(tcp["orig_bytes"] > 0) | (tcp["resp_bytes"] > 0)]
    one_way = (data["orig_pkts"] == 0) | (data["resp_pkts"] == 0)
    return int(len(data)), int(one_way.sum())


def capture_health(
    stats: CaptureStats, flows: pd.DataFrame | None, *, evicted: int = 0
) -> Health:
    """The health record of a capture from the reader's stats (skipped counts include the
    decoder's), the flows frame (flows.FLOW_COLUMNS; None: no connection evidence) and
    the connection table's early closes (FlowResult.evicted)."""
    skipped = {k: int(v) for k, v in sorted(stats.skipped.items()) if v}
    not_ip: dict[str, int] = {}
    damaged = 0
    for reason, count in skipped.items():
        name = not_ip_name(reason)
        if name is None:
            damaged += count
        else:
            not_ip[name] = not_ip.get(name, 0) + count
    with_data, one_way = tcp_direction_counts(flows) if flows is not None else (0, 0)
    return Health(
        name=stats.name,
        packets=stats.packets,
        skipped=skipped,
        skipped_damaged=damaged,
        not_ip=not_ip,
        truncated=stats.truncated,
        snaplen_cut=stats.snaplen_cut,
        ts_out_of_order=stats.ts_out_of_order,
        time_gaps=stats.time_gaps,
        longest_gap_s=stats.longest_gap_s,
        duplicate_frames=stats.duplicate_frames,
        tcp_with_data=with_data,
        tcp_one_way=one_way,
        reader_events={k: int(v) for k, v in sorted(stats.events.items()) if v},
        connections_evicted=int(evicted),
    )
