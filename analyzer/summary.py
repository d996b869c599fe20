"""Summaries of finished results: the terminal summary, the --json object, and the exit
code they imply. Works on pipeline.Result tables only; no analysis happens here.

Exit codes of a run over one or more captures (docs/contract.md, "Several captures"):

    130  the run was interrupted (SIGINT/SIGTERM): wins over everything below
      2  usage error, or no capture at all could be read (3 if that was a bug)
      1  at least one capture failed while others were analysed, or a finding at or
         above --fail-on
      0  otherwise

So a capture that fails never hides a finding of another, and a finding never hides a
failure: both are 1, and the summary and --json say which (`errors`, `failed`).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, schema

if TYPE_CHECKING:  # the CLI imports this module for its defaults before any analysis
    from .pipeline import Result

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C'd command
DEFAULT_FAIL_ON = "high"  # contract: "--fail-on (default high)"
DEFAULT_LIMIT = 20  # findings rows in the terminal summary: about a screenful

# Names of the non-IP frames the decoder counts as `ethertype:0x....` (IEEE registry).
ETHERTYPE_NAMES = {
    0x0842: "Wake-on-LAN",
    0x22F0: "AVTP",
    0x6002: "DEC MOP",
    0x8035: "RARP",
    0x809B: "AppleTalk",
    0x80F3: "AARP",
    0x8137: "IPX",
    0x8808: "Ethernet flow control",
    0x8809: "LACP/slow protocols",
    0x8847: "MPLS",
    0x8848: "MPLS multicast",
    0x8863: "PPPoE discovery",
    0x8864: "PPPoE session",
    0x886D: "Intel ANS",
    0x887B: "HomePlug",
    0x888E: "EAPOL (802.1X)",
    0x8892: "PROFINET",
    0x889A: "HyperSCSI",
    0x88A2: "ATA over Ethernet",
    0x88A4: "EtherCAT",
    0x88B5: "local experimental",
    0x88B8: "GOOSE",
    0x88BA: "IEC 61850 SV",
    0x88CC: "LLDP",
    0x88CD: "SERCOS III",
    0x88E1: "HomePlug AV",
    0x88E3: "MRP",
    0x88E5: "MACsec",
    0x88F7: "PTP",
    0x88FB: "PRP",
    0x8902: "CFM",
    0x8906: "FCoE",
    0x8914: "FIP",
    0x892F: "HSR",
    0x893A: "IEEE 1905",
    0x9000: "loopback (ECTP)",
}
# Skip reasons that are frames of other protocols, not damage (analyzer/decode.py keys).
_NOT_IP_PREFIXES = ("ethertype:", "linktype:", "loopback_af:")
_NOT_IP_KEYS = {"llc": "STP/LLC (802.3)", "unsupported_arp": "non-IPv4 ARP"}


@dataclass(frozen=True)
class Failure:
    """A capture that could not be analysed: the path as typed and the one-line error."""

    path: str
    message: str
    exit_code: int  # 2 bad input, 3 internal error


def exit_code(results: Sequence[Result], fail_on: str) -> int:
    """0 when no finding reaches `fail_on`, else 1 (contract "Exit codes")."""
    threshold = schema.SEVERITY_RANK[fail_on]
    for r in results:
        for sev in r.findings.column("severity").to_pylist():
            if schema.SEVERITY_RANK[sev] >= threshold:
                return EXIT_FINDINGS
    return EXIT_OK


def run_exit_code(
    results: Sequence[Result],
    failures: Sequence[Failure],
    fail_on: str,
    *,
    interrupted: bool = False,
) -> int:
    """The exit code of a run over several captures (the rule in the module docstring)."""
    if interrupted or any(getattr(r, "interrupted", False) for r in results):
        return EXIT_INTERRUPTED
    if failures and not results:
        return max(f.exit_code for f in failures)
    if failures:
        return EXIT_FINDINGS
    return exit_code(results, fail_on)


def printable(text: str) -> str:
    """`text` with control characters escaped, so a crafted file name cannot move the
    cursor or fake lines on a terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def skipped_groups(skipped: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """Skipped packets split into (frames that are not IP, by protocol name;
    damaged packets, by reason), each largest first."""
    not_ip: Counter[str] = Counter()
    damaged: Counter[str] = Counter()
    for key, n in skipped.items():
        if key in _NOT_IP_KEYS:
            not_ip[_NOT_IP_KEYS[key]] += n
        elif key.startswith("ethertype:"):
            try:
                value = int(key.split(":", 1)[1], 16)
            except ValueError:
                value = -1
            not_ip[ETHERTYPE_NAMES.get(value, f"EtherType {key.split(':', 1)[1]}")] += n
        elif key.startswith("linktype:"):
            not_ip[f"link type {key.split(':', 1)[1]}"] += n
        elif key.startswith(_NOT_IP_PREFIXES):
            not_ip[f"loopback family {key.split(':', 1)[1]}"] += n
        else:
            damaged[key] += n
    order = lambda c: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    return order(not_ip), order(damaged)


def finding_order(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key of a findings row: most severe first, then most flows, then by hosts and
    port (the terminal summary and the HTML report list findings in this order)."""
    return (
        -schema.SEVERITY_RANK[r["severity"]],
        -(r["flows"] or 0),
        r["verdict"],
        r["orig_h"] or "",
        r["resp_h"] or "",
        r["proto"] or "",
        r["resp_p"] if r["resp_p"] is not None else -1,
    )


def sorted_findings(result: Result, limit: int | None = None) -> list[dict[str, Any]]:
    """Findings rows, most severe first, then most flows, then by hosts and port
    (finding_order); with `limit`, only the first `limit` of them. Arrow sorts the key
    columns (stable, as list.sort) and only the rows returned become Python dicts: a
    scan's findings carry long uid lists that the summary never shows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    findings = result.findings
    n = findings.num_rows if limit is None else min(max(limit, 0), findings.num_rows)
    if n == 0:
        return []

    def text(name: str) -> pa.Array:
        return pc.fill_null(pc.cast(findings[name], pa.string()), "")

    keys = pa.table(
        {
            "severity": pc.index_in(text("severity"), value_set=pa.array(schema.SEVERITIES)),
            "flows": pc.fill_null(findings["flows"], 0),
            "verdict": text("verdict"),
            "orig_h": text("orig_h"),
            "resp_h": text("resp_h"),
            "proto": text("proto"),
            "resp_p": pc.fill_null(findings["resp_p"], -1),
        }
    )
    descending = {"severity", "flows"}
    order = pc.sort_indices(
        keys, [(k, "descending" if k in descending else "ascending") for k in keys.column_names]
    )
    return findings.take(order[:n]).to_pylist()


def severity_counts(results: Sequence[Result]) -> dict[str, int]:
    """Findings rows per severity, most severe first, zero counts left out."""
    counts: Counter[str] = Counter()
    for r in results:
        counts.update(r.findings.column("severity").to_pylist())
    return {s: counts[s] for s in reversed(schema.SEVERITIES) if counts[s]}


def finding_rows(result: Result) -> list[dict[str, Any]]:
    """The findings table as JSON-ready dicts (timestamps as ISO 8601 UTC)."""
    rows = result.findings.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dt.datetime):
                row[key] = value.isoformat().replace("+00:00", "Z")
    return rows


def capture_name(result: Result) -> str:
    """The Parquet `capture` column's value: the file name (`<stdin>` for -)."""
    return Path(result.capture.name).name


def as_json(
    results: Sequence[Result],
    code: int,
    errors: Sequence[str | Failure] = (),
    *,
    paths: Sequence[str] | None = None,
    not_read: Sequence[str] = (),
) -> dict[str, Any]:
    """The contract's --json object over one or more captures. `paths`: each result's
    capture as typed on the command line (default: the reader's name)."""
    verdicts: Counter[str] = Counter()
    for r in results:
        verdicts.update(r.verdict_counts())
    typed = list(paths) if paths is not None else [r.capture.name for r in results]
    captures = []
    for r, path in zip(results, typed, strict=True):
        not_ip, damaged = skipped_groups(r.capture.skipped)
        entry: dict[str, Any] = {
            "path": path,
            "name": capture_name(r),
            "packets": r.capture.packets,
            "skipped": dict(sorted(r.capture.skipped.items())),
            "not_ip": not_ip,
            "damaged": damaged,
            "truncated": r.capture.truncated,
            "interrupted": bool(getattr(r, "interrupted", False)),
            "evicted": int(getattr(r, "evicted", 0)),
            "flows": r.flow_count,
            "findings": r.findings.num_rows,
            "warnings": list(r.capture.warnings),
        }
        health = r.capture.health  # capture health (pipeline.analyze fills it)
        if health:
            entry["health"] = health
        captures.append(entry)
    messages = [e.message if isinstance(e, Failure) else e for e in errors]
    obj: dict[str, Any] = {
        "version": __version__,
        "captures": captures,
        "flows": sum(r.flow_count for r in results),
        "verdicts": {v: verdicts[v] for v in schema.VERDICTS if verdicts[v]},
        "severities": severity_counts(results),
        "findings": [row for r in results for row in finding_rows(r)],
        "outputs": {
            path: {name: str(p) for name, p in r.outputs.items()}
            for r, path in zip(results, typed, strict=True)
        },
        "errors": messages,
        "failed": len(messages),
        "interrupted": code == EXIT_INTERRUPTED,
        "exit_code": code,
    }
    if not_read:
        obj["not_read"] = list(not_read)
    return obj


def summary(result: Result, *, limit: int = DEFAULT_LIMIT, width: int | None = None) -> str:
    """The short human summary of one capture, as printed on stdout: at most `limit`
    findings rows (most severe first). With `width` (a terminal's columns) every line
    fits: table rows are never wrapped, their long cells end in an ellipsis; lists wrap
    onto indented lines; a long path loses its beginning."""
    cap = result.capture
    state = []
    if getattr(result, "interrupted", False):
        state.append("interrupted")
    if cap.truncated:
        state.append("capture cut short")
    facts = f": {cap.packets:,} packets, {result.flow_count:,} flows" + (
        f" ({', '.join(state)})" if state else ""
    )
    lines = [_left_cut(printable(cap.name), width, len(facts)) + facts]
    not_ip, damaged = skipped_groups(cap.skipped)
    if not_ip:
        lines += _wrap(f"  not IP (skipped): {_counts(not_ip)}", width)
    if damaged:
        lines += _wrap(f"  damaged (skipped): {_counts(damaged)}", width)
    lines += _wrap(f"systems seen: {', '.join(result.systems_seen()) or 'none'}", width)
    lines += _wrap(
        "flows per verdict: "
        + (", ".join(f"{v} {n:,}" for v, n in result.verdict_counts().items()) or "none"),
        width,
    )
    total = result.findings.num_rows
    if total:
        per = ", ".join(f"{s} {n:,}" for s, n in severity_counts([result]).items())
        lines += _wrap(f"findings: {total:,} ({per})", width)
        shown = sorted_findings(result, limit)
        lines.extend(_table(shown, width))
        if total > len(shown):
            where = result.outputs.get("findings")
            head = f"  ... and {total - len(shown):,} more in "
            place = printable(str(where)) if where else "the findings table"
            lines.append(head + _left_cut(place, width, len(head)))
    else:
        lines.append("findings: none")
    if result.outputs:
        first = next(iter(result.outputs.values()))
        names = ",".join(p.stem for p in result.outputs.values())
        tail = f"/{{{names}}}.parquet"
        lines.append(
            "outputs: " + _left_cut(printable(str(first.parent)), width, 9 + len(tail)) + tail
        )
    return "\n".join(lines)


ELLIPSIS = "\u2026"  # one column on a terminal


def _ellipsis() -> str:
    """The ellipsis character where stdout can encode it, else three dots."""
    import sys

    try:
        ELLIPSIS.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError, AttributeError):
        return "..."
    return ELLIPSIS


