"""Load and validate the signature catalog (`signatures/*.toml`) into frozen objects.
Nothing else reads that folder.

MODEL (fixed; classify depends on it). A Signature says: on `transport`, a connection
to one of `ports` (responder side), opened by a host holding one of `orig_roles`
towards a host holding one of `resp_roles`, is documented traffic of `system`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
