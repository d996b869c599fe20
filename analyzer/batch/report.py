"""The end of a batch run as people and machines read it: the one-screen summary and the
--json object. Works on a finished BatchResult only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__, schema

if TYPE_CHECKING:
    from . import BatchResult

MAX_LISTED = 10  # lines per list on the screen (pairs, failures, skipped): one screen
PAIR_COLUMNS = ["site", "date", "orig", "resp_h", "proto", "resp_p", "verdict", "severity"]


def per_site(result: BatchResult) -> list[dict[str, Any]]:
    """Per site (of the done captures found): captures, packets, findings per severity,
    new pairs of its newest date."""
    sites: dict[str, dict[str, Any]] = {}
    for row in result.done:
        name = row["site"] or "(no packets)"
        entry = sites.setdefault(
            name,
            {
                "site": name,
                "captures": 0,
                "packets": 0,
                "findings": dict.fromkeys(schema.SEVERITIES, 0),
                "new_pairs": 0,
            },
        )
        entry["captures"] += 1
        entry["packets"] += row["packets"] or 0
        for sev in schema.SEVERITIES:
            entry["findings"][sev] += row[f"findings_{sev}"] or 0
    for name, count in result.new_pairs.groupby("site").size().items():
        if name in sites:
            sites[str(name)]["new_pairs"] = int(count)
    return [sites[k] for k in sorted(sites)]


def summary(result: BatchResult) -> str:
    """The one-screen summary printed on stdout."""
    found = len(result.rows)
    lines = [
        f"pcapclass batch: {found} capture{'s' * (found != 1)} under the inputs: "
        f"{len(result.analysed)} analysed now{_runner(result)}, "
        f"{len(result.unchanged)} already done, {len(result.failed)} failed",
    ]
    if result.busy:
        lines.append(
            f"left for the next run: {len(result.busy)} still being written "
            f"(modified within the last seconds)"
        )
    if result.before_since:
        lines.append(f"left out by --since: {result.before_since} older files")
    sites = per_site(result)
    if sites:
        sev = list(reversed(schema.SEVERITIES))
        header = ["SITE", "CAPTURES", "PACKETS", *[s.upper() for s in sev], "NEW PAIRS"]
        cells = [
            [s["site"], f"{s['captures']:,}", f"{s['packets']:,}"]
            + [f"{s['findings'][v]:,}" for v in sev]
            + [f"{s['new_pairs']:,}"]
            for s in sites
        ]
        lines += _table(header, cells)
    if len(result.new_pairs):
        lines.append(f"new pairs on each site's newest date ({len(result.new_pairs)}):")
        pairs = result.new_pairs.sort_values(["site", "severity"], key=_severity_key)
        shown = [
            [
                r.site,
                r.date,
                f"{r.orig} -> {r.resp_h}",
                f"{r.proto}/{r.resp_p}",
                r.verdict,
                r.severity,
                "new verdict" if len(r.known_verdicts) else "new pair",
            ]
            for r in pairs.head(MAX_LISTED).itertuples()
        ]
        lines += _table(["SITE", "DATE", "ORIG -> RESP", "PROTO/PORT", "VERDICT", "SEV", ""], shown)
        lines += _more(len(pairs))
    if result.failed:
        lines.append(f"failed ({len(result.failed)}):")
        lines += [f"  {r['message']}" for r in result.failed[:MAX_LISTED]]
        lines += _more(len(result.failed))
    if result.skipped:
        lines.append(f"skipped, not captures ({len(result.skipped)}):")
        lines += [f"  {p}: {why}" for p, why in result.skipped[:MAX_LISTED]]
        lines += _more(len(result.skipped))
    if result.busy:
        lines += [f"  {p}: still being written ({age:.0f} s ago)" for p, age in result.busy[:3]]
    lines.append(f"dataset: {result.dataset} (manifest: {result.dataset}/manifest.sqlite)")
    lines.append(f"exit {result.exit_code}: {result.exit_reason()}")
    return "\n".join(lines)


def _runner(result: BatchResult) -> str:
    return f" {result.runner}" if result.analysed and result.runner else ""


def _severity_key(col: Any) -> Any:
    if col.name == "severity":
        return col.map(lambda s: -schema.SEVERITY_RANK[s])
    return col


def _more(total: int) -> list[str]:
    return [f"  ... and {total - MAX_LISTED} more (--json lists all)"] if total > MAX_LISTED else []


def _table(header: list[str], cells: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *cells]
    ]


def as_json(result: BatchResult) -> dict[str, Any]:
    """The --json object."""
    return {
        "version": __version__,
        "dataset": str(result.dataset),
        "captures": {
            "found": len(result.rows),
            "analysed": len(result.analysed),
            "already_done": len(result.unchanged),
            "failed": len(result.failed),
            "still_being_written": len(result.busy),
            "not_captures": len(result.skipped),
            "before_since": result.before_since,
        },
        "sites": per_site(result),
        "new_pairs": [_jsonable(r) for r in result.new_pairs.to_dict("records")],
        "failed": [{"path": r["path"], "message": r["message"]} for r in result.failed],
        "skipped": [{"path": p, "reason": why} for p, why in result.skipped],
        "still_being_written": [{"path": p, "seconds_ago": round(a, 1)} for p, a in result.busy],
        "cleaned": result.cleaned,
        "seconds": round(result.seconds, 3),
        "fail_on": result.fail_on,
        "exit_code": result.exit_code,
        "exit_reason": result.exit_reason(),
    }


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif hasattr(value, "tolist"):
            value = value.tolist()
        elif hasattr(value, "item"):
            value = value.item()
        out[key] = value
    return out


STATUS_COLUMNS = ["status", "site", "date", "packets", "flows", "findings", "path", "message"]


def status_text(rows: list[dict[str, Any]], dataset: str) -> str:
    """`pcapclass batch --status DATASET`: the manifest, one line per file."""
    if not rows:
        return f"{dataset}: the manifest has no rows yet"
    cells = []
    for r in rows:
        findings = sum(r[f"findings_{s}"] or 0 for s in schema.SEVERITIES)
        values = [
            r["status"],
            r["site"] or "-",
            r["date"] or "-",
            _num(r["packets"]),
            _num(r["flows"]),
            _num(findings if r["status"] == "done" else None),
            r["path"],
            r["message"] or "",
        ]
        cells.append(values)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    head = ", ".join(f"{counts[s]} {s}" for s in schema.CAPTURE_STATUSES if s in counts)
    return "\n".join(
        [
            f"{dataset}: {len(rows)} files ({head})",
            *_table([c.upper() for c in STATUS_COLUMNS], cells),
        ]
    )


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
