"""Coverage-guided fuzzing of the reader and the engine with atheris (maintenance, not CI).

    .venv/bin/pip install -e '.[fuzz]'            # atheris (a wheel, no compiler needed)
    .venv/bin/python benchmarks/fuzz_atheris.py [--seconds 300] [--python-kernels]
        [--corpus DIR] [-- libFuzzer flags...]

Each input is written to a file and analysed like `pcapclass FILE` without writing
outputs (pipeline.analyze(write=False): reader, decoder, connection table, classifier,
capture health). A bad whole input (analyzer.errors.InputError) is a normal outcome;
any other exception is a crash, which libFuzzer saves as crash-<sha1> in the current
folder (reproduce: `benchmarks/fuzz_atheris.py crash-<sha1>`).

The corpus starts from the public captures (uncompressed, at most --max-seed bytes) and
the sample pcapng; new inputs that reach new code are added to --corpus. The kernels are
compiled by numba, which atheris cannot see into: with --python-kernels they run as
plain Python (NUMBA_DISABLE_JIT=1), so the coverage guidance reaches the record walk and
the decoder's branches too, at a fraction of the speed. docs/hardening.md has a run.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT.parent / "shared" / "pcaps" / "public"
KERNEL_MODULES = [
    "analyzer.kernel", "analyzer.walk", "analyzer.health", "analyzer.decode",
    "analyzer.conntable", "analyzer.flows",
]  # fmt: skip


def seed_corpus(corpus: Path, max_seed: int) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    n = 0
    sources = [*sorted(PUBLIC.rglob("*.pcap*")), ROOT / "sample_pcaps" / "mixed_site.pcapng"]
    for p in sources:
        if not p.is_file():
            continue
        data = p.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if len(data) <= max_seed:
            (corpus / f"seed-{p.name}").write_bytes(data)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--python-kernels", action="store_true")
    ap.add_argument("--corpus", type=Path, default=ROOT / ".fuzz-corpus")
    ap.add_argument("--max-seed", type=int, default=64 * 1024)
    args, rest = ap.parse_known_args()
    if args.python_kernels:
        os.environ["NUMBA_DISABLE_JIT"] = "1"
    import atheris

    if not args.python_kernels:
        # numba cannot compile bytecode atheris has instrumented: the modules holding
        # kernels are imported first, uninstrumented (their Python wrappers too)
        for name in KERNEL_MODULES:
            __import__(name)
    with atheris.instrument_imports(include=["analyzer"]):
        from analyzer.errors import InputError
        from analyzer.pipeline import analyze
        from analyzer.signatures import load_catalog

    catalog = load_catalog()
    work = Path(tempfile.mkdtemp(prefix="pcapclass-atheris-"))
    target = work / "input"

    def one_input(data: bytes) -> None:
        target.write_bytes(data)
        try:
            result = analyze(target, catalog=catalog, write=False)
        except InputError:
            return
        flows = result.flows
        in_flows = sum(flows.column(c).to_numpy().sum() for c in ("orig_pkts", "resp_pkts"))
        assert in_flows <= result.capture.packets, (in_flows, result.capture.packets)

    reproduce = [a for a in rest if not a.startswith("-")]
    argv = [sys.argv[0], *rest]
    if not reproduce:
        seeded = seed_corpus(args.corpus, args.max_seed)
        print(f"corpus {args.corpus}: {seeded} seeds", file=sys.stderr)
        argv += [f"-max_total_time={args.seconds}", f"-max_len={args.max_seed}"]
        argv.append(str(args.corpus))
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
