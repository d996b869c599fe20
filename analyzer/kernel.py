"""The one decorator every per-packet kernel uses, so all of them compile the same way.

    from analyzer.kernel import kernel

    @kernel
    def walk(buf, start, end, out): ...

`kernel` is numba's ``njit(cache=True, nogil=True)``:

- ``cache=True``: compiled code is stored beside the source (``__pycache__``) and, where
  that folder is read-only (a system ``site-packages``), in numba's user-wide cache
  directory, or wherever ``NUMBA_CACHE_DIR`` points. The first run after an install
  compiles (a few seconds); later runs load the cache.
- ``nogil=True``: a kernel releases the GIL, so the reader's hashing thread and a
  kernel run on two cores at once.
- Bounds checks follow ``NUMBA_BOUNDSCHECK`` (numba's default: off). The fuzz tests run
  the kernels with ``NUMBA_BOUNDSCHECK=1`` (and their own ``NUMBA_CACHE_DIR``), so an
  out-of-bounds read fails a test instead of reading memory. Every kernel still checks
  each length itself before it reads: that is the product's guarantee, the bounds
  check is the test's.

Importing this module imports numba (about 0.4 s): only the analysis path does, never
``pcapclass --help`` or ``pcapclass signatures``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile `fn` as a cached, GIL-free numba kernel."""
    return numba.njit(cache=True, nogil=True)(fn)  # type: ignore[return-value]


def inline_kernel(fn: F) -> F:
    """`kernel`, and also inlined into every kernel that calls it (numba's
    ``inline="always"``, at numba's IR level). For the small per-packet helpers: a call
    that is not inlined passes each array argument by reference and counts the
    reference (NRT incref/decref) on every call; profiling the decoder showed those
    counts as about 45 % of its time. A helper stays callable from Python as usual."""
    return numba.njit(cache=True, nogil=True, inline="always")(fn)  # type: ignore[return-value]


def readonly(buf: np.ndarray) -> np.ndarray:
    """A view of `buf` no kernel can write. Byte buffers come both read-only (a mapped
    file, bytes) and writable (the stream's chunks, the table's buffer), and numba
    compiles and caches one version of a kernel per flavour. Handing every buffer over
    read-only keeps one version per kernel: half the compiling on a cold cache, and no
    lost cache entry when two processes (batch workers) save a kernel's index at once."""
    if not buf.flags.writeable:
        return buf
    view = buf.view()
    view.flags.writeable = False
    return view
