"""analyzer.triage: a reviewed finding becomes a site [[allow]] entry (docs/contract.md,
"Site file"), written atomically and loaded by the site loader; a typo is the loader's
error; the next analysis with the new site file no longer reports the finding."""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path

import pytest
from report_data import SAMPLES

from analyzer import triage
from analyzer.dataset import open_dataset
from analyzer.errors import SiteError
from analyzer.pipeline import analyze
from analyzer.site import load_site

SITE = SAMPLES / "mixed_site.site.toml"
CAPTURE = SAMPLES / "mixed_site.pcapng"
REASON = "caretaker's office PC reads the heating status page"
# sample_pcaps/README.md: the office PC 192.168.10.121 opens the C.M.I.'s web page
OFFICE_PC = {"verdict": "inbound_to_cmi", "orig_h": "192.168.10.121", "resp_h": "192.168.10.40"}


@pytest.fixture(scope="module")
def finding(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("before") / "out"
    analyze(CAPTURE, outdir=out, site=SITE)
    findings = open_dataset(out).findings
    chosen = findings[
        (findings["verdict"] == OFFICE_PC["verdict"])
        & (findings["orig_h"] == OFFICE_PC["orig_h"])
        & (findings["resp_h"] == OFFICE_PC["resp_h"])
    ]
    assert len(chosen) == 1
    return chosen.iloc[0]


def test_allow_entry_has_the_contract_keys(finding) -> None:  # type: ignore[no-untyped-def]
    entry = triage.allow_entry(finding, REASON)
    assert entry == {
        "orig": "192.168.10.121", "resp": "192.168.10.40", "proto": "tcp", "port": 80,
        "reason": REASON,
    }  # fmt: skip
    assert tuple(entry) == triage.ALLOW_KEYS
    assert type(entry["port"]) is int


def test_add_allows_round_trips_through_the_site_loader(finding, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    original = SITE.read_text()
    out = triage.add_allows(SITE, [triage.allow_entry(finding, REASON)], tmp_path / "site.toml")
    assert out == tmp_path / "site.toml"
    text = out.read_text()
    assert text.startswith(original)  # comments and entries kept as written
    assert text[len(original) :] == (
        '\n[[allow]]\norig = "192.168.10.121"\nresp = "192.168.10.40"\nproto = "tcp"\n'
        'port = 80\nreason = "caretaker\'s office PC reads the heating status page"\n'
    )
    assert SITE.read_text() == original  # the original stays as it is
    site = load_site(out)
    assert len(site.allows) == 2  # the sample has one allow already
    new = site.allows[1]
    assert new.signature_id == "site:allow:2"
    assert (new.orig, new.resp) == (
        ipaddress.ip_network("192.168.10.121/32"), ipaddress.ip_network("192.168.10.40/32")
    )  # fmt: skip
    assert (new.proto, new.port, new.reason) == ("tcp", 80, REASON)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.toml"]  # no temporaries
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_finding_is_gone_after_classifying_again(finding, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    new_site = triage.add_allows(SITE, [triage.allow_entry(finding, REASON)], tmp_path / "s.toml")
    result = analyze(CAPTURE, site=new_site, write=False)
    findings = result.findings.to_pylist()
    keys = {(f["verdict"], f["orig_h"], f["resp_h"], f["resp_p"]) for f in findings}
    assert ("inbound_to_cmi", "192.168.10.121", "192.168.10.40", 80) not in keys
    assert len(findings) == 6  # the other six of the sample's seven stay
    flows = [f for f in result.flows.to_pylist() if f["uid"] in set(finding["uids"])]
    assert len(flows) == 1
    assert (flows[0]["verdict"], flows[0]["severity"]) == ("expected", "info")
    assert flows[0]["signature_id"] == "site:allow:2"
    assert REASON in flows[0]["reason"]


def test_a_typo_is_the_loaders_error_and_nothing_is_written(tmp_path: Path) -> None:
    entry = {"orig": "192.168.10.121", "resp": "192.168.10.40", "prot": "tcp", "port": 80,
             "reason": REASON}  # fmt: skip
    out = tmp_path / "site.toml"
    with pytest.raises(SiteError) as err:
        triage.add_allows(SITE, [entry], out)
    # the appended table's header comes after a blank line; the loader reports the first
    # problem by line: the table lacks `proto` (the misspelt key is on a later line)
    header = len(SITE.read_text().splitlines()) + 2
    assert str(err.value) == f"{out}:{header}: allow #2: missing key 'proto'; add proto = \"tcp\""
    # a misspelt optional key has nothing missing before it: the "did you mean" message
    extra = {**triage.allow_entry({"orig_h": "10.0.0.1", "resp_h": "10.0.0.2", "proto": "tcp",
                                   "resp_p": 80}, REASON), "resons": "x"}  # fmt: skip
    with pytest.raises(SiteError) as err:
        triage.add_allows(SITE, [extra], out)
    assert str(err.value) == (
        f"{out}:{header + 6}: allow #2: unknown key 'resons'; did you mean 'reason'?"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_empty_reason_and_a_bad_address_are_rejected(finding, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "site.toml"
    with pytest.raises(SiteError, match=r"allow #2: reason is empty; say why this connection"):
        triage.add_allows(SITE, [triage.allow_entry(finding, "  ")], out)
    bad = {**triage.allow_entry(finding, REASON), "orig": "192.168.10.300"}
    with pytest.raises(SiteError, match=r"allow #2: bad address '192.168.10.300' in orig"):
        triage.add_allows(SITE, [bad], out)
    assert not out.exists()


def test_in_place_and_no_duplicates(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    shutil.copy(SITE, site)
    before = site.read_text()
    # the sample's own allow: the technician laptop .77 -> the C.M.I.'s web page
    same = {"orig": "192.168.10.77", "resp": "192.168.10.40", "proto": "tcp", "port": 80,
            "reason": "again"}  # fmt: skip
    assert triage.add_allows(site, [same]) == site
    assert site.read_text() == before
    other = {**same, "port": 40001, "reason": "portal check from the laptop"}
    triage.add_allows(site, [other])
    assert [a.port for a in load_site(site).allows] == [80, 40001]


def test_a_new_site_file_from_nothing(tmp_path: Path) -> None:
    entry = {"orig": "10.0.0.5", "resp": "10.0.0.9", "proto": "udp", "port": 5441,
             "reason": 'CoE to the "second" C.M.I.'}  # fmt: skip
    out = triage.add_allows(None, [entry], tmp_path / "new.toml")
    assert load_site(out).allows[0].reason == 'CoE to the "second" C.M.I.'
    with pytest.raises(SiteError, match=r"give the site file to extend or out_path"):
        triage.add_allows(None, [entry])