def _cut(text: str, room: int) -> str:
    """`text` in at most `room` columns, its end replaced by an ellipsis when cut."""
    if len(text) <= room:
        return text
    mark = _ellipsis()
    return text[: max(room - len(mark), 0)] + mark if room > len(mark) else text[:room]


def _left_cut(text: str, width: int | None, beside: int) -> str:
    """`text` (a name or path) in what `width` leaves beside `beside` columns; a cut
    keeps the end (the file name) and starts with an ellipsis."""
    if width is None or len(text) + beside <= width:
        return text
    room = max(width - beside, 0)
    mark = _ellipsis()
    return mark + text[len(text) - max(room - len(mark), 0) :] if room > len(mark) else ""


def _wrap(line: str, width: int | None) -> list[str]:
    """A line of prose or a list, wrapped onto lines indented under it (not a table row)."""
    if width is None or len(line) <= width:
        return [line]
    lead = len(line) - len(line.lstrip(" "))
    return textwrap.wrap(
        line,
        width=max(width, 20),
        initial_indent="",
        subsequent_indent=" " * (lead + 4),
        break_on_hyphens=False,
        drop_whitespace=True,
    ) or [line[:width]]


def failures_summary(
    failures: Sequence[Failure], not_read: Sequence[str] = (), *, width: int | None = None
) -> str:
    """The lines that close a run over several captures when some were not analysed."""
    lines = []
    if failures:
        lines.append(f"failed: {len(failures)} capture{'s' if len(failures) != 1 else ''}")
        for f in failures:
            lines += _wrap(f"  {printable(f.message)}", width)
    if not_read:
        lines += _wrap(
            f"not read (interrupted): {', '.join(printable(p) for p in not_read)}", width
        )
    return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items())


