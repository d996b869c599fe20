"""What the HTML report says, as plain data: computed from an opened capture folder or
batch dataset (analyzer.dataset.Dataset). No HTML here; render.py turns it into a page.

The order of the page is the order of the questions an IT lead asks in the morning:

1. headline: is anything reaching into the C.M.I., how bad is the worst finding, and
   (dataset) what is new since last night;
2. verdicts: connections per verdict;
3. findings, most severe first (summary.finding_order), at most `limit` rows and how many
   more there are; each host links to its card;
4. plots; 5. capture health; 6. signature coverage; 7. (dataset) new pairs and the
   per-site comparison; 8. host cards.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import schema
from ..health import not_ip_name
from ..summary import finding_order

if TYPE_CHECKING:
    from ..dataset import Dataset

DEFAULT_LIMIT = 50  # findings / new-pair rows shown: a long page, still one e-mail
HEALTH_LIMIT = 30  # capture health rows (a dataset of a year has thousands of captures)
SEVERITY_ORDER = tuple(reversed(schema.SEVERITIES))  # most severe first
FINDING_SEVERITIES = ("low", "medium", "high", "critical")
_ANCHOR_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")


@dataclass(frozen=True)
class Headline:
    """The first screen: inbound to the C.M.I., the worst finding, what is new."""

    inbound_flows: int  # connections (or attempts) opened towards a C.M.I.
    inbound_sources: tuple[str, ...]  # their originators, most connections first
    inbound_outside: int  # of those, from outside the local networks (critical)
    inbound_worst: str | None  # worst severity among them
    findings: int  # findings rows
    severities: dict[str, int]  # findings rows per severity, most severe first, no zeros
    worst: str | None  # worst severity of any finding
    new_pairs: int | None  # dataset: pairs new on each site's newest date; None: a capture
    new_pairs_findings: int | None  # of those, pairs whose verdict is a finding
    new_pairs_worst: str | None
    inbound: tuple[dict[str, Any], ...] = ()  # per source and C.M.I., worst first (inbound_rows)
    inbound_more: int = 0  # source/C.M.I. pairs not in `inbound`
    new_top: tuple[dict[str, Any], ...] = ()  # the first new pairs (new_top_pairs)
    first_night_sites: tuple[str, ...] = ()  # dataset sites with one night: all pairs new
    first_night_pairs: int = 0  # new pairs of those sites

    @property
    def severity(self) -> str:
        """The page's state, for the summary line's colour: the worst of the inbound
        connections, the findings and the new pairs that are findings; `info` if none."""
        states = (self.inbound_worst, self.worst, self.new_pairs_worst)
        return worst([s for s in states if s]) or "info"

    @property
    def lead(self) -> str:
        """The answer to "is anything reaching into the C.M.I.?" in a few words."""
        if self.inbound_outside:
            return "The C.M.I. is reachable from outside the local networks."
        if self.inbound_flows:
            return "Local hosts open connections into the C.M.I."
        return "Nothing reaches into the C.M.I."

    @property
    def details(self) -> str:
        """After the lead: how many inbound connections from where, the findings, and
        (dataset) what is new since last night."""
        parts = []
        local = self.inbound_flows - self.inbound_outside
        outside = [r["orig_h"] for r in self.inbound if r["outside"]]
        inside = [r["orig_h"] for r in self.inbound if not r["outside"]]
        if self.inbound_outside:
            parts.append(f"{_count(self.inbound_outside, 'connection')} from {_few(outside)}.")
        if local:
            also = "Also " if self.inbound_outside else ""
            parts.append(
                f"{also}{_count(local, 'connection')} from {_few(inside)} on the local network; "
                "the C.M.I. only ever opens connections itself."
            )
        if self.findings:
            parts.append(f"{_count(self.findings, 'finding')}, the worst {self.worst}.")
        else:
            parts.append("No findings.")
        if self.new_pairs is not None:
            if self.new_pairs:
                of = self.new_pairs_findings or 0
                parts.append(
                    f"{_count(self.new_pairs, 'communication pair')} new since last night, "
                    f"{of} of {'it' if self.new_pairs == 1 else 'them'} "
                    f"{'a finding' if of == 1 else 'findings'}."
                )
                if self.first_night_pairs:
                    parts.append(self.first_night_text)
            else:
                parts.append("Nothing new since last night.")
        return " ".join(parts)

    @property
    def first_night_text(self) -> str:
        """`N of them at SITE, its first night (no earlier night to compare with).`"""
        n = len(self.first_night_sites)
        where = _few(self.first_night_sites)
        nights = "its first night" if n == 1 else "their first night"
        return f"{self.first_night_pairs:,} of them at {where}, {nights} (nothing to compare with)."

    @property
    def summary(self) -> str:
        """The first screen in a few sentences, to forward as it is."""
        return f"{self.lead} {self.details}"


@dataclass(frozen=True)
class Scope:
    """What the report covers."""

    kind: str  # "capture" or "dataset"
    title: str
    source: str  # the folder given
    captures: tuple[str, ...]
    sites: tuple[str, ...]  # dataset: partition site names; capture: empty
    first_ts: str | None
    last_ts: str | None
    packets: int
    flows: int
    hosts: int


@dataclass(frozen=True)
class Table:
    """A bounded table: the rows shown and how many more the data has."""

    rows: list[dict[str, Any]]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass(frozen=True)
class HealthRow:
    """One capture's health, from its pcapclass.health metadata (analyzer/health.py)."""

    capture: str
    packets: int
    damaged: dict[str, int]  # skip reason -> packets (damage)
    not_ip: dict[str, int]  # traffic name (EtherType) -> packets
    truncated: bool
    interrupted: bool
    time_gaps: int
    longest_gap_s: float
    out_of_order: int
    snaplen_cut: int
    duplicates: int
    one_way_mirror: bool
    warnings: tuple[str, ...]

    @property
    def other(self) -> list[str]:
        """The rarer problems, one phrase each."""
        out = []
        if self.one_way_mirror:
            out.append("one-way mirror: direction verdicts unreliable")
        if self.out_of_order:
            out.append(f"{self.out_of_order:,} out of order")
        if self.duplicates:
            out.append(f"{self.duplicates:,} duplicate frames")
        if self.snaplen_cut:
            out.append(f"{self.snaplen_cut:,} cut by the snap length")
        return out

    @property
    def problems(self) -> int:
        """How much is wrong (0: a clean capture); orders the health table."""
        return (
            sum(self.damaged.values())
            + self.truncated
            + self.interrupted
            + self.time_gaps
            + self.out_of_order
            + self.duplicates
            + self.one_way_mirror
            + len(self.warnings)
        )


