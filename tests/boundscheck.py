"""Run a script in a child Python with NUMBA_BOUNDSCHECK=1 (numba's index checks on in
every kernel, so a read past a buffer raises IndexError instead of reading memory).

The flag is read when numba compiles, so it needs a fresh process with its own cache
directory (a cache compiled without the checks would be reused otherwise). The script
gets the tests folder as argv[1] (to import test modules) and prints `ok N M ...` when
all went well; the numbers are returned.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_with_bounds_checks(
    script: str, *args: str, cache_dir: Path, timeout: float = 600
) -> list[int]:
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "tests"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok "), done.stdout[-3000:]
    return [int(n) for n in done.stdout.split()[1:]]
