"""Hostile captures through the reader: random bytes, truncations and bit flips of the
public captures, absurd pcapng length and option fields, damaged gzip streams.

Properties (analyzer/errors.py, analyzer/reader.py's docstring):
- nothing escapes but CaptureError, and that only when the file *as a whole* is unusable
  (no magic, a pcap file header or the first pcapng section header damaged or cut);
- every record is kept or counted by reason: kept == packets - sum(skipped);
- the records before the damage are kept exactly as in the undamaged file;
- the same, with numba's bounds checks on, in a subprocess (the last test).

The example budget is fixed (FUZZ_EXAMPLES, default 40 per test, derandomized) so the
file takes well under a minute in `make test`; `benchmarks/fuzz_long.py` runs it with a
larger budget and random seeds (docs/hardening.md).
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from boundscheck import run_with_bounds_checks
from conftest import PUBLIC, SAMPLES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_reader import FRAMES, block, epb, shb

from analyzer import reader
from analyzer.errors import CaptureError
from analyzer.reader import Capture, CaptureStats
from analyzer.walk import MAX_INTERFACES, MAX_TS_S, PCAPNG_MAX_BLOCK

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
BUDGET = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=list(HealthCheck),
)
SEED_MAX_BYTES = 120_000  # small captures keep each example a few milliseconds
NS = 10**9
LE = "<"


# ------------------------------------------------------------------ the seeds


@cache
def seeds() -> list[tuple[str, bytes]]:
    """(name, uncompressed bytes) of the small public captures and the sample pcapng."""
    out = []
    for p in sorted(PUBLIC.rglob("*")):
        if p.suffix not in (".pcap", ".pcapng", ".gz") or not p.is_file():
            continue
        data = p.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if len(data) <= SEED_MAX_BYTES:
            out.append((str(p.relative_to(PUBLIC)), data))
    out.append(("mixed_site.pcapng", (SAMPLES / "mixed_site.pcapng").read_bytes()))
    return out


@dataclass(frozen=True)
class Layout:
    """Where the records of an undamaged capture are, from the format documents (an
    oracle independent of the compiled walk): `header_end` is where the first record may
    start (pcap: 24; pcapng: the end of the first section header), `bounds` every record
    boundary, `packet_ends[i]` the end of the i-th packet record."""

    header_end: int
    bounds: frozenset[int]
    packet_ends: tuple[int, ...]


@cache
def layout(data: bytes) -> Layout:
    bounds, ends = [], []
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        pos, order, first = 0, LE, 0
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
                order = LE if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack_from(order + "II", data, pos)
            if pos + blen > len(data):
                break
            pos += blen
            first = first or pos
            bounds.append(pos)
            if btype in (2, 3, 6):
                ends.append(pos)
        return Layout(first, frozenset(bounds), tuple(ends))
    order = LE if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    bounds.append(pos)
    while pos + 16 <= len(data):
        (caplen,) = struct.unpack_from(order + "I", data, pos + 8)
        if pos + 16 + caplen > len(data):
            break
        pos += 16 + caplen
        bounds.append(pos)
        ends.append(pos)
    return Layout(24, frozenset(bounds), tuple(ends))


# ------------------------------------------------------------------ reading


Row = tuple[int, bytes, int, int, int]  # index, data, wirelen, ts_ns, linktype


@contextmanager
def reading_path(mapped: bool) -> Iterator[None]:
    """mapped: the mmap walk over the whole file; else the streamed ring with tiny
    chunks, so records straddle chunks and take the carry path."""
    saved = reader.MAP_FILES, reader.CHUNK_BYTES
    reader.MAP_FILES = mapped
    if not mapped:
        reader.CHUNK_BYTES = 4096
    try:
        yield
    finally:
        reader.MAP_FILES, reader.CHUNK_BYTES = saved


def read(path: Path, mapped: bool = True) -> tuple[CaptureStats, list[Row]]:
    rows: list[Row] = []
    with reading_path(mapped), Capture(path, batch_packets=97) as cap:
        for raw in cap.batches():
            for k in range(raw.n):
                off, cl = int(raw.data_off[k]), int(raw.caplen[k])
                assert 0 < cl <= int(raw.wirelen[k])
                assert 0 <= int(raw.ts_ns[k]) < MAX_TS_S * NS
                rows.append(
                    (
                        int(raw.index[k]),
                        raw.buf[off : off + cl].tobytes(),
                        int(raw.wirelen[k]),
                        int(raw.ts_ns[k]),
                        int(raw.linktype[k]),
                    )
                )
    return cap.stats, rows


def check_accounting(stats: CaptureStats, rows: list[Row]) -> None:
    """Every packet record is kept or counted under exactly one reason, in order."""
    assert len(rows) == stats.packets - sum(stats.skipped.values()), dict(stats.skipped)
    assert all(v > 0 for v in stats.skipped.values())
    assert [r[0] for r in rows] == sorted({r[0] for r in rows})
    assert all(r[0] < stats.packets for r in rows)


def read_or_reject(
    data: bytes, suffix: str = ".pcap"
) -> list[tuple[CaptureStats, list[Row]]] | CaptureError:
    """Both reading paths; they must agree. A CaptureError is returned, anything else
    raised propagates and fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"f{suffix}"
        p.write_bytes(data)
        out: list[tuple[CaptureStats, list[Row]]] = []
        errors = []
        for mapped in (True, False):
            try:
                stats, rows = read(p, mapped)
            except CaptureError as exc:
                errors.append(str(exc))
                continue
            check_accounting(stats, rows)
            out.append((stats, rows))
        if errors:
            assert len(errors) == 2, f"one path rejected, the other read: {errors}"
            return CaptureError(errors[0])
        (s1, r1), (s2, r2) = out
        assert r1 == r2
        assert (s1.packets, s1.skipped, s1.truncated) == (s2.packets, s2.skipped, s2.truncated)
        return out


