"""Write the notebooks of this folder from the cell texts below, with outputs cleared.

    .venv/bin/python notebooks/make_notebooks.py        # rewrites notebooks/*.ipynb

The notebooks hold no logic of their own: every cell calls the package (analyzer.*).
Their paths come from environment variables set in the first cell ("parameters"), with
the sample captures as defaults, so CI (tests/test_notebooks.py) runs them on the
samples in temporary folders and a user points them at real data:

    PCAPCLASS_CAPTURE=/srv/mirror/eth1.pcapng PCAPCLASS_SITE=site.toml jupyter lab
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


CAPTURE_OVERVIEW = [
    md("""
# 01 Capture overview

Analyse one capture with pcapclass through the library (`analyzer.pipeline.analyze`, the
call the command line makes), load the three tables with `analyzer.dataset.open_dataset`,
look at the plots, and read the findings one by one.

Parameters come from environment variables (defaults: the mixed-site sample):
`PCAPCLASS_CAPTURE`, `PCAPCLASS_SITE` (empty: no site file), `PCAPCLASS_OUT`.
"""),
    code("""
import os
from pathlib import Path

CAPTURE = os.environ.get("PCAPCLASS_CAPTURE", "../sample_pcaps/mixed_site.pcapng")
SITE = os.environ.get("PCAPCLASS_SITE", "../sample_pcaps/mixed_site.site.toml") or None
OUT = Path(os.environ.get("PCAPCLASS_OUT", "pcapclass-out/01_capture_overview"))
""", "parameters"),
    md("## Run pcapclass"),
    code("""
from analyzer import summary
from analyzer.pipeline import analyze

result = analyze(CAPTURE, outdir=OUT, site=SITE)
print(summary.summary(result))
"""),
    md("## The tables\n\nTimestamps are UTC, verdict/severity/system are ordered categoricals."),
    code("""
from analyzer.dataset import open_dataset

ds = open_dataset(OUT)
ds.flows.head()
"""),
    code("""
ds.hosts[["ip", "name", "role", "role_source", "vendor", "systems"]]
"""),
    md(
        "## Plots\n\nEach call returns a matplotlib Figure (drawn without pyplot); "
        "the notebook shows the cell's last value."
    ),
    code("""
%matplotlib inline
from analyzer import plots

plots.traffic_over_time(ds.flows, by="system", value="connections")
"""),
    code("""
plots.communication_matrix(ds.flows, ds.hosts)
"""),
    code("""
plots.findings_over_time(ds.findings, flows=ds.flows)
"""),
    code("""
plots.top_talkers(ds.flows, n=10)
"""),
    code("""
plots.unexplained_ports(ds.flows, n=10)
"""),
    code("""
from analyzer.signatures import load_catalog

catalog = load_catalog()
plots.signature_coverage(ds.flows, catalog)
"""),
    code("""
plots.coverage_table(ds.flows, catalog)
"""),
    md("""
## The findings, one by one

Most severe first. Each: what was seen, why it is a finding, who the two hosts are, and
the connections behind it (joined on `uids`).
"""),
    code("""
from analyzer.report import explain

print(explain.explain_findings(ds.findings, ds.flows, ds.hosts))
"""),
    md("## The report\n\nThe same as `pcapclass report OUT`: one self-contained HTML page."),
    code("""
from analyzer.report import write_report

print(write_report(ds, OUT / "report.html"))
"""),
]

FINDINGS_TRIAGE = [
    md("""
# 02 Findings triage

Filter the findings by severity, system and host, drill from one finding to its
connections (`uids`) and hosts, and turn a reviewed finding into a site `[[allow]]` entry
with its reason. The site file is written next to the output and loaded again by the site
loader, so a typo is caught; a second run shows the finding gone.

