"""The ONLY definition of pcapclass's output tables: flows, findings, hosts.

Every column has a name, an Arrow type, a nullability, a one-line doc and, where the
values form a closed vocabulary, the allowed values. Writers, docs and tests derive
from these tuples; nothing else spells a column list. The contract
(`spec/contract.md`) defines the columns; columns may be added at the end, never
renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1"

TS = pa.timestamp("us", tz="UTC")

# --- closed vocabularies -------------------------------------------------------------

VERDICTS: tuple[str, ...] = (
    "expected",
    "rare",
    "obsolete",
    "reserved",
    "unexpected_port",
    "wrong_direction",
    "inbound_to_cmi",
    "unmonitored",
)
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
# Tie-break among verdicts of equal severity (contract, "Verdict precedence"): first wins.
VERDICT_PRECEDENCE: tuple[str, ...] = (
    "inbound_to_cmi",
    "wrong_direction",
    "reserved",
    "obsolete",
    "unexpected_port",
    "rare",
    "expected",
    "unmonitored",
)
# Default severity of each verdict (contract table). inbound_to_cmi is "high" from a
# local host and "critical" from outside the local networks; classify decides.
VERDICT_SEVERITY: dict[str, str] = {
    "expected": "info",
    "rare": "low",
    "obsolete": "medium",
    "reserved": "medium",
    "unexpected_port": "medium",
    "wrong_direction": "high",
    "inbound_to_cmi": "high",
    "unmonitored": "info",
}
SYSTEMS: tuple[str, ...] = ("gemos4", "sesam", "cmi", "common")
ROLES: tuple[str, ...] = (
    "gemos_server",
    "gemos_client",
    "sescomm_server",
    "sesam_client",
    "isenet",
    "sesam_db",
    "cmi",
    "comserver",
)
ROLE_SYSTEM: dict[str, str] = {
    "gemos_server": "gemos4",
    "gemos_client": "gemos4",
    "comserver": "gemos4",
    "sescomm_server": "sesam",
    "sesam_client": "sesam",
    "isenet": "sesam",
    "sesam_db": "sesam",
    "cmi": "cmi",
}
ROLE_SOURCES: tuple[str, ...] = ("site", "inferred")
ORIG_EVIDENCE: tuple[str, ...] = ("syn", "synack", "port", "first_packet")
# Zeek's conn_state values (base/protocols/conn/main.zeek).
CONN_STATES: tuple[str, ...] = (
    "S0",  # connection attempt seen, no reply
    "S1",  # established, not terminated
    "SF",  # normal establishment and termination
    "REJ",  # connection attempt rejected
    "S2",  # established, close attempt by originator seen (no reply from responder)
    "S3",  # established, close attempt by responder seen (no reply from originator)
    "RSTO",  # established, originator aborted (sent a RST)
    "RSTR",  # responder sent a RST
    "RSTOS0",  # originator sent a SYN followed by a RST, no SYN-ACK from the responder
    "RSTRH",  # responder sent a SYN ACK followed by a RST, no SYN from the originator
    "SH",  # originator sent a SYN followed by a FIN, no SYN ACK from the responder
    "SHR",  # responder sent a SYN ACK followed by a FIN, no SYN from the originator
    "OTH",  # no SYN seen, just midstream traffic (or non-TCP)
)


@dataclass(frozen=True)
class Column:
    """One output column: the whole truth about it."""

    name: str
    type: pa.DataType
    nullable: bool
    doc: str
    values: tuple[str, ...] | None = None

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


def _c(
    name: str, type_: pa.DataType, nullable: bool, doc: str, values: tuple[str, ...] | None = None
) -> Column:
    return Column(name, type_, nullable, doc, values)


STR = pa.string()
I32 = pa.int32()
I64 = pa.int64()
F64 = pa.float64()
LIST_STR = pa.list_(pa.string())
LIST_I32 = pa.list_(pa.int32())

FLOWS: tuple[Column, ...] = (
    _c("uid", STR, False, "stable id of the connection (same input -> same uid)"),
    _c("ts", TS, False, "time of the first packet"),
    _c("last_ts", TS, False, "time of the last packet"),
    _c("duration", F64, False, "last_ts - ts in seconds"),
    _c("proto", STR, False, "tcp, udp, icmp, icmp6, or the IP protocol number as text"),
    _c("orig_h", STR, False, "originator IP address"),
    _c("orig_p", I32, False, "originator port; ICMP: the originator's ICMP type"),
    _c("resp_h", STR, False, "responder IP address"),
    _c("resp_p", I32, False, "responder port; ICMP: the counterpart type (echo 8 -> 0)"),
    _c("orig_evidence", STR, False, "how the originator was decided", ORIG_EVIDENCE),
    _c("orig_mac", STR, True, "originator Ethernet address, null without a MAC layer"),
    _c("resp_mac", STR, True, "responder Ethernet address, null without a MAC layer"),
    _c("vlan", I32, True, "outermost VLAN id (802.1Q or 802.1ad tag)"),
    _c("inner_vlan", I32, True, "the second tag's id under QinQ"),
    _c("orig_pkts", I64, False, "packets from the originator"),
    _c("resp_pkts", I64, False, "packets from the responder"),
    _c("orig_bytes", I64, False, "transport payload bytes from the originator"),
    _c("resp_bytes", I64, False, "transport payload bytes from the responder"),
    _c("orig_ip_bytes", I64, False, "IP-level bytes from the originator"),
    _c("resp_ip_bytes", I64, False, "IP-level bytes from the responder"),
    _c("conn_state", STR, False, "Zeek's connection state", CONN_STATES),
    _c("history", STR, False, "Zeek's history letters (upper case = originator)"),
    _c("service", STR, True, "application protocol if recognised (dns, http, tls, ...)"),
    _c("system", STR, True, "system of the matched signature, or common", SYSTEMS),
    _c("signature_id", STR, True, "id of the matched signature entry or site:allow:<n>"),
    _c("verdict", STR, False, "classification of the connection", VERDICTS),
    _c("severity", STR, False, "severity of the verdict", SEVERITIES),
    _c("reason", STR, False, "one sentence explaining the verdict"),
    _c("capture", STR, False, "capture file name"),
)

FINDINGS: tuple[Column, ...] = (
    _c("first_ts", TS, False, "first packet of the first flow of the finding"),
    _c("last_ts", TS, False, "last packet of the last flow of the finding"),
    _c("flows", I64, False, "number of flows grouped into this finding"),
    _c("orig_pkts", I64, False, "packets from the originators, summed over the flows"),
    _c("resp_pkts", I64, False, "packets from the responders, summed over the flows"),
    _c("orig_bytes", I64, False, "payload bytes from the originators, summed"),
    _c("resp_bytes", I64, False, "payload bytes from the responders, summed"),
    _c("verdict", STR, False, "verdict shared by the grouped flows", VERDICTS),
    _c("severity", STR, False, "highest severity among the grouped flows", SEVERITIES),
    _c("system", STR, True, "system of the finding", SYSTEMS),
    _c("signature_id", STR, True, "matched signature id"),
    _c("orig_h", STR, False, "originator IP address"),
    _c("resp_h", STR, True, "responder IP address; null for a host sweep (see `hosts`)"),
    _c("proto", STR, False, "transport protocol"),
    _c("resp_p", I32, True, "responder port; null for a port scan (see `ports`)"),
    _c("message", STR, False, "one sentence a person understands"),
    _c("capture", STR, False, "capture file name"),
    _c("uids", LIST_STR, False, "uids of the grouped flows (join key to flows.uid)"),
    # scans (contract, Precise rules, "Scans"): one row instead of one per port or host
    _c("ports", LIST_I32, True, "port scan: the distinct responder ports, ascending; else null"),
    _c("n_ports", I64, True, "port scan: number of distinct responder ports; else null"),
    _c("hosts", LIST_STR, True, "host sweep: the distinct responder addresses; else null"),
    _c("n_hosts", I64, True, "host sweep: number of distinct responder addresses; else null"),
)

HOSTS: tuple[Column, ...] = (
    _c("ip", STR, False, "IP address"),
    _c("mac", STR, True, "Ethernet address seen as this IP's source (ARP or IP)"),
    _c("vendor", STR, True, "organisation of the MAC's OUI (IEEE registry)"),
    _c("role", STR, True, "primary role, null if unknown", ROLES),
    _c("roles", LIST_STR, False, "all roles of the host"),
    _c("role_source", STR, True, "where the role came from", ROLE_SOURCES),
    _c("role_evidence", STR, True, "why the role was inferred"),
    _c("name", STR, True, "name from the site file"),
    _c("local", pa.bool_(), False, "inside the site's local networks"),
    _c("first_ts", TS, False, "first packet from or to this address"),
    _c("last_ts", TS, False, "last packet from or to this address"),
    _c("pkts", I64, False, "packets from or to this address"),
    _c("bytes", I64, False, "IP-level bytes from or to this address"),
    _c("systems", LIST_STR, False, "systems this host takes part in"),
)

TABLES: dict[str, tuple[Column, ...]] = {"flows": FLOWS, "findings": FINDINGS, "hosts": HOSTS}


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a table (without file metadata)."""
    return pa.schema([c.field() for c in columns])


