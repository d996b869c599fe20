"""pcapclass batch: discovery, the dataset and its readers, the manifest, resuming after
kills, failures, the runners (in-process, local processes, a real Dask cluster), the
baseline of new pairs, and the command line as a cron job meets it."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import dpkt
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import analyzer
from analyzer import batch, schema
from analyzer.batch import baseline as bl
from analyzer.batch import discover, partition, report
from analyzer.pipeline import analyze

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
PUBLIC = ROOT.parent / "shared" / "pcaps" / "public"
TABLES = ("flows", "findings", "hosts")
LATER = lambda: time.time() + 3600  # noqa: E731 - "now" for runs: every file has settled

SITE_NORD = """site = "Rathaus Nord"
local_networks = ["192.168.10.0/24"]
[[host]]
ip = "192.168.10.40"
role = "cmi"
[[host]]
ip = "192.168.10.5"
role = "gemos_server"
[[host]]
ip = "192.168.10.20"
role = "gemos_client"
[[host]]
ip = "192.168.10.21"
role = "gemos_client"
"""
ALLOW_77 = """
[[allow]]
orig = "192.168.10.77"
resp = "192.168.10.40"
proto = "tcp"
port = 80
reason = "technician uses the local C.M.I. web page"
"""


# ----------------------------------------------------------------------------- helpers


def write_capture(path: Path, day: dt.date, conns: list[tuple[str, str, int]]) -> Path:
    """A classic pcap of TCP handshakes (orig, resp, port) on `day`, 03:00 UTC on."""
    start = dt.datetime.combine(day, dt.time(3, 0), dt.UTC).timestamp()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh)
        for i, (orig, resp, port) in enumerate(conns):
            t = start + i
            sport = 40000 + i
            for k, (src, dst, sp, dp, flags) in enumerate(
                [
                    (orig, resp, sport, port, dpkt.tcp.TH_SYN),
                    (resp, orig, port, sport, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK),
                    (orig, resp, sport, port, dpkt.tcp.TH_ACK),
                ]
            ):
                tcp = dpkt.tcp.TCP(sport=sp, dport=dp, flags=flags, seq=1000 + k, win=65535)
                ip = dpkt.ip.IP(
                    src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, data=tcp, ttl=64
                )
                ip.len = len(ip)
                eth = dpkt.ethernet.Ethernet(
                    src=b"\x02\x00" + socket.inet_aton(src),
                    dst=b"\x02\x00" + socket.inet_aton(dst),
                    data=ip,
                )
                writer.writepkt(bytes(eth), ts=t + k * 0.001)
    return path


def pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def read_table(dataset: Path, table: str) -> pa.Table:
    """A dataset table through pyarrow.dataset, in a stable row order."""
    d = pads.dataset(dataset / table, format="parquet", partitioning="hive")
    t = d.to_table()
    keys = [c for c in ("site", "date", "capture", "uid", "ip", "first_ts") if c in t.column_names]
    return t.sort_by([(k, "ascending") for k in keys])


def part_files(dataset: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(dataset)): p.read_bytes()
        for table in (*TABLES, "new_pairs")
        for p in sorted((dataset / table).rglob("*"))
        if p.is_file()
    }


def manifest_rows(dataset: Path) -> dict[str, dict]:
    db = sqlite3.connect(dataset / "manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["path"]: dict(r) for r in db.execute("SELECT * FROM captures")}
    finally:
        db.close()


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analyzer.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sites and a site-less directory, rotated names, a public capture, and files
    that are not captures."""
    root = tmp_path_factory.mktemp("captures")
    mixed = root / "mixed"
    mixed.mkdir()
    shutil.copy(SAMPLES / "mixed_site.site.toml", mixed / "site.toml")
    shutil.copy(SAMPLES / "mixed_site.pcapng", mixed / "eth1_00003_20261121030000.pcapng")
    gemos = root / "gemos" / "ring"
    gemos.mkdir(parents=True)
    shutil.copy(SAMPLES / "gemos_site.site.toml", root / "gemos" / "site.toml")
    shutil.copy(SAMPLES / "gemos_site.vlan.pcap", gemos / "capture.pcap0")
    loose = root / "loose"
    loose.mkdir()
    shutil.copy(SAMPLES / "sesam_site.sll2.pcap", loose / "capture.pcap12")
    shutil.copy(SAMPLES / "cmi_site.pcap.gz", loose / "capture-2026-11-21_0300.pcap.gz")
    public = sorted(PUBLIC.glob("*.pcap")) if PUBLIC.is_dir() else []
    if public:
        shutil.copy(min(public, key=lambda p: p.stat().st_size), loose / "public.dump")
    (loose / "notes.pcap").write_text("not a capture at all\n")
    (loose / "syslog.gz").write_bytes(gzip.compress(b"Nov 21 03:00:00 host kernel: hi\n"))
    return root


