"""Verdicts for connections: flows + signature catalog + site -> flows with service,
system, signature_id, verdict, severity, reason; findings; hosts. Pure functions, no I/O.

    classified = classify(flow_result, catalog, site)   # site may be None
    classified.flows / .findings / .hosts               # columns of schema.FLOWS/...

One connection is decided in this order (contract "Verdicts and severities", "Precise
rules"); every rule that applies proposes a verdict and the most severe wins, ties broken
by schema.VERDICT_PRECEDENCE:
  1. signatures on the port (transport, responder port; ICMP: the request type), narrowed
     by originator port and payload (12079 http / not_http); a generic-port signature
     only where an endpoint holds a role of its system. A signature fits when the
     originator/responder roles are compatible (unknown = compatible): status verdict.
     Opened by the side that should only accept it: wrong_direction. A common signature
     fits only where each endpoint's role may use it, and a side documented as "any
     host" is no device whose documents list its own ports (catalog [[infrastructure]]).
  2. anything opened towards a C.M.I. other than its documented local services from a
     local host: inbound_to_cmi (critical from outside the local networks).
  3. a host with a role using a port no signature documents for it: unexpected_port.
  4. otherwise unmonitored (system "common" for recognised infrastructure).
Mid-stream TCP connections and answers to broadcasts are also tried the other way round;
follow-on connections (TFTP transfers, MS-RPC dynamic ports) take their request's verdict;
in a one-way capture a wrong_direction on one-sided evidence says so; site allows turn
findings into expected last.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, SupportsIndex

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .epm import epm_ports
from .flows import FlowResult
from .health import is_one_way_mirror, tcp_direction_counts
from .roles import (
    broadcast_answers,
    broadcast_flags,
    default_local_flags,
    infer_roles,
    local_mask,
    own_macs,
    vendor,
)
from .schema import ROLE_SYSTEM, SEVERITY_RANK, VERDICT_PRECEDENCE, VERDICT_SEVERITY
from .services import dns_answers, head_buffers, http_request_mask, recognise_column
from .signatures import NOT_A_SERVICE, Catalog, Signature, port_ranges
from .site import DEFAULT_SCAN_THRESHOLD, Locality, Site

STATUS_VERDICT: dict[str, str] = {  # signature status -> verdict (contract table)
    "active": "expected",
    "auto-assigned": "expected",
    "rare": "rare",
    "obsolete": "obsolete",
    "reserved": "reserved",
    "placeholder": "reserved",
}
# Titles of the source documents (spec/systems.md headings), used in reasons.
DOC_TITLES: dict[str, str] = {
    "000_3d736c8ff9cc7ce8.txt": "Portnummern im GEMOS4-System",
    "001_fc41212e649194d6.txt": "Netzwerkverbindungen und verwendete Ports",
    "002_c6f5411368648828.txt": "CMI-Portfreigabe",
}
ROLE_LABEL: dict[str, str] = {
    "gemos_server": "GEMOS server",
    "gemos_client": "GEMOS client",
    "sescomm_server": "SesComm server",
    "sesam_client": "Sesam client",
    "isenet": "ISENet",
    "sesam_db": "Sesam database",
    "cmi": "C.M.I.",
    "comserver": "com server",
}
ICMP_TRANSPORTS = ("icmp", "icmp6")
# ICMP types that open an exchange (RFC 792 / RFC 4443); errors and replies open nothing.
ICMP_REQUEST_TYPES: dict[str, frozenset[int]] = {
    "icmp": frozenset({8, 13, 15, 17}),
    "icmp6": frozenset({128}),
}
ICMP_NAMES: dict[tuple[str, int], str] = {
    ("icmp", 8): "echo request",
    ("icmp6", 128): "echo request",
}
# Stand-ins for the two addresses in the reason of a class of flows (decide_all); never
# part of an address or of any other text, replaced by render().
ORIG, RESP = "\x1e", "\x1f"
MIDSTREAM = frozenset({"port", "first_packet"})  # orig_evidence without a handshake seen
HEAD_COLUMNS = ("_orig_head", "_resp_head")  # flows' internal payload columns
TFTP_PORT = 69  # RFC 1350
MSRPC_PORT = 135  # endpoint mapper; dynamic ports follow (best effort)
# Windows' dynamic port range since Vista / Server 2008 (Microsoft KB 929851), the
# fallback when the endpoint mapper's answer was not captured.
DYNAMIC_PORTS = range(49152, 65536)


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    verdict: str
    severity: str
    system: str | None
    signature_id: str | None
    reason: str
    fits: bool = False  # from a signature whose direction and roles fit this orientation


@dataclass
class Decisions:
    """The decision of every flow: a table of distinct decisions and each flow's row in
    it. Flows of one class share one Decision, so output columns are filled per class
    and mapped back (a numpy take), not built per flow."""

    table: list[Decision]
    index: np.ndarray  # int64 per flow: its row in `table`

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: SupportsIndex) -> Decision:
        return self.table[self.index[i]]

    def __setitem__(self, i: SupportsIndex, decision: Decision) -> None:
        self.index[i] = len(self.table)
        self.table.append(decision)

    def copy(self) -> Decisions:
        return Decisions(list(self.table), self.index.copy())

    def column(self, attr: str) -> np.ndarray:
        """One attribute of every flow's decision, as an object array."""
        return _objects([getattr(d, attr) for d in self.table])[self.index]

    def remap(self, rows: np.ndarray, change: Callable[[Decision], Decision]) -> None:
        """Replace the decision of each of `rows` by change(decision), called once per
        distinct decision among them."""
        if not len(rows):
            return
        old, inverse = np.unique(self.index[rows], return_inverse=True)
        start = len(self.table)
        self.table += [change(self.table[k]) for k in old.tolist()]
        self.index[rows] = start + inverse.reshape(-1)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass
class Classified:
    flows: pd.DataFrame  # schema.FLOWS columns (+ the internal "_" columns)
    findings: pd.DataFrame  # schema.FINDINGS columns
    hosts: pd.DataFrame  # schema.HOSTS columns
    dns: pd.DataFrame  # services.dns_answers of the capture
    skipped: Counter[str]  # e.g. dns_malformed


@dataclass(frozen=True)
class FlowView:
    """The fields of one connection the decision depends on."""

    proto: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    kind: str  # "TCP connection", "TCP connection attempt (rejected)", ...
    midstream: bool  # TCP without handshake seen
    payload: str | None  # "http" / "not_http" from the originator's first bytes, None
    bcast: bool  # responder is broadcast/multicast
    reply: bool  # an answer to a broadcast request

    def reversed(self) -> FlowView:
        return replace(
            self,
            orig_h=self.resp_h,
            orig_p=self.resp_p,
            resp_h=self.orig_h,
            resp_p=self.orig_p,
            payload=None,
            reply=False,
        )

    @property
    def port_key(self) -> int:
        return self.orig_p if self.proto in ICMP_TRANSPORTS else self.resp_p


@dataclass(frozen=True)
class Context:
    signatures: Mapping[tuple[str, int], tuple[Signature, ...]]
    roles: Mapping[str, frozenset[str]]
    primary: Mapping[str, str]
    is_local: Callable[[str], bool]
    resolved: Mapping[str, frozenset[str]]  # DNS name -> addresses in this capture
    names: Mapping[str, frozenset[str]]  # address -> DNS names that resolved to it
    cmi_local: tuple[Signature, ...]  # documented services of a C.M.I. towards it
    # declared role -> common signatures it may use (catalog [[infrastructure]])
    infrastructure: Mapping[str, frozenset[str]] = field(default_factory=dict)
    any_host: frozenset[str] = frozenset(ROLE_SYSTEM)  # roles an "any host" side includes
    role_docs: Mapping[str, str] = field(default_factory=dict)  # role -> what is documented

    def roles_of(self, ip: str) -> frozenset[str]:
        return self.roles.get(ip, frozenset())

    def names_of(self, ip: str) -> frozenset[str]:
        return self.names.get(ip, frozenset())

    def host_class(self, ip: str) -> tuple[Any, ...]:
        """Everything a decision reads about one host besides its address."""
        return (self.roles_of(ip), self.primary.get(ip), self.is_local(ip), self.names_of(ip))

    def bound(self, orig: str, resp: str) -> Context:
        """This context for a class of flows: the placeholders ORIG and RESP stand for
        hosts like `orig` and `resp`."""
        hosts = ((ORIG, orig), (RESP, resp))
        local = {token: self.is_local(ip) for token, ip in hosts}
        return replace(
            self,
            roles={token: self.roles_of(ip) for token, ip in hosts},
            primary={token: self.primary[ip] for token, ip in hosts if ip in self.primary},
            is_local=local.__getitem__,
            names={token: self.names_of(ip) for token, ip in hosts},
        )


