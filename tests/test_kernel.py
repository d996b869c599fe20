"""Every kernel compiles one version, whichever way the capture is read.

numba compiles (and caches) a kernel once per argument type, and a read-only byte
buffer (a mapped file) is another type than a writable one (a gzip or stdin chunk, the
table's buffer). Two versions of a kernel cost twice the compiling on a cold cache, and
when two processes save a kernel's cache index at once (batch workers) one version can
be lost, so later runs compile again (CI saw a run's peak RSS grow by the compiler's
~100 MiB that way). The check runs in a fresh interpreter and counts the versions each
kernel dispatcher holds after reading the same packets through every reading path.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from test_reader import pcap_bytes

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_pcaps" / "mixed_site.pcapng"

PROBE = r"""
import json, sys
from pathlib import Path
import numba.core.registry
import analyzer
from analyzer.pipeline import analyze

for capture in sys.argv[2:]:
    analyze(capture, outdir=Path(sys.argv[1]) / Path(capture).name)
versions = {}
for name, module in sorted(sys.modules.items()):
    if name.startswith("analyzer"):
        for attr, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                versions[f"{value.py_func.__module__}.{value.py_func.__qualname__}"] = [
                    str(sig) for sig in value.signatures
                ]
print(json.dumps(versions))
"""


def test_each_kernel_has_one_version_for_mapped_gzip_and_piped_input(tmp_path: Path) -> None:
    pcap = tmp_path / "frames.pcap"
    pcap.write_bytes(pcap_bytes())
    pcapng_gz = tmp_path / "mixed_site.pcapng.gz"
    pcapng_gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    pcap_gz = tmp_path / "frames.pcap.gz"
    pcap_gz.write_bytes(gzip.compress(pcap.read_bytes()))
    captures = [pcap, SAMPLE, pcapng_gz, pcap_gz]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "out"), *map(str, captures)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    used = {name: sigs for name, sigs in versions.items() if sigs}
    # the walk of both formats, the decoder, the connection table, text and services
    for kernel in (
        "analyzer.walk.walk_pcap",
        "analyzer.walk.walk_pcapng",
        "analyzer.decode._decode_packets",
        "analyzer.conntable.run_batch",
        "analyzer.flowtext._gather",
        "analyzer.services._services",
    ):
        assert kernel in used
    assert {name: len(sigs) for name, sigs in used.items()} == {name: 1 for name in used}
