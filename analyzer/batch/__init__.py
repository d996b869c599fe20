"""`pcapclass batch`: the nightly run over directories of captures.

    result = run(["captures/"], Path("ds"), workers=2)   # -> BatchResult

discover (captures by magic bytes, their site files) -> manifest (what is done already)
-> runner (worker.process per capture, in the driver, local processes or Dask) ->
partition files (written by the workers) + manifest rows (committed by the driver,
after the files are in place) -> baseline (new_pairs/) -> BatchResult (summary, --json,
exit code). Modules: discover, manifest, partition, worker, runner, baseline, progress,
report (summary text and JSON).

Resumable: a capture is analysed again unless its row is `done` with the same size,
mtime, catalog hash and site file hash; rows of captures in flight are `in_progress`
until their Outcome is committed, so a killed run leaves them for the next run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import PcapclassError, UsageError
from ..signatures import load_catalog
from . import baseline as baseline_mod
from . import discover, manifest, partition
from .interrupt import Interrupted, Signals
from .progress import Progress
from .runner import open_runner
from .worker import Outcome, Task

SETTLE_S = 60.0  # issue 9: a file modified within the last 60 s is still being written
DEFAULT_FAIL_ON = "high"  # contract: --fail-on defaults to high, as for analyze


@dataclass(frozen=True)
class Site:
    """A site file as the driver sees it: its partition name and hash, or why it fails."""

    path: str | None
    name: str
    sha256: str
    error: str | None = None


@dataclass
class BatchResult:
    """What a batch run found, did and left; `rows` are the manifest rows of every
    capture found under the inputs (analysed now or done before)."""

    dataset: Path
    fail_on: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    analysed: list[str] = field(default_factory=list)  # paths analysed in this run
    unchanged: list[str] = field(default_factory=list)  # done before, not analysed again
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    busy: list[tuple[str, float]] = field(default_factory=list)  # (path, seconds since write)
    before_since: int = 0  # files left out by --since
    cleaned: list[str] = field(default_factory=list)  # stray files of a killed run removed
    new_pairs: pd.DataFrame = field(default_factory=baseline_mod._empty)
    seconds: float = 0.0
    runner: str = ""

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def done(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "done"]

    def findings_at_or_above(self) -> int:
        """Findings rows, over the done captures, at or above --fail-on."""
        wanted = schema.SEVERITIES[schema.SEVERITY_RANK[self.fail_on] :]
        return sum(r[f"findings_{s}"] or 0 for r in self.done for s in wanted)

    @property
    def exit_code(self) -> int:
        """1 when a finding reaches --fail-on or a capture failed, else 0 (contract)."""
        return 1 if self.failed or self.findings_at_or_above() else 0

    def exit_reason(self) -> str:
        reasons = []
        if n := self.findings_at_or_above():
            reasons.append(f"{n} finding{'s' * (n != 1)} at or above {self.fail_on}")
        if n := len(self.failed):
            reasons.append(f"{n} capture{'s' * (n != 1)} failed")
        return "; ".join(reasons) or f"no finding at or above {self.fail_on}, no capture failed"


def run(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    site: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    since: dt.date | None = None,
    reprocess: bool = False,
    settle_s: float = SETTLE_S,
    fail_on: str = DEFAULT_FAIL_ON,
    progress: bool | None = None,
    analyze_options: Mapping[str, Any] | None = None,
    zeek_logs: bool = False,
    now: Callable[[], float] = time.time,
) -> BatchResult:
    """Analyse every capture under `inputs` not yet done into the dataset `out`.
    Raises UsageError (and friends) only for bad usage; a capture that cannot be read is
    recorded `failed` and the others go on. progress=None: on when stderr is a terminal."""
    start = time.monotonic()
    dataset = Path(out).absolute()
    if fail_on not in schema.SEVERITY_RANK:
        raise UsageError(f"--fail-on {fail_on}: not one of {', '.join(schema.SEVERITIES)}")
    if workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    if not inputs:
        raise UsageError("batch: give at least one INPUT (a capture or a directory)")
    for given in inputs:
        if not Path(given).exists():
            raise UsageError(f"{given}: no such file or directory")
    catalog = load_catalog()
    default_site = _load_site(Path(site), catalog, strict=True) if site is not None else None
    result = BatchResult(dataset=dataset, fail_on=fail_on)

    with Signals() as signals, manifest.locked(dataset) as man:
        rows = man.rows()
        result.cleaned = partition.clean_stray(dataset, _referenced(rows.values()))
        tasks, sizes, found = _plan(
            inputs,
            dataset,
            man,
            rows,
            catalog,
            default_site,
            result,
            since=since,
            reprocess=reprocess,
            settle_s=settle_s,
            now=now(),
            analyze_options=dict(analyze_options or {}),
            zeek_logs=zeek_logs,
        )
        if tasks:
            committed: set[str] = set()
            bar = Progress(len(tasks), sum(s[0] for s in sizes.values()), enabled=progress)
            if bar.enabled:  # the workers report the bytes they read
                tasks = [dataclasses.replace(t, progress=True) for t in tasks]
            try:
                with signals.deferred():
                    man.put(
                        {
                            **rows.get(t.path, {}),
                            **_stat_row(t.path, sizes[t.path]),
                            "status": "in_progress",
                            "message": None,
                        }
                        for t in tasks
                    )
                with open_runner(
                    workers=workers,
                    scheduler=scheduler,
                    shield=signals.deferred,
                    report=bar.advance if bar.enabled else None,
                ) as runner:
                    result.runner = runner.describe()
                    futures = [runner.submit(t) for t in tasks]
                    for task, outcome in runner.completed(futures):
                        with signals.deferred():
                            _commit(man, dataset, task, outcome, sizes[task.path])
                            committed.add(task.path)
                        result.analysed.append(task.path)
                        bar.update(outcome, sizes[task.path][0])
            except BaseException as exc:
                if (stop := signals.stopped_by(exc)) is None:
                    raise
                with signals.deferred():
                    bar.close()
                    _abandon(man, dataset, [t.path for t in tasks], rows, committed)
                if stop is exc:
                    raise
                raise stop from exc
            finally:
                bar.close()
        pending = man.pending()
        fresh = baseline_mod.write_new_pairs(dataset, pending) if pending else None
        man.clear_pending(pending)
        rows = man.rows()
        result.rows = [rows[p] for p in found if p in rows]
    shutil.rmtree(dataset / partition.STAGING, ignore_errors=True)
    result.new_pairs = _summary_pairs(dataset, result.rows, fresh)
    result.seconds = time.monotonic() - start
    return result


def _abandon(
    man: manifest.Manifest,
    dataset: Path,
    paths: Sequence[str],
    before: Mapping[str, Mapping[str, Any]],
    committed: set[str],
) -> None:
    """After an interrupt (the workers stopped): the captures not finished get their rows
    back as they were before this run (none, for a capture new to the manifest or left
    in_progress by a killed run), and files no row points at go (staged, or renamed
    into place before the row was committed). The next run analyses them again."""
    unfinished = [p for p in paths if p not in committed]
    restore = [before[p] for p in unfinished if before.get(p, {}).get("status") not in
               (None, "in_progress")]  # fmt: skip
    man.put(restore)
    man.delete(p for p in unfinished if before.get(p, {}).get("status") in (None, "in_progress"))
    partition.clean_stray(dataset, _referenced(man.rows().values()))


def _load_site(path: Path, catalog: Any, *, strict: bool) -> Site:
    """Validate a site file. strict (the --site option): a bad file is bad usage, exit 2;
    otherwise (a site.toml found in the tree) its captures fail with the message."""
    from ..site import load_site

    try:
        loaded = load_site(path, catalog=catalog)
    except PcapclassError as exc:
        if strict:
            raise
        return Site(str(path), partition.UNKNOWN_SITE, "", error=str(exc))
    return Site(str(path.absolute()), partition.site_value(loaded.name), loaded.sha256)


def _referenced(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    return {p for r in rows for p in manifest.parts_of(r)}


def _stat_row(path: str, size_mtime: tuple[int, float]) -> dict[str, Any]:
    return {"path": path, "size": size_mtime[0], "mtime": size_mtime[1]}


def _plan(
    inputs: Sequence[str | Path],
    dataset: Path,
    man: manifest.Manifest,
    rows: dict[str, dict[str, Any]],
    catalog: Any,
    default_site: Site | None,
    result: BatchResult,
    *,
    since: dt.date | None,
    reprocess: bool,
    settle_s: float,
    now: float,
    analyze_options: dict[str, Any],
    zeek_logs: bool = False,
) -> tuple[list[Task], dict[str, tuple[int, float]], list[str]]:
    """Decide for every file under the inputs: analyse, already done, skip, or wait.
    Records skipped and unreadable files in the manifest; returns the tasks, each file's
    (size, mtime) and the paths of the captures found (in path order)."""
    sites: dict[Path, Site] = {}
    record: list[dict[str, Any]] = []
    tasks: list[Task] = []
    sizes: dict[str, tuple[int, float]] = {}
    found: list[str] = []
    since_ts = (
        dt.datetime.combine(since, dt.time(), dt.UTC).timestamp() if since is not None else None
    )
    for cand in discover.walk([Path(i) for i in inputs], exclude=dataset):
        path, row = str(cand.path), rows.get(str(cand.path))
        stat = {"path": path, "size": cand.size, "mtime": cand.mtime}
        same_file = row is not None and row["size"] == cand.size and row["mtime"] == cand.mtime
        if since_ts is not None and cand.mtime < since_ts:
            result.before_since += 1
            continue
        if same_file and row is not None and row["status"] == "skipped" and row["sha256"] is None:
            result.skipped.append((path, row["message"]))  # not a capture, unchanged
            continue
        if cand.site_file is not None:
            if cand.site_file not in sites:
                sites[cand.site_file] = _load_site(cand.site_file, catalog, strict=False)
            site: Site | None = sites[cand.site_file]
        else:
            site = default_site
        site_sha = site.sha256 if site is not None else ""
        if (
            not reprocess
            and same_file
            and row is not None
            and row["status"] == "done"
            and row["catalog_sha256"] == catalog.sha256
            and row["site_sha256"] == site_sha
            and (not zeek_logs or _has_zeek_logs(row))
        ):
            result.unchanged.append(path)
            found.append(path)
            continue
        if now - cand.mtime < settle_s:
            result.busy.append((path, max(now - cand.mtime, 0.0)))
            continue
        try:
            discover.sniff(cand.path)
        except discover.NotCapture as exc:
            result.skipped.append((path, str(exc)))
            if row is None or row["status"] == "skipped":
                record.append(
                    {
                        **manifest.empty_row(path, cand.size, cand.mtime),
                        "status": "skipped",
                        "message": str(exc),
                    }
                )
            continue
        except OSError as exc:
            found.append(path)
            record.append(_failed_row(row, stat, f"{path}: cannot read: {exc.strerror}"))
            continue
        found.append(path)
        if site is not None and site.error is not None:
            record.append(_failed_row(row, stat, site.error))
            continue
        sizes[path] = (cand.size, cand.mtime)
        site_path = site.path if site is not None else None
        tasks.append(Task(path, str(dataset), site_path, analyze_options, zeek_logs=zeek_logs))
    if record:
        man.put(record)
    return tasks, sizes, found


def _has_zeek_logs(row: Mapping[str, Any]) -> bool:
    """A done row that has its Zeek logs, or wrote no files at all (nothing to log)."""
    parts = manifest.parts_of(row)
    return not parts or any(p.startswith(f"{partition.ZEEK_DIR}/") for p in parts)


def _failed_row(
    row: Mapping[str, Any] | None, stat: Mapping[str, Any], message: str
) -> dict[str, Any]:
    """A failed row keeps the file's earlier partition files until a run replaces them."""
    base = dict(row) if row is not None else manifest.empty_row(stat["path"], 0, 0.0)
    return {**base, **stat, "status": "failed", "message": message}


