"""The output folder and files as a user meets them: an unwritable, full or read-only
folder is one line and exit 2 (never a traceback); files respect the umask and another
user can read them; SIGKILL at any moment leaves the old or the new complete file under
each final name and the next run removes stray temporaries; crafted capture names
cannot write outside the output directory or forge terminal lines."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzer import output, schema

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_pcaps" / "mixed_site.pcapng"
NOBODY = 65534


# Root without the capabilities that bypass file permissions: an unprivileged user as
# far as the output folder is concerned (the interpreter under /root stays reachable,
# which it is not for `nobody` here).
UNPRIVILEGED = [
    "setpriv",
    "--inh-caps=-all",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
    "--",
]


def run(
    *args: str, cwd: Path, unprivileged: bool = False, umask: int | None = None
) -> subprocess.CompletedProcess:
    prefix = UNPRIVILEGED if unprivileged and os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file capabilities")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "analyzer.cli", *args],
        cwd=cwd,
        capture_output=True,
        timeout=120,
        env=env,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,  # type: ignore[func-returns-value]
    )


def pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="pcapclass-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[bool]:
    """A small tmpfs at `where` when mount works (root in most CI containers)."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


# ------------------------------------------------------------ folders that cannot be written


def test_unwritable_out_dir_is_one_line_exit_2(shared_tmp: Path) -> None:
    (shared_tmp / "c.pcap").write_bytes(pcap_header())
    locked = shared_tmp / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # nobody may write in it, its owner included
    r = run("c.pcap", "-o", "locked", cwd=shared_tmp, unprivileged=True)
    assert r.returncode == 2, r.stderr.decode()
    assert r.stderr.decode() == (
        "pcapclass: error: locked: cannot write the output files (Permission denied); "
        "choose a folder you can write with -o, or fix its permissions\n"
    )
    assert r.stdout == b"" and list(locked.iterdir()) == []
    # a folder still to be made inside it: the same, naming the folder asked for
    r = run("c.pcap", "-o", "locked/sub/dir", cwd=shared_tmp, unprivileged=True)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: locked/sub/dir: cannot create it (Permission denied); "
        "choose a folder you can write with -o, or fix its permissions\n"
    )


def test_out_path_that_is_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.pcap").write_bytes(pcap_header())
    (tmp_path / "taken").write_text("a file\n")
    r = run("c.pcap", "-o", "taken", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: taken: cannot create the output folder (not a folder); "
        "it exists and is not a folder; choose another path with -o\n"
    )


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
def test_full_disk_is_one_line_exit_2_and_leaves_no_temporary(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=8k") as mounted:
        if not mounted:
            pytest.skip("mount does not work here; test_full_disk_mocked covers the path")
        r = run(str(SAMPLE), "-o", "small/out", cwd=tmp_path)
        assert r.returncode == 2, r.stderr.decode()
        assert r.stderr.decode().splitlines()[-1] == (
            "pcapclass: error: small/out: cannot write the output files (No space left on "
            "device); the disk is full; free some space or choose another folder with -o"
        )
        assert "Traceback" not in r.stderr.decode()
        assert list((tmp_path / "small" / "out").iterdir()) == []


def test_full_disk_mocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same message where mount is not allowed: the write fails with ENOSPC."""
    from click.testing import CliRunner

    from analyzer import cli

    def full(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.pq, "write_table", full)
    (tmp_path / "c.pcap").write_bytes(pcap_header())
    res = CliRunner().invoke(cli.main, [str(tmp_path / "c.pcap"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.stderr.splitlines()[-1] == (
        f"pcapclass: error: {tmp_path / 'o'}: cannot write the output files (No space left "
        "on device); the disk is full; free some space or choose another folder with -o"
    )
    assert list((tmp_path / "o").iterdir()) == []


def test_read_only_file_system_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.pcap").write_bytes(pcap_header())
    with tmpfs(tmp_path / "ro", "size=64k,ro") as mounted:
        if not mounted:
            pytest.skip("mount does not work here")
        r = run("c.pcap", "-o", "ro/out", cwd=tmp_path)
        assert r.returncode == 2
        assert r.stderr.decode() == (
            "pcapclass: error: ro/out: cannot create it (Read-only file system); "
            "the file system is read-only; choose another folder with -o\n"
        )


# ------------------------------------------------------------------------- file modes


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
def test_files_follow_the_umask_and_another_user_reads_them(shared_tmp: Path) -> None:
    r = run(str(SAMPLE), "-o", "out", cwd=shared_tmp, umask=0o022)
    assert r.returncode == 1, r.stderr.decode()  # the demo has critical findings
    out = shared_tmp / "out"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for name in output.FILE_NAMES.values():
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    if os.geteuid() == 0 and shutil.which("setpriv"):
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        for name in output.FILE_NAMES.values():  # the whole file, magic to magic
            done = subprocess.run([*as_nobody, "cat", str(out / name)], capture_output=True)
            assert done.returncode == 0, done.stderr
            assert done.stdout == (out / name).read_bytes()
            assert done.stdout[:4] == done.stdout[-4:] == b"PAR1"
    r = run(str(SAMPLE), "-o", "private", cwd=shared_tmp, umask=0o077)
    for name in output.FILE_NAMES.values():
        assert stat.S_IMODE((shared_tmp / "private" / name).stat().st_mode) == 0o600


# ------------------------------------------------------------------ SIGKILL, temporaries

KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import pyarrow as pa
    import pyarrow.parquet as pq
    from analyzer import output
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    small = {n: pq.read_table(src / f"{n}.parquet").replace_schema_metadata(None)
             for n in ("flows", "findings", "hosts")}
    big = {n: pa.concat_tables([t] * 40) for n, t in small.items()}
    versions = [("A", small), ("B", big)]
    i = 0
    while True:
        tag, tables = versions[i % 2]
        output.write_tables(dst, tables, {"pcapclass.test_tag": tag})
        if i == 0:
            print("ready", flush=True)
        i += 1
    """
)


