"""Start-up: what a fresh interpreter loads for `pcapclass --help` and for one capture.
Asserted on sys.modules (what was imported), not on time: a module that is not loaded
costs nothing, whatever the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_pcaps" / "mixed_site.pcapng"
# Never needed for a single capture: the batch driver's and the reports' libraries.
NOT_FOR_A_CAPTURE = (
    "dask",
    "distributed",
    "matplotlib",
    "jinja2",
    "pyarrow.dataset",
    "duckdb",
    "tqdm",
    "analyzer.batch",
    "analyzer.policy",
    "analyzer.zeeklog",
    "netaddr.eui.ieee",  # the MAC registry is read without it (roles._vendor_of_oui)
)
# Not needed to print help: the analysis (numba kernels, pandas, Parquet writing).
NOT_FOR_HELP = (
    *NOT_FOR_A_CAPTURE,
    "numba",
    "pandas",
    "pyarrow.parquet",
    "analyzer.reader",
    "analyzer.pipeline",
    "analyzer.output",
)


def loaded_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """Run `code` in a fresh interpreter; the watched modules it left in sys.modules."""
    report = f"print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    probe = f"{code}\nimport sys, json\n{report}\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_and_help_load_no_analysis() -> None:
    code = (
        "import analyzer.cli\n"
        "from click.testing import CliRunner\n"
        "assert CliRunner().invoke(analyzer.cli.main, ['--help']).exit_code == 0\n"
    )
    assert loaded_after(code, NOT_FOR_HELP) == []


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample missing")
def test_one_capture_loads_nothing_of_batch_or_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = (
        "from click.testing import CliRunner\n"
        "from analyzer import cli\n"
        f"res = CliRunner().invoke(cli.main, [{str(SAMPLE)!r}, '-o', {str(out)!r}])\n"
        "assert res.exit_code in (0, 1), res.output\n"
    )
    assert loaded_after(code, NOT_FOR_A_CAPTURE) == []
    assert (out / "flows.parquet").exists()  # the run did analyse and write