def _commit(
    man: manifest.Manifest,
    dataset: Path,
    task: Task,
    outcome: Outcome,
    size_mtime: tuple[int, float],
) -> None:
    """Record one Outcome: the row, and the partition files it no longer owns removed.
    Order matters for a kill at any point: the new files are in place (the worker did
    that), old ones go, then the row is committed; until then the row says in_progress
    and the next run analyses the capture again, writing the same names."""
    rows = man.rows()
    old = rows.get(task.path) or manifest.empty_row(task.path, *size_mtime)
    others = _referenced(r for p, r in rows.items() if p != task.path)
    stale = (
        []
        if outcome.status == "failed"
        else [p for p in manifest.parts_of(old) if p not in outcome.parts and p not in others]
    )  # a failed capture keeps its last good partition files (the row says failed)
    row: dict[str, Any] = {**old, **_stat_row(task.path, size_mtime)}
    pending = {(old["site"], old["date"])} if stale and old.get("date") else set()
    if outcome.status == "done":
        duplicate = next(
            (
                p
                for p, r in rows.items()
                if p != task.path
                and r["status"] == "done"
                and outcome.parts
                and manifest.parts_of(r) == outcome.parts
            ),
            None,
        )
        row.update(
            status="skipped" if duplicate else "done",
            message=f"same content as {duplicate}; counted once" if duplicate else outcome.message,
            sha256=outcome.sha256,
            site=outcome.site,
            date=outcome.date,
            site_file=task.site_file,
            packets=outcome.packets,
            flows=outcome.flows,
            seconds=outcome.seconds,
            tool_version=outcome.tool_version,
            catalog_sha256=outcome.catalog_sha256,
            site_sha256=outcome.site_sha256,
            parts=None if duplicate else _json(outcome.parts),
            **{f"findings_{s}": outcome.findings.get(s, 0) for s in schema.SEVERITIES},
        )
        if outcome.date is not None and not duplicate:
            pending.add((str(outcome.site), outcome.date))
    else:
        row.update(status="failed", message=outcome.message, seconds=outcome.seconds)
    partition.remove(dataset, stale)
    man.put([row], pending=sorted(pending))


