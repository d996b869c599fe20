"""flowtext: address, MAC and byte columns built by kernels, against Python's own
formatting (ipaddress, bytes.hex) as the reference."""

from __future__ import annotations

import ipaddress
import random

import numpy as np
import pytest

from analyzer import flowtext as ft

MASK64 = (1 << 64) - 1
MAPPED = 0xFFFF << 32  # ::ffff:0:0/96, how the decoder keeps an IPv4 address


def split(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    hi = np.array([v >> 64 for v in values], dtype=np.uint64)
    lo = np.array([v & MASK64 for v in values], dtype=np.uint64)
    return hi, lo


def reference(v: int) -> str:
    if v >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(v & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(v))


EDGES = [
    0, 1, (1 << 128) - 1, MAPPED, MAPPED | 0xFFFFFFFF, MAPPED | 0x0A000001,
    1 << 112, 0x20010DB8 << 96, 0x0001_0000_0000_0002_0000_0000_0003_0004,
    0x0000_0000_0001_0000_0000_0000_0000_0000, 0xFE80 << 112 | 1, 0xFF02 << 112 | 0xFB,
    0x0102_0304 , 0x0001_0000_0001_0000_0001_0000_0001_0000,
]  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_address_text_is_what_ipaddress_writes(seed: int) -> None:
    rng = random.Random(seed)
    values = list(EDGES)
    for _ in range(3000):
        if rng.random() < 0.4:
            values.append(MAPPED | rng.getrandbits(32))
        else:
            v = 0
            for _ in range(8):  # many zero groups, so runs of every length and place occur
                v = (v << 16) | rng.choice([0, 0, 0, rng.getrandbits(16), rng.getrandbits(4)])
            values.append(v)
    hi, lo = split(values)
    assert ft.address_text(hi, lo).to_pylist() == [reference(v) for v in values]


def test_unique_addresses_codes_give_back_every_row() -> None:
    values = [MAPPED | 5, 1, MAPPED | 5, 7 << 64, 1, 0]
    hi, lo = split(values)
    uhi, ulo, codes = ft.unique_addresses(hi, lo)
    assert [(int(h) << 64) | int(low) for h, low in zip(uhi, ulo, strict=True)] == sorted(
        set(values)
    )
    assert [(int(uhi[c]) << 64) | int(ulo[c]) for c in codes] == values


def test_group_and_unicast_follow_the_table_rule() -> None:
    cases = {
        "192.168.1.255": (True, False),
        "224.0.0.251": (True, False),
        "239.255.255.250": (True, False),
        "255.255.255.255": (True, False),
        "0.0.0.0": (False, False),
        "10.0.0.1": (False, True),
        "ff02::fb": (True, False),
        "::": (False, False),
        "fe80::1": (False, True),
        "ff::1": (False, True),
    }
    values = []
    for text in cases:
        ip = ipaddress.ip_address(text)
        values.append(MAPPED | int(ip) if ip.version == 4 else int(ip))
    hi, lo = split(values)
    got = list(zip(ft.is_group(hi, lo).tolist(), ft.is_unicast(hi, lo).tolist(), strict=True))
    assert got == list(cases.values())


def test_mac_text_is_colon_separated_hex() -> None:
    rng = random.Random(3)
    macs = [0, (1 << 48) - 1] + [rng.getrandbits(48) for _ in range(500)]
    got = ft.mac_text(np.array(macs, dtype=np.uint64)).to_pylist()
    assert got == [m.to_bytes(6, "big").hex(":") for m in macs]


def test_gathered_bytes_and_nulls() -> None:
    var = np.frombuffer(b"SAhellohi", dtype=np.uint8)
    off = np.array([0, 2, 7, 9])
    lens = np.array([2, 5, 2, -1])
    offsets, data = ft.gathered(var, off, lens)
    got = ft.binary_array(offsets, data, lens >= 0).to_pylist()
    assert got == [b"SA", b"hello", b"hi", None]


def test_gathered_refuses_bytes_outside_the_buffer() -> None:
    var = np.zeros(4, dtype=np.uint8)
    with pytest.raises(ValueError, match="outside the connection table's byte buffer"):
        ft.gathered(var, np.array([2]), np.array([3]))


def test_str_series_is_what_pandas_infers() -> None:
    import pandas as pd
    import pyarrow as pa

    values = ["a", None, "b"]
    inferred = pd.Series(np.array(values, dtype=object))
    built = ft.str_series(pa.array(values))
    assert built.dtype == inferred.dtype and built.equals(inferred)
    nothing = pd.Series(np.array([None, None], dtype=object))
    built = ft.str_series(pa.array([None, None], pa.string()))
    assert built.dtype == nothing.dtype and built.tolist() == [None, None]
