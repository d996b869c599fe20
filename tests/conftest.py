"""Shared fixtures: where the public captures are and what tshark says about them."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
PUBLIC = ROOT.parent / "shared" / "pcaps" / "public"


@dataclass(frozen=True)
class PublicCapture:
    """One row of ../shared/pcaps/public/MANIFEST.tsv (tshark 4.0 ground truth)."""

    path: Path
    rel: str
    format: str
    packets: int
    tcp_convs: int
    udp_convs: int
    snaplen_truncated_pkts: int
    tshark_status: str
    category: str

    @property
    def intact(self) -> bool:
        return self.tshark_status == "ok"


def load_manifest() -> list[PublicCapture]:
    manifest = PUBLIC / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    rows = []
    with manifest.open(newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            rows.append(
                PublicCapture(
                    path=PUBLIC / r["path"],
                    rel=r["path"],
                    format=r["format"],
                    packets=int(r["packets"]),
                    tcp_convs=int(r["tcp_convs"]),
                    udp_convs=int(r["udp_convs"]),
                    snaplen_truncated_pkts=int(r["snaplen_truncated_pkts"] or 0),
                    tshark_status=r["tshark_status"],
                    category=r["category"],
                )
            )
    return rows


PUBLIC_CAPTURES = load_manifest()


def public_params() -> list:
    """pytest params over every public capture, id = its path in the manifest."""
    if not PUBLIC_CAPTURES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{PUBLIC} not present"))]
    return [pytest.param(c, id=c.rel) for c in PUBLIC_CAPTURES]


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed (apt-get install -y tshark); .ci/run installs it")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    """`pytest --update-golden` rewrites tests/golden/*.csv from the current pipeline."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/<sample>.flows.csv / .findings.csv instead of comparing",
    )


# Columns of a FlowResult.flows row that tests rarely care about, with neutral values.
FLOW_DEFAULTS: dict[str, object] = {
    "duration": 1.0,
    "proto": "tcp",
    "orig_evidence": "syn",
    "orig_mac": None,
    "resp_mac": None,
    "vlan": None,
    "inner_vlan": None,
    "conn_state": "SF",
    "history": "ShADadFf",
    "service": None,
    "_orig_head": None,
    "_resp_head": None,
    "_resp_bcast": False,
}


def flow_row(**values: object) -> dict[str, object]:
    """One complete FlowResult.flows row (flows.FLOW_COLUMNS, in that order), as the
    classifier tests build them: FLOW_DEFAULTS, then `values`, which must give every
    other column (uid, times, hosts, ports, counters, capture)."""
    from analyzer.flows import FLOW_COLUMNS

    row = {**FLOW_DEFAULTS, **values}
    missing = [c for c in FLOW_COLUMNS if c not in row]
    unknown = [c for c in row if c not in FLOW_COLUMNS]
    assert not missing and not unknown, f"missing {missing}, unknown {unknown}"
    return {c: row[c] for c in FLOW_COLUMNS}


# --- the report, browser and notebook tests share these (built once per run) ----------


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo sample (mixed_site.pcapng with its site file) analysed into a folder."""
    from report_data import analyze_sample

    out = tmp_path_factory.mktemp("demo") / "out"
    return analyze_sample("mixed_site.pcapng", "mixed_site.site.toml", out)


@pytest.fixture(scope="session")
def nights_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report_data.nightly_dataset: a batch dataset of two nights from the samples."""
    from report_data import nightly_dataset

    return nightly_dataset(tmp_path_factory.mktemp("nights"))


# --- the batch tests that signal or kill processes share these (built once per run) ---

BIG_CAPTURES = 5  # of 200,000 packets each (benchmarks/gen_capture.py)


@pytest.fixture(scope="session")
def big_captures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory `in/` of BIG_CAPTURES copies of one generated capture of 200,000
    packets, each with its own first timestamp (own content, own part files): captures
    long enough that a signal or a kill lands while one is being analysed."""
    import struct
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gen_capture

    src = gen_capture.ensure_capture(200_000, 2_000)
    root = tmp_path_factory.mktemp("big") / "in"
    root.mkdir()
    for i in range(BIG_CAPTURES):
        dst = root / f"capture.pcap{i}"
        shutil.copy(src, dst)
        with dst.open("r+b") as fh:  # first record's microseconds
            fh.seek(28)
            usec = struct.unpack("<I", fh.read(4))[0]
            fh.seek(28)
            fh.write(struct.pack("<I", (usec + i + 1) % 1_000_000))
    return root


@pytest.fixture(scope="session")
def big_reference(big_captures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """big_captures analysed by one uninterrupted run in the test process (--zeek-logs):
    the dataset every interrupted or killed run must end up with."""
    import time

    from analyzer import batch

    out = tmp_path_factory.mktemp("big-ref") / "ds"
    batch.run([big_captures], out, now=lambda: time.time() + 3600, zeek_logs=True)
    return out
