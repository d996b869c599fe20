"""output: Parquet files match the schema module exactly, carry the contract's metadata,
and appear atomically (a write killed midway leaves nothing under the final name)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analyzer import output, schema
from analyzer.errors import InputError
from analyzer.reader import CaptureStats

CONTRACT_KEYS = {
    "pcapclass.version",
    "pcapclass.schema_version",
    "pcapclass.signatures_sha256",
    "pcapclass.site_sha256",
    "pcapclass.capture",
    "pcapclass.packets",
    "pcapclass.skipped",
    "pcapclass.truncated",
}


def _meta() -> dict[str, str]:
    stats = CaptureStats(
        name="x.pcap",
        size=10,
        sha256="ab" * 32,
        packets=7,
        skipped=Counter({"bad_ipv4_header": 2}),
        truncated=True,
    )
    return output.metadata(output.RunInfo(stats, "cd" * 32, None))


def _empty_tables() -> dict:
    return {name: schema.empty_table(cols) for name, cols in schema.TABLES.items()}


def test_written_schema_equals_schema_module(tmp_path: Path) -> None:
    paths = output.write_tables(tmp_path, _empty_tables(), _meta())
    assert set(paths) == {"flows", "findings", "hosts"}
    for name, path in paths.items():
        assert path == tmp_path / f"{name}.parquet"
        written = pq.read_schema(path).remove_metadata()
        assert written == schema.arrow_schema(schema.TABLES[name])
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_metadata_keys_of_the_contract(tmp_path: Path) -> None:
    paths = output.write_tables(tmp_path, _empty_tables(), _meta())
    meta = output.read_metadata(paths["flows"])
    assert CONTRACT_KEYS <= set(meta)
    assert meta["pcapclass.packets"] == "7"
    assert meta["pcapclass.skipped"] == '{"bad_ipv4_header": 2}'
    assert meta["pcapclass.truncated"] == "true"
    assert meta["pcapclass.capture"] == (
        '{"name": "x.pcap", "sha256": "' + "ab" * 32 + '", "size": 10}'
    )
    assert meta["pcapclass.schema_version"] == schema.SCHEMA_VERSION
    assert meta["pcapclass.site_sha256"] == ""


def test_table_not_matching_schema_is_refused(tmp_path: Path) -> None:
    tables = _empty_tables()
    tables["flows"] = tables["flows"].drop_columns(["uid"])
    with pytest.raises(ValueError, match="flows table does not match the schema module"):
        output.write_tables(tmp_path, tables, _meta())
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_files_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    output.write_tables(tmp_path, _empty_tables(), _meta())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = {"n": 0}
    real = pq.write_table

    def failing(table, where, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # findings: after flows' temporary was complete
            raise OSError(28, "No space left on device")
        return real(table, where, **kw)

    monkeypatch.setattr(output.pq, "write_table", failing)
    with pytest.raises(InputError) as err:
        output.write_tables(tmp_path, _empty_tables(), _meta())
    assert str(err.value) == (
        f"{tmp_path}: cannot write the output files (No space left on device); "
        "the disk is full; free some space or choose another folder with -o"
    )
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # nothing replaced, no temporary left behind


def test_killed_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    """SIGKILL while the flows file is being written: no flows.parquet appears."""
    script = textwrap.dedent(
        f"""
        import sys, time
        import pyarrow.parquet as pq
        from analyzer import output, schema
        real = pq.write_table
        def slow(table, where, **kw):
            where.write(b"PAR1 partial")
            where.flush()
            print("writing", flush=True)
            time.sleep(60)
        output.pq.write_table = slow
        tables = {{n: schema.empty_table(c) for n, c in schema.TABLES.items()}}
        output.write_tables(__import__("pathlib").Path({str(tmp_path)!r}), tables, {{}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.05)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not any(n in names for n in ("flows.parquet", "findings.parquet", "hosts.parquet"))
    assert len(names) == 1 and names[0].startswith(".flows.parquet.")


def test_columns_doc_is_generated_from_the_schema() -> None:
    doc = Path(__file__).resolve().parent.parent / "docs" / "columns.md"
    assert doc.read_text() == schema.columns_doc(), (
        "docs/columns.md is stale: run `python -m analyzer.schema > docs/columns.md`"
    )


def host_frame(**values: object) -> pd.DataFrame:
    """One hosts row: the non-nullable columns filled, the rest None unless given."""
    row: dict[str, object] = {c.name: None for c in schema.HOSTS}
    row.update(ip="10.0.0.1", roles=[], local=True, pkts=1, bytes=60, systems=[])
    row.update(first_ts=pd.Timestamp("2026-01-01", tz="UTC"))
    row.update(last_ts=pd.Timestamp("2026-01-01", tz="UTC"), **values)
    return pd.DataFrame([row])


def test_to_arrow_rejects_values_outside_vocabulary() -> None:
    with pytest.raises(ValueError, match="column role holds 'cmi_box'"):
        schema.to_arrow(host_frame(role="cmi_box"), schema.HOSTS)


def test_to_arrow_accepts_nulls_in_nullable_vocabulary_columns() -> None:
    table = schema.to_arrow(host_frame(), schema.HOSTS)
    assert table.column("role").to_pylist() == [None]
