"""Open pcapclass output for reading: one capture's output folder or a batch dataset,
as pandas frames with the contract's dtypes.

    ds = open_dataset("pcapclass-out/demo")     # flows/findings/hosts.parquet
    ds = open_dataset("/srv/pcapclass-ds")      # pcapclass batch --out (manifest.sqlite)
    ds.flows[ds.flows["severity"] >= "high"]

Dtypes (derived from analyzer.schema, never spelled here): timestamps tz-aware UTC;
verdict, severity and system are categoricals with the contract's values in the
contract's order (verdict and severity ordered, so `>=` and sorting follow it); nullable
integers (vlan) are pandas' nullable Int32; everything else as pyarrow converts it.
A batch dataset's frames gain the partition columns `site` and `date` (strings).

What is neither a capture folder nor a dataset is InputError: one line naming the path
and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from . import schema
from .errors import InputError

KINDS = ("capture", "dataset")
MANIFEST_NAME = "manifest.sqlite"  # analyzer.batch.manifest.FILE_NAME
# categorical columns: name -> ordered (severity and verdict compare in contract order)
CATEGORICAL: dict[str, bool] = {"verdict": True, "severity": True, "system": False}
_FIX = (
    "give a capture's output folder (pcapclass CAPTURE -o DIR: flows.parquet, "
    "findings.parquet, hosts.parquet) or a batch dataset (pcapclass batch ... --out DATASET)"
)


@dataclass(frozen=True)
class Dataset:
    """pcapclass output opened for reading (see the module docstring for the dtypes)."""

    kind: str  # "capture" (one output folder) or "dataset" (a batch dataset)
    path: Path  # as given
    flows: pd.DataFrame
    findings: pd.DataFrame
    hosts: pd.DataFrame
    manifest: pd.DataFrame | None  # dataset: manifest.sqlite's captures; capture: None
    metadata: dict[str, dict[str, str]]  # capture name -> its pcapclass.* file metadata
    new_pairs: pd.DataFrame | None  # dataset: each site's newest date's new pairs; else None


def open_dataset(path: str | Path) -> Dataset:
    """Open a capture's output folder or a batch dataset (see the module docstring).
    Raises InputError naming the path and the fix for anything else."""
    where = Path(path)
    if not where.exists():
        raise InputError(f"{path}: no such folder; {_FIX}")
    if not where.is_dir():
        raise InputError(f"{path}: is a file, not a folder; {_FIX}")
    if (where / MANIFEST_NAME).is_file():
        return _open_batch(where)
    present = [name for name in schema.TABLES if (where / f"{name}.parquet").is_file()]
    if not present:
        raise InputError(f"{path}: neither a capture's output folder nor a batch dataset; {_FIX}")
    missing = [f"{name}.parquet" for name in schema.TABLES if name not in present]
    if missing:
        raise InputError(
            f"{path}: {', '.join(missing)} missing; analyse the capture again into this "
            "folder (pcapclass CAPTURE -o DIR writes all three files)"
        )
    return _open_capture(where)


# --- dtypes ----------------------------------------------------------------------------


def frame(table: pa.Table, columns: tuple[schema.Column, ...]) -> pd.DataFrame:
    """An Arrow table of `columns` (plus any partition columns) as pandas with the
    contract's dtypes."""
    return typed(table.to_pandas(), columns)


def typed(df: pd.DataFrame, columns: tuple[schema.Column, ...]) -> pd.DataFrame:
    """`df` (as pyarrow converts a table of `columns`) with the contract's dtypes."""
    for col in columns:
        if col.name not in df:
            continue
        if col.name in CATEGORICAL and col.values is not None:
            dtype = pd.CategoricalDtype(list(col.values), ordered=CATEGORICAL[col.name])
            df[col.name] = df[col.name].astype(dtype)
        elif col.nullable and pa.types.is_integer(col.type):
            df[col.name] = df[col.name].astype(f"Int{col.type.bit_width}")
    return df


def empty_frame(columns: tuple[schema.Column, ...], *, partitions: bool = False) -> pd.DataFrame:
    """A zero-row frame of the table's columns (and the partition columns) and dtypes."""
    cols = (*columns, *schema.PARTITIONS) if partitions else columns
    return frame(schema.empty_table(cols), cols)


# --- one capture's output folder ---------------------------------------------------------


