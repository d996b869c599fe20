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


def sorted_findings(result: Result) -> list[dict[str, Any]]:
    """Findings rows, most severe first, then most flows, then by hosts and port."""
    rows = result.findings.to_pylist()
    rows.sort(
        key=lambda r: (
            -schema.SEVERITY_RANK[r["severity"]],
            -(r["flows"] or 0),
            r["verdict"],
            r["orig_h"] or "",
            r["resp_h"] or "",
            r["proto"] or "",
            r["resp_p"] if r["resp_p"] is not None else -1,
        )
    )
    return rows


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
            "flows": r.flows.num_rows,
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
        "flows": sum(r.flows.num_rows for r in results),
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
    findings rows (most severe first); `width` cuts the message column to fit a terminal."""
    cap = result.capture
    state = []
    if getattr(result, "interrupted", False):
        state.append("interrupted")
    if cap.truncated:
        state.append("capture cut short")
    lines = [
        f"{printable(cap.name)}: {cap.packets:,} packets, {result.flows.num_rows:,} flows"
        + (f" ({', '.join(state)})" if state else "")
    ]
    not_ip, damaged = skipped_groups(cap.skipped)
    if not_ip:
        lines.append(f"  not IP (skipped): {_counts(not_ip)}")
    if damaged:
        lines.append(f"  damaged (skipped): {_counts(damaged)}")
    lines.append(f"systems seen: {', '.join(result.systems_seen()) or 'none'}")
    lines.append(
        "flows per verdict: "
        + (", ".join(f"{v} {n:,}" for v, n in result.verdict_counts().items()) or "none")
    )
    rows = sorted_findings(result)
    if rows:
        per = ", ".join(f"{s} {n:,}" for s, n in severity_counts([result]).items())
        lines.append(f"findings: {len(rows):,} ({per})")
        shown = rows[: max(limit, 0)]
        lines.extend(_table(shown, width))
        if len(rows) > len(shown):
            where = result.outputs.get("findings")
            lines.append(
                f"  ... and {len(rows) - len(shown):,} more in "
                f"{printable(str(where)) if where else 'the findings table'}"
            )
    else:
        lines.append("findings: none")
    if result.outputs:
        first = next(iter(result.outputs.values()))
        names = ",".join(p.stem for p in result.outputs.values())
        lines.append(f"outputs: {printable(str(first.parent))}/{{{names}}}.parquet")
    return "\n".join(lines)


def failures_summary(failures: Sequence[Failure], not_read: Sequence[str] = ()) -> str:
    """The lines that close a run over several captures when some were not analysed."""
    lines = []
    if failures:
        lines.append(f"failed: {len(failures)} capture{'s' if len(failures) != 1 else ''}")
        lines.extend(f"  {printable(f.message)}" for f in failures)
    if not_read:
        lines.append(f"not read (interrupted): {', '.join(printable(p) for p in not_read)}")
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


def _table(rows: list[dict[str, Any]], width: int | None = None) -> list[str]:
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
    header = ["SEVERITY", "VERDICT", "SYSTEM", "ORIG -> RESP", "PROTO/PORT", "FLOWS", "MESSAGE"]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header) - 1)]
    right = {5}  # counts align right

    def fmt(c: list[str]) -> str:
        head = "  " + "  ".join(
            c[i].rjust(widths[i]) if i in right else c[i].ljust(widths[i])
            for i in range(len(widths))
        )
        message = c[-1]
        if width is None or len(head) + 2 + len(message) <= width:
            return head + "  " + message
        # a terminal too narrow for the message: it goes, wrapped, under its row
        indent = " " * 4
        wrapped = textwrap.wrap(
            message,
            width=max(width - 1, 40),
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )
        return "\n".join([head.rstrip(), *wrapped])

    return [fmt(header)] + [fmt(c) for c in cells]
