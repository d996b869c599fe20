"""The `pcapclass` command: parse, one library call, print, exit code. Nothing else.

    pcapclass CAPTURE [CAPTURE ...] [-o OUTDIR] [--site SITE.toml] [--fail-on SEVERITY]
              [--limit N] [--json]
    pcapclass batch INPUT [INPUT ...] --out DATASET [--workers N] [--scheduler ADDRESS] ...
    pcapclass signatures list | show ID | validate [PATH]

Exit codes (contract; the several-captures rule is summary.run_exit_code): 0 done, no
finding at or above --fail-on; 1 done, at least one, or some captures failed while
others were analysed; 2 bad input or usage (one line on stderr); 3 internal error;
130 interrupted (SIGINT/SIGTERM: what was read is analysed and written).
"""

from __future__ import annotations

import _thread
import atexit
import gc
import json
import os
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__, schema, summary
from .errors import PcapclassError
from .schema import ROLES
from .signatures import format_list, format_role, format_show, load_catalog

if TYPE_CHECKING:
    from .pipeline import Result
    from .site import Site

PROG = "pcapclass"
DEFAULT_BASE = Path("pcapclass-out")  # contract: ./pcapclass-out/<capture name>/
REPORT_LIMIT = 50  # findings rows in the HTML report (analyzer.report.DEFAULT_LIMIT)
EXIT_CODES_HELP = """\b
Exit codes:
  0    done, no finding at or above --fail-on
  1    done, at least one finding at or above --fail-on, or some captures
       failed while others were analysed (the errors are listed)
  2    bad input or usage, or no capture could be read (one line on stderr)
  3    internal error (a bug; please report it)
  130  interrupted (Ctrl-C, SIGTERM): what was read is analysed and written,
       with pcapclass.interrupted = "true" in the metadata"""


def _line(text: str) -> str:
    """One line for stderr: control characters escaped (crafted file names)."""
    return summary.printable(text)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"{PROG}: error: {_line(message)}", err=True)
    sys.exit(code)


