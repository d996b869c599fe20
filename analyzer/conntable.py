"""The connection table's per-packet kernels: find or insert each packet's connection,
update it the way Zeek's TCPSessionAdapter / UDP adapter do, and move finished
connections out of the live table as columnar rows.

`analyzer.flows` owns the interface (FlowTable, FlowResult) and the semantics in its
docstring; this module is the loop that carries them out, one packet at a time:

    run_batch(packets..., table state..., out rows...) -> (status, next packet)

A kernel never allocates: when the live table, the payload-head pool or the output rows
are full, it stops *before* touching the packet and returns which one is short
(NEED_SLOT, NEED_BLOCK, NEED_OUT); flows.py grows it and calls again from that packet.

State layout: one row per live connection ("slot") in a few 2-D arrays, one per dtype
(and N, the timeout-list neighbours, apart), with the columns named below (the layout
is declared once, here). Endpoint A is the one
that sorts first (address, then port); per-direction columns are A's and B's.
"""

# ruff: noqa: E741  (column groups K L N I U H are named as in the module doc)
from __future__ import annotations

import numpy as np

from analyzer.kernel import inline_kernel, kernel

# --- protocol constants ---------------------------------------------------------------

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
KIND_ARP = 2  # decode.KIND_ARP
FRAG_FIRST = 1  # decode.FRAG_FIRST
FRAG_LATER = 2  # decode.FRAG_LATER

TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_ACK = 0x10

# Zeek's TCP endpoint states (TCP_ENDPOINT_*)
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

# Zeek's history masks (session::detail::HIST_*); S and H share the SYN mask.
HIST_SYN = 0x01
HIST_FIN = 0x02
HIST_RST = 0x04
HIST_FIN_RST = 0x08
HIST_DATA = 0x10
HIST_ACK = 0x20
HIST_MULTI = 0x40

HIST_MAX = 48  # history letters kept per connection (Zeek has no limit; see flows.py)
HEAD_BYTES = 256  # payload bytes kept per direction
TOO_LARGE_SEQ_DELTA = 1048576  # Zeek's TCP.cc: sequence jumps it does not trust

# orig_evidence codes (flows.EVIDENCE names them)
EV_FIRST_PACKET, EV_SYN, EV_SYNACK, EV_PORT = range(4)

# conn_state codes (flows.CONN_STATES names them)
CS_S0, CS_S1, CS_SF, CS_REJ, CS_S2, CS_S3, CS_RSTO, CS_RSTR = range(8)
CS_RSTOS0, CS_RSTRH, CS_SH, CS_SHR, CS_OTH = range(8, 13)

# timeout classes: each is one list of live connections, least recently active first
CLASS_TCP, CLASS_UDP, CLASS_ICMP = range(3)
N_CLASSES = 3

# statuses
DONE, NEED_SLOT, NEED_BLOCK, NEED_OUT = range(4)

# --- live slot columns ------------------------------------------------------------------

# K: uint64 key words
K_A_HI, K_A_LO, K_B_HI, K_B_LO, K_PROTO_PORTS, K_VLANS = range(6)
N_K = 6
K_COLS = 8  # the live table's K rows: padded to 64 bytes (w has N_K words)

# L: int64. The columns every packet touches come first, so that they share the row's
# first two cache lines (the rows are 32 words, 256 bytes); the table is memory-bound
# once its live connections outgrow the caches.
(
    L_TS_LAST,
    L_PKTS_A,
    L_PKTS_B,
    L_BYTES_A,
    L_BYTES_B,
    L_IPB_A,
    L_IPB_B,
    L_BLK_A,  # payload-head block of each direction, -1 = none yet
    L_BLK_B,
    # Zeek's per-endpoint sequence state (TCP_Endpoint), A then B
    L_START_A,
    L_START_B,
    L_LAST_A,
    L_LAST_B,
    L_SYN_SEQ,  # sequence number of the first SYN without ACK, -1 = none (port reuse)
    L_HASH,
    L_FIRST_INDEX,
    L_TS_FIRST,
    L_MAC_A,
    L_MAC_B,
    L_HSYN_A,  # hist_last_SYN / FIN / RST (relative sequence numbers)
    L_HSYN_B,
    L_HFIN_A,
    L_HFIN_B,
    L_HRST_A,
    L_HRST_B,
    L_RXMT_A,  # retransmissions counted / next threshold for a 'T' (1, 10, 100, ...)
    L_RXMT_B,
    L_RXTH_A,
    L_RXTH_B,
) = range(29)
N_L = 32  # three unused columns: rows of 256 bytes

# N: int64 neighbours in the slot's timeout-class list (-1 = none), in their own small
# array: moving a connection to its list's end touches its neighbours' rows, and 16
# bytes per slot stay in the CPU caches where the 256-byte L rows do not.
N_PREV, N_NEXT = range(2)
N_N = 2

# I: int32
I_A_PORT, I_B_PORT, I_VLAN, I_INNER_VLAN, I_HEAD_A, I_HEAD_B, I_HIST_LEN = range(7)
N_I = 8  # padded to 32 bytes

# U: uint8
(
    U_PROTO,
    U_CLASS,
    U_ORIG_IS_A,
    U_FIRST_AB,  # the first packet was sent by A
    U_EVIDENCE,
    U_PINNED,  # originator fixed by the broadcast rule: a later SYN does not move it
    U_SYN_SEEN,  # a SYN without ACK/FIN/RST was seen (the originator rule's "syn")
    U_MACOK_A,
    U_MACOK_B,
    U_RST_SEEN,  # for port reuse: the connection is closed
    U_FIN_A,
    U_FIN_B,
    U_STATE_A,
    U_STATE_B,
    U_PREV_A,
    U_PREV_B,
    U_SEEN_ORIG,  # Zeek's hist_seen bits of the originator role / the responder role
    U_SEEN_RESP,
    U_HEAD_DONE_A,  # no more head bytes this direction (full, or a gap: snaplen cut)
    U_HEAD_DONE_B,
) = range(20)
N_U = 32  # padded: rows of 32 bytes do not straddle cache lines