@dataclass(frozen=True)
class Health:
    rows: list[HealthRow]
    total: int  # captures
    clean: int  # captures without any problem
    missing: tuple[str, ...] = ()  # captures whose files carry no health metadata

    @property
    def more(self) -> int:
        return self.total - len(self.rows) - len(self.missing)


@dataclass(frozen=True)
class Content:
    scope: Scope
    headline: Headline
    verdicts: list[dict[str, Any]]  # verdict, severity, flows, bytes
    findings: Table
    health: Health
    coverage: Table  # analyzer.plots.coverage_table rows
    new_pairs: Table | None  # dataset only
    sites: list[dict[str, Any]] | None  # dataset only: per-site comparison
    hosts: list[dict[str, Any]]  # host cards (analyzer.plots.host_card_data + anchor)
    generated: str
    extra: dict[str, Any] = field(default_factory=dict)


def anchor(ip: str, site: str | None = None, sites: Sequence[str] = ()) -> str:
    """The id of a host card: `host-` + the address with `.` -> `-` and `:` -> `_`
    (so an IPv4 and an IPv6 form never collide), prefixed with the site's position in a
    dataset (the same address at two sites is two hosts)."""
    ident = ip.replace(".", "-").replace(":", "_")
    prefix = f"s{sites.index(site) + 1}-" if site is not None and site in sites else ""
    return "host-" + prefix + _ANCHOR_UNSAFE.sub("_", ident)


