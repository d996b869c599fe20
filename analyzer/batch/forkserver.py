"""What the forkserver of `--workers N` imports before it forks the local workers.

Every worker is a fork of that process (runner._preload_forkserver), so it starts with
Dask, numpy, pandas, pyarrow, numba and the analyzer imported, and with the logging
filter below in place.
"""

from __future__ import annotations

import logging

import distributed  # noqa: F401 - imported once here instead of in every worker

from .. import output, pipeline, site, zeeklog  # noqa: F401 - what a capture needs
from . import worker  # noqa: F401

HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat."  # Worker.heartbeat


class HeartbeatFilter(logging.Filter):
    """Drops the one record a local worker logs (with a traceback, at ERROR) when its
    heartbeat meets the scheduler closing its connection: the driver is closing the
    cluster (the end of a run, or a Ctrl-C), and the contract wants one line on stderr
    then. The scheduler lives in the driver, so it never fails while a run goes on; a
    real problem is the driver's to report. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != HEARTBEAT_FAILED


logging.getLogger("distributed.worker").addFilter(HeartbeatFilter())
