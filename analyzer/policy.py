"""The site's documented connections as a firewall allow-list (nftables).

    policy = build_policy(catalog, site)                   # every documented connection
    policy = build_policy(catalog, site, seen=load_seen(p)) # only what a capture saw expected
    text = render_nftables(policy)

An `inet` table `pcapclass` with a `forward` chain: default drop, replies of accepted
connections (conntrack established/related) accepted, and one accept rule per catalog
signature between the site's hosts holding its roles:

- only in the documented direction (`direction = "either"` gives both): a
  `wrong_direction` connection is dropped;
- an open side ("any host") is narrowed by the signature's scope: `local` keeps both
  ends inside the site's local networks, `internet` sends the responder outside them;
- an open responder never includes a C.M.I. (`responder_exclusions`): a C.M.I. accepts
  only the rules that name it as responder, its documented local services, from local
  hosts, and the site's `[[allow]]` entries;
- the catalog's `common` signatures (DNS, NTP, DHCP, ...) only for the roles whose
  `[[infrastructure]]` entry lists them (`infrastructure_roles`, the same catalog data
  classify reads); an open side ("any host") never includes a device whose documents
  list its own ports (ISENet, com server, C.M.I.: `any_host = false`) unless the
  signature names its role, nor, for a common signature, a role that may not use it
  (`barred_roles`);
- `rare` and `obsolete` signatures are written commented out, to enable by hand;
  reserved and placeholder ranges document no service and get no rule;
- the site's port overrides (through `classify.site_catalog`) and `[[allow]]` entries.

A host given by MAC only cannot be written: a firewall that forwards a packet sees the
MAC of the last hop, and never the responder's. Such hosts are listed in `notes`, with
the rules they miss. With `seen`, the IP addresses the capture showed for that MAC
(its hosts table) stand in for it.

Every rule carries a comment with the signature id and the document file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import __version__
from .classify import site_catalog
from .errors import UsageError
from .schema import ROLES
from .signatures import NOT_A_SERVICE, Catalog, Signature, port_ranges
from .site import LINK_LOCAL_NETWORKS, IPNetwork, Site, SiteHost

TABLE = "pcapclass"
CHAIN = "forward"
ENABLED_STATUSES = frozenset({"active", "auto-assigned"})  # verdict `expected`
DISABLED_STATUSES = frozenset({"rare", "obsolete"})  # documented, but findings: commented out
NFT_COMMENT_MAX = 128  # nftables' limit on a rule comment (NFT_USERDATA_MAXLEN)
FAMILIES = (4, 6)
CMI_ROLE = "cmi"


def infrastructure_roles(catalog: Catalog, sig: Signature) -> frozenset[str]:
    """The roles that may use a `common` signature's connection: the catalog's
    [[infrastructure]] entries that list it (contract "Common infrastructure per role")."""
    return catalog.infrastructure_roles(sig.id)


def barred_roles(catalog: Catalog, sig: Signature) -> frozenset[str]:
    """The roles that may not be at an open side ("any host") of `sig`'s rules, as
    classify reads the catalog: devices whose documents list their own ports
    ([[infrastructure]] any_host = false) unless `sig` names their role, and for a common
    signature every role whose entry does not list it."""
    barred = frozenset(ROLES) - catalog.any_host_roles() - sig.orig_roles - sig.resp_roles
    if sig.system == "common":
        barred |= frozenset(ROLES) - infrastructure_roles(catalog, sig)
    return barred


# --- one side of a rule ---------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """Who may be at one end: named hosts (`roles` set) or any host, narrowed by scope."""

    label: str  # "gemos_client", "any host", "192.168.10.77", ...
    addrs: frozenset[IPNetwork] | None  # None = any address
    set_name: str | None = None  # the named nftables set holding `addrs` (roles)
    within_local: bool = False
    outside_local: bool = False
    exclude: frozenset[IPNetwork] = frozenset()
    exclude_set: str | None = None

    def of_family(self, version: int) -> Side | None:
        """This side restricted to one IP version; None when it holds no such address."""
        if self.addrs is None:
            return self
        addrs = frozenset(a for a in self.addrs if a.version == version)
        if not addrs:
            return None
        return Side(
            self.label,
            addrs,
            self.set_name,
            self.within_local,
            self.outside_local,
            self.exclude,
            self.exclude_set,
        )

    def matches(self, ip: str, local: Iterable[IPNetwork]) -> bool:
        addr = ipaddress.ip_address(ip)
        nets = list(local)
        if self.addrs is not None and not any(_in(addr, a) for a in self.addrs):
            return False
        if self.within_local and not any(_in(addr, n) for n in nets):
            return False
        if self.outside_local and any(_in(addr, n) for n in nets):
            return False
        return not any(_in(addr, n) for n in self.exclude)


def _in(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, net: IPNetwork) -> bool:
    return addr.version == net.version and addr in net


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One accept rule of one IP version."""

    ids: tuple[str, ...]  # signature ids or site:allow:<n>
    notes: tuple[str, ...]  # the comment lines above the rule (name, document, section)
    document: str  # the source document file (or the site file)
    version: int  # 4 or 6
    proto: str  # tcp, udp, icmp, icmp6
    orig: Side
    resp: Side
    sports: frozenset[int] | None  # originator ports, None = any
    dports: frozenset[int]  # responder ports; ICMP: the originator's type
    enabled: bool = True
    disabled_why: str = ""

    def accepts(
        self, orig_h: str, resp_h: str, proto: str, orig_p: int, resp_p: int, local: Sequence
    ) -> bool:
        """Whether this rule lets the connection's first packet through."""
        if not self.enabled or proto != self.proto:
            return False
        if ipaddress.ip_address(orig_h).version != self.version:
            return False
        if proto in ("icmp", "icmp6"):
            if orig_p not in self.dports:
                return False
        elif resp_p not in self.dports or (self.sports is not None and orig_p not in self.sports):
            return False
        return self.orig.matches(orig_h, local) and self.resp.matches(resp_h, local)