def start_writer(script: str, src: Path, dst: Path) -> subprocess.Popen:
    """Start a writer loop and wait for its "ready" (its first write is done): that
    write has removed what the runs killed before it left, so any temporary left in
    `dst` is its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(src), str(dst)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    leftovers = [p.name for p in dst.iterdir() if p.name.endswith(".tmp")]
    assert all(f".{proc.pid}." in n for n in leftovers), leftovers
    return proc


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
def test_sigkill_at_any_moment_leaves_old_or_new_complete_files(tmp_path: Path) -> None:
    from analyzer.pipeline import analyze

    src = tmp_path / "src"
    result = analyze(SAMPLE, outdir=src)
    rows = {n: getattr(result, n).num_rows for n in ("flows", "findings", "hosts")}
    expected = {"A": rows, "B": {n: 40 * k for n, k in rows.items()}}
    dst = tmp_path / "dst"
    rng = random.Random(20260412)
    kills = stale_seen = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline or kills < 8:
        proc = start_writer(KILLED_WRITER, src, dst)
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        for name, file_name in output.FILE_NAMES.items():
            path = dst / file_name
            tag = output.read_metadata(path)["pcapclass.test_tag"]
            table = pq.read_table(path)  # complete: footer, schema and every row group
            assert table.num_rows == expected[tag][name], (kills, name, tag)
            assert table.schema.remove_metadata() == schema.arrow_schema(schema.TABLES[name])
        stale_seen += any(p.name.endswith(".tmp") for p in dst.iterdir())
    assert kills >= 8
    output.write_tables(dst, {n: getattr(result, n) for n in rows}, {})
    assert sorted(p.name for p in dst.iterdir()) == sorted(output.FILE_NAMES.values())
    print(f"{kills} kills, {stale_seen} left temporaries that the next run removed")


def test_a_live_writers_temporary_is_not_removed(tmp_path: Path) -> None:
    """Two runs writing into one folder: the other run's temporary stays."""
    live = tmp_path / f".flows.parquet.{os.getppid()}.abc.tmp"  # our parent: alive
    dead = tmp_path / ".findings.parquet.999999999.abc.tmp"  # no such process
    old_style = tmp_path / ".hosts.parquet.k2j3h4.tmp"  # tempfile's names, no pid
    unrelated = tmp_path / ".notes.tmp"
    for p in (live, dead, old_style, unrelated):
        p.write_bytes(b"PAR1 partial")
    removed = output.remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([dead, old_style])
    assert live.exists() and unrelated.exists()


# ------------------------------------------------------------------- crafted capture names


def test_capture_paths_with_dot_dot_stay_inside_the_output_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "x.pcap").write_bytes(pcap_header())
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    r = run("../../etc/x.pcap", cwd=deep)
    assert r.returncode == 0, r.stderr.decode()
    assert (deep / "pcapclass-out" / "x.pcap" / "flows.parquet").exists()
    (tmp_path / "y.pcap").write_bytes(pcap_header())
    r = run("../../etc/x.pcap", "../../y.pcap", "-o", "D", cwd=deep)
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(p.name for p in (deep / "D").iterdir()) == ["x.pcap", "y.pcap"]
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["x.pcap"]


