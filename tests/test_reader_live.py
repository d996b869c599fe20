"""Reader on a live stream (pipe, FIFO): what has arrived is handed over without
waiting for a full chunk, every byte is kept, the stop request ends reading after the
bytes that had arrived, and size/sha256 are those of the bytes read."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from analyzer import reader
from analyzer.errors import InterruptedEarly
from analyzer.reader import Capture

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [ROOT / "sample_pcaps" / n for n in ("gemos_site.vlan.pcap", "mixed_site.pcapng")]


def rows(path: str | Path, **kw: object) -> tuple[reader.CaptureStats, list[tuple], Capture]:
    out = []
    with Capture(path, **kw) as cap:  # type: ignore[arg-type]
        for raw in cap.batches():
            for k in range(raw.n):
                off, cl = int(raw.data_off[k]), int(raw.caplen[k])
                out.append(
                    (raw.buf[off : off + cl].tobytes(), int(raw.ts_ns[k]), int(raw.index[k]))
                )
    return cap.stats, out, cap


def feed(
    fifo: Path, pieces: list[bytes], pause_s: float, close: threading.Event | None = None
) -> threading.Thread:
    """Write the pieces into the FIFO with a pause after each (a slow live capture);
    with `close`, keep the FIFO open until it is set (a writer that goes on)."""

    def run() -> None:
        with open(fifo, "wb", buffering=0) as fh:
            for piece in pieces:
                fh.write(piece)
                time.sleep(pause_s)
            if close is not None:
                close.wait(30)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_slow_fifo_gives_the_same_records_size_and_sha256_as_the_file(
    tmp_path: Path, sample: Path
) -> None:
    """Pieces cut inside the file header and inside records, with pauses longer than
    the hand-over delay, so the reader walks many partial chunks."""
    data = sample.read_bytes()
    cuts = [3, 10, 30, 31, 200, 1001, 5000, len(data) // 2, len(data) - 7]
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    writer = feed(fifo, pieces, reader.LIVE_HOLD_S + 0.05)
    live_stats, live_rows, cap = rows(fifo)
    writer.join()
    file_stats, file_rows, _ = rows(sample)
    assert live_rows == file_rows and len(live_rows) > 100
    assert not cap.stopped and not live_stats.truncated
    assert live_stats.packets == file_stats.packets
    assert live_stats.size == len(data)
    assert live_stats.sha256 == hashlib.sha256(data).hexdigest() == file_stats.sha256


def test_gzip_on_a_fifo(tmp_path: Path) -> None:
    data = SAMPLES[0].read_bytes()
    packed = gzip.compress(data)
    fifo = tmp_path / "live.gz"
    os.mkfifo(fifo)
    writer = feed(fifo, [packed[:5], packed[5:1000], packed[1000:]], 0.05)
    stats, got, _ = rows(fifo)
    writer.join()
    assert got == rows(SAMPLES[0])[1]
    assert stats.format == "gzip+pcap-le-usec"
    assert stats.size == len(packed) and stats.sha256 == hashlib.sha256(packed).hexdigest()


def test_stop_on_a_fifo_keeps_every_byte_that_had_arrived(tmp_path: Path) -> None:
    """The writer sends the first part and half a record, then stays quiet with the
    FIFO open; stop() turns true: reading ends with every complete record sent, the
    half record is the 'cut short' case, size/sha256 are of the bytes sent."""
    data = SAMPLES[0].read_bytes()
    _, all_rows, _ = rows(SAMPLES[0])
    cut = len(data) // 3
    sent = data[:cut]
    stop_now = threading.Event()
    hold = threading.Event()
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    writer = feed(fifo, [sent], 0.0, close=hold)
    threading.Timer(1.0, stop_now.set).start()  # the "signal", once the bytes are in
    try:
        stats, got, cap = rows(fifo, stop=stop_now.is_set)
    finally:
        hold.set()
        writer.join()
    assert cap.stopped
    assert 0 < len(got) < len(all_rows)
    assert got == all_rows[: len(got)]
    # every complete record that was sent was read: the next one does not fit in `sent`
    assert stats.truncated
    assert any(
        "capture cut short" in w and f"results cover the first {len(got)} records" in w
        for w in stats.warnings
    )
    assert stats.size == cut and stats.sha256 == hashlib.sha256(sent).hexdigest()


def test_stop_before_any_byte_is_an_interrupt_not_a_bad_file(tmp_path: Path) -> None:
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    hold = threading.Event()
    writer = feed(fifo, [b"\xd4\xc3\xb2\xa1\x02\x00"], 0.0, close=hold)  # 6 of 24 header bytes
    try:
        with pytest.raises(InterruptedEarly) as exc, Capture(fifo, stop=lambda: True) as cap:
            list(cap.batches())
    finally:
        hold.set()
        writer.join()
    assert str(exc.value) == (
        f"{fifo}: interrupted before the capture's file header had arrived; "
        "nothing to analyse, nothing written"
    )
    assert exc.value.exit_code == 130


def test_stop_on_a_file_ends_after_the_batch_and_hashes_the_prefix_read(tmp_path: Path) -> None:
    """A memory-mapped file: reading stops after the first batch; size and sha256 are
    those of the bytes up to the end of the last record read (a prefix of the file)."""
    data = SAMPLES[0].read_bytes()
    stats, got, cap = rows(SAMPLES[0], batch_packets=50, stop=lambda: True)
    assert cap.stopped and len(got) == 50 and stats.packets == 50
    assert not stats.truncated
    assert stats.sha256 == hashlib.sha256(data[: stats.size]).hexdigest()
    assert 24 < stats.size < len(data)
    # the prefix ends exactly where record 51 starts: alone, it is 50 whole records
    prefix = tmp_path / "prefix.pcap"
    prefix.write_bytes(data[: stats.size])
    pstats, again, _ = rows(prefix)
    assert again == got and not pstats.truncated


SLOW_WRITER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from test_interrupt import _pcap_stream, _udp_frames
header, records = _pcap_stream(_udp_frames(flows=20, per_flow=150))
out = sys.stdout.buffer
out.write(header)
out.flush()
for rec in records:
    out.write(rec)
    out.flush()
    time.sleep(0.002)
"""


