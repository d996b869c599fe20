"""DATASET/manifest.sqlite: one row per file a batch run has seen (table `captures`).

Only the driver writes it (workers report back, the driver commits), in WAL mode so a
notebook or `pcapclass batch --status` can read while a run writes. The columns are
schema.MANIFEST; a row is committed only after the capture's partition files are in
place under their final names, so a killed run never leaves a `done` row without its
files. The driver holds an exclusive lock (DATASET/.lock) for the whole run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import schema
from ..errors import UsageError

FILE_NAME = "manifest.sqlite"
LOCK_NAME = ".lock"
TABLE = "captures"
# (site, date) partitions whose new_pairs must be recomputed: added in the transaction
# that commits a capture's row, removed once new_pairs/ is written, so a run killed in
# between leaves the work for the next run instead of a stale baseline.
PENDING = "baseline_pending"
COLUMNS = schema.column_names(schema.MANIFEST)
_SQL_TYPES = {pa.string(): "TEXT", pa.int64(): "INTEGER", pa.float64(): "REAL"}


def _create_sql() -> str:
    cols = []
    for c in schema.MANIFEST:
        decl = f"{c.name} {_SQL_TYPES[c.type]}" + ("" if c.nullable else " NOT NULL")
        if c.name == "path":
            decl += " PRIMARY KEY"
        cols.append(decl)
    return f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(cols)})"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Manifest:
    """The open manifest of one dataset; rows are plain dicts keyed by schema.MANIFEST."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)  # explicit transactions
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint
        self._db.execute(_create_sql())
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {PENDING} (site TEXT, date TEXT, PRIMARY KEY (site, date))"
        )
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """A manifest of an older version gains the columns added since (never renamed)."""
        have = {r[1] for r in self._db.execute(f"PRAGMA table_info({TABLE})")}
        for c in schema.MANIFEST:
            if c.name not in have:
                self._db.execute(f"ALTER TABLE {TABLE} ADD COLUMN {c.name} {_SQL_TYPES[c.type]}")

    def close(self) -> None:
        self._db.close()

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every row, keyed by path."""
        cur = self._db.execute(f"SELECT * FROM {TABLE}")
        return {r["path"]: dict(r) for r in cur}

    def put(
        self, rows: Iterable[Mapping[str, Any]], pending: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Insert or replace whole rows, and mark baseline partitions to recompute, in
        one transaction."""
        placeholders = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT OR REPLACE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        stamp = now_iso()
        values = [tuple({**row, "updated": stamp}.get(c) for c in COLUMNS) for row in rows]
        with self.transaction():
            self._db.executemany(sql, values)
            self._db.executemany(f"INSERT OR IGNORE INTO {PENDING} VALUES (?, ?)", pending)

    def delete(self, paths: Iterable[str]) -> None:
        """Remove rows (captures an interrupted run had no row for before)."""
        with self.transaction():
            self._db.executemany(f"DELETE FROM {TABLE} WHERE path = ?", [(p,) for p in paths])

    def pending(self) -> dict[str, set[str]]:
        """Site -> dates whose new_pairs are stale."""
        out: dict[str, set[str]] = {}
        for site, date in self._db.execute(f"SELECT site, date FROM {PENDING}"):
            out.setdefault(site, set()).add(date)
        return out

    def clear_pending(self, done: Mapping[str, set[str]]) -> None:
        pairs = [(site, date) for site, dates in done.items() for date in dates]
        with self.transaction():
            self._db.executemany(f"DELETE FROM {PENDING} WHERE site = ? AND date = ?", pairs)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def empty_row(path: str, size: int, mtime: float) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(path=path, size=size, mtime=mtime)
    return row


def parts_of(row: Mapping[str, Any]) -> list[str]:
    """The partition files a row points at, relative to the dataset."""
    return list(json.loads(row["parts"])) if row.get("parts") else []


@contextlib.contextmanager
def locked(dataset: Path) -> Iterator[Manifest]:
    """Open DATASET's manifest for writing, holding DATASET/.lock for the whole run: two
    drivers on one dataset would each think the other's in_progress rows were killed."""
    try:
        dataset.mkdir(parents=True, exist_ok=True)
        fd = os.open(dataset / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"{dataset}: cannot create the dataset ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{dataset}: another pcapclass batch run is writing this dataset; "
                "wait for it to finish"
            ) from None
        manifest = Manifest(dataset / FILE_NAME)
        try:
            yield manifest
        finally:
            manifest.close()
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_status(dataset: Path) -> list[dict[str, Any]]:
    """Every row of an existing manifest, in path order, without taking the lock."""
    path = dataset / FILE_NAME
    if not path.is_file():
        raise UsageError(f"{dataset}: no batch dataset here ({FILE_NAME} is missing)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"SELECT * FROM {TABLE} ORDER BY path")]
    finally:
        db.close()
