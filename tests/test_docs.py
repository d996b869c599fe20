"""Docs describe the same contract as the code: every CLI option and subcommand is
documented, and the column doc is generated from the schema (see test_output)."""

from __future__ import annotations

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


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_signatures_subcommand_is_documented(doc: str) -> None:
    for name in cli.signatures_cmd.commands:
        assert f"signatures {name}" in DOCS[doc] or f"| {name}" in DOCS[doc], (doc, name)
