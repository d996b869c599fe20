"""The notebooks: stored without outputs, and executed top to bottom on the sample
captures (nbclient, the venv's ipykernel), their paths given through the environment
variables their parameter cell reads, everything written into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # one cell; the slowest builds a batch dataset of four samples


def test_the_three_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_capture_overview.ipynb", "02_findings_triage.ipynb", "03_nightly_trends.ipynb"
    ]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", [])
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, path.name


def execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started in `cwd`; a cell error raises
    nbclient's CellExecutionError naming the cell and the traceback."""
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out:  # a frame's HTML has every column, its text may not
                data = out["data"]
                parts.append(data.get("text/html") or data.get("text/plain", ""))
    return "\n".join(parts)


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [o.get("ename", "") for c in nb.cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]  # fmt: skip


def test_capture_overview_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCAPCLASS_CAPTURE", str(SAMPLES / "mixed_site.pcapng"))
    monkeypatch.setenv("PCAPCLASS_SITE", str(SAMPLES / "mixed_site.site.toml"))
    monkeypatch.setenv("PCAPCLASS_OUT", str(tmp_path / "out"))
    nb = execute(ROOT / "notebooks" / "01_capture_overview.ipynb", tmp_path)
    assert errors(nb) == []
    text = outputs_text(nb)
    # sample_pcaps/README.md, problem 1: the scanner opening the C.M.I.'s 40001
    assert "CRITICAL inbound_to_cmi (cmi): 203.0.113.66 -> 192.168.10.40 tcp/40001" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # the six plots drew
    assert (tmp_path / "out" / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing else written


def test_findings_triage_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCAPCLASS_CAPTURE", str(SAMPLES / "mixed_site.pcapng"))
    monkeypatch.setenv("PCAPCLASS_SITE", str(SAMPLES / "mixed_site.site.toml"))
    monkeypatch.setenv("PCAPCLASS_OUT", str(tmp_path / "out"))
    nb = execute(ROOT / "notebooks" / "02_findings_triage.ipynb", tmp_path)
    assert errors(nb) == []
    site = (tmp_path / "out" / "site.toml").read_text()
    assert "caretaker's office PC reads the heating status page" in site
    # the new site file was read back and used: the office PC's finding is gone
    from analyzer.dataset import open_dataset

    after = open_dataset(tmp_path / "out" / "after").findings
    office = after[(after["orig_h"] == "192.168.10.121") & (after["resp_h"] == "192.168.10.40")]
    assert len(office) == 0
    before = open_dataset(tmp_path / "out" / "before").findings
    assert len(after) == len(before) - 1


def test_nightly_trends_runs(
    nights_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the two-night dataset of the samples (report_data.nightly_dataset, which the
    report tests use too); without PCAPCLASS_DATASET the notebook builds one the same way
    from the samples with analyzer.batch.run."""
    monkeypatch.setenv("PCAPCLASS_DATASET", str(nights_dataset))
    monkeypatch.setenv("PCAPCLASS_OUT", str(tmp_path / "out"))
    nb = execute(ROOT / "notebooks" / "03_nightly_trends.ipynb", tmp_path)
    assert errors(nb) == []
    text = outputs_text(nb)
    # report_data: the C.M.I. site's newest night has the 40002 mail session it did not
    # have the night before
    assert "198.51.100.21" in text and "40002" in text
    assert (tmp_path / "out" / "nightly.html").is_file()
