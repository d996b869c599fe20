"""`analyze(capture, ...) -> Result`: the one call the CLI, batch runs and notebooks make.

read (reader) -> decode (decode) -> connections (flows) -> verdicts (classify) ->
Parquet (output). Everything but the packet loop works on connections, not packets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .classify import classify, site_catalog
from .decode import decode_batch
from .errors import UsageError
from .flows import FlowTable
from .output import RunInfo, metadata, write_tables
from .reader import Capture, CaptureStats, release_heap
from .signatures import Catalog, load_catalog
from .site import Site, load_site

STDIN = "-"
STDIN_NAME = "<stdin>"
# Records per batch: large enough that numpy's per-call overhead vanishes, small enough
# that the batch's working set stays in a few MiB (measured in benchmarks/).
BATCH_PACKETS = 65536

ProgressFn = Callable[[int], None]  # called with the packets read so far


@dataclass(frozen=True)
class Result:
    """Everything one capture's analysis produced."""

    capture: CaptureStats
    flows: pa.Table
    findings: pa.Table
    hosts: pa.Table
    outputs: dict[str, Path]  # table name -> written file; empty when not written

    def verdict_counts(self) -> dict[str, int]:
        """Flows per verdict, in the contract's verdict order, zero counts left out."""
        counts = pc.value_counts(self.flows.column("verdict")).to_pylist()
        by = {c["values"]: c["counts"] for c in counts}
        return {v: by[v] for v in schema.VERDICTS if v in by}

    def systems_seen(self) -> list[str]:
        values = pc.unique(pc.drop_null(self.flows.column("system"))).to_pylist()
        return sorted(v for v in values if v != "common")


def default_outdir(capture: str | Path, base: Path = Path("pcapclass-out")) -> Path:
    """Contract default: ./pcapclass-out/<capture name>/."""
    if str(capture) == STDIN:
        raise UsageError("reading a capture from standard input (-) needs -o OUTDIR")
    return base / Path(capture).name


def analyze(
    capture: str | Path,
    *,
    outdir: Path | None = None,
    site: Site | str | Path | None = None,
    catalog: Catalog | None = None,
    write: bool = True,
    progress: ProgressFn | None = None,
    batch_packets: int = BATCH_PACKETS,
) -> Result:
    """Analyze one capture (a path or "-" for stdin) and, unless write=False, write
    flows/findings/hosts Parquet files into `outdir` (default: the contract's)."""
    if catalog is None:
        catalog = load_catalog()
    if site is not None and not isinstance(site, Site):
        site = load_site(site, catalog=catalog)
    if write and outdir is None:
        outdir = default_outdir(capture)
    # The site's port overrides count as service ports for the originator rule (classify
    # applies them to its catalog the same way).
    effective = site_catalog(catalog, site)

    with Capture(capture, batch_packets=batch_packets) as cap:
        # The file name, not the path: uids and the capture column must not depend on where
        # the file lies (same input -> same uid).
        table = FlowTable(
            capture_name=Path(cap.stats.name).name,
            service_ports=effective.service_ports(),
            dns_names={name for sig in catalog.signatures for name in sig.remote_hosts},
        )
        for raw in cap.batches():
            table.add(decode_batch(raw, cap.stats.skipped))
            if progress is not None:
                progress(cap.stats.packets)
        stats = cap.stats
    release_heap()  # the read loop's allocator tuning ends here
    flow_result = table.finish()
    classified = classify(flow_result, catalog, site)
    stats.skipped.update(classified.skipped)  # e.g. dns_malformed: counted, not lost
    del flow_result
    release_heap()  # what finish and classify freed, before the Arrow copies are made
    frames = {
        "flows": (classified.flows, schema.FLOWS),
        "findings": (classified.findings, schema.FINDINGS),
        "hosts": (classified.hosts, schema.HOSTS),
    }
    del classified
    tables: dict[str, pa.Table] = {}
    for name in list(frames):  # each pandas frame goes as soon as its Arrow table exists
        frame, columns = frames.pop(name)
        tables[name] = schema.to_arrow(frame, columns)
        del frame
    outputs: dict[str, Path] = {}
    if write:
        assert outdir is not None
        info = RunInfo(stats, catalog.sha256, site.sha256 if site is not None else None)
        outputs = write_tables(outdir, tables, metadata(info))
    return Result(stats, tables["flows"], tables["findings"], tables["hosts"], outputs)