def utc(value: Any) -> str | None:
    """A timestamp as `YYYY-MM-DD HH:MM:SSZ` (UTC), None for a missing one."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%SZ")


def severity_counts(severities: Iterable[str]) -> dict[str, int]:
    counts = pd.Series(list(severities), dtype="object").value_counts()
    return {s: int(counts[s]) for s in SEVERITY_ORDER if s in counts.index and counts[s]}


def worst(severities: Iterable[str]) -> str | None:
    ranks = [schema.SEVERITY_RANK[s] for s in severities]
    return schema.SEVERITIES[max(ranks)] if ranks else None


def _count(n: int, word: str) -> str:
    return f"{n:,} {word if n == 1 else word + 's'}"


def _few(ips: Sequence[str], shown: int = 3) -> str:
    """`a`, `a and b`, `a, b and c`, `a, b, c and 2 more`."""
    if len(ips) <= 1:
        return ips[0] if ips else "no host"
    head = list(ips[:shown])
    if len(ips) > shown:
        return f"{', '.join(head)} and {len(ips) - shown} more"
    return f"{', '.join(head[:-1])} and {head[-1]}"


INBOUND_SHOWN = 4  # source/C.M.I. pairs listed on the first screen
NEW_SHOWN = 3  # new pairs listed on the first screen


def inbound_rows(
    inbound: pd.DataFrame, hosts: pd.DataFrame, *, dataset: bool, sites: Sequence[str]
) -> list[dict[str, Any]]:
    """The connections into a C.M.I. per (site, source, C.M.I.): names from the site
    file, outside or local, the ports, connections, worst severity and the host cards'
    anchors; worst first, then most connections."""
    if not len(inbound):
        return []
    names = _names(hosts, dataset)
    frame = pd.DataFrame(
        {
            "site": inbound["site"].astype(str) if dataset and "site" in inbound else "",
            "orig_h": inbound["orig_h"].astype(str),
            "resp_h": inbound["resp_h"].astype(str),
            "port": inbound["proto"].astype(str)
            + "/"
            + inbound["resp_p"].astype("int64").astype(str),
            "severity": inbound["severity"].astype(str),
        }
    )
    rows = []
    for (site, orig, resp), part in frame.groupby(["site", "orig_h", "resp_h"], sort=True):
        where = str(site) if dataset else None
        sev = worst(part["severity"]) or "high"
        counts = part["port"].value_counts()
        ports = sorted(counts.index, key=lambda p: (-int(counts[p]), p))
        rows.append(
            {
                "site": where,
                "orig_h": orig,
                "orig_name": names.get((where, orig)),
                "orig_anchor": anchor(orig, where, sites),
                "outside": sev == "critical",
                "resp_h": resp,
                "resp_name": names.get((where, resp)),
                "resp_anchor": anchor(resp, where, sites),
                "ports": ports,
                "flows": len(part),
                "severity": sev,
            }
        )
    rows.sort(key=lambda r: (-schema.SEVERITY_RANK[r["severity"]], -r["flows"], r["site"] or "",
                             r["orig_h"], r["resp_h"]))  # fmt: skip
    return rows


def headline(
    flows: pd.DataFrame,
    findings: pd.DataFrame,
    hosts: pd.DataFrame,
    new_pairs: pd.DataFrame | None,
    *,
    dataset: bool = False,
    sites: Sequence[str] = (),
) -> Headline:
    """The first screen's numbers (see Headline)."""
    inbound = flows[flows["verdict"].astype(str) == "inbound_to_cmi"] if len(flows) else flows
    sources: tuple[str, ...] = ()
    outside = 0
    if len(inbound):
        counts = inbound["orig_h"].astype(str).value_counts()
        sources = tuple(sorted(counts.index, key=lambda ip: (-counts[ip], ip)))
        outside = int((inbound["severity"].astype(str) == "critical").sum())
    sev = findings["severity"].astype(str).tolist() if len(findings) else []
    pairs_n = pairs_findings = None
    pairs_worst = None
    new_top: tuple[dict[str, Any], ...] = ()
    if new_pairs is not None:
        pairs_n = len(new_pairs)
        verdicts = new_pairs["verdict"].astype(str) if pairs_n else pd.Series([], dtype=str)
        is_finding = ~verdicts.isin(["expected", "unmonitored"])
        pairs_findings = int(is_finding.sum())
        pairs_worst = worst(new_pairs["severity"].astype(str)[is_finding]) if pairs_n else None
    first_sites: tuple[str, ...] = ()
    first_pairs = 0
    if new_pairs is not None and len(new_pairs):
        first_sites = first_night_sites(flows)
        first_pairs = int(new_pairs["site"].astype(str).isin(first_sites).sum())
        new_top = tuple(new_top_pairs(new_pairs, first_sites))
    rows = inbound_rows(inbound, hosts, dataset=dataset, sites=sites)
    return Headline(
        inbound_flows=len(inbound),
        inbound_sources=sources,
        inbound_outside=outside,
        inbound_worst=worst(inbound["severity"].astype(str)) if len(inbound) else None,
        findings=len(findings),
        severities=severity_counts(sev),
        worst=worst(sev),
        new_pairs=pairs_n,
        new_pairs_findings=pairs_findings,
        new_pairs_worst=pairs_worst,
        inbound=tuple(rows[:INBOUND_SHOWN]),
        inbound_more=max(len(rows) - INBOUND_SHOWN, 0),
        new_top=new_top,
        first_night_sites=first_sites,
        first_night_pairs=first_pairs,
    )


