"""Domain errors of pcapclass. The library raises these and never prints or exits;
the CLI translates them into a one-line message and an exit code.

    PcapclassError                 base; exit code 3 unless a subclass says otherwise
    ├── InputError                 the user's input is unusable as a whole: exit 2
    │   ├── CaptureError           file missing, unreadable, not a capture, no readable record
    │   ├── SignatureError         a signature file breaks the catalog schema
    │   ├── SiteError              the site file is malformed or contradicts itself
    │   └── UsageError             options that cannot work together (e.g. stdin without -o)
    ├── InterruptedEarly           interrupted before a capture's header arrived: exit 130
    └── InternalError              a bug: exit 3

Bad *packets* are not errors: they are counted by reason in the capture stats.
Every message names the file (and line where there is one) and says how to fix it.
"""

from __future__ import annotations


class PcapclassError(Exception):
    """Base class of every error pcapclass raises on purpose."""

    exit_code = 3


class InputError(PcapclassError):
    """The input as a whole cannot be used; the message says which file and how to fix it."""

    exit_code = 2


class CaptureError(InputError):
    """A capture file is missing, unreadable, not a capture, or holds no readable record."""


class SignatureError(InputError):
    """A signature file is invalid: the message names file, line and entry id."""


class SiteError(InputError):
    """A site file is invalid: the message names file, line and the fix."""


class UsageError(InputError):
    """Options that cannot work together."""


class InternalError(PcapclassError):
    """An invariant of pcapclass itself broke; always a bug."""

    exit_code = 3


class InterruptedEarly(PcapclassError):
    """SIGINT/SIGTERM came before a capture's file header: nothing to analyse or write."""

    exit_code = 130