# --- output row columns --------------------------------------------------------------------

# OK: uint64 addresses
OK_A_HI, OK_A_LO, OK_B_HI, OK_B_LO = range(4)
N_OK = 4
# OL: int64
(
    OL_FIRST_INDEX,
    OL_TS_FIRST,
    OL_TS_LAST,
    OL_PKTS_A,
    OL_PKTS_B,
    OL_BYTES_A,
    OL_BYTES_B,
    OL_IPB_A,
    OL_IPB_B,
    OL_MAC_A,
    OL_MAC_B,
    OL_VAR,  # offset in the row chunk's byte buffer: history, head A, head B
) = range(12)
N_OL = 12
# OI: int32
OI_A_PORT, OI_B_PORT, OI_VLAN, OI_INNER_VLAN, OI_HEAD_A, OI_HEAD_B, OI_HIST_LEN = range(7)
N_OI = 7
# OU: uint8
OU_PROTO, OU_ORIG_IS_A, OU_EVIDENCE, OU_CONN_STATE, OU_MACOK_A, OU_MACOK_B = range(6)
N_OU = 6
ROW_VAR_MAX = HIST_MAX + 2 * HEAD_BYTES  # bytes one row may add to the byte buffer

# M: int64 table-wide counters and list ends
(
    M_LIVE,  # live connections
    M_FREE_TOP,  # free slots on the free stack
    M_BLK_TOP,  # free head blocks on their stack
    M_ROWS,  # rows written to the current output chunk
    M_VAR,  # bytes used in its byte buffer
    M_EVICTED,  # connections expired early because the table was full
    M_MAX_LIVE,  # the cap on live connections
    M_HEAD0,  # list heads (oldest) per class: M_HEAD0 + class
    M_HEAD1,
    M_HEAD2,
    M_TAIL0,  # list tails (newest) per class
    M_TAIL1,
    M_TAIL2,
) = range(13)
N_M = 13

FRAG_TABLE = 1 << 16  # remembered first fragments (direct-mapped: a newer one replaces)


# --- small helpers ---------------------------------------------------------------------------


@inline_kernel
def mix(h: np.uint64, w: np.uint64) -> np.uint64:
    """One splitmix64-style round folding word `w` into `h`."""
    h = (h ^ w) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(31)
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return h


@inline_kernel
def key_hash(w: np.ndarray) -> np.int64:
    """A non-negative 63-bit hash of the key words (int64, so that bucket arithmetic never
    mixes unsigned and signed integers, which numba would turn into floats)."""
    h = np.uint64(0)
    for j in range(N_K):
        h = mix(h, w[j])
    return np.int64(h >> np.uint64(1))


@inline_kernel
def seq_delta(a: np.int64, b: np.int64) -> np.int64:
    """Zeek's seq_delta: a - b as a signed 32-bit difference."""
    d = (a - b) & 0xFFFFFFFF
    if d >= 0x80000000:
        d -= 0x100000000
    return d


@inline_kernel
def is_bcast(hi: np.uint64, lo: np.uint64) -> bool:
    """IPv4 x.x.x.255, 224.0.0.0/4 (and 255.255.255.255); IPv6 ff00::/8."""
    if hi == 0 and (lo >> np.uint64(32)) == np.uint64(0xFFFF):
        low8 = lo & np.uint64(0xFF)
        top4 = (lo >> np.uint64(28)) & np.uint64(0xF)
        return low8 == np.uint64(0xFF) or top4 == np.uint64(0xE)
    return (hi >> np.uint64(56)) == np.uint64(0xFF)


# --- history ------------------------------------------------------------------------------------


@inline_kernel
def add_history(
    s: int, code: int, upper: bool, U: np.ndarray, I: np.ndarray, H: np.ndarray
) -> None:
    """Append a letter (upper case = the originator), as Zeek's AddHistory."""
    n = I[s, I_HIST_LEN]
    if n >= HIST_MAX:
        return
    H[s, n] = code if upper or code == ord("^") else code + 32
    I[s, I_HIST_LEN] = n + 1


@inline_kernel
def check_history(
    s: int, is_orig: bool, mask: int, code: int, U: np.ndarray, I: np.ndarray, H: np.ndarray
) -> bool:
    """Zeek's CheckHistory: write the letter the first time its mask is seen for this
    role; True when it had been seen before."""
    col = U_SEEN_ORIG if is_orig else U_SEEN_RESP
    if U[s, col] & mask:
        return True
    U[s, col] |= mask
    add_history(s, code, is_orig, U, I, H)
    return False


@inline_kernel
def scaled_history(
    s: int,
    is_orig: bool,
    code: int,
    cnt_col: int,
    th_col: int,
    L: np.ndarray,
    U: np.ndarray,
    I: np.ndarray,
    H: np.ndarray,
) -> None:
    """Zeek's ScaledHistoryEntry: the letter at the 1st, 10th, 100th, ... occurrence."""
    L[s, cnt_col] += 1
    if L[s, cnt_col] == L[s, th_col]:
        add_history(s, code, is_orig, U, I, H)
        L[s, th_col] *= 10