def first_night_sites(flows: pd.DataFrame) -> tuple[str, ...]:
    """Sites of a dataset whose connections are of one date only: each of their pairs is
    new because there is no earlier night, not because something changed."""
    if not len(flows) or "site" not in flows or "date" not in flows:
        return ()
    nights = flows.groupby(flows["site"].astype(str))["date"].nunique()
    return tuple(sorted(str(site) for site, n in nights.items() if n == 1))


def new_top_pairs(
    new_pairs: pd.DataFrame, first_sites: Sequence[str], *, limit: int = NEW_SHOWN
) -> list[dict[str, Any]]:
    """The new pairs for the first screen (pair_table's first rows)."""
    return pair_table(new_pairs, limit=limit, first_sites=first_sites).rows


def verdict_rows(flows: pd.DataFrame) -> list[dict[str, Any]]:
    """Connections and bytes per verdict, in the contract's verdict order (zeros left out)."""
    if not len(flows):
        return []
    frame = pd.DataFrame(
        {
            "verdict": flows["verdict"].astype(str),
            "severity": flows["severity"].astype(str),
            "bytes": flows["orig_ip_bytes"].astype("int64")
            + flows["resp_ip_bytes"].astype("int64"),
        }
    )
    rows = []
    total = len(frame)
    for verdict in schema.VERDICTS:
        part = frame[frame["verdict"] == verdict]
        if len(part):
            rows.append(
                {
                    "verdict": verdict,
                    "severity": worst(part["severity"]) or schema.VERDICT_SEVERITY[verdict],
                    "flows": len(part),
                    "share": len(part) / total,
                    "bytes": int(part["bytes"].sum()),
                }
            )
    return rows


def _names(hosts: pd.DataFrame, dataset: bool) -> dict[tuple[str | None, str], str]:
    """(site or None, ip) -> the site file's name of the host."""
    if not len(hosts) or "name" not in hosts:
        return {}
    named = hosts[hosts["name"].notna()]
    out: dict[tuple[str | None, str], str] = {}
    for row in named.itertuples(index=False):
        site = str(row.site) if dataset else None
        out.setdefault((site, str(row.ip)), str(row.name))
    return out


