"""Write the result tables as Parquet (zstd) with the schema and file metadata, atomically.

Each file is written to a temporary name in the output directory, flushed to disk and
then renamed over the final name (os.replace is atomic on POSIX), so a killed run never
leaves a half-written file under a final name. All three temporaries are complete
before the first rename.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, schema
from .errors import InputError
from .reader import CaptureStats

COMPRESSION = "zstd"  # contract: "All three are Parquet (zstd)"
FILE_NAMES = {name: f"{name}.parquet" for name in schema.TABLES}


@dataclass(frozen=True)
class RunInfo:
    """What the metadata of every output file records about the run."""

    capture: CaptureStats
    signatures_sha256: str
    site_sha256: str | None


def metadata(info: RunInfo) -> dict[str, str]:
    """The contract's Parquet key-value metadata ("Parquet metadata keys")."""
    cap = info.capture
    return {
        "pcapclass.version": __version__,
        "pcapclass.schema_version": schema.SCHEMA_VERSION,
        "pcapclass.signatures_sha256": info.signatures_sha256,
        "pcapclass.site_sha256": info.site_sha256 or "",
        "pcapclass.capture": json.dumps(
            {"name": Path(cap.name).name, "size": cap.size, "sha256": cap.sha256}, sort_keys=True
        ),
        "pcapclass.packets": str(cap.packets),
        "pcapclass.skipped": json.dumps(dict(sorted(cap.skipped.items()))),
        "pcapclass.truncated": "true" if cap.truncated else "false",
        "pcapclass.health": json.dumps(cap.health, sort_keys=True),
    }


def write_tables(
    outdir: Path, tables: Mapping[str, pa.Table], meta: Mapping[str, str]
) -> dict[str, Path]:
    """Write each table to OUTDIR/<name>.parquet atomically; return the final paths."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{outdir}: cannot create the output directory ({exc.strerror})") from exc
    temps: dict[str, Path] = {}
    try:
        for name, table in tables.items():
            columns = schema.TABLES[name]
            if table.schema != schema.arrow_schema(columns):
                raise ValueError(f"{name} table does not match the schema module")
            table = table.replace_schema_metadata({**meta, "pcapclass.table": name})
            temps[name] = _write_temp(outdir, FILE_NAMES[name], table)
        final: dict[str, Path] = {}
        for name, tmp in temps.items():
            final[name] = outdir / FILE_NAMES[name]
            os.replace(tmp, final[name])
        return final
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _write_temp(outdir: Path, final_name: str, table: pa.Table) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final_name}.", suffix=".tmp", dir=outdir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh, compression=COMPRESSION)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def read_metadata(path: Path) -> dict[str, str]:
    """The pcapclass key-value metadata of a written file, decoded to str."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"pcapclass.")}
