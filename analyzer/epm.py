"""The TCP ports an MS-RPC endpoint mapper named in its `ept_map` answers.

    epm_ports(resp_head) -> tuple[int, ...] | None   # None: no ept_map answer in the bytes

Input: the responder's first payload bytes of a tcp/135 connection (flows' `_resp_head`):
a stream of DCE/RPC connection-oriented PDUs (DCE 1.1 RPC, chapter 12.6: bind_ack, then
the response to the client's ept_map request). In each response PDU's stub
(C706 appendix O, `ept_map` out-parameters, NDR little or big endian as its `drep` says):
the entry handle (20 bytes), num_towers, the towers' conformant varying array (max_count,
offset, actual_count, one referent id per tower), then each tower as a conformant byte
array (max_count, length, octets, aligned to 4). A tower is floor_count (2 bytes LE) and
floors, each lhs_len (LE), lhs (first byte: protocol id), rhs_len (LE), rhs; the floor with
protocol id 0x07 (DOD TCP) holds the port, big-endian. This is the floor Zeek's DCE-RPC
analyzer reads (dce_rpc-epm.pac, `epm_tower_floor`). Every length is checked before it is
read; a cut or odd PDU yields what was parsed up to it.
"""

from __future__ import annotations

import struct

PDU_HEADER = 16  # rpc_vers, minor, ptype, flags, drep[4], frag_len, auth_len, call_id
PTYPE_RESPONSE = 2  # DCE 1.1 RPC 12.6.4.10
RESPONSE_BODY = 8  # alloc_hint, p_cont_id, cancel_count, reserved
CONTEXT_HANDLE = 20  # ndr_context_handle: attributes + uuid
PROTO_TCP = 0x07  # tower floor protocol id "DOD TCP" (C706 appendix I)
MAX_TOWERS = 64  # bound on the towers read from one answer


def epm_ports(head: bytes | None) -> tuple[int, ...] | None:
    """TCP ports in the ept_map answers of `head`, in order; None when `head` holds no
    parseable DCE/RPC response PDU (the answer was not captured)."""
    if not head:
        return None
    data = bytes(head)
    ports: list[int] = []
    seen_response = False
    pos = 0
    while pos + PDU_HEADER <= len(data):
        vers, ptype, drep0 = data[pos], data[pos + 2], data[pos + 4]
        if vers != 5:
            break
        little = bool(drep0 & 0x10)
        frag_len = int.from_bytes(data[pos + 8 : pos + 10], "little" if little else "big")
        if frag_len < PDU_HEADER:
            break
        pdu = data[pos : pos + frag_len]  # may be cut by the head's end
        if ptype == PTYPE_RESPONSE:
            found = _tower_ports(pdu[PDU_HEADER + RESPONSE_BODY :], little)
            if found is not None:
                seen_response = True
                ports.extend(found)
        pos += frag_len
    return tuple(ports) if seen_response else None


def _tower_ports(stub: bytes, little: bool) -> list[int] | None:
    """Ports of the TCP floors in an ept_map response stub; None if the stub is too short
    to hold the tower array's header."""
    u32 = "<I" if little else ">I"
    pos = CONTEXT_HANDLE
    if pos + 16 > len(stub):
        return None
    pos += 4  # num_towers
    pos += 8  # max_count, offset
    (actual,) = struct.unpack_from(u32, stub, pos)
    pos += 4
    actual = min(actual, MAX_TOWERS)
    pos += 4 * actual  # one referent id per tower
    ports: list[int] = []
    for _ in range(actual):
        if pos + 8 > len(stub):
            break
        (length,) = struct.unpack_from(u32, stub, pos + 4)
        pos += 8
        tower = stub[pos : pos + length]
        port = _tcp_floor(tower)
        if port is not None:
            ports.append(port)
        pos += length + (-length % 4)
    return ports


def _tcp_floor(tower: bytes) -> int | None:
    if len(tower) < 2:
        return None
    count = int.from_bytes(tower[0:2], "little")
    pos = 2
    for _ in range(count):
        if pos + 2 > len(tower):
            return None
        lhs_len = int.from_bytes(tower[pos : pos + 2], "little")
        lhs = tower[pos + 2 : pos + 2 + lhs_len]
        pos += 2 + lhs_len
        if pos + 2 > len(tower) or len(lhs) != lhs_len:
            return None
        rhs_len = int.from_bytes(tower[pos : pos + 2], "little")
        rhs = tower[pos + 2 : pos + 2 + rhs_len]
        pos += 2 + rhs_len
        if lhs_len >= 1 and lhs[0] == PROTO_TCP and rhs_len == 2 and len(rhs) == 2:
            return int.from_bytes(rhs, "big")
    return None
