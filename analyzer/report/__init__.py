"""The HTML report: one self-contained page per capture output folder or batch dataset.

    write_report("pcapclass-out/demo")                  # -> pcapclass-out/demo/report.html
    write_report("/srv/pcapclass-ds", "nightly.html")   # a batch dataset
    html = render_report(open_dataset("pcapclass-out/demo"))   # the text, e.g. for a notebook

Modules: content (what the page says, as data: headline, findings, health, ...),
render (Jinja2 templates in templates/, autoescaped; figures as base64 PNG). The plots
and host cards come from analyzer.plots, the tables from analyzer.dataset. `pcapclass
report` and `pcapclass CAPTURE --report` call write_report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

DEFAULT_LIMIT = 50  # findings and new-pair rows shown (the CLI's --limit default)
REPORT_NAME = "report.html"  # the default file name, inside the folder reported on

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..signatures import Catalog
    from .content import Content


def write_report(
    source: str | Path | Dataset,
    out_html: str | Path | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    title: str | None = None,
    site_name: str | None = None,
    catalog: Catalog | None = None,
) -> Path:
    """Write the report of `source` (a capture's output folder, a batch dataset, or an
    opened Dataset) to `out_html` (default: SOURCE/report.html), atomically: a temporary
    name in the same folder, then a rename; mode 0666 minus the umask. Returns the path.
    Raises InputError for a source that is neither, or a file that cannot be written."""
    from ..output import write_file_atomic

    ds = _open(source)
    out = Path(out_html) if out_html is not None else ds.path / REPORT_NAME
    if out.is_dir():
        out = out / REPORT_NAME
    html = render_report(ds, limit=limit, title=title, site_name=site_name, catalog=catalog)
    return write_file_atomic(out, html.encode("utf-8"))


def render_report(
    source: str | Path | Dataset,
    *,
    limit: int = DEFAULT_LIMIT,
    title: str | None = None,
    site_name: str | None = None,
    catalog: Catalog | None = None,
) -> str:
    """The report's HTML text (what write_report writes)."""
    from . import render

    ds = _open(source)
    content, context = build(ds, limit=limit, title=title, site_name=site_name, catalog=catalog)
    return render.render(content, context=context)


def _open(source: str | Path | Dataset) -> Dataset:
    from ..dataset import open_dataset

    if isinstance(source, (str, Path)):
        return open_dataset(source)
    return source


def build(
    ds: Dataset,
    *,
    limit: int = DEFAULT_LIMIT,
    title: str | None = None,
    site_name: str | None = None,
    catalog: Catalog | None = None,
) -> tuple[Content, dict[str, Any]]:
    """The page's content and the template's other inputs (plots, colours, columns)."""
    from .. import plots
    from ..signatures import load_catalog
    from . import content as ct
    from .sections import coverage, host_cards, never_seen, plot_list

    if catalog is None:
        catalog = load_catalog()
    dataset = ds.kind == "dataset"
    flows, findings, hosts = ds.flows, ds.findings, ds.hosts
    new_pairs = ds.new_pairs if dataset else None
    if title is None and site_name:
        captures = sorted(str(c) for c in (ds.metadata or {}))
        title = f"{site_name}: {captures[0]}" if len(captures) == 1 else site_name
    scope = ct.scope(ds, title, flows, hosts)
    table = ct.finding_table(findings, hosts, limit=limit, sites=scope.sites, dataset=dataset)
    cards, hosts_more = host_cards(ds, table, scope.sites)
    cov_table, cov_columns = coverage(flows, catalog)
    content = ct.Content(
        scope=scope,
        headline=ct.headline(
            flows, findings, hosts, new_pairs, dataset=dataset, sites=scope.sites
        ),
        verdicts=ct.verdict_rows(flows),
        findings=table,
        health=ct.health(ds.metadata or {}),
        coverage=cov_table,
        new_pairs=ct.pair_table(new_pairs, limit=limit, first_sites=ct.first_night_sites(flows))
        if new_pairs is not None
        else None,
        sites=ct.site_rows(flows, findings, ds.manifest, new_pairs) if dataset else None,
        hosts=cards,
        generated=ct.now_utc(),
    )
    findings_path = ds.path / ("findings" if dataset else "findings.parquet")
    context = {
        "plots": plot_list(ds, catalog),
        "severity_colours": dict(plots.SEVERITY_COLORS),
        "verdict_colours": dict(plots.VERDICT_COLORS),
        "text_colours": {
            colour: plots.text_color(colour)
            for colour in (*plots.SEVERITY_COLORS.values(), *plots.VERDICT_COLORS.values())
        },
        "coverage_columns": cov_columns,
        "never_seen": never_seen(flows, catalog),
        "finding_severities": [s for s in ct.SEVERITY_ORDER if s != "info"],
        "findings_path": str(findings_path),
        "hosts_more": hosts_more,
        "card_anchors": {card["anchor"] for card in cards},
        "catalog_sha": catalog.sha256,
    }
    return content, context


__all__ = ["DEFAULT_LIMIT", "REPORT_NAME", "build", "render_report", "write_report"]
