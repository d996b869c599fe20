"""Host roles: inferred from behaviour on distinctive ports (supported by the MAC vendor
and DNS questions), or given by the site file (which always wins), plus a few
per-connection facts both the role inference and the classifier need (answered? an answer
to a broadcast? own MACs).

    vendor("00:c0:3d:01:02:03")                          -> "WIESEMANN & THEIS GMBH"
    infer_roles(flows, hosts, arp, catalog, site)        -> DataFrame[ip, role, roles,
                                                            role_source, role_evidence]

Evidence is counted per (host, role), one item per connection, so one odd connection does
not flip a host's role: conflicting roles (e.g. isenet by one connection, sescomm_server
by five) are resolved by majority and the loser is named in the evidence text.

Behaviour suggests a role; a MAC vendor or a DNS question only supports it (issue 11):
Lantronix chips sit in GEMOS com servers, in Sesam ISENet controllers and in many
unrelated devices, so a MAC prefix alone gives no role. Supporting evidence counts for a
role the host's own connections already show, and the evidence text marks it so.
"""

from __future__ import annotations

import importlib.resources
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import netaddr
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .schema import ROLES
from .signatures import Signature
from .site import Locality, default_networks, local_flags
from .site import is_local as site_is_local

# Zeek conn_state values in which the responder answered the handshake
# (base/protocols/conn/main.zeek): evidence that it serves the port.
ESTABLISHED_STATES: frozenset[str] = frozenset(
    {"S1", "SF", "S2", "S3", "RSTO", "RSTR", "RSTRH", "SHR"}
)
# Signature statuses that describe real use of a port (reserved/placeholder do not).
EVIDENCE_STATUSES: frozenset[str] = frozenset({"active", "rare", "obsolete", "auto-assigned"})
# IEEE registry organisations of serial-to-Ethernet vendors named in the documents.
WUT_ORGS: tuple[str, ...] = ("WIESEMANN & THEIS",)  # W&T com servers (GEMOS doc, section 3)
LANTRONIX_ORGS: tuple[str, ...] = ("LANTRONIX",)
# 00:20:4A is the prefix of Lantronix XPort modules (the ISENet's chip), although the IEEE
# registry still lists its original holder (PRONET GMBH); Lantronix device documentation
# gives 00-20-4A and 00-80-A3 as its MAC prefixes.
LANTRONIX_OUIS: frozenset[int] = frozenset({0x00204A, 0x0080A3})
DEVICE_ROLES: frozenset[str] = frozenset({"cmi", "isenet", "comserver"})
# Roles one host cannot hold at once; the one with more evidence wins.
EXCLUSIVE_PAIRS: frozenset[frozenset[str]] = frozenset(
    {frozenset({a, b}) for a in DEVICE_ROLES for b in ROLES if a != b}
    | {frozenset({"gemos_server", "gemos_client"}), frozenset({"sescomm_server", "sesam_client"})}
)
MAX_PEERS_NAMED = 3  # peers listed per evidence line before "and N more"
ROLE_COLUMNS = ["ip", "role", "roles", "role_source", "role_evidence"]


class CatalogLike(Protocol):
    @property
    def signatures(self) -> tuple[Signature, ...]: ...


class SiteLike(Protocol):
    @property
    def path(self) -> str: ...

    def is_local(self, ip: str) -> bool: ...

    def roles_for(self, ip: str, macs: frozenset[str] = ...) -> tuple[str, ...]: ...


# --- MAC vendor -------------------------------------------------------------------------


def vendor(mac: str | None) -> str | None:
    """Organisation of the MAC's OUI in netaddr's shipped IEEE registry, or None."""
    oui = _oui(mac) if mac else None
    return None if oui is None else _vendor_of_oui(oui)