@inline_kernel
def tcp_history(
    s: int,
    a_sent: bool,
    is_orig: bool,
    flags: int,
    rel_seq: np.int64,
    plen: int,
    L: np.ndarray,
    U: np.ndarray,
    I: np.ndarray,
    H: np.ndarray,
) -> None:
    """Zeek's update_history (TCP.cc): S H F R repeat when their sequence number moves;
    A D I Q once per role."""
    syn = (flags & TH_SYN) != 0
    fin = (flags & TH_FIN) != 0
    rst = (flags & TH_RST) != 0
    ack = (flags & TH_ACK) != 0
    nbits = int(syn) + int(fin) + int(rst)
    if nbits > 1:
        if fin and rst:
            check_history(s, is_orig, HIST_FIN_RST, ord("I"), U, I, H)
        else:
            check_history(s, is_orig, HIST_MULTI, ord("Q"), U, I, H)
    elif nbits == 1:
        if syn:
            code = ord("H") if ack else ord("S")
            col = L_HSYN_A if a_sent else L_HSYN_B
            if check_history(s, is_orig, HIST_SYN, code, U, I, H) and rel_seq != L[s, col]:
                add_history(s, code, is_orig, U, I, H)
            L[s, col] = rel_seq
        if fin:
            col = L_HFIN_A if a_sent else L_HFIN_B
            if (
                check_history(s, is_orig, HIST_FIN, ord("F"), U, I, H)
                and rel_seq + plen != L[s, col]
            ):
                add_history(s, ord("F"), is_orig, U, I, H)
            L[s, col] = rel_seq + plen
        if rst:
            col = L_HRST_A if a_sent else L_HRST_B
            if check_history(s, is_orig, HIST_RST, ord("R"), U, I, H) and rel_seq != L[s, col]:
                add_history(s, ord("R"), is_orig, U, I, H)
            L[s, col] = rel_seq
    elif plen > 0:
        check_history(s, is_orig, HIST_DATA, ord("D"), U, I, H)
    elif ack:
        check_history(s, is_orig, HIST_ACK, ord("A"), U, I, H)


# --- Zeek's TCP endpoint state machine ------------------------------------------------


@inline_kernel
def set_state(s: int, st_col: int, prev_col: int, state: int, U: np.ndarray) -> None:
    U[s, prev_col] = U[s, st_col]
    U[s, st_col] = state


@inline_kernel
def init_endpoint(
    s: int, a_sent: bool, flags: int, seq: np.int64, last: np.int64, L: np.ndarray, U: np.ndarray
) -> None:
    """Zeek's init_endpoint: where an endpoint's sequence numbering starts."""
    st = U[s, U_STATE_A if a_sent else U_STATE_B]
    prev = U[s, U_PREV_A if a_sent else U_PREV_B]
    c_start = L_START_A if a_sent else L_START_B
    c_last = L_LAST_A if a_sent else L_LAST_B
    syn = (flags & TH_SYN) != 0
    if st == INACTIVE:
        if syn:
            L[s, c_start] = seq
            L[s, c_last] = last
        else:
            L[s, c_start] = (seq - 1) & 0xFFFFFFFF
            L[s, c_last] = seq  # the first packet is not a retransmission
    elif st == SYN_SENT or st == SYN_ACK_SENT:
        if syn and seq != L[s, c_start]:
            L[s, c_start] = seq
            L[s, c_last] = last
    elif st == ESTABLISHED or st == PARTIAL:
        if syn:
            L[s, c_start] = seq
            L[s, c_last] = last
    elif st == RESET:
        if syn and prev == INACTIVE:
            L[s, c_start] = seq
            L[s, c_last] = last


@inline_kernel
def update_last_seq(
    s: int,
    a_sent: bool,
    is_orig: bool,
    flags: int,
    last: np.int64,
    plen: int,
    L: np.ndarray,
    U: np.ndarray,
    I: np.ndarray,
    H: np.ndarray,
) -> bool:
    """Zeek's update_last_seq; a data segment that does not advance the endpoint's last
    sequence number is a retransmission ('T' at 1, 10, 100, ...). True when the segment
    carried new data (it may extend the payload head)."""
    c_start = L_START_A if a_sent else L_START_B
    c_last = L_LAST_A if a_sent else L_LAST_B
    st = U[s, U_STATE_A if a_sent else U_STATE_B]
    delta = seq_delta(last, L[s, c_last])
    syn_or_rst = (flags & (TH_SYN | TH_RST)) != 0
    if syn_or_rst and (delta > TOO_LARGE_SEQ_DELTA or delta < -TOO_LARGE_SEQ_DELTA):
        return True
    if (flags & TH_FIN) and L[s, c_last] == ((L[s, c_start] + 1) & 0xFFFFFFFF):
        L[s, c_last] = last
        return True
    if st == RESET:
        return True
    if delta > 0:
        L[s, c_last] = last
        return True
    if plen > 0:
        if a_sent:
            scaled_history(s, is_orig, ord("T"), L_RXMT_A, L_RXTH_A, L, U, I, H)
        else:
            scaled_history(s, is_orig, ord("T"), L_RXMT_B, L_RXTH_B, L, U, I, H)
        return False
    return True


