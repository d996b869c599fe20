"""What a person at a terminal sees on stderr while pcapclass reads: a live pipe shows
packets, packets/s and elapsed time as packets arrive (not when a buffer is full);
a file shows its percentage, bytes of the total and an ETA, then one line per stage."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_interrupt import _handlers_installed, _pcap_stream, _udp_frames

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_pcaps" / "gemos_site.vlan.pcap"
LIVE = re.compile(r"reading <stdin>: ([\d,]+) packets, [\d,]+ packets/s, elapsed \d+:\d\d")


class _Pty:
    """stderr of the child on a pseudo-terminal; everything it shows is collected."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.text = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.text += data.decode(errors="replace")

    def shown(self) -> str:
        with self._lock:
            return self.text


def _start(args: list[str], pty: _Pty, cwd: Path, **kw: object) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", *args],
        stdout=subprocess.PIPE,
        stderr=pty.slave,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
        **kw,  # type: ignore[arg-type]
    )
    os.close(pty.slave)
    return proc


def test_live_pipe_shows_packets_as_they_arrive(tmp_path: Path) -> None:
    header, records = _pcap_stream(_udp_frames(flows=3, per_flow=100))
    pty = _Pty()
    proc = _start(["-", "-o", "out"], pty, tmp_path, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        deadline = time.monotonic() + 60
        while not _handlers_installed(proc.pid):
            assert time.monotonic() < deadline, "pcapclass did not start"
            time.sleep(0.05)
        proc.stdin.write(header)
        for rec in records[:150]:
            proc.stdin.write(rec)
            proc.stdin.flush()
            time.sleep(0.01)
        # the first 150 packets are on their way; the writer stays (a live capture)
        deadline = time.monotonic() + 30
        while not any(int(m.group(1)) == 150 for m in LIVE.finditer(pty.shown())):
            assert time.monotonic() < deadline, pty.shown()
            time.sleep(0.1)
        counts = [int(m.group(1).replace(",", "")) for m in LIVE.finditer(pty.shown())]
        assert counts == sorted(counts) and max(counts) == 150
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == 130
    shown = pty.shown()
    # after the progress, the line is wiped before the warnings
    assert "\r\x1b[Kpcapclass: warning: SIGINT received" in shown or shown.count("\x1b[K") > 1
    assert "<stdin>: interrupted after 150 packets" in shown


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample missing")
def test_file_shows_percentage_of_its_bytes_and_eta_then_the_stages(tmp_path: Path) -> None:
    pty = _Pty()
    proc = _start([str(SAMPLE), "-o", "out"], pty, tmp_path)
    proc.wait(timeout=120)
    time.sleep(0.2)  # the last bytes through the pty
    shown = pty.shown()
    size = SAMPLE.stat().st_size
    assert proc.returncode in (0, 1), shown
    kb = f"{size / 1000:,.1f} kB"
    # bytes done: the records read (the file header is not counted), of the file's size
    assert re.search(
        rf"reading gemos_site\.vlan\.pcap: 100% [\d.]+ kB of {re.escape(kb)}, 2,063 packets, "
        r"[\d,]+ packets/s, elapsed \d+:\d\d, ETA 0:00",
        shown,
    ), shown
    for stage in ("building connections from 2,063 packets...", "classifying ", "writing "):
        assert stage in shown
    assert shown.endswith("\r\x1b[K") or "\r\x1b[K" in shown.splitlines()[-1]
