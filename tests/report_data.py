"""Inputs for the report, plot and notebook tests: the samples analysed into output
folders, and a small batch dataset of two nights built from the real sample captures.
The night before is made from a sample dated one day earlier: for the GEMOS site the
whole capture (so its newest night has nothing new), for the C.M.I. site its first
40 records (so the newest night's new pair is what came later); the mixed site
has one night (every pair new)."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
DAY_S = 86400
CMI_FIRST_NIGHT = 40  # of cmi_site's 361 records: the first 15 s (boot, portal, Modbus)
# (capture, its site file) of the samples a nightly dataset is built from
NIGHTLY_SITES = {
    "gemos": ("gemos_site.vlan.pcap", "gemos_site.site.toml"),
    "cmi": ("cmi_site.pcap.gz", "cmi_site.site.toml"),
    "mixed": ("mixed_site.pcapng", "mixed_site.site.toml"),
}


def shift_pcap(src: Path, dst: Path, seconds: int, *, first: int | None = None) -> Path:
    """Copy a classic pcap (either byte order, optionally .gz; written uncompressed) with
    every record's timestamp moved by `seconds`, keeping the first `first` records (all
    by default); nothing else changes."""
    raw = src.read_bytes()
    data = bytearray(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{src}: not a classic pcap")
    off, n = 24, 0
    while off + 16 <= len(data) and (first is None or n < first):
        ts_sec, _frac, caplen, _wire = struct.unpack_from(endian + "IIII", data, off)
        struct.pack_into(endian + "I", data, off, ts_sec + seconds)
        off += 16 + caplen
        n += 1
    dst.write_bytes(bytes(data[:off]))
    return dst


def analyze_sample(capture: str, site: str | None, outdir: Path) -> Path:
    """One sample analysed through the library into `outdir`."""
    from analyzer.pipeline import analyze

    analyze(SAMPLES / capture, outdir=outdir, site=SAMPLES / site if site else None)
    return outdir


def nightly_inputs(root: Path) -> Path:
    """root/inputs/<site>/{site.toml, captures}: the GEMOS site with two nights (the
    capture and a copy dated one day earlier), the C.M.I. site with two (the night
    before: its first CMI_FIRST_NIGHT records), the mixed site with one."""
    inputs = root / "inputs"
    for folder, (capture, site) in NIGHTLY_SITES.items():
        where = inputs / folder
        where.mkdir(parents=True)
        shutil.copy(SAMPLES / site, where / "site.toml")
        shutil.copy(SAMPLES / capture, where / capture)
    gemos_capture = NIGHTLY_SITES["gemos"][0]
    shift_pcap(
        SAMPLES / gemos_capture, inputs / "gemos" / f"night-before-{gemos_capture}", -DAY_S
    )
    shift_pcap(
        SAMPLES / "cmi_site.pcap.gz", inputs / "cmi" / "night-before-cmi_site.pcap", -DAY_S,
        first=CMI_FIRST_NIGHT,
    )
    return inputs


def nightly_dataset(root: Path) -> Path:
    """The batch dataset of nightly_inputs, built with analyzer.batch.run."""
    from analyzer import batch

    inputs = nightly_inputs(root)
    out = root / "dataset"
    batch.run([inputs], out, settle_s=0)
    return out