@cache
def original_rows(name: str) -> list[Row]:
    data = dict(seeds())[name]
    result = read_or_reject(data)
    assert not isinstance(result, CaptureError), result
    return result[0][1]


def rows_before(name: str, offset: int) -> list[Row]:
    """The rows of the undamaged capture whose record ends at or before `offset`."""
    ends = layout(dict(seeds())[name]).packet_ends
    return [r for r in original_rows(name) if ends[r[0]] <= offset]


# ------------------------------------------------------------------ properties


@BUDGET
@given(st.binary(max_size=600), st.sampled_from([b"", b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"]))
def test_random_bytes(data: bytes, magic: bytes) -> None:
    """Random bytes, bare or behind a pcap or pcapng magic: read or rejected, never raised."""
    read_or_reject(magic + data)


SEED_NAMES = st.sampled_from([name for name, _ in seeds()]) if seeds() else st.nothing()


@BUDGET
@given(SEED_NAMES, st.floats(0, 1))
def test_truncation_keeps_every_complete_record(name: str, where: float) -> None:
    data = dict(seeds())[name]
    lay = layout(data)
    k = int(where * len(data))
    result = read_or_reject(data[:k])
    if k < lay.header_end:  # the file header itself is cut: the whole input is unusable
        assert isinstance(result, CaptureError)
        return
    assert not isinstance(result, CaptureError), result
    stats, rows = result[0]
    assert rows == rows_before(name, k)
    assert stats.packets == sum(e <= k for e in lay.packet_ends)
    assert stats.truncated == (k not in lay.bounds and k != lay.header_end)
    if stats.truncated:
        at = max(b for b in lay.bounds | {lay.header_end} if b <= k)
        m = stats.packets
        assert (
            f"f.pcap: capture cut short at byte {at} (record {m} incomplete); "
            f"results cover the first {m} records"
        ) in [w.rsplit("/", 1)[-1] for w in stats.warnings]


@BUDGET
@given(SEED_NAMES, st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips_keep_the_records_before_them(
    name: str, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(dict(seeds())[name])
    lay = layout(bytes(data))
    where = [min(int(f * len(data)), len(data) - 1) for f, _ in flips]
    for at, (_, bit) in zip(where, flips, strict=True):
        data[at] ^= 1 << bit
    first = min(where)
    result = read_or_reject(bytes(data))
    if isinstance(result, CaptureError):
        assert first < lay.header_end, f"{result} though the damage is at byte {first}"
        return
    stats, rows = result[0]
    ends = layout(dict(seeds())[name]).packet_ends
    before = [r for r in rows if r[0] < len(ends) and ends[r[0]] <= first]
    assert before == rows_before(name, first)


@BUDGET
@given(SEED_NAMES, st.floats(0, 1), st.sampled_from([2**31, 2**32 - 4, 0xFFFFFFFF, 8, 2**24]))
def test_absurd_length_field_at_a_record(name: str, where: float, length: int) -> None:
    """A pcap caplen or a pcapng block length of gigabytes (or too small) at some record:
    reading stops there with a corrupt_record and keeps everything before."""
    data = bytearray(dict(seeds())[name])
    lay = layout(bytes(data))
    starts = sorted(b for b in lay.bounds | {lay.header_end} if b + 16 <= len(data))
    if not starts:
        return
    at = starts[int(where * (len(starts) - 1))]
    is_ng = data[:4] == b"\x0a\x0d\x0d\x0a"
    order = LE if (not is_ng and data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")) else ">"
    if is_ng:  # the byte order of the section the block is in
        order = LE
        for b in sorted(lay.bounds | {0}):
            if b >= at:
                break
            if data[b : b + 4] == b"\x0a\x0d\x0d\x0a":
                order = LE if data[b + 8 : b + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        if data[at : at + 4] == b"\x0a\x0d\x0d\x0a":
            return  # an SHB's length field is read in its own byte order: other test
    struct.pack_into(order + "I", data, at + (4 if is_ng else 8), length)
    result = read_or_reject(bytes(data))
    assert not isinstance(result, CaptureError), result
    stats, rows = result[0]
    before = rows_before(name, at)
    assert rows[: len(before)] == before
    huge = length > (PCAPNG_MAX_BLOCK if is_ng else reader.PCAP_MAX_CAPLEN)
    if huge or (is_ng and (length % 4 or length < 12)):
        assert rows == before
        assert stats.skipped["corrupt_record"] == 1 and stats.truncated
        assert stats.warnings[0].split(": ", 1)[1].startswith(f"corrupt record at byte {at} (")


# ---- synthetic pcapng: every field at its extremes, a model of what must come out


def tsresol_base(tsresol: int) -> int:
    r = tsresol & 0x7F
    return 2**r if tsresol & 0x80 else 10**r


IFACE = st.fixed_dictionaries(
    {
        "linktype": st.sampled_from([1, 101, 113, 0xFFFF]),
        "snaplen": st.sampled_from([0, 1, 60, 2**32 - 1]),
        "tsresol": st.one_of(st.none(), st.integers(0, 255), st.sampled_from([127, 0xFF])),
        "tsoffset": st.one_of(
            st.just(0),
            st.integers(-(2**63), 2**63 - 1),
            st.integers(-2 * MAX_TS_S, 2 * MAX_TS_S),
            st.sampled_from([2**63 - 1, -(2**63), 9 * 10**9, -(9 * 10**9), 9_300_000_000]),
        ),
    }
)
PACKET = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["epb", "epb", "spb", "pb"]),
        "iface": st.integers(0, 5),
        "ts": st.one_of(
            st.integers(0, 2**64 - 1), st.integers(0, 2**53), st.sampled_from([2**64 - 1])
        ),
        "defect": st.sampled_from([None, None, "caplen_gt_wirelen", "bad_caplen", "zero"]),
        "frame": st.integers(0, 2),
    }
)
ITEM = st.one_of(
    st.tuples(st.just("idb"), IFACE), st.tuples(st.just("pkt"), PACKET), st.just(("shb", None))
)


def idb_block(o: str, i: dict) -> bytes:
    opts = b""
    if i["tsresol"] is not None:
        opts += struct.pack(o + "HHB3x", 9, 1, i["tsresol"])
    if i["tsoffset"]:
        opts += struct.pack(o + "HHq", 14, 8, i["tsoffset"])
    if opts:
        opts += struct.pack(o + "HH", 0, 0)
    return block(o, 1, struct.pack(o + "HHI", i["linktype"], 0, i["snaplen"]) + opts)


def expected_ts(raw: int, i: dict) -> int | None:
    """The exact timestamp in ns, or None when it lies outside 1970 .. 2262 (clamped)."""
    base = tsresol_base(6 if i["tsresol"] is None else i["tsresol"])
    ns = raw * NS // base + i["tsoffset"] * NS
    return ns if 0 <= ns < MAX_TS_S * NS else None


BIG_TS = {"kind": "epb", "iface": 0, "ts": 2**64 - 1, "defect": None, "frame": 0}


@BUDGET
@given(st.sampled_from([LE, ">"]), st.lists(ITEM, max_size=25))
@example(  # found by this test: 2^64 us less 5e9 s was dated 2103 instead of clamped
    LE, [("idb", {"linktype": 1, "snaplen": 0, "tsresol": None, "tsoffset": -5 * NS}),
         ("pkt", BIG_TS)]
)
@example(LE, [("idb", {"linktype": 1, "snaplen": 0, "tsresol": 0, "tsoffset": -(2**63)}),
              ("pkt", BIG_TS)])  # fmt: skip
def test_synthetic_pcapng_at_the_extremes(order: str, items: list) -> None:
    """Interfaces with any if_tsresol (to 2^-127 / 10^-127), if_tsoffset near +-2^63,
    snaplen 0 and 2^32-1; packets naming interfaces that do not exist, caplen above the
    original length or beyond the block, zero caplen. Checked against a model written
    from the pcapng document: which records are kept, their timestamps, and the count
    of every skip reason."""
    o = order
    data = shb(o)
    ifaces: list[dict] = []
    want_skipped: Counter[str] = Counter()
    want: list[tuple[int, bytes, int | None, str]] = []  # index, data, ts, kind
    clamped = 0
    record = 0
    for kind, item in items:
        if kind == "shb":
            data += shb(o)
            ifaces = []
        elif kind == "idb":
            data += idb_block(o, item)
            ifaces.append(item)
        else:
            frame, defect = FRAMES[item["frame"]], item["defect"]
            if item["kind"] == "spb":
                frame = frame[: len(frame) // 4 * 4]  # no padding: caplen is unambiguous
                wirelen = len(frame) if defect is None else 0
                data += block(o, 3, struct.pack(o + "I", wirelen) + frame)
                if not ifaces:
                    want_skipped["bad_interface"] += 1
                elif wirelen == 0:
                    want_skipped["zero_caplen"] += 1
                else:
                    snap = ifaces[0]["snaplen"]
                    cap = min(len(frame), snap) if snap else len(frame)
                    want.append((record, frame[:cap], None, "spb"))
                record += 1
                continue
            iface = item["iface"]
            caplen, wirelen, body = len(frame), len(frame), frame
            if defect == "caplen_gt_wirelen":
                wirelen = caplen - 1
            elif defect == "bad_caplen":
                caplen = len(frame) + 100
            elif defect == "zero":
                caplen, body = 0, b""
            hi, lo = item["ts"] >> 32, item["ts"] & 0xFFFFFFFF
            if item["kind"] == "epb":
                head = struct.pack(o + "IIIII", iface, hi, lo, caplen, wirelen)
                data += block(o, 6, head + body)
            else:
                head = struct.pack(o + "HHIIII", iface, 0, hi, lo, caplen, wirelen)
                data += block(o, 2, head + body)
            if iface >= len(ifaces) or iface >= MAX_INTERFACES:
                want_skipped["bad_interface"] += 1
            elif defect == "bad_caplen" and caplen > len(body) + (-len(body) % 4):
                want_skipped["bad_caplen"] += 1
            elif defect == "caplen_gt_wirelen":
                want_skipped["caplen_gt_wirelen"] += 1
            elif defect == "zero":
                want_skipped["zero_caplen"] += 1
            else:
                ts = expected_ts(item["ts"], ifaces[iface])
                clamped += ts is None
                want.append((record, frame, ts, "epb"))
            record += 1
    result = read_or_reject(data, ".pcapng")
    assert not isinstance(result, CaptureError), result
    stats, rows = result[0]
    assert stats.packets == record and not stats.truncated
    assert stats.skipped == want_skipped
    assert [(r[0], r[1]) for r in rows] == [(w[0], w[1]) for w in want]
    assert stats.events["ts_clamped"] == clamped
    for row, (_, _, ts, kind) in zip(rows, want, strict=True):
        if kind == "epb" and ts is not None:
            # binary resolutions finer than 2^-34 s may lose the last nanosecond
            assert abs(row[3] - ts) <= 1, (row[3], ts)


@BUDGET
@given(SEED_NAMES, st.floats(0, 1), st.binary(min_size=1, max_size=64))
def test_gzip_cut_short_or_with_garbage_after_the_end(
    name: str, where: float, garbage: bytes
) -> None:
    """A gzip stream cut anywhere keeps a prefix of the records (and says it is cut);
    garbage after a complete stream keeps every record."""
    data = dict(seeds())[name]
    comp = gzip.compress(data, compresslevel=1, mtime=0)
    k = int(where * len(comp))
    result = read_or_reject(comp[:k] if k >= 2 else comp[:2], ".pcap.gz")
    if not isinstance(result, CaptureError):
        stats, rows = result[0]
        assert rows == original_rows(name)[: len(rows)]
        if len(rows) < len(original_rows(name)):
            assert stats.truncated and stats.warnings
    result = read_or_reject(comp + garbage, ".pcap.gz")
    assert not isinstance(result, CaptureError), result
    stats, rows = result[0]
    assert rows == original_rows(name)


# ------------------------------------------------------------------ bounds checks


BOUNDSCHECK_SCRIPT = r"""
import sys, tempfile
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
import test_reader_fuzz as f
from analyzer.errors import CaptureError

rng = np.random.default_rng(14)
seeds = f.seeds()
read = rejected = 0
with tempfile.TemporaryDirectory() as tmp:
    p = Path(tmp) / "m.pcap"
    for i in range(int(sys.argv[2])):
        name, data = seeds[i % len(seeds)]
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(0, len(b)))
            if rng.random() < 0.3:  # an absurd 32-bit length somewhere
                b[at : at + 4] = int(rng.choice([0, 0xFFFFFFFF, 2**31, 13])).to_bytes(4, "little")
            else:
                b[at] ^= 1 << int(rng.integers(0, 8))
        b = b[: int(rng.integers(0, len(b) + 1))] if rng.random() < 0.3 else b
        p.write_bytes(bytes(b))
        for mapped in (True, False):
            try:
                stats, rows = f.read(p, mapped)
            except CaptureError:
                rejected += 1
                continue
            f.check_accounting(stats, rows)
            read += 1
print("ok", read, rejected)
"""


def test_reader_kernels_with_numba_bounds_checks(tmp_path: Path) -> None:
    """Damaged public captures through both reading paths with NUMBA_BOUNDSCHECK=1: the
    mapped walk's buffer ends exactly at the file's end, so any read past it raises."""
    cases = int(os.environ.get("FUZZ_BOUNDSCHECK_CASES", "300"))
    read_, rejected = run_with_bounds_checks(
        BOUNDSCHECK_SCRIPT, str(cases), cache_dir=tmp_path / "cache"
    )
    assert read_ + rejected == 2 * cases and read_ > 0


@pytest.mark.parametrize("snaplen", [0, 2**32 - 1])
def test_spb_with_snaplen_zero_or_max_keeps_the_whole_frame(tmp_path: Path, snaplen: int) -> None:
    """pcapng: snaplen 0 means no limit, so an SPB's data is min(original length, block)."""
    frame = FRAMES[0]
    p = tmp_path / "s.pcapng"
    ifc = block(LE, 1, struct.pack(LE + "HHI", 1, 0, snaplen))
    spb = block(LE, 3, struct.pack(LE + "I", 60) + frame)
    p.write_bytes(shb(LE) + ifc + epb(LE, 0, 1, frame) + spb)
    result = read_or_reject(p.read_bytes(), ".pcapng")
    assert not isinstance(result, CaptureError)
    stats, rows = result[0]
    assert [r[1] for r in rows] == [frame, frame] and stats.skipped == {}