@inline_kernel
def tcp_state(s: int, a_sent: bool, is_orig: bool, flags: int, plen: int, U: np.ndarray) -> None:
    """Zeek's TCPSessionAdapter::UpdateStateMachine, endpoint states only."""
    st_e, pv_e = (U_STATE_A, U_PREV_A) if a_sent else (U_STATE_B, U_PREV_B)
    st_p, pv_p = (U_STATE_B, U_PREV_B) if a_sent else (U_STATE_A, U_PREV_A)
    syn = (flags & TH_SYN) != 0
    fin = (flags & TH_FIN) != 0
    rst = (flags & TH_RST) != 0
    ack = (flags & TH_ACK) != 0
    ep = U[s, st_e]
    if ep == INACTIVE:
        if syn:
            if is_orig:
                set_state(s, st_e, pv_e, SYN_ACK_SENT if ack else SYN_SENT, U)
            else:
                if U[s, st_p] == SYN_SENT:
                    set_state(s, st_p, pv_p, ESTABLISHED, U)
                set_state(s, st_e, pv_e, ESTABLISHED, U)
        if fin:
            set_state(s, st_e, pv_e, CLOSED, U)
        if rst:
            set_state(s, st_e, pv_e, RESET, U)
        if U[s, st_e] == INACTIVE:
            if not is_orig and plen == 0 and U[s, st_p] == SYN_SENT:
                pass  # an ACK of the SYN before the SYN-ACK: not a partial connection
            elif ack and U[s, st_p] == ESTABLISHED:
                set_state(s, st_e, pv_e, ESTABLISHED, U)
            else:
                set_state(s, st_e, pv_e, PARTIAL, U)
    elif ep == SYN_SENT or ep == SYN_ACK_SENT:
        if fin:
            set_state(s, st_e, pv_e, CLOSED, U)
        if rst:
            set_state(s, st_e, pv_e, RESET, U)
    elif ep == ESTABLISHED or ep == PARTIAL:
        if syn and ep == PARTIAL and U[s, st_p] == INACTIVE and not ack:
            set_state(s, st_e, pv_e, SYN_SENT, U)
        if fin and not rst:
            set_state(s, st_e, pv_e, CLOSED, U)
            if U[s, st_p] == RESET and U[s, pv_p] == CLOSED:
                set_state(s, st_p, pv_p, CLOSED, U)  # FIN then RST: a normal close
        if rst:
            set_state(s, st_e, pv_e, RESET, U)
    elif ep == CLOSED:
        if rst and U[s, st_p] != CLOSED:
            set_state(s, st_e, pv_e, RESET, U)


@inline_kernel
def rstos0_history(s: int, I: np.ndarray, H: np.ndarray) -> bool:
    """Zeek's /^\\^?S[^HAFGIQ]*R.*/ on the history."""
    n = I[s, I_HIST_LEN]
    i = 0
    if i < n and H[s, i] == ord("^"):
        i += 1
    if i >= n or H[s, i] != ord("S"):
        return False
    i += 1
    while i < n:
        c = H[s, i]
        if c == ord("R"):
            return True
        if (
            c == ord("H")
            or c == ord("A")
            or c == ord("F")
            or c == ord("G")
            or c == ord("I")
            or c == ord("Q")
        ):
            return False
        i += 1
    return False


@inline_kernel
def conn_state(s: int, L: np.ndarray, I: np.ndarray, U: np.ndarray, H: np.ndarray) -> int:
    """Zeek's conn_state() (base/protocols/conn/main.zeek) from the endpoint states."""
    proto = U[s, U_PROTO]
    orig_a = U[s, U_ORIG_IS_A] != 0
    if proto == PROTO_UDP:
        o = L[s, L_PKTS_A if orig_a else L_PKTS_B] > 0
        r = L[s, L_PKTS_B if orig_a else L_PKTS_A] > 0
        if o:
            return CS_SF if r else CS_S0
        return CS_SHR if r else CS_OTH
    if proto != PROTO_TCP:
        return CS_OTH
    os_ = U[s, U_STATE_A if orig_a else U_STATE_B]
    rs = U[s, U_STATE_B if orig_a else U_STATE_A]
    o_inactive = os_ == INACTIVE or os_ == PARTIAL
    r_inactive = rs == INACTIVE or rs == PARTIAL
    no_bytes = L[s, L_BYTES_A] == 0 and L[s, L_BYTES_B] == 0
    if rs == RESET:
        if os_ == SYN_SENT or os_ == SYN_ACK_SENT or (os_ == RESET and no_bytes):
            return CS_REJ
        return CS_RSTRH if o_inactive else CS_RSTR
    if os_ == RESET:
        if r_inactive:
            return CS_RSTOS0 if rstos0_history(s, I, H) else CS_OTH
        return CS_RSTO
    if rs == CLOSED and os_ == CLOSED:
        return CS_SF
    if os_ == CLOSED:
        return CS_SH if r_inactive else CS_S2
    if rs == CLOSED:
        return CS_SHR if o_inactive else CS_S3
    if os_ == SYN_SENT and rs == INACTIVE:
        return CS_S0
    if os_ == ESTABLISHED and rs == ESTABLISHED:
        return CS_S1
    return CS_OTH


# --- the open-addressing index ----------------------------------------------------------------


@inline_kernel
def index_find(
    index: np.ndarray,
    K: np.ndarray,
    h: np.int64,
    w0: np.uint64,
    w1: np.uint64,
    w2: np.uint64,
    w3: np.uint64,
    w4: np.uint64,
    w5: np.uint64,
) -> tuple[int, int]:
    """(slot, bucket) of the key, or (-1, the empty bucket where it would go)."""
    mask = index.size - 1
    b = h & mask
    while True:
        s = index[b]
        if s < 0:
            return -1, int(b)
        if (
            K[s, K_A_HI] == w0
            and K[s, K_A_LO] == w1
            and K[s, K_B_HI] == w2
            and K[s, K_B_LO] == w3
            and K[s, K_PROTO_PORTS] == w4
            and K[s, K_VLANS] == w5
        ):
            return int(s), int(b)
        b = (b + 1) & mask


@inline_kernel
def index_remove(index: np.ndarray, L: np.ndarray, s: int) -> None:
    """Remove slot `s` from the index, shifting later entries of its probe run back
    (linear probing without tombstones)."""
    mask = index.size - 1
    i = L[s, L_HASH] & mask
    while index[i] != s:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        t = index[j]
        if t < 0:
            break
        home = L[t, L_HASH] & mask
        # t may move to i unless its home lies cyclically in (i, j]
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if not stays:
            index[i] = t
            i = j
    index[i] = -1


@kernel
def rebuild_index(index: np.ndarray, L: np.ndarray, live: np.ndarray) -> None:
    """Fill an empty index (all -1) with the `live` slots."""
    mask = index.size - 1
    for s in live:
        b = L[s, L_HASH] & mask
        while index[b] >= 0:
            b = (b + 1) & mask
        index[b] = s


