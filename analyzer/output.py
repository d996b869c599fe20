"""Write the result tables as Parquet (zstd) with the schema and file metadata, atomically.

Each file is written to a temporary name in the output directory, flushed to disk and
then renamed over the final name (os.replace is atomic on POSIX), so a killed run never
leaves a half-written file under a final name: each final name holds the old or the new
complete file. All three temporaries are complete before the first rename. Temporaries
are `.<name>.parquet.<pid>.<random>.tmp`; one left by a killed run (its process is gone)
is removed by the next write into that folder (`remove_stale_temps`, which zeeklog calls
for its logs' temporaries too). Files get the mode the umask allows
(0666 & ~umask), as any Unix tool's output does.

Problems with the folder itself (cannot be created, not writable, read-only file system,
disk full) are InputError: one line naming the folder and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, schema
from .errors import InputError

if TYPE_CHECKING:  # the reader (and numba with it) is not needed to write files
    from .reader import CaptureStats

COMPRESSION = "zstd"  # contract: "All three are Parquet (zstd)"
FILE_NAMES = {name: f"{name}.parquet" for name in schema.TABLES}
STDIN_FOLDER = "stdin"  # the folder of `-` among several captures (docs/contract.md)
# What the user can do about each errno when the output folder cannot be written.
_FIXES = {
    errno.EACCES: "choose a folder you can write with -o, or fix its permissions",
    errno.EPERM: "choose a folder you can write with -o, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another folder with -o",
    errno.ENOSPC: "the disk is full; free some space or choose another folder with -o",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another folder with -o",
    errno.EEXIST: "it exists and is not a folder; choose another path with -o",
    errno.ENOTDIR: "a part of the path is not a folder; choose another path with -o",
}


@dataclass(frozen=True)
class RunInfo:
    """What the metadata of every output file records about the run."""

    capture: CaptureStats
    signatures_sha256: str
    site_sha256: str | None
    interrupted: bool = False  # reading stopped early on SIGINT/SIGTERM (exit 130)
    evicted: int = 0  # connections ended early at the connection table's cap


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
        "pcapclass.interrupted": "true" if info.interrupted else "false",
        "pcapclass.health": json.dumps(cap.health, sort_keys=True),
        "pcapclass.evicted": str(info.evicted),
    }


def folder_name(capture: str | Path) -> str:
    """The output folder of one capture among several (or the default folder): the file
    name only, so `../../etc/x.pcap` stays inside the output directory; control
    characters (newlines, escapes) become `_`; `-` is `stdin`."""
    if str(capture) == "-":
        return STDIN_FOLDER
    name = "".join("_" if ord(ch) < 32 or ord(ch) == 127 else ch for ch in Path(capture).name)
    return name if name not in ("", ".", "..") else "_"


def folder_error(outdir: Path, exc: OSError, doing: str = "cannot write the output files") -> str:
    """One line naming the folder, what failed and the fix."""
    fix = _FIXES.get(exc.errno or 0, "choose another folder with -o")
    reason = exc.strerror or type(exc).__name__
    return f"{outdir}: {doing} ({reason}); {fix}"


def check_outdir(outdir: Path) -> None:
    """Before reading anything, prove the output folder can be written (or created),
    so an unwritable -o costs no analysis. Creates nothing that stays behind: a probe
    file is made and removed in the folder, or in its nearest existing parent.
    Raises InputError naming the folder and the fix."""
    where = outdir
    while not where.exists() and where != where.parent:
        if where.is_symlink():  # a dangling link: mkdir would fail on it
            raise InputError(folder_error(outdir, FileExistsError(errno.EEXIST, "File exists")))
        where = where.parent
    if not where.is_dir():
        exc = NotADirectoryError(errno.ENOTDIR if where != outdir else errno.EEXIST, "")
        exc.strerror = "not a folder" if where == outdir else f"{where} is not a folder"
        raise InputError(folder_error(outdir, exc, "cannot create the output folder"))
    probe = where / f".pcapclass-probe.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        doing = "cannot write the output files" if where == outdir else "cannot create it"
        raise InputError(folder_error(outdir, exc, doing)) from None


def remove_stale_temps(outdir: Path, finals: Iterable[str] = FILE_NAMES.values()) -> list[Path]:
    """Remove the temporaries `.<final>.<pid>.<random>.tmp` (`open_temp`'s names, or
    tempfile's without a pid) of the final names `finals` (default: the Parquet tables;
    zeeklog passes its logs) whose writing process is gone (a killed run); a temporary
    of a live process (another run writing into the same folder) stays."""
    removed: list[Path] = []
    names = "|".join(re.escape(f) for f in finals)
    if not names:
        return removed
    pattern = re.compile(rf"^\.(?:{names})\.(?:(?P<pid>\d+)\.)?[^/]*\.tmp$")
    try:
        entries = list(outdir.iterdir())
    except OSError:
        return removed
    for path in entries:
        m = pattern.match(path.name)
        if m is None:
            continue
        pid = int(m.group("pid")) if m.group("pid") else None
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists, owned by someone else; or not a pid we can judge: keep
    return True


def write_tables(
    outdir: Path, tables: Mapping[str, pa.Table | Iterable[pa.Table]], meta: Mapping[str, str]
) -> dict[str, Path]:
    """Write each table to OUTDIR/<name>.parquet atomically; return the final paths.
    A table may be given as an iterable of chunks (each with the table's schema): they
    are written one after another as row groups of one file, so only one chunk needs to
    be in memory (pipeline.analyze writes a large capture's flows so)."""
    for name, table in tables.items():
        if isinstance(table, pa.Table) and table.schema != schema.arrow_schema(
            schema.TABLES[name]
        ):
            raise ValueError(f"{name} table does not match the schema module")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(folder_error(outdir, exc, "cannot create the output folder")) from None
    remove_stale_temps(outdir)
    temps: dict[str, Path] = {}
    try:
        try:
            for name, table in tables.items():
                file_meta = {**meta, "pcapclass.table": name}
                if isinstance(table, pa.Table):
                    table = table.replace_schema_metadata(file_meta)
                    temps[name] = _write_temp(outdir, FILE_NAMES[name], table)
                else:
                    columns = schema.TABLES[name]
                    temps[name] = _write_temp_chunks(outdir, FILE_NAMES[name], name, table,
                                                     columns, file_meta)  # fmt: skip
        except OSError as exc:
            raise InputError(folder_error(outdir, exc)) from None
        final: dict[str, Path] = {}
        for name, tmp in temps.items():
            final[name] = outdir / FILE_NAMES[name]
            os.replace(tmp, final[name])
        _fsync_dir(outdir)
        return final
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def open_temp(final: Path) -> tuple[Path, int]:
    """Create the temporary `.<name>.<pid>.<random>.tmp` beside `final`; return it and
    its open descriptor. O_EXCL: never follow or reuse an existing name; the mode is
    0666 minus the umask, which the rename keeps."""
    tmp = final.parent / f".{final.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)


def _write_temp(outdir: Path, final_name: str, table: pa.Table) -> Path:
    return _fsynced_temp(
        outdir / final_name, lambda fh: pq.write_table(table, fh, compression=COMPRESSION)
    )


def _write_temp_chunks(
    outdir: Path,
    final_name: str,
    name: str,
    chunks: Iterable[pa.Table],
    columns: tuple[schema.Column, ...],
    file_meta: Mapping[str, str],
) -> Path:
    """As _write_temp, the table given as chunks, each one or more row groups."""
    file_schema = schema.arrow_schema(columns).with_metadata(file_meta)

    def write(fh: BinaryIO) -> None:
        with pq.ParquetWriter(fh, file_schema, compression=COMPRESSION) as writer:
            for chunk in chunks:
                if chunk.schema != schema.arrow_schema(columns):
                    raise ValueError(f"{name} table does not match the schema module")
                writer.write_table(chunk.replace_schema_metadata(file_meta))

    return _fsynced_temp(outdir / final_name, write)


def _fsynced_temp(final: Path, write: Callable[[BinaryIO], None]) -> Path:
    """A temporary beside `final` that `write` filled, flushed and fsynced; removed when
    writing fails."""
    tmp, fd = open_temp(final)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def write_file_atomic(final: Path, data: bytes) -> Path:
    """One file (a report, a log) written as the tables are: a temporary name in the same
    folder (`.<name>.<pid>.<random>.tmp`, mode 0666 minus the umask), fsync, rename.
    A folder that cannot be written is InputError naming it and the fix."""
    folder = final.parent
    tmp = folder / f".{final.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise InputError(folder_error(folder, exc, f"cannot write {final.name}")) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        raise InputError(folder_error(folder, exc, f"cannot write {final.name}")) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(folder)
    return final


def _fsync_dir(outdir: Path) -> None:
    """Make the renames durable (a power cut after the run keeps the new names)."""
    with contextlib.suppress(OSError):
        fd = os.open(outdir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_metadata(path: Path) -> dict[str, str]:
    """The pcapclass key-value metadata of a written file, decoded to str."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"pcapclass.")}
