"""`analyze(capture, ...) -> Result`: the one call the CLI, batch runs and notebooks make.

read (reader) -> decode (decode) -> connections (flows) -> verdicts (classify) ->
Parquet (output). Everything but the packet loop works on connections, not packets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import flows as flow_table
from . import schema
from .classify import Prepared, prepare, site_catalog
from .decode import decode_batch
from .errors import UsageError
from .flows import FlowTable
from .health import capture_health
from .output import RunInfo, folder_name, metadata, write_tables
from .reader import BATCH_PACKETS, Capture, CaptureStats, RawBatch
from .signatures import Catalog, load_catalog
from .site import Site, load_site

STDIN = "-"
STDIN_NAME = "<stdin>"

# Bytes a record takes in the stream besides its captured bytes: the pcap record header;
# a pcapng Enhanced Packet Block's header and trailer (options not counted).
PCAP_RECORD_OVERHEAD = 16
PCAPNG_EPB_OVERHEAD = 32
# Flows per chunk when a capture has more connections than this: they are filled
# (verdict columns, reasons), converted to Arrow and written one chunk at a time, so the
# per-flow output columns are never all in memory (docs/hardening.md, "SYN flood").
WRITE_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Progress:
    """Where one analysis is: stage "reading" after every batch, then one event per
    later stage ("connections", "classifying", "writing")."""

    stage: str
    packets: int  # packet records read so far
    stream_bytes: int  # bytes of the (uncompressed) capture stream consumed, estimated
    format: str  # the reader's format name, e.g. "gzip+pcapng"
    connections: int | None = None  # known from stage "classifying" on


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]  # True: stop reading here (an interrupt); see reader.Capture
NO_PACKETS = "no packets in the capture"


@dataclass(frozen=True)
class Result:
    """Everything one capture's analysis produced."""

    capture: CaptureStats
    flows_table: pa.Table | None  # None: written in chunks; `flows` reads the file back
    findings: pa.Table
    hosts: pa.Table
    outputs: dict[str, Path]  # table name -> written file; empty when not written
    interrupted: bool = False  # reading stopped early (stop() said so): exit 130
    evicted: int = 0  # connections ended early: the live connection table was full
    counts: FlowCounts | None = None  # of the flows, kept when flows_table is None

    @cached_property
    def flows(self) -> pa.Table:
        """The flows table: in memory, or (a capture of more than WRITE_CHUNK_ROWS
        connections, written chunk by chunk) read back from its file when first asked."""
        if self.flows_table is not None:
            return self.flows_table
        return pq.read_table(self.outputs["flows"]).replace_schema_metadata(None)

    @property
    def flow_count(self) -> int:
        return self.counts.flows if self.counts is not None else self.flows.num_rows

    def verdict_counts(self) -> dict[str, int]:
        """Flows per verdict, in the contract's verdict order, zero counts left out."""
        if self.counts is not None:
            by = self.counts.verdicts
        else:
            counts = pc.value_counts(self.flows.column("verdict")).to_pylist()
            by = {c["values"]: c["counts"] for c in counts}
        return {v: by[v] for v in schema.VERDICTS if v in by}

    def systems_seen(self) -> list[str]:
        if self.counts is not None:
            values = list(self.counts.systems)
        else:
            values = pc.unique(pc.drop_null(self.flows.column("system"))).to_pylist()
        return sorted(v for v in values if v != "common")


@dataclass(frozen=True)
class FlowCounts:
    """What the summary needs of the flows, counted before they were written in chunks."""

    flows: int
    verdicts: dict[str, int]
    systems: frozenset[str]

    @classmethod
    def of(cls, prepared: Prepared) -> FlowCounts:
        verdicts = Counter(prepared.verdicts().tolist())
        table = prepared.decisions.table
        used = np.unique(prepared.decisions.index).tolist()
        systems = frozenset(s for k in used if (s := table[k].system) is not None)
        return cls(len(prepared.flows), dict(verdicts), systems)


def default_outdir(capture: str | Path, base: Path = Path("pcapclass-out")) -> Path:
    """Contract default: ./pcapclass-out/<capture name>/."""
    if str(capture) == STDIN:
        raise UsageError("reading a capture from standard input (-) needs -o OUTDIR")
    return base / folder_name(capture)