def _where(r: Mapping[str, Any]) -> tuple[str, str]:
    """(ORIG -> RESP, PROTO/PORT) of a findings row; a folded scan has a null resp_h
    or resp_p and says how many hosts or ports it stands for where the row has it."""
    resp_h = r["resp_h"] if r["resp_h"] is not None else "*"
    port = str(r["resp_p"]) if r["resp_p"] is not None else "*"
    for key, what in (("ports", "ports"), ("hosts", "hosts")):
        n = r.get(key)
        count = len(n) if isinstance(n, list) else n
        if isinstance(count, int) and (r["resp_p"] is None or r["resp_h"] is None):
            port += f" (scan: {count:,} {what})"
            break
    return f"{r['orig_h']} -> {resp_h}", f"{r['proto']}/{port}"


# Columns of the findings table. On a narrow terminal the message gives way first
# (down to MESSAGE_MIN columns), then SYSTEM is left out (the verdict and the hosts say
# more), then MESSAGE; only then do VERDICT, ORIG -> RESP and PROTO/PORT end in an
# ellipsis. SEVERITY and FLOWS are never cut.
TABLE_HEADER = ["SEVERITY", "VERDICT", "SYSTEM", "ORIG -> RESP", "PROTO/PORT", "FLOWS", "MESSAGE"]
SYSTEM, MESSAGE = 2, 6
MESSAGE_MIN = 16
SHRINK_MIN = {3: 15, 4: 10, 1: 8}  # column -> narrowest, in the order they shrink
INDENT, GAP = 2, 2


