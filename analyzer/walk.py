"""The record walk: the compiled loops that find the packet records of a classic pcap or
pcapng byte range and write each kept record's fields into output columns.

    status, pos, n = walk_pcap(buf, pos, end, big, frac_ns, linktype, st, cnt, out..., frames...)
    status, pos, n = walk_pcapng(buf, pos, end, look_end, st, cnt, ifc, out..., frames...)

Both work on any uint8 array: the memory-mapped file or a chunk of a gzip/stdin stream.
They stop when the output columns are full (WALK_FULL: call again from `pos`), when the
record at `pos` is not complete before `end` (WALK_MORE: give more bytes, starting at
`pos`), or at damage that cannot be resynchronised (WALK_CORRUPT: `st[ST_BAD_*]` say
what). Every length is checked against `end` before a byte is read: no read ever leaves
``buf[:end]`` (the SPB look-ahead reads up to `look_end`, with the same checks).

State lives in small int64 arrays with named slots, so one walk resumes where the last
one stopped: `st` (ST_*: record counter, pcapng section state, what the damage was),
`cnt` (CNT_*: records skipped by reason and other events), `ifc` (the current section's
interfaces, one row each, IF_* columns; at most MAX_INTERFACES, further IDBs counted).
`frames...` are a health.FrameCounters' arrays (hc, ring_hash, ring_ts): the walk counts
each kept record's order, gaps, snaplen cut and duplicates (count_frame) while the
record is in the cache, instead of a second pass over the batch.

Records skipped alone (framing intact, content impossible; counted in `cnt`): caplen
above wirelen, caplen 0 (nothing to decode), pcapng caplen beyond its block, a packet for
an interface its section never described (or one past MAX_INTERFACES).
"""

from __future__ import annotations

import numpy as np

from .kernel import inline_kernel, kernel

# Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: larger pcap records are treated as corrupt.
PCAP_MAX_CAPLEN = 262_144
# pcapclass's own bound on one pcapng block (Wireshark allows up to a few MiB for
# packet blocks with options; 16 MiB leaves room for large NRB/custom blocks).
PCAPNG_MAX_BLOCK = 16 * 2**20
# Interfaces per pcapng section (Wireshark sets no limit; real captures have a handful,
# dumpcap on every interface of a large host a few hundred). The per-interface state is
# a fixed array of this many rows, so a file of millions of IDBs costs no memory.
MAX_INTERFACES = 4096
MAX_TS_S = (2**63 - 1) // 10**9  # int64 nanoseconds end in April 2262

# --- classic pcap record header (16 bytes), offsets from the record start
PCAP_TS_SEC = 0
PCAP_TS_FRAC = 4
PCAP_CAPLEN = 8
PCAP_WIRELEN = 12
PCAP_REC_LEN = 16

# --- pcapng: every block starts with type and total length, and repeats the length last
BLK_TYPE = 0
BLK_LEN = 4
BLK_BODY = 8
BLK_MIN_LEN = 12
BT_SHB = 0x0A0D0D0A
BT_IDB = 1
BT_PB = 2  # obsolete Packet Block
BT_SPB = 3
BT_EPB = 6
# Section Header Block
SHB_BOM = 8  # byte-order magic 0x1A2B3C4D
# Interface Description Block
IDB_LINKTYPE = 8  # u16
IDB_SNAPLEN = 12  # u32
IDB_OPTIONS = 16
IDB_MIN_LEN = 20
OPT_END = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14
OPT_HDR_LEN = 4  # code u16, length u16; the value is padded to 4 bytes
DEFAULT_TSRESOL = 6  # pcapng default: microseconds
# Enhanced Packet Block; the obsolete Packet Block has the same layout with a u16
# interface id (and a u16 drop count after it)
EPB_INTERFACE = 8
EPB_TS_HIGH = 12
EPB_TS_LOW = 16
EPB_CAPLEN = 20
EPB_WIRELEN = 24
EPB_DATA = 28
EPB_MIN_LEN = 32
# Simple Packet Block: original length, then the data (no interface id, no timestamp)
SPB_WIRELEN = 8
SPB_DATA = 12
SPB_MIN_LEN = 16