@dataclass(frozen=True)
class Dropped:
    """Seen connections (grouped) that the ruleset would drop, and why."""

    verdict: str
    signature_id: str | None
    orig_h: str
    resp_h: str
    proto: str
    resp_p: int
    flows: int
    why: str


@dataclass(frozen=True)
class Policy:
    site: Site
    catalog_sha256: str
    local: tuple[IPNetwork, ...]  # the site's local networks plus link-local, collapsed
    role_sets: dict[str, frozenset[IPNetwork]]  # set name -> addresses
    rules: tuple[Rule, ...]
    notes: tuple[str, ...]  # what could not be written, and why
    seen_from: str | None = None
    dropped: tuple[Dropped, ...] = ()
    link_only: int = 0  # seen connections that stay on their link (no forward rule needed)

    def accepts(self, orig_h: str, resp_h: str, proto: str, orig_p: int, resp_p: int) -> bool:
        return any(r.accepts(orig_h, resp_h, proto, orig_p, resp_p, self.local) for r in self.rules)

    def accepting(
        self, orig_h: str, resp_h: str, proto: str, orig_p: int, resp_p: int
    ) -> Rule | None:
        for rule in self.rules:
            if rule.accepts(orig_h, resp_h, proto, orig_p, resp_p, self.local):
                return rule
        return None


@dataclass(frozen=True)
class Seen:
    """What one capture output folder or batch dataset saw."""

    path: str
    flows: pa.Table
    hosts: pa.Table | None


# --- who holds a role --------------------------------------------------------------------------


@dataclass
class _Inventory:
    """The site's hosts by role: addresses where known, MAC-only hosts apart."""

    by_role: dict[str, set[IPNetwork]] = field(default_factory=dict)
    mac_only: dict[str, list[SiteHost]] = field(default_factory=dict)  # role -> hosts
    resolved: dict[str, list[str]] = field(default_factory=dict)  # mac -> IPs from a capture
    missed: dict[str, list[str]] = field(default_factory=dict)  # mac -> rule ids not covering it
    groups: dict[frozenset[str], str] = field(default_factory=dict)  # roles -> catalog group

    def side(self, roles: frozenset[str]) -> Side:
        addrs: set[IPNetwork] = set()
        for role in sorted(roles):
            addrs |= self.by_role.get(role, set())
        label = "/".join(sorted(roles))
        name = _set_name(roles, self.groups)
        return Side(label, frozenset(addrs), name)

    def addresses(self, roles: Iterable[str]) -> frozenset[IPNetwork]:
        out: set[IPNetwork] = set()
        for role in roles:
            out |= self.by_role.get(role, set())
        return frozenset(out)

    def note_missing(self, roles: frozenset[str], rule_id: str) -> None:
        for role in sorted(roles):
            for host in self.mac_only.get(role, []):
                if host.key not in self.resolved:
                    ids = self.missed.setdefault(host.key, [])
                    if rule_id not in ids:
                        ids.append(rule_id)


