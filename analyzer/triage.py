"""Turn reviewed findings into site `[[allow]]` entries and write the new site file.

    entry = allow_entry(finding, "caretaker's office PC reads the heating status page")
    new_site = add_allows("site.toml", [entry], out_path="site.reviewed.toml")

An entry has exactly the keys of the contract's `[[allow]]` table (docs/contract.md,
"Site file"): orig, resp, proto, port, reason. add_allows appends the entries to the
site file's text (everything already there, comments included, stays as it is), checks
the result with the project's site loader (analyzer.site) before anything is written,
writes it atomically (analyzer.output.write_file_atomic) and loads the written file
again. So a typo'd key, a bad address or an empty reason is the loader's one-line
SiteError naming the file and the line, and no file is left half-written or invalid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import SiteError
from .site import Site, load_site, parse_site

ALLOW_KEYS = ("orig", "resp", "proto", "port", "reason")  # contract, [[allow]]
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")  # TOML bare key


def allow_entry(finding: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The `[[allow]]` entry accepting one finding (a findings row: a pandas Series or a
    mapping with orig_h, resp_h, proto, resp_p): this originator may open this port on
    this responder, because `reason`. The reason is checked when the site file is
    loaded (add_allows), like any other key."""
    return {
        "orig": str(finding["orig_h"]),
        "resp": str(finding["resp_h"]),
        "proto": str(finding["proto"]),
        "port": int(finding["resp_p"]),
        "reason": str(reason),
    }


def toml_value(value: Any) -> str:
    """A TOML value: strings as basic strings (JSON's escapes are TOML's), integers,
    booleans; anything else is a SiteError (a site file holds nothing else)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise SiteError(f"allow entry value {value!r}: give a string or an integer")


def toml_entry(entry: Mapping[str, Any]) -> str:
    """One `[[allow]]` table as TOML text, keys in the entry's order."""
    lines = ["[[allow]]"]
    for key, value in entry.items():
        name = key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
        lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _same(a: Mapping[str, Any], site: Site) -> bool:
    """An allow of the site already says exactly this (same addresses, proto, port)."""
    for allow in site.allows:
        if (str(allow.orig), str(allow.resp), allow.proto, allow.port) == (
            _net(a.get("orig")), _net(a.get("resp")), a.get("proto"), a.get("port")
        ):  # fmt: skip
            return True
    return False


def _net(text: Any) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_network(str(text).strip(), strict=False))
    except ValueError:
        return None


def add_allows(
    site_path: str | Path | None,
    entries: Iterable[Mapping[str, Any]],
    out_path: str | Path | None = None,
) -> Path:
    """Write `site_path`'s text plus one `[[allow]]` table per entry to `out_path`
    (default: `site_path` itself, replaced atomically); `site_path` None starts from an
    empty site file. An entry the site already allows exactly is not added twice.
    Returns the written path. Raises SiteError (the loader's message, naming `out_path`
    and the line) when the result is not a valid site file; then nothing is written."""
    if site_path is None and out_path is None:
        raise SiteError("add_allows: give the site file to extend or out_path to write")
    target = Path(out_path if out_path is not None else site_path)  # type: ignore[arg-type]
    text = ""
    if site_path is not None:
        current = load_site(site_path)  # a broken original is reported as itself
        text = Path(site_path).read_text(encoding="utf-8")
    else:
        current = parse_site("", path=str(target))
    blocks = [toml_entry(e) for e in entries if not _same(e, current)]
    if blocks:
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("\n" if text else "") + "\n".join(blocks)
    parse_site(text, path=str(target))  # before writing: a typo leaves nothing behind
    from .output import write_file_atomic

    written = write_file_atomic(target, text.encode("utf-8"))
    load_site(written)  # the file as written is what the next run loads
    return written


__all__ = ["ALLOW_KEYS", "add_allows", "allow_entry", "toml_entry", "toml_value"]
