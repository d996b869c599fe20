"""What the forkserver of `--workers N` imports before it forks the local workers.

Every worker is a fork of that process (runner._preload_forkserver), so it starts with
Dask, numpy, pandas, pyarrow, numba and the analyzer imported.
"""

from __future__ import annotations

import distributed  # noqa: F401 - imported once here instead of in every worker

from .. import output, pipeline, site, zeeklog  # noqa: F401 - what a capture needs
from . import worker  # noqa: F401
