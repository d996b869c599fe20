"""The `pcapclass` command: parse, one library call, print, exit code. Nothing else.

    pcapclass CAPTURE [CAPTURE ...] [-o OUTDIR] [--site SITE.toml] [--fail-on SEVERITY] [--json]
    pcapclass signatures list | show ID | validate [PATH]

Exit codes (contract): 0 done, no finding at or above --fail-on; 1 done, at least one;
2 bad input or usage (one line on stderr); 3 internal error.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from . import __version__, schema, summary
from .errors import PcapclassError
from .signatures import format_list, format_show, load_catalog

if TYPE_CHECKING:
    from .pipeline import Result
    from .site import Site

PROG = "pcapclass"


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"{PROG}: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Domain errors become one line and their exit code; anything else is a bug (3)."""
    try:
        yield
    except PcapclassError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; no output file was left half-written", 130)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        traceback.print_exc(file=sys.stderr)
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it", 3)


class _DefaultToAnalyze(click.Group):
    """`pcapclass CAPTURE ...` runs `analyze` unless the first word is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "--version"):
            args = ["analyze", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToAnalyze, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def main() -> None:
    """Classify the connections in captures against the documented ports of GEMOS 4,
    Sesam/ISENet and the C.M.I., and write flows/findings/hosts as Parquet.

    Run `pcapclass CAPTURE` (the analyze command) or a subcommand."""


def _progress() -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A packet counter on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit=" pkts", unit_scale=True, file=sys.stderr, leave=False)

    def update(packets: int) -> None:
        bar.update(packets - bar.n)

    return update, bar.close


@main.command("analyze")
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
    type=click.Choice(schema.SEVERITIES),
    default=summary.DEFAULT_FAIL_ON,
    show_default=True,
    help="exit 1 when a finding has at least this severity",
)
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
@click.option(
    "--zeek-logs",
    is_flag=True,
    help="also write conn.log and pcapclass_findings.log (Zeek TSV) into the output directory",
)
def analyze_cmd(
    captures: tuple[str, ...],
    outdir: Path | None,
    site: Path | None,
    fail_on: str,
    as_json: bool,
    zeek_logs: bool = False,
) -> None:
    """Analyze captures (pcap, pcapng, optionally .gz; - for stdin)."""
    # Imported here, not at the top: pandas and the analysis modules take about half a
    # second to import, which `pcapclass --help` and `pcapclass signatures` need not pay.
    from .pipeline import STDIN, analyze

    results: list[Result] = []
    errors: list[str] = []
    worst_error = 0
    with _translate_errors():
        catalog = load_catalog()
        site_obj = None
        if site is not None:
            from .site import load_site

            site_obj = load_site(site, catalog=catalog)
    for capture in captures:
        target = outdir
        if outdir is not None and len(captures) > 1:
            target = outdir / ("stdin" if capture == STDIN else Path(capture).name)
        update, close = _progress()
        try:
            results.append(
                analyze(capture, outdir=target, site=site_obj, catalog=catalog, progress=update)
            )
            if zeek_logs:
                _add_zeek_logs(results[-1], site_obj)
        except PcapclassError as exc:
            errors.append(str(exc))
            worst_error = max(worst_error, exc.exit_code)
            click.echo(f"{PROG}: error: {exc}", err=True)
            continue
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            errors.append(f"internal error ({type(exc).__name__}: {exc})")
            worst_error = 3
            click.echo(
                f"{PROG}: error: internal error ({type(exc).__name__}: {exc}); please report it",
                err=True,
            )
            continue
        finally:
            close()
        for warning in results[-1].capture.warnings:
            click.echo(f"{PROG}: warning: {warning}", err=True)
    code = worst_error or summary.exit_code(results, fail_on)
    if as_json:
        click.echo(json.dumps(summary.as_json(results, code, errors), indent=2, default=str))
    else:
        click.echo("\n\n".join(summary.summary(r) for r in results))
    sys.exit(code)


def _add_zeek_logs(result: Result, site: Site | None) -> None:
    """--zeek-logs: conn.log and pcapclass_findings.log beside the Parquet files."""
    from .zeeklog import write_zeek_logs

    write_zeek_logs(result, result.outputs["flows"].parent, site=site)


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
    """Every field of one signature, with the source document's wording."""
    with _translate_errors():
        catalog = load_catalog()
        try:
            sig = catalog.get(signature_id)
        except KeyError:
            _fail(
                f"unknown signature id {signature_id!r}; `{PROG} signatures list` shows the ids", 2
            )
        click.echo(format_show(sig))


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


if __name__ == "__main__":
    main()
