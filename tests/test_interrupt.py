"""Ctrl-C and SIGTERM as a terminal user and a cron job meet them: a live capture
piped into `pcapclass - -o out/` is stopped, what was read is analysed and written
(metadata pcapclass.interrupted = "true"), the summary is printed, and the exit code is
130, never 0 or 1. A second Ctrl-C aborts at once and leaves no file half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzer import schema
from analyzer.output import read_metadata

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_pcaps" / "gemos_site.vlan.pcap"  # classic pcap, Ethernet

# Replays the sample's records slowly to stdout, as `tcpdump -w -` would; on SIGINT
# (or when told to ignore it, never) it stops and records how many packets it wrote.
WRITER = """
import signal, sys, time
import dpkt
ignore = sys.argv[2] == "ignore"
if ignore:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
out = sys.stdout.buffer
written = 0
try:
    with open(sys.argv[1], "rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        w = dpkt.pcap.Writer(out, linktype=reader.datalink())
        out.flush()
        records = list(reader)
    while True:
        for ts, frame in records:
            w.writepkt(frame, ts=ts)
            out.flush()
            written += 1
            if written == 1:
                open(sys.argv[3] + ".started", "w").close()
            time.sleep(0.002)
except (KeyboardInterrupt, BrokenPipeError):
    pass
with open(sys.argv[3] + ".part", "w") as note:
    note.write(str(written))
import os
os.replace(sys.argv[3] + ".part", sys.argv[3])
"""


def _handlers_installed(pid: int) -> bool:
    """pcapclass catches SIGTERM only once its interrupt handling is in place."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = int(next(ln for ln in status.splitlines() if ln.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _pipeline(
    tmp_path: Path, writer_mode: str, *extra: str
) -> tuple[subprocess.Popen, subprocess.Popen, Path]:
    note = tmp_path / "written.txt"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(SAMPLE), writer_mode, str(note)],
        stdout=subprocess.PIPE,
        process_group=0,  # its own process group, as a shell gives a pipeline
    )
    assert writer.stdout is not None
    reader = subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", "-", "-o", "out", *extra],
        stdin=writer.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        process_group=writer.pid,
    )
    writer.stdout.close()
    deadline = time.monotonic() + 60
    while not (_handlers_installed(reader.pid) and Path(f"{note}.started").exists()):
        assert time.monotonic() < deadline, "pcapclass did not start"
        time.sleep(0.05)
    time.sleep(0.5)  # a few hundred more packets on the wire
    return writer, reader, note


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample missing")
def test_ctrl_c_on_a_live_pipe_writes_what_was_read_and_exits_130(tmp_path: Path) -> None:
    writer, reader, note = _pipeline(tmp_path, "die", "--json")
    try:
        os.killpg(writer.pid, signal.SIGINT)  # Ctrl-C: the whole pipeline gets it
        out, err = reader.communicate(timeout=60)
        writer.wait(timeout=10)
    finally:
        _stop(writer)
        _stop(reader)
    assert reader.returncode == 130, err.decode()
    written = int(note.read_text())
    obj = json.loads(out)
    assert obj["exit_code"] == 130 and obj["interrupted"] is True
    [cap] = obj["captures"]
    assert cap["interrupted"] is True
    assert cap["packets"] == written > 0  # everything the writer sent before it died
    assert obj["flows"] > 0
    lines = err.decode().splitlines()
    assert lines[0] == (
        "pcapclass: warning: SIGINT received: stopping; what was read is analysed and "
        "written (Ctrl-C aborts at once)"
    )
    assert lines[1] == (
        f"pcapclass: warning: <stdin>: interrupted after {written:,} packets; the results "
        "cover the packets read until then (exit code 130)"
    )
    for name, cols in schema.TABLES.items():
        path = tmp_path / "out" / f"{name}.parquet"
        table = pq.read_table(path)
        assert table.schema.remove_metadata() == schema.arrow_schema(cols)
        meta = read_metadata(path)
        assert meta["pcapclass.interrupted"] == "true"
        assert meta["pcapclass.packets"] == str(written)
    assert pq.read_table(tmp_path / "out" / "flows.parquet").num_rows == obj["flows"]


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample missing")
def test_sigterm_with_the_writer_still_sending_stops_and_exits_130(tmp_path: Path) -> None:
    """`kill PID` of pcapclass alone (the writer goes on): the summary is printed, the
    files are written with interrupted = true, exit 130, within a few seconds."""
    writer, reader, _ = _pipeline(tmp_path, "ignore")
    try:
        t0 = time.monotonic()
        reader.send_signal(signal.SIGTERM)
        out, err = reader.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        _stop(writer)
        _stop(reader)
    assert reader.returncode == 130, err.decode()
    assert took < 30
    assert err.decode().splitlines()[0] == (
        "pcapclass: warning: SIGTERM received: stopping; what was read is analysed and "
        "written (a second signal aborts at once)"
    )
    assert out.decode().startswith("<stdin>: ")
    assert "(interrupted)" in out.decode().splitlines()[0]
    meta = read_metadata(tmp_path / "out" / "flows.parquet")
    assert meta["pcapclass.interrupted"] == "true"


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample missing")
def test_second_ctrl_c_aborts_at_once_with_nothing_half_written(tmp_path: Path) -> None:
    writer, reader, _ = _pipeline(tmp_path, "ignore")
    try:
        reader.send_signal(signal.SIGINT)
        time.sleep(0.1)
        t0 = time.monotonic()
        reader.send_signal(signal.SIGINT)
        out, err = reader.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        _stop(writer)
        _stop(reader)
    assert reader.returncode == 130, err.decode()
    assert err.decode().splitlines()[-1] == (
        "pcapclass: error: aborted; no output file was left half-written"
    )
    assert out == b""
    print(f"aborted {took:.1f} s after the second Ctrl-C")
    assert took < 3
    out_dir = tmp_path / "out"
    names = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    assert not [n for n in names if n.endswith(".tmp")]
    for name in names:  # whatever is there is complete
        pq.read_table(tmp_path / "out" / name)