@lru_cache(maxsize=65536)
def _vendor_of_oui(oui: int) -> str | None:
    """The organisation netaddr.OUI(oui).registration().org names, read from netaddr's
    shipped registry (oui.idx, oui.txt) without importing netaddr.eui.ieee, which parses
    the whole index with csv at import (0.1-0.2 s of every run's start-up). Cached per
    OUI, not per MAC: a site has thousands of MACs but few vendors."""
    keys, order, spans = _oui_index()
    at = int(np.searchsorted(keys, oui))
    if at >= len(keys) or keys[at] != oui:
        return None
    offset, size = spans[order[at]].tolist()
    with importlib.resources.files("netaddr.eui").joinpath("oui.txt").open("rb") as fh:
        fh.seek(offset)
        record = fh.read(size).decode("utf-8")
    org = ""
    for line in record.split("\n"):  # as netaddr.OUI._parse_data: the last "(hex)" line
        if "(hex)" in line.strip():
            fields = line.strip().split(None, 2)
            if len(fields) < 3:
                return None
            org = fields[2]
    return org.strip() or None


@lru_cache(maxsize=1)
def _oui_index() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """netaddr's oui.idx (lines "oui,offset,size"; an OUI registered twice has two
    lines, netaddr's registration() takes the first): sorted keys, each key's line and
    the (offset, size) of every line."""
    text = importlib.resources.files("netaddr.eui").joinpath("oui.idx").read_text("ascii")
    rows = np.array(text.replace(",", " ").split(), dtype=np.int64).reshape(-1, 3)
    order = np.argsort(rows[:, 0], kind="stable")  # stable: a key's first line first
    return rows[order, 0], order, rows[:, 1:]


def _oui(mac: str) -> int | None:
    """The 24-bit OUI of a MAC; the canonical aa:bb:cc:dd:ee:ff form without netaddr."""
    if len(mac) == 17 and mac[2] == ":" and mac[5] == ":":
        try:
            return int(mac[0:2] + mac[3:5] + mac[6:8], 16)
        except ValueError:
            return None
    try:
        return int(netaddr.EUI(mac)) >> 24
    except (netaddr.AddrFormatError, TypeError, ValueError):
        return None


def is_lantronix(mac: str | None) -> bool:
    return bool(mac) and _device_maker(_oui(mac or "")) == "lantronix"


def is_wut(mac: str | None) -> bool:
    return bool(mac) and _device_maker(_oui(mac or "")) == "wut"


# --- per-connection facts ---------------------------------------------------------------


def answered(flows: pd.DataFrame) -> np.ndarray:
    """True where the responder answered: TCP handshake completed (or mid-stream traffic
    both ways), other transports any packet back. A rejected SYN is not an answer."""
    state = flows["conn_state"].to_numpy()
    resp_pkts = flows["resp_pkts"].to_numpy()
    orig_pkts = flows["orig_pkts"].to_numpy()
    tcp = flows["proto"].to_numpy() == "tcp"
    established = np.isin(state, list(ESTABLISHED_STATES)) | (
        (state == "OTH") & (resp_pkts > 0) & (orig_pkts > 0)
    )
    return np.where(tcp, established, resp_pkts > 0)


def broadcast_flags(flows: pd.DataFrame) -> np.ndarray:
    if "_resp_bcast" in flows.columns:
        return flows["_resp_bcast"].fillna(False).to_numpy(dtype=bool)
    return np.zeros(len(flows), dtype=bool)


def broadcast_answers(flows: pd.DataFrame) -> np.ndarray:
    """True for a unicast UDP flow A:pa -> B:pb where B broadcast from pb to pa: an
    answer to a broadcast request (its own connection, contract "Originator")."""
    out = np.zeros(len(flows), dtype=bool)
    if not len(flows):
        return out
    bcast = broadcast_flags(flows)
    udp = flows["proto"].to_numpy() == "udp"
    requests = flows[bcast & udp]
    if not len(requests):
        return out
    keys = set(
        zip(
            requests["orig_h"].tolist(),
            requests["orig_p"].tolist(),
            requests["resp_p"].tolist(),
            strict=True,
        )
    )
    candidates = np.flatnonzero(udp & ~bcast)
    sub = flows.iloc[candidates]
    hits = [
        key in keys
        for key in zip(
            sub["resp_h"].tolist(), sub["resp_p"].tolist(), sub["orig_p"].tolist(), strict=True
        )
    ]
    out[candidates[np.asarray(hits, dtype=bool)]] = True
    return out