# --- entry point ------------------------------------------------------------------------


def classify(result: FlowResult, catalog: Catalog, site: Site | None) -> Classified:
    """Fill service/system/signature_id/verdict/severity/reason of every flow and build
    the findings and hosts tables."""
    prepared = prepare(result, catalog, site)
    flows = prepared.chunk(0, len(prepared.flows))
    return Classified(flows, prepared.findings, prepared.hosts, prepared.dns, prepared.skipped)


@dataclass
class Prepared:
    """Every flow decided, findings and hosts built, but the per-flow output columns
    (decision columns, rendered reasons) not yet filled: chunk() fills them for a slice
    of rows, so a writer can go through a large capture a bounded slice at a time."""

    flows: pd.DataFrame  # the connection columns + service (payload heads dropped)
    decisions: Decisions
    findings: pd.DataFrame  # schema.FINDINGS columns
    hosts: pd.DataFrame  # schema.HOSTS columns
    dns: pd.DataFrame  # services.dns_answers of the capture
    skipped: Counter[str]  # e.g. dns_malformed

    def chunk(self, start: int, stop: int) -> pd.DataFrame:
        """Rows start..stop of the flows with their output columns (schema.FLOWS)."""
        part = Decisions(self.decisions.table, self.decisions.index[start:stop])
        return _with_decisions(self.flows.iloc[start:stop], part)  # copy-on-write

    def verdicts(self) -> np.ndarray:
        """The verdict of every flow (object array, shared strings)."""
        return self.decisions.column("verdict")


FINDING_INPUT = ["uid", "ts", "last_ts", "proto", "orig_h", "resp_h", "resp_p", "capture"] + [
    f"{side}_{what}" for what in ("pkts", "bytes") for side in ("orig", "resp")
]


def prepare(result: FlowResult, catalog: Catalog, site: Site | None) -> Prepared:
    """Decide every flow and build findings and hosts from the whole capture (roles, own
    MACs, DNS answers, follow-ons, one-way mirror, allows); see Prepared.chunk."""
    catalog = site_catalog(catalog, site)
    is_local = Locality(site.local_flags if site is not None else default_local_flags)
    skipped: Counter[str] = Counter()
    answers = dns_answers(result.dns, skipped=skipped)
    # no .copy(): pandas copy-on-write keeps result.flows as it was, without a deep copy
    flows = result.flows.reset_index(drop=True)
    macs = own_macs(flows, result.arp, result.hosts, is_local)
    roles = infer_roles(
        flows, result.hosts, result.arp, catalog, site, dns=answers, is_local=is_local, macs=macs
    )
    ctx = _context(catalog, roles, is_local, answers)
    flows["service"] = pd.Series(
        recognise_column(
            flows["proto"],
            flows["resp_p"],
            flows["_orig_head"] if "_orig_head" in flows.columns else None,
            flows["_resp_head"] if "_resp_head" in flows.columns else None,
        ),
        index=flows.index,
        dtype=object,
    )
    decisions = decide_all(flows, ctx)
    mapped = _mapper_answers(flows)
    # the payload heads have served (services, payload kind): let them go before the
    # findings, hosts and Arrow tables are built
    flows = flows.drop(columns=[c for c in HEAD_COLUMNS if c in flows.columns])
    decisions = follow_ons(flows, decisions, mapped)
    decisions = note_one_sided(flows, decisions)
    if site is not None:
        decisions = apply_allows(flows, decisions, site)
    threshold = site.scan_threshold if site is not None else DEFAULT_SCAN_THRESHOLD
    # findings and hosts from the decision columns, without every flow's rendered reason
    # (only each finding's first flow's reason is rendered)
    decided = flows[FINDING_INPUT].assign(
        **{a: decisions.column(a) for a in ("system", "signature_id", "verdict", "severity")}
    )
    reasons = [d.reason for d in decisions.table]

    def reason_of(rows: np.ndarray) -> list[str]:
        return render_column(
            reasons, decisions.index[rows], flows["orig_h"].iloc[rows], flows["resp_h"].iloc[rows]
        ).to_pylist()

    findings = build_findings(decided, scan_threshold=threshold, reason_of=reason_of)
    hosts = build_hosts(result, decided, roles, macs, site, is_local)
    del decided
    return Prepared(flows, decisions, findings, hosts, answers, skipped)


def site_catalog(catalog: Catalog, site: Site | None) -> Catalog:
    """The catalog as this site has it: its port overrides applied (checked against the
    catalog first: an unknown id is a SiteError naming the site file's line)."""
    if site is None:
        return catalog
    site.check_overrides(catalog)
    if not site.overrides:
        return catalog
    return catalog.with_overrides({k: sorted(v) for k, v in site.overrides.items()})


def _context(
    catalog: Catalog, roles: pd.DataFrame, is_local: Callable[[str], bool], answers: pd.DataFrame
) -> Context:
    index: dict[tuple[str, int], list[Signature]] = {}
    for sig in catalog.signatures:
        for port in sig.ports:
            index.setdefault((sig.transport, port), []).append(sig)
    resolved: dict[str, set[str]] = {}
    names: dict[str, set[str]] = {}
    for name, addr in zip(answers["qname"].tolist(), answers["answer"].tolist(), strict=True):
        resolved.setdefault(name, set()).add(addr)
        names.setdefault(addr, set()).add(name)
    cmi_local = tuple(
        s
        for s in catalog.signatures
        if s.system == "cmi" and s.scope != "internet" and _may_accept(s, "cmi")
    )
    with_roles = roles[roles["roles"].map(len) > 0]
    ips = with_roles["ip"].tolist()
    return Context(
        signatures={k: tuple(v) for k, v in index.items()},
        roles={ip: frozenset(r) for ip, r in zip(ips, with_roles["roles"].tolist(), strict=True)},
        primary=dict(zip(ips, with_roles["role"].tolist(), strict=True)),
        is_local=is_local,
        resolved={k: frozenset(v) for k, v in resolved.items()},
        names={k: frozenset(v) for k, v in names.items()},
        cmi_local=cmi_local,
        infrastructure=catalog.infrastructure_map(),
        any_host=catalog.any_host_roles(),
        role_docs=role_documents(catalog),
    )


def _may_accept(sig: Signature, role: str) -> bool:
    if role in sig.resp_roles:
        return True
    return sig.direction == "either" and role in sig.orig_roles


# --- one connection ---------------------------------------------------------------------


def _kind(proto: str, state: str, orig_p: int) -> str:
    if proto == "tcp":
        if state == "REJ":
            return "TCP connection attempt (rejected)"
        if state in ("S0", "SH", "RSTOS0"):
            return "TCP connection attempt (no answer)"
        return "TCP connection"
    if proto == "udp":
        return "UDP traffic"
    if proto in ICMP_TRANSPORTS:
        name = ICMP_NAMES.get((proto, orig_p), f"type {orig_p}")
        return f"{proto.upper()} {name}"
    return f"IP protocol {proto} traffic"


