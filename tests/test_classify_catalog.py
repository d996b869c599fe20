"""Every entry of the shipped catalog, table-driven: a connection in the documented
direction between compatible roles gets the entry's status verdict, and the reversed one
(the accepting side opening it) gets wrong_direction where the entry is forward.

The cases are derived from the catalog itself, so a new entry is tested the moment it is
added; test_every_entry_has_a_case fails when an entry's case cannot be built."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
from conftest import flow_row

from analyzer.classify import STATUS_VERDICT, classify
from analyzer.flows import FlowResult
from analyzer.site import parse_site

try:
    from analyzer.signatures import Signature, load_catalog

    CATALOG = load_catalog()
    SKIP = ""
except (ImportError, Exception) as exc:  # the loader is written in parallel
    CATALOG = None
    SKIP = f"signature catalog not loadable yet: {exc}"

T0 = pd.Timestamp("2024-05-01T10:00:00Z")
ORIG_LOCAL = "10.1.0.1"
RESP_LOCAL = "10.1.0.2"
RESP_INTERNET = "198.51.100.20"
ICMP_REPLY = {("icmp", 8): 0, ("icmp6", 128): 129}
PAYLOADS = {"http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not_http": b"\x00\x01\x02binary"}


@dataclass(frozen=True)
class Case:
    sig_id: str
    proto: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    orig_role: str | None
    resp_role: str | None
    head: bytes | None
    verdict: str
    system: str | None


def _role(roles: frozenset[str]) -> str | None:
    return sorted(roles)[0] if roles else None


def _ports(sig: Signature) -> tuple[int, int]:
    port = min(sig.ports)
    if sig.transport in ("icmp", "icmp6"):
        return port, ICMP_REPLY.get((sig.transport, port), 0)
    orig_p = min(sig.orig_ports) if sig.orig_ports else 50001
    return orig_p, port


def forward_case(sig: Signature) -> Case:
    orig_role, resp_role = _role(sig.orig_roles), _role(sig.resp_roles)
    if sig.generic and sig.system != "common" and not (orig_role or resp_role):
        raise ValueError(f"{sig.id}: generic entry without roles can never apply")
    resp_h = RESP_INTERNET if sig.scope == "internet" else RESP_LOCAL
    orig_p, resp_p = _ports(sig)
    verdict, system = STATUS_VERDICT[sig.status], sig.system
    if sig.system == "common":
        verdict = "unmonitored"  # infrastructure between hosts without roles
    return Case(
        sig.id,
        sig.transport,
        ORIG_LOCAL,
        orig_p,
        resp_h,
        resp_p,
        orig_role,
        resp_role,
        PAYLOADS.get(sig.payload or ""),
        verdict,
        system,
    )


def reversed_case(sig: Signature) -> Case | None:
    """The accepting side opens the documented port. None where that cannot be told from
    the documented direction: either-direction entries, the same roles on both sides, a
    side documented as "any host" (empty roles: the reversed opener is "any host" too),
    or an any-to-any sibling on the same port (common.icmp-echo covers a reversed ping).
    A reversed C.M.I. online service is a connection towards the C.M.I.: inbound_to_cmi."""
    if sig.direction != "forward" or sig.orig_roles == sig.resp_roles:
        return None
    if "cmi" not in sig.orig_roles:
        if not sig.orig_roles or not sig.resp_roles:
            return None
        siblings = [CATALOG.for_port(sig.transport, p) for p in sig.ports]
        if any(not s.orig_roles and not s.resp_roles for group in siblings for s in group):
            return None
    fwd = forward_case(sig)
    orig_role, resp_role = fwd.resp_role, fwd.orig_role
    verdict = "inbound_to_cmi" if resp_role == "cmi" else "wrong_direction"
    system = "cmi" if verdict == "inbound_to_cmi" else sig.system
    return Case(
        sig.id,
        sig.transport,
        RESP_LOCAL,
        fwd.orig_p,
        ORIG_LOCAL,
        fwd.resp_p,
        orig_role,
        resp_role,
        fwd.head,
        verdict,
        system,
    )


def _build(builder) -> list:
    if CATALOG is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP))]
    params = []
    for sig in CATALOG.signatures:
        try:
            case = builder(sig)
        except ValueError as exc:
            params.append(pytest.param(str(exc), id=sig.id))
            continue
        if case is not None:
            params.append(pytest.param(case, id=sig.id))
    return params


def _run(case: Case) -> dict[str, object]:
    hosts = [(case.orig_h, case.orig_role), (case.resp_h, case.resp_role)]
    site_text = "".join(f'[[host]]\nip = "{ip}"\nrole = "{r}"\n' for ip, r in hosts if r)
    site = parse_site(site_text, path="site.toml")
    row = flow_row(
        uid="C1",
        ts=T0,
        last_ts=T0 + pd.Timedelta(seconds=1),
        proto=case.proto,
        orig_h=case.orig_h,
        orig_p=case.orig_p,
        resp_h=case.resp_h,
        resp_p=case.resp_p,
        orig_evidence="syn" if case.proto == "tcp" else "first_packet",
        orig_pkts=3,
        resp_pkts=3,
        orig_bytes=40,
        resp_bytes=40,
        orig_ip_bytes=200,
        resp_ip_bytes=200,
        history="ShADadFf" if case.proto == "tcp" else "Dd",
        capture="t.pcap",
        _orig_head=case.head,
    )
    flows = pd.DataFrame([row])
    ips = [case.orig_h, case.resp_h]
    result = FlowResult(
        flows=flows,
        hosts=pd.DataFrame(
            {"ip": ips, "mac": [None, None], "first_ts": T0, "last_ts": T0, "pkts": 3, "bytes": 200}
        ),
        arp=pd.DataFrame(columns=["ip", "mac", "ts"]),
        dns=pd.DataFrame(columns=["ts", "client", "server", "payload"]),
    )
    return classify(result, CATALOG, site).flows.iloc[0].to_dict()


@pytest.mark.parametrize("case", _build(forward_case))
def test_documented_direction_gets_the_status_verdict(case):
    assert isinstance(case, Case), case
    got = _run(case)
    assert (got["verdict"], got["system"], got["signature_id"]) == (
        case.verdict,
        case.system,
        case.sig_id,
    ), got["reason"]


@pytest.mark.parametrize("case", _build(reversed_case))
def test_reversed_direction_is_wrong_direction(case):
    assert isinstance(case, Case), case
    got = _run(case)
    assert (got["verdict"], got["system"]) == (case.verdict, case.system), got["reason"]
    if case.verdict == "wrong_direction":
        assert got["signature_id"] == case.sig_id


@pytest.mark.skipif(CATALOG is None, reason=SKIP)
def test_every_entry_has_a_case():
    built = {p.id for p in _build(forward_case) if isinstance(p.values[0], Case)}
    assert built == {s.id for s in CATALOG.signatures}
    reversible = [s for s in CATALOG.signatures if reversed_case(s) is not None]
    assert len(reversible) >= 30  # forward GEMOS/Sesam/C.M.I. rows with distinct roles
