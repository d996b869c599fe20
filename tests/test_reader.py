"""Reader: formats by magic bytes, pcapng sections/interfaces, gzip, stdin, damage."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import public_params

from analyzer import reader
from analyzer.errors import CaptureError
from analyzer.reader import Capture

FRAMES = [bytes([i]) * (60 + 7 * i) for i in range(3)]  # distinct content and lengths


@pytest.fixture(params=["mmap", "readinto"])
def both_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Regular files are memory-mapped; the readinto ring serves gzip and stdin. Tests
    using this fixture run once through each."""
    monkeypatch.setattr(reader, "MAP_FILES", request.param != "readinto")
    return request.param != "readinto"


def read_all(path: str | Path, **kw: int) -> tuple[reader.CaptureStats, list[dict]]:
    rows = []
    with Capture(path, **kw) as cap:
        for raw in cap.batches():
            for k in range(raw.n):
                off, cl = int(raw.data_off[k]), int(raw.caplen[k])
                rows.append(
                    {
                        "data": raw.buf[off : off + cl].tobytes(),
                        "wirelen": int(raw.wirelen[k]),
                        "ts_ns": int(raw.ts_ns[k]),
                        "linktype": int(raw.linktype[k]),
                        "index": int(raw.index[k]),
                    }
                )
    return cap.stats, rows


def pcap_bytes(
    order: str = "<",
    nsec: bool = False,
    linktype: int = 1,
    records: list[tuple[int, int, bytes, int]] | None = None,
) -> bytes:
    """Classic pcap; records are (sec, frac, data, wirelen)."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    if records is None:
        records = [(1_700_000_000 + i, 1000 * i + 5, f, len(f)) for i, f in enumerate(FRAMES)]
    for sec, frac, data, wirelen in records:
        out += struct.pack(order + "IIII", sec, frac, len(data), wirelen) + data
    return out


# ------------------------------------------------------------------ classic pcap


@pytest.mark.parametrize(
    ("order", "nsec", "fmt"),
    [
        ("<", False, "pcap-le-usec"),
        (">", False, "pcap-be-usec"),
        ("<", True, "pcap-le-nsec"),
        (">", True, "pcap-be-nsec"),
    ],
)
def test_pcap_byte_orders_and_resolutions(
    tmp_path: Path, both_paths: bool, order: str, nsec: bool, fmt: str
) -> None:
    p = tmp_path / "x.cap"
    p.write_bytes(pcap_bytes(order, nsec, linktype=113))
    stats, rows = read_all(p)
    assert stats.format == fmt
    assert stats.packets == 3 and not stats.truncated and stats.warnings == []
    assert [r["data"] for r in rows] == FRAMES
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert {r["linktype"] for r in rows} == {113}
    unit = 1 if nsec else 1000
    assert [r["ts_ns"] for r in rows] == [
        (1_700_000_000 + i) * 10**9 + (1000 * i + 5) * unit for i in range(3)
    ]
    data = p.read_bytes()
    assert stats.size == len(data)
    assert stats.sha256 == hashlib.sha256(data).hexdigest()


def test_dpkt_writer_pcap_and_small_batches(tmp_path: Path) -> None:
    import dpkt

    p = tmp_path / "w.pcap"
    with p.open("wb") as fh:
        w = dpkt.pcap.Writer(fh, nano=True)
        for i in range(10):
            w.writepkt(bytes([i]) * 70, ts=1_600_000_000 + i / 4)
    with Capture(p, batch_packets=4) as cap:
        sizes = [raw.n for raw in cap.batches()]
    assert sizes == [4, 4, 2]
    stats, rows = read_all(p)
    assert [r["ts_ns"] for r in rows] == [
        1_600_000_000 * 10**9 + i * 250_000_000 for i in range(10)
    ]


def test_header_only_capture_is_empty_not_an_error(tmp_path: Path, both_paths: bool) -> None:
    p = tmp_path / "empty.pcap"
    p.write_bytes(pcap_bytes(records=[]))
    stats, rows = read_all(p)
    assert rows == [] and stats.packets == 0 and not stats.truncated
    assert stats.format == "pcap-le-usec"


def test_chunk_boundaries_and_oversized_carry(
    both_paths: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny chunks and headroom: every record straddles chunks and takes the copy path."""
    frames = [bytes([i % 256]) * (40 + 13 * i) for i in range(40)]
    recs = [(1_000 + i, i, f, len(f)) for i, f in enumerate(frames)]
    p = tmp_path / "c.pcap"
    p.write_bytes(pcap_bytes(records=recs))
    monkeypatch.setattr(reader, "CHUNK_BYTES", 97)
    monkeypatch.setattr(reader, "HEADROOM_BYTES", 50)
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == frames
    assert stats.packets == 40 and not stats.truncated
    assert stats.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def many_records(tmp_path: Path, count: int = 3000) -> tuple[Path, list[bytes]]:
    frames = [bytes([i % 251]) * (60 + i % 1400) for i in range(count)]
    p = tmp_path / "many.pcap"
    p.write_bytes(pcap_bytes(records=[(i, 0, f, len(f)) for i, f in enumerate(frames)]))
    return p, frames


