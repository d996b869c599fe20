"""The report's computed sections, as data for the templates: the plots (figures from
analyzer.plots embedded as PNG), the host cards, signature coverage per system and the
documented entries never seen. content.py holds the rest (headline, findings, health)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import schema
from .content import Table, anchor, card_hosts, utc, worst

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..dataset import Dataset
    from ..signatures import Catalog, Signature

# Verdicts of a connection a documented signature (or a site allow) explains in its
# documented direction; common infrastructure (DNS, DHCP, ...) is `unmonitored` with a
# signature id. The others (obsolete, reserved, wrong_direction: a documented entry that
# is itself the finding; unexpected_port, inbound_to_cmi: no entry) are not explained.
EXPLAINED = ("expected", "rare", "unmonitored")
FLAGGED = ("obsolete", "reserved", "wrong_direction")  # matched an entry, still a finding
# Catalog entries whose absence says something: `active` ones. Rare ones (debug, TFTP
# firmware update) are rare by definition; obsolete/reserved/placeholder ones should not
# be seen at all; auto-assigned ranges have no single port to expect.
EXPECTED_STATUSES = ("active",)
ALLOW_PREFIX = "site:allow:"  # signature_id of a connection a site [[allow]] explains
PORTS_SHOWN = 8  # ports served / used listed on a host card; the rest are counted
CARD_EXTRA = 30  # host cards beyond the hosts of the shown findings (content.card_hosts)
PORT_RUN_SHOWN = 4  # ports of a documented entry spelled out before "..."


# ------------------------------------------------------------------------------- plots


@dataclass(frozen=True)
class PlotSpec:
    """One plot of the report: its anchor, title, caption, width and how to draw it."""

    id: str
    title: str
    caption: str
    draw: Callable[[], Figure]
    wide: bool = False


def plot_specs(ds: Dataset, catalog: Catalog) -> list[PlotSpec]:
    """The report's plots, in page order (analyzer.plots draws them)."""
    from .. import plots  # type: ignore[attr-defined]  # analyzer.plots: viz-data branch

    flows, findings, hosts = ds.flows, ds.findings, ds.hosts
    per = "night" if ds.kind == "dataset" else "hour"
    return [
        PlotSpec(
            "matrix",
            "Who talks to whom",
            "Originators (rows) and responders (columns) grouped by role; each cell "
            "coloured by its worst verdict and labelled with the ports.",
            lambda: plots.communication_matrix(flows, hosts),
            wide=True,
        ),
        PlotSpec(
            "findings",
            f"Findings per {per}",
            "Findings by severity over time.",
            lambda: plots.findings_over_time(findings, flows=flows),
        ),
        PlotSpec(
            "traffic",
            "Traffic per system",
            "Connections per system over time.",
            lambda: plots.traffic_over_time(flows, by="system", value="connections"),
        ),
        PlotSpec(
            "talkers",
            "Top talkers",
            "The hosts with the most IP bytes, sent and received.",
            lambda: plots.top_talkers(flows, n=10),
        ),
        PlotSpec(
            "unexplained",
            "Ports no signature explains",
            "Responder ports of connections without a documented signature, most "
            "connections first.",
            lambda: plots.unexplained_ports(flows, n=10),
        ),
        PlotSpec(
            "coverage",
            "Signature coverage",
            "Share of each system's connections and bytes a documented signature explains.",
            lambda: plots.signature_coverage(flows, catalog),
        ),
    ]


def plot_list(ds: Dataset, catalog: Catalog) -> list[dict[str, str]]:
    """The plots as the template shows them: id, title, caption, width class and the
    figure as a base64 PNG data URI."""
    from .render import png_data_uri

    return [
        {
            "id": spec.id,
            "title": spec.title,
            "caption": spec.caption,
            "width": "wide" if spec.wide else "",
            "src": png_data_uri(spec.draw()),
        }
        for spec in plot_specs(ds, catalog)
    ]


# -------------------------------------------------------------------------- host cards


def _port_counts(frame: pd.DataFrame, *, limit: int = PORTS_SHOWN) -> dict[str, int]:
    """`proto/port` -> connections, most connections first (then by name), at most
    `limit` keys and an `other ports` key with the rest."""
    if not len(frame):
        return {}
    keys = frame["proto"].astype(str) + "/" + frame["resp_p"].astype("int64").astype(str)
    counts = keys.value_counts()
    ordered = sorted(counts.index, key=lambda k: (-int(counts[k]), k))
    out = {k: int(counts[k]) for k in ordered[:limit]}
    rest = ordered[limit:]
    if rest:
        out[f"{len(rest)} other ports"] = int(sum(int(counts[k]) for k in rest))
    return out


