"""Load and validate the site file (TOML): local networks, hosts and their roles,
signature port overrides, and site-specific allows.

    site = load_site("site.toml", catalog=catalog)   # catalog optional: checks override ids
    site.roles_for("192.168.10.40", macs)             # roles by address and own MACs
    site.is_local("192.168.10.40")

Every problem raises errors.SiteError with one line naming the file, the line and the fix,
e.g. ``site.toml:3: unknown key 'local_network'; did you mean 'local_networks'?``.
tomllib reports no line numbers for values, so lines are found by scanning the text for the
n-th ``[[host]]`` / ``[[allow]]`` / ``[[override]]`` header and the keys below it.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import re
import socket
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import netaddr
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SiteError
from .schema import ROLES

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Contract, "Site file": default local networks = RFC 1918 + link-local + ULA.
DEFAULT_LOCAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8",  # RFC 1918
    "172.16.0.0/12",  # RFC 1918
    "192.168.0.0/16",  # RFC 1918
    "169.254.0.0/16",  # RFC 3927 IPv4 link-local
    "fe80::/10",  # RFC 4291 IPv6 link-local
    "fc00::/7",  # RFC 4193 unique local addresses
)
# Link-local addresses never cross a router (RFC 3927, RFC 4291 section 2.5.6): local even
# when the site file lists its own networks without them.
LINK_LOCAL_NETWORKS: tuple[str, ...] = ("169.254.0.0/16", "fe80::/10")
PROTOS: tuple[str, ...] = ("tcp", "udp", "icmp", "icmp6")
# Contract, "Scans": more than this many distinct ports of one host (or hosts on one
# port) from one originator fold into one findings row (issue 14; Zeek's
# policy/misc/scan.zeek counts 15 ports / 25 hosts, Suricata's rules ~20 SYNs).
DEFAULT_SCAN_THRESHOLD = 20


class CatalogIds(Protocol):
    """What load_site needs from a signature catalog: a lookup by id."""

    def get(self, id: str) -> Any: ...


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteHost:
    """One address of the site file with its merged roles (an ip or a mac, never both)."""

    key: str  # normalised ip ("192.168.10.40", "fe80::1") or mac ("00:11:22:33:44:55")
    by: str  # "ip" or "mac"
    roles: tuple[str, ...]  # in the order of the file, duplicates removed
    name: str | None
    line: int  # line of the first [[host]] entry for this address


@dataclass(frozen=True)
class Allow:
    """A site-specific exception: this connection is fine, for this reason."""

    n: int  # position of the [[allow]] entry, from 1
    orig: IPNetwork  # a single address is a /32 or /128
    resp: IPNetwork
    proto: str
    port: int
    reason: str
    line: int

    @property
    def signature_id(self) -> str:
        return f"site:allow:{self.n}"

    def matches(self, orig_h: str, resp_h: str, proto: str, resp_p: int) -> bool:
        if proto != self.proto or resp_p != self.port:
            return False
        return _in(orig_h, self.orig) and _in(resp_h, self.resp)


@dataclass(frozen=True)
class Site:
    path: str  # the file as given
    name: str | None
    local_networks: tuple[IPNetwork, ...]
    hosts: tuple[SiteHost, ...]
    overrides: Mapping[str, frozenset[int]]  # signature id -> replacement responder ports
    override_lines: Mapping[str, int]  # signature id -> line of its [[override]]
    allows: tuple[Allow, ...]
    sha256: str  # of the file's bytes
    scan_threshold: int = DEFAULT_SCAN_THRESHOLD  # distinct ports/hosts a scan exceeds
    _by_ip: Mapping[str, SiteHost] = field(default_factory=dict, repr=False)
    _by_mac: Mapping[str, SiteHost] = field(default_factory=dict, repr=False)

    def is_local(self, ip: str) -> bool:
        """Inside the site's local networks, or link-local."""
        return is_local(ip, self.local_networks) or is_local(ip, _LINK_LOCAL)

    def local_flags(self, ips: Sequence[str]) -> np.ndarray:
        """is_local of each of `ips`, for a whole column at once."""
        return local_flags(ips, self.local_networks + _LINK_LOCAL)

    def host_by_ip(self, ip: str) -> SiteHost | None:
        return self._by_ip.get(ip)

    def host_by_mac(self, mac: str) -> SiteHost | None:
        return self._by_mac.get(mac.lower())

    def roles_for(self, ip: str, macs: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """Roles the site gives `ip`: by address, plus by any of `macs` (the MACs seen as
        this IP's own source) when the address is local. Site order, no duplicates."""
        out: list[str] = []
        entries = [self._by_ip.get(ip)]
        if macs and self.is_local(ip):
            entries += [self._by_mac.get(m.lower()) for m in sorted(macs)]
        for entry in entries:
            if entry is not None:
                out += [r for r in entry.roles if r not in out]
        return tuple(out)

    def name_for(self, ip: str, macs: frozenset[str] = frozenset()) -> str | None:
        entry = self._by_ip.get(ip)
        if entry is not None and entry.name:
            return entry.name
        if macs and self.is_local(ip):
            for m in sorted(macs):
                by_mac = self._by_mac.get(m.lower())
                if by_mac is not None and by_mac.name:
                    return by_mac.name
        return None

    def allow_for(self, orig_h: str, resp_h: str, proto: str, resp_p: int) -> Allow | None:
        for allow in self.allows:
            if allow.matches(orig_h, resp_h, proto, resp_p):
                return allow
        return None

    def check_overrides(self, catalog: CatalogIds) -> None:
        """Raise SiteError for an override naming a signature the catalog lacks."""
        for sig_id, line in self.override_lines.items():
            if _catalog_has(catalog, sig_id):
                continue
            known = [s.id for s in getattr(catalog, "signatures", ())]
            hint = _did_you_mean(sig_id, known) or "; `pcapclass signatures list` shows the ids"
            raise SiteError(f"{self.path}:{line}: override: unknown signature '{sig_id}'{hint}")


def _catalog_has(catalog: CatalogIds, sig_id: str) -> bool:
    try:
        return catalog.get(sig_id) is not None
    except KeyError:
        return False


def is_local(ip: str, networks: tuple[IPNetwork, ...]) -> bool:
    """`ip` (text) inside one of `networks`. Called once per distinct address of a capture
    (tens of thousands): parsed with socket.inet_pton and compared as integers, about 10x
    faster than ipaddress; text inet_pton refuses goes through ipaddress (e.g. a scope id)."""
    parsed = _address_int(ip)
    if parsed is None:
        return False
    version, value = parsed
    return any(v == version and lo <= value <= hi for v, lo, hi in _ranges(networks))


# Dotted-quad IPv4 text as socket.inet_pton accepts it (no leading zeros): parsed in bulk
# by local_flags; any other text goes through is_local one address at a time.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = rf"^({_OCTET}\.){{3}}{_OCTET}$"
_QUAD_WEIGHTS = np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)