# ------------------------------------------------------------------------ pcapng


def block(order: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def idb(
    order: str, linktype: int, tsresol: int | None = None, tsoffset: int = 0, snaplen: int = 0
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += opt(order, 9, bytes([tsresol]))
    if tsoffset:
        opts += opt(order, 14, struct.pack(order + "q", tsoffset))
    if opts:
        opts += opt(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def epb(order: str, iface: int, ts: int, data: bytes, wirelen: int | None = None) -> bytes:
    wl = len(data) if wirelen is None else wirelen
    return block(
        order,
        6,
        struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wl) + data,
    )


def test_pcapng_sections_interfaces_resolutions(tmp_path: Path, both_paths: bool) -> None:
    le, be = "<", ">"
    raw = (
        shb(le)
        + idb(le, 1)  # default resolution: microseconds
        + idb(le, 113, tsresol=9)  # nanoseconds
        + block(le, 4, b"\x01\x00\x04\x00\x0a\x00\x00\x01host\x00\x00\x00\x00")  # NRB: skipped
        + epb(le, 0, 1_700_000_000_123_456, FRAMES[0])
        + epb(le, 1, 1_700_000_000_000_000_007, FRAMES[1])
        + block(le, 0x00000BAD, b"custom block")  # custom: skipped
        + shb(be)  # second section, other byte order: interface ids start again at 0
        + idb(be, 101, tsresol=0x80 | 10, tsoffset=100)  # 2^-10 s, +100 s
        + epb(be, 0, 1_700_000_000 * 1024 + 512, FRAMES[2])
        + block(be, 5, struct.pack(">III", 0, 0, 0))  # ISB: skipped
    )
    p = tmp_path / "multi.pcapng"
    p.write_bytes(raw)
    stats, rows = read_all(p)
    assert stats.format == "pcapng"
    assert [r["data"] for r in rows] == FRAMES
    assert [r["linktype"] for r in rows] == [1, 113, 101]
    assert [r["ts_ns"] for r in rows] == [
        1_700_000_000_123_456_000,
        1_700_000_000_000_000_007,
        (1_700_000_000 + 100) * 10**9 + 500_000_000,
    ]
    assert stats.packets == 3 and not stats.truncated and stats.skipped == {}


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path) -> None:
    o = "<"
    spb = block(o, 3, struct.pack(o + "I", 100) + FRAMES[1])  # wirelen 100, captured 67
    pb = block(
        o,
        2,
        struct.pack(o + "HHIIII", 0, 0, 0, 2_000_000, len(FRAMES[2]), len(FRAMES[2])) + FRAMES[2],
    )
    p = tmp_path / "spb.pcapng"
    # the SPB length comes from min(original length, snaplen): 67 here
    p.write_bytes(shb(o) + idb(o, 1, snaplen=67) + epb(o, 0, 1_000_000, FRAMES[0]) + spb + pb)
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == FRAMES
    assert [r["wirelen"] for r in rows] == [60, 100, 74]
    # an SPB has no timestamp: it takes the previous packet's
    assert [r["ts_ns"] for r in rows] == [10**9, 10**9, 2 * 10**9]


def test_pcapng_dpkt_writer(tmp_path: Path) -> None:
    import dpkt

    p = tmp_path / "d.pcapng"
    with p.open("wb") as fh:
        w = dpkt.pcapng.Writer(fh)
        for i, f in enumerate(FRAMES):
            w.writepkt(f, ts=1_650_000_000 + i)
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == FRAMES
    assert [r["ts_ns"] for r in rows] == [(1_650_000_000 + i) * 10**9 for i in range(3)]


def test_pcapng_bad_block_length_stops_with_warning(tmp_path: Path, both_paths: bool) -> None:
    o = "<"
    good = shb(o) + idb(o, 1) + epb(o, 0, 5, FRAMES[0])
    bad = bytearray(epb(o, 0, 6, FRAMES[1]))
    struct.pack_into(o + "I", bad, 4, len(bad) + 2)  # not a multiple of 4
    p = tmp_path / "bad.pcapng"
    p.write_bytes(good + bytes(bad) + epb(o, 0, 7, FRAMES[2]))
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == FRAMES[:1]
    assert stats.truncated and stats.skipped == {"corrupt_record": 1}
    assert stats.warnings == [
        f"{p}: corrupt record at byte {len(good)} (block length {len(bad) + 2} is not a "
        "multiple of 4); reading stopped there, results cover the first 1 records"
    ]
    assert stats.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_pcapng_trailing_length_mismatch(tmp_path: Path) -> None:
    o = "<"
    good = shb(o) + idb(o, 1)
    bad = bytearray(epb(o, 0, 6, FRAMES[1]))
    struct.pack_into(o + "I", bad, len(bad) - 4, 4)
    p = tmp_path / "trail.pcapng"
    p.write_bytes(good + bytes(bad))
    stats, rows = read_all(p)
    assert rows == [] and stats.truncated and stats.skipped["corrupt_record"] == 1
    assert (
        f"corrupt record at byte {len(good)} (block length {len(bad)} does not match "
        "the trailing length 4)" in stats.warnings[0]
    )


# -------------------------------------------------------------- gzip, stdin, names


def test_gzip_wrapping_pcap_and_pcapng(tmp_path: Path) -> None:
    for name, data, fmt in (
        ("a.pcap.gz", pcap_bytes(">", True), "gzip+pcap-be-nsec"),
        ("b.bin", gzip.compress(shb("<") + idb("<", 1) + epb("<", 0, 1, FRAMES[0])), "gzip+pcapng"),
    ):
        p = tmp_path / name
        p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        stats, rows = read_all(p)
        assert stats.format == fmt
        assert rows[0]["data"] == FRAMES[0]
        assert stats.size == p.stat().st_size
        assert stats.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_damaged_gzip_keeps_what_decompressed(tmp_path: Path) -> None:
    big = pcap_bytes(records=[(1, 0, bytes([i % 256]) * 1000, 1000) for i in range(300)])
    comp = gzip.compress(big, compresslevel=1)
    p = tmp_path / "cut.pcap.gz"
    p.write_bytes(comp[: len(comp) // 2])
    stats, rows = read_all(p)
    assert stats.truncated and 0 < len(rows) < 300
    assert all(r["data"] == bytes([r["index"] % 256]) * 1000 for r in rows)
    assert any("gzip stream damaged" in w for w in stats.warnings)


class _FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress(pcap_bytes())
    monkeypatch.setattr(sys, "stdin", _FakeStdin(data))
    stats, rows = read_all("-")
    assert stats.name == "<stdin>" and stats.format == "gzip+pcap-le-usec"
    assert [r["data"] for r in rows] == FRAMES
    assert stats.size == len(data) and stats.sha256 == hashlib.sha256(data).hexdigest()


def test_not_a_capture_and_missing_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, this is text\n")
    empty = tmp_path / "zero.pcap"
    empty.write_bytes(b"")
    for p in (notes, empty):
        with pytest.raises(CaptureError) as exc:
            Capture(p).__enter__()
        assert str(exc.value) == (
            f"{p}: not a capture file (no pcap or pcapng magic at offset 0); "
            "pcapclass reads pcap, pcapng and their .gz"
        )
    with pytest.raises(CaptureError) as exc:
        with Capture("x.pcap"):
            pass
    assert str(exc.value) == "x.pcap: no such file"
    gz = tmp_path / "t.gz"
    gz.write_bytes(gzip.compress(b"plain text inside"))
    with pytest.raises(CaptureError, match="not a capture file"):
        Capture(gz).__enter__()


def test_pcap_header_cut_short_is_an_error(tmp_path: Path, both_paths: bool) -> None:
    p = tmp_path / "h.pcap"
    p.write_bytes(pcap_bytes()[:10])
    with pytest.raises(CaptureError) as exc:
        read_all(p)
    assert str(exc.value) == (
        f"{p}: pcap file header cut short (10 of 24 bytes); the file is not a usable capture"
    )


# ------------------------------------------------------------------------- damage


def test_cut_short_file_keeps_complete_records(tmp_path: Path, both_paths: bool) -> None:
    data = pcap_bytes()
    third = 24 + (16 + len(FRAMES[0])) + (16 + len(FRAMES[1]))
    p = tmp_path / "cut.pcap"
    p.write_bytes(data[: third + 20])
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == FRAMES[:2]
    assert stats.truncated and stats.packets == 2
    assert stats.warnings == [
        f"{p}: capture cut short at byte {third} (record 2 incomplete); "
        "results cover the first 2 records"
    ]


def test_corrupt_caplen_stops_reading(tmp_path: Path, both_paths: bool) -> None:
    recs = [(1, 0, FRAMES[0], 60), (2, 0, b"", 0), (3, 0, FRAMES[2], 74)]
    data = bytearray(pcap_bytes(records=recs))
    at = 24 + 16 + 60
    struct.pack_into("<I", data, at + 8, 300_000)
    p = tmp_path / "corrupt.pcap"
    p.write_bytes(bytes(data))
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == FRAMES[:1]
    assert stats.truncated and stats.skipped == {"corrupt_record": 1}
    assert stats.packets == 2
    assert stats.warnings == [
        f"{p}: corrupt record at byte {at} (caplen 300000 exceeds 262144); reading stopped "
        "there, results cover the first 1 records"
    ]


def test_caplen_above_wirelen_skips_that_record_only(tmp_path: Path) -> None:
    recs = [(1, 0, FRAMES[0], 60), (2, 0, FRAMES[1], 10), (3, 0, FRAMES[2], 74)]
    p = tmp_path / "cw.pcap"
    p.write_bytes(pcap_bytes(records=recs))
    stats, rows = read_all(p)
    assert [r["data"] for r in rows] == [FRAMES[0], FRAMES[2]]
    assert [r["index"] for r in rows] == [0, 2]
    assert stats.packets == 3 and stats.skipped == {"caplen_gt_wirelen": 1}
    assert not stats.truncated


# --------------------------------------------------------------- public captures


@pytest.mark.parametrize("cap", public_params())
def test_public_capture_counts_match_tshark(cap, both_paths: bool) -> None:  # noqa: ANN001
    """Every public capture, through each reading path, gives tshark's packet count."""
    stats, rows = read_all(cap.path)
    assert stats.packets == cap.packets  # tshark's count (cut-short: records before the cut)
    assert len(rows) == cap.packets - sum(stats.skipped.values())
    assert stats.truncated == (not cap.intact)
    data = cap.path.read_bytes()
    assert stats.size == len(data)
    assert stats.sha256 == hashlib.sha256(data).hexdigest()
    ts = np.array([r["ts_ns"] for r in rows])
    assert (ts > 0).all()


def test_public_cut_short_warning() -> None:
    p = reader_public("suricata-verify/http-mime-truncated__input.pcap")
    stats, rows = read_all(p)
    assert stats.warnings == [
        f"{p}: capture cut short at byte 2715459 (record 2696 incomplete); "
        "results cover the first 2696 records"
    ]


def reader_public(rel: str) -> Path:
    from conftest import PUBLIC

    p = PUBLIC / rel
    if not p.exists():
        pytest.skip(f"{p} not present")
    return p