def column_names(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]


def empty_table(columns: tuple[Column, ...]) -> pa.Table:
    """A zero-row table with every column fully typed."""
    return arrow_schema(columns).empty_table()


def to_arrow(frame: Any, columns: tuple[Column, ...]) -> pa.Table:
    """Convert a pandas DataFrame holding (at least) the table's columns to a table with
    exactly the schema; extra columns (internal ones start with "_") are dropped.
    Raises ValueError when a column is missing, has the wrong type, breaks
    nullability or holds a value outside its vocabulary."""
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    schema = arrow_schema(columns)
    table = pa.Table.from_pandas(
        frame[[c.name for c in columns]], schema=schema, preserve_index=False, safe=True
    )
    check(table, columns)
    return table


def check(table: pa.Table, columns: tuple[Column, ...]) -> None:
    """Validate nullability and closed vocabularies of a table against its columns."""
    import pyarrow.compute as pc

    for col in columns:
        arr = table.column(col.name)
        if not col.nullable and arr.null_count:
            raise ValueError(f"column {col.name} holds {arr.null_count} nulls")
        if col.values is not None and len(arr):
            present = pc.drop_null(arr)
            bad = pc.filter(present, pc.invert(pc.is_in(present, pa.array(col.values))))
            if len(bad):
                raise ValueError(f"column {col.name} holds {bad[0].as_py()!r} outside {col.values}")


