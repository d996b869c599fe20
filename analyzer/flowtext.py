"""The text columns of the flows and hosts tables, from the connection table's numbers:
addresses, MAC addresses, uids, TCP history and payload heads.

Each is built as an Arrow array by a kernel that writes the bytes of every distinct
value once (`unique_addresses`, `unique_macs`) or gathers them from the table's byte
buffer (`gathered`), then given to pandas as its `str` columns (`str_series`) without a
Python object per row.

Address text (`address_text`):

- an IPv4 address (kept as the IPv4-mapped IPv6 address ::ffff:a.b.c.d, as the decoder
  stores it) is written as a dotted quad;
- any other IPv6 address in RFC 5952 form: lower-case hexadecimal groups without leading
  zeros, the longest run of two or more zero groups (the first of equally long runs)
  written as "::" (what Python 3.11's `ipaddress` writes, too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from analyzer.kernel import inline_kernel, kernel, readonly

# pandas' default string dtype (pandas 3: Arrow storage, NaN as the missing value): what
# a frame infers for a column of Python strings, so columns built here are the same.
STR = pd.StringDtype("pyarrow", na_value=np.nan)

ADDRESS_TEXT_MAX = 39  # 8 groups of 4 hex digits and 7 colons
MAC_TEXT = 17  # aa:bb:cc:dd:ee:ff
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def str_series(values: pa.Array) -> pd.Series:
    """A pandas `str` Series over an Arrow string array (no copy of the text), the
    Series pandas would infer from the same values as Python strings: an array of
    nulls only is an object Series of None."""
    if len(values) and values.null_count == len(values):
        return pd.Series(np.full(len(values), None, dtype=object), dtype=object)
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(values, dtype=STR))


def text_array(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow large_string array from int64 offsets (n + 1) and the bytes they index;
    `valid` False = null."""
    return _from_buffers(pa.large_string(), offsets, data, valid)


def binary_array(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray | None = None
) -> pa.Array:
    """As text_array, for bytes (large_binary)."""
    return _from_buffers(pa.large_binary(), offsets, data, valid)


def _from_buffers(
    kind: pa.DataType, offsets: np.ndarray, data: np.ndarray, valid: np.ndarray | None
) -> pa.Array:
    n = offsets.size - 1
    bitmap = None
    nulls = 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = int(n - np.count_nonzero(valid))
    buffers = [bitmap, pa.py_buffer(np.ascontiguousarray(offsets, dtype=np.int64)),
               pa.py_buffer(np.ascontiguousarray(data, dtype=np.uint8))]  # fmt: skip
    return pa.Array.from_buffers(kind, n, buffers, null_count=nulls)


# --- addresses ----------------------------------------------------------------------------


def unique_addresses(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct hi, distinct lo, code of every input row into them), distinct values in
    (hi, lo) order."""
    order = np.lexsort((lo, hi))
    hs, ls = hi[order], lo[order]
    new = np.empty(order.size, dtype=bool)
    new[:1] = True
    new[1:] = (hs[1:] != hs[:-1]) | (ls[1:] != ls[:-1])
    codes = np.empty(order.size, dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return hs[new], ls[new], codes


def address_text(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """The text of each address (module docstring), as an Arrow string array."""
    offsets = np.zeros(hi.size + 1, dtype=np.int64)
    data = np.zeros(hi.size * ADDRESS_TEXT_MAX, dtype=np.uint8)
    used = _address_bytes(hi.astype(np.uint64), lo.astype(np.uint64), offsets, data)
    return text_array(offsets, data[:used])


@kernel
def _address_bytes(hi: np.ndarray, lo: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> int:
    """Write each address's text after the previous one; offsets[r + 1] = its end."""
    at = 0
    groups = np.zeros(8, dtype=np.int64)
    for r in range(hi.size):
        h, low = hi[r], lo[r]
        if h == 0 and (low >> np.uint64(32)) == np.uint64(0xFFFF):
            for k in range(4):
                octet = np.int64((low >> np.uint64(24 - 8 * k)) & np.uint64(0xFF))
                if k:
                    data[at] = 46  # "."
                    at += 1
                at = _decimal(octet, data, at)
        else:
            for j in range(4):
                groups[j] = np.int64((h >> np.uint64(48 - 16 * j)) & np.uint64(0xFFFF))
                groups[4 + j] = np.int64((low >> np.uint64(48 - 16 * j)) & np.uint64(0xFFFF))
            start, length = _longest_zero_run(groups)
            if length < 2:
                start, length = -1, 0
            j = 0
            while j < 8:
                if j == start:
                    data[at] = 58  # ":"
                    data[at + 1] = 58
                    at += 2
                    j += length
                    continue
                if j > 0 and j != start + length:
                    data[at] = 58
                    at += 1
                at = _hex_group(groups[j], data, at)
                j += 1
        offsets[r + 1] = at
    return at