def _set_name(roles: frozenset[str], groups: Mapping[frozenset[str], str]) -> str:
    """Set of the hosts holding any of `roles`: the catalog's [[infrastructure]] group name
    when the roles are exactly one group's with several roles ("pc"), else the roles."""
    group = groups.get(roles)
    if group is not None and len(roles) > 1:
        return group
    return "_".join(r for r in ROLES if r in roles)


def _host_ips_for_mac(seen: Seen | None, mac: str, site: Site) -> list[str]:
    """Local IP addresses a capture showed with this MAC as their own source."""
    if seen is None or seen.hosts is None or not seen.hosts.num_rows:
        return []
    hosts = seen.hosts
    mask = pc.equal(pc.utf8_lower(hosts.column("mac")), mac.lower())
    ips = pc.filter(hosts.column("ip"), pc.fill_null(mask, False)).to_pylist()
    return sorted({ip for ip in ips if site.is_local(ip)}, key=ipaddress.ip_address)


def _inventory(site: Site, seen: Seen | None, catalog: Catalog) -> _Inventory:
    inv = _Inventory(groups={entry.roles: entry.group for entry in catalog.infrastructure})
    for host in site.hosts:
        if host.by == "ip":
            for role in host.roles:
                inv.by_role.setdefault(role, set()).add(ipaddress.ip_network(host.key))
            continue
        ips = _host_ips_for_mac(seen, host.key, site)
        if ips:
            inv.resolved[host.key] = ips
        for role in host.roles:
            if ips:
                inv.by_role.setdefault(role, set()).update(ipaddress.ip_network(i) for i in ips)
            else:
                inv.mac_only.setdefault(role, []).append(host)
    return inv


# --- from signatures to rules ---------------------------------------------------------------


def responder_exclusions(inv: _Inventory, local: Sequence[IPNetwork]) -> frozenset[IPNetwork]:
    """An open responder ("any host") never includes a C.M.I.: the C.M.I. only opens
    connections itself, apart from the services whose rules name it as responder."""
    return frozenset(inv.by_role.get(CMI_ROLE, set()))


def _open_side(
    sig: Signature,
    *,
    responder: bool,
    inv: _Inventory,
    local: Sequence[IPNetwork],
    barred: frozenset[str] = frozenset(),
) -> Side:
    """ "Any host" narrowed by the scope, without the hosts of `barred` roles (and, as
    responder outside the internet scope, without the C.M.I.s)."""
    scope = sig.scope
    label = "any local host" if scope == "local" else "any host"
    roles = barred
    if responder and scope != "internet":
        roles = roles | {CMI_ROLE}
    exclude = inv.addresses(sorted(roles))
    if responder and scope != "internet":
        exclude = exclude | responder_exclusions(inv, local)
    present = frozenset(r for r in roles if inv.by_role.get(r))  # names the set
    return Side(
        label,
        None,
        within_local=scope == "local",
        outside_local=responder and scope == "internet",
        exclude=exclude,
        exclude_set=_set_name(present, inv.groups) if exclude else None,
    )


def _role_pairs(catalog: Catalog, sig: Signature) -> list[tuple[frozenset[str], frozenset[str]]]:
    """(originator roles, responder roles) in each documented direction."""
    orig_roles = sig.orig_roles
    if sig.system == "common" and not orig_roles:
        orig_roles = infrastructure_roles(catalog, sig)
    pairs = [(orig_roles, sig.resp_roles)]
    if sig.direction == "either":
        pairs.append((sig.resp_roles, orig_roles))
    return pairs


def _describe(sig: Signature) -> tuple[str, ...]:
    versions = f"; {sig.versions}" if sig.versions else ""
    remote = f"; destination {', '.join(sig.remote_hosts)}" if sig.remote_hosts else ""
    return (
        f"{sig.id} (rev {sig.revision}, {sig.status}): {sig.name}{versions}{remote}",
        f'  source: {sig.source.document}, section "{sig.source.section}"',
    )