@pytest.fixture(scope="module")
def done(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, batch.BatchResult]:
    """The tree analysed once, in the driver process."""
    out = tmp_path_factory.mktemp("ds") / "ds"
    return out, batch.run([tree], out, now=LATER)


# ----------------------------------------------------------------------------- discovery


def test_captures_are_found_by_magic_bytes_never_by_name(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "gemos_site.vlan.pcap", tmp_path / "capture.pcap0")
    shutil.copy(SAMPLES / "mixed_site.pcapng", tmp_path / "eth1_00003_20261121030000.pcapng")
    shutil.copy(SAMPLES / "cmi_site.pcap.gz", tmp_path / "capture-2026-11-21_0300.pcap.gz")
    shutil.copy(SAMPLES / "gemos_site.vlan.pcap", tmp_path / "no-extension")
    (tmp_path / "notes.pcap").write_text("hello\n")
    (tmp_path / "tiny").write_bytes(b"\xd4\xc3")
    (tmp_path / "log.gz").write_bytes(gzip.compress(b"plain text, compressed\n"))
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate")
    kinds = {}
    for cand in discover.walk([tmp_path]):
        try:
            kinds[cand.path.name] = discover.sniff(cand.path)
        except discover.NotCapture as exc:
            kinds[cand.path.name] = f"skip: {exc}"
    assert kinds["capture.pcap0"] == "pcap"
    assert kinds["no-extension"] == "pcap"
    assert kinds["eth1_00003_20261121030000.pcapng"] == "pcapng"
    assert kinds["capture-2026-11-21_0300.pcap.gz"] == "gzip+pcap"
    assert kinds["notes.pcap"] == "skip: not a capture (no pcap or pcapng magic at offset 0)"
    assert kinds["tiny"] == "skip: too short to be a capture (2 bytes)"
    assert kinds["log.gz"] == "skip: not a capture (no pcap or pcapng magic at offset 0)"
    assert kinds["broken.gz"].startswith("skip: gzip data that cannot be decompressed")


def test_site_file_is_the_nearest_one_in_or_above_its_directory(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text('site = "above the input"\n')
    top = tmp_path / "in"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "site.toml").write_text('site = "A"\n')
    for rel in ("a/b/x.pcap", "a/y.pcap", "z.pcap"):
        shutil.copy(SAMPLES / "gemos_site.vlan.pcap", top / rel)
    found = {c.path.relative_to(top).as_posix(): c.site_file for c in discover.walk([top])}
    assert found == {
        "a/b/x.pcap": top / "a" / "site.toml",
        "a/y.pcap": top / "a" / "site.toml",
        "z.pcap": tmp_path / "site.toml",
    }
    given_as_file = discover.walk([top / "a" / "b" / "x.pcap"])
    assert [c.site_file for c in given_as_file] == [top / "a" / "site.toml"]


# ----------------------------------------------------------------------------- the dataset


def test_dataset_layout_and_rows_match_the_single_capture_tables(
    tree: Path, done: tuple[Path, batch.BatchResult]
) -> None:
    out, result = done
    captures = {Path(r["path"]).name: r for r in result.rows}
    expected_names = {
        "eth1_00003_20261121030000.pcapng",
        "capture.pcap0",
        "capture.pcap12",
        "capture-2026-11-21_0300.pcap.gz",
    } | ({"public.dump"} if (tree / "loose" / "public.dump").exists() else set())
    assert set(captures) == expected_names
    assert {r["status"] for r in result.rows} == {"done"}
    assert sorted(Path(p).name for p, _ in result.skipped) == ["notes.pcap", "syslog.gz"]
    site_of = {"eth1_00003_20261121030000.pcapng": "Rathaus Nord (demo)"}
    for path, row in ((r["path"], r) for r in result.rows):
        name = Path(path).name
        single = analyze(path, site=row["site_file"], write=False)
        site = site_of.get(name, row["site"])
        if name == "capture.pcap0":
            assert row["site_file"] == str(tree / "gemos" / "site.toml")
        if Path(path).parent.name == "loose":
            assert row["site"] == "unknown" and row["site_file"] is None
        for table in TABLES:
            rel = partition.partition_dir(table, site, row["date"]) / (
                f"part-{single.capture.sha256[:16]}.parquet"
            )
            assert rel.as_posix() in json.loads(row["parts"])
            written = pq.read_table(out / rel)
            assert written.schema.remove_metadata() == schema.arrow_schema(schema.TABLES[table])
            assert written.equals(getattr(single, table)), (name, table)
        first = pd.Timestamp(single.flows.column("ts").to_pandas().min())
        assert row["date"] == first.strftime("%Y-%m-%d")
        assert row["packets"] == single.capture.packets
        assert row["sha256"] == single.capture.sha256
        assert row["flows"] == single.flows.num_rows
        severities = single.findings.column("severity").to_pylist()
        for sev in schema.SEVERITIES:
            assert row[f"findings_{sev}"] == severities.count(sev)
    assert (out / "flows" / "site=Rathaus%20Nord%20%28demo%29").is_dir()


