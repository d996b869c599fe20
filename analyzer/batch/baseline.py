"""The baseline, "new since last night": per site, the communication pairs of one date
(by default the newest) that no earlier date of that site had.

A pair is (orig, resp_h, proto, resp_p, verdict), where `orig` is the originator's
role when the site file gives it one (so a new PC in a known role is not news) and its
address otherwise. The rule, exactly: a pair is new on date D when no flow of the same
site on a date before D has the same five values. So a pair seen before is not new even
when its verdict is a finding, and a known pair with a verdict it never had before is
new (`known_verdicts` then lists the verdicts it had). On a site's first date every
pair is new.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .. import schema
from . import partition

KEY = ["orig", "resp_h", "proto", "resp_p"]
FILE_NAME = "part-pairs.parquet"
_FLOW_COLUMNS = ["orig_h", "resp_h", "proto", "resp_p", "verdict", "severity", "ts", "last_ts"]
_PARTITIONING = pads.partitioning(
    pa.schema([(c.name, c.type) for c in schema.PARTITIONS]), flavor="hive"
)
OUT_COLUMNS = [c.name for c in schema.PARTITIONS] + schema.column_names(schema.NEW_PAIRS)


def baseline(dataset: str | Path, site: str | None = None, date: str | None = None) -> pd.DataFrame:
    """New pairs of `date` (default: each site's newest date) against all earlier dates,
    for one site or every site; columns are the partition columns plus schema.NEW_PAIRS."""
    frames = []
    for name in [site] if site is not None else sites(Path(dataset)):
        flows = read_pairs(Path(dataset), name)
        if flows.empty:
            continue
        day = date if date is not None else flows["date"].max()
        frames.append(new_pairs(flows, day).assign(site=name, date=day))
    if not frames:
        return _empty()
    return pd.concat(frames, ignore_index=True)[OUT_COLUMNS]


def sites(dataset: Path) -> list[str]:
    table = _dataset(dataset, "hosts")
    if table is None:
        return []
    values = table.to_table(columns=["site"]).column("site").unique().to_pylist()
    return sorted(values)


def _dataset(dataset: Path, table: str) -> pads.Dataset | None:
    root = dataset / table
    if not root.is_dir():
        return None
    return pads.dataset(root, format="parquet", partitioning=_PARTITIONING)


def read_pairs(dataset: Path, site: str) -> pd.DataFrame:
    """One site's flows, reduced to what the pairs need, with `orig` resolved."""
    flows_ds, hosts_ds = _dataset(dataset, "flows"), _dataset(dataset, "hosts")
    if flows_ds is None or hosts_ds is None:
        return pd.DataFrame(columns=[*_FLOW_COLUMNS, "date", "orig"])
    where = pads.field("site") == site
    flows = flows_ds.to_table(columns=[*_FLOW_COLUMNS, "date"], filter=where).to_pandas()
    hosts = hosts_ds.to_table(
        columns=["ip", "role", "role_source", "date"],
        filter=where & (pads.field("role_source") == "site"),
    ).to_pandas()
    roles = hosts.dropna(subset=["role"]).drop_duplicates(["date", "ip"])[["date", "ip", "role"]]
    flows = flows.merge(roles, how="left", left_on=["date", "orig_h"], right_on=["date", "ip"])
    flows["orig"] = flows["role"].where(flows["role"].notna(), flows["orig_h"])
    return flows.drop(columns=["ip", "role"])


def new_pairs(flows: pd.DataFrame, date: str) -> pd.DataFrame:
    """The NEW_PAIRS rows of `date` from one site's resolved flows (read_pairs)."""
    earlier = flows[flows["date"] < date]
    today = flows[flows["date"] == date]
    if today.empty:
        return _empty()[schema.column_names(schema.NEW_PAIRS)]
    rank = today["severity"].map(schema.SEVERITY_RANK)
    grouped = today.assign(_rank=rank).groupby([*KEY, "verdict"], sort=True, dropna=False)
    pairs = grouped.agg(
        flows=("ts", "size"),
        first_ts=("ts", "min"),
        last_ts=("last_ts", "max"),
        _rank=("_rank", "max"),
        orig_hosts=("orig_h", lambda s: sorted(set(s))),
    ).reset_index()
    pairs["severity"] = pairs["_rank"].map(dict(enumerate(schema.SEVERITIES)))
    seen = set(map(tuple, earlier[[*KEY, "verdict"]].drop_duplicates().to_numpy().tolist()))
    is_new = [tuple(row) not in seen for row in pairs[[*KEY, "verdict"]].to_numpy().tolist()]
    pairs = pairs[is_new].copy()
    if pairs.empty:
        return _empty()[schema.column_names(schema.NEW_PAIRS)]
    known = earlier.groupby(KEY, sort=False)["verdict"].agg(lambda s: sorted(set(s))).to_dict()
    pairs["known_verdicts"] = [known.get(tuple(k), []) for k in pairs[KEY].to_numpy().tolist()]
    pairs["resp_p"] = pairs["resp_p"].astype("int32")
    return pairs[schema.column_names(schema.NEW_PAIRS)].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    fields = [*schema.PARTITIONS, *schema.NEW_PAIRS]
    return schema.arrow_schema(tuple(fields)).empty_table().to_pandas()


def write_new_pairs(dataset: Path, dates_by_site: Mapping[str, set[str]]) -> pd.DataFrame:
    """Recompute and write new_pairs/site=S/date=D/ for the given dates plus each site's
    newest date; return the newest date's pairs of every given site (for the summary)."""
    newest_frames = []
    for site, dates in sorted(dates_by_site.items()):
        flows = read_pairs(dataset, site)
        if flows.empty:
            continue
        newest = flows["date"].max()
        for day in sorted({*dates, newest}):
            pairs = new_pairs(flows, day)
            _write(dataset, site, day, pairs)
            if day == newest:
                newest_frames.append(pairs.assign(site=site, date=day))
    if not newest_frames:
        return _empty()
    return pd.concat(newest_frames, ignore_index=True)[OUT_COLUMNS]


def _write(dataset: Path, site: str, date: str, pairs: pd.DataFrame) -> None:
    """One partition file, atomically (temp name in the staging directory, then rename)."""
    table = schema.to_arrow(pairs, schema.NEW_PAIRS)
    final = dataset / partition.partition_dir(partition.BASELINE_TABLE, site, date) / FILE_NAME
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = dataset / partition.STAGING
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".new_pairs.", suffix=".tmp", dir=staging)
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def stored(dataset: Path, site: str) -> pd.DataFrame:
    """The written new_pairs of a site's newest date (what the last run computed), read
    back without touching the flows: what the summary lists for sites this run left alone."""
    root = dataset / partition.partition_dir(partition.BASELINE_TABLE, site, "x").parent
    dates = sorted(p.name for p in root.glob("date=*") if (p / FILE_NAME).is_file())
    if not dates:
        return _empty()
    path = root / dates[-1] / FILE_NAME
    day = dates[-1].removeprefix("date=")
    frame = pq.read_table(path).to_pandas()
    return frame.assign(site=site, date=urllib.parse.unquote(day))[OUT_COLUMNS]
