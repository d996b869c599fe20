"""analyzer.dataset.open_dataset: a capture's output folder and a two-night batch dataset
read back with the contract's dtypes, the rows the files hold, new pairs, and errors."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from report_data import analyze_sample, nightly_dataset

import analyzer
from analyzer import schema
from analyzer.dataset import open_dataset
from analyzer.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"


def golden_rows(name: str) -> int:
    """Rows of a golden CSV (reviewed output of a sample), header excluded."""
    return len((GOLDEN / name).read_text().splitlines()) - 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    return analyze_sample("mixed_site.pcapng", "mixed_site.site.toml", out)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return nightly_dataset(tmp_path_factory.mktemp("nights"))


def check_dtypes(df: pd.DataFrame, columns: tuple[schema.Column, ...]) -> None:
    for col in columns:
        dtype = df[col.name].dtype
        if col.type == schema.TS:
            assert isinstance(dtype, pd.DatetimeTZDtype), col.name
            assert str(dtype.tz) == "UTC", col.name
        if col.name in ("verdict", "severity", "system"):
            assert isinstance(dtype, pd.CategoricalDtype), col.name
            assert list(dtype.categories) == list(col.values or ()), col.name
    if "severity" in df:
        assert df["severity"].dtype.ordered
        assert list(df["severity"].dtype.categories) == [
            "info", "low", "medium", "high", "critical"
        ]  # fmt: skip


# --------------------------------------------------------------------------- capture folder


def test_capture_folder_reads_every_row_with_contract_dtypes(demo: Path) -> None:
    ds = open_dataset(demo)
    assert ds.kind == "capture"
    assert ds.path == demo
    assert ds.manifest is None and ds.new_pairs is None
    for name, cols in schema.TABLES.items():
        df = getattr(ds, name)
        assert len(df) == pq.read_metadata(demo / f"{name}.parquet").num_rows
        assert list(df.columns) == schema.column_names(cols)
        check_dtypes(df, cols)
    assert len(ds.flows) == golden_rows("mixed_site.flows.csv") == 75
    assert len(ds.findings) == golden_rows("mixed_site.findings.csv") == 7
    assert ds.flows["vlan"].dtype == "Int32"


def test_capture_folder_metadata_is_the_files(demo: Path) -> None:
    ds = open_dataset(demo)
    assert list(ds.metadata) == ["mixed_site.pcapng"]
    meta = ds.metadata["mixed_site.pcapng"]
    assert meta["pcapclass.packets"] == "1399"  # tests/test_report.py: health row 1,399
    assert meta["pcapclass.schema_version"] == schema.SCHEMA_VERSION
    assert "pcapclass.health" in meta and "pcapclass.table" not in meta


def test_severity_compares_in_contract_order(demo: Path) -> None:
    findings = open_dataset(demo).findings
    # sample_pcaps/README.md: 2 critical, 2 high, 3 medium (tests/test_report.py)
    assert sorted(findings[findings["severity"] >= "high"]["severity"].astype(str)) == [
        "critical", "critical", "high", "high"
    ]  # fmt: skip
    ordered = findings.sort_values("severity", ascending=False)["severity"].astype(str).tolist()
    assert ordered == ["critical"] * 2 + ["high"] * 2 + ["medium"] * 3


def test_uids_join_findings_to_flows(demo: Path) -> None:
    ds = open_dataset(demo)
    for finding in ds.findings.itertuples():
        joined = ds.flows[ds.flows["uid"].isin(list(finding.uids))]
        assert len(joined) == finding.flows
        assert set(joined["verdict"].astype(str)) == {finding.verdict}


def test_package_level_open_dataset_is_lazy(demo: Path) -> None:
    assert analyzer.open_dataset(demo).kind == "capture"
    heavy = "('pandas', 'matplotlib', 'pyarrow')"
    code = f"import sys, analyzer; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


def test_empty_capture_gives_typed_empty_frames(tmp_path: Path) -> None:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # no record
    (tmp_path / "empty.pcap").write_bytes(header)
    analyzer.pipeline.analyze(tmp_path / "empty.pcap", outdir=tmp_path / "out")
    ds = open_dataset(tmp_path / "out")
    for name, cols in schema.TABLES.items():
        df = getattr(ds, name)
        assert len(df) == 0
        assert list(df.columns) == schema.column_names(cols)
        check_dtypes(df, cols)
    assert list(ds.metadata) == ["empty.pcap"]


# --------------------------------------------------------------------------- batch dataset


def test_dataset_reads_every_part_file(nights: Path) -> None:
    ds = open_dataset(nights)
    assert ds.kind == "dataset"
    for name, cols in schema.TABLES.items():
        df = getattr(ds, name)
        parts = list((nights / name).rglob("part-*.parquet"))
        assert len(df) == sum(pq.read_metadata(p).num_rows for p in parts)
        assert list(df.columns) == [*schema.column_names(cols), "site", "date"]
        check_dtypes(df, cols)
    per = ds.flows.groupby(["site", "date"]).size().to_dict()
    gemos = golden_rows("gemos_site.flows.csv")
    assert per[("Leitstelle Gefahrenmanagement", "2026-03-01")] == gemos  # the same capture,
    assert per[("Leitstelle Gefahrenmanagement", "2026-03-02")] == gemos  # a day earlier
    assert per[("Heizzentrale Schulzentrum", "2026-03-02")] == golden_rows("cmi_site.flows.csv")
    assert per[("Rathaus Nord (demo)", "2026-03-02")] == golden_rows("mixed_site.flows.csv")
    assert ("Rathaus Nord (demo)", "2026-03-01") not in per


def test_dataset_manifest_and_metadata(nights: Path) -> None:
    ds = open_dataset(nights)
    assert ds.manifest is not None
    assert list(ds.manifest.columns) == schema.column_names(schema.MANIFEST)
    assert len(ds.manifest) == 5 and set(ds.manifest["status"]) == {"done"}
    assert sorted(ds.metadata) == [
        "cmi_site.pcap.gz", "gemos_site.vlan.pcap", "mixed_site.pcapng",
        "night-before-cmi_site.pcap", "night-before-gemos_site.vlan.pcap",
    ]  # fmt: skip
    packets = {
        Path(p).name: n for p, n in zip(ds.manifest["path"], ds.manifest["packets"], strict=True)
    }
    assert {k: int(v["pcapclass.packets"]) for k, v in ds.metadata.items()} == packets
    assert packets["night-before-cmi_site.pcap"] == 40  # report_data.CMI_FIRST_NIGHT


def test_dataset_new_pairs_only_of_the_newest_night(nights: Path) -> None:
    pairs = open_dataset(nights).new_pairs
    assert pairs is not None
    by_site = pairs.groupby("site").size().to_dict()
    # GEMOS: the same capture both nights, nothing new; C.M.I.: the first 40 records the
    # night before, so the only pair new on the newest night is what came later
    assert "Leitstelle Gefahrenmanagement" not in by_site
    cmi = pairs[pairs["site"] == "Heizzentrale Schulzentrum"]
    assert [tuple(r) for r in cmi[["date", "orig", "resp_h", "proto", "resp_p"]].to_numpy()] == [
        ("2026-03-02", "cmi", "198.51.100.21", "tcp", 40002)
    ]
    assert cmi["known_verdicts"].map(list).tolist() == [[]]
    assert set(pairs["date"]) == {"2026-03-02"}
    assert len(pairs) == len(analyzer.baseline(nights))
    assert isinstance(pairs["severity"].dtype, pd.CategoricalDtype)


# ---------------------------------------------------------------------------------- errors


def test_missing_path_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        open_dataset(tmp_path / "nothing-here")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'nothing-here'}: no such folder; give a capture's")
    assert "pcapclass batch ... --out DATASET" in msg and "\n" not in msg


def test_a_folder_that_is_neither(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r": neither a capture's output folder nor a batch"):
        open_dataset(tmp_path)
    with pytest.raises(InputError, match=r"notes.txt: is a file, not a folder; give"):
        open_dataset(tmp_path / "notes.txt")


def test_a_capture_folder_missing_a_table(demo: Path, tmp_path: Path) -> None:
    (tmp_path / "flows.parquet").write_bytes((demo / "flows.parquet").read_bytes())
    with pytest.raises(InputError) as err:
        open_dataset(tmp_path)
    assert str(err.value) == (
        f"{tmp_path}: findings.parquet, hosts.parquet missing; analyse the capture again "
        "into this folder (pcapclass CAPTURE -o DIR writes all three files)"
    )


def test_a_damaged_table_names_the_file(demo: Path, tmp_path: Path) -> None:
    for name in ("flows", "findings", "hosts"):
        (tmp_path / f"{name}.parquet").write_bytes((demo / f"{name}.parquet").read_bytes())
    (tmp_path / "hosts.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=rf"^{tmp_path / 'hosts.parquet'}: not a readable Parquet"):
        open_dataset(tmp_path)


def test_a_foreign_manifest_is_an_input_error(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "manifest.sqlite")
    db.execute("CREATE TABLE other (x)")
    db.close()
    with pytest.raises(InputError, match=r"manifest.sqlite: cannot be read \("):
        open_dataset(tmp_path)


# ------------------------------------------------------------- parts of several versions

SCAN_COLUMNS = ["ports", "n_ports", "hosts", "n_hosts"]  # added to the findings later


def _as_older_version(part: Path) -> None:
    """Rewrite a findings part file as a version before the scan columns wrote it."""
    table = pq.read_table(part)
    meta = table.schema.metadata
    table = table.drop_columns(SCAN_COLUMNS).replace_schema_metadata(meta)
    pq.write_table(table, part)


@pytest.fixture(scope="module")
def mixed(nights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-night dataset with the first findings part in path order (no rows) and the
    demo's (7 rows) written as the older version; the others are current."""
    root = tmp_path_factory.mktemp("mixed") / "dataset"
    shutil.copytree(nights, root)
    parts = sorted((root / "findings").rglob("part-*.parquet"))
    demo_part = next(p for p in parts if "Rathaus" in str(p))
    for part in {parts[0], demo_part}:
        _as_older_version(part)
    assert SCAN_COLUMNS[0] not in pq.read_schema(parts[0]).names
    return root