def local_flags(ips: Sequence[str], networks: tuple[IPNetwork, ...]) -> np.ndarray:
    """is_local(ip, networks) of each of `ips`, the same answers at column speed: IPv4
    dotted quads are split and compared as integers in arrow/numpy (the addresses of a
    capture are mostly those), the rest is asked one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(ips, type=pa.string())
    out = np.zeros(len(text), dtype=bool)
    if not len(text):
        return out
    quad = pc.fill_null(pc.match_substring_regex(text, _DOTTED_QUAD), False)
    quad = quad.to_numpy(zero_copy_only=False)
    if quad.any():
        octets = pc.list_flatten(pc.split_pattern(text.filter(pa.array(quad)), "."))
        value = pc.cast(octets, pa.int64()).to_numpy().reshape(-1, 4) @ _QUAD_WEIGHTS
        hit = np.zeros(len(value), dtype=bool)
        for version, lo, hi in _ranges_of(networks):
            if version == 4:
                hit |= (value >= lo) & (value <= hi)
        out[quad] = hit
    rest = np.flatnonzero(~quad)
    if len(rest):
        others = text.take(pa.array(rest)).to_pylist()
        out[rest] = [ip is not None and is_local(ip, networks) for ip in others]
    return out


def _ranges_of(networks: tuple[IPNetwork, ...]) -> list[tuple[int, int, int]]:
    return [(n.version, int(n.network_address), int(n.broadcast_address)) for n in networks]


class Locality:
    """One run's local test, asked per address (a call) or per column (mask): each
    distinct address is decided once, columns in bulk (local_flags)."""

    def __init__(self, flags_of: Callable[[Sequence[str]], np.ndarray]) -> None:
        self._flags_of = flags_of
        self._known: dict[str, bool] = {}

    def __call__(self, ip: str) -> bool:
        hit = self._known.get(ip)
        if hit is None:
            hit = self._known[ip] = bool(self._flags_of([ip])[0])
        return hit

    def mask(self, ips: Sequence[str] | pd.Series | np.ndarray) -> np.ndarray:
        """The flag of each element of `ips` (repeats cost a hash lookup)."""
        codes, uniques = pd.factorize(np.asarray(ips, dtype=object))
        if not len(codes):
            return np.zeros(0, dtype=bool)
        distinct = uniques.tolist()
        known = self._known
        new = [ip for ip in distinct if ip not in known]
        if new:
            known.update(zip(new, self._flags_of(new).tolist(), strict=True))
        flags = np.fromiter(map(known.__getitem__, distinct), dtype=bool, count=len(distinct))
        return flags[codes]


def _address_int(ip: str) -> tuple[int, int] | None:
    family, version = (socket.AF_INET6, 6) if ":" in ip else (socket.AF_INET, 4)
    try:
        return version, int.from_bytes(socket.inet_pton(family, ip), "big")
    except (OSError, ValueError):
        pass
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return addr.version, int(addr)


def _ranges(networks: tuple[IPNetwork, ...]) -> tuple[tuple[int, int, int], ...]:
    """(version, first, last) of each network, cached by the tuple's identity: hashing
    the network objects on every call would cost more than the comparison."""
    hit = _RANGES.get(id(networks))
    if hit is None or hit[0] is not networks:
        if len(_RANGES) >= _RANGES_KEPT:  # a long-lived process loading many site files
            _RANGES.clear()
        ranges = tuple(
            (net.version, int(net.network_address), int(net.broadcast_address)) for net in networks
        )
        hit = _RANGES[id(networks)] = (networks, ranges)
    return hit[1]


_RANGES: dict[int, tuple[tuple[IPNetwork, ...], tuple[tuple[int, int, int], ...]]] = {}
_RANGES_KEPT = 64


def default_networks() -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n) for n in DEFAULT_LOCAL_NETWORKS)


_LINK_LOCAL: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in LINK_LOCAL_NETWORKS)


def _in(ip: str, net: IPNetwork) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr.version == net.version and addr in net


# --- structure (pydantic: keys and types) ------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _HostModel(_Strict):
    ip: str | None = None
    mac: str | None = None
    role: str | None = None
    roles: list[str] | None = None
    name: str | None = None


class _OverrideModel(_Strict):
    signature: str
    ports: list[int]


class _AllowModel(_Strict):
    orig: str
    resp: str
    proto: str
    port: int
    reason: str


class _SiteModel(_Strict):
    site: str | None = None
    local_networks: list[str] | None = None
    scan_threshold: int | None = None
    host: list[_HostModel] = []
    override: list[_OverrideModel] = []
    allow: list[_AllowModel] = []


TABLES = ("host", "override", "allow")
KEY_HINTS: dict[str, str] = {
    "reason": 'reason = "why this connection is acceptable"',
    "signature": 'signature = "gemos4.pro02-tcp"',
    "ports": "ports = [13000]",
    "orig": 'orig = "192.168.10.77"',
    "resp": 'resp = "192.168.10.40"',
    "proto": 'proto = "tcp"',
    "port": "port = 80",
}
TYPE_WORDS: dict[str, str] = {
    "string_type": "a string in quotes",
    "int_type": "an integer",
    "list_type": "a list",
    "model_type": "a table",
    "bool_type": "true or false",
}


# --- locating lines -----------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_\-]+)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]")
_KEY = re.compile(r"""^\s*["']?([A-Za-z0-9_\-]+)["']?\s*=""")


@dataclass
class _Lines:
    """Line numbers of top-level keys, array-of-tables headers and the keys below them."""

    top: dict[str, int] = field(default_factory=dict)
    headers: dict[tuple[str, int], int] = field(default_factory=dict)
    keys: dict[tuple[str, int, str], int] = field(default_factory=dict)

    def of(self, loc: tuple[Any, ...]) -> int:
        if not loc:
            return 1
        if len(loc) == 1 or not isinstance(loc[1], int):
            head = str(loc[0])
            return self.top.get(head, self.headers.get((head, 0), 1))
        table, index = str(loc[0]), int(loc[1])
        if len(loc) >= 3:
            key_line = self.keys.get((table, index, str(loc[2])))
            if key_line is not None:
                return key_line
        return self.headers.get((table, index), self.top.get(table, 1))


def _scan_lines(text: str) -> _Lines:
    lines = _Lines()
    counts: dict[str, int] = {}
    current: tuple[str, int] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0] if '"' not in raw and "'" not in raw else raw
        header = _HEADER.match(line)
        if header:
            name = header.group(1)
            index = counts.get(name, 0)
            counts[name] = index + 1
            current = (name, index)
            lines.headers[current] = number
            continue
        if _TABLE.match(line):
            current = ("[table]", 0)
            continue
        key = _KEY.match(line)
        if key is None:
            continue
        if current is None:
            lines.top.setdefault(key.group(1), number)
        else:
            lines.keys.setdefault((current[0], current[1], key.group(1)), number)
    return lines


