"""Mutation campaign (maintenance, not CI): damaged captures derived from the public ones
through the real `pcapclass` command, outcomes counted per class of damage.

    .venv/bin/python benchmarks/mutation_campaign.py [--cases 1700] [--workers 2]
        [--seed 14] [--timeout 60] [--repro-dir /work/fuzz-repro]

Classes (each case one of them, drawn in turn): bitflip (1-8 random bit flips),
truncate (cut at a random byte), length (an absurd 32-bit length at a record's length
field: 0, 13, 2^24, 2^31, 2^32-1), pcapng_option (an IDB option made extreme: if_tsresol
0..255, if_tsoffset near +-2^63 or +-9.3e9 s, an option length running past the block),
pcapng_block (a block type, a trailing length or a byte-order magic damaged, a giant
block inserted), gzip (the compressed stream cut, bit-flipped, or followed by garbage).
pcapng classes use the pcapng captures only; the others all captures (uncompressed
first, then re-compressed when the capture was a .gz).

Outcomes: processed (exit 0 or 1, the three Parquet files read back), rejected (exit 2,
one line on stderr), crashed (exit 3, or any other exit, or an output that does not
read back), hang (no answer within --timeout s: the worker is killed). Each crash and
hang is kept under --repro-dir with its stderr. Cases run in a few long-lived worker
processes (`pcapclass` in-process, so a case costs the analysis, not the start-up).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT.parent / "shared" / "pcaps" / "public"
CLASSES = ["bitflip", "truncate", "length", "pcapng_option", "pcapng_block", "gzip"]
NG_MAGIC = b"\x0a\x0d\x0d\x0a"
ABSURD_LENGTHS = [0, 13, 2**24, 2**31, 2**32 - 1]


# ---------------------------------------------------------------------- the captures


def load_public() -> list[tuple[str, bytes, bool]]:
    """(path in the manifest, uncompressed bytes, was gzip) of every public capture."""
    out = []
    with (PUBLIC / "MANIFEST.tsv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            data = (PUBLIC / row["path"]).read_bytes()
            was_gz = data[:2] == b"\x1f\x8b"
            out.append((row["path"], gzip.decompress(data) if was_gz else data, was_gz))
    return out


def blocks(data: bytes) -> list[tuple[int, int, int, str]]:
    """(offset, type, length, byte order) of each complete pcapng block."""
    out, pos, order = [], 0, "<"
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == NG_MAGIC:
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", data, pos)
        if blen < 12 or pos + blen > len(data):
            break
        out.append((pos, btype, blen, order))
        pos += blen
    return out


def record_starts(data: bytes) -> list[tuple[int, int, str]]:
    """(offset of a length field, its size in bytes, byte order) of each record."""
    if data[:4] == NG_MAGIC:
        return [(off + 4, 4, order) for off, _, _, order in blocks(data)]
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, pos = [], 24
    while pos + 16 <= len(data):
        out.append((pos + 8, 4, order))
        (caplen,) = struct.unpack_from(order + "I", data, pos + 8)
        pos += 16 + caplen
    return out


# ---------------------------------------------------------------------- mutations


def bitflip(rng: np.random.Generator, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def truncate(rng: np.random.Generator, data: bytes) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def length(rng: np.random.Generator, data: bytes) -> bytes:
    starts = record_starts(data)
    if not starts:
        return bitflip(rng, data)
    at, _, order = starts[int(rng.integers(0, len(starts)))]
    b = bytearray(data)
    struct.pack_into(order + "I", b, at, int(rng.choice(ABSURD_LENGTHS)))
    return bytes(b)


def pcapng_option(rng: np.random.Generator, data: bytes) -> bytes:
    """Rewrite one IDB's options: an extreme if_tsresol and/or if_tsoffset, or an option
    whose length runs past the block."""
    idbs = [(o, n, order) for o, t, n, order in blocks(data) if t == 1]
    if not idbs:
        return bitflip(rng, data)
    off, blen, order = idbs[int(rng.integers(0, len(idbs)))]
    head = data[off + 8 : off + 16]  # link type, reserved, snap length
    kind = int(rng.integers(0, 3))
    opts = b""
    if kind in (0, 2):
        opts += struct.pack(order + "HHB3x", 9, 1, int(rng.integers(0, 256)))
    if kind in (1, 2):
        offset = int(rng.choice([2**63 - 1, -(2**63), 9_300_000_000, -9_300_000_000, 9 * 10**9]))
        opts += struct.pack(order + "HHq", 14, 8, offset)
    if rng.random() < 0.3:  # an option running past the block
        opts += struct.pack(order + "HH", 2, int(rng.integers(5, 65536))) + b"abcd"
    else:
        opts += struct.pack(order + "HH", 0, 0)
    body = head + opts
    n = len(body) + 12
    new = struct.pack(order + "II", 1, n) + body + struct.pack(order + "I", n)
    return data[:off] + new + data[off + blen :]


def pcapng_block(rng: np.random.Generator, data: bytes) -> bytes:
    bl = blocks(data)
    if not bl:
        return bitflip(rng, data)
    off, btype, blen, order = bl[int(rng.integers(0, len(bl)))]
    b = bytearray(data)
    kind = int(rng.integers(0, 4))
    if kind == 0:  # another block type (an SHB in the middle, an unknown type, ...)
        new_type = int(rng.choice([0x0A0D0D0A, 1, 2, 3, 5, 6, 0x0BAD, 0x80000001]))
        struct.pack_into(order + "I", b, off, new_type)
    elif kind == 1:  # the trailing length
        struct.pack_into(order + "I", b, off + blen - 4, int(rng.choice(ABSURD_LENGTHS)))
    elif kind == 2 and btype == 0x0A0D0D0A:  # the byte-order magic
        b[off + 8 : off + 12] = bytes(rng.integers(0, 256, 4, dtype=np.uint8))
    else:  # a giant (or tiny) block inserted before this one
        claim = struct.pack(order + "II", int(rng.choice([6, 1, 3])), int(rng.choice([16, 2**31])))
        b[off:off] = claim + bytes(16)
    return bytes(b)


def gzip_damage(rng: np.random.Generator, data: bytes) -> bytes:
    comp = bytearray(gzip.compress(data, compresslevel=6, mtime=0))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return bytes(comp[: int(rng.integers(2, len(comp)))])
    if kind == 1:
        for _ in range(int(rng.integers(1, 5))):
            comp[int(rng.integers(10, len(comp)))] ^= 1 << int(rng.integers(0, 8))
        return bytes(comp)
    garbage = bytes(rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8))
    return bytes(comp) + garbage


MUTATORS = {
    "bitflip": bitflip,
    "truncate": truncate,
    "length": length,
    "pcapng_option": pcapng_option,
    "pcapng_block": pcapng_block,
    "gzip": gzip_damage,
}


def make_cases(n: int, seed: int, work: Path) -> list[dict]:
    rng = np.random.default_rng(seed)
    captures = load_public()
    ng = [c for c in captures if c[1][:4] == NG_MAGIC]
    cases = []
    for i in range(n):
        cls = CLASSES[i % len(CLASSES)]
        pool = ng if cls.startswith("pcapng") else captures
        name, data, was_gz = pool[int(rng.integers(0, len(pool)))]
        mutated = MUTATORS[cls](rng, data)
        if was_gz and cls != "gzip":
            mutated = gzip.compress(mutated, mtime=0)
        suffix = ".pcap.gz" if (was_gz or cls == "gzip") else Path(name).suffix
        path = work / f"case{i:05d}-{cls}{suffix}"
        path.write_bytes(mutated)
        cases.append({"id": i, "cls": cls, "source": name, "path": str(path)})
    return cases


# ---------------------------------------------------------------------- workers


def worker() -> None:
    """Read one JSON case per line, run `pcapclass CASE -o OUT`, answer one JSON line."""
    import pyarrow.parquet as pq

    from analyzer.cli import main

    for line in sys.stdin:
        case = json.loads(line)
        out = Path(case["path"] + ".out")
        err = io.StringIO()
        code: int | str | None = 0
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            try:
                main([case["path"], "-o", str(out)], standalone_mode=True)
            except SystemExit as exc:
                code = exc.code
            except BaseException as exc:  # noqa: BLE001 - a crash of the harness' own
                code = f"escaped {type(exc).__name__}: {exc}"
        readback = ""
        if code in (0, 1):
            try:
                for table in ("flows", "findings", "hosts"):
                    pq.read_table(out / f"{table}.parquet")
            except Exception as exc:  # noqa: BLE001
                readback = f"{type(exc).__name__}: {exc}"
        shutil.rmtree(out, ignore_errors=True)
        answer = {"id": case["id"], "code": code, "stderr": err.getvalue()[-4000:]}
        answer["readback"] = readback
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line)
        self.answers.put("")

    def run(self, case: dict, timeout: float) -> dict | None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            return None
        if not line:
            return {"id": case["id"], "code": "worker died", "stderr": "", "readback": ""}
        return json.loads(line)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def outcome(answer: dict | None) -> str:
    if answer is None:
        return "hang"
    if answer["code"] in (0, 1) and not answer["readback"]:
        return "processed"
    if answer["code"] == 2:
        return "rejected"
    return "crashed"


def run_cases(cases: list[dict], workers: int, timeout: float) -> list[tuple[dict, dict | None]]:
    todo: queue.Queue[dict] = queue.Queue()
    for c in cases:
        todo.put(c)
    results: list[tuple[dict, dict | None]] = []
    lock = threading.Lock()

    def drive() -> None:
        w = Worker()
        while True:
            try:
                case = todo.get_nowait()
            except queue.Empty:
                break
            answer = w.run(case, timeout)
            if answer is None or answer["code"] == "worker died":
                w.kill()
                w = Worker()
            with lock:
                results.append((case, answer))
                if len(results) % 100 == 0:
                    print(f"  {len(results)} / {len(cases)}", file=sys.stderr, flush=True)
        w.kill()

    threads = [threading.Thread(target=drive) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results, key=lambda r: r[0]["id"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1700)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a hang")
    ap.add_argument("--repro-dir", type=Path, default=ROOT.parent / "fuzz-repro")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker()
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pcapclass-mutants-") as tmp:
        cases = make_cases(args.cases, args.seed, Path(tmp))
        results = run_cases(cases, args.workers, args.timeout)
        table: dict[str, Counter[str]] = defaultdict(Counter)
        kept = []
        for case, answer in results:
            o = outcome(answer)
            table[case["cls"]][o] += 1
            if o in ("crashed", "hang"):
                args.repro_dir.mkdir(parents=True, exist_ok=True)
                dest = args.repro_dir / Path(case["path"]).name
                shutil.copy(case["path"], dest)
                text = "hang" if answer is None else json.dumps(answer, indent=1)
                dest.with_name(dest.name + ".txt").write_text(
                    f"source: {case['source']}\n{text}\n"
                )
                kept.append(str(dest))
    outcomes = ["processed", "rejected", "crashed", "hang"]
    print(f"{'class':<15}" + "".join(f"{o:>11}" for o in outcomes) + f"{'total':>8}")
    total: Counter[str] = Counter()
    for cls in CLASSES:
        row = table[cls]
        total.update(row)
        print(f"{cls:<15}" + "".join(f"{row[o]:>11}" for o in outcomes) + f"{row.total():>8}")
    print(f"{'all':<15}" + "".join(f"{total[o]:>11}" for o in outcomes) + f"{total.total():>8}")
    print(f"{len(results)} cases in {time.monotonic() - started:.0f} s, seed {args.seed}")
    for k in kept:
        print("kept:", k)
    return 1 if total["crashed"] or total["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