def _columns(widths: list[int], width: int | None) -> tuple[list[int], list[int]]:
    """(the columns shown, their widths) for a table of natural `widths` in `width`."""
    every = list(range(len(widths)))
    if width is None:
        return every, widths
    for shown in (every, [i for i in every if i != SYSTEM]):
        fixed = INDENT + sum(widths[i] for i in shown if i != MESSAGE) + GAP * (len(shown) - 1)
        if width - fixed >= min(MESSAGE_MIN, widths[MESSAGE]):
            return shown, [
                min(widths[i], width - fixed) if i == MESSAGE else widths[i] for i in shown
            ]
    shown = [i for i in every if i not in (SYSTEM, MESSAGE)]
    out = {i: widths[i] for i in shown}
    over = INDENT + sum(out.values()) + GAP * (len(shown) - 1) - width
    for i, floor in SHRINK_MIN.items():
        give = min(max(over, 0), max(out[i] - floor, 0))
        out[i] -= give
        over -= give
    return shown, [out[i] for i in shown]


def _table(rows: list[dict[str, Any]], width: int | None = None) -> list[str]:
    """The findings rows as a table, one line per row, never wrapped: with `width` the
    columns give way as TABLE_HEADER's comment says; a terminal narrower than that
    cuts each row at its edge."""
    cells = [
        [
            r["severity"],
            r["verdict"],
            r["system"] or "-",
            *_where(r),
            f"{r['flows']:,}",
            printable(r["message"] or ""),
        ]
        for r in rows
    ]
    natural = [max(len(c[i]) for c in [TABLE_HEADER, *cells]) for i in range(len(TABLE_HEADER))]
    shown, widths = _columns(natural, width)

    def fmt(c: list[str]) -> str:
        parts = []
        for i, w in zip(shown, widths, strict=True):
            text = _cut(c[i], w)
            parts.append(text.rjust(w) if i == 5 else text if i == MESSAGE else text.ljust(w))
        line = (" " * INDENT + (" " * GAP).join(parts)).rstrip()
        return _cut(line, width) if width is not None else line

    return [fmt(TABLE_HEADER)] + [fmt(c) for c in cells]