def test_a_slow_live_pipe_keeps_a_small_memory_footprint(tmp_path: Path) -> None:
    """3,000 packets trickling in for several seconds, handed over as they arrive (a
    few records per chunk): the peak RSS stays within what a 3-packet file costs plus
    the hostile-file margin of test_memory_bounds, and every packet is counted."""
    import subprocess
    import sys

    import pyarrow.parquet as pq
    from test_memory_bounds import ABSOLUTE_MIB, EXTRA_MIB, LAUNCHER, baseline_mib

    base = baseline_mib(str(tmp_path))
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(ROOT / "tests")], stdout=subprocess.PIPE
    )
    cli = [sys.executable, "-c", "from analyzer.cli import main; main()"]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cli, "-", "-o", str(tmp_path / "out")],
        stdin=writer.stdout,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
    )
    assert writer.stdout is not None
    writer.stdout.close()
    writer.wait(timeout=30)
    head, _, stderr = done.stdout.partition("\n")
    code, kib = head.split()
    peak = int(kib) / 1024
    print(f"slow live pipe: peak RSS {peak:.0f} MiB, 3-packet file {base:.0f} MiB")
    assert int(code) == 0, stderr
    assert peak <= min(base + EXTRA_MIB, ABSOLUTE_MIB)
    flows = pq.read_table(tmp_path / "out" / "flows.parquet")
    assert flows.num_rows == 20
    assert sum(flows.column("orig_pkts").to_pylist()) == 3000


def test_the_same_bytes_on_a_pipe_and_as_a_file_give_the_same_uids(tmp_path: Path) -> None:
    """`cat x | pcapclass - -o A` and `pcapclass x -o B`: the same connections and uids
    (the uid comes from the packets, not from the capture's name)."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    sample = ROOT / "sample_pcaps" / "cmi_site.pcap.gz"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli = [sys.executable, "-m", "analyzer.cli"]
    piped = subprocess.run(  # input= goes through a pipe
        [*cli, "-", "-o", "A"],
        input=sample.read_bytes(),
        cwd=tmp_path,
        env=env,
        capture_output=True,
    )
    filed = subprocess.run(
        [*cli, str(sample), "-o", "B"], cwd=tmp_path, env=env, capture_output=True
    )
    assert piped.returncode == filed.returncode, piped.stderr
    a = pq.read_table(tmp_path / "A" / "flows.parquet")
    b = pq.read_table(tmp_path / "B" / "flows.parquet")
    assert set(a.column("capture").to_pylist()) == {"<stdin>"}
    assert set(b.column("capture").to_pylist()) == {"cmi_site.pcap.gz"}
    assert a.num_rows == b.num_rows > 0
    assert sorted(a.column("uid").to_pylist()) == sorted(b.column("uid").to_pylist())