def _signature_rules(
    catalog: Catalog, sig: Signature, inv: _Inventory, local: Sequence[IPNetwork]
) -> list[Rule]:
    if sig.status in NOT_A_SERVICE:
        return []
    enabled = sig.status in ENABLED_STATUSES
    why = "" if enabled else f"{sig.status}: a finding when seen; enable by hand if needed"
    rules: list[Rule] = []
    barred = barred_roles(catalog, sig)
    for orig_roles, resp_roles in _role_pairs(catalog, sig):
        if orig_roles:
            inv.note_missing(orig_roles, sig.id)
            orig = inv.side(orig_roles)
        else:
            orig = _open_side(sig, responder=False, inv=inv, local=local, barred=barred)
        if resp_roles:
            inv.note_missing(resp_roles, sig.id)
            resp = inv.side(resp_roles)
        else:
            resp = _open_side(sig, responder=True, inv=inv, local=local, barred=barred)
        for version in _versions(sig.transport):
            o, r = orig.of_family(version), resp.of_family(version)
            if o is None or r is None:
                continue
            rules.append(
                Rule(
                    ids=(sig.id,),
                    notes=_describe(sig),
                    document=sig.source.document,
                    version=version,
                    proto=sig.transport,
                    orig=o,
                    resp=r,
                    sports=sig.orig_ports,
                    dports=sig.ports,
                    enabled=enabled,
                    disabled_why=why,
                )
            )
    return rules


def _versions(transport: str) -> tuple[int, ...]:
    if transport == "icmp":
        return (4,)
    if transport == "icmp6":
        return (6,)
    return FAMILIES


def _allow_rules(site: Site, notes: list[str]) -> list[Rule]:
    rules = []
    for allow in site.allows:
        if allow.orig.version != allow.resp.version:
            notes.append(
                f"{allow.signature_id} (line {allow.line}): orig and resp are of different IP "
                "versions; no connection can match, no rule written"
            )
            continue
        rules.append(
            Rule(
                ids=(allow.signature_id,),
                notes=(
                    f"{allow.signature_id}: {allow.reason}",
                    f"  source: {Path(site.path).name}",
                ),
                document=Path(site.path).name,
                version=allow.orig.version,
                proto=allow.proto,
                orig=Side(str(allow.orig), frozenset({allow.orig})),
                resp=Side(str(allow.resp), frozenset({allow.resp})),
                sports=None,
                dports=frozenset({allow.port}),
            )
        )
    return rules


def _local_networks(site: Site) -> tuple[IPNetwork, ...]:
    nets = list(site.local_networks) + [ipaddress.ip_network(n) for n in LINK_LOCAL_NETWORKS]
    out: list[IPNetwork] = []
    for version in FAMILIES:
        same = [n for n in nets if n.version == version]
        out.extend(ipaddress.collapse_addresses(same))  # type: ignore[type-var,arg-type]
    return tuple(out)


def _mac_notes(site: Site, inv: _Inventory) -> list[str]:
    notes = []
    for host in site.hosts:
        if host.by != "mac":
            continue
        name = f"{host.name} " if host.name else ""
        roles = ", ".join(host.roles)
        if host.key in inv.resolved:
            ips = ", ".join(inv.resolved[host.key])
            notes.append(
                f"host {name}(mac {host.key}, {roles}) is given by MAC only: written with the "
                f"address(es) the capture showed for it: {ips}"
            )
            continue
        missed = inv.missed.get(host.key, [])
        if not missed:
            continue
        notes.append(
            f"host {name}(mac {host.key}, {roles}) is given by MAC only: left out of the rules "
            f"of {len(missed)} signature(s) ({', '.join(missed)}); a forwarding firewall sees the "
            "last hop's MAC, never the responder's; give its address in the site file "
            '(ip = "...") or use --from with a capture that shows it'
        )
        if CMI_ROLE in host.roles:
            notes.append(
                f"host {name}(mac {host.key}) is a C.M.I. without an address: rules whose "
                "responder is any host cannot exclude it, so connections towards it are not "
                "blocked by those rules; give its address in the site file"
            )
    return notes


