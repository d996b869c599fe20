"""The report's signature coverage table and "documented, never seen" list, on the
samples, with the expectations of sample_pcaps/README.md (what each capture shows)
and the catalog's own entries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from report_data import analyze_sample

from analyzer import schema
from analyzer.dataset import empty_frame, open_dataset
from analyzer.report import sections
from analyzer.signatures import Catalog, load_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def flows_of(tmp: Path, capture: str, site: str) -> pd.DataFrame:
    """The flows as the report gets them (analyzer.dataset: categoricals, UTC)."""
    return open_dataset(analyze_sample(capture, site, tmp / capture)).flows


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return flows_of(tmp_path_factory.mktemp("mixed"), "mixed_site.pcapng", "mixed_site.site.toml")


@pytest.fixture(scope="module")
def cmi(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return flows_of(tmp_path_factory.mktemp("cmi"), "cmi_site.pcap.gz", "cmi_site.site.toml")


def active(catalog: Catalog, system: str) -> list[str]:
    return [s.id for s in catalog.signatures if s.system == system and s.status == "active"]


def test_a_cmi_that_shows_every_documented_service(cmi: pd.DataFrame, catalog: Catalog) -> None:
    # README: the C.M.I. boots and runs DNS, NTP, 40001/40003/40002, the update check,
    # Modbus and CoE V1/V2; every connection expected, no finding
    table, columns = sections.coverage(cmi, catalog)
    rows = {r["system"]: r for r in table.rows}
    assert list(rows) == ["cmi", "all"]
    row = rows["cmi"]
    assert row["explained_share"] == 1.0 and row["explained_bytes_share"] == 1.0
    assert (row["site_allowed"], row["flagged"], row["no_signature"]) == (0, 0, 0)
    n = len(active(catalog, "cmi"))
    assert row["entries_seen"] == f"{n} of {n}"
    assert row["connections"] == rows["all"]["connections"] == len(cmi)
    assert rows["all"]["entries_seen"] is None
    assert [c["key"] for c in columns][0] == "system"
    assert {c["key"] for c in columns} <= set(row)
    assert sections.never_seen(cmi, catalog).rows == []


def test_the_demo_counts_its_problems_per_system(mixed: pd.DataFrame, catalog: Catalog) -> None:
    # README problems table: three inbound_to_cmi (no signature), the technician's
    # allowed C.M.I. page, two reserved and one obsolete GEMOS port, the ISENet's two
    # refused connections to SesComm (wrong_direction); the office traffic without a
    # monitored system
    rows = {r["system"]: r for r in sections.coverage(mixed, catalog)[0].rows}
    assert list(rows) == ["gemos4", "sesam", "cmi", "common", "no system", "all"]
    assert (rows["cmi"]["no_signature"], rows["cmi"]["site_allowed"]) == (3, 1)
    assert (rows["gemos4"]["flagged"], rows["gemos4"]["no_signature"]) == (3, 0)
    assert (rows["sesam"]["flagged"], rows["sesam"]["no_signature"]) == (2, 0)
    assert rows["all"]["flagged"] == 5 and rows["all"]["site_allowed"] == 1
    for name in ("gemos4", "sesam", "cmi"):
        r = rows[name]
        n = int((mixed["system"] == name).sum())
        assert r["connections"] == n
        assert r["explained_share"] == pytest.approx((n - r["no_signature"]) / n)
    assert rows["common"]["explained_share"] == 1.0  # DNS, DHCP, mDNS, ...: all documented
    assert rows["no system"]["explained_share"] == 0.0


def test_the_demo_never_shows_cmi_mail_and_coe(mixed: pd.DataFrame, catalog: Catalog) -> None:
    # README: the demo's C.M.I. has 40001, 40003, the update check, NTP and Modbus: no
    # 40002 mail session and no CoE
    rows = sections.never_seen(mixed, catalog).rows
    cmi = [r for r in rows if r["system"] == "cmi"]
    assert [r["id"] for r in cmi] == ["cmi.ta-mail-40002", "cmi.coe-v1-5441", "cmi.coe-v2-5442"]
    assert cmi[0]["text"] == "tcp/40002 cmi -> any host: TA e-mail service (temporary connection)"
    # every Sesam entry is seen (the search broadcast too: README, sesam part)
    assert {r["system"] for r in rows} == {"gemos4", "cmi"}  # never common
    seen = set(mixed["signature_id"].dropna())
    assert not seen & {r["id"] for r in rows}
    assert all(catalog.get(r["id"]).status == "active" for r in rows)


def test_only_systems_the_data_shows(cmi: pd.DataFrame, catalog: Catalog) -> None:
    no_mail = cmi[cmi["signature_id"] != "cmi.ta-mail-40002"]
    assert [r["id"] for r in sections.never_seen(no_mail, catalog).rows] == ["cmi.ta-mail-40002"]


def test_empty_flows(catalog: Catalog) -> None:
    empty = empty_frame(schema.FLOWS)
    table, columns = sections.coverage(empty, catalog)
    assert (table.rows, table.total) == ([], 0) and columns
    assert sections.never_seen(empty, catalog).rows == []
