"""The property-based fuzz tests with a long budget (maintenance, not CI).

    .venv/bin/python benchmarks/fuzz_long.py [--examples 5000] [--boundscheck-cases 5000]

Runs tests/test_reader_fuzz.py and tests/test_decode_fuzz.py with FUZZ_EXAMPLES examples
per property (`make test` runs 40 and 150), fresh random examples each run
(FUZZ_RANDOM=1: not derandomized), and FUZZ_BOUNDSCHECK_CASES damaged captures through
the reader with NUMBA_BOUNDSCHECK=1. A failure prints hypothesis's smallest failing
example; add it to the test as an @example before fixing it. See docs/hardening.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=5000, help="examples per property")
    ap.add_argument("--boundscheck-cases", type=int, default=5000)
    args = ap.parse_args()
    env = dict(
        os.environ,
        FUZZ_EXAMPLES=str(args.examples),
        FUZZ_RANDOM="1",
        FUZZ_BOUNDSCHECK_CASES=str(args.boundscheck_cases),
    )
    tests = [str(ROOT / "tests" / t) for t in ("test_reader_fuzz.py", "test_decode_fuzz.py")]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