def test_pandas_pyarrow_and_duckdb_read_the_dataset(done: tuple[Path, batch.BatchResult]) -> None:
    out, result = done
    total = sum(r["flows"] for r in result.rows)
    via_pandas = pd.read_parquet(out / "flows")
    via_arrow = pads.dataset(out / "flows", partitioning="hive").to_table()
    glob = str(out / "flows" / "*" / "*" / "*.parquet")
    via_duck = duckdb.sql(
        f"SELECT site, CAST(date AS VARCHAR) AS date, count(*) AS n FROM "
        f"read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert len(via_pandas) == via_arrow.num_rows == total
    assert set(schema.column_names(schema.FLOWS)) | {"site", "date"} == set(via_pandas.columns)
    by_site = via_pandas.groupby(["site", "date"], observed=True).size()
    assert [(s, d, n) for (s, d), n in by_site.items()] == via_duck
    assert "Rathaus Nord (demo)" in set(via_pandas["site"])
    assert via_arrow.schema.field("ts").type == schema.TS


def test_second_run_adds_nothing_and_says_so(done: tuple[Path, batch.BatchResult]) -> None:
    out, first = done
    before = part_files(out)
    rows_before = manifest_rows(out)
    again = batch.run([p["path"] for p in first.rows], out, now=LATER)
    assert again.analysed == []
    assert sorted(again.unchanged) == sorted(r["path"] for r in first.rows)
    assert part_files(out) == before
    assert manifest_rows(out) == rows_before
    assert again.exit_code == first.exit_code == 1  # the demo site has high findings
    assert again.exit_reason() == first.exit_reason()


def test_status_prints_the_manifest(done: tuple[Path, batch.BatchResult]) -> None:
    out, result = done
    r = cli("batch", "--status", str(out), cwd=out.parent)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{out}: {len(result.rows) + 2} files ({len(result.rows)} done, 2 skipped)"
    assert lines[1].split() == ["STATUS", "SITE", "DATE", "PACKETS", "FLOWS", "FINDINGS", "PATH",
                                "MESSAGE"]  # fmt: skip
    frame = batch.status(out)
    assert list(frame.columns) == schema.column_names(schema.MANIFEST)
    assert sorted(frame["status"]) == sorted(["done"] * len(result.rows) + ["skipped"] * 2)


# ----------------------------------------------------------------------------- reprocessing


def test_changed_site_file_or_catalog_reprocesses_only_what_it_affects(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 21)
    a = write_capture(
        tmp_path / "in" / "a" / "a.pcap", day, [("192.168.10.20", "192.168.10.5", 12000)]
    )
    b = write_capture(
        tmp_path / "in" / "b" / "b.pcap", day, [("192.168.10.77", "192.168.10.40", 80)]
    )
    (tmp_path / "in" / "a" / "site.toml").write_text('site = "A"\n')
    out = tmp_path / "ds"
    first = batch.run([tmp_path / "in"], out, now=LATER)
    assert sorted(first.analysed) == [str(a), str(b)]
    (tmp_path / "in" / "a" / "site.toml").write_text('site = "A renamed"\n')
    second = batch.run([tmp_path / "in"], out, now=LATER)
    assert second.analysed == [str(a)]
    assert not (out / "flows" / "site=A").exists()  # moved, not duplicated
    assert len(list((out / "flows").rglob("part-*.parquet"))) == 2
    assert pd.read_parquet(out / "flows")["site"].astype(str).value_counts().to_dict() == {
        "A renamed": 1,
        "unknown": 1,
    }
    db = sqlite3.connect(out / "manifest.sqlite")
    db.execute("UPDATE captures SET catalog_sha256 = 'older catalog' WHERE path = ?", (str(b),))
    db.commit()
    db.close()
    third = batch.run([tmp_path / "in"], out, now=LATER)
    assert third.analysed == [str(b)]
    assert batch.run([tmp_path / "in"], out, now=LATER, reprocess=True).analysed == [str(a), str(b)]
    assert len(list((out / "flows").rglob("part-*.parquet"))) == 2


def test_since_and_files_still_being_written(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 21)
    old = write_capture(tmp_path / "in" / "old.pcap", day, [("10.0.0.1", "10.0.0.2", 22)])
    new = write_capture(tmp_path / "in" / "new.pcap", day, [("10.0.0.1", "10.0.0.3", 22)])
    stamp = dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp()
    os.utime(old, (stamp, stamp))
    out = tmp_path / "ds"
    since = batch.run([tmp_path / "in"], out, since=dt.date(2026, 11, 21))
    assert since.before_since == 1
    assert since.analysed == [] and [p for p, _ in since.busy] == [str(new)]  # just written
    text = report.summary(since)
    assert "left for the next run: 1 still being written" in text
    assert f"{new}: still being written (0 s ago)" in text
    later = batch.run([tmp_path / "in"], out, since=dt.date(2026, 11, 21), now=LATER)
    assert later.analysed == [str(new)] and later.busy == []
    assert batch.run([tmp_path / "in"], out, settle_s=0).analysed == [str(old)]


def test_failures_are_recorded_and_do_not_stop_the_others(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 21)
    good = write_capture(tmp_path / "in" / "good.pcap", day, [("10.0.0.1", "10.0.0.2", 22)])
    damaged = tmp_path / "in" / "damaged.pcap"
    damaged.write_bytes(pcap_header()[:20])  # the file header cut short: nothing readable
    bad_site = write_capture(
        tmp_path / "in" / "bad" / "c.pcap", day, [("10.0.0.1", "10.0.0.4", 22)]
    )
    (tmp_path / "in" / "bad" / "site.toml").write_text('site = "B"\nrole = 3\n')
    out = tmp_path / "ds"
    result = batch.run([tmp_path / "in"], out, now=LATER, fail_on="critical")
    status = {Path(r["path"]).name: r["status"] for r in result.rows}
    assert status == {"good.pcap": "done", "damaged.pcap": "failed", "c.pcap": "failed"}
    messages = {Path(r["path"]).name: r["message"] for r in result.failed}
    assert messages["c.pcap"].startswith(str(tmp_path / "in" / "bad" / "site.toml"))
    single = None
    try:
        analyze(damaged, write=False)
    except Exception as exc:  # noqa: BLE001 - the message analyze gives is the row's
        single = str(exc)
    assert messages["damaged.pcap"] == single
    assert result.exit_code == 1
    assert result.exit_reason() == "2 captures failed"
    assert str(good) in {r["path"] for r in result.done}
    assert bad_site.exists()


def test_duplicate_content_in_one_site_is_counted_once(tmp_path: Path) -> None:
    src = write_capture(
        tmp_path / "in" / "a.pcap", dt.date(2026, 11, 21), [("10.0.0.1", "10.0.0.2", 22)]
    )
    shutil.copy(src, tmp_path / "in" / "copy-of-a.pcap")
    result = batch.run([tmp_path / "in"], tmp_path / "ds", now=LATER)
    rows = manifest_rows(tmp_path / "ds")
    assert rows[str(src)]["status"] == "done"
    copy = rows[str(tmp_path / "in" / "copy-of-a.pcap")]
    assert copy["status"] == "skipped" and copy["message"] == f"same content as {src}; counted once"
    assert len(pd.read_parquet(tmp_path / "ds" / "flows")) == 1
    assert len(result.done) == 1


def test_stray_files_of_a_killed_run_are_cleaned_up(tmp_path: Path) -> None:
    write_capture(tmp_path / "in" / "a.pcap", dt.date(2026, 11, 21), [("10.0.0.1", "10.0.0.2", 22)])
    out = tmp_path / "ds"
    batch.run([tmp_path / "in"], out, now=LATER)
    part_dir = out / "flows" / "site=unknown" / "date=2026-11-21"
    (part_dir / ".part-0123.parquet.tmp").write_bytes(b"half")
    (part_dir / "part-00000000deadbeef.parquet").write_bytes(b"renamed, row never committed")
    (out / ".staging" / "x").mkdir(parents=True)
    result = batch.run([tmp_path / "in"], out, now=LATER)
    assert sorted(result.cleaned) == sorted(
        [
            ".staging",
            "flows/site=unknown/date=2026-11-21/.part-0123.parquet.tmp",
            "flows/site=unknown/date=2026-11-21/part-00000000deadbeef.parquet",
        ]
    )
    assert [p.name for p in part_dir.iterdir()] == [
        Path(json.loads(r["parts"])[0]).name for r in manifest_rows(out).values()
    ]


# ----------------------------------------------------------------------------- the baseline


def test_new_pairs_rule_exactly() -> None:
    ts = pd.Timestamp("2026-11-21T03:00:00Z")

    def flow(date: str, orig: str, resp_p: int, verdict: str, severity: str) -> dict:
        return {"orig_h": "192.168.10." + orig[-1], "orig": orig, "resp_h": "192.168.10.40",
                "proto": "tcp", "resp_p": resp_p, "verdict": verdict, "severity": severity,
                "ts": ts, "last_ts": ts, "date": date}  # fmt: skip

    flows = pd.DataFrame(
        [
            flow("2026-11-20", "gemos_client", 80, "inbound_to_cmi", "high"),
            flow("2026-11-20", "gemos_client", 40001, "expected", "info"),
            flow("2026-11-21", "gemos_client", 80, "inbound_to_cmi", "high"),  # seen: not new
            flow("2026-11-21", "gemos_client", 40001, "wrong_direction", "high"),  # new verdict
            flow("2026-11-21", "192.168.10.7", 40001, "expected", "info"),  # new originator
            flow("2026-11-22", "192.168.10.8", 22, "expected", "info"),  # later: not compared
        ]
    )
    pairs = bl.new_pairs(flows, "2026-11-21")
    got = pairs[["orig", "resp_p", "verdict", "known_verdicts"]].to_dict("records")
    assert got == [
        {"orig": "192.168.10.7", "resp_p": 40001, "verdict": "expected", "known_verdicts": []},
        {"orig": "gemos_client", "resp_p": 40001, "verdict": "wrong_direction",
         "known_verdicts": ["expected"]},
    ]  # fmt: skip
    assert len(bl.new_pairs(flows, "2026-11-20")) == 2  # a site's first date: all new


def test_new_since_last_night_across_dates(tmp_path: Path) -> None:
    """Three nights of one site; the newest has a known pair, a new client in a known role,
    a new host, and a known pair whose verdict changed (the site allowed it)."""
    inp = tmp_path / "in"
    for night in ("n1", "n2"):
        (inp / night).mkdir(parents=True)
        (inp / night / "site.toml").write_text(SITE_NORD)
    (inp / "n3").mkdir()
    (inp / "n3" / "site.toml").write_text(SITE_NORD + ALLOW_77)
    usual = [("192.168.10.20", "192.168.10.5", 12000), ("192.168.10.77", "192.168.10.40", 80)]
    write_capture(inp / "n1" / "c.pcap", dt.date(2026, 11, 19), usual)
    write_capture(inp / "n2" / "c.pcap", dt.date(2026, 11, 20), usual[:1])
    write_capture(
        inp / "n3" / "c.pcap",
        dt.date(2026, 11, 21),
        [*usual, ("192.168.10.21", "192.168.10.5", 12000), ("192.168.10.99", "192.168.10.5", 22)],
    )
    out = tmp_path / "ds"
    result = batch.run([inp], out, now=LATER)
    flows = pd.read_parquet(out / "flows")
    night3 = flows[flows["date"] == "2026-11-21"].set_index("orig_h")
    verdict_77_before = (
        flows[flows["date"] == "2026-11-19"].set_index("orig_h").loc["192.168.10.77", "verdict"]
    )
    assert night3.loc["192.168.10.77", "verdict"] == "expected" != verdict_77_before
    assert night3.loc["192.168.10.21", "verdict"] == night3.loc["192.168.10.20", "verdict"]
    expected = [
        ("192.168.10.77", 80, "expected", [verdict_77_before]),
        ("192.168.10.99", 22, night3.loc["192.168.10.99", "verdict"], []),
    ]
    written = pd.read_parquet(out / "new_pairs" / "site=Rathaus%20Nord" / "date=2026-11-21")
    rows = [(r.orig, r.resp_p, r.verdict, list(r.known_verdicts)) for r in written.itertuples()]
    assert sorted(rows) == sorted(expected)
    api = analyzer.baseline(out, site="Rathaus Nord")
    assert sorted(zip(api["orig"], api["resp_p"], strict=True)) == [
        ("192.168.10.77", 80),
        ("192.168.10.99", 22),
    ]
    assert set(api["date"]) == {"2026-11-21"}
    assert len(result.new_pairs) == 2
    assert [s["new_pairs"] for s in report.per_site(result)] == [2]
    assert "new verdict" in report.summary(result)
    js = report.as_json(result)
    assert sorted(p["orig"] for p in js["new_pairs"]) == ["192.168.10.77", "192.168.10.99"]
    again = batch.run([inp], out, now=LATER)  # untouched: read back, not recomputed
    assert sorted(again.new_pairs["orig"]) == ["192.168.10.77", "192.168.10.99"]


# ----------------------------------------------------------------------------- runners


def test_dask_cluster_dataset_equals_workers_1_byte_for_byte(tmp_path: Path) -> None:
    from distributed import LocalCluster

    inp = tmp_path / "in"
    (inp / "nord").mkdir(parents=True)
    (inp / "nord" / "site.toml").write_text(SITE_NORD)
    for i, day in enumerate((19, 20, 21)):
        write_capture(inp / "nord" / f"c{i}.pcap", dt.date(2026, 11, day),
                      [("192.168.10.20", "192.168.10.5", 12000 + i)])  # fmt: skip
    shutil.copy(SAMPLES / "mixed_site.pcapng", inp / "mixed.pcapng")
    shutil.copy(SAMPLES / "cmi_site.pcap.gz", inp / "cmi.pcap.gz")
    one = batch.run([inp], tmp_path / "one", now=LATER)
    with LocalCluster(
        n_workers=2, processes=True, host="127.0.0.1", threads_per_worker=1,
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        two = batch.run([inp], tmp_path / "two", now=LATER, scheduler=cluster.scheduler_address)
    assert two.runner == f"on the Dask cluster at {cluster.scheduler_address}"
    assert len(two.analysed) == len(one.analysed) == 5
    a, b = part_files(tmp_path / "one"), part_files(tmp_path / "two")
    assert sorted(a) == sorted(b)
    for rel in a:
        assert a[rel] == b[rel], rel
    for table in TABLES:
        assert read_table(tmp_path / "one", table).equals(read_table(tmp_path / "two", table))


def test_cli_batch_usage_help_and_json(tmp_path: Path) -> None:
    assert (
        "batch [OPTIONS] INPUT...\n\n  Analyse every capture"
        in cli("batch", "--help", cwd=tmp_path).stdout
    )
    r = cli("batch", str(tmp_path / "nope"), "--out", str(tmp_path / "ds"), cwd=tmp_path)
    assert (r.returncode, r.stderr) == (
        2,
        f"pcapclass: error: {tmp_path / 'nope'}: no such file or directory\n",
    )
    r = cli("batch", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "give INPUT... and --out DATASET" in r.stderr
    r = cli("batch", "--status", str(tmp_path / "none"), cwd=tmp_path)
    missing = f"{tmp_path / 'none'}: no batch dataset here (manifest.sqlite is missing)"
    assert (r.returncode, r.stderr) == (2, f"pcapclass: error: {missing}\n")
    inp = tmp_path / "in"
    write_capture(inp / "a.pcap", dt.date(2026, 11, 21), [("10.0.0.1", "10.0.0.2", 22)])
    (inp / "b.pcap").write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 40)  # damaged pcapng
    r = cli(
        "batch", str(inp), "--out", str(tmp_path / "ds"), "--settle", "0", "--json", cwd=tmp_path
    )
    obj = json.loads(r.stdout)
    assert r.returncode == obj["exit_code"] == 1
    assert obj["exit_reason"] == "1 capture failed"
    assert obj["captures"]["found"] == 2 and obj["captures"]["failed"] == 1
    assert [f["path"] for f in obj["failed"]] == [str(inp / "b.pcap")]
    assert r.stderr == ""  # not a terminal: no progress


def _kill_tree(root: Path) -> Path:
    """14 distinct captures: the four samples and ten generated nights."""
    inp = root / "in"
    for src in sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz")):
        (inp / "samples").mkdir(parents=True, exist_ok=True)
        shutil.copy(src, inp / "samples" / src.name)
    for i in range(10):
        conns = [(f"10.1.{i}.{j % 250 + 1}", "10.0.0.1", 22 + j % 3) for j in range(300)]
        write_capture(inp / f"d{i}" / f"gen{i}.pcap", dt.date(2026, 11, 10 + i), conns)
    return inp


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_killing_the_driver_at_random_points_then_resuming(tmp_path: Path) -> None:
    inp = _kill_tree(tmp_path)
    reference = tmp_path / "reference"
    expected = batch.run([inp], reference, now=LATER)
    out = tmp_path / "ds"
    rng = random.Random(9)
    args = [sys.executable, "-m", "analyzer.cli", "batch", str(inp), "--out", str(out),
            "--settle", "0"]  # fmt: skip
    for i in range(4):
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_env())  # fmt: skip
        deadline = time.monotonic() + 60
        while i == 0 and not _some_done(out) and time.monotonic() < deadline:
            time.sleep(0.02)  # the first kill after a commit, however busy the machine
        time.sleep(rng.uniform(0.0, 1.0) if i == 0 else rng.uniform(1.0, 3.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = batch.run([inp], out, now=LATER)
    rows = manifest_rows(out)
    assert sorted(r["status"] for r in rows.values()) == ["done"] * 14
    assert not (out / ".staging").exists()
    assert [p for p in out.rglob("*") if p.name.endswith(".tmp")] == []
    assert part_files(out) == part_files(reference)
    assert (final.exit_code, final.exit_reason()) == (expected.exit_code, expected.exit_reason())
    assert len(final.analysed) < 14  # the killed runs did part of the work


KILLS = 3  # worker kills in one run; Dask's allowed-failures (3) can fail a capture
KILLED_WORKER = "the worker analysing it died each time it was tried (killed or out of memory)"


def test_killing_worker_processes_loses_nothing(
    big_captures: Path, big_reference: Path, tmp_path: Path
) -> None:
    """--workers 2 over conftest.big_captures: SIGKILL a worker KILLS times, each at a
    random moment after a worker opened a capture (reading, analysing, writing its
    files, or already on the next one). Every capture comes out of the run, done or
    failed because its worker died each time it was tried (runner._outcome); nothing is
    left in_progress or half-written; the next run does exactly the failed ones, and the
    dataset equals the uninterrupted run's, byte for byte."""
    import psutil

    out = tmp_path / "ds"
    args = [sys.executable, "-m", "analyzer.cli", "batch", str(big_captures), "--out", str(out),
            "--settle", "0", "--workers", "2", "--zeek-logs", "--json"]  # fmt: skip
    # files, not pipes: nobody reads a pipe while the test kills, and a full pipe would
    # stall the driver at its last write
    with (tmp_path / "stdout.json").open("w") as so, (tmp_path / "stderr.txt").open("w") as se:
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=so, stderr=se, env=_env())
    driver = psutil.Process(proc.pid)
    seed = random.randrange(2**32)  # other moments every run; a failure names its seed
    rng = random.Random(seed)
    kills: list[str] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(kills) < KILLS and time.monotonic() < deadline:
        busy = _reading_a_capture(driver, big_captures)
        if busy:
            worker, capture = rng.choice(busy)
            time.sleep(rng.uniform(0.0, 0.6))
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
                worker.wait(timeout=10)
                kills.append(capture)
        time.sleep(0.02)
    assert proc.wait(timeout=120) in (0, 1), (seed, (tmp_path / "stderr.txt").read_text())
    assert len(kills) == KILLS, f"seed {seed}: the run ended after {len(kills)} kills ({kills})"
    obj = json.loads((tmp_path / "stdout.json").read_text())
    assert obj["captures"]["found"] == obj["captures"]["analysed"] == 5  # none lost
    failed = {f["path"]: f["message"] for f in obj["failed"]}
    assert all(m == f"{p}: {KILLED_WORKER}" for p, m in failed.items()), (seed, failed)
    assert obj["captures"]["failed"] == len(failed) <= KILLS // 3  # 3 deaths per failure
    rows = manifest_rows(out)
    assert sorted(p for p, r in rows.items() if r["status"] == "failed") == sorted(failed)
    assert len(rows) == 5 and {r["status"] for r in rows.values()} <= {"done", "failed"}
    assert not (out / ".staging").exists()
    assert [p for p in out.rglob("*") if p.name.endswith(".tmp")] == []
    again = batch.run([big_captures], out, now=LATER, zeek_logs=True)
    assert sorted(again.analysed) == sorted(failed)  # the done ones are not counted twice
    assert sorted(r["status"] for r in manifest_rows(out).values()) == ["done"] * 5
    assert _dataset_files(out) == _dataset_files(big_reference)


def _reading_a_capture(driver: object, captures: Path) -> list[tuple[object, str]]:
    """(process, capture) for each process under the driver with a capture open: a
    worker at work, whatever start method made it (the driver reads none itself then)."""
    import psutil

    found = []
    for child in driver.children(recursive=True):  # type: ignore[attr-defined]
        with contextlib.suppress(psutil.Error):  # it may have exited meanwhile
            for f in child.open_files():
                if Path(f.path).parent == captures:
                    found.append((child, f.path))
    return found


def _dataset_files(dataset: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(dataset)): p.read_bytes()
        for table in (*TABLES, "new_pairs", "zeek")
        for p in sorted((dataset / table).rglob("*"))
        if p.is_file()
    }


def _some_done(dataset: Path) -> bool:
    try:
        return any(r["status"] == "done" for r in manifest_rows(dataset).values())
    except sqlite3.Error:  # not created yet
        return False


def test_progress_on_a_terminal_shows_captures_bytes_rate_and_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from analyzer.batch.progress import Progress
    from analyzer.batch.worker import Outcome

    bar = Progress(2, 3 * 2**20, enabled=True)
    bar.update(Outcome("/x/a.pcap", "done", packets=1000), 2**20)
    bar.update(Outcome("/x/b.pcap", "failed", "/x/b.pcap: damaged"), 2**20)
    text = capsys.readouterr().err
    bar.close()
    capsys.readouterr()  # the bar clears its line when it closes
    assert "captures 2/2" in text and "failures 1" in text and "pkts/s" in text
    assert "2.00M/3.00M" in text  # bytes done of total; tqdm adds the ETA
    quiet = Progress(2, 100, enabled=False)
    quiet.update(Outcome("/x/a.pcap", "done", packets=1), 50)
    quiet.close()
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- --zeek-logs


def test_zeek_logs_per_capture_in_the_dataset(tmp_path: Path) -> None:
    """--zeek-logs: each capture's conn.log and pcapclass_findings.log under
    DATASET/zeek/site=/date=/<sha16>.*.log, read back by parsezeeklogs (not our parser),
    as many rows as the capture's flows and findings parts; recorded in the manifest;
    added to captures done without them; removed by a --reprocess without the option."""
    parsezeeklogs = pytest.importorskip("parsezeeklogs", reason="pip install -e '.[test]'")
    inp = tmp_path / "in"
    (inp / "mixed").mkdir(parents=True)
    shutil.copy(SAMPLES / "mixed_site.site.toml", inp / "mixed" / "site.toml")
    shutil.copy(SAMPLES / "mixed_site.pcapng", inp / "mixed" / "eth1.pcapng")
    shutil.copy(SAMPLES / "cmi_site.pcap.gz", inp / "cmi.pcap.gz")
    out = tmp_path / "ds"
    plain = batch.run([inp], out, now=LATER)
    assert len(plain.analysed) == 2 and not (out / "zeek").exists()
    first = batch.run([inp], out, now=LATER, zeek_logs=True)
    assert len(first.analysed) == 2  # done before, but without the logs asked for now
    umask = os.umask(0)
    os.umask(umask)
    for path, row in manifest_rows(out).items():
        parts = json.loads(row["parts"])
        sha16 = row["sha256"][:16]
        where = partition.partition_dir("zeek", row["site"], row["date"])
        conn = (where / f"{sha16}.conn.log").as_posix()
        findings_log = (where / f"{sha16}.pcapclass_findings.log").as_posix()
        assert parts[3:] == [conn, findings_log], path
        flows = pq.read_table(out / parts[0])
        findings = pq.read_table(out / parts[1])
        conn_rows = list(parsezeeklogs.read_zeek(str(out / conn)))
        assert len(conn_rows) == flows.num_rows == row["flows"] > 0
        assert sorted(r["uid"] for r in conn_rows) == sorted(flows.column("uid").to_pylist())
        assert len(list(parsezeeklogs.read_zeek(str(out / findings_log)))) == findings.num_rows
        assert (out / conn).stat().st_mode & 0o777 == 0o666 & ~umask
    assert (out / "zeek" / "site=Rathaus%20Nord%20%28demo%29").is_dir()
    logs = sorted(p for p in (out / "zeek").rglob("*") if p.is_file())
    assert len(logs) == 4
    again = batch.run([inp], out, now=LATER, zeek_logs=True)
    assert again.analysed == []
    without = batch.run([inp], out, now=LATER)  # done with logs: nothing to do either
    assert without.analysed == []
    assert sorted(p for p in (out / "zeek").rglob("*") if p.is_file()) == logs
    batch.run([inp], out, now=LATER, reprocess=True)
    assert not (out / "zeek").exists()
    assert all(len(json.loads(r["parts"])) == 3 for r in manifest_rows(out).values())


def test_stray_zeek_log_of_a_killed_run_is_cleaned_up(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    write_capture(inp / "a.pcap", dt.date(2026, 11, 21), [("10.0.0.1", "10.0.0.2", 22)])
    out = tmp_path / "ds"
    batch.run([inp], out, now=LATER, zeek_logs=True)
    stray = out / "zeek" / "site=unknown" / "date=2026-11-20" / "0123456789abcdef.conn.log"
    stray.parent.mkdir(parents=True)
    stray.write_text("#separator \\x09\n")  # renamed into place, then the driver was killed
    # killed while writing a log: its temporary (open_temp's name) in the staging folder,
    # or one beside the partition's logs
    staged = (
        out / ".staging" / "0123456789abcdef-k2j3" / ".0123456789abcdef.conn.log.9999999.a1.tmp"
    )
    staged.parent.mkdir(parents=True)
    beside = stray.parent / ".0123456789abcdef.pcapclass_findings.log.9999999.b2.tmp"
    for p in (staged, beside):
        p.write_text("#separator")
    result = batch.run([inp], out, now=LATER, zeek_logs=True)
    assert sorted(result.cleaned) == [
        ".staging",
        "zeek/site=unknown/date=2026-11-20/.0123456789abcdef.pcapclass_findings.log.9999999.b2.tmp",
        "zeek/site=unknown/date=2026-11-20/0123456789abcdef.conn.log",
    ]
    assert not stray.exists() and not beside.exists() and not (out / ".staging").exists()
    assert len(list((out / "zeek").rglob("*.log"))) == 2
