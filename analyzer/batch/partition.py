"""A capture's partition files: where they go and how they get there atomically.

    DATASET/{flows,findings,hosts}/site=NAME/date=YYYY-MM-DD/part-<sha256[:16]>.parquet
    DATASET/zeek/site=NAME/date=YYYY-MM-DD/<sha256[:16]>.{conn,pcapclass_findings}.log
                                                          (--zeek-logs only)

Hive partitioning as pyarrow writes and reads it: the partition values live in the
directory names (URI-encoded, so "Rathaus Nord" is `site=Rathaus%20Nord`), not in the
files, whose columns are exactly the single-capture tables'. The three files are
first written completely into a private staging directory (DATASET/.staging/, by
output.write_tables, the same atomic writer the single-capture run uses), then each
is renamed to its final name: a reader never sees a partial file under a final name,
and readers ignore the staging directory (its name starts with a dot).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..output import write_tables

UNKNOWN_SITE = "unknown"  # contract: the site partition of captures without a site name
STAGING = ".staging"
PART_HEX = 16  # "part-<capture-sha256 first 16 hex>" (issue 9)
TABLES = tuple(schema.TABLES)  # flows, findings, hosts
BASELINE_TABLE = "new_pairs"
ZEEK_DIR = "zeek"  # --zeek-logs: the Zeek TSV logs, partitioned as the tables are
ZEEK_SUFFIX = ".log"


def site_value(name: str | None) -> str:
    """The partition value of a site: its name, or `unknown` without one."""
    return name if name else UNKNOWN_SITE


def partition_dir(table: str, site: str, date: str) -> Path:
    """DATASET-relative directory of one partition, values URI-encoded as pyarrow does."""
    enc = urllib.parse.quote
    return Path(table) / f"site={enc(site, safe='')}" / f"date={enc(date, safe='')}"


def part_name(sha256: str) -> str:
    return f"part-{sha256[:PART_HEX]}.parquet"


def zeek_name(sha256: str, log: str) -> str:
    """`<sha256[:16]>.conn.log`: a capture's Zeek log in its partition directory."""
    return f"{sha256[:PART_HEX]}.{log}"


def capture_date(tables: Mapping[str, pa.Table]) -> str | None:
    """UTC date of the capture's first packet (the earliest connection or host time),
    None when the capture holds no packet that made a row."""
    firsts = []
    for table, column in (("flows", "ts"), ("hosts", "first_ts")):
        if tables[table].num_rows:
            firsts.append(pc.min(tables[table].column(column)).as_py())
    if not firsts:
        return None
    first: dt.datetime = min(firsts)
    return first.astimezone(dt.UTC).date().isoformat()


def write_partitions(
    dataset: Path,
    tables: Mapping[str, pa.Table],
    meta: Mapping[str, str],
    *,
    site: str,
    date: str,
    sha256: str,
    logs: Mapping[str, str] | None = None,
) -> list[str]:
    """Write the three tables of one capture to their partitions, and `logs` (Zeek log
    file name -> text, for --zeek-logs) to DATASET/zeek/; return the files, relative to
    the dataset, tables in TABLES order, then the logs. Safe to kill at any point: before
    the renames nothing is visible; after some of them, each visible file is complete,
    and rerunning writes the same names again."""
    from ..zeeklog import write_text_atomic

    (dataset / STAGING).mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{sha256[:PART_HEX]}-", dir=dataset / STAGING))
    try:
        staged: dict[str, Path] = {
            str(partition_dir(t, site, date) / part_name(sha256)): path
            for t, path in write_tables(stage, {t: tables[t] for t in TABLES}, meta).items()
        }
        for log, text in (logs or {}).items():
            log_rel = partition_dir(ZEEK_DIR, site, date) / zeek_name(sha256, log)
            staged[str(log_rel)] = write_text_atomic(stage / log_rel.name, text)
        for rel, path in staged.items():
            (dataset / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dataset / rel)
        return list(staged)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def remove(dataset: Path, parts: Iterable[str]) -> None:
    """Delete partition files (a capture's earlier location), and directories left empty."""
    for rel in parts:
        path = dataset / rel
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _prune_empty(path.parent, stop=dataset)


def _prune_empty(directory: Path, *, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty (or already gone)
            return
        directory = directory.parent


def clean_stray(dataset: Path, keep: set[str]) -> list[str]:
    """Remove what a killed run left behind: the staging directory, temporary files, and
    partition files no manifest row points at (renamed into place, then killed before
    the row was committed). Returns the removed paths, relative to the dataset."""
    removed: list[str] = []
    staging = dataset / STAGING
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
        removed.append(STAGING)
    for table in (*TABLES, BASELINE_TABLE, ZEEK_DIR):
        root = dataset / table
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                rel = str(path.relative_to(dataset))
                stray_temp = name.startswith(".") and name.endswith(".tmp")
                ours = name.endswith(ZEEK_SUFFIX) if table == ZEEK_DIR else name.startswith("part-")
                orphan = table != BASELINE_TABLE and ours and rel not in keep
                if stray_temp or orphan:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    removed.append(rel)
    return removed
