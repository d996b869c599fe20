"""Findings explained one by one, as text a person reads (notebook 01, a ticket):

    print(explain_findings(ds.findings, ds.flows, ds.hosts))

For each finding, most severe first (summary.finding_order): what was seen, why it is a
finding (the classifier's message), who the two hosts are (site name, role and where it
came from, vendor, local or not), and the connections behind it (joined on `uids`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..summary import finding_order
from .content import utc

MAX_FLOWS = 5  # connections listed per finding; the rest are counted
DEFAULT_LIMIT = 50


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return None
    return str(value)


def describe_host(ip: str, hosts: pd.DataFrame) -> str:
    """`ip (name): role cmi (site file), Technische Alternative GmbH, local`."""
    rows = hosts[hosts["ip"].astype(str) == ip] if len(hosts) else hosts
    if not len(rows):
        return f"{ip}: not in the hosts table (a broadcast or multicast address)"
    h = rows.iloc[0]
    name = _text(h.get("name"))
    role = _text(h.get("role"))
    parts = []
    if role:
        roles = [str(r) for r in (h.get("roles") if h.get("roles") is not None else [])]
        source = _text(h.get("role_source")) or "unknown source"
        evidence = _text(h.get("role_evidence"))
        how = "site file" if source == "site" else f"inferred: {evidence}" if evidence else source
        parts.append(f"role {', '.join(roles) or role} ({how})")
    else:
        parts.append("no known role")
    vendor = _text(h.get("vendor"))
    if vendor:
        parts.append(vendor)
    parts.append("local" if bool(h.get("local")) else "outside the local networks")
    return f"{ip}{f' ({name})' if name else ''}: {', '.join(parts)}"


def explain_finding(row: Mapping[str, Any], flows: pd.DataFrame, hosts: pd.DataFrame) -> str:
    """One finding as a few lines of text."""
    n = int(row["flows"])
    head = (
        f"{row['severity'].upper()} {row['verdict']}"
        f"{' (' + str(row['system']) + ')' if _text(row.get('system')) else ''}: "
        f"{row['orig_h']} -> {row['resp_h']} {row['proto']}/{row['resp_p']}, "
        f"{n} connection{'s' * (n != 1)}, {utc(row['first_ts'])} to {utc(row['last_ts'])}"
    )
    lines = [head, f"  why: {row['message']}"]
    if _text(row.get("signature_id")):
        lines.append(f"  signature: {row['signature_id']}")
    lines.append(f"  originator: {describe_host(str(row['orig_h']), hosts)}")
    lines.append(f"  responder:  {describe_host(str(row['resp_h']), hosts)}")
    raw_uids = row.get("uids")
    uids = [str(u) for u in raw_uids] if raw_uids is not None else []
    conns = flows[flows["uid"].isin(uids)].sort_values("ts") if len(flows) and uids else flows[:0]
    for c in conns.head(MAX_FLOWS).itertuples(index=False):
        lines.append(
            f"  {c.uid}  {utc(c.ts)}  {c.orig_h}:{c.orig_p} -> {c.resp_h}:{c.resp_p} "
            f"{c.conn_state} {c.history or '-'}  {c.orig_pkts}/{c.resp_pkts} packets"
        )
    if len(conns) > MAX_FLOWS:
        lines.append(f"  ... and {len(conns) - MAX_FLOWS} more connections")
    return "\n".join(lines)


def explain_findings(
    findings: pd.DataFrame, flows: pd.DataFrame, hosts: pd.DataFrame, *,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """Every finding (at most `limit`, most severe first), separated by blank lines."""
    if not len(findings):
        return "No findings."
    records = findings.to_dict("records")
    for r in records:
        for key in ("severity", "verdict"):
            r[key] = str(r[key])
    records.sort(key=finding_order)
    parts = [explain_finding(r, flows, hosts) for r in records[: max(limit, 0)]]
    if len(records) > limit:
        parts.append(f"... and {len(records) - limit} more findings")
    return "\n\n".join(parts)