def _warn(message: str) -> None:
    click.echo(f"{PROG}: warning: {_line(message)}", err=True)


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Domain errors become one line and their exit code; anything else is a bug (3)."""
    try:
        yield
    except PcapclassError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _print_error("aborted; no output file was left half-written")
        _exit_now(summary.EXIT_INTERRUPTED)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        traceback.print_exc(file=sys.stderr)
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it", 3)


class _DefaultToAnalyze(click.Group):
    """`pcapclass CAPTURE ...` runs `analyze` unless the first word is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["analyze", *args]
        return super().parse_args(ctx, args)

    def main(  # type: ignore[override]  # same parameters; exits instead of returning
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's usage errors as one line like every other error (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else PROG
            message = exc.format_message().rstrip(".")
            _fail(f"{message}; see `{where} --help`", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", summary.EXIT_INTERRUPTED)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(
    cls=_DefaultToAnalyze,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name=PROG)
def main() -> None:
    """Classify the connections in captures against the documented ports of GEMOS 4,
    Sesam/ISENet and the C.M.I., and write flows/findings/hosts as Parquet.

    Run `pcapclass CAPTURE ...` (the analyze command; `pcapclass analyze --help`
    lists its options) or a subcommand."""


class _Interrupts:
    """SIGINT/SIGTERM during a run. The first means "stop reading here": stop() turns
    True, which the reader asks while reading (a live pipe: within reader.LIVE_POLL_S,
    after the bytes that had arrived). The second aborts at once: while an output file
    is being written by KeyboardInterrupt (the writer removes its temporaries; every
    final name holds a complete file), anywhere else by exiting on the spot.

    Signals are counted by a thread reading the interpreter's wakeup pipe (one byte per
    signal), not by the Python handler: while the main thread is inside a compiled
    kernel, two signals would reach the handler as one, and a KeyboardInterrupt inside
    a kernel's callback would be ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None  # name of the first signal
        self._count = 0
        self._abort = False  # the watcher asks the main thread to unwind its writer
        self._old: dict[int, Any] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1

    def __enter__(self) -> _Interrupts:
        for sig in self.SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._pipe = (r, w)
        self._old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        threading.Thread(
            target=self._watch, args=(r,), name="pcapclass-signals", daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._old_wakeup)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._pipe is not None:
            os.close(self._pipe[1])  # the watcher reads the end and returns

    def stop(self) -> bool:
        return self._count > 0 or self.received is not None

    def _watch(self, r: int) -> None:
        try:
            while data := os.read(r, 64):
                for signum in data:
                    if signum in self.SIGNALS:
                        self._signal(signum)
        finally:
            os.close(r)

    def _signal(self, signum: int) -> None:
        self._count += 1
        if self._count > 1:
            if _writing(sys._current_frames().get(threading.main_thread().ident or 0)):
                self._abort = True
                _thread.interrupt_main(signal.SIGINT)  # the handler raises KeyboardInterrupt
                return
            _print_error("aborted; no output file was left half-written")
            _exit_now(summary.EXIT_INTERRUPTED)
        self.received = self.received or signal.Signals(signum).name
        again = "Ctrl-C" if signum == signal.SIGINT else "a second signal"
        _warn(
            f"{self.received} received: stopping; what was read is analysed and written "
            f"({again} aborts at once)"
        )

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # the main thread knows of the signal at once, whenever the watcher runs
        self.received = self.received or signal.Signals(signum).name
        if self._abort:
            self._abort = False
            raise KeyboardInterrupt  # unwinds the writer, which removes its temporaries


WRITER_MODULES = ("analyzer.output", "analyzer.zeeklog")  # modules writing temporaries


def _writing(frame: FrameType | None) -> bool:
    """Whether the main thread is inside an output writer (temporaries exist)."""
    while frame is not None:
        if frame.f_globals.get("__name__") in WRITER_MODULES:
            return True
        frame = frame.f_back
    return False


def _targets(captures: Sequence[str], outdir: Path | None) -> list[Path]:
    """Each capture's output folder: -o itself for one capture, else OUTDIR/<name>/
    (default ./pcapclass-out/<name>/). Refuses (exit 2, before reading) two captures that
    would share a folder, and stdin without -o."""
    from .output import folder_name  # with pyarrow.parquet: not for --help
    from .pipeline import STDIN

    if len(captures) == 1:
        if outdir is not None:
            return [outdir]
        if captures[0] == STDIN:
            _fail("reading a capture from standard input (-) needs -o OUTDIR", 2)
        return [DEFAULT_BASE / folder_name(captures[0])]
    base = outdir if outdir is not None else DEFAULT_BASE
    targets = [base / folder_name(c) for c in captures]
    seen: dict[str, str] = {}
    for capture, target in zip(captures, targets, strict=True):
        key = os.path.normcase(os.path.abspath(target))
        if key in seen:
            first = seen[key]
            _fail(
                f"{first} and {capture} would both write to {target}/; "
                "give the captures different file names or run them one at a time with "
                "their own -o",
                2,
            )
        seen[key] = capture
    return targets


@main.command("analyze", epilog=EXIT_CODES_HELP)
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "-o",
    "--out",
    "outdir",
    type=click.Path(path_type=Path),
    help="output directory (default ./pcapclass-out/<capture name>/)",
)
@click.option("--site", type=click.Path(path_type=Path), help="site inventory (TOML)")
@click.option(
    "--fail-on",
    type=click.Choice(schema.SEVERITIES, case_sensitive=False),
    default=summary.DEFAULT_FAIL_ON,
    show_default=True,
    help="exit 1 when a finding has at least this severity",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=summary.DEFAULT_LIMIT,
    show_default=True,
    help="findings rows shown per capture (most severe first; --json shows all)",
)
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
@click.option(
    "--zeek-logs",
    is_flag=True,
    help="also write conn.log and pcapclass_findings.log (Zeek TSV) into the output directory",
)
@click.option(
    "--report",
    "with_report",
    is_flag=True,
    help="also write report.html (one self-contained HTML page) into the output directory",
)
def analyze_cmd(
    captures: tuple[str, ...],
    outdir: Path | None,
    site: Path | None,
    fail_on: str,
    limit: int,
    as_json: bool,
    zeek_logs: bool = False,
    with_report: bool = False,
) -> None:
    """Analyze captures (pcap, pcapng, optionally .gz; - for stdin).

    Ctrl-C (or SIGTERM) stops reading: what was read is analysed, written and
    summarised, and the exit code is 130; a second Ctrl-C aborts at once."""
    # Imported here, not at the top: pandas and the analysis modules take about half a
    # second to import, which `pcapclass --help` and `pcapclass signatures` need not pay.
    from . import progress as progress_mod
    from .output import check_outdir
    from .pipeline import analyze

    fail_on = fail_on.lower()
    results: list[Result] = []
    paths: list[str] = []
    failures: list[summary.Failure] = []
    with _translate_errors():
        targets = _targets(captures, outdir)
        for target in dict.fromkeys(targets):
            check_outdir(target)
        catalog = load_catalog()
        site_obj = None
        if site is not None:
            from .site import load_site

            site_obj = load_site(site, catalog=catalog)
    not_read: list[str] = []
    reports: dict[str, Path] = {}  # --report: capture as typed -> report.html
    with _translate_errors(), _Interrupts() as interrupts:
        for capture, target in zip(captures, targets, strict=True):
            if interrupts.stop():
                not_read.append(capture)
                continue
            bar = progress_mod.for_terminal(capture)
            try:
                result = analyze(
                    capture,
                    outdir=target,
                    site=site_obj,
                    catalog=catalog,
                    progress=bar,
                    stop=interrupts.stop,
                )
            except PcapclassError as exc:
                failures.append(summary.Failure(capture, str(exc), exc.exit_code))
                _print_error(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one capture's bug must not hide others
                traceback.print_exc(file=sys.stderr)
                message = f"internal error ({type(exc).__name__}: {exc}); please report it"
                failures.append(summary.Failure(capture, message, summary.EXIT_INTERNAL))
                _print_error(message)
                continue
            finally:
                if bar is not None:
                    bar.close()
            results.append(result)
            paths.append(capture)
            if zeek_logs and result.outputs:
                _add_zeek_logs(result, site_obj)
            if with_report and result.outputs:
                try:
                    reports[capture] = _add_report(result, site_obj)
                except PcapclassError as exc:
                    failures.append(summary.Failure(capture, str(exc), exc.exit_code))
                    _print_error(str(exc))
            for warning in result.capture.warnings:
                _warn(warning)
        code = summary.run_exit_code(
            results, failures, fail_on, interrupted=interrupts.received is not None
        )
        if as_json:
            obj = summary.as_json(results, code, failures, paths=paths, not_read=not_read)
            if with_report:
                obj["reports"] = {path: str(p) for path, p in reports.items()}
            _print(json.dumps(obj, indent=2, default=str))
        else:
            width = _terminal_width()
            parts = [
                summary.summary(r, limit=limit, width=width)
                + (f"\nreport: {_line(str(reports[p]))}" if p in reports else "")
                for r, p in zip(results, paths, strict=True)
            ]
            if len(captures) > 1 and (failures or not_read):
                parts.append(summary.failures_summary(failures, not_read, width=width))
            if parts:
                _print("\n\n".join(parts))
    if code == summary.EXIT_INTERRUPTED:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> NoReturn:
    """Exit after an interrupt without the interpreter's shutdown: the reader's thread
    may still wait on a live pipe holding stdin's lock, which would abort the shutdown.
    Every output file is complete and closed by now; stdout and stderr are flushed."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _print_error(message: str) -> None:
    click.echo(f"{PROG}: error: {_line(message)}", err=True)


def _print(text: str) -> None:
    """stdout; a reader that went away (`| head`) is not an error."""
    try:
        click.echo(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _terminal_width() -> int | None:
    """The width the summary fits: COLUMNS when set, else the terminal's when stdout is
    one (shutil.get_terminal_size); None for a pipe or file (lines are not cut)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if sys.stdout.isatty():
            return shutil.get_terminal_size().columns
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _add_zeek_logs(result: Result, site: Site | None) -> None:
    """--zeek-logs: conn.log and pcapclass_findings.log beside the Parquet files."""
    from .zeeklog import write_zeek_logs

    write_zeek_logs(result, result.outputs["flows"].parent, site=site)


def _add_report(result: Result, site: Site | None) -> Path:
    """--report: report.html beside the Parquet files."""
    from .report import write_report

    folder = result.outputs["flows"].parent
    return write_report(folder, folder / "report.html", site_name=site.name if site else None)


@main.command("report")
@click.argument("source", metavar="OUTDIR_OR_DATASET", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(path_type=Path),
    help="the HTML file to write (default OUTDIR_OR_DATASET/report.html)",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=REPORT_LIMIT,
    show_default=True,
    help="findings and new-pair rows shown (most severe first); the page says how many more",
)
def report_cmd(source: Path, out: Path | None, limit: int) -> None:
    """Write one self-contained HTML report (no script, no network) of a capture's
    output folder or a batch dataset: C.M.I. headline, findings, plots, capture health,
    signature coverage, and for a dataset what is new since last night."""
    with _translate_errors():
        from .report import write_report

        path = write_report(source, out, limit=limit)
    click.echo(f"report: {_line(str(path))}")


@main.group("signatures")
def signatures_cmd() -> None:
    """Inspect and validate the signature catalog."""


@signatures_cmd.command("list")
def signatures_list() -> None:
    """One line per signature: id, system, transport, ports, direction, status."""
    with _translate_errors():
        click.echo(format_list(load_catalog()))


@signatures_cmd.command("show")
@click.argument("signature_id", metavar="ID")
def signatures_show(signature_id: str) -> None:
    """Every field of one signature, with the source document's wording; for a role
    (e.g. isenet), its common infrastructure and the signatures documenting it."""
    with _translate_errors():
        catalog = load_catalog()
        if signature_id in ROLES:
            click.echo(format_role(catalog, signature_id))
            return
        try:
            sig = catalog.get(signature_id)
        except KeyError:
            _fail(
                f"unknown signature id {signature_id!r}; `{PROG} signatures list` shows the ids", 2
            )
        click.echo(format_show(sig, catalog))


@signatures_cmd.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def signatures_validate(path: Path | None) -> None:
    """Validate a signature file or folder (default: the shipped catalog)."""
    with _translate_errors():
        catalog = load_catalog(path)
        where = path if path is not None else "the shipped catalog"
        click.echo(
            f"{where}: {len(catalog.signatures)} signatures in "
            f"{len(catalog.files)} files are valid (sha256 {catalog.sha256[:12]})"
        )


@main.command("batch")
@click.argument("inputs", nargs=-1, metavar="INPUT...", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    metavar="DATASET",
    help="the dataset directory (created; a rerun adds only what is new)",
)
@click.option(
    "--site",
    type=click.Path(path_type=Path),
    help="site file for captures without a site.toml in their directory or above",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="local worker processes (1: in this process)",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="only files modified on or after DATE (YYYY-MM-DD, UTC)",
)
@click.option("--reprocess", is_flag=True, help="analyse every capture again")
@click.option(
    "--settle",
    "settle_s",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="a file modified this recently is still being written: next run",
)
@click.option(
    "--fail-on",
    type=click.Choice(schema.SEVERITIES, case_sensitive=False),
    default=summary.DEFAULT_FAIL_ON,
    show_default=True,
    help="exit 1 when a finding has at least this severity",
)
@click.option(
    "--status",
    "status_of",
    type=click.Path(path_type=Path),
    metavar="DATASET",
    help="print the manifest of DATASET (one row per capture) and exit",
)
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
@click.option(
    "--zeek-logs",
    is_flag=True,
    help="also write each capture's conn.log and pcapclass_findings.log (Zeek TSV) "
    "under DATASET/zeek/",
)
def batch_cmd(
    inputs: tuple[Path, ...],
    out: Path | None,
    site: Path | None,
    workers: int,
    scheduler: str | None,
    since: Any,
    reprocess: bool,
    settle_s: float,
    fail_on: str,
    status_of: Path | None,
    as_json: bool,
    zeek_logs: bool = False,
) -> None:
    """Analyse every capture under the INPUTs (files or directories) into one
    Hive-partitioned dataset, resuming where the last run stopped.

    Exit 1 when a finding reaches --fail-on or a capture failed, else 0; 2 for bad usage."""
    from . import batch

    with _translate_errors():
        if status_of is not None:
            click.echo(batch.format_status(status_of, as_json=as_json))
            return
        if not inputs or out is None:
            raise click.UsageError("give INPUT... and --out DATASET (or --status DATASET)")
        try:
            with batch.Signals():  # until the summary is out: any moment exits 130
                result = batch.run(
                    inputs,
                    out,
                    site=site,
                    workers=workers,
                    scheduler=scheduler,
                    since=since.date() if since else None,
                    reprocess=reprocess,
                    settle_s=settle_s,
                    fail_on=fail_on,
                    zeek_logs=zeek_logs,
                )
                click.echo(batch.format_result(result, as_json=as_json))
        except KeyboardInterrupt as exc:  # batch.Interrupted: the signal named
            _fail(str(exc) or "interrupted; the next run does the rest", 130)
    sys.exit(result.exit_code)


@main.command("policy")
@click.argument("site_file", metavar="SITE.toml", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["nftables"]),
    default="nftables",
    show_default=True,
    help="ruleset format",
)
@click.option(
    "-o", "--out", "out", type=click.Path(path_type=Path), help="write here (default: stdout)"
)
@click.option(
    "--from",
    "seen_path",
    type=click.Path(path_type=Path),
    help="narrow to what this capture output folder or batch dataset saw expected",
)
def policy_cmd(site_file: Path, fmt: str, out: Path | None, seen_path: Path | None) -> None:
    """Write the site's documented connections as a firewall allow-list."""
    with _translate_errors():
        from .policy import build_policy, load_seen, render_nftables
        from .site import load_site
        from .zeeklog import write_text_atomic

        catalog = load_catalog()
        site_obj = load_site(site_file, catalog=catalog)
        seen = load_seen(seen_path) if seen_path is not None else None
        policy = build_policy(catalog, site_obj, seen=seen)
        text = render_nftables(policy)
        for note in policy.notes:
            click.echo(f"{PROG}: warning: {note}", err=True)
        if policy.dropped:
            count = sum(d.flows for d in policy.dropped)
            click.echo(
                f"{PROG}: {count} connection(s) seen would be dropped; listed at the end "
                "of the ruleset",
                err=True,
            )
        if out is None:
            click.echo(text, nl=False)
        else:
            write_text_atomic(out, text)


# The script's garbage-collector thresholds (Python's default: 700, 10, 10). A run creates
# and keeps many container objects (modules, pandas and numba internals, per-class
# decisions) and almost no reference cycles, so the default's frequent collections,
# full ones included, walk the same live objects again and again: measured with
# gc.callbacks, 0.135 s of the demo run and 0.37 s of a 100 k-connection capture were
# spent in collections (0.05 and 0.09 s with these). Cycles are still collected, after
# 100,000 allocations instead of 700.
GC_THRESHOLDS = (100_000, 50, 100)


def run() -> NoReturn:
    """The installed `pcapclass` script (and `python -m analyzer.cli`): `main`, then the
    exit without the interpreter's teardown of its modules. Tearing down numba, pandas
    and pyarrow took about 0.3 s of a 1.9 s run on the demo sample, after every output
    file was complete and closed. The exit handlers (atexit) still run, stdout and
    stderr are flushed; while a non-daemon thread is still alive, the normal exit waits
    for it as always. The garbage collector runs less often (GC_THRESHOLDS)."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        main(prog_name=PROG)
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if not _fast_exit_allowed(code):
        sys.exit(code)  # type: ignore[arg-type]  # SystemExit's own code, unchanged
    atexit._run_exitfuncs()
    _exit_now(0 if code is None else int(code))  # type: ignore[call-overload]


def _fast_exit_allowed(code: object) -> bool:
    """An exit code os._exit can give as sys.exit would (None or an int; a message
    string is printed by sys.exit), and no other non-daemon thread left to wait for."""
    if code is not None and not isinstance(code, int):
        return False
    main_thread = threading.main_thread()
    return not any(t is not main_thread and not t.daemon for t in threading.enumerate())


if __name__ == "__main__":
    run()