# --- loading ------------------------------------------------------------------------------


def load_site(path: str | Path, *, catalog: CatalogIds | None = None) -> Site:
    """Read, parse and validate a site file. With `catalog`, override ids are checked too
    (otherwise classify checks them)."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SiteError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise SiteError(f"{shown}: is a directory, not a site file") from None
    except OSError as exc:
        raise SiteError(f"{shown}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SiteError(f"{shown}:1: not UTF-8 text; save the site file as UTF-8") from None
    site = parse_site(text, path=shown, sha256=hashlib.sha256(data).hexdigest())
    if catalog is not None:
        site.check_overrides(catalog)
    return site


def parse_site(text: str, *, path: str = "site.toml", sha256: str = "") -> Site:
    """Validate the text of a site file; `path` is only used in messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(_toml_message(path, exc, text)) from None
    lines = _scan_lines(text)
    try:
        model = _SiteModel.model_validate(raw)
    except ValidationError as exc:
        raise SiteError(_pydantic_message(path, lines, raw, exc)) from None
    return _build(model, lines, path, sha256 or hashlib.sha256(text.encode()).hexdigest())


def _toml_message(path: str, exc: tomllib.TOMLDecodeError, source: str) -> str:
    text = str(exc)
    found = re.search(r"\(at line (\d+), column \d+\)", text)
    line = found.group(1) if found else str(max(1, len(source.splitlines())))
    what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", text)
    return f"{path}:{line}: invalid TOML: {what}; fix the syntax (https://toml.io)"


