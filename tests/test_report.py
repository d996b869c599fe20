"""The HTML report, read back with the standard library's HTML parser: every section,
the findings in the contract's order, links that land, health told apart by cause,
escaping of names from the data, and the command line around it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from html_page import Page
from report_data import SAMPLES

import analyzer
from analyzer.errors import InputError
from analyzer.report import render_report, write_report

ROOT = Path(__file__).resolve().parent.parent
CAPTURE_SECTIONS = {"headline", "verdicts", "findings", "plots", "health", "coverage", "hosts"}
DATASET_SECTIONS = CAPTURE_SECTIONS | {"new-pairs", "sites"}


def run(*args: str, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analyzer.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,  # noqa: PLW1509
    )


@pytest.fixture(scope="module")
def demo(demo_out: Path) -> Path:
    """The mixed sample with its site file, analysed into a folder (conftest)."""
    return demo_out


@pytest.fixture(scope="module")
def demo_page(demo: Path) -> Page:
    return Page(write_report(demo).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nights(nights_dataset: Path) -> Path:
    return nights_dataset


def test_capture_report_has_every_section_and_nothing_active(demo: Path, demo_page: Page) -> None:
    assert (demo / "report.html").is_file()
    sections = {s.attrs["id"] for s in demo_page.root.find_all("section")}
    assert sections == CAPTURE_SECTIONS
    assert demo_page.duplicate_ids == []
    assert demo_page.active_content() == []  # no script, no external URL, no handler
    images = demo_page.ids["plots"].find_all("img")
    assert len(images) >= 6
    assert all(img.attrs["src"].startswith("data:image/png;base64,") for img in images)


def test_headline_answers_the_cmi_question(demo_page: Page) -> None:
    # sample_pcaps/README.md: the scanner 203.0.113.66 from the internet (80 and a
    # rejected 40001) and an office PC opening the C.M.I.'s web page
    assert demo_page.ids["headline-summary"].text() == (
        "The C.M.I. is reachable from outside the local networks. 2 connections from "
        "203.0.113.66. Also 1 connection from 192.168.10.121 on the local network; the "
        "C.M.I. only ever opens connections itself. 7 findings, the worst critical."
    )
    assert "sev-critical" in demo_page.ids["headline-summary"].attrs["class"]
    cmi = demo_page.ids["headline-cmi"].text()
    assert "3 connections" in cmi
    assert "2 from outside the local networks" in cmi
    sources = [li.text() for li in demo_page.ids["headline-cmi-sources"].find_all("li")]
    assert sources == [
        "critical 203.0.113.66 (outside) → C.M.I. Heizung tcp/40001, tcp/80 (2 connections)",
        "high 192.168.10.121 (local) → C.M.I. Heizung tcp/80",
    ]
    for a in demo_page.ids["headline-cmi-sources"].find_all("a"):
        assert demo_page.ids[a.attrs["href"][1:]].tag == "article"
    assert "sev-critical" in demo_page.ids["headline-cmi"].attrs["class"]
    worst = demo_page.ids["headline-worst"].text()
    assert "critical" in worst and "7 findings" in worst
    assert "critical 2, high 2, medium 3" in worst
    assert "One capture" in demo_page.ids["headline-new"].text()


def test_verdict_summary_matches_the_flows(demo: Path, demo_page: Page) -> None:
    rows = demo_page.rows("verdicts-table")
    got = {r[0]: int(r[1].replace(",", "")) for r in rows}
    verdicts = pq.read_table(demo / "flows.parquet").column("verdict").to_pylist()
    assert got == {v: verdicts.count(v) for v in set(verdicts)}
    assert got == {"expected": 29, "obsolete": 1, "reserved": 2, "wrong_direction": 2,
                   "inbound_to_cmi": 3, "unmonitored": 38}  # fmt: skip


def test_findings_table_is_every_finding_most_severe_first(demo: Path, demo_page: Page) -> None:
    findings = pq.read_table(demo / "findings.parquet").to_pylist()
    rows = demo_page.rows("findings-table")
    assert len(rows) == len(findings) == 7
    assert [r[0] for r in rows] == ["critical"] * 2 + ["high"] * 2 + ["medium"] * 3
    assert rows[0][1] == "inbound_to_cmi" and rows[0][3].startswith("203.0.113.66")
    assert rows[0][4].startswith("192.168.10.40") and "C.M.I. Heizung" in rows[0][4]
    assert rows[0][5] == "tcp/80"
    messages = {f["message"] for f in findings}
    assert {r[-1] for r in rows} == messages
    assert "findings-more" not in demo_page.ids


def test_every_host_link_lands_on_its_card(demo_page: Page) -> None:
    links = demo_page.ids["findings-table"].find_all("a")
    assert links
    for a in links:
        target = a.attrs["href"].removeprefix("#")
        assert target in demo_page.ids, a.attrs["href"]
        card = demo_page.ids[target]
        assert card.tag == "article" and card.text().startswith(a.text())
    cmi = demo_page.ids["host-192-168-10-40"].text()
    assert "C.M.I. Heizung" in cmi and "cmi" in cmi and "Technische Alternative" in cmi


def test_health_of_a_clean_capture(demo_page: Page) -> None:
    rows = demo_page.rows("health-table")
    assert rows[0][:6] == ["mixed_site.pcapng", "1,399", "none", "none", "no", "none"]


def test_limit_shows_the_top_rows_and_says_how_many_more(demo: Path, tmp_path: Path) -> None:
    page = Page(write_report(demo, tmp_path / "r.html", limit=2).read_text())
    rows = page.rows("findings-table")
    assert [r[0] for r in rows] == ["critical", "critical"]
    more = page.ids["findings-more"].text()
    assert more == f"… and 5 more findings in {demo / 'findings.parquet'}."


def test_dataset_report_new_pairs_and_sites(nights: Path, tmp_path: Path) -> None:
    page = Page(write_report(nights, tmp_path / "n.html", limit=100).read_text())
    sections = {s.attrs["id"] for s in page.root.find_all("section")}
    assert sections == DATASET_SECTIONS
    assert page.active_content() == []
    sites = page.rows("sites-table")
    assert [r[0] for r in sites] == [
        "Heizzentrale Schulzentrum", "Leitstelle Gefahrenmanagement", "Rathaus Nord (demo)"
    ]  # fmt: skip
    by_site = {r[0]: r for r in sites}
    assert by_site["Leitstelle Gefahrenmanagement"][2] == "2"  # two nights
    assert by_site["Leitstelle Gefahrenmanagement"][-1] == "0"  # the same capture again
    assert by_site["Heizzentrale Schulzentrum"][-1] == "1"
    pairs = analyzer.baseline(nights)
    rows = page.rows("new-pairs-table")
    assert len(rows) == len(pairs)
    cmi = [r for r in rows if r[2] == "Heizzentrale Schulzentrum"]
    assert [(r[4], r[5], r[6], r[8]) for r in cmi] == [
        ("cmi (192.168.1.40)", "198.51.100.21", "tcp/40002", "new pair")
    ]
    assert f"{len(pairs)} new pairs" in page.ids["headline-new"].text()
    # report_data: the mixed site has one night, so each of its pairs is new; the
    # C.M.I. site's change comes first, on the page and on the first screen
    assert rows[0][2] == "Heizzentrale Schulzentrum"
    mixed = [r for r in rows if r[2] == "Rathaus Nord (demo)"]
    assert mixed and all(r[8] == "first night" for r in mixed)
    assert len(mixed) == int((pairs["site"] == "Rathaus Nord (demo)").sum())
    first_screen = page.ids["headline-new-pairs"].find_all("li")[0].text()
    assert first_screen == "info cmi → 198.51.100.21 tcp/40002 Heizzentrale Schulzentrum"
    assert f"{len(mixed)} of them at Rathaus Nord (demo), its first night" in (
        page.ids["headline-summary"].text()
    )
    # the findings of the dataset: every row of every findings part file
    parts = list((nights / "findings").rglob("*.parquet"))
    assert len(page.rows("findings-table")) == sum(pq.read_metadata(p).num_rows for p in parts)


def test_names_from_the_data_are_text(tmp_path: Path) -> None:
    """A capture file name, a site name and host names with markup go through a real
    analysis (the CLI's --report) and come out as text."""
    capture = tmp_path / "<script>alert('capture')<.pcapng"
    shutil.copy(SAMPLES / "mixed_site.pcapng", capture)
    site = (SAMPLES / "mixed_site.site.toml").read_text()
    site = site.replace('site = "Rathaus Nord (demo)"', "site = \"<script>alert('site')</script>\"")
    site = site.replace('name = "C.M.I. Heizung"', 'name = "<img src=x onerror=alert(1)>"')
    site = site.replace('name = "SesComm server"', 'name = "</td></tr></table><b>x"')
    (tmp_path / "evil.toml").write_text(site)
    r = run(capture.name, "--site", "evil.toml", "-o", "out", "--report", "--fail-on", "critical",
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    page = Page(html)
    assert page.active_content() == []
    assert "script" not in page.tags and "b" not in page.tags
    assert all(img.attrs["src"].startswith("data:") for img in page.root.find_all("img"))
    text = page.text()
    assert "<script>alert('site')</script>: <script>alert('capture')<.pcapng" in text
    assert "<img src=x onerror=alert(1)>" in text
    assert "</td></tr></table><b>x" in text
    assert "&lt;script&gt;alert(&#39;site&#39;)&lt;/script&gt;" in html
    assert len(page.rows("findings-table")) == 7  # the table survived the names


def test_empty_capture_gives_a_report(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0,
                                                      65535, 1))  # fmt: skip
    analyzer.pipeline.analyze(tmp_path / "empty.pcap", outdir=tmp_path / "out")
    page = Page(render_report(tmp_path / "out"))
    assert "No findings" in page.ids["findings"].text()
    assert "None" in page.ids["headline-cmi"].text()
    assert page.rows("health-table")[0][:2] == ["empty.pcap", "0"]


def _frame(ethertype: int, payload: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + struct.pack(
        "!H", ethertype) + payload  # fmt: skip


def _record(ts: int, frame: bytes) -> bytes:
    return struct.pack("<IIII", ts, 0, len(frame), len(frame)) + frame


def test_health_tells_damage_from_other_protocols(tmp_path: Path) -> None:
    """An LLDP frame (not IP, by EtherType name), an IPv4 header with IHL 4 (damage),
    a 10-minute gap and a record cut off by the end of the file."""
    udp = bytes.fromhex("45000020000100004011f7c9c0a80a01c0a80a02")  # 20-byte IPv4 header
    udp += bytes.fromhex("d43100350000") + b"\x00\x00" + b"\x00" * 4  # UDP 8 + 4 payload
    records = [
        _record(1_700_000_000, _frame(0x88CC, b"\x02\x07\x04" + b"\x00" * 40)),
        _record(1_700_000_001, _frame(0x0800, b"\x44" + b"\x00" * 39)),
        _record(1_700_000_002, _frame(0x0800, udp)),
        _record(1_700_000_602, _frame(0x0800, udp)),
    ]
    cut = _record(1_700_000_603, _frame(0x0800, udp))[:30]
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    (tmp_path / "damaged.pcap").write_bytes(header + b"".join(records) + cut)
    analyzer.pipeline.analyze(tmp_path / "damaged.pcap", outdir=tmp_path / "out")
    page = Page(render_report(tmp_path / "out"))
    row = page.rows("health-table")[0]
    assert row[0] == "damaged.pcap"
    assert row[2] == "bad_ipv4_header 1"
    assert row[3] == "LLDP 1"
    assert row[4] == "file truncated"
    assert row[5] == "1 (longest 600 s)"
    warnings = page.ids["health-table"].find_all("tr", class_="warnings")
    assert any("time gaps longer than 5 min" in w.text() for w in warnings)


def test_bad_source_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_report(tmp_path / "nothing-here")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(InputError):
        write_report(tmp_path / "empty-dir")


# ------------------------------------------------------------------------------------ CLI


def test_cli_report_default_path_mode_and_no_temporaries(demo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(demo, folder, ignore=shutil.ignore_patterns("report.html"))
    r = run("report", str(folder), cwd=tmp_path, umask=0o027)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"report: {folder / 'report.html'}\n"
    assert r.stderr == ""
    assert (folder / "report.html").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in folder.iterdir()) == [
        "findings.parquet", "flows.parquet", "hosts.parquet", "report.html"
    ]  # fmt: skip


def test_cli_report_to_a_given_file(nights: Path, tmp_path: Path) -> None:
    r = run("report", str(nights), "-o", "morning.html", "--limit", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    page = Page((tmp_path / "morning.html").read_text())
    assert len(page.rows("findings-table")) == 3
    assert "sites" in page.ids


def test_cli_report_bad_path_exit_2_one_line(tmp_path: Path) -> None:
    r = run("report", "no-such-folder", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("pcapclass: error: no-such-folder")
    assert r.stderr.count("\n") == 1
    assert r.stdout == ""


def test_cli_report_unwritable_folder_exit_2(demo: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        r = run("report", str(demo), "-o", str(locked / "r.html"), cwd=tmp_path)
    finally:
        locked.chmod(0o700)
    assert r.returncode == 2
    assert r.stderr.startswith(f"pcapclass: error: {locked}: cannot write r.html (")
    assert r.stderr.count("\n") == 1
    assert list(locked.iterdir()) == []


def test_cli_report_flag_writes_one_report_per_capture(tmp_path: Path) -> None:
    r = run(str(SAMPLES / "cmi_site.pcap.gz"), str(SAMPLES / "gemos_site.vlan.pcap"),
            "-o", "out", "--report", cwd=tmp_path)  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    for name in ("cmi_site.pcap.gz", "gemos_site.vlan.pcap"):
        report = tmp_path / "out" / name / "report.html"
        assert f"report: {Path('out') / name / 'report.html'}" in r.stdout
        page = Page(report.read_text())
        assert page.rows("health-table")[0][0] == name
