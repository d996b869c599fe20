"""The first module the forkserver of `pcapclass batch --workers N` imports: it ignores
SIGINT, before the long imports of analyzer.batch.forkserver.

A Ctrl-C at the terminal reaches the whole process group: the driver, the forkserver and
the local workers. The driver alone decides what it means (batch/interrupt.py) and stops
the workers when it closes the cluster; a worker must not die mid-write or print a
traceback. multiprocessing's forkserver ignores SIGINT itself only after its preload,
and its children inherit the disposition it had then, so it is set here, first. A
module of its own outside analyzer.batch, whose package imports pandas and pyarrow.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