# --- timeout-class lists (least recently active first) -----------------------------------------


@inline_kernel
def list_unlink(s: int, N: np.ndarray, U: np.ndarray, M: np.ndarray) -> None:
    c = U[s, U_CLASS]
    p, n = N[s, N_PREV], N[s, N_NEXT]
    if p >= 0:
        N[p, N_NEXT] = n
    else:
        M[M_HEAD0 + c] = n
    if n >= 0:
        N[n, N_PREV] = p
    else:
        M[M_TAIL0 + c] = p
    N[s, N_PREV] = -1
    N[s, N_NEXT] = -1


@inline_kernel
def list_append(s: int, N: np.ndarray, U: np.ndarray, M: np.ndarray) -> None:
    c = U[s, U_CLASS]
    t = M[M_TAIL0 + c]
    N[s, N_PREV] = t
    N[s, N_NEXT] = -1
    if t >= 0:
        N[t, N_NEXT] = s
    else:
        M[M_HEAD0 + c] = s
    M[M_TAIL0 + c] = s


# --- leaving the live table ---------------------------------------------------------------------


@inline_kernel
def emit_row(
    s: int, L: np.ndarray, I: np.ndarray, U: np.ndarray, K: np.ndarray, H: np.ndarray,
    heads: np.ndarray, OK: np.ndarray, OL: np.ndarray, OI: np.ndarray, OU: np.ndarray,
    var: np.ndarray, M: np.ndarray,
) -> None:  # fmt: skip
    """Write slot `s` as one output row (the caller checked there is room)."""
    r = M[M_ROWS]
    OK[r, OK_A_HI] = K[s, K_A_HI]
    OK[r, OK_A_LO] = K[s, K_A_LO]
    OK[r, OK_B_HI] = K[s, K_B_HI]
    OK[r, OK_B_LO] = K[s, K_B_LO]
    OL[r, OL_FIRST_INDEX] = L[s, L_FIRST_INDEX]
    OL[r, OL_TS_FIRST] = L[s, L_TS_FIRST]
    OL[r, OL_TS_LAST] = L[s, L_TS_LAST]
    OL[r, OL_PKTS_A] = L[s, L_PKTS_A]
    OL[r, OL_PKTS_B] = L[s, L_PKTS_B]
    OL[r, OL_BYTES_A] = L[s, L_BYTES_A]
    OL[r, OL_BYTES_B] = L[s, L_BYTES_B]
    OL[r, OL_IPB_A] = L[s, L_IPB_A]
    OL[r, OL_IPB_B] = L[s, L_IPB_B]
    OL[r, OL_MAC_A] = L[s, L_MAC_A]
    OL[r, OL_MAC_B] = L[s, L_MAC_B]
    OI[r, OI_A_PORT] = I[s, I_A_PORT]
    OI[r, OI_B_PORT] = I[s, I_B_PORT]
    OI[r, OI_VLAN] = I[s, I_VLAN]
    OI[r, OI_INNER_VLAN] = I[s, I_INNER_VLAN]
    OU[r, OU_PROTO] = U[s, U_PROTO]
    OU[r, OU_ORIG_IS_A] = U[s, U_ORIG_IS_A]
    OU[r, OU_EVIDENCE] = U[s, U_EVIDENCE]
    OU[r, OU_CONN_STATE] = conn_state(s, L, I, U, H)
    OU[r, OU_MACOK_A] = U[s, U_MACOK_A]
    OU[r, OU_MACOK_B] = U[s, U_MACOK_B]
    v = M[M_VAR]
    OL[r, OL_VAR] = v
    n = I[s, I_HIST_LEN]
    var[v : v + n] = H[s, :n]
    v += n
    OI[r, OI_HIST_LEN] = n
    for col_blk, col_len, out_col in (
        (L_BLK_A, I_HEAD_A, OI_HEAD_A),
        (L_BLK_B, I_HEAD_B, OI_HEAD_B),
    ):
        blk = L[s, col_blk]
        m = I[s, col_len] if blk >= 0 else -1  # -1: no payload this way (None)
        OI[r, out_col] = m
        if m > 0:
            var[v : v + m] = heads[blk, :m]
            v += m
    M[M_VAR] = v
    M[M_ROWS] = r + 1


@inline_kernel
def release(
    s: int, index: np.ndarray, L: np.ndarray, N: np.ndarray, U: np.ndarray,
    free: np.ndarray, blk_free: np.ndarray, M: np.ndarray,
) -> None:  # fmt: skip
    """Take slot `s` out of the index and its list; return it and its head blocks."""
    index_remove(index, L, s)
    list_unlink(s, N, U, M)
    for col in (L_BLK_A, L_BLK_B):
        blk = L[s, col]
        if blk >= 0:
            blk_free[M[M_BLK_TOP]] = blk
            M[M_BLK_TOP] += 1
            L[s, col] = -1
    free[M[M_FREE_TOP]] = s
    M[M_FREE_TOP] += 1
    M[M_LIVE] -= 1


@inline_kernel
def room_for_rows(rows: int, OL: np.ndarray, var: np.ndarray, M: np.ndarray) -> bool:
    return M[M_ROWS] + rows <= OL.shape[0] and M[M_VAR] + rows * ROW_VAR_MAX <= var.size


@inline_kernel
def oldest_live(L: np.ndarray, M: np.ndarray) -> int:
    """The least recently active live connection over all classes (-1: none)."""
    best = -1
    for c in range(N_CLASSES):
        s = M[M_HEAD0 + c]
        if s >= 0 and (best < 0 or L[s, L_TS_LAST] < L[best, L_TS_LAST]):
            best = s
    return best


# --- one packet ----------------------------------------------------------------------------------