def _json(parts: list[str]) -> str | None:
    import json

    return json.dumps(parts) if parts else None


def _summary_pairs(
    dataset: Path, rows: Sequence[Mapping[str, Any]], fresh: pd.DataFrame | None
) -> pd.DataFrame:
    """The newest date's new pairs of every site the found captures belong to."""
    sites = sorted({r["site"] for r in rows if r["status"] == "done" and r["site"]})
    frames = []
    computed = set(fresh["site"]) if fresh is not None else set()
    if fresh is not None:
        frames.append(fresh[fresh["site"].isin(sites)])
    frames += [baseline_mod.stored(dataset, s) for s in sites if s not in computed]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return baseline_mod._empty()
    return pd.concat(frames, ignore_index=True)


def status(dataset: str | Path) -> pd.DataFrame:
    """The manifest as a table (what `pcapclass batch --status DATASET` prints)."""
    rows = manifest.read_status(Path(dataset))
    return pd.DataFrame(rows, columns=manifest.COLUMNS)


def format_result(result: BatchResult, *, as_json: bool) -> str:
    """What the CLI prints at the end of a run: the summary, or the --json object."""
    import json

    from . import report

    if as_json:
        return json.dumps(report.as_json(result), indent=2, default=str)
    return report.summary(result)


def format_status(dataset: str | Path, *, as_json: bool) -> str:
    """What `pcapclass batch --status DATASET` prints (rows of the manifest)."""
    import json

    from . import report

    rows = manifest.read_status(Path(dataset))
    if as_json:
        return json.dumps(rows, indent=2)
    return report.status_text(rows, str(dataset))


__all__ = [
    "BatchResult",
    "Interrupted",
    "Signals",
    "format_result",
    "format_status",
    "run",
    "status",
]