def test_interrupted_run_of_several_captures_reads_no_further_capture(tmp_path: Path) -> None:
    """The library side: stop() true after the first batch ends reading there; the CLI's
    exit rule makes an interrupt 130 even when findings exist."""
    from analyzer import summary
    from analyzer.pipeline import analyze

    if not SAMPLE.exists():
        pytest.skip("sample missing")
    full = analyze(SAMPLE, write=False)
    part = analyze(SAMPLE, outdir=tmp_path / "o", batch_packets=100, stop=lambda: True)
    assert part.interrupted and not full.interrupted
    assert part.capture.packets == 100 < full.capture.packets
    assert read_metadata(tmp_path / "o" / "hosts.parquet")["pcapclass.interrupted"] == "true"
    assert summary.run_exit_code([part], [], "info") == 130
    assert summary.run_exit_code([full], [], "info", interrupted=True) == 130


# --- the test process is the writer: it knows every byte it sent before the signal


def _udp_frames(flows: int, per_flow: int) -> list[tuple[float, bytes]]:
    """`flows` UDP conversations 10.1.0.<k>:40000+k -> 10.2.0.1:7000 with `per_flow`
    packets each, interleaved, 10 ms apart."""
    import dpkt

    out = []
    for i in range(flows * per_flow):
        k = i % flows
        udp = dpkt.udp.UDP(sport=40000 + k, dport=7000, data=b"packet %06d" % i)
        udp.ulen = len(udp)
        ip = dpkt.ip.IP(
            src=bytes([10, 1, 0, k + 1]), dst=bytes([10, 2, 0, 1]), p=dpkt.ip.IP_PROTO_UDP, data=udp
        )
        ip.len = len(ip)
        eth = dpkt.ethernet.Ethernet(
            src=bytes([2, 0, 0, 0, 1, k + 1]), dst=bytes([2, 0, 0, 0, 2, 1]), data=ip
        )
        out.append((1_700_000_000 + i * 0.01, bytes(eth)))
    return out