def _verdicts(frame: pd.DataFrame) -> tuple[dict[str, int], dict[str, str]]:
    """Connections per verdict (contract order) and the worst severity of each."""
    if not len(frame):
        return {}, {}
    verdicts = frame["verdict"].astype(str)
    severities = frame["severity"].astype(str)
    counts: dict[str, int] = {}
    sev: dict[str, str] = {}
    for v in schema.VERDICTS:
        mask = verdicts == v
        n = int(mask.sum())
        if n:
            counts[v] = n
            sev[v] = worst(severities[mask]) or schema.VERDICT_SEVERITY[v]
    return counts, sev


def _list(value: Any) -> list[str]:
    if value is None or isinstance(value, float) and pd.isna(value):
        return []
    return [str(v) for v in value]


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def host_card(
    ip: str, site: str | None, rows: pd.DataFrame, flows: pd.DataFrame, sites: Sequence[str]
) -> dict[str, Any]:
    """One host card: role and its evidence, vendor, ports served and used, verdicts.
    `rows`: the host's rows of the hosts table (one per capture in a dataset), `flows`:
    the connections of the host's site (all of them for one capture)."""
    h = rows.iloc[0] if len(rows) else None
    served = flows[flows["resp_h"].astype(str) == ip] if len(flows) else flows
    used = flows[flows["orig_h"].astype(str) == ip] if len(flows) else flows
    both = pd.concat([served, used]) if len(served) or len(used) else flows[:0]
    verdicts, verdict_severity = _verdicts(both)
    bad = [s for v, s in verdict_severity.items() if v not in ("expected", "unmonitored")]
    return {
        "anchor": anchor(ip, site, sites),
        "ip": ip,
        "site": site,
        "name": _text(h.get("name")) if h is not None else None,
        "roles": _list(h.get("roles")) if h is not None else [],
        "role_source": _text(h.get("role_source")) if h is not None else None,
        "role_evidence": _text(h.get("role_evidence")) if h is not None else None,
        "vendor": _text(h.get("vendor")) if h is not None else None,
        "mac": _text(h.get("mac")) if h is not None else None,
        "local": bool(h.get("local")) if h is not None else False,
        "systems": sorted({s for v in rows["systems"] for s in _list(v)}) if len(rows) else [],
        "served": _port_counts(served),
        "used": _port_counts(used),
        "verdicts": verdicts,
        "verdict_severity": verdict_severity,
        "worst": worst(bad),
        "first_ts": utc(rows["first_ts"].min()) if len(rows) else None,
        "last_ts": utc(rows["last_ts"].max()) if len(rows) else None,
        "pkts": int(rows["pkts"].sum()) if len(rows) else None,
        "bytes": int(rows["bytes"].sum()) if len(rows) else None,
    }


def host_cards(
    ds: Dataset, table: Table, sites: Sequence[str], *, extra: int = CARD_EXTRA
) -> tuple[list[dict[str, Any]], int]:
    """The host cards (every host of a shown finding, then hosts with a role, see
    content.card_hosts) and how many hosts of the hosts table get no card."""
    dataset = ds.kind == "dataset"
    hosts, flows = ds.hosts, ds.flows
    wanted = card_hosts(table, hosts, dataset=dataset, extra=extra)
    cards = []
    for site, ip in wanted:
        h = hosts[hosts["ip"].astype(str) == ip] if len(hosts) else hosts
        f = flows
        if dataset and site is not None:
            h = h[h["site"].astype(str) == site] if len(h) else h
            f = flows[flows["site"].astype(str) == site] if len(flows) else flows
        cards.append(host_card(ip, site, h, f, sites))
    if not len(hosts):
        return cards, 0
    keys = hosts[["site", "ip"]] if dataset else hosts[["ip"]]
    total = len(keys.astype(str).drop_duplicates())
    carded = {(s, ip) for s, ip in wanted}
    in_table = (
        {(str(s), str(ip)) for s, ip in zip(hosts["site"], hosts["ip"], strict=True)}
        if dataset
        else {(None, str(ip)) for ip in hosts["ip"]}
    )
    return cards, total - len(carded & in_table)


# --------------------------------------------------------------------------- coverage