@inline_kernel
def _longest_zero_run(groups: np.ndarray) -> tuple[int, int]:
    """(start, length) of the first longest run of zero groups (length 0: none)."""
    best_start, best_len = -1, 0
    run_start, run_len = -1, 0
    for j in range(groups.size):
        if groups[j] == 0:
            if run_len == 0:
                run_start = j
            run_len += 1
            if run_len > best_len:
                best_start, best_len = run_start, run_len
        else:
            run_len = 0
    return best_start, best_len


@inline_kernel
def _decimal(value: np.int64, data: np.ndarray, at: int) -> int:
    """0..255 in decimal without leading zeros."""
    if value >= 100:
        data[at] = 48 + value // 100
        at += 1
    if value >= 10:
        data[at] = 48 + (value // 10) % 10
        at += 1
    data[at] = 48 + value % 10
    return at + 1


@inline_kernel
def _hex_group(value: np.int64, data: np.ndarray, at: int) -> int:
    """0..0xffff in lower-case hexadecimal without leading zeros."""
    started = False
    for shift in (12, 8, 4, 0):
        digit = (value >> shift) & 0xF
        if digit or started or shift == 0:
            data[at] = _HEX[digit]
            at += 1
            started = True
    return at


def is_group(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Broadcast or multicast, the connection table's rule (conntable.is_bcast): IPv4
    x.x.x.255 (a directed broadcast, taking prefixes of /24 or shorter) and 224.0.0.0/4,
    IPv6 ff00::/8."""
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    low8 = lo & np.uint64(0xFF)
    top4 = (lo >> np.uint64(28)) & np.uint64(0xF)
    return (v4 & ((low8 == 0xFF) | (top4 == 0xE))) | (~v4 & ((hi >> np.uint64(56)) == 0xFF))


def is_unicast(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Neither broadcast nor multicast (is_group) nor unspecified (0.0.0.0, ::)."""
    v4_zero = (hi == 0) & (lo == np.uint64(0xFFFF_0000_0000))
    v6_zero = (hi == 0) & (lo == 0)
    return ~(is_group(hi, lo) | v4_zero | v6_zero)


# --- MAC addresses ------------------------------------------------------------------------


def mac_text(macs: np.ndarray) -> pa.Array:
    """aa:bb:cc:dd:ee:ff for each 48-bit value (the low 6 bytes, big-endian)."""
    data = np.zeros(macs.size * MAC_TEXT, dtype=np.uint8)
    _mac_bytes(macs.astype(np.uint64), data)
    return text_array(np.arange(macs.size + 1, dtype=np.int64) * MAC_TEXT, data)


@kernel
def _mac_bytes(macs: np.ndarray, data: np.ndarray) -> None:
    for r in range(macs.size):
        at = r * 17
        for k in range(6):
            byte = np.int64((macs[r] >> np.uint64(40 - 8 * k)) & np.uint64(0xFF))
            if k:
                data[at] = 58  # ":"
                at += 1
            data[at] = _HEX[byte >> 4]
            data[at + 1] = _HEX[byte & 0xF]
            at += 2


# --- bytes from the table's buffer -------------------------------------------------------


def gathered(var: np.ndarray, off: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data): the bytes var[off[r]: off[r] + lens[r]] of every row, one after
    another (a negative length counts as 0). Raises ValueError if a row's bytes are
    not inside `var`."""
    take = np.maximum(lens.astype(np.int64), 0)
    offsets = np.zeros(off.size + 1, dtype=np.int64)
    np.cumsum(take, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    if not _gather(readonly(var), off.astype(np.int64), take, offsets, data):
        raise ValueError("a row's bytes lie outside the connection table's byte buffer")
    return offsets, data


@kernel
def _gather(
    var: np.ndarray, off: np.ndarray, take: np.ndarray, offsets: np.ndarray, data: np.ndarray
) -> bool:
    for r in range(off.size):
        o, n, at = off[r], take[r], offsets[r]
        if o < 0 or o + n > var.size:
            return False
        for j in range(n):
            data[at + j] = var[o + j]
    return True