def _pcap_stream(frames: list[tuple[float, bytes]]) -> tuple[bytes, list[bytes]]:
    """The classic pcap file header and one byte string per record."""
    import struct

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = []
    for ts, frame in frames:
        sec, usec = int(ts), round((ts - int(ts)) * 1e6)
        records.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    return header, records


def _feed_then_signal(
    tmp_path: Path, send: str, *, half_record: bool = False
) -> tuple[int, str, bytes, int]:
    """pcapclass - -o out reading a pipe this test writes: every record is written
    slowly and flushed, then (optionally half a record), then the signal, the pipe
    still open (a writer that is alive). Returns (exit code, stderr, bytes sent,
    records sent)."""
    header, records = _pcap_stream(_udp_frames(flows=7, per_flow=30))
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", "-", "-o", "out"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        process_group=0,
    )
    assert proc.stdin is not None
    try:
        deadline = time.monotonic() + 60
        while not _handlers_installed(proc.pid):
            assert time.monotonic() < deadline, "pcapclass did not start"
            time.sleep(0.05)
        sent = bytearray(header)
        proc.stdin.write(header)
        proc.stdin.flush()
        for rec in records:
            proc.stdin.write(rec)
            proc.stdin.flush()
            sent += rec
            time.sleep(0.005)
        if half_record:
            proc.stdin.write(records[0][:30])
            proc.stdin.flush()
            sent += records[0][:30]
        if send == "group":
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole group
        else:
            proc.send_signal(signal.SIGINT if send == "SIGINT" else signal.SIGTERM)
        proc.wait(timeout=60)  # the pipe stays open until pcapclass has exited
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        _stop(proc)
    return proc.returncode, err.decode() + out.decode(), bytes(sent), len(records)


@pytest.mark.parametrize("send", ["SIGINT", "SIGTERM", "group"])
def test_every_packet_written_before_the_signal_is_in_flows(tmp_path: Path, send: str) -> None:
    import hashlib

    code, err, sent, n = _feed_then_signal(tmp_path, send)
    assert code == 130, err
    name = "SIGTERM" if send == "SIGTERM" else "SIGINT"
    assert err.splitlines()[0].startswith(f"pcapclass: warning: {name} received: stopping")
    assert f"<stdin>: interrupted after {n:,} packets" in err, err
    flows = pq.read_table(tmp_path / "out" / "flows.parquet").to_pylist()
    assert len(flows) == 7  # the seven conversations written
    assert sum(f["orig_pkts"] + f["resp_pkts"] for f in flows) == n == 210
    assert sorted(f["orig_p"] for f in flows) == list(range(40000, 40007))
    meta = read_metadata(tmp_path / "out" / "flows.parquet")
    assert meta["pcapclass.interrupted"] == "true"
    assert meta["pcapclass.truncated"] == "false"
    assert meta["pcapclass.packets"] == "210"
    assert json.loads(meta["pcapclass.capture"]) == {
        "name": "<stdin>",
        "size": len(sent),
        "sha256": hashlib.sha256(sent).hexdigest(),
    }


def test_a_record_cut_by_the_signal_is_the_cut_short_case(tmp_path: Path) -> None:
    import hashlib

    code, err, sent, n = _feed_then_signal(tmp_path, "SIGTERM", half_record=True)
    assert code == 130, err
    assert (
        f"pcapclass: warning: <stdin>: capture cut short at byte {len(sent) - 30} "
        f"(record {n} incomplete); results cover the first {n} records"
    ) in err.splitlines()
    meta = read_metadata(tmp_path / "out" / "findings.parquet")
    assert meta["pcapclass.truncated"] == "true" and meta["pcapclass.interrupted"] == "true"
    assert json.loads(meta["pcapclass.capture"])["sha256"] == hashlib.sha256(sent).hexdigest()
    flows = pq.read_table(tmp_path / "out" / "flows.parquet")
    assert pc_sum(flows, "orig_pkts") + pc_sum(flows, "resp_pkts") == n


def pc_sum(table: object, column: str) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(table.column(column)).as_py())  # type: ignore[attr-defined]