@inline_kernel
def new_slot(
    p: int, s: int, a_sent: bool, proto: int, cls: int, flags: int, icmp_type: int,
    w: np.ndarray, a_port: int, b_port: int, h: np.int64,
    index_pos: int, index: np.ndarray,
    index_: np.ndarray, ts: np.ndarray, vlan: np.ndarray, inner_vlan: np.ndarray,
    svc_tcp: np.ndarray, svc_udp: np.ndarray, icmp_reply: np.ndarray,
    K: np.ndarray, L: np.ndarray, N: np.ndarray, I: np.ndarray, U: np.ndarray,
    H: np.ndarray, M: np.ndarray,
) -> None:  # fmt: skip
    """Initialise slot `s` for a connection whose first packet is `p`."""
    for j in range(N_K):
        K[s, j] = w[j]
    L[s, :] = 0
    I[s, :] = 0
    U[s, :] = 0
    L[s, L_HASH] = h
    L[s, L_FIRST_INDEX] = index_[p]
    L[s, L_TS_FIRST] = ts[p]
    L[s, L_TS_LAST] = ts[p]
    L[s, L_SYN_SEQ] = -1
    L[s, L_BLK_A] = -1
    L[s, L_BLK_B] = -1
    L[s, L_RXTH_A] = 1
    L[s, L_RXTH_B] = 1
    I[s, I_A_PORT] = a_port
    I[s, I_B_PORT] = b_port
    I[s, I_VLAN] = vlan[p]
    I[s, I_INNER_VLAN] = inner_vlan[p]
    U[s, U_PROTO] = proto
    U[s, U_CLASS] = cls
    U[s, U_FIRST_AB] = a_sent
    orig_a, evidence, pinned = first_originator(
        a_sent, proto, flags, icmp_type, w, a_port, b_port, svc_tcp, svc_udp, icmp_reply
    )
    U[s, U_ORIG_IS_A] = orig_a
    U[s, U_EVIDENCE] = evidence
    U[s, U_PINNED] = pinned
    if (proto == PROTO_TCP or proto == PROTO_UDP) and orig_a != a_sent:
        add_history(s, ord("^"), True, U, I, H)  # flipped before the first letter
    index[index_pos] = s
    M[M_LIVE] += 1
    list_append(s, N, U, M)


@inline_kernel
def first_originator(
    a_sent: bool, proto: int, flags: int, icmp_type: int, w: np.ndarray, a_port: int,
    b_port: int, svc_tcp: np.ndarray, svc_udp: np.ndarray, icmp_reply: np.ndarray,
) -> tuple[bool, int, bool]:  # fmt: skip
    """(originator is A, evidence, pinned) from a connection's first packet; the rules
    are in flows.py's docstring. A later SYN may still move a TCP originator."""
    bc_a = is_bcast(w[K_A_HI], w[K_A_LO])
    bc_b = is_bcast(w[K_B_HI], w[K_B_LO])
    if bc_a != bc_b:
        return bc_b, EV_FIRST_PACKET, True
    if proto == PROTO_TCP:
        if (flags & (TH_SYN | TH_ACK | TH_FIN | TH_RST)) == TH_SYN:
            return a_sent, EV_SYN, False
        if (flags & (TH_SYN | TH_ACK | TH_RST)) == (TH_SYN | TH_ACK):
            return not a_sent, EV_SYNACK, False
        sa = svc_tcp[a_port] != 0
        sb = svc_tcp[b_port] != 0
        if sa != sb:
            return sb, EV_PORT, False
    elif proto == PROTO_UDP:
        src_port = a_port if a_sent else b_port
        dst_port = b_port if a_sent else a_port
        if svc_udp[src_port] != 0 and svc_udp[dst_port] == 0:
            return not a_sent, EV_PORT, False
    elif proto == PROTO_ICMP or proto == PROTO_ICMP6:
        if icmp_reply[1 if proto == PROTO_ICMP6 else 0, icmp_type & 0xFF]:
            return not a_sent, EV_PORT, False
    return a_sent, EV_FIRST_PACKET, False


@inline_kernel
def tcp_packet(
    s: int,
    a_sent: bool,
    flags: int,
    seq: np.int64,
    plen: int,
    L: np.ndarray,
    U: np.ndarray,
    I: np.ndarray,
    H: np.ndarray,
) -> bool:
    """One TCP segment through the connection, in the order of Zeek's
    TCPSessionAdapter::DeliverPacket. True when it carried new data (not a
    retransmission)."""
    pure_syn = (flags & (TH_SYN | TH_ACK | TH_FIN | TH_RST)) == TH_SYN
    if pure_syn and U[s, U_SYN_SEEN] == 0:
        U[s, U_SYN_SEEN] = 1
        if U[s, U_PINNED] == 0:
            U[s, U_EVIDENCE] = EV_SYN
            if (U[s, U_ORIG_IS_A] != 0) != a_sent:
                U[s, U_ORIG_IS_A] = a_sent
                add_history(s, ord("^"), True, U, I, H)  # Zeek's FlipRoles
    if (flags & (TH_SYN | TH_ACK)) == TH_SYN and L[s, L_SYN_SEQ] < 0:
        L[s, L_SYN_SEQ] = seq
    if flags & TH_RST:
        U[s, U_RST_SEEN] = 1
    if flags & TH_FIN:
        U[s, U_FIN_A if a_sent else U_FIN_B] = 1
    is_orig = (U[s, U_ORIG_IS_A] != 0) == a_sent
    seg_len = plen
    if flags & TH_SYN:
        seg_len += 1
    if flags & TH_FIN:
        seg_len += 1
    if flags & TH_RST:
        seg_len -= plen
    last = (seq + seg_len) & 0xFFFFFFFF
    init_endpoint(s, a_sent, flags, seq, last, L, U)
    rel = seq_delta(seq, L[s, L_START_A if a_sent else L_START_B])
    tcp_history(s, a_sent, is_orig, flags, rel, plen, L, U, I, H)
    fresh = update_last_seq(s, a_sent, is_orig, flags, last, plen, L, U, I, H)
    tcp_state(s, a_sent, is_orig, flags, plen, U)
    return fresh