def _read_file(path: Path, columns: tuple[schema.Column, ...]) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); analyse again") from None
    missing = [c.name for c in columns if c.name not in table.column_names]
    if missing:
        raise InputError(
            f"{path}: columns {', '.join(missing)} missing (written by another pcapclass "
            "version?); analyse the capture again with this version"
        )
    return table.select([c.name for c in columns])


def capture_name(meta: Mapping[str, str], fallback: str) -> str:
    """The capture's file name from its pcapclass.capture metadata."""
    try:
        return str(json.loads(meta["pcapclass.capture"])["name"])
    except (KeyError, ValueError, TypeError):
        return fallback


def _open_capture(where: Path) -> Dataset:
    from .output import read_metadata

    tables = {
        name: _read_file(where / f"{name}.parquet", cols) for name, cols in schema.TABLES.items()
    }
    meta = read_metadata(where / "flows.parquet")
    meta.pop("pcapclass.table", None)
    return Dataset(
        kind="capture",
        path=where,
        flows=frame(tables["flows"], schema.FLOWS),
        findings=frame(tables["findings"], schema.FINDINGS),
        hosts=frame(tables["hosts"], schema.HOSTS),
        manifest=None,
        metadata={capture_name(meta, where.name): meta},
        new_pairs=None,
    )


# --- a batch dataset ---------------------------------------------------------------------


def _partitioning() -> Any:
    import pyarrow.dataset as pads

    return pads.partitioning(
        pa.schema([(c.name, c.type) for c in schema.PARTITIONS]), flavor="hive"
    )


def _read_table(root: Path, columns: tuple[schema.Column, ...]) -> pd.DataFrame:
    """Every part file under DATASET/<table>/ (hidden files and the staging directory are
    ignored, as pyarrow does), with the partition columns."""
    import pyarrow.dataset as pads

    if not root.is_dir():
        return empty_frame(columns, partitions=True)
    full = schema.arrow_schema((*columns, *schema.PARTITIONS))
    try:
        data = pads.dataset(root, format="parquet", partitioning=_partitioning(), schema=full)
        table = data.to_table()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"{root}: a part file cannot be read ({exc}); run pcapclass batch again "
            "(it rewrites what it cannot use with --reprocess)"
        ) from None
    return frame(table, (*columns, *schema.PARTITIONS))


def _batch_metadata(root: Path) -> dict[str, dict[str, str]]:
    """Capture name -> the pcapclass.* metadata of its flows part file; a name two
    captures share becomes `site/date/name`."""
    from .output import read_metadata

    found: list[tuple[str, str, str, dict[str, str]]] = []
    for path in sorted(root.glob("site=*/date=*/part-*.parquet")):
        meta = read_metadata(path)
        meta.pop("pcapclass.table", None)
        site = _unquote(path.parent.parent.name.removeprefix("site="))
        date = _unquote(path.parent.name.removeprefix("date="))
        found.append((capture_name(meta, path.name), site, date, meta))
    counts = pd.Series([name for name, *_ in found], dtype=object).value_counts()
    out: dict[str, dict[str, str]] = {}
    for name, site, date, meta in sorted(found, key=lambda f: (f[2], f[1], f[0])):
        out[name if counts[name] == 1 else f"{site}/{date}/{name}"] = meta
    return out


def _unquote(text: str) -> str:
    import urllib.parse

    return urllib.parse.unquote(text)


def _manifest(where: Path) -> pd.DataFrame:
    import sqlite3

    from .batch import manifest

    try:
        rows = manifest.read_status(where)
    except sqlite3.Error as exc:  # a damaged file, or a foreign one without `captures`
        raise InputError(
            f"{where / MANIFEST_NAME}: cannot be read ({exc}); give a dataset that "
            "pcapclass batch --out wrote"
        ) from None
    columns = schema.column_names(schema.MANIFEST)
    return pd.DataFrame(rows, columns=columns)


def _new_pairs(where: Path) -> pd.DataFrame:
    from .batch.baseline import baseline

    return typed(baseline(where), schema.NEW_PAIRS)


def _open_batch(where: Path) -> Dataset:
    return Dataset(
        kind="dataset",
        path=where,
        flows=_read_table(where / "flows", schema.FLOWS),
        findings=_read_table(where / "findings", schema.FINDINGS),
        hosts=_read_table(where / "hosts", schema.HOSTS),
        manifest=_manifest(where),
        metadata=_batch_metadata(where / "flows"),
        new_pairs=_new_pairs(where),
    )


__all__ = ["Dataset", "empty_frame", "frame", "open_dataset", "typed"]