COVERAGE_COLUMNS: tuple[dict[str, Any], ...] = (
    {"key": "system", "label": "system", "num": False, "fmt": None},
    {"key": "flows", "label": "connections", "num": True, "fmt": "int"},
    {"key": "explained_share", "label": "explained", "num": True, "fmt": "pct"},
    {"key": "bytes", "label": "bytes (IP)", "num": True, "fmt": "bytes"},
    {"key": "explained_bytes_share", "label": "bytes explained", "num": True, "fmt": "pct"},
    {"key": "site_allowed", "label": "by site allow", "num": True, "fmt": "int"},
    {"key": "flagged", "label": "documented, still a finding", "num": True, "fmt": "int"},
    {"key": "no_signature", "label": "no signature", "num": True, "fmt": "int"},
    {"key": "seen", "label": "entries seen", "num": False, "fmt": None},
)


def coverage_rows(flows: pd.DataFrame, catalog: Catalog) -> list[dict[str, Any]]:
    """Per system with connections (contract order): connections and IP bytes, the
    share a documented signature or a site allow explains (EXPLAINED), those a site allow
    explains, those that matched an entry and are still a finding (FLAGGED), those no
    entry matched, and how many of the system's `active` entries were seen."""
    if not len(flows):
        return []
    system = flows["system"].astype("object")
    verdict = flows["verdict"].astype(str)
    sig = flows["signature_id"].astype("object")
    nbytes = flows["orig_ip_bytes"].astype("int64") + flows["resp_ip_bytes"].astype("int64")
    has_sig = sig.notna()
    explained = has_sig & verdict.isin(EXPLAINED)
    allowed = has_sig & sig.astype(str).str.startswith(ALLOW_PREFIX)
    seen_ids = set(sig[has_sig].astype(str))
    rows = []
    for name in schema.SYSTEMS:
        mask = system == name
        n = int(mask.sum())
        if not n:
            continue
        documented = [s.id for s in catalog.signatures
                      if s.system == name and s.status in EXPECTED_STATUSES]  # fmt: skip
        total_bytes = int(nbytes[mask].sum())
        explained_bytes = int(nbytes[mask & explained].sum())
        rows.append(
            {
                "system": name,
                "flows": n,
                "explained_share": int((mask & explained).sum()) / n,
                "bytes": total_bytes,
                "explained_bytes_share": explained_bytes / total_bytes if total_bytes else None,
                "site_allowed": int((mask & allowed).sum()),
                "flagged": int((mask & has_sig & verdict.isin(FLAGGED)).sum()),
                "no_signature": int((mask & ~has_sig).sum()),
                "seen": f"{sum(1 for i in documented if i in seen_ids)} of {len(documented)}",
            }
        )
    return rows


def coverage(flows: pd.DataFrame, catalog: Catalog) -> tuple[Table, list[dict[str, Any]]]:
    """The coverage table (coverage_rows) and its columns for the template."""
    rows = coverage_rows(flows, catalog)
    return Table(rows, len(rows)), [dict(c) for c in COVERAGE_COLUMNS]


def _ports_text(sig: Signature) -> str:
    ports = sorted(sig.ports)
    if sig.transport in ("icmp", "icmp6"):
        return f"{sig.transport} type {', '.join(map(str, ports))}"
    runs: list[str] = []
    start = prev = ports[0]
    for p in [*ports[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    shown = ", ".join(runs[:PORT_RUN_SHOWN]) + (", ..." if len(runs) > PORT_RUN_SHOWN else "")
    return f"{sig.transport}/{shown}"


def _roles_text(roles: frozenset[str]) -> str:
    return ", ".join(sorted(roles)) if roles else "any host"


def never_seen_rows(flows: pd.DataFrame, catalog: Catalog) -> list[dict[str, Any]]:
    """The documented `active` entries of every system the data shows (by the flows'
    `system`, common infrastructure left out) that no connection matched, in catalog
    order: id, system, and a line of text (ports, who opens it towards whom, name)."""
    if not len(flows):
        return []
    present = set(flows["system"].dropna().astype(str)) - {"common"}
    seen = set(flows["signature_id"].dropna().astype(str))
    rows = []
    for sig in catalog.signatures:
        if sig.system not in present or sig.status not in EXPECTED_STATUSES or sig.id in seen:
            continue
        text = (
            f"{_ports_text(sig)} {_roles_text(sig.orig_roles)} -> "
            f"{_roles_text(sig.resp_roles)}: {sig.name}"
        )
        rows.append({"id": sig.id, "system": sig.system, "text": text})
    return rows


def never_seen(flows: pd.DataFrame, catalog: Catalog) -> Table:
    """never_seen_rows as a Table (all of them: a catalog has a few dozen)."""
    rows = never_seen_rows(flows, catalog)
    return Table(rows, len(rows))
