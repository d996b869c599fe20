"""epm.epm_ports on DCE/RPC bytes built here as Windows' endpoint mapper sends them
(DCE 1.1 RPC 12.6; C706 appendix O ept_map; tower floors as Zeek's dce_rpc-epm.pac)."""

from __future__ import annotations

import struct
import uuid

from analyzer.epm import epm_ports

EPM_UUID = uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa")  # endpoint mapper v3
NDR_UUID = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")  # NDR transfer syntax v2


def pdu(ptype: int, body: bytes, call_id: int = 1) -> bytes:
    """Connection-oriented PDU header, little-endian drep (0x10)."""
    return (
        struct.pack("<BBBB4sHHI", 5, 0, ptype, 3, b"\x10\x00\x00\x00", 16 + len(body), 0, call_id)
        + body
    )


def bind() -> bytes:
    ctx = struct.pack("<HBB", 0, 1, 0) + EPM_UUID.bytes_le + struct.pack("<HH", 3, 0)
    ctx += NDR_UUID.bytes_le + struct.pack("<I", 2)
    return pdu(11, struct.pack("<HHIB3x", 5840, 5840, 0, 1) + ctx)


def bind_ack() -> bytes:
    sec = b"135\x00"
    body = struct.pack("<HHIH", 5840, 5840, 0x12345, len(sec)) + sec
    body += b"\x00" * (-(len(body) + 16) % 4)
    body += struct.pack("<B3x", 1) + struct.pack("<HH", 0, 0) + NDR_UUID.bytes_le
    body += struct.pack("<I", 2)
    return pdu(12, body)


def tower(port: int) -> bytes:
    """Five floors: interface uuid, NDR, RPC CO (0x0b), TCP port (0x07), IP (0x09)."""

    def floor(lhs: bytes, rhs: bytes) -> bytes:
        return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs

    iface = uuid.UUID("12345678-1234-abcd-ef00-0123456789ab")
    floors = [
        floor(b"\x0d" + iface.bytes_le + struct.pack("<H", 1), struct.pack("<H", 0)),
        floor(b"\x0d" + NDR_UUID.bytes_le + struct.pack("<H", 2), struct.pack("<H", 0)),
        floor(b"\x0b", struct.pack("<H", 0)),
        floor(b"\x07", struct.pack(">H", port)),
        floor(b"\x09", bytes([192, 168, 1, 20])),
    ]
    return struct.pack("<H", len(floors)) + b"".join(floors)


def request() -> bytes:
    stub = b"\x00" * 24  # the object uuid pointer and map tower: not read by the parser
    return pdu(0, struct.pack("<IHH", len(stub), 0, 3) + stub)


def response(*ports: int) -> bytes:
    towers = [tower(p) for p in ports]
    stub = b"\x00" * 20 + struct.pack("<I", len(towers))
    stub += struct.pack("<III", 4, 0, len(towers))
    stub += b"".join(struct.pack("<I", 3 + i) for i in range(len(towers)))
    for t in towers:
        stub += struct.pack("<II", len(t), len(t)) + t + b"\x00" * (-len(t) % 4)
    stub += struct.pack("<I", 0)  # status
    return pdu(2, struct.pack("<IHBB", len(stub), 0, 0, 0) + stub)


def test_the_port_in_the_returned_tower() -> None:
    head = bind_ack() + response(49671)
    assert len(head) <= 256  # fits flows' HEAD_BYTES
    assert epm_ports(head) == (49671,)


def test_several_towers() -> None:
    assert epm_ports(bind_ack() + response(49671, 50123)) == (49671, 50123)


def test_no_answer_captured() -> None:
    assert epm_ports(None) is None
    assert epm_ports(b"") is None
    assert epm_ports(bind_ack()) is None  # the answer fell outside the head
    assert epm_ports(b"HTTP/1.1 200 OK\r\n\r\n") is None


def test_cut_answer_is_no_answer_but_never_an_error() -> None:
    full = bind_ack() + response(49671)
    for cut in range(len(full)):
        got = epm_ports(full[:cut])
        assert got is None or got == () or got == (49671,)
    assert epm_ports(full[: len(bind_ack()) + 30]) is None


def test_request_side_is_not_an_answer() -> None:
    assert epm_ports(bind() + request()) is None