def own_macs(
    flows: pd.DataFrame, arp: pd.DataFrame, hosts: pd.DataFrame, is_local: Callable[[str], bool]
) -> dict[str, list[str]]:
    """MACs seen as each local IP's own source, best first: ARP pairs (most frequent
    first), then Ethernet sources of its IP packets. A MAC that is also the source of a
    non-local address is a router's and is never taken as a local host's own MAC.
    Worked on integer codes of the addresses and MACs (numpy), not on the strings."""
    parts = []  # (ips, macs, priority): 0 = ARP, 1 = source of IP packets
    if len(arp):
        parts.append((arp["ip"], arp["mac"], 0))
    if len(flows) and "orig_mac" in flows.columns:
        parts.append((flows["orig_h"], flows["orig_mac"], 1))
    if len(flows) and "resp_mac" in flows.columns:
        unicast = ~broadcast_flags(flows)
        parts.append((flows["resp_h"][unicast], flows["resp_mac"][unicast], 1))
    if len(hosts) and "mac" in hosts.columns:
        parts.append((hosts["ip"], hosts["mac"], 1))
    if not parts:
        return {}
    ips = pa.concat_arrays([_text(p[0]) for p in parts])
    macs = pa.concat_arrays([_text(p[1]) for p in parts])
    prio = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int64) for p in parts])
    given = pc.and_(pc.and_(ips.is_valid(), macs.is_valid()), pc.not_equal(macs, ""))
    given = given.fill_null(False)
    ips, macs = ips.filter(given), macs.filter(given)
    prio = prio[given.to_numpy(zero_copy_only=False)]
    if not len(ips):
        return {}
    mac_code, lowered = _lower_codes(macs)
    local = _local_of(ips, is_local)
    sources = prio == 1
    routers = np.unique(mac_code[sources & ~local])
    keep = local & ~(sources & np.isin(mac_code, routers))
    kept = ips.filter(pa.array(keep)).dictionary_encode()  # codes in order of appearance
    ip_code = kept.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    ip_text = kept.dictionary.to_numpy(zero_copy_only=False)
    mac_code, prio = mac_code[keep], prio[keep]
    if not len(ip_code):
        return {}
    pair, first, inverse = np.unique(
        ip_code.astype(np.int64) * len(lowered) + mac_code, return_index=True, return_inverse=True
    )
    best = np.full(len(pair), 2, dtype=np.int64)
    np.minimum.at(best, inverse.reshape(-1), prio)
    size = np.bincount(inverse.reshape(-1), minlength=len(pair))
    pair_ip, pair_mac = ip_code[first], mac_code[first]
    order = np.lexsort((pair_mac, -size, best, pair_ip))
    pair_ip, names = pair_ip[order], lowered[pair_mac[order]].tolist()
    cuts = (np.flatnonzero(np.diff(pair_ip)) + 1).tolist()
    starts = [0, *cuts]
    owners = np.asarray(ip_text, dtype=object)[pair_ip[starts]].tolist()
    spans = zip(starts, [*cuts, len(names)], strict=True)
    return dict(zip(owners, [names[a:b] for a, b in spans], strict=True))


