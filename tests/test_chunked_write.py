"""A capture of more than pipeline.WRITE_CHUNK_ROWS connections has its flows filled,
converted and written a chunk at a time (docs/hardening.md, "SYN flood"): the files must
hold exactly what the one-table path writes, row order included, and the summary's
counts must be those of the flows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzer import pipeline, summary
from analyzer.output import read_metadata

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"


@pytest.mark.parametrize(
    ("capture", "site", "n_flows"),
    [("mixed_site.pcapng", "mixed_site.site.toml", 75), ("cmi_site.pcap.gz", None, 25)],
)
def test_chunked_flows_equal_the_one_table_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture: str, site: str | None, n_flows: int
) -> None:
    site_path = SAMPLES / site if site else None
    whole = pipeline.analyze(SAMPLES / capture, outdir=tmp_path / "whole", site=site_path)
    monkeypatch.setattr(pipeline, "WRITE_CHUNK_ROWS", 7)
    chunked = pipeline.analyze(SAMPLES / capture, outdir=tmp_path / "chunked", site=site_path)
    assert whole.flows_table is not None and chunked.flows_table is None
    for name in ("flows", "findings", "hosts"):
        a = pq.read_table(whole.outputs[name])
        b = pq.read_table(chunked.outputs[name])
        assert a.equals(b), name
        assert read_metadata(whole.outputs[name]) == read_metadata(chunked.outputs[name])
    assert pq.read_metadata(whole.outputs["flows"]).num_row_groups == 1
    # 7 rows per row group: ceil(n / 7)
    assert pq.read_metadata(chunked.outputs["flows"]).num_row_groups == -(-n_flows // 7)
    assert chunked.flow_count == whole.flows.num_rows == n_flows
    assert chunked.flows.equals(whole.flows)  # read back from the file when asked
    assert chunked.verdict_counts() == whole.verdict_counts()
    assert chunked.systems_seen() == whole.systems_seen()
    shown = summary.summary(chunked, width=200).replace(str(tmp_path / "chunked"), "OUT")
    assert shown == summary.summary(whole, width=200).replace(str(tmp_path / "whole"), "OUT")


def test_no_temp_file_is_left_when_a_chunk_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk that cannot be converted ends the run with nothing under a final name and
    no temporary left behind."""
    monkeypatch.setattr(pipeline, "WRITE_CHUNK_ROWS", 7)
    calls = {"n": 0}
    real = pipeline.schema.to_arrow

    def failing(frame, columns):  # type: ignore[no-untyped-def]
        if columns is pipeline.schema.FLOWS:
            calls["n"] += 1
            if calls["n"] == 3:
                raise ValueError("column verdict holds 'x'")
        return real(frame, columns)

    monkeypatch.setattr(pipeline.schema, "to_arrow", failing)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="column verdict holds 'x'"):
        pipeline.analyze(SAMPLES / "cmi_site.pcap.gz", outdir=out)
    assert calls["n"] == 3
    assert sorted(p.name for p in out.iterdir()) == []
