"""Write the finished tables as Zeek TSV logs: `conn.log` and `pcapclass_findings.log`.

    paths = write_zeek_logs(result, outdir, site=site)   # or a {"flows": ..., ...} mapping

The format is Zeek's ASCII writer in its default (non-JSON) mode, so zeek-cut, Zeek
log readers and SIEM parsers for Zeek TSV read the files as they read Zeek's own:

- a header of `#separator \\x09`, `#set_separator ,`, `#empty_field (empty)`,
  `#unset_field -`, `#path`, `#open`, `#fields`, `#types`, and a `#close` footer;
  open/close are the first and last packet of the connections (UTC,
  `%Y-%m-%d-%H-%M-%S`; Zeek writes its wall clock, which would make equal input
  give unequal files);
- `-` for an unset value, `(empty)` for an empty string or set, a value that *is*
  `-` or `(empty)` gets its first character escaped;
- times as epoch seconds with six decimals, intervals in seconds with six decimals,
  bools as T/F;
- control characters, backslash, the separator (and the set separator inside a set)
  escaped as `\\xHH`; valid UTF-8 passes through (`LogAscii::enable_utf_8 = T`,
  Zeek's default).

conn.log holds the conn.log fields pcapclass has, with Zeek's names and types
(`scripts/base/protocols/conn/main.zeek`, `Conn::Info`; `orig_l2_addr`/`resp_l2_addr`
from `policy/protocols/conn/mac-logging`, `vlan`/`inner_vlan` from
`policy/protocols/conn/vlan-logging`), then the classification as `pcapclass_*` fields.
pcapclass_findings.log uses notice.log's field names where they fit
(`base/frameworks/notice/main.zeek`, `Notice::Info`).

Files are written atomically (temp file + rename), like the Parquet outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError
from .output import open_temp, remove_stale_temps
from .site import Site, default_networks, is_local

SEPARATOR = "\t"  # Zeek LogAscii::separator
SET_SEPARATOR = ","  # LogAscii::set_separator
EMPTY_FIELD = "(empty)"  # LogAscii::empty_field
UNSET_FIELD = "-"  # LogAscii::unset_field
OPEN_FORMAT = "%Y-%m-%d-%H-%M-%S"  # Ascii::Timestamp's strftime format
CONN_LOG = "conn.log"
FINDINGS_LOG = "pcapclass_findings.log"

# Zeek's transport_proto enum has tcp, udp, icmp (ICMPv6 included) and unknown_transport.
ZEEK_PROTO: dict[str, str] = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmp6": "icmp"}
IP_PROTO: dict[str, int] = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}  # IANA numbers
# Where Zeek's analyzer names a service differently from pcapclass (Zeek's SSL analyzer
# logs TLS as "ssl"); every other name is the same in both.
ZEEK_SERVICE: dict[str, str] = {"tls": "ssl"}
NOTICE_ACTIONS: tuple[str, ...] = ("Notice::ACTION_LOG",)  # what a logged notice carries


class _HasTables(Protocol):
    @property
    def flows(self) -> pa.Table: ...
    @property
    def findings(self) -> pa.Table: ...


# --- escaping (Zeek's ODesc with escaping on, threading/formatters/Ascii.cc) ---------------

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_ESCAPE = str.maketrans({**_CONTROL, ord("\\"): "\\x5c", ord(SEPARATOR): "\\x09"})
_ESCAPE_IN_SET = str.maketrans(
    {**_CONTROL, ord("\\"): "\\x5c", ord(SEPARATOR): "\\x09", ord(SET_SEPARATOR): "\\x2c"}
)


def escape(value: str, *, in_set: bool = False) -> str:
    """One string value as Zeek writes it: empty -> (empty); a value equal to the unset or
    empty marker gets its first character hex-escaped; control characters, backslash and
    the separator (in a set also the set separator) become \\xHH."""
    if value == "":
        return EMPTY_FIELD
    if value in (UNSET_FIELD, EMPTY_FIELD):
        return f"\\x{ord(value[0]):02x}{value[1:]}"
    return value.translate(_ESCAPE_IN_SET if in_set else _ESCAPE)


def render_time(micros: int) -> str:
    """Epoch microseconds -> seconds with six decimals, exact (no float rounding)."""
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}.{fraction:06d}"


def render_interval(seconds: float) -> str:
    return f"{seconds:.6f}"


def render_bool(value: bool) -> str:
    return "T" if value else "F"


def render_set(values: Sequence[str]) -> str:
    if not values:
        return EMPTY_FIELD
    return SET_SEPARATOR.join(escape(v, in_set=True) for v in values)


# --- the two logs' fields, declared as data ------------------------------------------------

Cell = Callable[[dict[str, Any]], str | None]  # a row -> rendered cell, None = unset


@dataclass(frozen=True)
class ZeekField:
    """One log field: Zeek's name and type, and how a row of our table renders it."""

    name: str
    type: str
    cell: Cell