def _text(column: Any) -> pa.Array:
    """A column of text (pandas str or object, None for none) as one Arrow array."""
    arr = pa.array(column, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _local_of(ips: pa.Array, is_local: Callable[[str], bool]) -> np.ndarray:
    """local_mask of each address, asked once per distinct address."""
    encoded = ips.dictionary_encode()
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    return local_mask(distinct, is_local)[encoded.indices.to_numpy(zero_copy_only=False)]


def _lower_codes(macs: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the lower-cased MACs, numbered in their sorted order, and those MACs."""
    encoded = macs.dictionary_encode()
    lower = pc.utf8_lower(encoded.dictionary).to_numpy(zero_copy_only=False)
    merged, lowered = pd.factorize(lower, sort=True)
    code = encoded.indices.to_numpy(zero_copy_only=False)
    return merged[code], np.asarray(lowered, dtype=object)


def local_mask(ips: pd.Series | np.ndarray, is_local: Callable[[str], bool]) -> np.ndarray:
    """is_local for each element, called once per distinct address (a Locality: in bulk)."""
    if isinstance(is_local, Locality):
        return is_local.mask(ips)
    codes, uniques = pd.factorize(ips)
    flags = np.fromiter((is_local(ip) for ip in uniques.tolist()), dtype=bool, count=len(uniques))
    return flags[codes] if len(codes) else np.zeros(0, dtype=bool)


# --- evidence ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """One observation: `ip` behaved like one of `roles` (several = ambiguous)."""

    ip: str
    roles: tuple[str, ...]
    what: str  # "accepted 41796/tcp from", "opened 41801/tcp to", "MAC vendor Lantronix"
    peer: str | None
    weight: int  # connections
    supporting: bool = False  # vendor / DNS: counts only for a role behaviour shows


@dataclass(frozen=True)
class _Columns:
    """The flow columns evidence reads, converted from pandas once (not per signature)."""

    proto: np.ndarray
    orig_h: np.ndarray
    resp_h: np.ndarray
    orig_p: np.ndarray
    resp_p: np.ndarray

    @classmethod
    def of(cls, flows: pd.DataFrame) -> _Columns:
        return cls(
            proto=flows["proto"].to_numpy(dtype=object),
            orig_h=flows["orig_h"].to_numpy(dtype=object),
            resp_h=flows["resp_h"].to_numpy(dtype=object),
            orig_p=flows["orig_p"].to_numpy(),
            resp_p=flows["resp_p"].to_numpy(),
        )


def _sig_matches(sig: Signature, cols: _Columns) -> np.ndarray:
    port = cols.orig_p if sig.transport in ("icmp", "icmp6") else cols.resp_p
    mask = (cols.proto == sig.transport) & np.isin(port, list(sig.ports))
    if sig.orig_ports is not None:
        mask &= np.isin(cols.orig_p, list(sig.orig_ports))
    return mask


def _scope_ok(sig: Signature, resp_local: np.ndarray) -> np.ndarray:
    if sig.scope == "internet":
        return ~resp_local
    if sig.scope == "local":
        return resp_local
    return np.ones(len(resp_local), dtype=bool)


def _label(sig: Signature, port: int) -> str:
    return f"{port}/{sig.transport}" if sig.transport in ("tcp", "udp") else sig.transport


def signature_evidence(
    flows: pd.DataFrame, catalog: CatalogLike, is_local: Callable[[str], bool]
) -> list[Evidence]:
    """Evidence from connections matching distinctive signatures (contract "Generic vs
    distinctive ports"): openers get the signature's orig roles, responders that
    answered get its resp roles; an answer to a broadcast counts for the answering side."""
    if not len(flows):
        return []
    resp_local = local_mask(flows["resp_h"], is_local)
    ans = answered(flows)
    bcast = broadcast_flags(flows)
    reply = broadcast_answers(flows)
    cols = _Columns.of(flows)
    items: list[Evidence] = []
    for sig in catalog.signatures:
        if sig.generic or sig.status not in EVIDENCE_STATUSES:
            continue
        mask = _sig_matches(sig, cols) & _scope_ok(sig, resp_local)
        if not mask.any():
            continue
        items += _items_for(sig, cols, mask, ans, bcast, reply)
    return items


def _items_for(
    sig: Signature,
    cols: _Columns,
    mask: np.ndarray,
    ans: np.ndarray,
    bcast: np.ndarray,
    reply: np.ndarray,
) -> list[Evidence]:
    items: list[Evidence] = []
    orig_roles = _ordered(sig.orig_roles)
    resp_roles = _ordered(sig.resp_roles)
    rows = np.flatnonzero(mask)
    o_h = cols.orig_h[rows]
    r_h = cols.resp_h[rows]
    port = cols.resp_p[rows]
    for k, i in enumerate(rows.tolist()):
        label = _label(sig, int(port[k]))
        if reply[i]:  # the originator answers a broadcast request: the responding side
            if resp_roles:
                items.append(
                    Evidence(o_h[k], resp_roles, f"answered {label} search from", r_h[k], 1)
                )
            continue
        if orig_roles:
            items.append(Evidence(o_h[k], orig_roles, f"opened {label} to", r_h[k], 1))
        if resp_roles and ans[i] and not bcast[i]:
            verb = "accepted" if sig.transport == "tcp" else "answered"
            items.append(Evidence(r_h[k], resp_roles, f"{verb} {label} from", o_h[k], 1))
    return items


def _ordered(roles: Iterable[str]) -> tuple[str, ...]:
    """A frozenset loses the catalog's order: use ROLES order, but Sesam's client first as
    the document words it ("Sesam software (client or SesComm)"); the first role takes
    an ambiguous item when the host has no other evidence."""
    order = {"sesam_client": -1}
    return tuple(sorted(roles, key=lambda r: (order.get(r, 0), ROLES.index(r))))


def vendor_evidence(macs: Mapping[str, list[str]]) -> list[Evidence]:
    """Supporting evidence: W&T OUI -> comserver; Lantronix OUI -> isenet or comserver
    (whichever the host's own connections show; neither without them)."""
    items = []
    for ip, found in macs.items():
        if not found:
            continue
        mac = found[0]
        kind = _device_maker(_oui(mac))
        if kind == "wut":
            what = f"MAC vendor {vendor(mac)}"
            items.append(Evidence(ip, ("comserver",), what, None, 1, supporting=True))
        elif kind == "lantronix":
            what = "MAC vendor Lantronix"
            items.append(Evidence(ip, ("isenet", "comserver"), what, None, 1, supporting=True))
    return items


@lru_cache(maxsize=65536)
def _device_maker(oui: int | None) -> str | None:
    """is_wut / is_lantronix for one OUI (checked once per OUI, not per host)."""
    if oui is None:
        return None
    org = (_vendor_of_oui(oui) or "").upper()
    if any(o in org for o in WUT_ORGS):
        return "wut"
    if any(o in org for o in LANTRONIX_ORGS) or oui in LANTRONIX_OUIS:
        return "lantronix"
    return None


def dns_evidence(answers: pd.DataFrame, catalog: CatalogLike) -> list[Evidence]:
    """Clients asking for the C.M.I.'s distinctive TA server names: supporting evidence for
    cmi (counted only for a host with other cmi evidence: a DNS forwarder asks too)."""
    names = {
        n for s in catalog.signatures if s.system == "cmi" and not s.generic for n in s.remote_hosts
    }
    if not len(answers) or not names:
        return []
    asked = answers[answers["qname"].isin(names)].drop_duplicates(["client", "qname", "ts"])
    return [
        Evidence(c, ("cmi",), f"asked DNS for {q}", None, 1, supporting=True)
        for c, q in zip(asked["client"].tolist(), asked["qname"].tolist(), strict=True)
    ]


# --- weighing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inferred:
    roles: tuple[str, ...]  # strongest first
    evidence: str


def weigh(items: Iterable[Evidence]) -> dict[str, Inferred]:
    """Per host: count evidence per role, resolve ambiguous items towards roles already
    supported, drop conflicting roles by majority."""
    by_host: dict[str, list[Evidence]] = defaultdict(list)
    for item in items:
        by_host[item.ip].append(item)
    out = {}
    for ip, host_items in by_host.items():
        inferred = _weigh_host(host_items)
        if inferred is not None:
            out[ip] = inferred
    return out


def _weigh_host(items: list[Evidence]) -> Inferred | None:
    firm = [i for i in items if len(i.roles) == 1 and not i.supporting]
    score: dict[str, int] = defaultdict(int)
    for item in firm:
        score[item.roles[0]] += item.weight
    assigned: list[tuple[str, Evidence]] = [(i.roles[0], i) for i in firm]
    for item in items:
        if item.supporting:
            role = _supported(item, score)
            if role is not None:
                assigned.append((role, item))
        elif len(item.roles) > 1:
            assigned.append((_pick(item, score), item))
    totals: dict[str, int] = defaultdict(int)
    for role, item in assigned:
        totals[role] += item.weight
    kept, dropped = _resolve(totals)
    if not kept:
        return None
    text = _describe(kept, dropped, assigned, totals)
    return Inferred(tuple(kept), text)


def _supported(item: Evidence, score: Mapping[str, int]) -> str | None:
    """The role a vendor/DNS item supports: one of its roles that behaviour shows (the
    best supported), else None (it gives no role on its own)."""
    shown = [r for r in item.roles if score.get(r)]
    return max(shown, key=lambda r: score[r]) if shown else None


def _pick(item: Evidence, score: Mapping[str, int]) -> str:
    supported = [r for r in item.roles if score.get(r)]
    if supported:
        return max(supported, key=lambda r: score[r])
    return item.roles[0]


def _resolve(totals: Mapping[str, int]) -> tuple[list[str], list[str]]:
    kept: list[str] = []
    dropped: list[str] = []
    for role in sorted(totals, key=lambda r: (-totals[r], ROLES.index(r))):
        if any(frozenset({role, k}) in EXCLUSIVE_PAIRS for k in kept):
            dropped.append(role)
        else:
            kept.append(role)
    return kept, dropped


def _describe(
    kept: list[str],
    dropped: list[str],
    assigned: list[tuple[str, Evidence]],
    totals: Mapping[str, int],
) -> str:
    parts = []
    for role in kept:
        lines = _lines([i for r, i in assigned if r == role])
        parts.append(f"{role}: {'; '.join(lines)}")
    text = ". ".join(parts)
    if dropped:
        outweighed = ", ".join(f"{r} ({_conns(totals[r])})" for r in dropped)
        text += f". Outweighs {outweighed}"
    return text


def _conns(n: int) -> str:
    return f"{n} connection" if n == 1 else f"{n} connections"


def _lines(items: list[Evidence]) -> list[str]:
    groups: dict[tuple[str, bool], dict[str, int]] = {}
    for item in items:
        peers = groups.setdefault((item.what, item.supporting), {})
        key = item.peer if item.peer is not None else ""
        peers[key] = peers.get(key, 0) + item.weight
    out = []
    for (what, supporting), peers in groups.items():
        note = ", supporting" if supporting else ""
        if set(peers) == {""}:
            if what.startswith("MAC"):
                out.append(f"{what} (supporting)" if supporting else what)
            else:
                out.append(f"{what} ({peers['']} times{note})")
            continue
        names = sorted(p for p in peers if p)
        shown = ", ".join(names[:MAX_PEERS_NAMED])
        if len(names) > MAX_PEERS_NAMED:
            shown += f" and {len(names) - MAX_PEERS_NAMED} more"
        out.append(f"{what} {shown} ({_conns(sum(peers.values()))}{note})")
    return out


# --- the whole table ------------------------------------------------------------------------


def infer_roles(
    flows: pd.DataFrame,
    hosts: pd.DataFrame,
    arp: pd.DataFrame,
    catalog: CatalogLike,
    site: SiteLike | None,
    *,
    dns: pd.DataFrame | None = None,
    is_local: Callable[[str], bool] | None = None,
    macs: Mapping[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Roles of every address in `hosts` (and any flow endpoint) with where they came
    from. `dns` is services.dns_answers' table (optional supporting evidence)."""
    local = is_local or (site.is_local if site is not None else default_is_local)
    if macs is None:
        macs = own_macs(flows, arp, hosts, local)
    items = signature_evidence(flows, catalog, local) + vendor_evidence(macs)
    if dns is not None:
        items += dns_evidence(dns, catalog)
    inferred = weigh(items)
    addresses = _addresses(flows, hosts, arp)
    if site is not None:
        rows = [_row(ip, inferred.get(ip), site, macs.get(ip, [])) for ip in addresses]
        return pd.DataFrame(rows, columns=ROLE_COLUMNS)
    return _inferred_rows(addresses, inferred)


def _inferred_rows(addresses: list[str], inferred: Mapping[str, Inferred]) -> pd.DataFrame:
    """The rows _row gives without a site file, column by column: only the addresses
    with inferred roles are visited (most addresses of a capture have none)."""
    n = len(addresses)
    role: list[str | None] = [None] * n
    source: list[str | None] = [None] * n
    evidence: list[str | None] = [None] * n
    held: list[list[str]] = [[] for _ in range(n)]
    ips = list(inferred)
    where = pd.Index(addresses, dtype=object).get_indexer(ips) if ips else []
    for ip, i in zip(ips, list(where), strict=True):
        if i < 0:
            continue
        found = inferred[ip]
        role[i], held[i] = found.roles[0], list(found.roles)
        source[i], evidence[i] = "inferred", found.evidence
    columns = {
        "ip": addresses,
        "role": role,
        "roles": held,
        "role_source": source,
        "role_evidence": evidence,
    }
    return pd.DataFrame(columns, columns=ROLE_COLUMNS)


def _addresses(flows: pd.DataFrame, hosts: pd.DataFrame, arp: pd.DataFrame) -> list[str]:
    seen: dict[str, None] = {}
    if len(hosts):
        seen.update(dict.fromkeys(hosts["ip"].tolist()))
    if len(arp):
        seen.update(dict.fromkeys(arp["ip"].tolist()))
    if len(flows):
        seen.update(dict.fromkeys(flows["orig_h"].tolist()))
        keep = ~broadcast_flags(flows)
        seen.update(dict.fromkeys(flows["resp_h"].to_numpy(dtype=object)[keep].tolist()))
    return list(seen)


def _row(
    ip: str, inferred: Inferred | None, site: SiteLike | None, macs: list[str]
) -> dict[str, Any]:
    site_roles = site.roles_for(ip, frozenset(macs)) if site is not None else ()
    if site_roles:
        return {
            "ip": ip,
            "role": site_roles[0],
            "roles": list(site_roles),
            "role_source": "site",
            "role_evidence": f"given in {site.path}" if site is not None else None,
        }
    if inferred is None:
        return {"ip": ip, "role": None, "roles": [], "role_source": None, "role_evidence": None}
    return {
        "ip": ip,
        "role": inferred.roles[0],
        "roles": list(inferred.roles),
        "role_source": "inferred",
        "role_evidence": inferred.evidence,
    }


def default_is_local(ip: str) -> bool:
    """Contract default local networks (RFC 1918, link-local, ULA) without a site file."""
    return site_is_local(ip, DEFAULT_NETWORKS)


def default_local_flags(ips: Sequence[str]) -> np.ndarray:
    """default_is_local of each of `ips`, in bulk."""
    return local_flags(ips, DEFAULT_NETWORKS)


DEFAULT_NETWORKS = default_networks()
