"""Docs describe the same contract as the code: every CLI option and subcommand is
documented, and the column doc is generated from the schema (see test_output)."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from analyzer import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = {p: (ROOT / p).read_text() for p in ("README.md", "docs/contract.md")}


def _options(command: click.Command) -> list[str]:
    return [
        opt
        for p in command.params
        if isinstance(p, click.Option)
        for opt in p.opts
        if opt.startswith("--") and opt != "--help"
    ]


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_analyze_option_is_documented(doc: str) -> None:
    missing = [o for o in _options(cli.analyze_cmd) if o not in DOCS[doc]]
    assert missing == [], f"{doc} does not mention {missing}"


SIGNATURES_LINE = re.compile(r"^\s*`?(?:\.venv/bin/)?pcapclass signatures (?P<rest>.*)$")


def signatures_subcommands(text: str) -> set[str]:
    """Subcommands a doc gives on a `pcapclass signatures ...` line of its own: the first
    word of each `|` alternative ("pcapclass signatures list | show ID | validate [PATH]"
    gives list, show, validate), not any table cell that starts with a word."""
    found: set[str] = set()
    for line in text.splitlines():
        match = SIGNATURES_LINE.match(line)
        if match is None:
            continue
        for alternative in match.group("rest").split("#", 1)[0].split("|"):
            first = alternative.split()
            if first:
                found.add(first[0].strip("`"))
    return found


def test_signatures_subcommands_are_read_from_their_own_line() -> None:
    assert signatures_subcommands("pcapclass signatures list | show ID | validate [PATH]") == {
        "list", "show", "validate",
    }  # fmt: skip
    assert signatures_subcommands(".venv/bin/pcapclass signatures show cmi.x  # one") == {"show"}
    assert signatures_subcommands("| show | a table cell |\n| validate | x |") == set()
    assert signatures_subcommands("see `pcapclass signatures list` for the ids") == set()


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_signatures_subcommand_is_documented(doc: str) -> None:
    missing = set(cli.signatures_cmd.commands) - signatures_subcommands(DOCS[doc])
    assert missing == set(), f"{doc} has no `pcapclass signatures` line for {sorted(missing)}"


def _benchmark_commands() -> list[str]:
    text = (ROOT / "docs" / "performance.md").read_text()
    return sorted(
        {
            line.strip()
            for line in text.splitlines()
            if line.strip().startswith(".venv/bin/python benchmarks/")
        }
    )


def test_performance_doc_quotes_commands() -> None:
    assert len(_benchmark_commands()) >= 5


@pytest.mark.parametrize("command", _benchmark_commands())
def test_performance_doc_commands_exist(command: str) -> None:
    """Every command docs/performance.md quotes names a benchmark script that exists and
    options that script accepts (figures must stay reproducible)."""
    words = command.split()
    assert (ROOT / words[1]).is_file(), f"{words[1]} does not exist"
    usage = _usage(words[1])
    for word in words[2:]:
        if word.startswith("--"):
            assert word in usage, f"{words[1]} has no option {word}"


@functools.cache
def _usage(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_findings_column_is_named_in_the_contract() -> None:
    """schema.FINDINGS is the definition; the contract's findings section names each."""
    from analyzer import schema

    text = DOCS["docs/contract.md"]
    section = text.split("### findings.parquet", 1)[1].split("\n### ", 1)[0]
    missing = [c.name for c in schema.FINDINGS if f"`{c.name}`" not in section]
    assert missing == ["uids"], missing  # uids: under "Extensions in this version"
    assert "`uids`" in text.split("## Extensions in this version", 1)[1]