def decide_all(flows: pd.DataFrame, ctx: Context) -> Decisions:
    """decide() for every flow, once per class of flows that agree on everything a
    decision reads: transport, ports (the originator's only where a signature, ICMP or the
    reversed reading looks at it), connection state, payload kind where a signature asks,
    broadcast facts, and of each host its roles, locality and DNS names but not its
    address. A class's reason names its hosts by ORIG and RESP; render() fills them in per
    flow. A site with many hosts has few classes: tens instead of one per host pair."""
    n = len(flows)
    if not n:
        return Decisions([], np.zeros(0, dtype=np.int64))
    proto = flows["proto"].to_numpy(dtype=object)
    orig_p = flows["orig_p"].to_numpy(dtype=np.int64)
    resp_p = flows["resp_p"].to_numpy(dtype=np.int64)
    tcp = proto == "tcp"
    icmp = np.isin(proto, ICMP_TRANSPORTS)
    midstream = tcp & np.isin(flows["orig_evidence"].to_numpy(dtype=object), list(MIDSTREAM))
    bcast = broadcast_flags(flows)
    reply = broadcast_answers(flows)
    exact = icmp | midstream | reply | _on_ports(proto, resp_p, ctx, lambda s: s.orig_ports)
    payload = _payload_codes(flows, tcp & _on_ports(proto, resp_p, ctx, lambda s: s.payload))
    codes, addresses = pd.factorize(pd.concat([flows["orig_h"], flows["resp_h"]]))
    host_class = _host_classes(ctx, np.asarray(addresses, dtype=object))
    keys = pd.DataFrame(
        {
            "proto": pd.factorize(proto)[0],
            "orig": host_class[codes[:n]],
            "resp": host_class[codes[n:]],
            "orig_p": np.where(exact, orig_p, -1),
            "resp_p": resp_p,
            "state": pd.factorize(flows["conn_state"])[0],
            "midstream": midstream,
            "payload": payload,
            "bcast": bcast,
            "reply": reply,
        }
    )
    group = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    _, first = np.unique(group, return_index=True)
    orig_h, resp_h = flows["orig_h"].to_numpy(dtype=object), flows["resp_h"].to_numpy(dtype=object)
    state = flows["conn_state"].to_numpy(dtype=object)
    decided = []
    for i in first.tolist():
        op, rp = int(orig_p[i]), int(resp_p[i])
        view = FlowView(
            proto[i],
            ORIG,
            op,
            RESP,
            rp,
            _kind(proto[i], state[i], op),
            bool(midstream[i]),
            PAYLOAD_KINDS[payload[i]],
            bool(bcast[i]),
            bool(reply[i]),
        )
        decided.append(decide(ctx.bound(orig_h[i], resp_h[i]), view))
    return Decisions(decided, group.astype(np.int64))


PAYLOAD_KINDS: tuple[str | None, ...] = (None, "http", "not_http")


def _host_classes(ctx: Context, addresses: np.ndarray) -> np.ndarray:
    """A number per address for its Context.host_class: an address the context knows
    nothing particular about (no role, no DNS name) is told apart by its locality only,
    in bulk; the few others one by one."""
    ids: dict[tuple[Any, ...], int] = {}
    plain = [
        ids.setdefault((frozenset(), None, here, frozenset()), len(ids)) for here in (False, True)
    ]
    out = np.where(local_mask(addresses, ctx.is_local), plain[1], plain[0]).astype(np.int64)
    particular = list(set(ctx.roles) | set(ctx.primary) | set(ctx.names))
    where = pd.Index(addresses).get_indexer(particular)
    for ip, i in zip(particular, where.tolist(), strict=True):
        if i >= 0:
            out[i] = ids.setdefault(ctx.host_class(ip), len(ids))
    return out


def _on_ports(
    proto: np.ndarray, resp_p: np.ndarray, ctx: Context, has: Callable[[Signature], Any]
) -> np.ndarray:
    """Flows on a (transport, port) of a signature for which `has` is true."""
    out = np.zeros(len(proto), dtype=bool)
    wanted = {key for key, sigs in ctx.signatures.items() if any(has(s) for s in sigs)}
    for transport, port in wanted:
        out |= (resp_p == port) & (proto == transport)
    return out