@inline_kernel
def closed_for_reuse(s: int, flags: int, seq: np.int64, L: np.ndarray, U: np.ndarray) -> bool:
    """Zeek's port reuse (TCPSessionAdapter::IsReuse): a SYN without ACK after the
    connection closed (a RST, or a FIN each way), unless it repeats the first SYN's
    sequence number (a retransmitted attempt)."""
    if (flags & (TH_SYN | TH_ACK)) != TH_SYN:
        return False
    closed = U[s, U_RST_SEEN] != 0 or (U[s, U_FIN_A] != 0 and U[s, U_FIN_B] != 0)
    return closed and seq != L[s, L_SYN_SEQ]


@inline_kernel
def add_head(
    s: int, a_sent: bool, off: int, n: int, cut: bool, buf: np.ndarray, heads: np.ndarray,
    blk_free: np.ndarray, L: np.ndarray, I: np.ndarray, U: np.ndarray, M: np.ndarray,
) -> None:  # fmt: skip
    """Append up to HEAD_BYTES of this packet's captured payload to its direction's head.
    A packet cut by the snap length ends the head: what follows would not line up."""
    done_col = U_HEAD_DONE_A if a_sent else U_HEAD_DONE_B
    if U[s, done_col]:
        return
    blk_col = L_BLK_A if a_sent else L_BLK_B
    len_col = I_HEAD_A if a_sent else I_HEAD_B
    blk = L[s, blk_col]
    if blk < 0:
        M[M_BLK_TOP] -= 1
        blk = blk_free[M[M_BLK_TOP]]
        L[s, blk_col] = blk
        I[s, len_col] = 0
    have = I[s, len_col]
    take = min(n, HEAD_BYTES - have)
    if off + take > buf.size:  # never read past the batch buffer
        take = max(0, buf.size - off)
    heads[blk, have : have + take] = buf[off : off + take]
    I[s, len_col] = have + take
    if have + take >= HEAD_BYTES or cut:
        U[s, done_col] = 1