def test_names_with_newlines_and_escapes_cannot_forge_lines(tmp_path: Path) -> None:
    evil = "evil\nname\x1b[2J.pcap"
    (tmp_path / evil).write_bytes(pcap_header())
    (tmp_path / "ok.pcap").write_bytes(pcap_header())
    r = run(evil, "ok.pcap", "-o", "D", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "D").iterdir()) == ["evil_name_[2J.pcap", "ok.pcap"]
    out = r.stdout.decode()
    assert out.splitlines()[0] == "evil\\nname\\x1b[2J.pcap: 0 packets, 0 flows"
    assert "\x1b" not in out and "\x1b" not in r.stderr.decode()
    assert r.stderr.decode().splitlines()[0] == (
        "pcapclass: warning: evil\\nname\\x1b[2J.pcap: no packets in the capture"
    )
    # the Parquet capture column keeps the real name: it is data, not a path
    flows_meta = output.read_metadata(tmp_path / "D" / "evil_name_[2J.pcap" / "flows.parquet")
    assert '"name": "evil\\nname\\u001b[2J.pcap"' in flows_meta["pcapclass.capture"]


def test_folder_name_of_odd_names() -> None:
    assert output.folder_name("-") == "stdin"
    assert output.folder_name("../../etc/x.pcap") == "x.pcap"
    assert output.folder_name("/") == "_"
    assert output.folder_name("a/..") == "_"
    assert output.folder_name("tab\tx\x7f.pcap") == "tab_x_.pcap"


# --------------------------------------------------------- Zeek-log temporaries (--zeek-logs)

KILLED_LOG_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import pyarrow as pa
    import pyarrow.parquet as pq
    from analyzer.zeeklog import log_texts, write_text_atomic, write_zeek_logs
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    tables = {n: pa.concat_tables([pq.read_table(src / f"{n}.parquet")] * 60)
              for n in ("flows", "findings")}
    write_zeek_logs(tables, dst)  # as --zeek-logs does: removes dead writers' temps first
    print("ready", flush=True)
    texts = log_texts(tables["flows"], tables["findings"])
    while True:  # then only the writing, so that the kills land in it
        for name, text in texts.items():
            write_text_atomic(dst / name, text)
    """
)
ZEEK_LOGS = ("conn.log", "pcapclass_findings.log")
KILLS = 8


@pytest.mark.skipif(not SAMPLE.exists(), reason="demo sample missing")
def test_sigkill_while_writing_zeek_logs_leaves_temps_the_next_run_removes(
    tmp_path: Path,
) -> None:
    from analyzer.pipeline import analyze
    from analyzer.zeeklog import write_zeek_logs

    src = tmp_path / "src"
    result = analyze(SAMPLE, outdir=src)
    dst = tmp_path / "dst"
    rng = random.Random(14)
    stale_seen = 0
    for _ in range(KILLS):
        proc = start_writer(KILLED_LOG_WRITER, src, dst)
        time.sleep(rng.uniform(0.0, 0.3))
        until = time.monotonic() + 5  # then kill it while one of its temporaries exists
        while time.monotonic() < until and not any(dst.glob(f".*.{proc.pid}.*.tmp")):
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for name in ZEEK_LOGS:  # the final names: always a whole log
            assert (dst / name).read_text().splitlines()[-1].startswith("#close\t")
        stale_seen += any(p.name.endswith(".tmp") for p in dst.iterdir())
    assert stale_seen >= 1  # else no kill hit a write and nothing was tested
    write_zeek_logs(result, dst)
    assert sorted(p.name for p in dst.iterdir()) == sorted(ZEEK_LOGS)
    print(f"{KILLS} kills, {stale_seen} left Zeek-log temporaries the next run removed")


def test_stale_zeek_log_temps_are_removed_by_the_next_cli_run(tmp_path: Path) -> None:
    """Planted names as open_temp makes them: a dead writer's go, a live one's stay."""
    out = tmp_path / "out"
    out.mkdir()
    dead = [out / f".{n}.999999999.0a1b2c3d4e5f.tmp" for n in ZEEK_LOGS]
    no_pid = out / ".conn.log.k2j3h4.tmp"  # tempfile's names
    live = out / f".pcapclass_findings.log.{os.getppid()}.abc.tmp"  # our parent: alive
    unrelated = [out / ".dns.log.999999999.abc.tmp", out / ".conn.log.notes"]
    for p in (*dead, no_pid, live, *unrelated):
        p.write_text("#separator \\x09\n")
    (tmp_path / "x.pcap").write_bytes(pcap_header())
    r = run("x.pcap", "-o", "out", "--zeek-logs", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert left == sorted(p.name for p in (live, *unrelated))
    assert (out / "conn.log").exists() and (out / "pcapclass_findings.log").exists()
