"""Find the captures under the batch inputs: files by magic bytes, and each one's site file.

    found = walk(inputs, exclude=dataset)   # every regular file, with size, mtime, site file
    kind = sniff(path)                      # "pcap" | "pcapng" | "gzip+..." or a Skip reason

Capture or not is decided by the first bytes, never by the name: tcpdump -C/-G and dumpcap
ring buffers write names like `capture.pcap12` or `eth1_00003_20261121030000.pcapng`, and
a `.pcap` may hold anything. A gzip file is a capture when its decompressed start is.
The site file of a capture is `site.toml` in its directory or the nearest parent
directory (whichever INPUT named it, so a capture keeps its site file whether its
directory or the file itself is given); without one, the run's `--site` applies.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..reader import MAGIC_GZIP, MAGIC_PCAPNG, PCAP_MAGICS

SITE_FILE_NAME = "site.toml"  # issue 9: "A site.toml in a capture's directory (or nearest parent)"
MAGIC_LEN = 4


@dataclass(frozen=True)
class Candidate:
    """A regular file found under the inputs."""

    path: Path  # absolute
    size: int
    mtime: float  # st_mtime, seconds since the epoch
    site_file: Path | None  # nearest site.toml, None: the run's default applies


class NotCapture(Exception):
    """The file is not a capture; the message is the reason, as the skipped list shows it."""


def walk(inputs: Iterable[Path], *, exclude: Path | None = None) -> list[Candidate]:
    """Every regular file under the inputs (directories recursively, files as given), in
    path order, each once. Site files and anything under `exclude` (the dataset) are left
    out. A missing input raises FileNotFoundError naming it."""
    seen: dict[Path, Candidate] = {}
    skip_root = exclude.resolve() if exclude is not None else None
    for given in inputs:
        root = Path(given).absolute()
        if not root.exists():
            raise FileNotFoundError(str(given))
        for path in _files(root):
            if path.name == SITE_FILE_NAME or path in seen:
                continue
            if skip_root is not None and _inside(path, skip_root):
                continue
            try:
                st = path.stat()
            except OSError:
                continue  # vanished between listing and stat: not there this run
            seen[path] = Candidate(path, st.st_size, st.st_mtime, nearest_site_file(path))
    return [seen[p] for p in sorted(seen)]


def _files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked directories not followed
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file():  # follows a symlink to a file; skips sockets, fifos
                yield path


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def nearest_site_file(path: Path) -> Path | None:
    """site.toml in the file's directory or the nearest parent directory."""
    for directory in path.parents:
        candidate = directory / SITE_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def sniff(path: Path) -> str:
    """The capture format from the magic bytes ("pcap", "pcapng", "gzip+pcap", ...).
    Raises NotCapture with the reason, or OSError when the file cannot be read."""
    with open(path, "rb") as fh:
        head = fh.read(MAGIC_LEN)
    if head[:2] == MAGIC_GZIP:
        return "gzip+" + _inner(_gunzip_head(path))
    return _inner(head)


def _inner(head: bytes) -> str:
    if head == MAGIC_PCAPNG:
        return "pcapng"
    if head in PCAP_MAGICS:
        return "pcap"
    if len(head) < MAGIC_LEN:
        raise NotCapture(f"too short to be a capture ({len(head)} bytes)")
    raise NotCapture("not a capture (no pcap or pcapng magic at offset 0)")


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(MAGIC_LEN)
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, PermissionError):
            raise
        raise NotCapture(f"gzip data that cannot be decompressed ({exc})") from None