def _text(column: str, mapping: Mapping[str, str] | None = None) -> Cell:
    def cell(row: dict[str, Any]) -> str | None:
        value = row[column]
        if value is None:
            return None
        return escape(mapping.get(value, value) if mapping else str(value))

    return cell


def _number(column: str) -> Cell:
    def cell(row: dict[str, Any]) -> str | None:
        value = row[column]
        return None if value is None else str(int(value))

    return cell


def _time(column: str) -> Cell:
    def cell(row: dict[str, Any]) -> str | None:
        value = row[column]
        return None if value is None else render_time(int(value))

    return cell


def _list(column: str) -> Cell:
    def cell(row: dict[str, Any]) -> str | None:
        values = row[column]
        return None if values is None else render_set([str(v) for v in values])

    return cell


def _history(row: dict[str, Any]) -> str | None:
    # Zeek sets history only when it is not empty (set_conn: `if ( c$history != "" )`).
    value = row["history"]
    return escape(value) if value else None


def _proto(row: dict[str, Any]) -> str:
    return ZEEK_PROTO.get(row["proto"], "unknown_transport")


def _ip_proto(row: dict[str, Any]) -> str | None:
    proto = row["proto"]
    if proto in IP_PROTO:
        return str(IP_PROTO[proto])
    return proto if proto.isdigit() else None


def _local(column: str) -> Cell:
    def cell(row: dict[str, Any]) -> str | None:
        return render_bool(row[column])

    return cell


CONN_FIELDS: tuple[ZeekField, ...] = (
    ZeekField("ts", "time", _time("ts")),
    ZeekField("uid", "string", _text("uid")),
    ZeekField("id.orig_h", "addr", _text("orig_h")),
    ZeekField("id.orig_p", "port", _number("orig_p")),
    ZeekField("id.resp_h", "addr", _text("resp_h")),
    ZeekField("id.resp_p", "port", _number("resp_p")),
    ZeekField("proto", "enum", _proto),
    ZeekField("service", "string", _text("service", ZEEK_SERVICE)),
    ZeekField("duration", "interval", lambda r: render_interval(r["duration"])),
    ZeekField("orig_bytes", "count", _number("orig_bytes")),
    ZeekField("resp_bytes", "count", _number("resp_bytes")),
    ZeekField("conn_state", "string", _text("conn_state")),
    ZeekField("local_orig", "bool", _local("_local_orig")),
    ZeekField("local_resp", "bool", _local("_local_resp")),
    ZeekField("history", "string", _history),
    ZeekField("orig_pkts", "count", _number("orig_pkts")),
    ZeekField("orig_ip_bytes", "count", _number("orig_ip_bytes")),
    ZeekField("resp_pkts", "count", _number("resp_pkts")),
    ZeekField("resp_ip_bytes", "count", _number("resp_ip_bytes")),
    ZeekField("ip_proto", "count", _ip_proto),
    ZeekField("orig_l2_addr", "string", _text("orig_mac")),
    ZeekField("resp_l2_addr", "string", _text("resp_mac")),
    ZeekField("vlan", "int", _number("vlan")),
    ZeekField("inner_vlan", "int", _number("inner_vlan")),
    ZeekField("pcapclass_system", "string", _text("system")),
    ZeekField("pcapclass_signature_id", "string", _text("signature_id")),
    ZeekField("pcapclass_verdict", "string", _text("verdict")),
    ZeekField("pcapclass_severity", "string", _text("severity")),
    ZeekField("pcapclass_reason", "string", _text("reason")),
)