Parameters (environment variables; defaults: the mixed-site sample and the technician's
office PC opening the C.M.I.'s web page): `PCAPCLASS_CAPTURE`, `PCAPCLASS_SITE`,
`PCAPCLASS_OUT`, `PCAPCLASS_SEVERITY`, `PCAPCLASS_SYSTEM`, `PCAPCLASS_HOST`,
`PCAPCLASS_ALLOW_VERDICT`, `PCAPCLASS_ALLOW_ORIG`, `PCAPCLASS_ALLOW_RESP`,
`PCAPCLASS_ALLOW_REASON`.
"""),
    code("""
import os
from pathlib import Path

CAPTURE = os.environ.get("PCAPCLASS_CAPTURE", "../sample_pcaps/mixed_site.pcapng")
SITE = os.environ.get("PCAPCLASS_SITE", "../sample_pcaps/mixed_site.site.toml")
OUT = Path(os.environ.get("PCAPCLASS_OUT", "pcapclass-out/02_findings_triage"))
SEVERITY = os.environ.get("PCAPCLASS_SEVERITY", "high")  # at least this severity
SYSTEM = os.environ.get("PCAPCLASS_SYSTEM", "cmi")
HOST = os.environ.get("PCAPCLASS_HOST", "192.168.10.40")
# the finding reviewed and accepted
ALLOW_VERDICT = os.environ.get("PCAPCLASS_ALLOW_VERDICT", "inbound_to_cmi")
ALLOW_ORIG = os.environ.get("PCAPCLASS_ALLOW_ORIG", "192.168.10.121")
ALLOW_RESP = os.environ.get("PCAPCLASS_ALLOW_RESP", "192.168.10.40")
ALLOW_REASON = os.environ.get(
    "PCAPCLASS_ALLOW_REASON", "caretaker's office PC reads the heating status page"
)
""", "parameters"),
    code("""
from analyzer.dataset import open_dataset
from analyzer.pipeline import analyze

analyze(CAPTURE, outdir=OUT / "before", site=SITE)
ds = open_dataset(OUT / "before")
findings = ds.findings
findings[["severity", "verdict", "system", "orig_h", "resp_h", "proto", "resp_p", "flows"]]
"""),
    md("## Filter: by severity, by system, by host"),
    code("""
findings[findings["severity"] >= SEVERITY]
"""),
    code("""
findings[findings["system"] == SYSTEM]
"""),
    code("""
findings[(findings["orig_h"] == HOST) | (findings["resp_h"] == HOST)]
"""),
    md("## Drill down: one finding, its connections and its hosts"),
    code("""
chosen = findings[
    (findings["verdict"] == ALLOW_VERDICT)
    & (findings["orig_h"] == ALLOW_ORIG)
    & (findings["resp_h"] == ALLOW_RESP)
]
finding = chosen.iloc[0]
finding[["severity", "verdict", "message", "uids"]]
"""),
    code("""
ds.flows[ds.flows["uid"].isin(finding["uids"])][
    ["uid", "ts", "orig_h", "orig_p", "resp_h", "resp_p", "conn_state", "history", "reason"]
]
"""),
    code("""
ds.hosts[ds.hosts["ip"].isin([finding["orig_h"], finding["resp_h"]])]
"""),
    code("""
%matplotlib inline
from analyzer import plots

plots.host_card(ds.hosts, ds.flows, finding["resp_h"])
"""),
    md("""
## Accept it: a site `[[allow]]` entry with its reason

`add_allows` writes a new site file (the original stays as it is) and loads it with the
site loader: a bad address, port or an empty reason is an error naming the line.
"""),
    code("""
from analyzer import triage

entry = triage.allow_entry(finding, ALLOW_REASON)
new_site = triage.add_allows(SITE, [entry], out_path=OUT / "site.toml")
print(Path(new_site).read_text())
"""),
    code("""
from analyzer.site import load_site

site = load_site(new_site)
site.allows
"""),
    md("## Run again with the new site file: the finding is gone, the connection is expected"),
    code("""
analyze(CAPTURE, outdir=OUT / "after", site=new_site)
after = open_dataset(OUT / "after")
after.flows[after.flows["uid"].isin(finding["uids"])][["uid", "verdict", "signature_id", "reason"]]
"""),
    code("""
after.findings[["severity", "verdict", "orig_h", "resp_h", "proto", "resp_p"]]
"""),
]

NIGHTLY_TRENDS = [
    md("""
# 03 Nightly trends

Over a batch dataset (`pcapclass batch ... --out DATASET`): what is new each night, how
the findings develop, and how the sites compare. Without `PCAPCLASS_DATASET` the notebook
builds a dataset from the sample captures with the library (`analyzer.batch.run`, one
site file each), into `PCAPCLASS_OUT`.
"""),
    code("""
import os
from pathlib import Path

DATASET = os.environ.get("PCAPCLASS_DATASET")  # unset: built below from the samples
SAMPLES = Path(os.environ.get("PCAPCLASS_SAMPLES", "../sample_pcaps"))
OUT = Path(os.environ.get("PCAPCLASS_OUT", "pcapclass-out/03_nightly_trends"))
SAMPLE_CAPTURES = [  # (capture, its site file) in SAMPLES
    ("mixed_site.pcapng", "mixed_site.site.toml"),
    ("cmi_site.pcap.gz", "cmi_site.site.toml"),
    ("gemos_site.vlan.pcap", "gemos_site.site.toml"),
    ("sesam_site.sll2.pcap", "sesam_site.site.toml"),
]
""", "parameters"),
    code("""
from analyzer import batch

if DATASET is None:
    DATASET = OUT / "dataset"
    for capture, site_file in SAMPLE_CAPTURES:
        batch.run([SAMPLES / capture], DATASET, site=SAMPLES / site_file, settle_s=0)
batch.status(DATASET)[["path", "site", "date", "status", "packets", "flows"]]
"""),
    code("""
from analyzer.dataset import open_dataset

ds = open_dataset(DATASET)
ds.flows.groupby(["site", "date"], observed=True).size().rename("connections")
"""),
    md("## New pairs per night\n\nPairs a site had never had on an earlier night."),
    code("""
ds.new_pairs.groupby(["site", "date"], observed=True).size().rename("new pairs")
"""),
    code("""
import analyzer

pairs = analyzer.baseline(DATASET)
pairs[["site", "date", "orig", "resp_h", "proto", "resp_p", "verdict", "severity"]]
"""),
    md("## Findings trend"),
    code("""
%matplotlib inline
from analyzer import plots

plots.findings_over_time(ds.findings, flows=ds.flows)
"""),
    code("""
plots.traffic_over_time(ds.flows, by="system", value="bytes")
"""),
    md("## Sites compared"),
    code("""
import pandas as pd

from analyzer.report import content

pd.DataFrame(content.site_rows(ds.flows, ds.findings, ds.manifest, ds.new_pairs))
"""),
    md("## The morning report\n\nThe same as `pcapclass report DATASET`."),
    code("""
from analyzer.report import write_report

OUT.mkdir(parents=True, exist_ok=True)
print(write_report(ds, OUT / "nightly.html"))
"""),
]

NOTEBOOKS = {
    "01_capture_overview.ipynb": CAPTURE_OVERVIEW,
    "02_findings_triage.ipynb": FINDINGS_TRIAGE,
    "03_nightly_trends.ipynb": NIGHTLY_TRENDS,
}


def build(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids: rewriting changes nothing
        cell["id"] = f"cell-{i:02d}"
    return nb


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        nbformat.validate(nb)
        nbformat.write(nb, str(out / name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