def finding_table(findings: pd.DataFrame, hosts: pd.DataFrame, *, limit: int,
                  sites: Sequence[str], dataset: bool) -> Table:
    """The findings rows to show, most severe first (summary.finding_order), at most
    `limit`, each with both hosts' names and card anchors."""
    if not len(findings):
        return Table([], 0)
    records = findings.to_dict("records")
    for r in records:
        for key in ("severity", "verdict", "system", "proto"):
            if key in r and r[key] is not None and not isinstance(r[key], str):
                r[key] = None if pd.isna(r[key]) else str(r[key])
    records.sort(key=lambda r: (*finding_order(r), str(r.get("site", "")), str(r.get("date", ""))))
    names = _names(hosts, dataset)
    rows = []
    for r in records[: max(limit, 0)]:
        site = str(r["site"]) if dataset and "site" in r else None
        rows.append(
            {
                "severity": r["severity"],
                "verdict": r["verdict"],
                "system": r["system"],
                "orig_h": r["orig_h"],
                "orig_name": names.get((site, r["orig_h"])),
                "orig_anchor": anchor(r["orig_h"], site, sites),
                "resp_h": r["resp_h"],
                "resp_name": names.get((site, r["resp_h"])),
                "resp_anchor": anchor(r["resp_h"], site, sites),
                "proto": r["proto"],
                "resp_p": r["resp_p"],
                "flows": int(r["flows"]),
                "first_ts": utc(r["first_ts"]),
                "last_ts": utc(r["last_ts"]),
                "message": r["message"],
                "signature_id": r["signature_id"],
                "capture": r["capture"],
                "site": site,
                "date": str(r["date"]) if dataset and "date" in r else None,
            }
        )
    return Table(rows, len(records))


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def health_row(capture: str, meta: Mapping[str, Any]) -> HealthRow | None:
    """One capture's health from its pcapclass.* metadata; None without pcapclass.health
    (files written by a version before capture health)."""
    raw = meta.get("pcapclass.health")
    if raw is None:
        return None
    h = _json(raw)
    skipped = {str(k): int(v) for k, v in (h.get("skipped") or {}).items()}
    damaged = {k: v for k, v in skipped.items() if not_ip_name(k) is None and v}
    not_ip = {str(k): int(v) for k, v in (h.get("not_ip") or {}).items() if v}
    truncated = bool(h.get("truncated")) or str(meta.get("pcapclass.truncated")) == "true"
    return HealthRow(
        capture=capture,
        packets=int(h.get("packets") or 0),
        damaged=dict(sorted(damaged.items(), key=lambda kv: (-kv[1], kv[0]))),
        not_ip=dict(sorted(not_ip.items(), key=lambda kv: (-kv[1], kv[0]))),
        truncated=truncated,
        interrupted=str(meta.get("pcapclass.interrupted")) == "true",
        time_gaps=int(h.get("time_gaps") or 0),
        longest_gap_s=float(h.get("longest_gap_s") or 0.0),
        out_of_order=int(h.get("ts_out_of_order") or 0),
        snaplen_cut=int(h.get("snaplen_cut") or 0),
        duplicates=int(h.get("duplicate_frames") or 0),
        one_way_mirror=bool(h.get("one_way_mirror")),
        warnings=tuple(str(w) for w in (h.get("warnings") or [])),
    )


def health(metadata: Mapping[str, Mapping[str, Any]], *, limit: int = HEALTH_LIMIT) -> Health:
    """Per-capture health, the captures with most problems first, at most `limit` rows."""
    rows: list[HealthRow] = []
    missing: list[str] = []
    for capture, meta in metadata.items():
        row = health_row(str(capture), meta)
        if row is None:
            missing.append(str(capture))
        else:
            rows.append(row)
    rows.sort(key=lambda r: (-r.problems, r.capture))
    clean = sum(1 for r in rows if r.problems == 0)
    return Health(rows[: max(limit, 0)], len(metadata), clean, tuple(sorted(missing)))


def pair_table(
    new_pairs: pd.DataFrame, *, limit: int, first_sites: Sequence[str] = ()
) -> Table:
    """New pairs: those of sites with an earlier night first (a change), then those of
    `first_sites` (a site's first night: every pair is new), each most severe first,
    then most flows; each row says whether it is of a first night."""
    if not len(new_pairs):
        return Table([], 0)
    records = new_pairs.to_dict("records")
    records.sort(
        key=lambda r: (
            str(r["site"]) in first_sites,
            -schema.SEVERITY_RANK[str(r["severity"])],
            -int(r["flows"]),
            str(r["site"]),
            str(r["orig"]),
            str(r["resp_h"]),
            int(r["resp_p"]),
        )
    )
    rows = [
        {
            "site": str(r["site"]),
            "date": str(r["date"]),
            "orig": str(r["orig"]),
            "orig_hosts": [str(h) for h in (r.get("orig_hosts") or [])],
            "resp_h": str(r["resp_h"]),
            "proto": str(r["proto"]),
            "resp_p": int(r["resp_p"]),
            "verdict": str(r["verdict"]),
            "severity": str(r["severity"]),
            "flows": int(r["flows"]),
            "first_ts": utc(r["first_ts"]),
            "known_verdicts": [str(v) for v in (r.get("known_verdicts") or [])],
            "first_night": str(r["site"]) in first_sites,
        }
        for r in records[: max(limit, 0)]
    ]
    return Table(rows, len(records))