def _single_uid(row: dict[str, Any]) -> str | None:
    # notice.log's uid names one connection; a finding that groups several has none.
    uids = row["uids"] or []
    return escape(uids[0]) if len(uids) == 1 else None


def _note(row: dict[str, Any]) -> str:
    return escape(f"Pcapclass::{row['verdict']}")


FINDINGS_FIELDS: tuple[ZeekField, ...] = (
    ZeekField("ts", "time", _time("first_ts")),
    ZeekField("uid", "string", _single_uid),
    ZeekField("id.orig_h", "addr", _text("orig_h")),
    ZeekField("id.orig_p", "port", lambda r: None),  # grouped over the originator ports
    ZeekField("id.resp_h", "addr", _text("resp_h")),
    ZeekField("id.resp_p", "port", _number("resp_p")),
    ZeekField("proto", "enum", _proto),
    ZeekField("note", "enum", _note),
    ZeekField("msg", "string", _text("message")),
    ZeekField("src", "addr", _text("orig_h")),
    ZeekField("dst", "addr", _text("resp_h")),
    ZeekField("p", "port", _number("resp_p")),
    ZeekField("n", "count", _number("flows")),
    ZeekField("actions", "set[enum]", lambda r: render_set(NOTICE_ACTIONS)),
    ZeekField("pcapclass_last_ts", "time", _time("last_ts")),
    ZeekField("pcapclass_system", "string", _text("system")),
    ZeekField("pcapclass_signature_id", "string", _text("signature_id")),
    ZeekField("pcapclass_verdict", "string", _text("verdict")),
    ZeekField("pcapclass_severity", "string", _text("severity")),
    ZeekField("pcapclass_orig_pkts", "count", _number("orig_pkts")),
    ZeekField("pcapclass_resp_pkts", "count", _number("resp_pkts")),
    ZeekField("pcapclass_orig_bytes", "count", _number("orig_bytes")),
    ZeekField("pcapclass_resp_bytes", "count", _number("resp_bytes")),
    ZeekField("pcapclass_capture", "string", _text("capture")),
    ZeekField("pcapclass_uids", "vector[string]", lambda r: render_set(r["uids"] or [])),
    # a folded scan (contract, "Scans"): its ports / hosts; unset on other rows
    ZeekField("pcapclass_ports", "vector[count]", _list("ports")),
    ZeekField("pcapclass_n_ports", "count", _number("n_ports")),
    ZeekField("pcapclass_hosts", "vector[addr]", _list("hosts")),
    ZeekField("pcapclass_n_hosts", "count", _number("n_hosts")),
)


# --- rendering -------------------------------------------------------------------------------