def markdown(columns: tuple[Column, ...]) -> str:
    """A Markdown table documenting the columns (docs/columns.md is generated from this)."""
    lines = ["| column | type | nullable | meaning |", "|---|---|---|---|"]
    for c in columns:
        doc = c.doc + (f" (one of: {', '.join(f'`{v}`' for v in c.values)})" if c.values else "")
        lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {doc} |")
    return "\n".join(lines)


def columns_doc() -> str:
    """The whole docs/columns.md text."""
    parts = [
        "# Output columns",
        "",
        "Generated from `analyzer/schema.py` (the only definition of the columns) by",
        "`python -m analyzer.schema > docs/columns.md`; a test keeps this file in step.",
        f"Schema version {SCHEMA_VERSION}.",
    ]
    for name, cols in TABLES.items():
        parts += ["", f"## {name}.parquet", "", markdown(cols)]
    return "\n".join(parts) + "\n\n" + batch_columns_doc()


# --- batch dataset (pcapclass batch) ---------------------------------------------------
# The Hive partition columns every table of a batch dataset gains (from the directory
# names DATASET/<table>/site=NAME/date=YYYY-MM-DD/, not stored inside the files).
PARTITIONS: tuple[Column, ...] = (
    _c("site", STR, False, "the site file's `site` name, `unknown` without one"),
    _c("date", STR, False, "UTC date (YYYY-MM-DD) of the capture's first packet"),
)
CAPTURE_STATUSES: tuple[str, ...] = ("done", "failed", "skipped", "in_progress")

