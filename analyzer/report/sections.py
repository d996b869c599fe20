"""The report's computed sections, as data for the templates: the plots (figures from
analyzer.plots embedded as PNG), the host cards, signature coverage per system and the
documented entries never seen. content.py holds the rest (headline, findings, health)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .content import Table, anchor, card_hosts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..dataset import Dataset
    from ..signatures import Catalog

# "Explained" is analyzer.plots': a signature (catalog entry or site allow) matched.
# Of those, the verdicts that are still a finding: an obsolete or reserved entry, or a
# documented port opened the wrong way round.
FLAGGED = ("obsolete", "reserved", "wrong_direction")
ALLOW_PREFIX = "site:allow:"  # signature_id of a connection a site [[allow]] explains
CARD_EXTRA = 30  # host cards beyond the hosts of the shown findings (content.card_hosts)


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
    from .. import plots

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
            "Share of each system's connections and bytes a signature explains, and how many "
            "of each system's documented entries were seen (the list is below).",
            lambda: plots.signature_coverage(flows, catalog),
            wide=True,
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


def host_cards(
    ds: Dataset, table: Table, sites: Sequence[str], *, extra: int = CARD_EXTRA
) -> tuple[list[dict[str, Any]], int]:
    """The host cards (analyzer.plots.host_card_data and the card's anchor) of every
    host of a shown finding, then of hosts with a role (content.card_hosts), and how many
    hosts of the hosts table get no card."""
    from .. import plots

    dataset = ds.kind == "dataset"
    hosts, flows = ds.hosts, ds.flows
    wanted = card_hosts(table, hosts, dataset=dataset, extra=extra)
    cards = [
        {**plots.host_card_data(hosts, flows, ip, site=site), "anchor": anchor(ip, site, sites)}
        for site, ip in wanted
    ]
    if not len(hosts):
        return cards, 0
    in_table = (
        {(str(s), str(ip)) for s, ip in zip(hosts["site"], hosts["ip"], strict=True)}
        if dataset
        else {(None, str(ip)) for ip in hosts["ip"]}
    )
    return cards, len(in_table - set(wanted))


# --------------------------------------------------------------------------- coverage

COVERAGE_COLUMNS: tuple[dict[str, Any], ...] = (
    {"key": "system", "label": "system", "num": False, "fmt": None},
    {"key": "connections", "label": "connections", "num": True, "fmt": "int"},
    {"key": "explained_share", "label": "explained", "num": True, "fmt": "pct"},
    {"key": "bytes", "label": "bytes (IP)", "num": True, "fmt": "bytes"},
    {"key": "explained_bytes_share", "label": "bytes explained", "num": True, "fmt": "pct"},
    {"key": "flagged", "label": "explained, still a finding", "num": True, "fmt": "int"},
    {"key": "site_allowed", "label": "by a site allow", "num": True, "fmt": "int"},
    {"key": "no_signature", "label": "no signature", "num": True, "fmt": "int"},
    {"key": "entries_seen", "label": "documented entries seen", "num": False, "fmt": None},
)


def _breakdown(flows: pd.DataFrame, system: str) -> dict[str, int]:
    """Of one coverage row's connections (a system, `no system` or `all`): those a
    documented entry matched that are still a finding (FLAGGED), those a site allow
    explains, those no signature matched."""
    from .. import plots

    names = flows["system"].astype("object").fillna(plots.NO_SYSTEM)
    part = flows if system == "all" else flows[(names == system).to_numpy()]
    sig = part["signature_id"].astype("object")
    has_sig = sig.notna()
    return {
        "flagged": int((has_sig & part["verdict"].astype(str).isin(FLAGGED)).sum()),
        "site_allowed": int(sig[has_sig].astype(str).str.startswith(ALLOW_PREFIX).sum()),
        "no_signature": int((~has_sig).sum()),
    }


def coverage(flows: pd.DataFrame, catalog: Catalog) -> tuple[Table, list[dict[str, Any]]]:
    """The coverage table of the page: analyzer.plots.coverage_table (the figure's
    numbers: connections and bytes a signature explains per system) with, per row, the
    explained connections that are still a finding, those a site allow explains, those
    without a signature, and `seen of documented` entries; and its columns."""
    from .. import plots

    rows = []
    for r in plots.coverage_table(flows, catalog).to_dict("records"):
        documented, seen = r["documented"], r["seen"]
        known = documented is not None and not pd.isna(documented)
        rows.append(
            {
                **r,
                **_breakdown(flows, str(r["system"])),
                "entries_seen": f"{int(seen)} of {int(documented)}" if known else None,
            }
        )
    return Table(rows, len(rows)), [dict(c) for c in COVERAGE_COLUMNS]


def _roles_text(roles: frozenset[str]) -> str:
    return ", ".join(sorted(roles)) if roles else "any host"


def never_seen(flows: pd.DataFrame, catalog: Catalog) -> Table:
    """analyzer.plots.never_seen (the documented active entries of the systems the data
    shows that no connection matched), each as id, system and one line of text: ports,
    who opens it towards whom, name."""
    from .. import plots

    rows = []
    for r in plots.never_seen(flows, catalog).to_dict("records"):
        sig = catalog.get(str(r["id"]))
        text = (
            f"{r['transport']}/{r['ports']} {_roles_text(sig.orig_roles)} -> "
            f"{_roles_text(sig.resp_roles)}: {r['name']}"
        )
        rows.append({"id": r["id"], "system": r["system"], "text": text})
    return Table(rows, len(rows))
