"""analyzer.plots on the golden samples: titles, axis labels, the bars / cells / texts
each figure holds, against the reviewed golden tables (tests/golden/) and the sample
README; and every function on empty frames."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from report_data import analyze_sample, nightly_dataset

from analyzer import plots, schema
from analyzer.dataset import Dataset, open_dataset
from analyzer.signatures import load_catalog

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"


def golden(name: str) -> list[dict[str, str]]:
    with (GOLDEN / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


MIXED = golden("mixed_site.flows.csv")
MIXED_FINDINGS = golden("mixed_site.findings.csv")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    out = tmp_path_factory.mktemp("demo") / "out"
    return open_dataset(analyze_sample("mixed_site.pcapng", "mixed_site.site.toml", out))


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return open_dataset(nightly_dataset(tmp_path_factory.mktemp("nights")))


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog()


def bars(ax) -> list:  # type: ignore[no-untyped-def]
    return [p for c in ax.containers for p in c.patches]


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_palette_covers_every_value() -> None:
    assert list(plots.SEVERITY_COLORS) == list(schema.SEVERITIES)
    assert list(plots.VERDICT_COLORS) == list(schema.VERDICTS)
    assert len(set(plots.VERDICT_COLORS.values())) == len(schema.VERDICTS)
    assert len(set(plots.SEVERITY_COLORS.values())) == len(schema.SEVERITIES)
    # a verdict of severity high/critical by default wears that severity's colour
    assert plots.VERDICT_COLORS["wrong_direction"] == plots.SEVERITY_COLORS["high"]
    assert plots.VERDICT_COLORS["inbound_to_cmi"] == plots.SEVERITY_COLORS["critical"]


# ---------------------------------------------------------------------- traffic over time


def test_traffic_by_system_counts_every_connection(demo: Dataset) -> None:
    fig = plots.traffic_over_time(demo.flows, by="system", value="connections")
    (ax,) = fig.axes
    # the capture spans 08:00:05-08:09:50 (golden ts): under 120 bins of 10 s
    assert ax.get_title() == "Connections per 10 seconds by system"
    assert ax.get_xlabel() == "time (UTC)" and ax.get_ylabel() == "connections"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["gemos4", "sesam", "cmi", "common", "no system"]
    per_system = Counter(r["system"] or "no system" for r in MIXED)
    for container, label in zip(ax.containers, labels, strict=True):
        assert sum(p.get_height() for p in container.patches) == per_system[label]
    assert sum(p.get_height() for p in bars(ax)) == len(MIXED) == 75


def test_traffic_bytes_by_service(demo: Dataset, tmp_path: Path) -> None:
    fig = plots.traffic_over_time(demo.flows, by="service", value="bytes")
    (ax,) = fig.axes
    assert ax.get_title() == "Bytes per 10 seconds by service"
    assert ax.get_ylabel() == "bytes (IP level, both ways)"
    flows = pq.read_table(demo.path / "flows.parquet").to_pandas()
    total = int(flows["orig_ip_bytes"].sum() + flows["resp_ip_bytes"].sum())
    assert sum(p.get_height() for p in bars(ax)) == total
    services = {r["service"] or "unrecognised" for r in MIXED}
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == plots.MAX_SERIES and labels[-1] == "other"  # 10 services + none
    assert len(services) > plots.MAX_SERIES


def test_traffic_rejects_unknown_grouping(demo: Dataset) -> None:
    with pytest.raises(ValueError, match=r"by='port': use one of system, service"):
        plots.traffic_over_time(demo.flows, by="port")
    with pytest.raises(ValueError, match=r"value='packets': use one of connections, bytes"):
        plots.traffic_over_time(demo.flows, value="packets")


def test_time_bins() -> None:
    t = pd.Timestamp("2026-03-02T08:00:00Z")
    assert plots.time_bin(t, t) == ("1s", "second")
    assert plots.time_bin(t, t + pd.Timedelta(minutes=10)) == ("10s", "10 seconds")
    assert plots.time_bin(t, t + pd.Timedelta(hours=24)) == ("15min", "15 minutes")
    assert plots.time_bin(t, t + pd.Timedelta(days=30)) == ("1D", "day")
    assert plots.time_bin(t, t + pd.Timedelta(days=400)) == ("7D", "week")


# -------------------------------------------------------------------- communication matrix


def test_matrix_rows_columns_cells(demo: Dataset) -> None:
    fig = plots.communication_matrix(demo.flows, demo.hosts)
    ax = fig.axes[0]
    (image,) = ax.get_images()
    origs = {r["orig_h"] for r in MIXED}
    resps = {r["resp_h"] for r in MIXED}
    pairs = {(r["orig_h"], r["resp_h"]) for r in MIXED}
    assert image.get_array().shape == (len(origs), len(resps), 3) == (17, 24, 3)
    assert len(ax.texts) == len(pairs) == 45
    assert ax.get_xlabel() == "responder" and ax.get_ylabel() == "originator"
    assert ax.get_title() == "Communication matrix: worst verdict per originator and responder"
    rows = [t.get_text() for t in ax.get_yticklabels()]
    # grouped by role in the contract's order: gemos_server first, hosts without a role last
    assert rows[0] == "gemos_server: 192.168.10.5 (GEMOS server 1 (ac)"  # name cut to 18
    assert [r.split(":")[0] for r in rows[:3]] == ["gemos_server", "gemos_client", "gemos_client"]
    assert rows[-1].startswith("–: ")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    # the cells' colours: the obsolete 12289 of 192.168.10.77 -> .5 shares its cell with
    # the reserved 12005/12099 (both medium; the contract's precedence puts reserved first)
    assert legend == ["expected", "reserved", "wrong_direction", "inbound_to_cmi", "unmonitored"]
    assert plots.matrix_data(demo.flows, demo.hosts)["cells"][("192.168.10.77", "192.168.10.5")][
        :2
    ] == ("reserved", "medium")


def test_matrix_cell_of_the_internet_scanner(demo: Dataset) -> None:
    # sample_pcaps/README.md: 203.0.113.66 opens the C.M.I.'s 80 and 40001 (rejected)
    data = plots.matrix_data(demo.flows, demo.hosts)
    verdict, severity, ports, n = data["cells"][("203.0.113.66", "192.168.10.40")]
    assert (verdict, severity, ports, n) == ("inbound_to_cmi", "critical", "80, 40001", 2)
    assert data["cells"][("192.168.10.202", "192.168.10.10")][:3] == (
        "wrong_direction", "high", "41796"
    )  # fmt: skip
    fig = plots.communication_matrix(demo.flows, demo.hosts)
    ax = fig.axes[0]
    rows = [ip for ip, _ in data["rows"]]
    cols = [ip for ip, _ in data["cols"]]
    i, j = rows.index("203.0.113.66"), cols.index("192.168.10.40")
    cell = ax.get_images()[0].get_array()[i, j]
    assert to_hex(tuple(cell)) == plots.VERDICT_COLORS["inbound_to_cmi"]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert texts[(i, j)].get_text() == "80, 40001"


def test_matrix_keeps_the_busiest_hosts(demo: Dataset) -> None:
    data = plots.matrix_data(demo.flows, demo.hosts, max_hosts=5)
    assert len(data["rows"]) == 5 and data["rows_total"] == 17
    busiest = Counter(r["orig_h"] for r in MIXED).most_common(1)[0][0]
    assert busiest in [ip for ip, _ in data["rows"]]


# ----------------------------------------------------------------------- findings over time


def test_findings_per_hour_of_one_capture(demo: Dataset) -> None:
    fig = plots.findings_over_time(demo.findings, flows=demo.flows)
    (ax,) = fig.axes
    assert ax.get_title() == "Findings per hour by severity"
    assert ax.get_xlabel() == "hour (UTC)" and ax.get_ylabel() == "findings"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["08:00"]
    # stacked least severe at the bottom; golden: 3 medium, 2 high, 2 critical
    got = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    want = Counter(r["severity"] for r in MIXED_FINDINGS)
    assert got == {s: [float(want[s])] for s in ("medium", "high", "critical")}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["critical", "high", "medium"]


def test_findings_per_day_of_a_dataset(nights: Dataset) -> None:
    fig = plots.findings_over_time(nights.findings, flows=nights.flows)
    (ax,) = fig.axes
    assert ax.get_title() == "Findings per day by severity"
    assert ax.get_xlabel() == "date (UTC)"
    # two nights; only the mixed sample (second night) has findings (golden: cmi 0, gemos 0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2026-03-01", "2026-03-02"]
    totals = [sum(c.patches[k].get_height() for c in ax.containers) for k in range(2)]
    assert totals == [0.0, float(len(MIXED_FINDINGS))]


# ---------------------------------------------------------------- top talkers, unexplained


def test_top_talkers(demo: Dataset) -> None:
    fig = plots.top_talkers(demo.flows, n=10)
    (ax,) = fig.axes
    assert ax.get_title() == "Top 10 talkers by bytes"
    assert ax.get_xlabel() == "bytes (IP level, both directions)"
    patches = bars(ax)
    assert len(patches) == 10
    flows = pq.read_table(demo.path / "flows.parquet").to_pandas()
    per_host: Counter[str] = Counter()
    for r in flows.itertuples():
        per_host[r.orig_h] += r.orig_ip_bytes + r.resp_ip_bytes
        per_host[r.resp_h] += r.orig_ip_bytes + r.resp_ip_bytes
    top = per_host.most_common(10)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [ip for ip, _ in top]
    assert [p.get_width() for p in patches] == [float(b) for _, b in top]
    # the C.M.I. is among them and wears the critical colour (the scanner's connections)
    k = labels.index("192.168.10.40")
    assert to_hex(patches[k].get_facecolor()) == plots.SEVERITY_COLORS["critical"]


def test_unexplained_ports(demo: Dataset) -> None:
    fig = plots.unexplained_ports(demo.flows, n=10)
    (ax,) = fig.axes
    assert ax.get_title() == "Top 10 ports no signature explains"
    unexplained = Counter(f"{r['proto']}/{r['resp_p']}" for r in MIXED if not r["signature_id"])
    assert unexplained == {"tcp/443": 12, "tcp/80": 2, "tcp/40001": 1}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tcp/443", "tcp/80", "tcp/40001"]
    patches = bars(ax)
    assert [p.get_width() for p in patches] == [12.0, 2.0, 1.0]
    colours = [to_hex(p.get_facecolor()) for p in patches]
    sev = plots.SEVERITY_COLORS
    assert colours == [sev["info"], sev["critical"], sev["critical"]]
    table = plots.unexplained_table(demo.flows)
    assert table["responders"].tolist() == [4, 1, 1]  # 192.0.2.40/.50/.51/.60


# ----------------------------------------------------------------------- signature coverage


def test_coverage_table(demo: Dataset, catalog) -> None:  # type: ignore[no-untyped-def]
    table = plots.coverage_table(demo.flows, catalog).set_index("system")
    assert list(table.index) == ["gemos4", "sesam", "cmi", "common", "no system", "all"]
    explained = sum(1 for r in MIXED if r["signature_id"])
    assert table.loc["all", "connections"] == 75
    assert table.loc["all", "explained"] == explained == 60
    assert table.loc["all", "explained_share"] == pytest.approx(60 / 75)
    cmi = [r for r in MIXED if r["system"] == "cmi"]
    assert table.loc["cmi", "connections"] == len(cmi) == 11
    assert table.loc["cmi", "explained"] == sum(1 for r in cmi if r["signature_id"]) == 8
    # the mixed sample has no C.M.I. mail session and no CoE (README: those are in
    # cmi_site); its ISENet search broadcast (README: 41797 -> 255.255.255.255) is seen
    assert table.loc["cmi", "never_seen"] == [
        "cmi.ta-mail-40002", "cmi.coe-v1-5441", "cmi.coe-v2-5442"
    ]  # fmt: skip
    assert table.loc["sesam", "never_seen"] == []
    assert table.loc["common", "never_seen"] is None
    active_cmi = [s for s in catalog.signatures if s.system == "cmi" and s.status == "active"]
    assert table.loc["cmi", "documented"] == len(active_cmi)
    assert table.loc["cmi", "seen"] == len(active_cmi) - 3


def test_never_seen_leaves_out_absent_systems(tmp_path: Path, catalog) -> None:  # type: ignore[no-untyped-def]
    ds = open_dataset(analyze_sample("cmi_site.pcap.gz", "cmi_site.site.toml", tmp_path / "o"))
    unseen = plots.never_seen(ds.flows, catalog)
    # a heating-only site: no GEMOS or Sesam entry is "missing"; every C.M.I. entry shows
    assert unseen.empty
    assert plots.systems_present(ds.flows) == ["cmi"]


def test_signature_coverage_figure(demo: Dataset, catalog) -> None:  # type: ignore[no-untyped-def]
    fig = plots.signature_coverage(demo.flows, catalog)
    left, right = fig.axes
    assert left.get_title() == "Explained by a signature"
    assert right.get_title() == "Documented entries seen"
    # top to bottom, the contract's system order, then the total
    assert [t.get_text() for t in left.get_yticklabels()] == [
        "gemos4", "sesam", "cmi", "common", "no system", "all"
    ]  # fmt: skip
    assert [t.get_position()[1] for t in left.get_yticklabels()] == [5, 4, 3, 2, 1, 0]
    assert len(left.containers) == 2 and len(bars(left)) == 12
    conns = [p.get_width() for p in left.containers[0].patches]
    assert conns[-1] == pytest.approx(100 * 60 / 75)
    assert [t.get_text() for t in right.get_yticklabels()] == ["gemos4", "sesam", "cmi"]
    notes = {t.get_text() for t in right.texts}
    assert {"3 never seen", "0 never seen"} <= notes and "1 never seen" not in notes


# -------------------------------------------------------------------------------- host card


def test_host_card_of_the_cmi(demo: Dataset) -> None:
    card = plots.host_card_data(demo.hosts, demo.flows, "192.168.10.40")
    assert card["name"] == "C.M.I. Heizung" and card["roles"] == ["cmi"]
    assert card["role_source"] == "site"
    assert card["vendor"] == "Technische Alternative GmbH"
    as_resp = Counter(
        f"{r['proto']}/{r['resp_p']}" for r in MIXED if r["resp_h"] == "192.168.10.40"
    )
    as_orig = Counter(
        f"{r['proto']}/{r['resp_p']}" for r in MIXED if r["orig_h"] == "192.168.10.40"
    )
    assert card["served"] == dict(as_resp) == {"tcp/80": 3, "tcp/502": 1, "tcp/40001": 1}
    assert card["used"] == dict(as_orig)
    involved = [r for r in MIXED if "192.168.10.40" in (r["orig_h"], r["resp_h"])]
    assert card["verdicts"] == dict(Counter(r["verdict"] for r in involved))
    assert card["verdicts"] == {"expected": 8, "inbound_to_cmi": 3}
    assert card["verdict_severity"] == {"expected": "info", "inbound_to_cmi": "critical"}
    assert card["worst"] == "critical" and card["local"] is True

    fig = plots.host_card(demo.hosts, demo.flows, "192.168.10.40")
    info, served, used = fig.axes
    assert info.get_title() == "192.168.10.40 (C.M.I. Heizung)"
    assert (served.get_title(), used.get_title()) == ("Serves", "Uses")
    assert [t.get_text() for t in served.get_yticklabels()] == ["tcp/80", "tcp/502", "tcp/40001"]
    assert [p.get_width() for p in bars(served)] == [3.0, 1.0, 1.0]
    texts = [t.get_text() for t in info.texts]
    assert "expected 8" in texts and "inbound_to_cmi 3" in texts
    assert "Technische Alternative GmbH  3c:cd:5a:02:44:90" in texts


def test_host_card_of_a_dataset_site(nights: Dataset) -> None:
    card = plots.host_card_data(nights.hosts, nights.flows, "192.168.10.40",
                                site="Rathaus Nord (demo)")  # fmt: skip
    assert card["site"] == "Rathaus Nord (demo)" and card["name"] == "C.M.I. Heizung"
    assert card["verdicts"] == {"expected": 8, "inbound_to_cmi": 3}


def test_host_card_of_an_unknown_host(demo: Dataset) -> None:
    fig = plots.host_card(demo.hosts, demo.flows, "10.99.99.99")
    info = fig.axes[0]
    assert [t.get_text() for t in info.texts] == ["not seen in this data"]
    assert plots.host_card_data(demo.hosts, demo.flows, "10.99.99.99")["verdicts"] == {}


# ------------------------------------------------------------------------- empty and state


def test_every_plot_on_empty_frames(demo: Dataset, catalog) -> None:  # type: ignore[no-untyped-def]
    flows, findings, hosts = demo.flows.iloc[:0], demo.findings.iloc[:0], demo.hosts.iloc[:0]
    figures = {
        "traffic": plots.traffic_over_time(flows),
        "bytes": plots.traffic_over_time(flows, by="service", value="bytes"),
        "matrix": plots.communication_matrix(flows, hosts),
        "findings": plots.findings_over_time(findings, flows=flows),
        "talkers": plots.top_talkers(flows),
        "ports": plots.unexplained_ports(flows),
        "coverage": plots.signature_coverage(flows, catalog),
        "card": plots.host_card(hosts, flows, "192.168.10.40"),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        assert all(ax.get_title() for ax in fig.axes), name
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts and all(texts), name
        assert png(fig).startswith(b"\x89PNG"), name
    assert [t.get_text() for t in figures["traffic"].axes[0].texts] == ["no connections"]
    assert [t.get_text() for t in figures["findings"].axes[0].texts] == ["no findings"]
    assert plots.coverage_table(flows, catalog).empty
    assert list(plots.coverage_table(flows, catalog).columns) == list(plots.COVERAGE_COLUMNS)


def test_no_findings_but_connections(demo: Dataset) -> None:
    fig = plots.findings_over_time(demo.findings.iloc[:0], flows=demo.flows)
    (ax,) = fig.axes
    assert ax.get_title() == "Findings per hour by severity: none"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["08:00"]


def test_plots_leave_no_pyplot_figures(demo: Dataset) -> None:
    plt.close("all")
    plots.traffic_over_time(demo.flows)
    plots.communication_matrix(demo.flows, demo.hosts)
    assert plt.get_fignums() == []