def _rows(table: pa.Table, sort_keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows as dicts, timestamps as epoch microseconds, in a stable order."""
    if table.num_rows:
        table = table.sort_by([(k, "ascending") for k in sort_keys])
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.int64())
        columns[name] = column.to_pylist()
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def _span(table: pa.Table, first: str, last: str) -> tuple[datetime, datetime]:
    """#open / #close: first and last packet of the table's rows; now when it is empty
    (the time of writing, as Zeek's wall clock)."""
    if not table.num_rows:
        now = datetime.now(UTC)
        return now, now
    return pc.min(table.column(first)).as_py(), pc.max(table.column(last)).as_py()


def render_log(
    path: str,
    fields: Sequence[ZeekField],
    rows: Sequence[dict[str, Any]],
    opened: datetime,
    closed: datetime,
) -> str:
    """The whole text of one Zeek TSV log."""
    lines = [
        "#separator \\x09",
        f"#set_separator{SEPARATOR}{SET_SEPARATOR}",
        f"#empty_field{SEPARATOR}{EMPTY_FIELD}",
        f"#unset_field{SEPARATOR}{UNSET_FIELD}",
        f"#path{SEPARATOR}{path}",
        f"#open{SEPARATOR}{opened.astimezone(UTC).strftime(OPEN_FORMAT)}",
        f"#fields{SEPARATOR}" + SEPARATOR.join(f.name for f in fields),
        f"#types{SEPARATOR}" + SEPARATOR.join(f.type for f in fields),
    ]
    for row in rows:
        cells = [f.cell(row) for f in fields]
        line = SEPARATOR.join(UNSET_FIELD if c is None else c for c in cells)
        if line.startswith("#"):  # Ascii::DoWrite: a record never looks like a header
            line = "\\x23" + line[1:]
        lines.append(line)
    lines.append(f"#close{SEPARATOR}{closed.astimezone(UTC).strftime(OPEN_FORMAT)}")
    return "\n".join(lines) + "\n"


def _local_flags(flows: pa.Table, site: Site | None) -> tuple[list[bool], list[bool]]:
    """local_orig / local_resp as classify decides locality: the site's local networks
    (plus link-local), or the contract's default networks without a site."""
    if site is not None:
        local = site.is_local
    else:
        networks = default_networks()

        def local(ip: str) -> bool:
            return is_local(ip, networks)

    cache: dict[str, bool] = {}

    def flag(ip: str) -> bool:
        if ip not in cache:
            cache[ip] = local(ip)
        return cache[ip]

    orig = [flag(ip) for ip in flows.column("orig_h").to_pylist()]
    resp = [flag(ip) for ip in flows.column("resp_h").to_pylist()]
    return orig, resp


def conn_log(flows: pa.Table, *, site: Site | None = None) -> str:
    """The text of conn.log for a flows table (rows ordered by ts, then uid)."""
    orig, resp = _local_flags(flows, site)
    flows = flows.append_column("_local_orig", pa.array(orig, pa.bool_()))
    flows = flows.append_column("_local_resp", pa.array(resp, pa.bool_()))
    opened, closed = _span(flows, "ts", "last_ts")
    rows = _rows(flows, ("ts", "uid"))
    return render_log("conn", CONN_FIELDS, rows, opened, closed)


def findings_log(findings: pa.Table, *, span: tuple[datetime, datetime] | None = None) -> str:
    """The text of pcapclass_findings.log (rows ordered by first_ts, then the grouping).
    `span` gives #open/#close (write_zeek_logs passes the connections' span, so that both
    logs of one capture carry the same times); default: the findings' own span."""
    opened, closed = span if span is not None else _span(findings, "first_ts", "last_ts")
    keys = ("first_ts", "verdict", "orig_h", "resp_h", "proto", "resp_p", "signature_id")
    rows = _rows(findings, keys)
    return render_log("pcapclass_findings", FINDINGS_FIELDS, rows, opened, closed)


def log_texts(flows: pa.Table, findings: pa.Table, *, site: Site | None = None) -> dict[str, str]:
    """File name -> text of both logs of one capture (both with the connections' span as
    #open/#close); what write_zeek_logs writes and batch --zeek-logs partitions."""
    return {
        CONN_LOG: conn_log(flows, site=site),
        FINDINGS_LOG: findings_log(findings, span=_span(flows, "ts", "last_ts")),
    }


def write_zeek_logs(
    tables: _HasTables | Mapping[str, pa.Table], outdir: Path, *, site: Site | None = None
) -> dict[str, Path]:
    """Write OUTDIR/conn.log and OUTDIR/pcapclass_findings.log from a Result (or a mapping
    with "flows" and "findings" tables); return {"conn": path, "findings": path}. Pass the
    site the analysis used so that local_orig/local_resp follow its local networks."""
    if isinstance(tables, Mapping):
        flows, findings = tables["flows"], tables["findings"]
    else:
        flows, findings = tables.flows, tables.findings
    logs = log_texts(flows, findings, site=site)
    texts = {"conn": (CONN_LOG, logs[CONN_LOG]), "findings": (FINDINGS_LOG, logs[FINDINGS_LOG])}
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{outdir}: cannot create the output directory ({exc.strerror})") from exc
    remove_stale_temps(outdir, (CONN_LOG, FINDINGS_LOG))  # a killed run's temporaries
    written: dict[str, Path] = {}
    for key, (name, text) in texts.items():
        written[key] = write_text_atomic(outdir / name, text)
    return written


def write_text_atomic(final: Path, text: str) -> Path:
    """Write a text file through a temporary name and a rename (never half-written).
    The file gets 0666 minus the umask, as the Parquet outputs do (mkstemp's 0600 would
    survive the rename and lock out a notebook user of the same group)."""
    try:
        tmp, fd = open_temp(final)
    except OSError as exc:
        raise InputError(f"{final}: cannot write ({exc.strerror}); check the folder") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise InputError(f"{final}: cannot write ({exc.strerror}); check the folder") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return final