def _role_sets(rules: Iterable[Rule]) -> dict[str, frozenset[IPNetwork]]:
    sets: dict[str, set[IPNetwork]] = {}
    for rule in rules:
        for side in (rule.orig, rule.resp):
            if side.set_name and side.addrs:
                sets.setdefault(_family_set(side.set_name, rule.version), set()).update(side.addrs)
            if side.exclude_set and side.exclude:
                name = _family_set(side.exclude_set, rule.version)
                sets.setdefault(name, set()).update(
                    a for a in side.exclude if a.version == rule.version
                )
    return {k: frozenset(v) for k, v in sorted(sets.items()) if v}


def _family_set(name: str, version: int) -> str:
    return f"{name}_v{version}"


def build_policy(catalog: Catalog, site: Site, *, seen: Seen | None = None) -> Policy:
    """The allow-list for `site` from the catalog (with the site's overrides); with `seen`,
    narrowed to the connections it saw classified expected, and the rest listed."""
    effective = site_catalog(catalog, site)
    inv = _inventory(site, seen, effective)
    local = _local_networks(site)
    notes: list[str] = []
    rules: list[Rule] = []
    for sig in effective.signatures:
        rules.extend(_signature_rules(effective, sig, inv, local))
    rules.extend(_allow_rules(site, notes))
    notes = _mac_notes(site, inv) + notes
    policy = Policy(site, catalog.sha256, local, _role_sets(rules), tuple(rules), tuple(notes))
    if seen is None:
        return policy
    return _narrow(policy, seen)


# --- narrowing to what was seen -----------------------------------------------------------------


def _narrow(policy: Policy, seen: Seen) -> Policy:
    """Keep, per accepting rule, exactly the hosts and ports seen classified `expected`;
    everything else seen is what the narrowed ruleset drops."""
    columns = ["orig_h", "resp_h", "proto", "orig_p", "resp_p", "verdict", "signature_id"]
    rows = seen.flows.select(columns).to_pylist()
    kept: dict[tuple[Rule, str, str, int | None], set[int]] = {}
    dropped: dict[tuple[str, str | None, str, str, str, int, str], int] = {}
    link_only = 0
    for row in rows:
        if stays_on_link(row["orig_h"], row["resp_h"], policy.local):
            link_only += 1
            continue
        rule = policy.accepting(
            row["orig_h"], row["resp_h"], row["proto"], row["orig_p"], row["resp_p"]
        )
        if rule is not None and row["verdict"] == "expected":
            sport = row["orig_p"] if rule.sports is not None else None
            port = row["orig_p"] if rule.proto in ("icmp", "icmp6") else row["resp_p"]
            kept.setdefault((rule, row["orig_h"], row["resp_h"], sport), set()).add(port)
            continue
        if rule is None:
            why = "no rule of the site's policy accepts it"
        else:
            why = f"classified {row['verdict']}, not expected"
        key = (
            row["verdict"],
            row["signature_id"],
            row["orig_h"],
            row["resp_h"],
            row["proto"],
            row["resp_p"],
            why,
        )
        dropped[key] = dropped.get(key, 0) + 1
    rules = []
    for (rule, orig_h, resp_h, sport), ports in kept.items():
        rules.append(
            Rule(
                ids=rule.ids,
                notes=rule.notes,
                document=rule.document,
                version=rule.version,
                proto=rule.proto,
                orig=Side(orig_h, frozenset({ipaddress.ip_network(orig_h)})),
                resp=Side(resp_h, frozenset({ipaddress.ip_network(resp_h)})),
                sports=None if sport is None else frozenset({sport}),
                dports=frozenset(ports),
            )
        )
    order = {rule: i for i, rule in enumerate(policy.rules)}
    rules.sort(key=lambda r: (_rule_index(order, r), _ip_key(r.orig.label), _ip_key(r.resp.label)))
    drops = tuple(
        Dropped(v, s, o, r, p, port, n, why)
        for (v, s, o, r, p, port, why), n in sorted(
            dropped.items(), key=lambda kv: (_ip_key(kv[0][2]), _ip_key(kv[0][3]), kv[0][4:6])
        )
    )
    return Policy(
        policy.site,
        policy.catalog_sha256,
        policy.local,
        {},
        tuple(rules),
        policy.notes,
        seen_from=seen.path,
        dropped=drops,
        link_only=link_only,
    )


