"""Golden results: each sample capture analysed with its site file must give exactly the
reviewed tables in tests/golden/ (stable columns only, rows sorted, CSV so that a change
reads as a person-readable diff). After an intended change, run `pytest --update-golden`
and review the diff of tests/golden/ before committing it."""

from __future__ import annotations

import difflib
import io
from pathlib import Path

import pandas as pd
import pytest

from analyzer.pipeline import analyze

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
GOLDEN = Path(__file__).resolve().parent / "golden"

SAMPLE_FILES = [
    "cmi_site.pcap.gz",
    "gemos_site.vlan.pcap",
    "mixed_site.pcapng",
    "sesam_site.sll2.pcap",
]
FLOW_COLUMNS = [
    "uid", "ts", "proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_evidence",
    "conn_state", "history", "orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes",
    "service", "system", "signature_id", "verdict", "severity",
]  # fmt: skip
FINDING_COLUMNS = [
    "verdict", "severity", "system", "signature_id", "orig_h", "resp_h", "proto", "resp_p",
    "first_ts", "last_ts", "flows", "orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes",
]  # fmt: skip
MAX_DIFF_LINES = 60


def site_file(sample: str) -> Path:
    return SAMPLES / (sample.split(".")[0] + ".site.toml")


def stable_csv(table: pd.DataFrame, columns: list[str]) -> str:
    """The columns as CSV, rows sorted on all of them; timestamps as ISO text with µs."""
    frame = table[columns].copy()
    for col in columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    frame = frame.astype("string").fillna("")
    frame = frame.sort_values(columns, kind="stable").reset_index(drop=True)
    out = io.StringIO()
    frame.to_csv(out, index=False, lineterminator="\n")
    return out.getvalue()


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    return {}


def analysed(sample: str, cache: dict[str, object]):
    if sample not in cache:
        cache[sample] = analyze(SAMPLES / sample, site=site_file(sample), write=False)
    return cache[sample]


def compare_or_update(actual: str, golden: Path, update: bool) -> None:
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
        return
    if not golden.exists():
        pytest.fail(f"{golden} is missing: run `pytest --update-golden` and review it")
    expected = golden.read_text()
    if actual != expected:
        diff = list(
            difflib.unified_diff(
                expected.splitlines(), actual.splitlines(), str(golden), "now", lineterm=""
            )
        )
        shown = "\n".join(diff[:MAX_DIFF_LINES])
        more = (
            f"\n... {len(diff) - MAX_DIFF_LINES} more diff lines"
            if len(diff) > MAX_DIFF_LINES
            else ""
        )
        pytest.fail(f"{golden.name} differs (pytest --update-golden to accept):\n{shown}{more}")


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_flows_match_golden(sample: str, results, request: pytest.FixtureRequest):
    result = analysed(sample, results)
    actual = stable_csv(result.flows.to_pandas(), FLOW_COLUMNS)
    golden = GOLDEN / f"{sample.split('.')[0]}.flows.csv"
    compare_or_update(actual, golden, request.config.getoption("--update-golden"))


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_findings_match_golden(sample: str, results, request: pytest.FixtureRequest):
    result = analysed(sample, results)
    actual = stable_csv(result.findings.to_pandas(), FINDING_COLUMNS)
    golden = GOLDEN / f"{sample.split('.')[0]}.findings.csv"
    compare_or_update(actual, golden, request.config.getoption("--update-golden"))