# DATASET/manifest.sqlite, table `captures`: one row per file a batch run has seen.
MANIFEST: tuple[Column, ...] = (
    _c("path", STR, False, "absolute path of the file (the row's key)"),
    _c("size", I64, False, "bytes of the file as stored when last looked at"),
    _c("mtime", F64, False, "modification time of the file, seconds since the epoch"),
    _c("sha256", STR, True, "SHA-256 of the file's bytes, null until it was read"),
    _c("site", STR, True, "partition site name the capture went to"),
    _c("date", STR, True, "partition date the capture went to (UTC of its first packet)"),
    _c("site_file", STR, True, "the site file that applied, null without one"),
    _c("status", STR, False, "what the last run made of it", CAPTURE_STATUSES),
    _c("message", STR, True, "why it failed or was skipped; warnings of a done capture"),
    _c("packets", I64, True, "packet records read"),
    _c("flows", I64, True, "connections (rows of flows)"),
    _c("findings_info", I64, True, "findings rows of severity info"),
    _c("findings_low", I64, True, "findings rows of severity low"),
    _c("findings_medium", I64, True, "findings rows of severity medium"),
    _c("findings_high", I64, True, "findings rows of severity high"),
    _c("findings_critical", I64, True, "findings rows of severity critical"),
    _c("seconds", F64, True, "wall time of its analysis in the worker"),
    _c("tool_version", STR, True, "pcapclass version that analysed it"),
    _c("catalog_sha256", STR, True, "signature catalog hash it was analysed with"),
    _c("site_sha256", STR, True, "site file hash it was analysed with, empty without one"),
    _c("parts", STR, True, "JSON list of its partition files, relative to DATASET"),
    _c("updated", STR, False, "when the row was last written (ISO 8601 UTC)"),
)

# DATASET/new_pairs/site=NAME/date=YYYY-MM-DD/: the baseline, "new since last night".
NEW_PAIRS: tuple[Column, ...] = (
    _c("orig", STR, False, "the originator's site-file role if it has one, else its address"),
    _c("resp_h", STR, False, "responder IP address"),
    _c("proto", STR, False, "transport protocol"),
    _c("resp_p", I32, False, "responder port"),
    _c("verdict", STR, False, "verdict of the pair's flows on this date", VERDICTS),
    _c("severity", STR, False, "highest severity among those flows", SEVERITIES),
    _c("flows", I64, False, "flows of the pair on this date"),
    _c("first_ts", TS, False, "first packet of the pair's first flow on this date"),
    _c("last_ts", TS, False, "last packet of its last flow on this date"),
    _c("orig_hosts", LIST_STR, False, "originator addresses behind `orig` on this date"),
    _c("known_verdicts", LIST_STR, False, "verdicts the pair had on earlier dates (empty: new)"),
)


def batch_columns_doc() -> str:
    """The batch dataset's extra tables, for docs/columns.md."""
    parts = [
        "## Batch dataset (`pcapclass batch`)",
        "",
        "Every table of a batch dataset has the columns above plus the partition columns:",
        "",
        markdown(PARTITIONS),
        "",
        "### manifest.sqlite, table `captures`",
        "",
        markdown(MANIFEST),
        "",
        "### new_pairs/",
        "",
        markdown(NEW_PAIRS),
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(columns_doc(), end="")