def analyze(
    capture: str | Path,
    *,
    outdir: Path | None = None,
    site: Site | str | Path | None = None,
    catalog: Catalog | None = None,
    write: bool = True,
    progress: ProgressFn | None = None,
    batch_packets: int = BATCH_PACKETS,
    stop: StopFn | None = None,
    max_live_connections: int | None = None,
) -> Result:
    """Analyze one capture (a path or "-" for stdin) and, unless write=False, write
    flows/findings/hosts Parquet files into `outdir` (default: the contract's).

    `stop` is asked while reading; once it returns True, reading ends (a file after the
    current batch; a live pipe after the bytes that had arrived) and what was read is
    analyzed and written with `interrupted` set (metadata `pcapclass.interrupted =
    "true"`, the capture's size and sha256 those of the bytes read).

    `max_live_connections` caps the live connection table (default, read at each call:
    flows.MAX_LIVE_CONNECTIONS); connections ended early at the cap are counted in
    Result.evicted, the metadata key `pcapclass.evicted` and a warning."""
    if catalog is None:
        catalog = load_catalog()
    if site is not None and not isinstance(site, Site):
        site = load_site(site, catalog=catalog)
    if write and outdir is None:
        outdir = default_outdir(capture)
    # The site's port overrides count as service ports for the originator rule (classify
    # applies them to its catalog the same way).
    effective = site_catalog(catalog, site)
    live_cap = max_live_connections or flow_table.MAX_LIVE_CONNECTIONS

    with Capture(capture, batch_packets=batch_packets, stop=stop) as cap:
        # The file name, not the path: uids and the capture column must not depend on where
        # the file lies (same input -> same uid).
        table = FlowTable(
            capture_name=Path(cap.stats.name).name,
            service_ports=effective.service_ports(),
            dns_names={name for sig in catalog.signatures for name in sig.remote_hosts},
            max_live_connections=live_cap,
        )
        streamed = consumed = 0
        for raw in cap.batches():
            table.add(decode_batch(raw, cap.stats.skipped))
            consumed += raw.n
            if progress is not None:
                streamed += _stream_bytes(raw, cap.stats.format)
                progress(Progress("reading", consumed, streamed, cap.stats.format))
        # a pipe whose writer died of the same Ctrl-C ends before the reader sees the stop
        interrupted = cap.stopped or (stop is not None and stop())
        stats = cap.stats
    _warn_about(stats, interrupted)
    if progress is not None:
        progress(Progress("connections", stats.packets, streamed, stats.format))
    flow_result = table.finish()
    evicted = flow_result.evicted
    if evicted:
        stats.warnings.append(evicted_warning(stats.name, evicted, live_cap))
    # needs the flows, before classify
    health = capture_health(stats, flow_result.flows, evicted=evicted)
    stats.health = health.as_dict()
    stats.warnings.extend(health.warnings())
    if progress is not None:
        n = len(flow_result.flows)
        progress(Progress("classifying", stats.packets, streamed, stats.format, n))
    prepared = prepare(flow_result, catalog, site)
    stats.skipped.update(prepared.skipped)  # e.g. dns_malformed: counted, not lost
    del flow_result
    n = len(prepared.flows)
    findings = schema.to_arrow(prepared.findings, schema.FINDINGS)
    hosts = schema.to_arrow(prepared.hosts, schema.HOSTS)
    flows: pa.Table | None = None
    counts: FlowCounts | None = None
    if write and n > WRITE_CHUNK_ROWS:
        # a large capture: its flows are filled, converted and written a chunk at a time
        counts = FlowCounts.of(prepared)
        flow_data: pa.Table | Iterable[pa.Table] = _flow_chunks(prepared)
    else:
        flows = flow_data = schema.to_arrow(prepared.chunk(0, n), schema.FLOWS)
    outputs: dict[str, Path] = {}
    if write:
        assert outdir is not None
        if progress is not None:
            progress(Progress("writing", stats.packets, streamed, stats.format, n))
        info = RunInfo(stats, catalog.sha256, site.sha256 if site is not None else None)
        info = replace(info, interrupted=interrupted, evicted=evicted)
        tables = {"flows": flow_data, "findings": findings, "hosts": hosts}
        outputs = write_tables(outdir, tables, metadata(info))
    del prepared, flow_data
    return Result(
        stats, flows, findings, hosts, outputs, interrupted=interrupted, evicted=evicted,
        counts=counts,
    )  # fmt: skip


def _flow_chunks(prepared: Prepared) -> Iterator[pa.Table]:
    """The flows table as Arrow chunks of WRITE_CHUNK_ROWS rows, each built when asked."""
    n = len(prepared.flows)
    for start in range(0, n, WRITE_CHUNK_ROWS):
        yield schema.to_arrow(prepared.chunk(start, start + WRITE_CHUNK_ROWS), schema.FLOWS)


def evicted_warning(name: str, evicted: int, cap: int) -> str:
    """The warning of a run whose connection table reached its cap."""
    return (
        f"{name}: {evicted:,} connections ended early because {cap:,} connections were "
        "live at once (the connection table's cap); a later packet of one starts a new "
        "connection"
    )


def _stream_bytes(raw: RawBatch, fmt: str) -> int:
    """Bytes of the capture stream a batch took (for a progress bar, not for records):
    exact for classic pcap, the Enhanced Packet Blocks without options for pcapng."""
    if fmt.endswith("pcapng"):
        padded = (raw.caplen.astype("int64") + 3) // 4 * 4
        return int(padded.sum()) + PCAPNG_EPB_OVERHEAD * raw.n
    return int(raw.caplen.sum(dtype="int64")) + PCAP_RECORD_OVERHEAD * raw.n


def _warn_about(stats: CaptureStats, interrupted: bool) -> None:
    """The run-level warnings of the contract: an interrupt, an empty capture."""
    if interrupted:
        stats.warnings.append(
            f"{stats.name}: interrupted after {stats.packets:,} packets; the results cover "
            "the packets read until then (exit code 130)"
        )
    elif stats.packets == 0 and not any(NO_PACKETS in w for w in stats.warnings):
        stats.warnings.append(f"{stats.name}: {NO_PACKETS}")