@kernel
def run_batch(
    start: int,
    # packets (decode.PacketBatch fields)
    index_: np.ndarray, ts: np.ndarray, kind: np.ndarray, src_mac: np.ndarray,
    has_mac: np.ndarray, vlan: np.ndarray, inner_vlan: np.ndarray, src_hi: np.ndarray,
    src_lo: np.ndarray, dst_hi: np.ndarray, dst_lo: np.ndarray, proto_: np.ndarray,
    ip_len: np.ndarray, frag: np.ndarray, ip_id: np.ndarray, sport_: np.ndarray,
    dport_: np.ndarray, tcp_flags: np.ndarray, seq_: np.ndarray,
    payload_len: np.ndarray, payload_off: np.ndarray, caplen_payload: np.ndarray,
    buf: np.ndarray,
    # settings
    timeout_ns: np.ndarray, proto_class: np.ndarray, svc_tcp: np.ndarray,
    svc_udp: np.ndarray, icmp_counterpart: np.ndarray, icmp_reply: np.ndarray,
    # fragments seen
    frag_key: np.ndarray, frag_ports: np.ndarray,
    # live table
    index: np.ndarray, K: np.ndarray, L: np.ndarray, N: np.ndarray, I: np.ndarray,
    U: np.ndarray, H: np.ndarray, free: np.ndarray, heads: np.ndarray,
    blk_free: np.ndarray, M: np.ndarray,
    # output rows
    OK: np.ndarray, OL: np.ndarray, OI: np.ndarray, OU: np.ndarray, var: np.ndarray,
) -> tuple[int, int]:  # fmt: skip
    """Account packets `start`.. to their connections; returns (status, next packet)."""
    w = np.empty(N_K, dtype=np.uint64)
    n = index_.size
    for p in range(start, n):
        if kind[p] == KIND_ARP:
            continue
        now = ts[p]
        # connections idle for at least their timeout leave the table (Zeek's timers)
        for c in range(N_CLASSES):
            while True:
                s = M[M_HEAD0 + c]
                if s < 0 or now - L[s, L_TS_LAST] < timeout_ns[c]:
                    break
                if not room_for_rows(1, OL, var, M):
                    return NEED_OUT, p
                emit_row(s, L, I, U, K, H, heads, OK, OL, OI, OU, var, M)
                release(s, index, L, N, U, free, blk_free, M)
        if not room_for_rows(2, OL, var, M):
            return NEED_OUT, p
        if M[M_BLK_TOP] < 1:
            return NEED_BLOCK, p
        if M[M_FREE_TOP] < 1 and M[M_LIVE] < M[M_MAX_LIVE]:
            return NEED_SLOT, p

        proto = int(proto_[p])
        sport = int(sport_[p])
        dport = int(dport_[p])
        # fragments: a later fragment takes its first fragment's ports
        fr = frag[p]
        orphan = False
        if fr != 0:
            fk = mix(mix(mix(mix(np.uint64(0), src_hi[p]), src_lo[p]), dst_hi[p]), dst_lo[p])
            tag = (np.uint64(proto) << np.uint64(32)) | np.uint64(ip_id[p])
            fk = mix(fk, tag)
            fb = np.int64(fk >> np.uint64(1)) & (FRAG_TABLE - 1)
            same = (
                frag_key[fb, 0] == src_hi[p] and frag_key[fb, 1] == src_lo[p]
                and frag_key[fb, 2] == dst_hi[p] and frag_key[fb, 3] == dst_lo[p]
                and frag_key[fb, 4] == tag + np.uint64(1)
            )  # fmt: skip
            if fr == FRAG_FIRST:
                frag_key[fb, 0] = src_hi[p]
                frag_key[fb, 1] = src_lo[p]
                frag_key[fb, 2] = dst_hi[p]
                frag_key[fb, 3] = dst_lo[p]
                frag_key[fb, 4] = tag + np.uint64(1)  # +1: 0 marks an empty entry
                frag_ports[fb, 0] = sport
                frag_ports[fb, 1] = dport
            elif fr == FRAG_LATER:
                if same:
                    sport = int(frag_ports[fb, 0])
                    dport = int(frag_ports[fb, 1])
                else:
                    sport = 0
                    dport = 0
                    orphan = True
        icmp_type = sport
        if (proto == PROTO_ICMP or proto == PROTO_ICMP6) and not orphan:
            cp = icmp_counterpart[1 if proto == PROTO_ICMP6 else 0, sport & 0xFF]
            if cp >= 0:
                dport = int(cp)

        # canonical key: endpoint A sorts first
        sh, sl, dh, dl = src_hi[p], src_lo[p], dst_hi[p], dst_lo[p]
        a_sent = sh < dh or (sh == dh and (sl < dl or (sl == dl and sport <= dport)))
        if a_sent:
            w[0] = sh
            w[1] = sl
            w[2] = dh
            w[3] = dl
            a_port, b_port = sport, dport
        else:
            w[0] = dh
            w[1] = dl
            w[2] = sh
            w[3] = sl
            a_port, b_port = dport, sport
        w[4] = (
            (np.uint64(proto) << np.uint64(32))
            | (np.uint64(a_port) << np.uint64(16))
            | np.uint64(b_port)
        )
        w[5] = (np.uint64(vlan[p] + 1) << np.uint64(16)) | np.uint64(inner_vlan[p] + 1)
        h = key_hash(w)

        flags = int(tcp_flags[p]) if proto == PROTO_TCP else 0
        seq = np.int64(seq_[p])
        cls = int(proto_class[proto])
        s, pos = index_find(index, K, h, w[0], w[1], w[2], w[3], w[4], w[5])
        if s >= 0:
            split = now - L[s, L_TS_LAST] >= timeout_ns[cls]
            if not split and proto == PROTO_TCP:
                split = closed_for_reuse(s, flags, seq, L, U)
            if split:
                emit_row(s, L, I, U, K, H, heads, OK, OL, OI, OU, var, M)
                release(s, index, L, N, U, free, blk_free, M)
                s, pos = index_find(index, K, h, w[0], w[1], w[2], w[3], w[4], w[5])
        if s < 0:
            if M[M_LIVE] >= M[M_MAX_LIVE]:
                victim = oldest_live(L, M)
                emit_row(victim, L, I, U, K, H, heads, OK, OL, OI, OU, var, M)
                release(victim, index, L, N, U, free, blk_free, M)
                M[M_EVICTED] += 1
                s, pos = index_find(index, K, h, w[0], w[1], w[2], w[3], w[4], w[5])
            M[M_FREE_TOP] -= 1
            s = free[M[M_FREE_TOP]]
            new_slot(
                p, s, a_sent, proto, cls, flags, icmp_type, w, a_port, b_port, h, pos,
                index, index_, ts, vlan, inner_vlan, svc_tcp, svc_udp, icmp_reply,
                K, L, N, I, U, H, M,
            )  # fmt: skip
        elif M[M_TAIL0 + cls] != s:  # most recently active goes last
            list_unlink(s, N, U, M)
            list_append(s, N, U, M)

        # counters
        pl = int(payload_len[p])
        if a_sent:
            if L[s, L_PKTS_A] == 0:
                L[s, L_MAC_A] = np.int64(src_mac[p])
                U[s, U_MACOK_A] = has_mac[p]
            L[s, L_PKTS_A] += 1
            L[s, L_BYTES_A] += pl
            L[s, L_IPB_A] += ip_len[p]
        else:
            if L[s, L_PKTS_B] == 0:
                L[s, L_MAC_B] = np.int64(src_mac[p])
                U[s, U_MACOK_B] = has_mac[p]
            L[s, L_PKTS_B] += 1
            L[s, L_BYTES_B] += pl
            L[s, L_IPB_B] += ip_len[p]
        if now > L[s, L_TS_LAST]:
            L[s, L_TS_LAST] = now

        fresh = True
        if proto == PROTO_TCP:
            fresh = tcp_packet(s, a_sent, flags, seq, pl, L, U, I, H)
        elif proto == PROTO_UDP:
            is_orig = (U[s, U_ORIG_IS_A] != 0) == a_sent
            check_history(s, is_orig, HIST_DATA, ord("D"), U, I, H)
        cap = int(caplen_payload[p])
        if cap > 0 and fresh:
            add_head(
                s, a_sent, int(payload_off[p]), cap, cap < pl, buf, heads, blk_free, L, I, U, M
            )
    return DONE, n


@kernel
def flush_all(
    K: np.ndarray, L: np.ndarray, N: np.ndarray, I: np.ndarray, U: np.ndarray, H: np.ndarray,
    heads: np.ndarray, index: np.ndarray, free: np.ndarray, blk_free: np.ndarray,
    M: np.ndarray, OK: np.ndarray, OL: np.ndarray, OI: np.ndarray, OU: np.ndarray,
    var: np.ndarray,
) -> int:  # fmt: skip
    """Emit every live connection (the end of the capture); NEED_OUT when rows run out."""
    for c in range(N_CLASSES):
        while M[M_HEAD0 + c] >= 0:
            if not room_for_rows(1, OL, var, M):
                return NEED_OUT
            s = M[M_HEAD0 + c]
            emit_row(s, L, I, U, K, H, heads, OK, OL, OI, OU, var, M)
            release(s, index, L, N, U, free, blk_free, M)
    return DONE