def stays_on_link(orig_h: str, resp_h: str, local: Sequence[IPNetwork]) -> bool:
    """A connection no router forwards: to a multicast or broadcast address (the limited
    broadcast or a local network's directed broadcast), or from/to a link-local address.
    A forward chain never sees it, so the narrowed ruleset neither allows nor lists it."""
    orig, resp = ipaddress.ip_address(orig_h), ipaddress.ip_address(resp_h)
    if resp.is_multicast or orig.is_link_local or resp.is_link_local:
        return True
    if resp.version == 4 and (resp == ipaddress.IPv4Address("255.255.255.255")):
        return True
    return any(
        net.version == 4 and net.prefixlen < 31 and resp == net.broadcast_address for net in local
    )


def _rule_index(order: dict[Rule, int], rule: Rule) -> int:
    for original, index in order.items():
        if original.ids == rule.ids and original.version == rule.version:
            return index
    return len(order)


def _ip_key(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    return addr.version, int(addr)


def load_seen(path: str | Path) -> Seen:
    """A capture output folder (flows.parquet, hosts.parquet) or a batch dataset
    (DATASET/flows/, DATASET/hosts/, hive-partitioned)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    where = Path(path)
    if (where / "flows.parquet").is_file():
        hosts_file = where / "hosts.parquet"
        hosts = pq.read_table(hosts_file) if hosts_file.is_file() else None
        return Seen(str(where), pq.read_table(where / "flows.parquet"), hosts)
    if (where / "flows").is_dir():
        flows = ds.dataset(where / "flows", format="parquet", partitioning="hive").to_table()
        hosts = None
        if (where / "hosts").is_dir():
            hosts = ds.dataset(where / "hosts", format="parquet", partitioning="hive").to_table()
        return Seen(str(where), flows, hosts)
    raise UsageError(
        f"{where}: neither a capture output folder (flows.parquet) nor a batch dataset "
        "(flows/); give the -o folder of `pcapclass CAPTURE` or the --out of `pcapclass batch`"
    )


# --- nftables text ------------------------------------------------------------------------------


def _ports(ports: frozenset[int]) -> str:
    parts = port_ranges(ports)
    return parts[0] if len(parts) == 1 and "-" not in parts[0] else "{ " + ", ".join(parts) + " }"


def _addr_match(side: Side, direction: str, version: int) -> list[str]:
    key = f"{'ip' if version == 4 else 'ip6'} {direction}"
    out = []
    if side.addrs is not None:
        if side.set_name:
            out.append(f"{key} @{_family_set(side.set_name, version)}")
        else:
            addrs = sorted(side.addrs, key=lambda n: (int(n.network_address), n.prefixlen))
            texts = [str(a.network_address) if a.num_addresses == 1 else str(a) for a in addrs]
            out.append(
                f"{key} {texts[0]}" if len(texts) == 1 else f"{key} {{ {', '.join(texts)} }}"
            )
    if side.within_local:
        out.append(f"{key} @local_v{version}")
    if side.outside_local:
        out.append(f"{key} != @local_v{version}")
    if side.exclude_set and any(a.version == version for a in side.exclude):
        out.append(f"{key} != @{_family_set(side.exclude_set, version)}")
    return out


def _match(rule: Rule) -> str:
    parts = _addr_match(rule.orig, "saddr", rule.version)
    parts += _addr_match(rule.resp, "daddr", rule.version)
    if rule.proto == "icmp":
        parts.append(f"icmp type {_ports(rule.dports)}")
    elif rule.proto == "icmp6":
        parts.append(f"icmpv6 type {_ports(rule.dports)}")
    else:
        if rule.sports is not None:
            parts.append(f"{rule.proto} sport {_ports(rule.sports)}")
        parts.append(f"{rule.proto} dport {_ports(rule.dports)}")
    return " ".join(parts)


def _comment(ids: Sequence[str], documents: Sequence[str]) -> str:
    text = "; ".join([", ".join(ids), *dict.fromkeys(documents)])
    text = text.replace('"', "'")
    if len(text.encode()) > NFT_COMMENT_MAX:
        text = text.encode()[: NFT_COMMENT_MAX - 3].decode("utf-8", "ignore") + "..."
    return text


def _merged(rules: Sequence[Rule]) -> list[tuple[str, bool, list[Rule]]]:
    """Rules with the same match text (e.g. the two 12079 services) become one line."""
    groups: dict[tuple[str, bool], list[Rule]] = {}
    for rule in rules:
        groups.setdefault((_match(rule), rule.enabled), []).append(rule)
    return [(match, enabled, group) for (match, enabled), group in groups.items()]


def _set_lines(name: str, kind: str, elements: Iterable[IPNetwork], interval: bool) -> list[str]:
    ordered = sorted(elements, key=lambda n: (int(n.network_address), n.prefixlen))
    texts = [str(a.network_address) if a.num_addresses == 1 else str(a) for a in ordered]
    lines = [f"\tset {name} {{", f"\t\ttype {kind}"]
    if interval:
        lines.append("\t\tflags interval")
    lines += [f"\t\telements = {{ {', '.join(texts)} }}", "\t}"]
    return lines


def _header(policy: Policy) -> list[str]:
    site = policy.site
    lines = [
        "#!/usr/sbin/nft -f",
        f"# pcapclass {__version__} policy: the documented connections of site "
        f'"{site.name or Path(site.path).stem}" as an nftables allow-list',
        f"# site file {Path(site.path).name} (sha256 {site.sha256[:16]}), "
        f"signature catalog sha256 {policy.catalog_sha256[:16]}",
    ]
    if policy.seen_from is not None:
        lines.append(
            f"# narrowed to the connections seen classified expected in {policy.seen_from}"
        )
    lines += [
        "# Review every rule, then check and load it: nft -c -f FILE && nft -f FILE",
        "# Default drop for everything this host forwards: see the README before loading.",
    ]
    if policy.notes:
        lines += ["#", "# Not written, or written with a caveat:"]
        lines += [f"#   - {note}" for note in policy.notes]
    return lines


def render_nftables(policy: Policy) -> str:
    """The ruleset file: reloading it replaces the table (add + delete + define)."""
    lines = _header(policy)
    lines += ["", f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    v4 = [n for n in policy.local if n.version == 4]
    v6 = [n for n in policy.local if n.version == 6]
    if v4:
        lines += _set_lines("local_v4", "ipv4_addr", v4, interval=True)
    if v6:
        lines += _set_lines("local_v6", "ipv6_addr", v6, interval=True)
    for name, addrs in policy.role_sets.items():
        kind = "ipv4_addr" if name.endswith("_v4") else "ipv6_addr"
        lines += _set_lines(name, kind, addrs, interval=False)
    lines += [
        f"\tchain {CHAIN} {{",
        "\t\ttype filter hook forward priority filter; policy drop;",
        '\t\tct state established,related accept comment "replies of accepted connections"',
    ]
    for match, enabled, group in _merged(policy.rules):
        lines.append("")
        notes = dict.fromkeys(note for rule in group for note in rule.notes)
        lines += [f"\t\t# {note}" for note in notes]
        ids = list(dict.fromkeys(i for r in group for i in r.ids))
        comment = _comment(ids, [r.document for r in group])
        line = f'{match} accept comment "{comment}"'
        if enabled:
            lines.append(f"\t\t{line}")
        else:
            lines.append(f"\t\t# disabled ({group[0].disabled_why}):")
            lines.append(f"\t\t# {line}")
    lines += ["\t}", "}"]
    if policy.seen_from is not None:
        lines += [
            "",
            f"# Seen in {policy.seen_from}: {policy.link_only} connection(s) to broadcast, "
            "multicast or link-local addresses stay on their link (no forward rule needed).",
            f"# Seen in {policy.seen_from} and dropped by this ruleset:",
        ]
        if not policy.dropped:
            lines.append("#   (nothing)")
        for d in policy.dropped:
            sig = d.signature_id or "-"
            lines.append(
                f"#   {d.verdict:<16} {d.orig_h} -> {d.resp_h} {d.proto}/{d.resp_p} "
                f"{sig} ({d.flows} connection{'s' if d.flows != 1 else ''}): {d.why}"
            )
    return "\n".join(lines) + "\n"