# --- walk results
WALK_FULL = 0
WALK_MORE = 1
WALK_CORRUPT = 2

# --- st: walk state, int64 slots
ST_RECORD = 0  # packet records walked so far (kept and skipped)
ST_BIG = 1  # pcapng: current section is big-endian
ST_SECTIONS = 2  # pcapng: section headers read
ST_NIF = 3  # pcapng: interfaces of the current section (at most MAX_INTERFACES)
ST_LAST_TS = 4  # pcapng: last timestamp in this section, -1 before any
ST_AHEAD_UNTIL = 5  # SPB look-ahead: scanned up to here (-1: not yet in this call)
ST_AHEAD_TS = 6  # SPB look-ahead: the timestamp found there, -1 none
ST_BAD_WHAT = 7  # BAD_* code of the damage that stopped the walk
ST_BAD_VALUE = 8  # the offending length
ST_BAD_VALUE2 = 9  # the trailing length it did not match
ST_SLOTS = 10

# --- st[ST_BAD_WHAT]
BAD_PCAP_CAPLEN = 1
BAD_BLOCK_ALIGN = 2
BAD_BLOCK_SHORT = 3
BAD_BLOCK_BIG = 4
BAD_BLOCK_TRAIL = 5
BAD_BOM = 6
BAD_SHORT_EPB = 7
BAD_SHORT_PB = 8
BAD_SHORT_SPB = 9
BAD_SHORT_IDB = 10

# --- cnt: event counters, int64 slots; the first ones are skip reasons
CNT_CAPLEN_GT_WIRELEN = 0
CNT_ZERO_CAPLEN = 1
CNT_BAD_CAPLEN = 2
CNT_BAD_INTERFACE = 3
CNT_TS_CLAMPED = 4  # timestamps moved into 1970..2262
CNT_IDB_OVER_CAP = 5  # IDBs beyond MAX_INTERFACES in one section (ignored)
CNT_IDB_BAD_OPTIONS = 6  # IDBs whose options run past the block (options ignored)
CNT_SPB_UNTIMED = 7  # SPBs with no timestamp before or shortly after them: ts 0
CNT_TS_COARSE_FINE = 8  # packets of interfaces whose if_tsresol cannot reach 1971
CNT_SLOTS = 9
SKIP_REASONS = {  # skip counters -> the reason key in CaptureStats.skipped
    CNT_CAPLEN_GT_WIRELEN: "caplen_gt_wirelen",
    CNT_ZERO_CAPLEN: "zero_caplen",
    CNT_BAD_CAPLEN: "bad_caplen",
    CNT_BAD_INTERFACE: "bad_interface",
}

# --- ifc: one row per interface of the current section
IF_LINKTYPE = 0
IF_SNAPLEN = 1
IF_TSRESOL = 2  # the if_tsresol byte: bit 7 set = 2^-n s, else 10^-n s
IF_TSOFFSET = 3  # if_tsoffset, seconds
IF_COLS = 4

# Nanosecond multipliers: POW10[k] = 10**k, k <= 19 (10**19 is the largest in uint64)
POW10 = np.array([10**k for k in range(20)], dtype=np.uint64)
NS_PER_S = 1_000_000_000
U64_32 = np.uint64(32)


