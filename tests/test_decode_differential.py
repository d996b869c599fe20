"""The vectorised decoder and the one-packet-at-a-time dpkt reference agree on every
per-packet field of every packet, and on the skip counts, for every public capture and
every capture in sample_pcaps/."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import SAMPLES, public_params

from analyzer.decode import decode_batch
from analyzer.reader import Capture
from analyzer.refdecode import decode_record

FIELDS = (
    "kind",
    "src_mac",
    "dst_mac",
    "has_mac",
    "vlan",
    "inner_vlan",
    "ip_version",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "proto",
    "ip_len",
    "frag",
    "ip_id",
    "sport",
    "dport",
    "has_l4",
    "tcp_flags",
    "seq",
    "ack",
    "payload_len",
    "caplen_payload",
)
# Captures where the two legitimately differ: none so far. Add "path": "reason" here.
KNOWN_DIFFERENCES: dict[str, str] = {}
MAX_PACKETS = 20_000  # the reference is slow; larger captures are compared on a prefix


def sample_captures() -> list:
    files = sorted(
        p for pat in ("*.pcap", "*.pcapng", "*.gz") for p in SAMPLES.glob(pat) if p.is_file()
    )
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="sample_pcaps/ is empty"))]
    return [pytest.param(p, id=p.name) for p in files]


def compare(path: Path) -> None:
    fast_skipped: Counter[str] = Counter()
    ref_skipped: Counter[str] = Counter()
    seen = 0
    with Capture(path, batch_packets=4096) as cap:
        for raw in cap.batches():
            pb = decode_batch(raw, fast_skipped)
            fast = {int(i): k for k, i in enumerate(pb.index)}
            for j in range(raw.n):
                off, cl = int(raw.data_off[j]), int(raw.caplen[j])
                data = raw.buf[off : off + cl].tobytes()
                ref = decode_record(data, int(raw.linktype[j]), int(raw.wirelen[j]))
                idx = int(raw.index[j])
                where = f"{path.name} record {idx}"
                if isinstance(ref, str):
                    ref_skipped[ref] += 1
                    assert idx not in fast, f"{where}: reference skips ({ref}), fast keeps"
                    continue
                assert idx in fast, f"{where}: fast path drops a packet the reference keeps"
                k = fast[idx]
                got = {name: int(getattr(pb, name)[k]) for name in FIELDS}
                got["payload_off"] = int(pb.payload_off[k]) - off if ref["payload_len"] else 0
                want = {name: int(ref[name]) for name in FIELDS}
                want["payload_off"] = int(ref["payload_off"]) if ref["payload_len"] else 0
                assert int(pb.ts_ns[k]) == int(raw.ts_ns[j])
                diff = {n: (got[n], want[n]) for n in want if got[n] != want[n]}
                assert not diff, f"{where}: fields differ (fast, reference): {diff}"
            seen += raw.n
            if seen >= MAX_PACKETS:
                break
    assert fast_skipped == ref_skipped


@pytest.mark.parametrize("cap", public_params())
def test_public_capture_fast_equals_reference(cap) -> None:  # noqa: ANN001
    if cap.rel in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[cap.rel])
    compare(cap.path)


@pytest.mark.parametrize("path", sample_captures())
def test_sample_capture_fast_equals_reference(path: Path) -> None:
    if path.name in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[path.name])
    compare(path)