def site_rows(flows: pd.DataFrame, findings: pd.DataFrame, manifest: pd.DataFrame | None,
              new_pairs: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per site of a dataset: captures, dates, packets, flows, findings per severity,
    connections into the C.M.I., new pairs of its newest date."""
    names: set[str] = set()
    for frame in (flows, findings):
        if len(frame) and "site" in frame:
            names.update(frame["site"].astype(str))
    done = None
    if manifest is not None and len(manifest) and "status" in manifest:
        done = manifest[(manifest["status"] == "done") & manifest["site"].notna()]
        names.update(done["site"].astype(str))
    rows = []
    for site in sorted(names):
        f = flows[flows["site"].astype(str) == site] if len(flows) else flows
        g = findings[findings["site"].astype(str) == site] if len(findings) else findings
        m = done[done["site"].astype(str) == site] if done is not None else None
        dates = sorted(set(f["date"].astype(str))) if len(f) else []
        sev = severity_counts(g["severity"].astype(str)) if len(g) else {}
        pairs = (
            int((new_pairs["site"].astype(str) == site).sum())
            if new_pairs is not None and len(new_pairs)
            else 0
        )
        rows.append(
            {
                "site": site,
                "captures": int(len(m)) if m is not None else int(f["capture"].nunique()),
                "dates": len(dates),
                "last_date": dates[-1] if dates else None,
                "packets": int(m["packets"].fillna(0).sum()) if m is not None else None,
                "flows": len(f),
                "findings": {s: sev.get(s, 0) for s in SEVERITY_ORDER if s != "info"},
                "inbound_to_cmi": int((f["verdict"].astype(str) == "inbound_to_cmi").sum())
                if len(f)
                else 0,
                "new_pairs": pairs,
            }
        )
    return rows


def card_hosts(findings: Table, hosts: pd.DataFrame, *, dataset: bool,
               extra: int = 30) -> list[tuple[str | None, str]]:
    """(site, ip) of the hosts that get a card: every host of a shown finding (so no
    link breaks), then hosts with a role (site file or inferred), at most `extra` more."""
    wanted: dict[tuple[str | None, str], None] = {}
    for r in findings.rows:
        wanted.setdefault((r["site"], r["orig_h"]), None)
        wanted.setdefault((r["site"], r["resp_h"]), None)
    if len(hosts):
        with_role = hosts[hosts["role"].notna()]
        added = 0
        seen = set(wanted)
        for row in with_role.sort_values("ip").itertuples(index=False):
            key = (str(row.site) if dataset else None, str(row.ip))
            if key in seen:
                continue
            if added >= extra:
                break
            seen.add(key)
            wanted[key] = None
            added += 1
    return list(wanted)


def scope(ds: Dataset, title: str | None, flows: pd.DataFrame, hosts: pd.DataFrame) -> Scope:
    dataset = ds.kind == "dataset"
    captures: list[str] = sorted(str(c) for c in ds.metadata) if ds.metadata else []
    if not captures and len(flows):
        captures = sorted(flows["capture"].astype(str).unique())
    sites: tuple[str, ...] = ()
    if dataset and len(hosts) and "site" in hosts:
        sites = tuple(sorted(hosts["site"].astype(str).unique()))
    packets = 0
    for meta in (ds.metadata or {}).values():
        try:
            packets += int(meta.get("pcapclass.packets") or 0)
        except (TypeError, ValueError):
            pass
    first = flows["ts"].min() if len(flows) else None
    last = flows["last_ts"].max() if len(flows) else None
    if title is None:
        if dataset:
            title = ", ".join(sites) if sites else str(ds.path.name)
        else:
            title = captures[0] if len(captures) == 1 else str(ds.path.name)
    ips = hosts[["site", "ip"]].drop_duplicates() if dataset and len(hosts) else hosts["ip"]
    return Scope(
        kind=ds.kind,
        title=title,
        source=str(ds.path),
        captures=tuple(captures),
        sites=sites,
        first_ts=utc(first),
        last_ts=utc(last),
        packets=packets,
        flows=len(flows),
        hosts=len(ips) if len(hosts) else 0,
    )


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