def _payload_codes(flows: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Index into PAYLOAD_KINDS of each flow's originator payload, for `rows` only:
    none (no or an empty head), an HTTP request, or other bytes."""
    out = np.zeros(len(flows), dtype=np.int64)
    if "_orig_head" not in flows.columns or not rows.any():
        return out
    off, data = head_buffers(flows["_orig_head"])
    sent = rows & (np.diff(off) > 0)
    http = http_request_mask(off, data, sent)
    out[sent] = np.where(http[sent], PAYLOAD_KINDS.index("http"), PAYLOAD_KINDS.index("not_http"))
    return out


def render(d: Decision, orig_h: str, resp_h: str) -> str:
    """The reason of `d` with the placeholders of its class replaced by the addresses."""
    return d.reason.replace(ORIG, orig_h).replace(RESP, resp_h)


def render_column(
    reasons: list[str], index: np.ndarray, orig_h: pd.Series, resp_h: pd.Series
) -> pa.ChunkedArray | pa.Array:
    """render() for every flow at once: flow i's reason is reasons[index[i]] with ORIG and
    RESP replaced by its own addresses. Each reason is split at its placeholders once;
    the pieces are gathered per flow and joined by arrow, no Python per flow."""
    pieces = [re.split(f"([{ORIG}{RESP}])", r) for r in reasons]
    width = max((len(p) for p in pieces), default=1)
    take = pa.array(index, type=pa.int64())
    addresses = {ORIG: pa.array(orig_h, type=pa.large_string()),
                 RESP: pa.array(resp_h, type=pa.large_string())}  # fmt: skip
    columns = []
    for k in range(width):
        at = [p[k] if k < len(p) else "" for p in pieces]
        column = pa.array(at, type=pa.large_string()).take(take)
        for token, address in addresses.items():
            if token in at:
                column = pc.if_else(pc.equal(column, token), address, column)
        columns.append(column)
    return pc.binary_join_element_wise(*columns, pa.scalar("", pa.large_string()))


def decide(ctx: Context, f: FlowView) -> Decision:
    """The verdict of one connection."""
    if f.reply:
        back = _evaluate(ctx, f.reversed())
        if back.fits:
            return _prefixed(
                back,
                f"answer from {f.orig_h} to the broadcast request {f.resp_h} sent to port "
                f"{f.orig_p}; ",
            )
    here = _evaluate(ctx, f)
    if f.midstream and not here.fits:
        back = _evaluate(ctx, f.reversed())
        if back.fits:
            return _prefixed(
                back,
                f"seen mid-stream (no handshake captured), so taken as {_who(ctx, f.resp_h)}'s "
                "own connection; ",
            )
    return here


def _prefixed(d: Decision, prefix: str) -> Decision:
    return replace(d, reason=prefix + d.reason)


def _evaluate(ctx: Context, f: FlowView) -> Decision:
    ro, rr = ctx.roles_of(f.orig_h), ctx.roles_of(f.resp_h)
    proposals: list[Decision] = []
    by_sig = _signature_decision(ctx, f, ro, rr)
    if by_sig is not None:
        proposals.append(by_sig)
    inbound = _inbound_to_cmi(ctx, f, rr)
    if inbound is not None:
        proposals.append(inbound)
    if (by_sig is None or not by_sig.fits) and (ro or rr):
        proposals.append(_unexpected(ctx, f, ro, rr))
    if not proposals:
        proposals.append(_unmonitored(ctx, f))
    return max(proposals, key=_rank)


def _rank(d: Decision) -> tuple[int, int]:
    return (SEVERITY_RANK[d.severity], -VERDICT_PRECEDENCE.index(d.verdict))


# --- rule 1: signatures -----------------------------------------------------------------


def _candidates(
    ctx: Context, f: FlowView, ro: frozenset[str], rr: frozenset[str]
) -> list[Signature]:
    sigs = ctx.signatures.get((f.proto, f.port_key), ())
    systems = {ROLE_SYSTEM[r] for r in ro | rr}
    return [
        s
        for s in sigs
        if (s.orig_ports is None or f.orig_p in s.orig_ports)
        and (not s.generic or s.system == "common" or s.system in systems)
    ]


def _by_payload(sigs: list[Signature], payload: str | None) -> tuple[list[Signature], str]:
    """Narrow by the payload discriminator; the note says what decided it."""
    if not any(s.payload for s in sigs):
        return sigs, ""
    if payload is None:
        ids = ", ".join(s.id for s in sigs if s.payload)
        # Reading chosen: without payload the entries cannot be told apart; the one that
        # needs no HTTP (the document lists the printer service first) is reported.
        sigs = sorted(sigs, key=lambda s: s.payload != "not_http")
        return sigs, f"; no payload seen, so {ids} could not be told apart"
    kept = [s for s in sigs if s.payload in (None, payload)]
    said = "an HTTP request" if payload == "http" else "not HTTP"
    return kept, f"; the originator's first bytes are {said}"


def _side_ok(ctx: Context, sig: Signature, have: frozenset[str], want: frozenset[str]) -> bool:
    """A host with roles `have` on a side documented for `want` (empty: "any host"). Any
    host is not a device whose documents list its own ports only (catalog
    [[infrastructure]] any_host = false: ISENet, com server, C.M.I.) unless the signature
    names its role on the other side (CoE: C.M.I. <-> any CoE device, a C.M.I. too), nor
    on a range that documents no service (reserved, placeholder: whoever uses it)."""
    if not have:
        return True  # unknown = compatible
    if want:
        return bool(have & want)
    if sig.status in NOT_A_SERVICE or have & ctx.any_host:
        return True
    return bool(have & (sig.orig_roles | sig.resp_roles))


def _fits(ctx: Context, sig: Signature, ro: frozenset[str], rr: frozenset[str]) -> bool:
    forward = _side_ok(ctx, sig, ro, sig.orig_roles) and _side_ok(ctx, sig, rr, sig.resp_roles)
    if sig.direction == "either":
        return forward or (
            _side_ok(ctx, sig, rr, sig.orig_roles) and _side_ok(ctx, sig, ro, sig.resp_roles)
        )
    return forward


def _wrong_way(sig: Signature, ro: frozenset[str], rr: frozenset[str]) -> bool:
    if sig.direction != "forward":
        return False
    resp_only = sig.resp_roles - sig.orig_roles
    orig_only = sig.orig_roles - sig.resp_roles
    opener_accepts = bool(ro & resp_only) and not ro & sig.orig_roles
    acceptor_opens = bool(rr & orig_only) and not rr & sig.resp_roles
    return opener_accepts or acceptor_opens


def _scope_ok(ctx: Context, sig: Signature, f: FlowView) -> bool:
    if sig.scope == "any" or f.bcast:
        return True
    local = ctx.is_local(f.resp_h)
    return local if sig.scope == "local" else not local


def _signature_decision(
    ctx: Context, f: FlowView, ro: frozenset[str], rr: frozenset[str]
) -> Decision | None:
    sigs, note = _by_payload(_candidates(ctx, f, ro, rr), f.payload)
    fitting = [
        s for s in sigs if _fits(ctx, s, ro, rr) and _may_use(ctx, s, ro) and _may_use(ctx, s, rr)
    ]
    in_scope = [s for s in fitting if _scope_ok(ctx, s, f)]
    if in_scope:
        best = max(in_scope, key=lambda s: _sig_rank(s, in_scope, f.bcast))
        return _status_decision(ctx, f, best, note)
    wrong = [s for s in sigs if _wrong_way(s, ro, rr)]
    if wrong:
        return _wrong_direction(ctx, f, wrong[0])
    if fitting:
        return _out_of_scope(ctx, f, fitting[0])
    return None


def _sig_rank(
    sig: Signature, among: list[Signature], bcast: bool
) -> tuple[int, int, int, int, int]:
    """Among the entries that fit: the most severe verdict, a system's entry before a
    common one, for a broadcast/multicast responder the entry that documents any host
    there (a broadcast address is no device of a role: "PC IP broadcast -> all
    ISENet:41797" is the search entry, not the unicast 41797 <-> 41797 one), then
    catalog order."""
    verdict = STATUS_VERDICT[sig.status]
    return (
        SEVERITY_RANK[VERDICT_SEVERITY[verdict]],
        -VERDICT_PRECEDENCE.index(verdict),
        sig.system != "common",
        bcast and not sig.resp_roles,
        -among.index(sig),
    )


def _status_decision(ctx: Context, f: FlowView, sig: Signature, note: str) -> Decision:
    verdict = STATUS_VERDICT[sig.status]
    o, r = _who(ctx, f.orig_h), _who(ctx, f.resp_h)
    ro, rr = ctx.roles_of(f.orig_h), ctx.roles_of(f.resp_h)
    head = f"{f.kind} from {o} to {r}{_port(f)}: {sig.name} ({sig.id})"
    if sig.system == "common" and not ro and not rr:
        reason = f"{head}, infrastructure between hosts of no monitored system{note}"
        return Decision("unmonitored", "info", "common", sig.id, reason, fits=True)
    if sig.remote_hosts and verdict == "expected":
        checked = _check_destination(ctx, f, sig, head)
        if checked is not None:
            return checked
    rule = _status_text(sig)
    reason = f"{head}, {rule} ({_doc(sig)}){note}{_unverified(ctx, sig)}"
    return Decision(verdict, VERDICT_SEVERITY[verdict], sig.system, sig.id, reason, fits=True)


def _status_text(sig: Signature) -> str:
    versions = f" ({sig.versions})" if sig.versions else ""
    if sig.status == "rare":
        return f"documented for exceptional cases only{versions}"
    if sig.status == "obsolete":
        return f"documented as obsolete{versions}"
    if sig.status == "reserved":
        return "a port the document marks unused/reserved"
    if sig.status == "placeholder":
        return "a placeholder, not a real port: a service installed from an old template"
    if sig.status == "auto-assigned":
        return f"in the range of automatically assigned ports, {_direction_text(sig)}"
    return f"documented {_direction_text(sig)}{versions}"


def _direction_text(sig: Signature) -> str:
    o = "/".join(sorted(sig.orig_roles)) or "any host"
    r = "/".join(sorted(sig.resp_roles)) or "any host"
    return f"{o} -> {r}" if sig.direction == "forward" else f"between {o} and {r}"


def _check_destination(ctx: Context, f: FlowView, sig: Signature, head: str) -> Decision | None:
    """C.M.I. online services go to named TA servers: with DNS answers in the capture,
    a destination the names did not resolve to is unexpected."""
    names = [n for n in sig.remote_hosts if n in ctx.resolved]
    if not names:
        return None
    addresses = frozenset().union(*(ctx.resolved[n] for n in names))
    if ctx.names_of(f.resp_h) & set(names):
        reason = (
            f"{head}, documented {_direction_text(sig)} ({_doc(sig)}); {f.resp_h} is an "
            f"address {' or '.join(names)} resolved to in this capture"
        )
        return Decision("expected", "info", sig.system, sig.id, reason, fits=True)
    reason = (
        f"{head}: documented port, but {f.resp_h} is not an address {' or '.join(names)} "
        f"resolved to in this capture ({', '.join(sorted(addresses))})"
    )
    return Decision("unexpected_port", "medium", sig.system, sig.id, reason, fits=True)


def _unverified(ctx: Context, sig: Signature) -> str:
    if not sig.remote_hosts:
        return ""
    names = " / ".join(sig.remote_hosts)
    return f"; destination not verified (no DNS answer for {names} in this capture)"


def _wrong_direction(ctx: Context, f: FlowView, sig: Signature) -> Decision:
    reason = (
        f"{f.kind} opened by {_who(ctx, f.orig_h)} to {_who(ctx, f.resp_h)}{_port(f)}; "
        f"{sig.name} ({sig.id}) is opened by {_direction_text(sig)} only ({_doc(sig)})"
    )
    return Decision("wrong_direction", "high", sig.system, sig.id, reason)


def _out_of_scope(ctx: Context, f: FlowView, sig: Signature) -> Decision:
    where = "local" if sig.scope == "local" else "internet"
    reason = (
        f"{f.kind} from {_who(ctx, f.orig_h)} to {_who(ctx, f.resp_h)}{_port(f)}: documented "
        f"port, but {sig.name} ({sig.id}) goes to {where} destinations only ({_doc(sig)})"
    )
    return Decision("unexpected_port", "medium", sig.system, sig.id, reason)


# --- rule 2: inbound to a C.M.I. ---------------------------------------------------------


def _inbound_to_cmi(ctx: Context, f: FlowView, rr: frozenset[str]) -> Decision | None:
    if "cmi" not in rr or f.reply:
        return None
    if f.proto in ICMP_TRANSPORTS and f.orig_p not in ICMP_REQUEST_TYPES[f.proto]:
        return None
    local = ctx.is_local(f.orig_h)
    service = _cmi_local_service(ctx, f)
    if service is not None and local:
        return None
    tail = "the C.M.I. only opens connections itself"
    if service is not None:
        tail += f", and {_port_name(f)} ({service.id}) is documented for local hosts only"
    reason = f"inbound {f.kind} from {f.orig_h} to C.M.I. {f.resp_h}{_port(f)}; {tail} "
    reason += "(CMI-Portfreigabe)"
    severity = "high" if local else "critical"
    return Decision("inbound_to_cmi", severity, "cmi", None, reason)


def _cmi_local_service(ctx: Context, f: FlowView) -> Signature | None:
    for sig in ctx.cmi_local:
        if sig.transport == f.proto and f.port_key in sig.ports:
            return sig
    return None


# --- rules 3 and 4 -----------------------------------------------------------------------


def _unexpected(ctx: Context, f: FlowView, ro: frozenset[str], rr: frozenset[str]) -> Decision:
    sigs = ctx.signatures.get((f.proto, f.port_key), ())
    side_ip, roles = (f.orig_h, ro) if ro else (f.resp_h, rr)
    if ro and rr and _documented_for(ctx, sigs, ro, opener=True):
        side_ip, roles = f.resp_h, rr
    role = ctx.primary.get(side_ip) or sorted(roles)[0]
    system = ROLE_SYSTEM[role]
    head = f"{f.kind} from {_who(ctx, f.orig_h)} to {_who(ctx, f.resp_h)}{_port(f)}"
    infra = [s for s in sigs if s.system == "common" and not _may_use(ctx, s, roles)]
    everyone = replace(ctx, any_host=frozenset(ROLE_SYSTEM))
    shut = [s for s in sigs if s.system != "common" and _fits(everyone, s, ro, rr)]
    listed = f"{side_ip} as {role} uses only what its documents list: "
    listed += ctx.role_docs.get(role, "nothing")
    if infra:
        reason = (
            f"{head}: {infra[0].name} ({infra[0].id}) is common infrastructure the catalog "
            f"does not document for {role}; {listed}"
        )
    elif shut and role not in ctx.any_host:
        reason = (
            f"{head}: {shut[0].name} ({shut[0].id}) leaves this side open to any host, "
            f"which is no {role}: a device whose documents list its own ports; {listed}"
        )
    else:
        reason = f"{head}: no signature documents {_port_name(f)} for {side_ip} as {role}"
    return Decision("unexpected_port", "medium", system, None, reason)


def _documented_for(
    ctx: Context, sigs: Iterable[Signature], roles: frozenset[str], *, opener: bool
) -> bool:
    for sig in sigs:
        if sig.system == "common":
            if _may_use(ctx, sig, roles):
                return True
            continue
        side = sig.orig_roles if opener else sig.resp_roles
        if sig.direction == "either":
            side = sig.orig_roles | sig.resp_roles
        if side & roles or not side and _side_ok(ctx, sig, roles, side):
            return True
    return False


def _may_use(ctx: Context, sig: Signature, roles: frozenset[str]) -> bool:
    """Per-role common infrastructure (catalog [[infrastructure]]): a host with a role may
    use a common signature, either side, only where one of its roles' entries lists it;
    a host without a role, or with a role no entry declares, may use every one."""
    if sig.system != "common" or not roles:
        return True
    declared = ctx.infrastructure
    return any(role not in declared or sig.id in declared[role] for role in roles)


def role_documents(catalog: Catalog) -> dict[str, str]:
    """Role -> what the documents list for it, for reasons: "tcp 41796; udp 41797, 41798;
    ICMP echo request (Netzwerkverbindungen und verwendete Ports)"."""
    out: dict[str, str] = {}
    for role in ROLE_LABEL:
        sigs = catalog.documented_for(role)
        if not sigs:
            continue
        by_transport: dict[str, set[int]] = {}
        for sig in sigs:
            by_transport.setdefault(sig.transport, set()).update(sig.ports)
        parts = []
        for transport in ("tcp", "udp", "icmp", "icmp6"):
            ports = by_transport.get(transport)
            if not ports:
                continue
            if transport in ICMP_TRANSPORTS:
                names = [ICMP_NAMES.get((transport, t), f"type {t}") for t in sorted(ports)]
                parts.append(f"{transport.upper()} {', '.join(names)}")
            else:
                parts.append(f"{transport} {', '.join(port_ranges(sorted(ports)))}")
        titles = sorted({_doc(sig) for sig in sigs})
        out[role] = f"{'; '.join(parts)} ({', '.join(titles)})"
    return out


def _unmonitored(ctx: Context, f: FlowView) -> Decision:
    o, r = f.orig_h, f.resp_h
    if f.proto in ICMP_TRANSPORTS:
        reason = f"{f.kind} from {o} to {r}: ICMP between hosts of no monitored system"
        return Decision("unmonitored", "info", "common", None, reason)
    reason = (
        f"{f.kind} from {o} to {r}{_port(f)}: neither host belongs to a monitored system "
        "and no signature matches"
    )
    return Decision("unmonitored", "info", None, None, reason)


# --- wording -------------------------------------------------------------------------------


def _who(ctx: Context, ip: str) -> str:
    role = ctx.primary.get(ip)
    return f"{ROLE_LABEL[role]} {ip}" if role else ip


def _port(f: FlowView) -> str:
    return "" if f.proto in ICMP_TRANSPORTS else f":{f.resp_p}"


def _port_name(f: FlowView) -> str:
    if f.proto in ICMP_TRANSPORTS:
        return f"{f.proto.upper()} type {f.orig_p}"
    return f"{f.resp_p}/{f.proto}"


def _doc(sig: Signature) -> str:
    return DOC_TITLES.get(sig.source.document, sig.source.document)


# --- follow-on connections and allows ----------------------------------------------------


def follow_ons(
    flows: pd.DataFrame,
    decisions: Decisions,
    mapped: Mapping[int, tuple[int, ...] | None] | None = None,
) -> Decisions:
    """TFTP transfers take the verdict of their request; MS-RPC follow-ons (the port the
    endpoint mapper named, else best effort Windows' dynamic range) take the 135 verdict.
    `mapped`: row of each tcp/135 flow -> the ports its ept_map answers named (None: no
    answer captured), from _mapper_answers."""
    out = decisions.copy()
    _tftp_transfers(flows, out)
    _msrpc_dynamic(flows, out, mapped or {})
    return out


def _mapper_answers(flows: pd.DataFrame) -> dict[int, tuple[int, ...] | None]:
    """epm.epm_ports of the responder head of every tcp/135 flow, by row."""
    rows = np.flatnonzero(
        (flows["proto"].to_numpy(dtype=object) == "tcp")
        & (flows["resp_p"].to_numpy() == MSRPC_PORT)
    )
    if "_resp_head" not in flows.columns:
        return {int(i): None for i in rows}
    heads = flows["_resp_head"].to_numpy(dtype=object)
    return {int(i): epm_ports(heads[i]) for i in rows}


def _tftp_transfers(flows: pd.DataFrame, out: Decisions) -> None:
    """A UDP flow from a TFTP server to the port a client's request came from (the
    server answers from a new port: orig = server), starting no earlier than the request,
    takes the verdict of that client's first request to that server (a join)."""
    udp = (flows["proto"] == "udp").to_numpy(dtype=bool)
    resp_p = flows["resp_p"].to_numpy()
    req_rows = np.flatnonzero(udp & (resp_p == TFTP_PORT))
    if not len(req_rows):
        return
    answer_rows = np.flatnonzero(udp & (resp_p != TFTP_PORT))
    key = ["client", "server", "port"]
    requests = _endpoints(flows, req_rows, "orig_h", "resp_h", "orig_p", "req")
    requests = requests.drop_duplicates(key, keep="first")
    answers = _endpoints(flows, answer_rows, "resp_h", "orig_h", "resp_p", "row")
    hits = answers.merge(requests, on=key, how="inner")
    ts = flows["ts"].to_numpy()
    hits = hits[ts[hits["row"].to_numpy()] >= ts[hits["req"].to_numpy()]]
    for i, req, client, server in zip(
        hits["row"].tolist(), hits["req"].tolist(), hits["client"], hits["server"], strict=True
    ):  # the transfers only
        what = f"TFTP transfer answering the request {client} -> {server}:{TFTP_PORT}"
        out[i] = _follow_on(out[req], flows["uid"].iat[req], what, client, server)


def _endpoints(
    flows: pd.DataFrame, rows: np.ndarray, client: str, server: str, port: str, row: str
) -> pd.DataFrame:
    """Columns client, server, port (int64) and `row` (the positions) of `rows`."""
    return pd.DataFrame(
        {
            "client": flows[client].iloc[rows].to_numpy(dtype=object),
            "server": flows[server].iloc[rows].to_numpy(dtype=object),
            "port": flows[port].to_numpy()[rows].astype(np.int64),
            row: rows,
        }
    )


def _follow_on(request: Decision, uid: str, what: str, orig_h: str, resp_h: str) -> Decision:
    """The request's decision for a follow-on flow, its reason rendered with the request's
    own addresses."""
    prefix = f"{what} (uid {uid}); same verdict as the request: "
    return replace(request, reason=prefix + render(request, orig_h, resp_h))


def _msrpc_dynamic(
    flows: pd.DataFrame, out: Decisions, mapped: Mapping[int, tuple[int, ...] | None]
) -> None:
    """A later TCP connection between the hosts of a 135 exchange takes its verdict when
    it goes to a port the endpoint mapper named; when no answer of that pair was captured,
    any port of Windows' dynamic range does, best effort. The pair's first 135 flow with a
    signature is the request; found by joins, not per flow."""
    tcp = (flows["proto"] == "tcp").to_numpy(dtype=bool)
    resp_p = flows["resp_p"].to_numpy()
    sig_id = out.column("signature_id")
    has_id = pd.notna(sig_id)
    mapper_rows = np.flatnonzero(tcp & (resp_p == MSRPC_PORT) & has_id & (sig_id != ""))
    if not len(mapper_rows):
        return
    pair = ["client", "server"]
    mappers = _endpoints(flows, mapper_rows, "orig_h", "resp_h", "resp_p", "req")
    answered = [(int(i), p) for i in mapper_rows.tolist() if (p := mapped.get(int(i))) is not None]
    rows_answered = np.array([i for i, _ in answered], dtype=np.int64)
    named = _endpoints(flows, rows_answered, "orig_h", "resp_h", "resp_p", "row")[pair]
    named_ports = named.assign(
        port=[list(p) for _, p in answered], named=True
    ).explode("port")  # an empty answer names no port, but the pair still has one
    mappers = mappers.drop_duplicates(pair, keep="first")[[*pair, "req"]]
    fits = out.column("fits").astype(bool)
    later = np.flatnonzero(tcp & (resp_p != MSRPC_PORT) & ~has_id & ~fits)
    follow = _endpoints(flows, later, "orig_h", "resp_h", "resp_p", "row")
    follow = follow.merge(mappers, on=pair, how="inner")
    ts = flows["ts"].to_numpy()
    follow = follow[ts[follow["row"].to_numpy()] >= ts[follow["req"].to_numpy()]]
    has_answer = follow.merge(named.drop_duplicates(), on=pair, how="left", indicator=True)
    has_answer = (has_answer["_merge"] == "both").to_numpy()
    ports = named_ports.dropna(subset=["port"]).astype({"port": np.int64}).drop_duplicates()
    in_answer = follow.merge(ports, on=[*pair, "port"], how="left")["named"].notna().to_numpy()
    port = follow["port"].to_numpy()
    dynamic = (port >= DYNAMIC_PORTS.start) & (port < DYNAMIC_PORTS.stop)
    take = np.where(has_answer, in_answer, dynamic)
    for i, req, client, server, p, by_answer in zip(
        follow["row"].to_numpy()[take].tolist(),
        follow["req"].to_numpy()[take].tolist(),
        follow["client"].to_numpy()[take].tolist(),
        follow["server"].to_numpy()[take].tolist(),
        port[take].tolist(),
        has_answer[take].tolist(),
        strict=True,
    ):  # the follow-ons only
        if by_answer:
            what = (
                f"MS-RPC port {p} named by the endpoint mapper's answer "
                f"{client} -> {server}:{MSRPC_PORT}"
            )
        else:
            what = (
                "best effort: MS-RPC dynamic port after the endpoint mapper "
                f"{client} -> {server}:{MSRPC_PORT}, whose answer was not captured"
            )
        out[i] = _follow_on(out[req], flows["uid"].iat[req], what, client, server)


ONE_SIDED = " (one-sided capture: direction not verified)"


def note_one_sided(flows: pd.DataFrame, decisions: Decisions) -> Decisions:
    """In a capture health.py calls a one-way mirror (most TCP connections with data seen
    one way only), a wrong_direction verdict of a flow whose packets all went one way
    rests on one-sided evidence: its reason says so (orig_evidence is left as it was)."""
    if not any(d.verdict == "wrong_direction" for d in decisions.table):
        return decisions
    if not is_one_way_mirror(*tcp_direction_counts(flows)):
        return decisions
    one_sided = (flows["orig_pkts"].to_numpy() == 0) | (flows["resp_pkts"].to_numpy() == 0)
    wrong = decisions.column("verdict") == "wrong_direction"
    out = decisions.copy()
    out.remap(np.flatnonzero(one_sided & wrong), lambda d: replace(d, reason=d.reason + ONE_SIDED))
    return out


def apply_allows(flows: pd.DataFrame, decisions: Decisions, site: Site) -> Decisions:
    """Site allows turn findings (not expected/unmonitored) into expected; each allow is
    looked up once per distinct (orig_h, resp_h, proto, resp_p) of the findings."""
    if not site.allows:
        return decisions
    rows = np.flatnonzero(~np.isin(decisions.column("verdict"), NOT_FINDINGS))
    if not len(rows):
        return decisions
    key = ["orig_h", "resp_h", "proto", "resp_p"]
    sub = flows[key].iloc[rows]
    pair = sub.groupby(key, sort=False).ngroup().to_numpy()
    _, first = np.unique(pair, return_index=True)
    allows = [
        site.allow_for(str(oh), str(rh), str(proto), int(rp))
        for oh, rh, proto, rp in sub.iloc[first].itertuples(index=False)
    ]
    out = decisions.copy()
    for k, allow in enumerate(allows):
        if allow is None:
            continue

        def allowed(d: Decision, allow: Any = allow) -> Decision:
            return Decision("expected", "info", d.system, allow.signature_id, allow.reason)

        out.remap(rows[pair == k], allowed)
    return out


def _with_decisions(flows: pd.DataFrame, decisions: Decisions) -> pd.DataFrame:
    def column(values: np.ndarray) -> pd.Series:
        return pd.Series(values, index=flows.index, dtype=object)

    for attr in ("system", "signature_id", "verdict", "severity"):
        flows[attr] = column(decisions.column(attr))
    reasons = [d.reason for d in decisions.table]
    flows["reason"] = pd.Series(
        render_column(reasons, decisions.index, flows["orig_h"], flows["resp_h"]),
        index=flows.index,
    )
    tftp = np.array([r.startswith("TFTP transfer") for r in reasons], dtype=bool)[decisions.index]
    service = flows["service"].to_numpy(dtype=object)
    flows["service"] = column(np.where(tftp & pd.isna(service), "tftp", service))
    return flows


# --- findings ------------------------------------------------------------------------------

FINDING_KEY = ["verdict", "signature_id", "orig_h", "resp_h", "proto", "resp_p"]
NOT_FINDINGS = ("expected", "unmonitored")
PORT_SCAN, HOST_SWEEP = "ports", "hosts"  # the _scan marks of a flow (and its row's lists)
SHOWN_RANGES = 5  # port ranges / addresses a scan's message spells out before "..."


def build_findings(
    flows: pd.DataFrame,
    *,
    scan_threshold: int = DEFAULT_SCAN_THRESHOLD,
    reason_of: Callable[[np.ndarray], list[str]] | None = None,
) -> pd.DataFrame:
    """One row per (verdict, signature_id, orig_h, resp_h, proto, resp_p) of the flows
    whose verdict is a finding, scans folded (`scan_marks`); severity desc, then first_ts.
    `reason_of`: the reasons of flows at positions of `flows` (then `flows` needs no
    "reason" column: only each finding's first flow's reason is asked for)."""
    columns = schema.column_names(schema.FINDINGS)
    is_finding = ~flows["verdict"].isin(NOT_FINDINGS).to_numpy()
    sub = flows[is_finding]
    if not len(sub):
        return _empty(columns)
    if reason_of is not None:
        sub = sub.assign(reason=np.flatnonzero(is_finding))  # positions, rendered below
    if not _in_flow_order(sub):
        sub = sub.sort_values(["ts", "uid"], kind="stable")
    sub = sub.reset_index(drop=True)
    sub = sub.assign(_sig=sub["signature_id"].fillna(""), _rank=sub["severity"].map(SEVERITY_RANK))
    marks = scan_marks(sub, scan_threshold)
    sub = sub.assign(
        _scan=marks,
        _resp_h=sub["resp_h"].where(marks != HOST_SWEEP, ""),
        _resp_p=sub["resp_p"].where(marks != PORT_SCAN, -1),
    )
    group = sub.groupby(["verdict", "_sig", "orig_h", "_resp_h", "proto", "_resp_p"], sort=False)
    agg = group.agg(
        first_ts=("ts", "min"),
        last_ts=("last_ts", "max"),
        flows=("uid", "size"),
        orig_pkts=("orig_pkts", "sum"),
        resp_pkts=("resp_pkts", "sum"),
        orig_bytes=("orig_bytes", "sum"),
        resp_bytes=("resp_bytes", "sum"),
        _rank=("_rank", "max"),
        _scan=("_scan", "first"),
        system=("system", "first"),
        signature_id=("signature_id", "first"),
        resp_h=("resp_h", "first"),
        resp_p=("resp_p", "first"),
        message=("reason", "first"),
        capture=("capture", "first"),
    ).reset_index()
    if reason_of is not None:
        agg["message"] = reason_of(agg["message"].to_numpy(dtype=np.int64))
    group_no = group.ngroup().to_numpy()
    agg["uids"] = _uids_per_group(sub["uid"].to_numpy(dtype=object), group_no)
    agg["severity"] = np.asarray(schema.SEVERITIES, dtype=object)[agg["_rank"].to_numpy()]
    _fold_scans(agg, sub, group_no)
    agg = agg.sort_values(["_rank", "first_ts"], ascending=[False, True], kind="stable")
    agg["signature_id"] = (
        agg["signature_id"].astype(object).where(agg["signature_id"].notna(), None)
    )
    agg["system"] = agg["system"].astype(object).where(agg["system"].notna(), None)
    return agg[columns].reset_index(drop=True)


def _in_flow_order(sub: pd.DataFrame) -> bool:
    """True when the rows are sorted by (ts, uid) already (FlowResult.flows are): the
    findings then need no sorted copy of them."""
    ts = sub["ts"].to_numpy()
    if len(ts) < 2:
        return True
    step = ts[1:] > ts[:-1]
    if (ts[1:] < ts[:-1]).any():
        return False
    ties = np.flatnonzero(~step)
    if not len(ties):
        return True
    uid = sub["uid"].to_numpy(dtype=object)
    return bool(all(a < b for a, b in zip(uid[ties].tolist(), uid[ties + 1].tolist(), strict=True)))


def scan_marks(sub: pd.DataFrame, threshold: int) -> np.ndarray:
    """Contract, Precise rules, "Scans": a flow is part of a port scan (PORT_SCAN) when
    the finding flows sharing its verdict, signature_id (null included), orig_h, resp_h
    and proto reach more than `threshold` distinct resp_p; of the other flows, part of a
    host sweep (HOST_SWEEP) when those sharing its verdict, signature_id, orig_h, proto
    and resp_p reach more than `threshold` distinct resp_h; else "". `sub`: finding
    flows with `_sig` (signature_id, null as "")."""
    marks = np.full(len(sub), "", dtype=object)
    by_host = sub.groupby(["verdict", "_sig", "orig_h", "resp_h", "proto"], sort=False)
    ports = by_host["resp_p"].transform("nunique").to_numpy()
    marks[ports > threshold] = PORT_SCAN
    rest = np.flatnonzero(ports <= threshold)
    by_port = sub.iloc[rest].groupby(["verdict", "_sig", "orig_h", "proto", "resp_p"], sort=False)
    hosts = by_port["resp_h"].transform("nunique").to_numpy()
    marks[rest[hosts > threshold]] = HOST_SWEEP
    return marks


def _fold_scans(agg: pd.DataFrame, sub: pd.DataFrame, group_no: np.ndarray) -> None:
    """Fill the scan columns of the findings rows (`agg`, one per group number) in place:
    ports/n_ports and a null resp_p for a port scan, hosts/n_hosts and a null resp_h for
    a host sweep, and the message; other rows get null lists and "(n connections)"."""
    n = len(agg)
    lists = {PORT_SCAN: np.full(n, None, dtype=object), HOST_SWEEP: np.full(n, None, dtype=object)}
    sizes = {PORT_SCAN: np.full(n, -1, dtype=np.int64), HOST_SWEEP: np.full(n, -1, dtype=np.int64)}
    for kind, column in ((PORT_SCAN, "resp_p"), (HOST_SWEEP, "resp_h")):
        rows = np.flatnonzero(sub["_scan"].to_numpy() == kind)
        if not len(rows):
            continue
        values = pd.Series(sub[column].to_numpy()[rows], index=group_no[rows])
        for g, distinct in values.groupby(level=0, sort=False).unique().items():
            ordered = sorted(distinct.tolist(), key=_host_order if kind == HOST_SWEEP else int)
            lists[kind][int(g)] = ordered
            sizes[kind][int(g)] = len(ordered)
    scan = agg["_scan"].to_numpy(dtype=object)
    agg["ports"], agg["hosts"] = lists[PORT_SCAN], lists[HOST_SWEEP]
    agg["n_ports"] = pd.Series(sizes[PORT_SCAN], dtype="Int64").mask(sizes[PORT_SCAN] < 0).array
    agg["n_hosts"] = pd.Series(sizes[HOST_SWEEP], dtype="Int64").mask(sizes[HOST_SWEEP] < 0).array
    resp_p = pd.Series(agg["resp_p"].to_numpy(dtype=np.int64), dtype="Int32")
    agg["resp_p"] = resp_p.mask(scan == PORT_SCAN).array
    agg["resp_h"] = np.where(scan == HOST_SWEEP, None, agg["resp_h"].to_numpy(dtype=object))
    message = agg["message"].to_numpy(dtype=object, copy=True)
    count = agg["flows"].to_numpy(dtype=np.int64)
    several = np.flatnonzero((scan == "") & (count != 1))
    message[several] = message[several] + (
        " (" + count[several].astype(str).astype(object) + " connections)"
    )
    for i in np.flatnonzero(scan != "").tolist():
        message[i] = _scan_message(agg.iloc[i])
    agg["message"] = message


def _scan_message(row: Mapping[str, Any]) -> str:
    """What was scanned, then the first flow's reason, e.g. "port scan: 203.0.113.9 ->
    25 tcp ports of 192.168.1.40 (20001-20025), 25 connections; first: <reason>"."""
    reason, flows = row["message"], row["flows"]
    if row["_scan"] == PORT_SCAN:
        ports = row["ports"]
        what = (
            f"port scan: {row['orig_h']} -> {len(ports):,} {row['proto']} ports of "
            f"{row['resp_h']} ({_shown(port_ranges(ports))})"
        )
    elif row["_scan"] == HOST_SWEEP:
        hosts = row["hosts"]
        what = (
            f"host sweep: {row['orig_h']} -> {row['proto']}/{row['resp_p']} on "
            f"{len(hosts):,} hosts ({_shown(hosts)})"
        )
    else:
        raise ValueError(f"not a scan row: {row['_scan']!r}")
    return f"{what}, {flows:,} connections; first: {reason}"


def _shown(items: list[Any]) -> str:
    head = ", ".join(str(i) for i in items[:SHOWN_RANGES])
    return head if len(items) <= SHOWN_RANGES else f"{head}, ..."


def _host_order(ip: str) -> tuple[int, bytes]:
    """Addresses in numeric order (IPv4 before IPv6), text that is no address last."""
    for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return version, socket.inet_pton(family, ip)
        except OSError:
            continue
    return 7, ip.encode()


def _uids_per_group(uids: np.ndarray, group_no: np.ndarray) -> list[list[str]]:
    """uids of each group (numbered 0..n-1 in order of appearance), in flow order."""
    order = np.argsort(group_no, kind="stable")
    cuts = (np.flatnonzero(np.diff(group_no[order])) + 1).tolist()
    ordered = uids[order].tolist()
    return [ordered[a:b] for a, b in zip([0, *cuts], [*cuts, len(ordered)], strict=True)]


def _empty(columns: list[str]) -> pd.DataFrame:
    return schema.empty_table(schema.FINDINGS).to_pandas()[columns]


# --- hosts -----------------------------------------------------------------------------------


def build_hosts(
    result: FlowResult,
    flows: pd.DataFrame,
    roles: pd.DataFrame,
    macs: Mapping[str, list[str]],
    site: Site | None,
    is_local: Callable[[str], bool],
) -> pd.DataFrame:
    """One row per unicast address of FlowResult.hosts, built column by column: per-host
    facts are looked up by address (an index), vendors once per MAC prefix."""
    columns = schema.column_names(schema.HOSTS)
    hosts = result.hosts
    if len(hosts):
        hosts = hosts[unicast_mask(hosts["ip"])]
    if not len(hosts):
        return schema.empty_table(schema.HOSTS).to_pandas()[columns]
    hosts = hosts.reset_index(drop=True)
    ip_index = pd.Index(hosts["ip"].to_numpy(dtype=object))
    ips = ip_index.to_numpy(dtype=object)
    local = local_mask(ips, is_local)
    mac = np.full(len(ips), None, dtype=object)
    have = np.flatnonzero(local & (pd.Index(list(macs), dtype=object).get_indexer(ips) >= 0))
    mac[have] = [macs[ip][0] if macs[ip] else None for ip in ips[have].tolist()]
    info = roles.drop_duplicates("ip").set_index("ip").reindex(ip_index)
    host_roles = info["roles"].to_numpy(dtype=object, copy=True)
    listed = [isinstance(r, list | tuple | np.ndarray) for r in host_roles]
    missing = np.flatnonzero(~np.array(listed, dtype=bool))
    host_roles[missing] = [[] for _ in missing]
    out = pd.DataFrame(
        {
            "ip": pd.Series(ips, dtype=object),
            "mac": pd.Series(mac, dtype=object),
            "vendor": pd.Series(_vendors(mac), dtype=object),
            "role": pd.Series(_nullable(info["role"]), dtype=object),
            "roles": pd.Series(host_roles, dtype=object),
            "role_source": pd.Series(_nullable(info["role_source"]), dtype=object),
            "role_evidence": pd.Series(_nullable(info["role_evidence"]), dtype=object),
            "name": pd.Series(
                [site.name_for(ip, frozenset(macs.get(ip, []))) for ip in ips.tolist()]
                if site is not None
                else np.full(len(ips), None, dtype=object),
                dtype=object,
            ),
            "local": local,
            "first_ts": hosts["first_ts"],
            "last_ts": hosts["last_ts"],
            "pkts": hosts["pkts"],
            "bytes": hosts["bytes"],
            "systems": pd.Series(_host_systems(flows, ip_index, host_roles), dtype=object),
        }
    )
    return out[columns]


def unicast_mask(ips: pd.Series) -> np.ndarray:
    """flows.is_unicast_text of each address, for a whole column: not 0.0.0.0 or ::, not
    an IPv6 address whose first group is ffXX, not an IPv4 address ending .255 or with a
    first octet 224..239."""
    text = pa.array(ips.to_numpy(dtype=object), type=pa.string())
    multicast = (
        r"^(0\.0\.0\.0|::)$|^[fF][fF][^:]{2}:|^[^:]*\.255$|^0*(22[4-9]|23[0-9])\.[^:]*$"
    )
    return ~pc.match_substring_regex(text, multicast).to_numpy(zero_copy_only=False)


_CANONICAL_MAC = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"


def _vendors(mac: np.ndarray) -> np.ndarray:
    """roles.vendor of each MAC (None stays None): canonical aa:bb:cc:dd:ee:ff MACs are
    looked up once per prefix (the vendor depends on the OUI only), others one by one."""
    out = np.full(len(mac), None, dtype=object)
    given = np.flatnonzero(pd.notna(mac))
    if not len(given):
        return out
    text = pa.array(mac[given], type=pa.string())
    canonical = pc.match_substring_regex(text, _CANONICAL_MAC).to_numpy(zero_copy_only=False)
    prefix = pc.utf8_lower(pc.utf8_slice_codeunits(text, 0, 8)).to_numpy(zero_copy_only=False)
    codes, distinct = pd.factorize(prefix[canonical])
    names = _objects([vendor(f"{p}:00:00:00") for p in distinct.tolist()])
    out[given[canonical]] = names[codes]
    odd = given[~canonical]
    out[odd] = [vendor(m) for m in mac[odd].tolist()]
    return out


def _host_systems(flows: pd.DataFrame, ips: pd.Index, host_roles: np.ndarray) -> np.ndarray:
    """Per host: the sorted monitored systems of its flows and its roles ([] for none),
    gathered as (host position, system code) pairs."""
    monitored = flows["system"].notna() & (flows["system"] != "common")
    sub = flows[monitored]
    with_roles = np.flatnonzero([len(r) > 0 for r in host_roles])
    held = [(i, ROLE_SYSTEM[r]) for i in with_roles.tolist() for r in host_roles[i]]
    names = np.concatenate(
        [sub["system"].to_numpy(dtype=object)] * 2 + [_objects([h[1] for h in held])]
    )
    at = np.concatenate(
        [
            ips.get_indexer(sub["orig_h"]),
            ips.get_indexer(sub["resp_h"]),
            np.array([h[0] for h in held], dtype=np.int64),
        ]
    )
    code, systems = pd.factorize(names, sort=True)
    keep = at >= 0
    pairs = np.unique(at[keep].astype(np.int64) * max(1, len(systems)) + code[keep])
    out = np.empty(len(ips), dtype=object)
    out[:] = [[] for _ in range(len(ips))]
    host, sys_code = np.divmod(pairs, max(1, len(systems)))
    cuts = (np.flatnonzero(np.diff(host)) + 1).tolist()
    labels = np.asarray(systems, dtype=object)[sys_code].tolist()
    for a, b in zip([0, *cuts], [*cuts, len(host)], strict=True):
        if b > a:
            out[host[a]] = labels[a:b]
    return out


def _nullable(column: pd.Series) -> list[Any]:
    return [None if v is None or v is pd.NA or v != v else v for v in column.tolist()]