def test_parts_of_an_older_version_read_with_every_column(nights: Path, mixed: Path) -> None:
    ds = open_dataset(mixed)
    current = open_dataset(nights).findings
    assert list(ds.findings.columns) == [*schema.column_names(schema.FINDINGS), "site", "date"]
    check_dtypes(ds.findings, schema.FINDINGS)
    assert len(ds.findings) == len(current) == 7  # the demo's findings (mixed_site golden)
    assert ds.findings["n_ports"].isna().all() and ds.findings["ports"].isna().all()
    same = [c for c in current.columns if c not in SCAN_COLUMNS]
    pd.testing.assert_frame_equal(ds.findings[same], current[same])


def test_plain_readers_of_a_mixed_dataset_with_the_documented_schema(mixed: Path) -> None:
    """docs/contract.md: pandas with the current schema, DuckDB with union_by_name."""
    full = schema.arrow_schema((*schema.FINDINGS, *schema.PARTITIONS))
    df = pd.read_parquet(mixed / "findings", schema=full)
    assert list(df.columns) == [c.name for c in (*schema.FINDINGS, *schema.PARTITIONS)]
    assert len(df) == 7 and set(df["site"]) == {"Rathaus Nord (demo)"}
    # without the schema, pandas takes the first file's columns: the documented pitfall
    assert "n_ports" not in pd.read_parquet(mixed / "findings").columns
    duckdb = pytest.importorskip("duckdb")
    glob = f"{mixed}/findings/*/*/*.parquet"
    rows = duckdb.sql(
        f"SELECT count(*), count(n_ports) FROM read_parquet('{glob}', "
        "hive_partitioning=true, union_by_name=true)"
    ).fetchall()
    assert rows == [(7, 0)]
