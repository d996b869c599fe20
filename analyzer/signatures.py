"""Load and validate the signature catalog (`signatures/*.toml`) into frozen objects.
Nothing else reads that folder.

MODEL (fixed; classify depends on it). A Signature says: on `transport`, a connection
to one of `ports` (responder side), opened by a host holding one of `orig_roles`
towards a host holding one of `resp_roles`, is documented traffic of `system`.

An Infrastructure entry (`[[infrastructure]]` table) says which `common` signatures
(DNS, NTP, DHCP, ...: "any host") a host holding one of its `roles` may use, either side;
a role with an entry uses no other common signature (contract "Common infrastructure per
role"). With `any_host = false` (devices whose documents list their own ports: ISENet,
com server, C.M.I.) a signature side documented as "any host" does not include them.
A catalog with any such entry declares every role exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from analyzer.errors import SignatureError
from analyzer.schema import ROLE_SYSTEM, ROLES, SYSTEMS

TRANSPORTS = ("tcp", "udp", "icmp", "icmp6")
DIRECTIONS = ("forward", "either")  # forward: only orig_roles open it; either: both sides may
SCOPES = ("local", "internet", "any")  # where the responder may be
STATUSES = ("active", "rare", "obsolete", "reserved", "placeholder", "auto-assigned")
PAYLOADS = ("http", "not_http")  # discriminator on the originator's first payload


@dataclass(frozen=True)
class Source:
    document: str  # file name in seeds/
    section: str  # section of the document
    wording: str  # the original German wording of the row


@dataclass(frozen=True)
class Signature:
    id: str  # stable id, "<system>.<name>", e.g. "cmi.ta-portal-40001"
    revision: int
    system: str  # gemos4 | sesam | cmi | common
    name: str
    transport: str  # one of TRANSPORTS
    ports: frozenset[int]  # responder ports, ranges expanded; ICMP: the request type
    orig_ports: frozenset[int] | None  # originator port must be one of these (41797<->41797)
    orig_roles: frozenset[str]  # roles that may open it; empty = any host
    resp_roles: frozenset[str]  # roles that accept it; empty = any host
    direction: str  # one of DIRECTIONS
    scope: str  # one of SCOPES
    status: str  # one of STATUSES
    generic: bool  # port shared by unrelated services: applies only with a role of `system`
    payload: str | None  # one of PAYLOADS or None
    service: str | None  # expected application protocol (http, tls, dns, ntp, modbus, ...)
    versions: str | None  # version note (e.g. "Sesam >= 2.1-3")
    remote_hosts: tuple[str, ...]  # documented destination host names (C.M.I. *.ta.co.at)
    source: Source
    file: str  # signature file name
    line: int  # line of the entry's table header in that file


@dataclass(frozen=True)
class Infrastructure:
    group: str  # name of the role group, e.g. "pc" (also the policy's set name)
    roles: frozenset[str]  # the roles this entry declares
    signatures: tuple[str, ...]  # ids of the common signatures they may use, file order
    any_host: bool  # false: a device whose documents list its ports; no "any host" side
    note: str  # why: what the documents say about these devices
    file: str
    line: int  # line of the [[infrastructure]] header


# --- loader -------------------------------------------------------------------------------
# Everything below reads and validates the TOML files; the model above stays fixed.

# The contract ("Generic vs distinctive ports"): ports many unrelated services share.
GENERIC_PORTS: frozenset[int] = frozenset({22, 53, 69, 80, 123, 135, 443, 502, 3050})
# ICMP "ports" are message types; any host answers them, so ICMP entries are always generic.
GENERIC_TRANSPORTS: frozenset[str] = frozenset({"icmp", "icmp6"})
MAX_PORT = 65535  # 16-bit TCP/UDP port field
MAX_ICMP_TYPE = 255  # 8-bit ICMP/ICMPv6 type field
NOT_A_SERVICE = frozenset({"reserved", "placeholder"})  # statuses that document no service
PACKAGE_DATA = "analyzer.signatures_data"  # pyproject maps signatures/ onto this package
_ID_RE = re.compile(r"^[a-z0-9]+\.[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")
_HEADER_RE = re.compile(r"^\s*\[\[\s*signature\s*\]\]")
_INFRA_HEADER_RE = re.compile(r"^\s*\[\[\s*infrastructure\s*\]\]")
_ANY_HEADER_RE = re.compile(r"^\s*\[")
_GROUP_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
TABLES = ("signature", "infrastructure")  # the top-level keys a catalog file may hold
_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _parse_port_item(item: Any) -> tuple[int, int]:
    """One `ports` item: an int or an "a-b" string -> (first, last). ValueError says the fix."""
    if isinstance(item, bool) or not isinstance(item, int | str):
        raise ValueError(f"{item!r} is not a port; write an integer or a range 'a-b'")
    if isinstance(item, int):
        if not 0 <= item <= MAX_PORT:
            raise ValueError(f"port {item} is out of range 0..{MAX_PORT}")
        return item, item
    match = _RANGE_RE.match(item)
    if match is None:
        raise ValueError(f"{item!r} is not a port; write an integer or a range 'a-b'")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last:
        raise ValueError(f"range {item!r} is reversed; write it as 'a-b' with a <= b")
    if last > MAX_PORT:
        raise ValueError(f"range {item!r} is out of range 0..{MAX_PORT}")
    return first, last


def _expand_ports(items: Sequence[Any]) -> frozenset[int]:
    ports: set[int] = set()
    for item in items:
        first, last = _parse_port_item(item)
        ports.update(range(first, last + 1))
    return frozenset(ports)


class _SourceModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    document: str
    section: str
    wording: str

    @field_validator("document", "section", "wording")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class _EntryModel(BaseModel):
    """One `[[signature]]` table exactly as written; keys map 1:1 to Signature."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    revision: int
    system: Literal[SYSTEMS]  # type: ignore[valid-type]
    name: str
    transport: Literal[TRANSPORTS]  # type: ignore[valid-type]
    ports: list[Any]
    orig_ports: list[Any] | None = None
    orig_roles: list[Literal[ROLES]]  # type: ignore[valid-type]
    resp_roles: list[Literal[ROLES]]  # type: ignore[valid-type]
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    scope: Literal[SCOPES]  # type: ignore[valid-type]
    status: Literal[STATUSES]  # type: ignore[valid-type]
    generic: bool
    payload: Literal[PAYLOADS] | None = None  # type: ignore[valid-type]
    service: str | None = None
    versions: str | None = None
    remote_hosts: list[str] = []
    source: _SourceModel

    @field_validator("ports", "orig_ports")
    @classmethod
    def _valid_ports(cls, value: list[Any] | None) -> list[Any] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty; list at least one port")
        _expand_ports(value)
        return value