def _entry_label(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    if len(loc) < 2 or not isinstance(loc[1], int):
        return ""
    table, index = str(loc[0]), int(loc[1])
    entries = raw.get(table)
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else {}
    if table == "host" and isinstance(entry, dict):
        address = entry.get("ip") or entry.get("mac")
        if isinstance(address, str):
            return f"host {address}: "
    if table == "override" and isinstance(entry, dict):
        if isinstance(entry.get("signature"), str):
            return f"override {entry['signature']}: "
    return f"{table} #{index + 1}: "


def _model_fields(loc: tuple[Any, ...]) -> list[str]:
    table: dict[str, type[BaseModel]] = {
        "host": _HostModel,
        "override": _OverrideModel,
        "allow": _AllowModel,
    }
    if len(loc) >= 3 and str(loc[0]) in table:
        return list(table[str(loc[0])].model_fields)
    return list(_SiteModel.model_fields)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _pydantic_message(
    path: str, lines: _Lines, raw: Mapping[str, Any], exc: ValidationError
) -> str:
    err = sorted(exc.errors(), key=lambda e: lines.of(tuple(e["loc"])))[0]
    loc = tuple(err["loc"])
    # a union's branch name (e.g. "str") may end the loc; drop such tails
    while loc and isinstance(loc[-1], str) and loc[-1] in ("str", "int", "list[str]"):
        loc = loc[:-1]
    line = lines.of(loc)
    label = _entry_label(raw, loc)
    key = str(loc[-1]) if loc and not isinstance(loc[-1], int) else ""
    kind = err["type"]
    if kind == "extra_forbidden":
        choices = _model_fields(loc)
        hint = _did_you_mean(key, choices) or f"; allowed keys are {', '.join(choices)}"
        return f"{path}:{line}: {label}unknown key '{key}'{hint}"
    if kind == "missing":
        example = KEY_HINTS.get(key, f"{key} = ...")
        return f"{path}:{line}: {label}missing key '{key}'; add {example}"
    if isinstance(loc[-1], int) and len(loc) >= 2:
        key = f"{loc[-2]}" if not isinstance(loc[-2], int) else key
    want = TYPE_WORDS.get(kind, kind.replace("_", " "))
    got = err.get("input")
    return f"{path}:{line}: {label}'{key}' must be {want}, got {got!r}"


def _build(model: _SiteModel, lines: _Lines, path: str, sha256: str) -> Site:
    networks = _networks(model.local_networks, lines, path)
    hosts = _hosts(model.host, lines, path)
    overrides, override_lines = _overrides(model.override, lines, path)
    allows = tuple(_allow(a, i, lines, path) for i, a in enumerate(model.allow))
    return Site(
        path=path,
        name=model.site,
        local_networks=networks,
        hosts=hosts,
        overrides=overrides,
        override_lines=override_lines,
        allows=allows,
        sha256=sha256,
        scan_threshold=_scan_threshold(model.scan_threshold, lines, path),
        _by_ip={h.key: h for h in hosts if h.by == "ip"},
        _by_mac={h.key: h for h in hosts if h.by == "mac"},
    )


def _networks(given: list[str] | None, lines: _Lines, path: str) -> tuple[IPNetwork, ...]:
    if not given:
        return default_networks()
    line = lines.top.get("local_networks", 1)
    out = []
    for text in given:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise SiteError(
                f"{path}:{line}: bad network '{text}' in local_networks; "
                'write a CIDR such as "192.168.10.0/24"'
            ) from None
    return tuple(out)


def _scan_threshold(given: int | None, lines: _Lines, path: str) -> int:
    if given is None:
        return DEFAULT_SCAN_THRESHOLD
    if given < 1:
        raise SiteError(
            f"{path}:{lines.top.get('scan_threshold', 1)}: scan_threshold {given} is out of "
            f"range; give a whole number of at least 1 (default {DEFAULT_SCAN_THRESHOLD}: more "
            f"than {DEFAULT_SCAN_THRESHOLD} distinct ports or hosts from one originator is a scan)"
        )
    return given


def normalise_ip(text: str) -> str:
    """Canonical text of an IP address (raises ValueError)."""
    return str(ipaddress.ip_address(text.strip()))


def normalise_mac(text: str) -> str:
    """Lower-case colon form of a MAC address (raises ValueError)."""
    cleaned = text.strip()
    if not re.fullmatch(r"[0-9A-Fa-f]{2}([:\-]?[0-9A-Fa-f]{2}){5}", cleaned):
        raise ValueError(text)
    eui = netaddr.EUI(cleaned, dialect=netaddr.mac_unix_expanded)
    return str(eui).lower()


def _host_key(h: _HostModel, lines: _Lines, index: int, path: str) -> tuple[str, str]:
    line = lines.of(("host", index))
    if (h.ip is None) == (h.mac is None):
        both = "both ip and mac" if h.ip is not None else "neither ip nor mac"
        raise SiteError(
            f"{path}:{line}: host entry has {both}; give exactly one: "
            'ip = "192.168.10.40" or mac = "00:11:22:33:44:55"'
        )
    if h.ip is not None:
        try:
            return "ip", normalise_ip(h.ip)
        except ValueError:
            raise SiteError(
                f"{path}:{lines.of(('host', index, 'ip'))}: host {h.ip}: bad IP address '{h.ip}'; "
                'write it as "192.168.10.40" or "fd00::40"'
            ) from None
    assert h.mac is not None
    try:
        return "mac", normalise_mac(h.mac)
    except ValueError:
        raise SiteError(
            f"{path}:{lines.of(('host', index, 'mac'))}: host {h.mac}: bad MAC address '{h.mac}'; "
            'write it as six hex pairs, e.g. "00:11:22:33:44:55"'
        ) from None


def _host_roles(h: _HostModel, label: str, lines: _Lines, index: int, path: str) -> list[str]:
    given = ([h.role] if h.role is not None else []) + list(h.roles or [])
    for role in given:
        if role not in ROLES:
            key = "role" if h.role == role else "roles"
            line = lines.of(("host", index, key))
            raise SiteError(
                f"{path}:{line}: host {label}: unknown role '{role}'; roles are {', '.join(ROLES)}"
            )
    return given


def _hosts(entries: list[_HostModel], lines: _Lines, path: str) -> tuple[SiteHost, ...]:
    merged: dict[tuple[str, str], SiteHost] = {}
    for index, h in enumerate(entries):
        line = lines.of(("host", index))
        by, key = _host_key(h, lines, index, path)
        roles = _host_roles(h, h.ip or h.mac or "", lines, index, path)
        old = merged.get((by, key))
        if old is None:
            merged[(by, key)] = SiteHost(key, by, tuple(dict.fromkeys(roles)), h.name, line)
            continue
        if h.name and old.name and h.name != old.name:
            raise SiteError(
                f"{path}:{lines.of(('host', index, 'name'))}: host {key}: name '{h.name}' "
                f"differs from '{old.name}' given at line {old.line}; "
                "an address has one name: remove or align one of them"
            )
        merged[(by, key)] = SiteHost(
            key, by, tuple(dict.fromkeys(old.roles + tuple(roles))), old.name or h.name, old.line
        )
    return tuple(merged.values())


def _overrides(
    entries: list[_OverrideModel], lines: _Lines, path: str
) -> tuple[dict[str, frozenset[int]], dict[str, int]]:
    ports: dict[str, frozenset[int]] = {}
    where: dict[str, int] = {}
    for index, o in enumerate(entries):
        line = lines.of(("override", index))
        bad = [p for p in o.ports if not 0 <= p <= 65535]
        if bad or not o.ports:
            what = f"port {bad[0]} is out of range" if bad else "ports is empty"
            raise SiteError(
                f"{path}:{lines.of(('override', index, 'ports'))}: override {o.signature}: "
                f"{what}; give ports between 0 and 65535, e.g. ports = [13000]"
            )
        if o.signature in where:
            raise SiteError(
                f"{path}:{line}: override {o.signature}: already overridden at line "
                f"{where[o.signature]}; merge the two entries"
            )
        ports[o.signature] = frozenset(o.ports)
        where[o.signature] = line
    return ports, where


def _network(text: str, key: str, label: str, line: int, path: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise SiteError(
            f"{path}:{line}: {label}: bad address '{text}' in {key}; "
            'write an IP address or CIDR, e.g. "192.168.10.77"'
        ) from None


def _allow(a: _AllowModel, index: int, lines: _Lines, path: str) -> Allow:
    label = f"allow #{index + 1}"
    line = lines.of(("allow", index))
    orig = _network(a.orig, "orig", label, lines.of(("allow", index, "orig")), path)
    resp = _network(a.resp, "resp", label, lines.of(("allow", index, "resp")), path)
    if a.proto not in PROTOS:
        raise SiteError(
            f"{path}:{lines.of(('allow', index, 'proto'))}: {label}: unknown proto "
            f"'{a.proto}'; use one of {', '.join(PROTOS)}"
        )
    if not 0 <= a.port <= 65535:
        raise SiteError(
            f"{path}:{lines.of(('allow', index, 'port'))}: {label}: port {a.port} is out "
            "of range; give a port between 0 and 65535"
        )
    if not a.reason.strip():
        raise SiteError(
            f"{path}:{lines.of(('allow', index, 'reason'))}: {label}: reason is empty; "
            'say why this connection is acceptable, e.g. reason = "technician laptop"'
        )
    return Allow(index + 1, orig, resp, a.proto, a.port, a.reason.strip(), line)