def new_state() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh (st, cnt, ifc) arrays for one capture."""
    st = np.zeros(ST_SLOTS, dtype=np.int64)
    st[ST_LAST_TS] = -1
    st[ST_AHEAD_UNTIL] = -1
    st[ST_AHEAD_TS] = -1
    return st, np.zeros(CNT_SLOTS, dtype=np.int64), np.zeros((MAX_INTERFACES, IF_COLS), np.int64)


# --------------------------------------------------------------------------- byte reads


@inline_kernel
def _u16(buf: np.ndarray, p: int, big: bool) -> int:
    a, b = int(buf[p]), int(buf[p + 1])
    return (a << 8) | b if big else (b << 8) | a


@inline_kernel
def _u32(buf: np.ndarray, p: int, big: bool) -> int:
    a, b = int(buf[p]), int(buf[p + 1])
    c, d = int(buf[p + 2]), int(buf[p + 3])
    if big:
        return (a << 24) | (b << 16) | (c << 8) | d
    return (d << 24) | (c << 16) | (b << 8) | a


@inline_kernel
def _i64(buf: np.ndarray, p: int, big: bool) -> int:
    """A signed 64-bit integer (if_tsoffset)."""
    if big:
        hi, lo = _u32(buf, p, big), _u32(buf, p + 4, big)
    else:
        lo, hi = _u32(buf, p, big), _u32(buf, p + 4, big)
    if hi >= 2**31:
        hi -= 2**32
    return hi * 2**32 + lo


# ---------------------------------------------------------------------- timestamps


@inline_kernel
def scale_ts(hi: int, lo: int, tsresol: int, offset_s: int) -> tuple[int, bool]:
    """A pcapng timestamp (two u32 words, in units of if_tsresol, plus if_tsoffset
    seconds) as int64 nanoseconds since 1970, and whether it had to be clamped into
    [1970-01-01, 2262-04-11). Exact for every resolution from 1 s to 2^-127 / 10^-127 s;
    no intermediate value overflows."""
    raw = (np.uint64(hi) << U64_32) | np.uint64(lo)
    r = tsresol & 0x7F
    if tsresol & 0x80:  # 2^-r seconds
        if r >= 64:
            sec = np.uint64(0)
            frac = raw
        else:
            sec = raw >> np.uint64(r)
            frac = raw & ((np.uint64(1) << np.uint64(r)) - np.uint64(1))
        if r <= 34:  # frac < 2^34: frac * 10^9 < 2^64
            frac_ns = (frac * np.uint64(NS_PER_S)) >> np.uint64(r)
        elif r - 34 >= 64:
            frac_ns = np.uint64(0)
        else:
            frac_ns = ((frac >> np.uint64(r - 34)) * np.uint64(NS_PER_S)) >> np.uint64(34)
    else:  # 10^-r seconds
        if r <= 19:
            units = POW10[r]
            sec = raw // units
            frac = raw % units
        else:
            sec = np.uint64(0)
            frac = raw
        if r <= 9:
            frac_ns = frac * POW10[9 - r]
        elif r - 9 <= 19:
            frac_ns = frac // POW10[r - 9]
        else:
            frac_ns = np.uint64(0)
    # sec + offset_s in unsigned arithmetic, exactly: sec is up to 2^64 - 1, the offset
    # any int64 (clamping either one first would date 2^64 s - 5e9 s to the year 2103)
    limit = np.uint64(MAX_TS_S)
    off = np.int64(offset_s)
    if off >= 0:
        uoff = np.uint64(off)
        high = bool(sec >= limit or uoff >= limit or sec + uoff >= limit)
        low = False
        total = sec + uoff if not high else np.uint64(0)
    else:
        uoff = np.uint64(-(off + 1)) + np.uint64(1)  # |off|, also for -2^63
        low = bool(sec < uoff)
        total = sec - uoff if not low else np.uint64(0)
        high = bool(not low and total >= limit)
    ns = np.int64(frac_ns)
    if low:
        return 0, True
    if high:
        return int(np.int64(MAX_TS_S - 1) * NS_PER_S + ns), True
    return int(np.int64(total) * NS_PER_S + ns), False


@inline_kernel
def reaches_present(tsresol: int) -> bool:
    """Can a 64-bit counter in if_tsresol units reach 1971? (10^-19 s and 2^-63 s can,
    finer resolutions cannot: their timestamps all fall into the first seconds of 1970.)"""
    r = tsresol & 0x7F
    return r <= 63 if tsresol & 0x80 else r <= 19


# ----------------------------------------------------------------------- frame counters
# What the reader notices about the frames it keeps (health.py: the rules and verdicts).
# The thresholds live here, beside the kernels that apply them: numba's compile cache
# notices changes to a kernel's own file only, so a helper or constant inlined from
# another module would keep its old value in a cached walk after an edit.

GAP_S = 300  # Zeek's tcp_inactivity_timeout (5 min): a longer gap splits every connection
DUP_WINDOW = 16  # frames looked back for a duplicate
DUP_MAX_NS = 100_000_000  # 100 ms: a mirror's two copies are microseconds apart
DUP_HEAD_BYTES = 64  # Ethernet + IP + TCP headers: IP id, checksums, sequence numbers

# --- hc: frame counter slots (a health.FrameCounters holds hc, ring_hash, ring_ts)
HC_FRAMES = 0
HC_PREV_TS = 1
HC_OUT_OF_ORDER = 2
HC_GAPS = 3
HC_LONGEST_GAP_NS = 4
HC_SNAPLEN_CUT = 5
HC_DUPLICATES = 6
HC_RING_NEXT = 7
HC_SLOTS = 8
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


@inline_kernel
def frame_hash(buf: np.ndarray, off: int, caplen: int, wirelen: int) -> np.uint64:
    """A multiply-xorshift hash of the lengths and the first DUP_HEAD_BYTES captured
    bytes, taken 8 bytes at a time (little-endian words; a short tail byte by byte)."""
    h = FNV_OFFSET ^ (np.uint64(caplen) << np.uint64(32)) ^ np.uint64(wirelen)
    k = min(caplen, DUP_HEAD_BYTES)
    j = 0
    while j + 8 <= k:
        w = np.uint64(0)
        for b in range(8):
            w |= np.uint64(buf[off + j + b]) << np.uint64(8 * b)
        h = (h ^ w) * FNV_PRIME
        h ^= h >> np.uint64(29)
        j += 8
    while j < k:
        h = (h ^ np.uint64(buf[off + j])) * FNV_PRIME
        j += 1
    return h


@inline_kernel
def count_frame(
    buf: np.ndarray,
    off: int,
    cap: int,
    wire: int,
    t: int,
    hc: np.ndarray,
    ring_hash: np.ndarray,
    ring_ts: np.ndarray,
) -> None:
    """Order, gap, snaplen cut and duplicate of one frame (the next in record order):
    walk_pcap and walk_pcapng call it for every record they keep, while the record's
    bytes are in the cache (health.py's module docstring gives the rules)."""
    if hc[HC_FRAMES] > 0:
        prev = hc[HC_PREV_TS]
        if t < prev:
            hc[HC_OUT_OF_ORDER] += 1
        elif t - prev > GAP_S * 1_000_000_000:
            hc[HC_GAPS] += 1
            hc[HC_LONGEST_GAP_NS] = max(hc[HC_LONGEST_GAP_NS], t - prev)
    hc[HC_FRAMES] += 1
    hc[HC_PREV_TS] = t
    if cap < wire:
        hc[HC_SNAPLEN_CUT] += 1
    h = frame_hash(buf, off, cap, wire)
    for k in range(DUP_WINDOW):
        if ring_hash[k] == h and 0 <= t - ring_ts[k] <= DUP_MAX_NS:
            hc[HC_DUPLICATES] += 1
            break
    slot = hc[HC_RING_NEXT] % DUP_WINDOW
    ring_hash[slot] = h
    ring_ts[slot] = t
    hc[HC_RING_NEXT] += 1


# ----------------------------------------------------------------------- classic pcap


@kernel
def walk_pcap(
    buf: np.ndarray,
    pos: int,
    end: int,
    big: bool,
    frac_ns: int,
    linktype: int,
    st: np.ndarray,
    cnt: np.ndarray,
    o_off: np.ndarray,
    o_cap: np.ndarray,
    o_wire: np.ndarray,
    o_ts: np.ndarray,
    o_link: np.ndarray,
    o_idx: np.ndarray,
    hc: np.ndarray,
    ring_hash: np.ndarray,
    ring_ts: np.ndarray,
) -> tuple[int, int, int]:
    """Classic pcap records from `pos` (a record header) up to `end`. `frac_ns`: 1000
    for microsecond files, 1 for nanosecond ones."""
    n = 0
    room = o_off.shape[0]
    while n < room:
        if pos + PCAP_REC_LEN > end:
            return WALK_MORE, pos, n
        caplen = _u32(buf, pos + PCAP_CAPLEN, big)
        if caplen > PCAP_MAX_CAPLEN:
            st[ST_BAD_WHAT] = BAD_PCAP_CAPLEN
            st[ST_BAD_VALUE] = caplen
            return WALK_CORRUPT, pos, n
        if pos + PCAP_REC_LEN + caplen > end:
            return WALK_MORE, pos, n
        wirelen = _u32(buf, pos + PCAP_WIRELEN, big)
        record = st[ST_RECORD]
        st[ST_RECORD] = record + 1
        if caplen > wirelen:
            cnt[CNT_CAPLEN_GT_WIRELEN] += 1
        elif caplen == 0:
            cnt[CNT_ZERO_CAPLEN] += 1
        else:
            sec = _u32(buf, pos + PCAP_TS_SEC, big)
            frac = _u32(buf, pos + PCAP_TS_FRAC, big)
            ts = sec * NS_PER_S + frac * frac_ns
            o_off[n] = pos + PCAP_REC_LEN
            o_cap[n] = caplen
            o_wire[n] = wirelen
            o_ts[n] = ts
            o_link[n] = linktype
            o_idx[n] = record
            count_frame(buf, pos + PCAP_REC_LEN, caplen, wirelen, ts, hc, ring_hash, ring_ts)
            n += 1
        pos += PCAP_REC_LEN + caplen
    return WALK_FULL, pos, n


# ----------------------------------------------------------------------------- pcapng


@inline_kernel
def _parse_idb(
    buf: np.ndarray, p: int, blen: int, big: bool, row: np.ndarray, cnt: np.ndarray
) -> None:
    """Link type, snap length, if_tsresol and if_tsoffset of the IDB at p into `row`.
    Options that run past the block are damage: counted, and all options ignored."""
    row[IF_LINKTYPE] = _u16(buf, p + IDB_LINKTYPE, big)
    row[IF_SNAPLEN] = _u32(buf, p + IDB_SNAPLEN, big)
    tsresol = DEFAULT_TSRESOL
    tsoffset = 0
    q = p + IDB_OPTIONS
    stop = p + blen - 4  # the trailing length
    while q + OPT_HDR_LEN <= stop:
        code = _u16(buf, q, big)
        length = _u16(buf, q + 2, big)
        if code == OPT_END:
            break
        value = q + OPT_HDR_LEN
        if value + length > stop:
            cnt[CNT_IDB_BAD_OPTIONS] += 1
            tsresol = DEFAULT_TSRESOL
            tsoffset = 0
            break
        if code == OPT_IF_TSRESOL and length >= 1:
            tsresol = int(buf[value])
        elif code == OPT_IF_TSOFFSET and length >= 8:
            tsoffset = _i64(buf, value, big)
        q = value + ((length + 3) & ~3)
    row[IF_TSRESOL] = tsresol
    row[IF_TSOFFSET] = tsoffset


@inline_kernel
def _block_ok(buf: np.ndarray, p: int, blen: int, end: int, big: bool) -> bool:
    """A complete block of sane length whose trailing length matches."""
    if blen < BLK_MIN_LEN or blen % 4 or blen > PCAPNG_MAX_BLOCK or p + blen > end:
        return False
    return _u32(buf, p + blen - 4, big) == blen


@inline_kernel
def _next_timestamp(
    buf: np.ndarray, p: int, look_end: int, big: bool, nif: int, ifc: np.ndarray, st: np.ndarray
) -> int:
    """The timestamp of the first EPB or PB from p on in this section (before the next
    SHB, damage or look_end), for an SPB that precedes every timestamped packet of its
    section; -1 if there is none. Remembers how far it looked (ST_AHEAD_*), so a run of
    such SPBs costs one look-ahead."""
    if p < st[ST_AHEAD_UNTIL]:
        return st[ST_AHEAD_TS]
    ts = -1
    while p + BLK_BODY <= look_end:
        btype = _u32(buf, p + BLK_TYPE, big)
        blen = _u32(buf, p + BLK_LEN, big)
        if btype == BT_SHB or not _block_ok(buf, p, blen, look_end, big):
            break
        if (btype == BT_EPB or btype == BT_PB) and blen >= EPB_MIN_LEN:
            if btype == BT_EPB:
                iface = _u32(buf, p + EPB_INTERFACE, big)
            else:
                iface = _u16(buf, p + EPB_INTERFACE, big)
            if iface < nif:
                hi = _u32(buf, p + EPB_TS_HIGH, big)
                lo = _u32(buf, p + EPB_TS_LOW, big)
                ts, _clamped = scale_ts(hi, lo, ifc[iface, IF_TSRESOL], ifc[iface, IF_TSOFFSET])
                break
        p += blen
    st[ST_AHEAD_UNTIL] = p + 1  # every SPB before p (or at it) shares the answer
    st[ST_AHEAD_TS] = ts
    return ts


@inline_kernel
def _corrupt(st: np.ndarray, what: int, value: int, value2: int) -> int:
    st[ST_BAD_WHAT] = what
    st[ST_BAD_VALUE] = value
    st[ST_BAD_VALUE2] = value2
    return WALK_CORRUPT


@kernel
def walk_pcapng(
    buf: np.ndarray,
    pos: int,
    end: int,
    look_end: int,
    st: np.ndarray,
    cnt: np.ndarray,
    ifc: np.ndarray,
    o_off: np.ndarray,
    o_cap: np.ndarray,
    o_wire: np.ndarray,
    o_ts: np.ndarray,
    o_link: np.ndarray,
    o_idx: np.ndarray,
    hc: np.ndarray,
    ring_hash: np.ndarray,
    ring_ts: np.ndarray,
) -> tuple[int, int, int]:
    """pcapng blocks from `pos` (a block start) up to `end`; SPBs may look ahead for a
    timestamp up to `look_end` (>= end)."""
    n = 0
    room = o_off.shape[0]
    while n < room:
        if pos + BLK_BODY > end:
            return WALK_MORE, pos, n
        big = st[ST_BIG] != 0
        btype = _u32(buf, pos + BLK_TYPE, big)
        if btype == BT_SHB:  # the byte order is the new section's
            if pos + SHB_BOM + 4 > end:
                return WALK_MORE, pos, n
            bom = _u32(buf, pos + SHB_BOM, False)
            if bom == 0x1A2B3C4D:
                big = False
            elif bom == 0x4D3C2B1A:
                big = True
            else:
                return _corrupt(st, BAD_BOM, 0, 0), pos, n
        blen = _u32(buf, pos + BLK_LEN, big)
        if blen % 4:
            return _corrupt(st, BAD_BLOCK_ALIGN, blen, 0), pos, n
        if blen < BLK_MIN_LEN:
            return _corrupt(st, BAD_BLOCK_SHORT, blen, 0), pos, n
        if blen > PCAPNG_MAX_BLOCK:
            return _corrupt(st, BAD_BLOCK_BIG, blen, 0), pos, n
        if pos + blen > end:
            return WALK_MORE, pos, n
        trail = _u32(buf, pos + blen - 4, big)
        if trail != blen:
            return _corrupt(st, BAD_BLOCK_TRAIL, blen, trail), pos, n

        if btype == BT_SHB:
            st[ST_BIG] = 1 if big else 0
            st[ST_SECTIONS] += 1
            st[ST_NIF] = 0  # interface ids start again at 0
            st[ST_LAST_TS] = -1
            st[ST_AHEAD_UNTIL] = -1
        elif btype == BT_IDB:
            if blen < IDB_MIN_LEN:
                return _corrupt(st, BAD_SHORT_IDB, blen, 0), pos, n
            nif = st[ST_NIF]
            if nif < MAX_INTERFACES:
                _parse_idb(buf, pos, blen, big, ifc[nif], cnt)
                st[ST_NIF] = nif + 1
            else:
                cnt[CNT_IDB_OVER_CAP] += 1
        elif btype == BT_EPB or btype == BT_PB:
            if blen < EPB_MIN_LEN:
                what = BAD_SHORT_EPB if btype == BT_EPB else BAD_SHORT_PB
                return _corrupt(st, what, blen, 0), pos, n
            if btype == BT_EPB:
                iface = _u32(buf, pos + EPB_INTERFACE, big)
            else:
                iface = _u16(buf, pos + EPB_INTERFACE, big)
            caplen = _u32(buf, pos + EPB_CAPLEN, big)
            wirelen = _u32(buf, pos + EPB_WIRELEN, big)
            record = st[ST_RECORD]
            st[ST_RECORD] = record + 1
            if iface >= st[ST_NIF]:
                cnt[CNT_BAD_INTERFACE] += 1
            elif caplen > blen - EPB_MIN_LEN:
                cnt[CNT_BAD_CAPLEN] += 1
            elif caplen > wirelen:
                cnt[CNT_CAPLEN_GT_WIRELEN] += 1
            elif caplen == 0:
                cnt[CNT_ZERO_CAPLEN] += 1
            else:
                tsresol = ifc[iface, IF_TSRESOL]
                hi = _u32(buf, pos + EPB_TS_HIGH, big)
                lo = _u32(buf, pos + EPB_TS_LOW, big)
                ts, clamped = scale_ts(hi, lo, tsresol, ifc[iface, IF_TSOFFSET])
                if clamped:
                    cnt[CNT_TS_CLAMPED] += 1
                if not reaches_present(tsresol):
                    cnt[CNT_TS_COARSE_FINE] += 1
                st[ST_LAST_TS] = ts
                o_off[n] = pos + EPB_DATA
                o_cap[n] = caplen
                o_wire[n] = wirelen
                o_ts[n] = ts
                o_link[n] = ifc[iface, IF_LINKTYPE]
                o_idx[n] = record
                count_frame(buf, pos + EPB_DATA, caplen, wirelen, ts, hc, ring_hash, ring_ts)
                n += 1
        elif btype == BT_SPB:
            if blen < SPB_MIN_LEN:
                return _corrupt(st, BAD_SHORT_SPB, blen, 0), pos, n
            wirelen = _u32(buf, pos + SPB_WIRELEN, big)
            record = st[ST_RECORD]
            st[ST_RECORD] = record + 1
            if st[ST_NIF] == 0:  # an SPB belongs to interface 0
                cnt[CNT_BAD_INTERFACE] += 1
            else:
                caplen = min(wirelen, blen - SPB_MIN_LEN)
                snaplen = ifc[0, IF_SNAPLEN]
                if snaplen > 0:
                    caplen = min(caplen, snaplen)
                if caplen == 0:
                    cnt[CNT_ZERO_CAPLEN] += 1
                else:
                    ts = st[ST_LAST_TS]
                    if ts < 0:
                        ts = _next_timestamp(buf, pos + blen, look_end, big, st[ST_NIF], ifc, st)
                    if ts < 0:
                        cnt[CNT_SPB_UNTIMED] += 1
                        ts = 0
                    o_off[n] = pos + SPB_DATA
                    o_cap[n] = caplen
                    o_wire[n] = wirelen
                    o_ts[n] = ts
                    o_link[n] = ifc[0, IF_LINKTYPE]
                    o_idx[n] = record
                    count_frame(buf, pos + SPB_DATA, caplen, wirelen, ts, hc, ring_hash, ring_ts)
                    n += 1
        # any other block type (NRB, ISB, DSB, custom, ...) carries no packet: skipped
        pos += blen
    return WALK_FULL, pos, n
