"""Connection counts on the public captures against tshark's conversation counts
(MANIFEST.tsv: `tshark -z conv,tcp` / `conv,udp`, tshark 4.0). Where pcapclass counts
differently on purpose, the capture is listed below with its count and the reason."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import PublicCapture, public_params

from analyzer.decode import decode_batch
from analyzer.flows import FlowResult, FlowTable
from analyzer.reader import Capture

# capture -> (tcp connections, udp connections, why pcapclass differs from tshark)
EXPECTED_DIFFERENCES: dict[str, tuple[int, int, str]] = {
    "scapy/netflowv9.pcap": (
        0,
        4,
        "UDP idle timeout (Zeek: 60 s): each exporter sends again after 116 s and 348 s, "
        "so its conversation is two connections; tshark has no timeout",
    ),
    "ICS-Security-Tools/m-send-req.mms.pcap": (
        3,
        0,
        "TCP idle timeout (Zeek: 300 s): the transfer pauses 311 s and 413 s, so "
        "three connections; tshark keeps one conversation",
    ),
    "ICS-Security-Tools/Sample_File_MMS_and_GOOSE.pcap": (
        16,
        8,
        "tshark 4.0 lists the SNMP exchanges 172.16.0.101:1076 <-> 172.16.202.0:161 and "
        "<-> 172.16.201.0:161 twice each (the first request as a conversation of its "
        "own); they are one 5-tuple each",
    ),
}


def connection_counts(capture: PublicCapture) -> tuple[FlowResult, Counter[str]]:
    skipped: Counter[str] = Counter()
    table = FlowTable(capture_name=capture.path.name)
    with Capture(str(capture.path)) as cap:
        for raw in cap.batches():
            table.add(decode_batch(raw, skipped))
    return table.finish(), skipped


def by_proto(result: FlowResult) -> tuple[int, int]:
    proto = result.flows["proto"]
    return int((proto == "tcp").sum()), int((proto == "udp").sum())


@pytest.mark.parametrize("capture", public_params())
def test_connection_counts_match_tshark(capture: PublicCapture) -> None:
    result, _ = connection_counts(capture)
    got = by_proto(result)
    if capture.rel in EXPECTED_DIFFERENCES:
        tcp, udp, _reason = EXPECTED_DIFFERENCES[capture.rel]
        assert got == (tcp, udp)
        assert got != (capture.tcp_convs, capture.udp_convs), "difference gone: drop the entry"
    else:
        assert got == (capture.tcp_convs, capture.udp_convs)
    flows = result.flows
    assert flows["uid"].is_unique
    assert int(flows["orig_pkts"].sum() + flows["resp_pkts"].sum()) <= capture.packets


def test_every_listed_difference_names_a_capture_in_the_manifest() -> None:
    from conftest import PUBLIC_CAPTURES

    if not PUBLIC_CAPTURES:
        pytest.skip("public captures not present")
    assert set(EXPECTED_DIFFERENCES) <= {c.rel for c in PUBLIC_CAPTURES}


def test_every_ip_packet_lands_in_exactly_one_connection() -> None:
    """On a capture with TCP, UDP and ICMP: packets in flows + ARP/skipped = all."""
    from conftest import PUBLIC_CAPTURES

    wanted = "ICS-Security-Tools/Sample_File_MMS_and_GOOSE.pcap"
    capture = next((c for c in PUBLIC_CAPTURES if c.rel == wanted), None)
    if capture is None:
        pytest.skip("public captures not present")
    result, skipped = connection_counts(capture)
    flows = result.flows
    in_flows = int(flows["orig_pkts"].sum() + flows["resp_pkts"].sum())
    assert in_flows + sum(skipped.values()) == capture.packets  # no ARP in this capture