class _InfraModel(BaseModel):
    """One `[[infrastructure]]` table exactly as written; keys map 1:1 to Infrastructure."""

    model_config = ConfigDict(extra="forbid", strict=True)

    group: str
    roles: list[Literal[ROLES]]  # type: ignore[valid-type]
    signatures: list[str]
    any_host: bool
    note: str

    @field_validator("roles")
    @classmethod
    def _some_roles(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("is empty; list the roles this entry declares")
        return value

    @field_validator("note")
    @classmethod
    def _note(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty; say what the documents list for these roles")
        return value


ENTRY_KEYS: tuple[str, ...] = tuple(_EntryModel.model_fields)
SOURCE_KEYS: tuple[str, ...] = tuple(_SourceModel.model_fields)
INFRA_KEYS: tuple[str, ...] = tuple(_InfraModel.model_fields)
_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a table",
    "dict_type": "a table",
}


@dataclass(frozen=True)
class _Problem:
    """What is wrong with one entry: the key concerned (dotted) and the sentence."""

    key: str | None
    text: str


@dataclass(frozen=True)
class _Text:
    """A signature file's text with the positions of its entries, for messages."""

    name: str
    lines: tuple[str, ...]
    headers: tuple[int, ...]  # 1-based line of each [[signature]] (or other) header, in order
    tables: tuple[int, ...] = ()  # 1-based line of every table header of any kind

    @classmethod
    def of(cls, name: str, text: str, header: re.Pattern[str] = _HEADER_RE) -> _Text:
        lines = tuple(text.splitlines())
        headers = tuple(i + 1 for i, line in enumerate(lines) if header.match(line))
        tables = tuple(i + 1 for i, line in enumerate(lines) if _ANY_HEADER_RE.match(line))
        return cls(name, lines, headers, tables)

    def entry_line(self, index: int) -> int:
        return self.headers[index] if index < len(self.headers) else 1

    def key_line(self, index: int, key: str) -> int | None:
        """Line of `key` (dotted for source keys) inside entry `index`, if it can be found."""
        start = self.entry_line(index)
        after = [t for t in self.tables if t > start]
        end = after[0] if after else len(self.lines) + 1
        leaf = re.escape(key.rsplit(".", 1)[-1])
        anchor = r"(?:^\s*|[{,]\s*)" if "." in key else r"^\s*"
        pattern = re.compile(anchor + rf"[\"']?{leaf}[\"']?\s*=")
        for number in range(start, end):
            if pattern.search(self.lines[number - 1]):
                return number
        return None


def _error(text: _Text, index: int, entry_id: str | None, problem: _Problem) -> SignatureError:
    where = f"{text.name}:{text.entry_line(index)}"
    label = entry_id if entry_id else f"#{index + 1}"
    body = problem.text
    if problem.key is not None:
        key_line = text.key_line(index, problem.key)
        if key_line is not None and key_line != text.entry_line(index):
            body = body.replace("{at}", f" (line {key_line})", 1)
    return SignatureError(f"{where}: entry {label}: {body.replace('{at}', '')}")


def _pydantic_problem(error: Mapping[str, Any], keys: tuple[str, ...] = ENTRY_KEYS) -> _Problem:
    """Turn pydantic's first error into one sentence with its fix."""
    loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
    key = ".".join(loc) if loc else None
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        inside = "source" if key and key.startswith("source.") else None
        allowed = ", ".join(SOURCE_KEYS if inside else keys)
        where = " in source" if inside else ""
        return _Problem(key, f"unknown key {key!r}{{at}}{where}; allowed keys: {allowed}")
    if kind == "missing":
        values = _literal_values(key)
        hint = f" (one of {', '.join(values)})" if values else ""
        return _Problem(None, f"missing key {key!r}; add it{hint}")
    if kind == "literal_error":
        allowed = ", ".join(_literal_values(key))
        return _Problem(key, f"{key} {value!r}{{at}} is not one of {allowed}")
    if kind == "value_error":
        return _Problem(key, f"{key}{{at}}: {error['ctx']['error']}")
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return _Problem(key, f"{key} {value!r}{{at}} must be {expected}")
    return _Problem(key, f"{key}{{at}}: {error['msg']}")


def _literal_values(key: str | None) -> tuple[str, ...]:
    field = (key or "").rsplit(".", 1)[-1]
    vocabularies = {
        "system": SYSTEMS,
        "transport": TRANSPORTS,
        "orig_roles": ROLES,
        "resp_roles": ROLES,
        "roles": ROLES,
        "direction": DIRECTIONS,
        "scope": SCOPES,
        "status": STATUSES,
        "payload": PAYLOADS,
    }
    return vocabularies.get(field, ())


def _semantic_problem(entry: _EntryModel) -> _Problem | None:
    """Rules across fields that a type cannot express; the first broken one, or None."""
    checks = (_check_id, _check_revision, _check_roles, _check_ports_kind, _check_generic)
    for check in checks:
        problem = check(entry)
        if problem is not None:
            return problem
    return None


def _check_id(entry: _EntryModel) -> _Problem | None:
    if not _ID_RE.match(entry.id):
        return _Problem(
            "id",
            f"id {entry.id!r}{{at}} is not '<system>.<slug>' "
            "(lower-case letters, digits, '-' or '_' after the dot)",
        )
    prefix, slug = entry.id.split(".", 1)
    if prefix != entry.system:
        return _Problem(
            "id",
            f"id {entry.id!r}{{at}} does not start with its system '{entry.system}.'; "
            f"rename it to '{entry.system}.{slug}' or fix the system",
        )
    return None


def _check_revision(entry: _EntryModel) -> _Problem | None:
    if entry.revision < 1:
        return _Problem("revision", f"revision {entry.revision}{{at}} must be 1 or more")
    return None


def _check_roles(entry: _EntryModel) -> _Problem | None:
    for key in ("orig_roles", "resp_roles"):
        for role in getattr(entry, key):
            owner = ROLE_SYSTEM[role]
            if owner != entry.system:
                return _Problem(
                    key,
                    f"{key} {role!r}{{at}} is a role of system {owner}, not {entry.system}; "
                    f"use roles of {entry.system} or leave the list empty (any host)",
                )
    return None


def _check_ports_kind(entry: _EntryModel) -> _Problem | None:
    icmp = entry.transport in GENERIC_TRANSPORTS
    if icmp and max(_expand_ports(entry.ports)) > MAX_ICMP_TYPE:
        return _Problem(
            "ports",
            f"ports{{at}}: {entry.transport} entries list ICMP types 0..{MAX_ICMP_TYPE}",
        )
    if icmp and entry.orig_ports is not None:
        return _Problem("orig_ports", f"orig_ports{{at}}: not allowed for {entry.transport}")
    if entry.payload is not None and entry.transport != "tcp":
        return _Problem("payload", "payload{at}: only tcp entries may have a payload")
    return None


def _check_generic(entry: _EntryModel) -> _Problem | None:
    if entry.transport in GENERIC_TRANSPORTS:
        if not entry.generic:
            return _Problem("generic", f"generic{{at}} must be true for {entry.transport}")
        return None
    ports = _expand_ports(entry.ports)
    shared = sorted(ports & GENERIC_PORTS)
    if shared and len(shared) != len(ports):
        return _Problem(
            "ports",
            f"ports{{at}} mix generic port(s) {_compact(shared)} with distinctive ones; "
            "split the entry",
        )
    if entry.generic != bool(shared):
        generic_list = _compact(sorted(GENERIC_PORTS))
        want = "true" if shared else "false"
        return _Problem(
            "generic",
            f"generic{{at}} must be {want}: the generic ports are exactly {generic_list}",
        )
    return None


def _build(entry: _EntryModel, file: str, line: int) -> Signature:
    return Signature(
        id=entry.id,
        revision=entry.revision,
        system=entry.system,
        name=entry.name,
        transport=entry.transport,
        ports=_expand_ports(entry.ports),
        orig_ports=None if entry.orig_ports is None else _expand_ports(entry.orig_ports),
        orig_roles=frozenset(entry.orig_roles),
        resp_roles=frozenset(entry.resp_roles),
        direction=entry.direction,
        scope=entry.scope,
        status=entry.status,
        generic=entry.generic,
        payload=entry.payload,
        service=entry.service,
        versions=entry.versions,
        remote_hosts=tuple(entry.remote_hosts),
        source=Source(
            document=entry.source.document,
            section=entry.source.section,
            wording=entry.source.wording,
        ),
        file=file,
        line=line,
    )


def _parse_entry(raw: Any, text: _Text, index: int) -> Signature:
    entry_id = raw.get("id") if isinstance(raw, dict) else None
    label = entry_id if isinstance(entry_id, str) else None
    try:
        entry = _EntryModel.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise _error(text, index, label, _pydantic_problem(errors[0])) from None
    problem = _semantic_problem(entry)
    if problem is not None:
        raise _error(text, index, label, problem)
    return _build(entry, text.name, text.entry_line(index))


def _toml_error(name: str, exc: tomllib.TOMLDecodeError) -> SignatureError:
    match = _TOML_POS_RE.search(str(exc))
    line = match.group(1) if match else "1"
    return SignatureError(f"{name}:{line}: TOML syntax error: {exc}; fix the TOML syntax there")


def _read(item: Traversable | Path) -> bytes:
    try:
        return item.read_bytes()
    except OSError as exc:
        raise SignatureError(f"{item}: cannot read signature file: {exc.strerror}") from None


def _parse_file(name: str, raw: bytes) -> tuple[tuple[Signature, ...], tuple[Infrastructure, ...]]:
    """All entries of one file, validated one by one; the first problem raises."""
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"{name}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise SignatureError(message) from None
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(name, exc) from None
    extra = sorted(set(data) - set(TABLES))
    if extra:
        raise SignatureError(
            f"{name}:1: unknown top-level key {extra[0]!r}; a signature file holds only "
            "[[signature]] tables (and [[infrastructure]] tables)"
        )
    entries = _tables(name, data, "signature")
    infra = _tables(name, data, "infrastructure")
    if not entries and not infra:
        raise SignatureError(
            f"{name}:1: no [[signature]] entries; add at least one or remove the file"
        )
    text = _Text.of(name, content)
    infra_text = _Text.of(name, content, _INFRA_HEADER_RE)
    return (
        tuple(_parse_entry(raw, text, i) for i, raw in enumerate(entries)),
        tuple(_parse_infrastructure(raw, infra_text, i) for i, raw in enumerate(infra)),
    )


def _tables(name: str, data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SignatureError(f"{name}:1: '{key}' must be [[{key}]] tables")
    return entries


def _infra_error(text: _Text, index: int, label: str | None, problem: _Problem) -> SignatureError:
    where = f"{text.name}:{text.entry_line(index)}"
    body = problem.text
    if problem.key is not None:
        key_line = text.key_line(index, problem.key)
        if key_line is not None and key_line != text.entry_line(index):
            body = body.replace("{at}", f" (line {key_line})", 1)
    name = label if label else f"#{index + 1}"
    return SignatureError(f"{where}: infrastructure {name}: {body.replace('{at}', '')}")


def _parse_infrastructure(raw: Any, text: _Text, index: int) -> Infrastructure:
    group = raw.get("group") if isinstance(raw, dict) else None
    label = group if isinstance(group, str) else None
    try:
        entry = _InfraModel.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise _infra_error(text, index, label, _pydantic_problem(errors[0], INFRA_KEYS)) from None
    if not _GROUP_RE.match(entry.group):
        problem = _Problem(
            "group",
            f"group {entry.group!r}{{at}} is not a name of lower-case letters, digits and '_'",
        )
        raise _infra_error(text, index, label, problem)
    twice = sorted({i for i in entry.signatures if entry.signatures.count(i) > 1})
    if twice:
        problem = _Problem("signatures", f"signatures{{at}} list {twice[0]!r} twice")
        raise _infra_error(text, index, label, problem)
    return Infrastructure(
        group=entry.group,
        roles=frozenset(entry.roles),
        signatures=tuple(entry.signatures),
        any_host=entry.any_host,
        note=entry.note,
        file=text.name,
        line=text.entry_line(index),
    )


def _check_infrastructure(signatures: Sequence[Signature], infra: Sequence[Infrastructure]) -> None:
    """Across files: ids name common signatures of this catalog; each group name and each
    role once; with any entry, every role declared."""
    if not infra:
        return
    by_id = {sig.id: sig for sig in signatures}
    common = [sig.id for sig in signatures if sig.system == "common"]
    groups: dict[str, Infrastructure] = {}
    declared: dict[str, Infrastructure] = {}
    for entry in infra:
        where = f"{entry.file}:{entry.line}: infrastructure {entry.group}"
        first = groups.setdefault(entry.group, entry)
        if first is not entry:
            raise SignatureError(
                f"{where}: duplicate group, first defined at {first.file}:{first.line}; "
                "give one of them another name"
            )
        for role in sorted(entry.roles, key=ROLES.index):
            other = declared.setdefault(role, entry)
            if other is not entry:
                raise SignatureError(
                    f"{where}: role {role!r} is already declared by group {other.group} "
                    f"({other.file}:{other.line}); declare each role once"
                )
        for sig_id in entry.signatures:
            sig = by_id.get(sig_id)
            if sig is None:
                known = ", ".join(common) or "none in this catalog"
                raise SignatureError(
                    f"{where}: unknown signature id {sig_id!r}; list common signatures ({known})"
                )
            if sig.system != "common":
                raise SignatureError(
                    f"{where}: {sig_id} is a {sig.system} signature ({_where(sig)}), not "
                    "common infrastructure; list only signatures of system common"
                )
    missing = [role for role in ROLES if role not in declared]
    if missing:
        first = infra[0]
        raise SignatureError(
            f"{first.file}:{first.line}: infrastructure: no entry declares role "
            f"{missing[0]!r}; add it to an [[infrastructure]] table (signatures = [] for "
            "none)"
        )


def _where(sig: Signature) -> str:
    return f"{sig.file}:{sig.line}"


def _check_unique(signatures: Sequence[Signature]) -> None:
    seen: dict[str, Signature] = {}
    for sig in signatures:
        first = seen.setdefault(sig.id, sig)
        if first is not sig:
            raise SignatureError(
                f"{_where(sig)}: entry {sig.id}: duplicate id, first defined at "
                f"{_where(first)}; give one of them another id"
            )


def _roles_meet(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two role sets can describe the same host (empty = any host)."""
    return not a or not b or bool(a & b)


def _role_pairs(sig: Signature) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    forward = (sig.orig_roles, sig.resp_roles)
    return (forward, (sig.resp_roles, sig.orig_roles)) if sig.direction == "either" else (forward,)


def _overlap(a: Signature, b: Signature) -> bool:
    """Whether one connection could match both entries (same port, roles, payload)."""
    if a.transport != b.transport or not a.ports & b.ports:
        return False
    if a.payload is not None and b.payload is not None and a.payload != b.payload:
        return False
    if a.orig_ports is not None and b.orig_ports is not None and not a.orig_ports & b.orig_ports:
        return False
    return any(
        _roles_meet(oa, ob) and _roles_meet(ra, rb)
        for oa, ra in _role_pairs(a)
        for ob, rb in _role_pairs(b)
    )


def _check_contradictions(signatures: Sequence[Signature]) -> None:
    for later_index, later in enumerate(signatures):
        for earlier in signatures[:later_index]:
            if earlier.status != later.status and _overlap(earlier, later):
                port = min(earlier.ports & later.ports)
                raise SignatureError(
                    f"{_where(later)}: entry {later.id}: contradicts {earlier.id} "
                    f"({_where(earlier)}): both match {later.transport} port {port} in the "
                    f"same direction but status {later.status!r} differs from "
                    f"{earlier.status!r}; give them different ports, roles or payloads, or "
                    "the same status"
                )


# --- the catalog -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """The validated signatures of one load, in file order (files sorted by name)."""

    signatures: tuple[Signature, ...]
    sha256: str  # over the sorted files' names and bytes: identifies the catalog in outputs
    files: tuple[str, ...]  # paths of the files loaded, sorted by name
    infrastructure: tuple[Infrastructure, ...] = ()  # [[infrastructure]] entries, file order
    _by_id: Mapping[str, Signature] = field(init=False, repr=False, compare=False)
    _by_port: Mapping[tuple[str, int], tuple[Signature, ...]] = field(
        init=False, repr=False, compare=False
    )
    _service_ports: frozenset[tuple[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_port: dict[tuple[str, int], list[Signature]] = {}
        for sig in self.signatures:
            for port in sig.ports:
                by_port.setdefault((sig.transport, port), []).append(sig)
        services = frozenset(
            (sig.transport, port)
            for sig in self.signatures
            if sig.status not in NOT_A_SERVICE
            for port in sig.ports
        )
        object.__setattr__(self, "_by_id", {sig.id: sig for sig in self.signatures})
        object.__setattr__(self, "_by_port", {k: tuple(v) for k, v in by_port.items()})
        object.__setattr__(self, "_service_ports", services)

    def get(self, signature_id: str) -> Signature:
        """The signature with this id; KeyError when there is none."""
        try:
            return self._by_id[signature_id]
        except KeyError:
            raise KeyError(f"unknown signature id {signature_id!r}") from None

    def for_port(self, transport: str, port: int) -> tuple[Signature, ...]:
        """Every signature documenting `port` on `transport` (ICMP: the type), file order."""
        return self._by_port.get((transport, port), ())

    def infrastructure_of(self, role: str) -> Infrastructure | None:
        """The [[infrastructure]] entry declaring `role`; None when none does (then the
        role may use every common signature, as a host without a role does)."""
        for entry in self.infrastructure:
            if role in entry.roles:
                return entry
        return None

    def infrastructure_map(self) -> dict[str, frozenset[str]]:
        """Declared role -> ids of the common signatures it may use."""
        return {
            role: frozenset(entry.signatures)
            for entry in self.infrastructure
            for role in entry.roles
        }

    def any_host_roles(self) -> frozenset[str]:
        """The roles a signature side documented as "any host" (no roles) includes: every
        role but those of entries with any_host = false (devices whose documents list
        their own ports only)."""
        return frozenset(ROLES) - {
            role for entry in self.infrastructure if not entry.any_host for role in entry.roles
        }

    def infrastructure_roles(self, signature_id: str) -> frozenset[str]:
        """The roles that may use a common signature: those whose entry lists it, and any
        role no entry declares."""
        declared = self.infrastructure_map()
        return frozenset(
            role for role in ROLES if role not in declared or signature_id in declared[role]
        )

    def documented_for(self, role: str) -> tuple[Signature, ...]:
        """The signatures naming `role` on either side that document a service (not
        reserved/placeholder), file order: what the documents list for that role."""
        return tuple(
            sig
            for sig in self.signatures
            if role in sig.orig_roles | sig.resp_roles and sig.status not in NOT_A_SERVICE
        )

    def service_ports(self) -> frozenset[tuple[str, int]]:
        """(transport, port) pairs some signature documents as a service; reserved and
        placeholder entries document none. For the flow table's originator rule."""
        return self._service_ports

    def with_overrides(self, overrides: Mapping[str, Sequence[int]]) -> Catalog:
        """A catalog where each named signature has the given ports instead of its own.
        Unknown id -> KeyError; a port outside 0..65535 or an empty list -> ValueError.
        A site's own port wins over a reserved/placeholder range: those ports are taken
        out of reserved and placeholder entries of the same transport."""
        replaced: dict[str, frozenset[int]] = {}
        for signature_id, ports in overrides.items():
            sig = self.get(signature_id)
            replaced[sig.id] = _override_ports(signature_id, ports)
        taken: dict[str, set[int]] = {}
        for signature_id, new_ports in replaced.items():
            taken.setdefault(self._by_id[signature_id].transport, set()).update(new_ports)
        signatures = tuple(_apply_override(sig, replaced, taken) for sig in self.signatures)
        return Catalog(
            signatures=signatures,
            sha256=self.sha256,
            files=self.files,
            infrastructure=self.infrastructure,
        )


def _override_ports(signature_id: str, ports: Sequence[int]) -> frozenset[int]:
    if not ports:
        raise ValueError(f"override of {signature_id}: list at least one port")
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
            raise ValueError(
                f"override of {signature_id}: port {port!r} is not an integer 0..{MAX_PORT}"
            )
    return frozenset(ports)


def _apply_override(
    sig: Signature, replaced: Mapping[str, frozenset[int]], taken: Mapping[str, set[int]]
) -> Signature:
    if sig.id in replaced:
        return dataclasses.replace(sig, ports=replaced[sig.id])
    if sig.status in NOT_A_SERVICE and sig.ports & taken.get(sig.transport, set()):
        return dataclasses.replace(sig, ports=sig.ports - taken[sig.transport])
    return sig


def _default_location() -> Traversable:
    """The catalog shipped in the package; from a source checkout, the repo's signatures/."""
    try:
        return importlib.resources.files(PACKAGE_DATA)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "signatures"


def _signature_files(location: Traversable | Path) -> list[Traversable | Path]:
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise SignatureError(f"{location}: no such signature file or directory")
    files = sorted(
        (item for item in location.iterdir() if item.name.endswith(".toml") and item.is_file()),
        key=lambda item: item.name,
    )
    if not files:
        raise SignatureError(f"{location}: no signature files (*.toml) in this directory")
    return files


def catalog_sha256(contents: Sequence[tuple[str, bytes]]) -> str:
    """SHA-256 over (name, bytes) of every file, sorted by name; names and contents are
    each prefixed by their length so that no two different catalogs hash alike."""
    digest = hashlib.sha256()
    for name, data in sorted(contents):
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog: `path` may be one TOML file or a directory (all
    *.toml in it); None = the catalog shipped with pcapclass. Any problem raises
    SignatureError naming file, line, entry and fix; a broken file is never skipped."""
    location: Traversable | Path = _default_location() if path is None else Path(path)
    files = _signature_files(location)
    signatures: list[Signature] = []
    infra: list[Infrastructure] = []
    contents: list[tuple[str, bytes]] = []
    for item in files:
        raw = _read(item)
        entries, declared = _parse_file(item.name, raw)
        signatures.extend(entries)
        infra.extend(declared)
        contents.append((item.name, raw))
    _check_unique(signatures)
    _check_contradictions(signatures)
    _check_infrastructure(signatures, infra)
    return Catalog(
        signatures=tuple(signatures),
        sha256=catalog_sha256(contents),
        files=tuple(str(item) for item in files),
        infrastructure=tuple(infra),
    )


# --- human-readable views (`pcapclass signatures list | show`) -------------------------------


def port_ranges(ports: Sequence[int] | frozenset[int]) -> list[str]:
    """[12003, 12004, 12005, 12100] -> ["12003-12005", "12100"] (runs of ports as ranges)."""
    ordered = sorted(ports)
    if not ordered:
        return []
    parts: list[str] = []
    start = prev = ordered[0]
    for port in [*ordered[1:], None]:
        if port is not None and port == prev + 1:
            prev = port
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if port is not None:
            start = prev = port
    return parts


def _compact(ports: Sequence[int] | frozenset[int]) -> str:
    """[12003, 12004, 12005, 12100] -> "12003-12005,12100"."""
    return ",".join(port_ranges(ports)) or "-"


def _roles_text(roles: frozenset[str]) -> str:
    return "/".join(role for role in ROLES if role in roles) if roles else "any"


def direction_text(sig: Signature) -> str:
    """ "gemos_client -> gemos_server", "sescomm_server/sesam_client <-> isenet", ..."""
    arrow = "<->" if sig.direction == "either" else "->"
    return f"{_roles_text(sig.orig_roles)} {arrow} {_roles_text(sig.resp_roles)}"


LIST_COLUMNS: tuple[str, ...] = ("id", "system", "transport", "ports", "direction", "status")


def format_list(catalog: Catalog) -> str:
    """One line per signature: id, system, transport, ports, direction, status."""
    rows = [LIST_COLUMNS] + [
        (sig.id, sig.system, sig.transport, _compact(sig.ports), direction_text(sig), sig.status)
        for sig in catalog.signatures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def format_show(sig: Signature, catalog: Catalog | None = None) -> str:
    """Every field of one signature, the source wording included; for a common signature
    with `catalog`, also the roles whose [[infrastructure]] entry lets them use it."""
    infra: tuple[tuple[str, str], ...] = ()
    if catalog is not None and sig.system == "common" and catalog.infrastructure:
        infra = (("infrastructure", _users_text(catalog, sig)),)
    fields = (
        ("id", sig.id),
        ("revision", str(sig.revision)),
        ("system", sig.system),
        ("name", sig.name),
        ("transport", sig.transport),
        ("ports", _compact(sig.ports)),
        ("orig_ports", "any" if sig.orig_ports is None else _compact(sig.orig_ports)),
        ("orig_roles", _roles_text(sig.orig_roles)),
        ("resp_roles", _roles_text(sig.resp_roles)),
        ("direction", f"{sig.direction} ({direction_text(sig)})"),
        ("scope", sig.scope),
        ("status", sig.status),
        ("generic", "true" if sig.generic else "false"),
        ("payload", sig.payload or "-"),
        ("service", sig.service or "-"),
        ("versions", sig.versions or "-"),
        ("remote_hosts", ", ".join(sig.remote_hosts) or "-"),
        *infra,
        ("document", sig.source.document),
        ("section", sig.source.section),
        ("wording", sig.source.wording),
        ("defined in", _where(sig)),
    )
    width = max(len(key) for key, _ in fields)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in fields)


def _users_text(catalog: Catalog, sig: Signature) -> str:
    users = catalog.infrastructure_roles(sig.id)
    groups = [e for e in catalog.infrastructure if e.roles & users]
    where = ", ".join(f"group {e.group}, {e.file}:{e.line}" for e in groups)
    text = f"used by {_roles_text(users) if users else 'no role'}"
    if where:
        text += f" ({where})"
    barred = frozenset(ROLES) - users
    if barred:
        text += f"; not by {_roles_text(barred)}"
    return text


def format_role(catalog: Catalog, role: str) -> str:
    """One role: its system, the common infrastructure its [[infrastructure]] entry lets it
    use, and the signatures documenting it (what `pcapclass signatures show ROLE` prints)."""
    entry = catalog.infrastructure_of(role)
    if entry is None:
        group, infra, note = "-", "every common signature (no [[infrastructure]] entry)", "-"
    else:
        group = f"{entry.group} ({entry.file}:{entry.line})"
        infra = ", ".join(entry.signatures) or "none"
        note = entry.note
    documented = catalog.documented_for(role)
    rows = [(sig.id, sig.transport, _compact(sig.ports), direction_text(sig)) for sig in documented]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ] or ["-"]
    fields = (
        ("role", role),
        ("system", ROLE_SYSTEM[role]),
        ("group", group),
        ("infrastructure", infra),
        ("note", note),
        ("documented", lines[0]),
        *(("", line) for line in lines[1:]),
    )
    width = max(len(key) for key, _ in fields)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in fields)
