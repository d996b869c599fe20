"""Reader on hostile pcapng: absurd if_tsresol/if_tsoffset, damaged IDB options, SPBs
without a timestamp near them, interfaces that do not exist."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_reader import FRAMES, block, epb, idb, opt, read_all, shb

from analyzer.walk import MAX_TS_S

LE = "<"


@pytest.mark.parametrize("tsresol", [20, 0x80 | 64, 0x80 | 127, 127, 0x80 | 70])
def test_absurd_tsresol_never_raises(tmp_path: Path, tsresol: int) -> None:
    p = tmp_path / "r.pcapng"
    p.write_bytes(shb(LE) + idb(LE, 1, tsresol=tsresol) + epb(LE, 0, 2**64 - 1, FRAMES[0]))
    stats, rows = read_all(p)
    assert len(rows) == 1 and 0 <= rows[0]["ts_ns"] < MAX_TS_S * 10**9


@pytest.mark.parametrize("offset", [9 * 10**9, 2**63 - 1, -(2**63), 9_300_000_000])
def test_huge_tsoffset_is_clamped_with_a_warning(tmp_path: Path, offset: int) -> None:
    p = tmp_path / "o.pcapng"
    p.write_bytes(
        shb(LE) + idb(LE, 1, tsoffset=offset) + epb(LE, 0, 1_700_000_000 * 10**6, FRAMES[0])
    )
    stats, rows = read_all(p)
    ts = rows[0]["ts_ns"]
    assert ts in (0, (MAX_TS_S - 1) * 10**9 + 0)  # 1970 or 2262, never 1724
    assert stats.events["ts_clamped"] == 1
    assert any("were clamped" in w for w in stats.warnings)


def test_idb_option_running_past_its_block(tmp_path: Path) -> None:
    body = struct.pack(LE + "HHI", 1, 0, 0) + struct.pack(LE + "HH", 9, 200) + b"\x09\x00\x00\x00"
    p = tmp_path / "i.pcapng"
    p.write_bytes(shb(LE) + block(LE, 1, body) + epb(LE, 0, 5_000_000, FRAMES[0]))
    stats, rows = read_all(p)
    assert rows[0]["ts_ns"] == 5 * 10**9  # options ignored: default microseconds
    assert stats.events["idb_bad_options"] == 1


def test_spb_first_takes_the_next_timestamp_and_spb_only_is_dated_0(tmp_path: Path) -> None:
    spb = block(LE, 3, struct.pack(LE + "I", len(FRAMES[1])) + FRAMES[1])
    p = tmp_path / "s.pcapng"
    p.write_bytes(shb(LE) + idb(LE, 1) + spb + epb(LE, 0, 7_000_000, FRAMES[0]))
    stats, rows = read_all(p)
    assert [r["ts_ns"] for r in rows] == [7 * 10**9, 7 * 10**9]
    assert stats.warnings == []  # no false "beyond 2262" warning
    p.write_bytes(shb(LE) + idb(LE, 1) + spb + spb)
    stats, rows = read_all(p)
    assert [r["ts_ns"] for r in rows] == [0, 0] and stats.events["spb_untimed"] == 2


def test_bad_interface_and_caplen_counted_by_reason(tmp_path: Path) -> None:
    p = tmp_path / "b.pcapng"
    p.write_bytes(
        shb(LE) + idb(LE, 1) + epb(LE, 7, 1, FRAMES[0]) + epb(LE, 0, 1, FRAMES[1], wirelen=10)
        + opt(LE, 0, b"") * 0 + epb(LE, 0, 1, FRAMES[2])
    )  # fmt: skip
    stats, rows = read_all(p)
    assert len(rows) == 1 and stats.packets == 3
    assert stats.skipped == {"bad_interface": 1, "caplen_gt_wirelen": 1}


def test_zero_records_are_fast_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "z.pcap"
    p.write_bytes(struct.pack(LE + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0, 1) + bytes(16 * 200_000))
    stats, rows = read_all(p)
    assert rows == [] and stats.packets == 200_000 and stats.skipped == {"zero_caplen": 200_000}
