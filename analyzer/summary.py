"""Summaries of finished results: the terminal summary, the --json object, and the exit
code they imply. Works on pipeline.Result tables only; no analysis happens here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__, schema

if TYPE_CHECKING:  # the CLI imports this module for its defaults before any analysis
    from .pipeline import Result

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3
DEFAULT_FAIL_ON = "high"  # contract: "--fail-on (default high)"


def exit_code(results: Sequence[Result], fail_on: str) -> int:
    """0 when no finding reaches `fail_on`, else 1 (contract "Exit codes")."""
    threshold = schema.SEVERITY_RANK[fail_on]
    for r in results:
        for sev in r.findings.column("severity").to_pylist():
            if schema.SEVERITY_RANK[sev] >= threshold:
                return EXIT_FINDINGS
    return EXIT_OK


def finding_rows(result: Result) -> list[dict[str, Any]]:
    """The findings table as JSON-ready dicts (timestamps as ISO 8601 UTC)."""
    rows = result.findings.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dt.datetime):
                row[key] = value.isoformat().replace("+00:00", "Z")
    return rows


def as_json(results: Sequence[Result], code: int, errors: Sequence[str] = ()) -> dict[str, Any]:
    """The contract's --json object over one or more captures."""
    verdicts: Counter[str] = Counter()
    for r in results:
        verdicts.update(r.verdict_counts())
    obj: dict[str, Any] = {
        "version": __version__,
        "captures": [
            {
                "name": r.capture.name,
                "packets": r.capture.packets,
                "skipped": dict(sorted(r.capture.skipped.items())),
                "truncated": r.capture.truncated,
            }
            for r in results
        ],
        "flows": sum(r.flows.num_rows for r in results),
        "verdicts": {v: verdicts[v] for v in schema.VERDICTS if verdicts[v]},
        "findings": [row for r in results for row in finding_rows(r)],
        "outputs": {
            r.capture.name: {name: str(path) for name, path in r.outputs.items()} for r in results
        },
        "exit_code": code,
    }
    if errors:
        obj["errors"] = list(errors)
    return obj


def summary(result: Result) -> str:
    """The short human summary of one capture, as printed on stdout."""
    cap = result.capture
    skipped = sum(cap.skipped.values())
    lines = [
        f"{cap.name}: {cap.packets:,} packets ({skipped:,} skipped"
        f"{', capture cut short' if cap.truncated else ''}), {result.flows.num_rows:,} flows",
        f"systems seen: {', '.join(result.systems_seen()) or 'none'}",
        "flows per verdict: "
        + (", ".join(f"{v} {n:,}" for v, n in result.verdict_counts().items()) or "none"),
    ]
    rows = result.findings.to_pylist()
    if rows:
        lines.append(f"findings ({len(rows)}):")
        lines.extend(_table(rows))
    else:
        lines.append("findings: none")
    if result.outputs:
        first = next(iter(result.outputs.values()))
        names = ",".join(p.stem for p in result.outputs.values())
        lines.append(f"outputs: {first.parent}/{{{names}}}.parquet")
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    cells = [
        [
            r["severity"],
            r["verdict"],
            r["system"] or "-",
            f"{r['orig_h']} -> {r['resp_h']}",
            f"{r['proto']}/{r['resp_p']}",
            str(r["flows"]),
            r["message"],
        ]
        for r in rows
    ]
    header = ["SEVERITY", "VERDICT", "SYSTEM", "ORIG -> RESP", "PROTO/PORT", "FLOWS", "MESSAGE"]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header) - 1)]

    def fmt(c: list[str]) -> str:
        return "  " + "  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1]

    return [fmt(header)] + [fmt(c) for c in cells]
