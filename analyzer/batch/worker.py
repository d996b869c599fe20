"""What a worker does with one capture: analyse it, write its partition files, report.

`process(task) -> Outcome` runs in a local worker process or on a Dask worker (the
same function either way). It reads the capture by path (shared storage), writes the
partition files itself, and never touches the manifest: the driver commits the row
from the Outcome. It never raises for a bad capture; the Outcome says `failed` and why.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__, schema
from ..errors import PcapclassError
from ..signatures import Catalog, load_catalog
from . import partition

_catalog: Catalog | None = None  # loaded once per worker process


@dataclass(frozen=True)
class Task:
    """One capture to analyse; plain values only, so it pickles to any worker."""

    path: str
    dataset: str
    site_file: str | None  # the site file that applies, None: none
    # Extra keyword arguments for pipeline.analyze(), passed through unchanged: the hook
    # for options the analyze command grows (e.g. Zeek logs) that batch should forward.
    analyze_options: dict[str, Any] = field(default_factory=dict)
    zeek_logs: bool = False  # --zeek-logs: also conn.log and pcapclass_findings.log
    progress: bool = False  # report bytes read while reading (a terminal shows them)


@dataclass(frozen=True)
class Outcome:
    """What became of one Task (status `done` or `failed`)."""

    path: str
    status: str
    message: str | None = None
    sha256: str | None = None
    size: int | None = None
    packets: int | None = None
    flows: int | None = None
    findings: dict[str, int] = field(default_factory=dict)  # severity -> findings rows
    seconds: float | None = None
    site: str | None = None  # partition value
    date: str | None = None
    parts: list[str] = field(default_factory=list)  # written files, relative to the dataset
    catalog_sha256: str | None = None
    site_sha256: str | None = None
    tool_version: str = __version__


Report = Callable[[str, int], None]  # (capture path, bytes of the file read so far)
PROGRESS_TOPIC = "pcapclass-batch-progress"  # Dask event topic of a worker's Report
REPORT_S = 0.25  # at most this often per capture


def process(task: Task, report: Report | None = None) -> Outcome:
    """Analyse task.path and write its partition files under task.dataset. With
    task.progress, the bytes read so far go to `report` (in the driver) or, on a Dask
    worker, to the driver as events on PROGRESS_TOPIC."""
    start = time.perf_counter()
    try:
        return _process(task, start, _progress(task, report) if task.progress else None)
    except PcapclassError as exc:
        message = str(exc)
    except OSError as exc:  # reading or writing outside the reader's own checks
        message = f"{exc.filename or task.path}: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - one capture's bug must not stop the others
        message = f"internal error ({type(exc).__name__}: {exc}); please report it"
    return Outcome(task.path, "failed", message, seconds=time.perf_counter() - start)


def _progress(task: Task, report: Report | None) -> Callable[[Any], None] | None:
    """A pipeline.analyze progress callback: bytes of the file (for a gzip file, the
    compressed bytes in proportion to the stream read, by the size its trailer gives)."""
    from ..progress import gzip_isize

    if report is None:
        from distributed import get_worker

        try:
            worker = get_worker()
        except ValueError:  # not on a Dask worker: nobody to tell
            return None
        report = lambda path, done: worker.log_event(PROGRESS_TOPIC, [path, done])  # noqa: E731
    try:
        size = Path(task.path).stat().st_size
    except OSError:
        return None
    last = 0.0
    stream: int | None = None  # bytes of the (uncompressed) capture stream

    def on_progress(p: Any) -> None:
        nonlocal last, stream
        now = time.monotonic()
        if p.stage != "reading" or now - last < REPORT_S:
            return
        last = now
        if stream is None:
            stream = (gzip_isize(Path(task.path)) if p.format.startswith("gzip+") else size) or 0
        if stream:
            assert report is not None
            report(task.path, min(size, size * p.stream_bytes // stream))

    return on_progress


def _process(task: Task, start: float, progress: Callable[[Any], None] | None) -> Outcome:
    from ..output import RunInfo, metadata
    from ..pipeline import analyze
    from ..site import load_site
    from ..zeeklog import log_texts

    global _catalog
    if _catalog is None:
        _catalog = load_catalog()
    catalog = _catalog
    site = load_site(task.site_file, catalog=catalog) if task.site_file else None
    result = analyze(
        task.path,
        site=site,
        catalog=catalog,
        write=False,
        progress=progress,
        **task.analyze_options,
    )
    stats = result.capture
    tables = {"flows": result.flows, "findings": result.findings, "hosts": result.hosts}
    site_name = partition.site_value(site.name if site is not None else None)
    date = partition.capture_date(tables)
    parts: list[str] = []
    if date is not None:
        meta = metadata(RunInfo(stats, catalog.sha256, site.sha256 if site else None))
        logs = log_texts(result.flows, result.findings, site=site) if task.zeek_logs else None
        parts = partition.write_partitions(
            Path(task.dataset),
            tables,
            meta,
            site=site_name,
            date=date,
            sha256=stats.sha256,
            logs=logs,
        )
    warnings = list(stats.warnings)
    if date is None:
        warnings.append("no packet made a connection or host row; nothing written")
    severities = Counter(result.findings.column("severity").to_pylist())
    return Outcome(
        path=task.path,
        status="done",
        message="; ".join(warnings) or None,
        sha256=stats.sha256,
        size=stats.size,
        packets=stats.packets,
        flows=result.flows.num_rows,
        findings={s: severities[s] for s in schema.SEVERITIES},
        seconds=time.perf_counter() - start,
        site=site_name if date is not None else None,
        date=date,
        parts=parts,
        catalog_sha256=catalog.sha256,
        site_sha256=site.sha256 if site is not None else "",
    )
