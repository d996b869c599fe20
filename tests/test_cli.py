"""The command line as a user meets it: exit codes, exact one-line errors, outputs."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzer import schema
from analyzer.output import read_metadata

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"


def run(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analyzer.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def pcap_header(linktype: int = 1) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)


def test_missing_file_exit_2_one_line(tmp_path: Path) -> None:
    r = run("nope.pcap", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == "pcapclass: error: nope.pcap: no such file\n"
    assert not (tmp_path / "pcapclass-out").exists()


def test_not_a_capture_exit_2_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello, this is not a capture\n")
    r = run("notes.txt", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: notes.txt: not a capture file (no pcap or pcapng magic at "
        "offset 0); pcapclass reads pcap, pcapng and their .gz\n"
    )


def test_empty_capture_gives_empty_fully_typed_tables(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(pcap_header())
    r = run("empty.pcap", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "pcapclass-out" / "empty.pcap"
    for name, cols in schema.TABLES.items():
        table = pq.read_table(out / f"{name}.parquet")
        assert table.num_rows == 0
        assert table.schema.remove_metadata() == schema.arrow_schema(cols)
    meta = read_metadata(out / "flows.parquet")
    assert meta["pcapclass.packets"] == "0"
    assert meta["pcapclass.truncated"] == "false"
    assert r.stdout.decode().splitlines()[0] == "empty.pcap: 0 packets, 0 flows"
    assert r.stderr.decode() == "pcapclass: warning: empty.pcap: no packets in the capture\n"


def test_garbage_after_nothing_is_exit_2_not_an_empty_capture(tmp_path: Path) -> None:
    """A valid header with no records is an empty capture (above); bytes that are no
    capture at all are exit 2, and no output folder appears."""
    (tmp_path / "junk.pcap").write_bytes(bytes(range(7, 250)) * 3)
    r = run("junk.pcap", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: junk.pcap: not a capture file (no pcap or pcapng magic at "
        "offset 0); pcapclass reads pcap, pcapng and their .gz\n"
    )
    assert not (tmp_path / "pcapclass-out").exists()


def test_stdin_needs_out(tmp_path: Path) -> None:
    r = run("-", cwd=tmp_path, stdin=pcap_header())
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: reading a capture from standard input (-) needs -o OUTDIR\n"
    )


def test_stdin_with_out_and_json(tmp_path: Path) -> None:
    r = run("-", "-o", "out", "--json", cwd=tmp_path, stdin=pcap_header())
    assert r.returncode == 0, r.stderr.decode()
    obj = json.loads(r.stdout)
    assert set(obj) == {
        "version",
        "captures",
        "flows",
        "verdicts",
        "severities",
        "findings",
        "outputs",
        "errors",
        "failed",
        "interrupted",
        "exit_code",
    }
    health = obj["captures"][0].pop("health")  # the contract: `health` per capture
    assert (health["packets"], health["skipped_total"], health["warnings"]) == (0, 0, [])
    assert obj["captures"] == [
        {
            "path": "-",
            "name": "<stdin>",
            "packets": 0,
            "skipped": {},
            "not_ip": {},
            "damaged": {},
            "truncated": False,
            "interrupted": False,
            "evicted": 0,
            "flows": 0,
            "findings": 0,
            "warnings": ["<stdin>: no packets in the capture"],
        }
    ]
    assert obj["exit_code"] == 0 and obj["flows"] == 0
    assert obj["errors"] == [] and obj["failed"] == 0 and obj["interrupted"] is False
    assert obj["outputs"] == {"-": {n: f"out/{n}.parquet" for n in ("flows", "findings", "hosts")}}
    assert (tmp_path / "out" / "flows.parquet").exists()


def test_bad_site_file_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.pcap").write_bytes(pcap_header())
    r = run("c.pcap", "--site", "missing.toml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == "pcapclass: error: missing.toml: no such file\n"


def test_unknown_fail_on_is_one_line_usage_error(tmp_path: Path) -> None:
    r = run("x.pcap", "--fail-on", "urgent", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: Invalid value for '--fail-on': 'urgent' is not one of 'info', "
        "'low', 'medium', 'high', 'critical'; see `pcapclass analyze --help`\n"
    )
    assert r.stdout == b""


def test_unknown_option_is_one_line_usage_error(tmp_path: Path) -> None:
    r = run("x.pcap", "--frobnicate", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: No such option '--frobnicate'; see `pcapclass analyze --help`\n"
    )


@pytest.mark.skipif(not (SAMPLES / "mixed_site.pcapng").exists(), reason="demo sample missing")
def test_fail_on_is_case_insensitive(tmp_path: Path) -> None:
    cap = str(SAMPLES / "mixed_site.pcapng")
    r = run(cap, "-o", "o", "--fail-on", "CRITICAL", "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr.decode()  # the demo has critical findings
    r = run(cap, "-o", "o", "--fail-on", "Info", cwd=tmp_path)
    assert r.returncode == 1, r.stderr.decode()


def test_help_lists_the_exit_codes(tmp_path: Path) -> None:
    for args in (("--help",), ("analyze", "--help")):
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 0
        out = r.stdout.decode()
        assert "Exit codes:" in out
        for code, words in (
            ("0", "done, no finding at or above --fail-on"),
            ("1", "done, at least one finding at or above --fail-on, or some captures"),
            ("2", "bad input or usage, or no capture could be read"),
            ("3", "internal error"),
            ("130", "interrupted (Ctrl-C, SIGTERM)"),
        ):
            assert any(line.split()[:1] == [code] and words in line for line in out.splitlines()), (
                code,
                out,
            )


def test_signatures_show_unknown_id(tmp_path: Path) -> None:
    r = run("signatures", "show", "cmi.nope", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: unknown signature id 'cmi.nope'; "
        "`pcapclass signatures list` shows the ids\n"
    )


def test_signatures_show_a_role_and_who_uses_a_common_signature(tmp_path: Path) -> None:
    """Issue 12: the per-role common infrastructure is printed by `signatures show`."""
    common = (ROOT / "signatures" / "common.toml").read_text(encoding="utf-8").splitlines()
    pc_line = common.index('group = "pc"')  # the [[infrastructure]] header is the line above
    isenet_line = common.index('group = "isenet"')
    r = run("signatures", "show", "isenet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[:4] == [
        "role            isenet",
        "system          sesam",
        f"group           isenet (common.toml:{isenet_line})",
        "infrastructure  none",
    ]
    assert lines[5].split() == ["documented", "sesam.lantronix-41797", "udp", "41797",
                                "sescomm_server/sesam_client", "<->", "isenet"]  # fmt: skip
    assert lines[-1].split() == [
        "sesam.ping-isenet", "icmp", "8", "sescomm_server/sesam_client", "->", "isenet",
    ]  # fmt: skip
    r = run("signatures", "show", "common.ntp", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (
        "infrastructure  used by gemos_server/gemos_client/sescomm_server/sesam_client/sesam_db "
        f"(group pc, common.toml:{pc_line}); not by isenet/cmi/comserver"
    ) in r.stdout.decode().splitlines()


def test_signatures_list_and_validate(tmp_path: Path) -> None:
    r = run("signatures", "list", cwd=tmp_path)
    assert r.returncode == 0
    assert "cmi.ta-portal-40001" in r.stdout.decode()
    r = run("signatures", "validate", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout.decode().startswith("the shipped catalog: ")


def test_signatures_validate_broken_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[[signature]]\nid = "cmi.x"\nprot = 1\n')
    r = run("signatures", "validate", "bad.toml", cwd=tmp_path)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.startswith("pcapclass: error: bad.toml:1: ") and err.count("\n") == 1


@pytest.mark.skipif(not (SAMPLES / "mixed_site.pcapng").exists(), reason="demo sample missing")
def test_demo_capture_fail_on_levels(tmp_path: Path) -> None:
    cap = str(SAMPLES / "mixed_site.pcapng")
    site = str(SAMPLES / "mixed_site.site.toml")
    r = run(cap, "--site", site, "-o", "o1", "--json", cwd=tmp_path)
    obj = json.loads(r.stdout)
    severities = {f["severity"] for f in obj["findings"]}
    assert "critical" in severities  # the inbound connection from the internet to the C.M.I.
    assert r.returncode == 1 == obj["exit_code"]
    # the demo has a critical finding, so even the highest threshold exits 1
    r = run(cap, "--site", site, "-o", "o2", "--fail-on", "critical", cwd=tmp_path)
    assert r.returncode == 1
    assert "inbound_to_cmi" in r.stdout.decode()


def test_two_captures_with_out_get_subfolders(tmp_path: Path) -> None:
    (tmp_path / "a.pcap").write_bytes(pcap_header())
    (tmp_path / "b.pcap").write_bytes(pcap_header())
    r = run("a.pcap", "b.pcap", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert (tmp_path / "out" / "a.pcap" / "flows.parquet").exists()
    assert (tmp_path / "out" / "b.pcap" / "flows.parquet").exists()


def test_one_bad_capture_among_good_ones_exit_1_others_written(tmp_path: Path) -> None:
    """A failed capture among analysed ones is exit 1 (never 0, never hiding findings)."""
    (tmp_path / "a.pcap").write_bytes(pcap_header())
    r = run("a.pcap", "missing.pcap", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.decode() == (
        "pcapclass: warning: a.pcap: no packets in the capture\n"
        "pcapclass: error: missing.pcap: no such file\n"
    )
    assert (tmp_path / "pcapclass-out" / "a.pcap" / "flows.parquet").exists()
    assert r.stdout.decode().endswith("failed: 1 capture\n  missing.pcap: no such file\n")


def test_internal_error_exit_3(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from analyzer import cli, pipeline

    def boom(*a, **k):
        raise RuntimeError("flow table invariant broken")

    monkeypatch.setattr(pipeline, "analyze", boom)  # what the CLI imports when it runs
    (tmp_path / "a.pcap").write_bytes(pcap_header())
    res = CliRunner().invoke(cli.main, [str(tmp_path / "a.pcap"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 3
    assert res.stderr.splitlines()[-1] == (
        "pcapclass: error: internal error (RuntimeError: flow table invariant broken); "
        "please report it"
    )


@pytest.mark.skipif(not (SAMPLES / "cmi_site.pcap.gz").exists(), reason="sample missing")
def test_uids_do_not_depend_on_where_the_capture_lies(tmp_path: Path) -> None:
    import shutil

    (tmp_path / "elsewhere").mkdir()
    copy = tmp_path / "elsewhere" / "cmi_site.pcap.gz"
    shutil.copy(SAMPLES / "cmi_site.pcap.gz", copy)
    run(str(SAMPLES / "cmi_site.pcap.gz"), "-o", "a", cwd=tmp_path)
    run("elsewhere/cmi_site.pcap.gz", "-o", "b", cwd=tmp_path)
    a = pq.read_table(tmp_path / "a" / "flows.parquet")
    b = pq.read_table(tmp_path / "b" / "flows.parquet")
    assert a.num_rows > 0
    assert a.column("uid").to_pylist() == b.column("uid").to_pylist()
    assert set(a.column("capture").to_pylist()) == {"cmi_site.pcap.gz"}
    assert read_metadata(tmp_path / "b" / "flows.parquet")["pcapclass.capture"].startswith(
        '{"name": "cmi_site.pcap.gz"'
    )


@pytest.mark.skipif(not (SAMPLES / "sesam_site.sll2.pcap").exists(), reason="sample missing")
def test_findings_below_the_threshold_exit_0(tmp_path: Path) -> None:
    """The Sesam sample's only findings are `rare` (low): exit 0 at the default threshold
    (high), 1 with --fail-on low."""
    cap = str(SAMPLES / "sesam_site.sll2.pcap")
    site = str(SAMPLES / "sesam_site.site.toml")
    r = run(cap, "--site", site, "-o", "a", "--json", cwd=tmp_path)
    obj = json.loads(r.stdout)
    assert {f["severity"] for f in obj["findings"]} == {"low"}
    assert r.returncode == 0 == obj["exit_code"]
    r = run(cap, "--site", site, "-o", "b", "--fail-on", "low", cwd=tmp_path)
    assert r.returncode == 1


def test_help_and_signatures_do_not_import_the_analysis() -> None:
    """`pcapclass --help` and `pcapclass signatures ...` start without pandas or the
    analysis modules (half a second of imports a user at a terminal would wait for)."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from analyzer import cli\n"
        "assert CliRunner().invoke(cli.main, ['--help']).exit_code == 0\n"
        "assert CliRunner().invoke(cli.main, ['signatures', 'list']).exit_code == 0\n"
        "print(sorted(m for m in ('pandas', 'analyzer.pipeline', 'analyzer.flows')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_two_captures_with_one_output_folder_are_refused_before_reading(tmp_path: Path) -> None:
    """a/x.pcap.gz and b/x.pcap.gz would share D/x.pcap.gz/: exit 2 before anything is
    read (b's garbage would otherwise be a different error), nothing written."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    (tmp_path / "a" / "x.pcap.gz").write_bytes(pcap_header())
    (tmp_path / "b" / "x.pcap.gz").write_bytes(b"garbage")
    r = run("a/x.pcap.gz", "b/x.pcap.gz", "-o", "D", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "pcapclass: error: a/x.pcap.gz and b/x.pcap.gz would both write to D/x.pcap.gz/; "
        "give the captures different file names or run them one at a time with their own -o\n"
    )
    assert not (tmp_path / "D").exists() and r.stdout == b""
    r = run("-", "-", "-o", "D", cwd=tmp_path)
    assert r.returncode == 2
    assert "- and - would both write to D/stdin/" in r.stderr.decode()


@pytest.mark.skipif(not (SAMPLES / "mixed_site.pcapng").exists(), reason="demo sample missing")
def test_a_failed_capture_never_hides_a_finding_nor_a_finding_a_failure(tmp_path: Path) -> None:
    cap = str(SAMPLES / "mixed_site.pcapng")
    (tmp_path / "junk.pcap").write_bytes(b"not a capture at all")
    r = run(cap, "junk.pcap", "-o", "D", "--json", cwd=tmp_path)
    assert r.returncode == 1
    obj = json.loads(r.stdout)
    assert obj["exit_code"] == 1 and obj["failed"] == 1
    assert obj["errors"] == [
        "junk.pcap: not a capture file (no pcap or pcapng magic at offset 0); "
        "pcapclass reads pcap, pcapng and their .gz"
    ]
    assert obj["severities"]["critical"] >= 1
    assert [c["path"] for c in obj["captures"]] == [cap]
    assert [c["name"] for c in obj["captures"]] == ["mixed_site.pcapng"]
    # no finding at all, one failure: still 1, not 0
    (tmp_path / "empty.pcap").write_bytes(pcap_header())
    r = run("empty.pcap", "junk.pcap", "-o", "E", cwd=tmp_path)
    assert r.returncode == 1
    # nothing could be read: 2
    r = run("junk.pcap", "missing.pcap", "-o", "F", cwd=tmp_path)
    assert r.returncode == 2


@pytest.mark.skipif(not (SAMPLES / "mixed_site.pcapng").exists(), reason="demo sample missing")
def test_summary_is_bounded_by_limit_and_json_keeps_everything(tmp_path: Path) -> None:
    cap = str(SAMPLES / "mixed_site.pcapng")
    r = run(cap, "-o", "o", "--limit", "2", cwd=tmp_path)
    lines = r.stdout.decode().splitlines()
    obj = json.loads(run(cap, "-o", "o", "--json", cwd=tmp_path).stdout)
    total = len(obj["findings"])
    assert total > 2
    per = ", ".join(f"{s} {n}" for s, n in obj["severities"].items())
    head = next(i for i, ln in enumerate(lines) if ln.startswith("findings: "))
    assert lines[head] == f"findings: {total} ({per})"
    assert lines[head + 1].split()[:2] == ["SEVERITY", "VERDICT"]
    assert [ln.split()[0] for ln in lines[head + 2 : head + 4]] == ["critical", "critical"]
    assert lines[head + 4] == f"  ... and {total - 2} more in o/findings.parquet"


def _run_entry(tmp_path: Path, before: str, *args: str) -> subprocess.CompletedProcess:
    """analyzer.cli.run (the installed script's entry) in a fresh interpreter, after
    `before` (Python source) has run there."""
    code = (
        f"import sys\n{before}\nsys.argv = ['pcapclass', *{list(args)!r}]\n"
        "from analyzer import cli\ncli.run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_entry_runs_exit_handlers_and_flushes_before_its_fast_exit(tmp_path: Path) -> None:
    """The script skips the interpreter's teardown, not the exit handlers: an atexit
    function still runs, and the summary on a pipe is complete, with the exit code the
    contract gives (1: a finding at or above --fail-on critical in the demo sample)."""
    before = (
        "import atexit, pathlib\n"
        "atexit.register(lambda: pathlib.Path('atexit-ran').write_text('yes'))"
    )
    sample = str(SAMPLES / "mixed_site.pcapng")
    site = str(SAMPLES / "mixed_site.site.toml")
    args = (sample, "--site", site, "-o", "out", "--fail-on", "critical")
    done = _run_entry(tmp_path, before, *args)
    assert done.returncode == 1, done.stderr
    assert (tmp_path / "atexit-ran").read_text() == "yes"
    assert done.stdout.startswith(f"{sample}: 1,399 packets, 75 flows\n")
    assert done.stdout.rstrip().splitlines()[-1].startswith("outputs: ")


def test_entry_waits_for_a_live_non_daemon_thread(tmp_path: Path) -> None:
    """A non-daemon thread still running at the end is waited for, as a normal exit does
    (the fast exit would kill it): its file is written, the exit code is kept (0)."""
    before = (
        "import pathlib, threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(1), "
        "pathlib.Path('thread-done').write_text('yes'))).start()"
    )
    done = _run_entry(tmp_path, before, "--version")
    assert done.returncode == 0, done.stderr
    assert "pcapclass" in done.stdout
    assert (tmp_path / "thread-done").read_text() == "yes"


def test_entry_keeps_the_usage_exit_code(tmp_path: Path) -> None:
    done = _run_entry(tmp_path, "", "--no-such-option")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("pcapclass: error: ")


def test_entry_collects_garbage_less_often_but_still_collects_cycles(tmp_path: Path) -> None:
    """The script raises the collector's thresholds from Python's (700, 10, 10) to
    (100000, 50, 100), and a reference cycle left behind is still freed by the collector
    (here by the explicit collection an exit handler makes)."""
    before = (
        "import atexit, gc, pathlib, weakref\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.peer, b.peer = b, a\n"
        "gone = weakref.ref(a)\n"
        "del a, b\n"
        "def check():\n"
        "    seen = gc.get_threshold()\n"
        "    gc.collect()\n"
        "    pathlib.Path('gc').write_text(f'{seen} {gone() is None}')\n"
        "atexit.register(check)"
    )
    done = _run_entry(tmp_path, before, "--version")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gc").read_text() == "(100000, 50, 100) True"
