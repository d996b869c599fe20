"""Plots of pcapclass output: each function takes the frames of analyzer.dataset (or the
Parquet tables read with pandas) and returns a matplotlib Figure.

    from analyzer import plots
    fig = plots.communication_matrix(ds.flows, ds.hosts)
    fig.savefig("matrix.png")

One style and one palette everywhere: SEVERITY_COLORS and VERDICT_COLORS colour a
severity or verdict the same in every plot and in the HTML report. Figures are built
with matplotlib's object API on the Agg canvas, never through pyplot, so nothing is left
in pyplot's global figure list and no display is needed. Every function accepts empty
frames and then returns a labelled figure saying there is nothing to show.

"Explained" means a signature (a catalog entry or a site allow) matched the connection:
its `signature_id` is set, whatever the verdict (a documented port opened the wrong way
round is explained, as wrong_direction).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import matplotlib as mpl
import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import schema

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .signatures import Catalog

# --- the palette ---------------------------------------------------------------------------
# Severity: grey (info) -> blue -> amber -> orange -> red. A verdict takes its default
# severity's hue (schema.VERDICT_SEVERITY), expected is green, unmonitored light grey.
SEVERITY_COLORS: Mapping[str, str] = {
    "info": "#8c96a0",
    "low": "#3b82c4",
    "medium": "#e0a800",
    "high": "#e8590c",
    "critical": "#c92a2a",
}
VERDICT_COLORS: Mapping[str, str] = {
    "expected": "#2f9e44",
    "rare": SEVERITY_COLORS["low"],
    "obsolete": "#c99700",
    "reserved": "#8f6d00",
    "unexpected_port": "#f5c518",
    "wrong_direction": SEVERITY_COLORS["high"],
    "inbound_to_cmi": SEVERITY_COLORS["critical"],
    "unmonitored": "#ced4da",
}
SYSTEM_COLORS: Mapping[str, str] = {
    "gemos4": "#4263eb",
    "sesam": "#0c8599",
    "cmi": "#9c36b5",
    "common": "#868e96",
}
NO_SYSTEM = "no system"  # label of connections no signature gave a system
NO_SERVICE = "unrecognised"
OTHER = "other"
OTHER_COLORS = ("#495057", "#adb5bd", "#e64980", "#74b816", "#15aabf", "#fd7e14", "#7950f2")
EMPTY_CELL = "#ffffff"

STYLE: Mapping[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.labelcolor": "#343a40",
    "axes.edgecolor": "#adb5bd",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.color": "#e9ecef",
    "grid.linewidth": 0.8,
    "xtick.color": "#495057",
    "ytick.color": "#495057",
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
WIDTH_IN = 8.0  # a plot of the report's two-column grid at PNG_DPI stays sharp
HEIGHT_IN = 3.6
# rows (and columns) of the communication matrix: the busiest hosts. 24 keeps a whole
# small site (the mixed sample: 17 originators, 24 responders); each labelled cell costs
# text layout when drawn (benchmarks/bench_plots.py)
MATRIX_MAX_HOSTS = 24
MAX_SERIES = 8  # stacked series of traffic_over_time; the rest is "other"
MAX_TIME_BINS = 120
# candidate bin widths of traffic_over_time: the smallest giving at most MAX_TIME_BINS
TIME_BINS: tuple[tuple[str, str], ...] = (
    ("1s", "second"),
    ("10s", "10 seconds"),
    ("1min", "minute"),
    ("5min", "5 minutes"),
    ("15min", "15 minutes"),
    ("1h", "hour"),
    ("3h", "3 hours"),
    ("6h", "6 hours"),
    ("1D", "day"),
    ("7D", "week"),
)
NEVER_SEEN_STATUSES = ("active",)  # entries a site using the system should show
VENDOR_SYSTEMS = tuple(s for s in schema.SYSTEMS if s != "common")

P = ParamSpec("P")
R = TypeVar("R")


def _styled(func: Callable[P, R]) -> Callable[P, R]:
    """Build the figure inside the module's style (matplotlib.rc_context, restored after)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(cast(Any, dict(STYLE))):
            return func(*args, **kwargs)

    return wrapper


def _figure(width: float = WIDTH_IN, height: float = HEIGHT_IN) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _empty(ax: Axes, title: str, text: str) -> None:
    """An empty plot that says why it is empty."""
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#868e96")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --- shared column helpers -------------------------------------------------------------


def _strings(series: pd.Series, missing: str) -> pd.Series:
    """A column as plain strings, nulls as `missing` (categoricals and str alike)."""
    return series.astype(object).where(series.notna(), missing).astype(str)


def _codes(series: pd.Series, values: Sequence[str]) -> np.ndarray:
    """Position of each value in `values` (-1 for null or unknown)."""
    cat = pd.Categorical(series.astype(object), categories=list(values))
    return np.asarray(cat.codes, dtype=np.int64)


def _ip_bytes(flows: pd.DataFrame) -> pd.Series:
    return flows["orig_ip_bytes"].astype("int64") + flows["resp_ip_bytes"].astype("int64")


# worst verdict: most severe, then the contract's precedence (first wins)
_PREC = {v: len(schema.VERDICT_PRECEDENCE) - i for i, v in enumerate(schema.VERDICT_PRECEDENCE)}


def _worst_key(flows: pd.DataFrame) -> np.ndarray:
    """Per flow a number whose maximum over a group is the group's worst (severity,
    verdict): severity rank * 16 + precedence."""
    sev = _codes(flows["severity"], schema.SEVERITIES)
    prec = np.array([_PREC[v] for v in schema.VERDICTS], dtype=np.int64)
    ver = _codes(flows["verdict"], schema.VERDICTS)
    return sev * 16 + np.where(ver >= 0, prec[np.maximum(ver, 0)], 0)


_KEY_VERDICT = {
    rank * 16 + _PREC[v]: v for rank in range(len(schema.SEVERITIES)) for v in schema.VERDICTS
}


def _key_verdict(key: int) -> str:
    return _KEY_VERDICT.get(int(key), "unmonitored")


def _key_severity(key: int) -> str:
    return schema.SEVERITIES[max(int(key) // 16, 0)]


def text_color(background: str) -> str:
    """Dark or white text, whichever reads on `background` (WCAG relative luminance)."""
    r, g, b = mcolors.to_rgb(background)
    lum = 0.2126 * r**2.2 + 0.7152 * g**2.2 + 0.0722 * b**2.2
    return "#212529" if lum > 0.3 else "white"


def _human_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


# --- traffic over time -------------------------------------------------------------------

TRAFFIC_GROUPS = ("system", "service", "verdict", "severity")
TRAFFIC_VALUES = ("connections", "bytes")


def time_bin(first: pd.Timestamp, last: pd.Timestamp) -> tuple[str, str]:
    """(pandas frequency, its name) of the smallest TIME_BINS width that gives at most
    MAX_TIME_BINS bins between `first` and `last`."""
    span = (last - first).total_seconds()
    for freq, name in TIME_BINS:
        if span / pd.Timedelta(freq).total_seconds() < MAX_TIME_BINS:
            return freq, name
    return TIME_BINS[-1]


def _series_colors(by: str, labels: Sequence[str]) -> list[str]:
    table: Mapping[str, str] = {
        "system": {**SYSTEM_COLORS, NO_SYSTEM: "#dee2e6"},
        "verdict": VERDICT_COLORS,
        "severity": SEVERITY_COLORS,
    }.get(by, {})
    spare = iter(OTHER_COLORS * 4)
    out = []
    for label in labels:
        if label in table:
            out.append(table[label])
        elif label in (OTHER, NO_SERVICE):
            out.append("#dee2e6" if label == NO_SERVICE else "#adb5bd")
        else:
            out.append(next(spare))
    return out


def _series_order(by: str, totals: pd.Series) -> list[str]:
    vocab = {"system": (*schema.SYSTEMS, NO_SYSTEM), "verdict": schema.VERDICTS,
             "severity": tuple(reversed(schema.SEVERITIES))}.get(by)  # fmt: skip
    if vocab is not None:
        return [v for v in vocab if v in totals.index]
    return list(totals.sort_values(ascending=False).index)


@_styled
def traffic_over_time(
    flows: pd.DataFrame, by: str = "system", value: str = "connections"
) -> Figure:
    """Connections (or IP-level bytes, both directions) per time bin, stacked by `by`
    (system, service, verdict or severity); a connection counts in the bin of its first
    packet. The bin width is the smallest of TIME_BINS giving at most MAX_TIME_BINS bins."""
    if by not in TRAFFIC_GROUPS:
        raise ValueError(f"by={by!r}: use one of {', '.join(TRAFFIC_GROUPS)}")
    if value not in TRAFFIC_VALUES:
        raise ValueError(f"value={value!r}: use one of {', '.join(TRAFFIC_VALUES)}")
    fig = _figure()
    ax = fig.add_subplot()
    if not len(flows):
        _empty(ax, f"{value.capitalize()} over time by {by}", "no connections")
        return fig
    ts = flows["ts"]
    ts = ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts
    freq, name = time_bin(ts.min(), ts.max())
    missing = NO_SYSTEM if by == "system" else NO_SERVICE
    group = _strings(flows[by], missing)
    amount = _ip_bytes(flows) if value == "bytes" else pd.Series(1, index=flows.index)
    table = (
        pd.DataFrame({"bin": ts.dt.floor(freq), "group": group, "amount": amount})
        .groupby(["bin", "group"], sort=True)["amount"]
        .sum()
        .unstack(fill_value=0)
    )
    order = _series_order(by, table.sum())
    if len(order) > MAX_SERIES:
        keep, rest = order[: MAX_SERIES - 1], order[MAX_SERIES - 1 :]
        table[OTHER] = table[rest].sum(axis=1)
        order = [*keep, OTHER]
    x = mdates.date2num(table.index.to_pydatetime())
    width = pd.Timedelta(freq).total_seconds() / 86400 * 0.9
    bottom = np.zeros(len(table))
    for label, color in zip(order, _series_colors(by, order), strict=True):
        heights = table[label].to_numpy(dtype=float)
        ax.bar(x, heights, width=width, bottom=bottom, align="edge", color=color,
               label=label, linewidth=0)  # fmt: skip
        bottom += heights
    ax.xaxis_date()
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(f"{value.capitalize()} per {name} by {by}")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("connections" if value == "connections" else "bytes (IP level, both ways)")
    if value == "bytes":
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: _human_bytes(v)))
    ax.grid(axis="y")
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title=by)
    return fig


# --- communication matrix ------------------------------------------------------------------


def _host_roles(hosts: pd.DataFrame) -> dict[str, str]:
    """ip -> primary role (the first known one when a dataset has several rows)."""
    if not len(hosts):
        return {}
    known = hosts[hosts["role"].notna()]
    return {str(ip): str(role) for ip, role in zip(known["ip"], known["role"], strict=True)}


def _host_names(hosts: pd.DataFrame) -> dict[str, str]:
    if not len(hosts) or "name" not in hosts:
        return {}
    named = hosts[hosts["name"].notna()]
    return {str(ip): str(name) for ip, name in zip(named["ip"], named["name"], strict=True)}


def _role_rank(role: str | None) -> int:
    return schema.ROLES.index(role) if role in schema.ROLES else len(schema.ROLES)


def _ports_label(ports: Sequence[str], limit: int = 2) -> str:
    shown = ", ".join(ports[:limit])
    return shown + (f" +{len(ports) - limit}" if len(ports) > limit else "")


def matrix_data(flows: pd.DataFrame, hosts: pd.DataFrame, *, max_hosts: int = MATRIX_MAX_HOSTS
                ) -> dict[str, Any]:  # fmt: skip
    """What communication_matrix draws: `rows` / `cols` (ip, role) ordered by role
    (schema.ROLES order, no role last) then address, at most `max_hosts` each (the hosts
    with most connections); `cells` {(orig, resp): (worst verdict, worst severity, ports
    label, connections)}; `rows_total` / `cols_total` before the cut."""
    roles = _host_roles(hosts)
    proto = _strings(flows["proto"], "?")
    port = flows["resp_p"].astype("int64").astype(str)
    pairs = pd.DataFrame(
        {
            "orig": _strings(flows["orig_h"], ""),
            "resp": _strings(flows["resp_h"], ""),
            "port": port.where(proto == "tcp", proto + "/" + port),  # TCP: the number alone
            "key": _worst_key(flows),
        }
    )
    origs = pairs["orig"].value_counts()
    resps = pairs["resp"].value_counts()

    def pick(counts: pd.Series) -> list[tuple[str, str | None]]:
        busiest = sorted(counts.index, key=lambda ip: (-counts[ip], ip))[:max_hosts]
        return sorted(((ip, roles.get(ip)) for ip in busiest),
                      key=lambda h: (_role_rank(h[1]), h[0]))  # fmt: skip

    rows, cols = pick(origs), pick(resps)
    keep = pairs[
        pairs["orig"].isin([r[0] for r in rows]) & pairs["resp"].isin([c[0] for c in cols])
    ]
    cells: dict[tuple[str, str], tuple[str, str, str, int]] = {}
    if len(keep):
        grouped = keep.groupby(["orig", "resp"], sort=False)
        worst = grouped["key"].max()
        count = grouped.size()
        ports = keep.drop_duplicates(["orig", "resp", "port"]).groupby(["orig", "resp"])["port"]
        labels = ports.agg(lambda s: _ports_label(sorted(s, key=_port_sort)))
        for pair, key in worst.items():
            cells[pair] = (_key_verdict(key), _key_severity(key), labels[pair], int(count[pair]))
    return {"rows": rows, "cols": cols, "cells": cells,
            "rows_total": len(origs), "cols_total": len(resps)}  # fmt: skip


def _port_sort(text: str) -> tuple[int, str]:
    tail = text.rsplit("/", 1)[-1]
    return (int(tail) if tail.isdigit() else 1 << 20, text)


def _host_label(ip: str, role: str | None, names: Mapping[str, str]) -> str:
    """`role: ip (name)`, the name cut to 18 characters; `–` for no role."""
    name = names.get(ip)
    label = f"{ip} ({name[:18]})" if name else ip
    return f"{role or '–'}: {label}"


@_styled
def communication_matrix(flows: pd.DataFrame, hosts: pd.DataFrame) -> Figure:
    """Who talks to whom: rows are originators, columns responders, both grouped by role
    (lines between the groups); a cell is coloured by the worst verdict of that pair's
    connections and labelled with its responder ports (TCP as the number, others as
    proto/port). At most MATRIX_MAX_HOSTS rows and columns: the busiest hosts."""
    title = "Communication matrix: worst verdict per originator and responder"
    if not len(flows):
        fig = _figure()
        _empty(fig.add_subplot(), title, "no connections")
        return fig
    data = matrix_data(flows, hosts)
    rows, cols, cells = data["rows"], data["cols"], data["cells"]
    names = _host_names(hosts)
    fig = _figure(min(3.5 + 0.6 * len(cols), 16.0), min(3.2 + 0.3 * len(rows), 10.0))
    ax = fig.add_subplot()
    image = np.ones((len(rows), len(cols), 3))
    row_index = {ip: i for i, (ip, _) in enumerate(rows)}
    col_index = {ip: j for j, (ip, _) in enumerate(cols)}
    fontsize = 6.5 if max(len(rows), len(cols)) <= 15 else 5.5
    seen_verdicts: set[str] = set()
    for (orig, resp), (verdict, _sev, ports, _n) in cells.items():
        i, j = row_index[orig], col_index[resp]
        image[i, j] = mcolors.to_rgb(VERDICT_COLORS[verdict])
        seen_verdicts.add(verdict)
        label = ax.text(j, i, ports, ha="center", va="center", fontsize=fontsize,
                        color=text_color(VERDICT_COLORS[verdict]), clip_on=True)  # fmt: skip
        label.set_in_layout(False)  # inside the axes: the layout need not measure 400 labels
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(cols)), [_host_label(ip, r, names) for ip, r in cols],
                  rotation=60, ha="right", rotation_mode="anchor")  # fmt: skip
    ax.set_yticks(range(len(rows)), [_host_label(ip, r, names) for ip, r in rows])
    ax.set_xticks(np.arange(-0.5, len(cols)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="#e9ecef", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    for axis_hosts, line in ((rows, ax.axhline), (cols, ax.axvline)):
        for k in range(1, len(axis_hosts)):
            if _role_rank(axis_hosts[k][1]) != _role_rank(axis_hosts[k - 1][1]):
                line(k - 0.5, color="#495057", linewidth=1.2)
    ax.set_xlabel("responder")
    ax.set_ylabel("originator")
    cut = ""
    if data["rows_total"] > len(rows) or data["cols_total"] > len(cols):
        cut = (f" (busiest {len(rows)} of {data['rows_total']} originators, "
               f"{len(cols)} of {data['cols_total']} responders)")  # fmt: skip
    ax.set_title(title + cut)
    handles = [
        Patch(color=VERDICT_COLORS[v], label=v) for v in schema.VERDICTS if v in seen_verdicts
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    return fig


# --- findings over time --------------------------------------------------------------------


@_styled
def findings_over_time(findings: pd.DataFrame, flows: pd.DataFrame | None = None) -> Figure:
    """Findings rows per day (a batch dataset: the `date` partition) or per hour (one
    capture: the hour of the finding's first packet), stacked by severity, most severe on
    top. With `flows`, the axis covers every day (hour) that has connections, so a quiet
    night shows as an empty bar instead of disappearing."""
    dataset = "date" in findings.columns or (flows is not None and "date" in flows.columns)
    unit = "day" if dataset else "hour"
    fig = _figure()
    ax = fig.add_subplot()
    title = f"Findings per {unit} by severity"
    if dataset:
        when = _strings(findings["date"], "?") if len(findings) else pd.Series([], dtype=str)
        axis = set(when)
        if flows is not None and len(flows):
            axis |= set(_strings(flows["date"], "?"))
        slots = sorted(axis)
        labels = slots
    else:
        when = findings["first_ts"].dt.floor("h") if len(findings) else pd.Series([], dtype=object)
        stamps = set(when)
        if flows is not None and len(flows):
            first, last = flows["ts"].min().floor("h"), flows["last_ts"].max().floor("h")
            stamps |= set(pd.date_range(first, last, freq="h"))
        slots = sorted(stamps)
        days = {pd.Timestamp(s).date() for s in slots}
        fmt = "%H:%M" if len(days) <= 1 else "%m-%d %H:%M"
        labels = [pd.Timestamp(s).strftime(fmt) for s in slots]
    if not slots:
        _empty(ax, title, "no findings")
        return fig
    index = {s: i for i, s in enumerate(slots)}
    position = np.array([index[w] for w in when], dtype=np.int64)
    sev = _codes(findings["severity"], schema.SEVERITIES) if len(findings) else np.array([])
    bottom = np.zeros(len(slots))
    for rank, severity in enumerate(schema.SEVERITIES):
        counts = np.bincount(position[sev == rank], minlength=len(slots)).astype(float)
        if not counts.any():
            continue
        ax.bar(range(len(slots)), counts, bottom=bottom, color=SEVERITY_COLORS[severity],
               label=severity, width=0.8)  # fmt: skip
        bottom += counts
    ax.set_xticks(range(len(slots)), labels, rotation=45 if len(slots) > 8 else 0,
                  ha="right" if len(slots) > 8 else "center")  # fmt: skip
    ax.set_xlabel("date (UTC)" if dataset else "hour (UTC)")
    ax.set_ylabel("findings")
    ax.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.grid(axis="y")
    ax.set_axisbelow(True)
    if not len(findings):
        title += ": none"
    ax.set_title(title)
    if ax.containers:
        handles, names = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  title="severity")  # fmt: skip
    return fig


# --- top talkers, unexplained ports ---------------------------------------------------------


def talkers_table(flows: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` hosts with most IP-level bytes (as originator or responder): ip, bytes,
    connections, worst severity of their connections; most bytes first."""
    if not len(flows):
        return pd.DataFrame({"ip": [], "bytes": [], "connections": [], "severity": []})
    amount = _ip_bytes(flows).to_numpy()
    sev = _codes(flows["severity"], schema.SEVERITIES)
    both = pd.DataFrame(
        {
            "ip": np.concatenate([_strings(flows["orig_h"], "").to_numpy(),
                                  _strings(flows["resp_h"], "").to_numpy()]),
            "bytes": np.concatenate([amount, amount]),
            "sev": np.concatenate([sev, sev]),
        }
    )  # fmt: skip
    table = both.groupby("ip").agg(bytes=("bytes", "sum"), connections=("bytes", "size"),
                                   sev=("sev", "max"))  # fmt: skip
    table = table.reset_index().sort_values(["bytes", "ip"], ascending=[False, True]).head(n)
    table["severity"] = [schema.SEVERITIES[max(int(s), 0)] for s in table["sev"]]
    return table.drop(columns="sev").reset_index(drop=True)


def _barh(ax: Axes, labels: Sequence[str], values: Sequence[float], colors: Sequence[str],
          notes: Sequence[str]) -> None:  # fmt: skip
    """Horizontal bars, the first at the top, each with a note at its end."""
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, color=colors, height=0.7)
    ax.set_yticks(y, labels)
    top = max(values) if len(values) else 1
    for yi, v, note in zip(y, values, notes, strict=True):
        ax.text(v + top * 0.01, yi, note, va="center", fontsize=7.5, color="#495057")
    ax.set_xlim(0, top * 1.25 if top else 1)
    ax.grid(axis="x")
    ax.set_axisbelow(True)


def _severity_legend(ax: Axes, severities: Sequence[str]) -> None:
    shown = [s for s in reversed(schema.SEVERITIES) if s in set(severities)]
    handles = [Patch(color=SEVERITY_COLORS[s], label=s) for s in shown]
    ax.legend(handles=handles, loc="lower right", title="worst severity")


@_styled
def top_talkers(flows: pd.DataFrame, n: int = 10) -> Figure:
    """The `n` hosts with most IP-level bytes, both directions, as originator or
    responder; a bar's colour is the worst severity of the host's connections."""
    fig = _figure(WIDTH_IN, max(HEIGHT_IN, 1.2 + 0.28 * n))
    ax = fig.add_subplot()
    title = f"Top {n} talkers by bytes"
    table = talkers_table(flows, n)
    if not len(table):
        _empty(ax, title, "no connections")
        return fig
    _barh(
        ax,
        table["ip"].tolist(),
        table["bytes"].astype(float).tolist(),
        [SEVERITY_COLORS[s] for s in table["severity"]],
        [f"{_human_bytes(b)}, {_plural(int(c), 'connection')}"
         for b, c in zip(table["bytes"], table["connections"], strict=True)],
    )  # fmt: skip
    ax.set_title(title)
    ax.set_xlabel("bytes (IP level, both directions)")
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: _human_bytes(v)))
    _severity_legend(ax, table["severity"].tolist())
    return fig


def unexplained_table(flows: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Responder ports of the connections no signature explains (signature_id null):
    port ("tcp/443"), connections, responders (distinct addresses), worst severity; most
    connections first, at most `n`."""
    empty = pd.DataFrame({"port": [], "connections": [], "responders": [], "severity": []})
    if not len(flows):
        return empty
    part = flows[flows["signature_id"].isna()]
    if not len(part):
        return empty
    frame = pd.DataFrame(
        {
            "proto": _strings(part["proto"], "?"),
            "resp_p": part["resp_p"].astype("int64"),
            "resp_h": _strings(part["resp_h"], ""),
            "sev": _codes(part["severity"], schema.SEVERITIES),
        }
    )
    table = frame.groupby(["proto", "resp_p"]).agg(connections=("sev", "size"),
        responders=("resp_h", "nunique"), sev=("sev", "max")).reset_index()  # fmt: skip
    table = table.sort_values(["connections", "proto", "resp_p"],
                              ascending=[False, True, True]).head(n)  # fmt: skip
    table["port"] = [f"{p}/{q}" for p, q in zip(table["proto"], table["resp_p"], strict=True)]
    table["severity"] = [schema.SEVERITIES[max(int(s), 0)] for s in table["sev"]]
    return table[["port", "connections", "responders", "severity"]].reset_index(drop=True)


@_styled
def unexplained_ports(flows: pd.DataFrame, n: int = 10) -> Figure:
    """The `n` responder ports with most connections no signature explains; a bar's
    colour is the worst severity among them (info: nothing monitored involved)."""
    fig = _figure(WIDTH_IN, max(HEIGHT_IN, 1.2 + 0.28 * n))
    ax = fig.add_subplot()
    title = f"Top {n} ports no signature explains"
    table = unexplained_table(flows, n)
    if not len(table):
        _empty(ax, title, "every connection is explained" if len(flows) else "no connections")
        return fig
    _barh(
        ax,
        table["port"].tolist(),
        table["connections"].astype(float).tolist(),
        [SEVERITY_COLORS[s] for s in table["severity"]],
        [_plural(int(r), "responder") for r in table["responders"]],
    )
    ax.set_title(title)
    ax.set_xlabel("connections")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    _severity_legend(ax, table["severity"].tolist())
    return fig


# --- signature coverage ----------------------------------------------------------------


def _ports_text(ports: frozenset[int]) -> str:
    """{12101, ..., 12199, 443} -> "443, 12101-12199"."""
    out: list[str] = []
    values = sorted(ports)
    start = prev = values[0] if values else 0
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)


def systems_present(flows: pd.DataFrame) -> list[str]:
    """Vendor systems (gemos4, sesam, cmi) some connection was attributed to."""
    if not len(flows):
        return []
    present = set(_strings(flows["system"], ""))
    return [s for s in VENDOR_SYSTEMS if s in present]


def never_seen(flows: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Documented entries (status in NEVER_SEEN_STATUSES) of the vendor systems present
    in the data that no connection matched: id, system, name, transport, ports, document,
    in catalog order. Systems absent from the data are left out (a heating-only site is
    not expected to show GEMOS traffic); so are common entries, rare, obsolete and
    reserved ones (never seeing those is no problem)."""
    present = systems_present(flows)
    seen = set(_strings(flows["signature_id"], "")) if len(flows) else set()
    rows = [
        {
            "id": sig.id,
            "system": sig.system,
            "name": sig.name,
            "transport": sig.transport,
            "ports": _ports_text(sig.ports),
            "document": sig.source.document,
        }
        for sig in catalog.signatures
        if sig.system in present and sig.status in NEVER_SEEN_STATUSES and sig.id not in seen
    ]
    return pd.DataFrame(rows, columns=["id", "system", "name", "transport", "ports", "document"])


COVERAGE_COLUMNS = (
    "system", "connections", "explained", "explained_share", "bytes", "explained_bytes",
    "explained_bytes_share", "documented", "seen", "never_seen",
)  # fmt: skip


def coverage_table(flows: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Per system (schema order, `no system` for connections none was attributed to,
    then `all`): connections and IP-level bytes, how many a signature explains and the
    shares; for the vendor systems also the documented entries (NEVER_SEEN_STATUSES),
    how many of them were seen and the ids never seen (see never_seen). Shares are
    fractions (0..1); documented/seen/never_seen are None where not applicable."""
    if not len(flows):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in COVERAGE_COLUMNS})
    frame = pd.DataFrame(
        {
            "system": _strings(flows["system"], NO_SYSTEM),
            "explained": flows["signature_id"].notna().to_numpy(),
            "bytes": _ip_bytes(flows).to_numpy(),
        }
    )
    frame["explained_bytes"] = np.where(frame["explained"], frame["bytes"], 0)
    unseen = never_seen(flows, catalog)
    seen_ids = set(_strings(flows["signature_id"], ""))
    rows = []
    groups = [(s, frame[frame["system"] == s]) for s in (*schema.SYSTEMS, NO_SYSTEM)]
    for system, part in [*groups, ("all", frame)]:
        if not len(part):
            continue
        row: dict[str, Any] = {
            "system": system,
            "connections": len(part),
            "explained": int(part["explained"].sum()),
            "explained_share": float(part["explained"].mean()),
            "bytes": int(part["bytes"].sum()),
            "explained_bytes": int(part["explained_bytes"].sum()),
        }
        row["explained_bytes_share"] = (
            (row["explained_bytes"] / row["bytes"]) if row["bytes"] else None
        )
        if system in VENDOR_SYSTEMS:
            documented = [s for s in catalog.signatures
                          if s.system == system and s.status in NEVER_SEEN_STATUSES]  # fmt: skip
            row["documented"] = len(documented)
            row["seen"] = sum(1 for s in documented if s.id in seen_ids)
            row["never_seen"] = unseen[unseen["system"] == system]["id"].tolist()
        else:
            row.update(documented=None, seen=None, never_seen=None)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COVERAGE_COLUMNS))
    return table.astype({"documented": "Int64", "seen": "Int64"})


@_styled
def signature_coverage(flows: pd.DataFrame, catalog: Catalog) -> Figure:
    """Left: per system, the share of connections and of bytes a signature explains.
    Right: per vendor system in the data, its documented entries seen and never seen
    (coverage_table has the ids)."""
    fig = _figure(WIDTH_IN + 2, HEIGHT_IN)
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    table = coverage_table(flows, catalog)
    if not len(table):
        _empty(left, "Explained by a signature", "no connections")
        _empty(right, "Documented entries seen", "no connections")
        return fig
    names = table["system"].tolist()
    y = np.arange(len(names))[::-1]
    conns = table["explained_share"].astype(float).to_numpy() * 100
    byts = table["explained_bytes_share"].astype(float).fillna(0).to_numpy() * 100
    left.barh(y + 0.2, conns, height=0.38, color="#495057", label="connections")
    left.barh(y - 0.2, byts, height=0.38, color="#adb5bd", label="bytes")
    for yi, c, b in zip(y, conns, byts, strict=True):
        left.text(c + 1, yi + 0.2, f"{c:.0f} %", va="center", fontsize=7.5)
        left.text(b + 1, yi - 0.2, f"{b:.0f} %", va="center", fontsize=7.5)
    left.set_yticks(y, names)
    left.set_xlim(0, 115)
    left.set_xticks([0, 25, 50, 75, 100])
    left.set_xlabel("explained by a signature (%)")
    left.set_title("Explained by a signature")
    left.grid(axis="x")
    left.set_axisbelow(True)
    left.legend(loc="lower right")
    vendor = table[table["system"].isin(VENDOR_SYSTEMS)]
    if not len(vendor):
        _empty(right, "Documented entries seen", "no GEMOS, Sesam or C.M.I. traffic")
        return fig
    ry = np.arange(len(vendor))[::-1]
    seen = vendor["seen"].astype(int).to_numpy()
    unseen = vendor["documented"].astype(int).to_numpy() - seen
    colors = [SYSTEM_COLORS[s] for s in vendor["system"]]
    right.barh(ry, seen, color=colors, height=0.6, label="seen")
    right.barh(ry, unseen, left=seen, color="white", edgecolor="#868e96", hatch="///",
               height=0.6, label="never seen")  # fmt: skip
    for yi, s, u in zip(ry, seen, unseen, strict=True):
        right.text(s + u + 0.3, yi, f"{u} never seen", va="center", fontsize=7.5)
    right.set_yticks(ry, vendor["system"].tolist())
    right.set_xlim(0, max(int(vendor["documented"].max()), 1) * 1.5)
    right.set_xlabel("documented entries (active)")
    right.set_title("Documented entries seen")
    right.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    right.legend(loc="lower right")
    return fig


# --- host card ---------------------------------------------------------------------------


def _first(values: pd.Series) -> Any:
    present = values.dropna()
    return present.iloc[0] if len(present) else None


def _count_ports(part: pd.DataFrame) -> dict[str, int]:
    if not len(part):
        return {}
    labels = _strings(part["proto"], "?") + "/" + part["resp_p"].astype("int64").astype(str)
    counts = labels.value_counts()
    return {
        k: int(counts[k]) for k in sorted(counts.index, key=lambda k: (-counts[k], _port_sort(k)))
    }


def host_card_data(hosts: pd.DataFrame, flows: pd.DataFrame, host: str, *,
                   site: str | None = None) -> dict[str, Any]:  # fmt: skip
    """What a host card shows, as plain values: ip, site, name, roles, role_source,
    role_evidence, vendor, mac, local, systems; `served` ("tcp/80" -> connections where
    it is the responder) and `used` (where it is the originator), most first; `verdicts`
    (verdict -> connections, contract order), `verdict_severity` (verdict -> the worst
    severity it had), `worst` (worst severity of its connections); first_ts/last_ts
    (UTC text), pkts, bytes. `site` restricts a batch dataset to one site."""
    h = hosts
    f = flows
    if site is not None:
        h = h[h["site"].astype(str) == site] if "site" in h else h
        f = f[f["site"].astype(str) == site] if "site" in f else f
    row = h[h["ip"].astype(str) == host] if len(h) else h
    involved = (
        f[(f["orig_h"].astype(str) == host) | (f["resp_h"].astype(str) == host)] if len(f) else f
    )
    roles: list[str] = []
    systems: list[str] = []
    for values, out in ((row["roles"] if len(row) else [], roles),
                        (row["systems"] if len(row) else [], systems)):  # fmt: skip
        for value in values:
            out.extend(str(v) for v in (value if value is not None else []) if str(v) not in out)
    verdicts: dict[str, int] = {}
    verdict_severity: dict[str, str] = {}
    worst = None
    if len(involved):
        ver = _strings(involved["verdict"], "")
        sev = _codes(involved["severity"], schema.SEVERITIES)
        for verdict in schema.VERDICTS:
            mask = (ver == verdict).to_numpy()
            if mask.any():
                verdicts[verdict] = int(mask.sum())
                verdict_severity[verdict] = schema.SEVERITIES[max(int(sev[mask].max()), 0)]
        worst = schema.SEVERITIES[max(int(sev.max()), 0)]
    first = row["first_ts"].min() if len(row) else None
    last = row["last_ts"].max() if len(row) else None
    return {
        "ip": host,
        "site": site,
        "name": _first(row["name"]) if len(row) else None,
        "roles": roles,
        "role_source": _first(row["role_source"]) if len(row) else None,
        "role_evidence": _first(row["role_evidence"]) if len(row) else None,
        "vendor": _first(row["vendor"]) if len(row) else None,
        "mac": _first(row["mac"]) if len(row) else None,
        "local": bool(row["local"].any()) if len(row) else None,
        "systems": systems,
        "served": _count_ports(involved[involved["resp_h"].astype(str) == host])
        if len(involved)
        else {},
        "used": _count_ports(involved[involved["orig_h"].astype(str) == host])
        if len(involved)
        else {},
        "verdicts": verdicts,
        "verdict_severity": verdict_severity,
        "worst": worst,
        "first_ts": _utc(first),
        "last_ts": _utc(last),
        "pkts": int(row["pkts"].sum()) if len(row) else None,
        "bytes": int(row["bytes"].sum()) if len(row) else None,
    }


def _utc(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%SZ")


HOST_CARD_PORTS = 8  # bars per panel of host_card


@_styled
def host_card(hosts: pd.DataFrame, flows: pd.DataFrame, host: str, *, site: str | None = None
              ) -> Figure:  # fmt: skip
    """One host at a glance: left its identity (role and the evidence, vendor, MAC,
    local or not, systems, connections per verdict); middle the ports it serves, right
    the ports it uses (connections, at most HOST_CARD_PORTS each)."""
    card = host_card_data(hosts, flows, host, site=site)
    fig = _figure(WIDTH_IN + 2, HEIGHT_IN)
    info, served_ax, used_ax = fig.subplots(1, 3, width_ratios=(5, 3, 3))
    title = f"{host}" + (f" ({card['name']})" if card["name"] else "")
    info.set_title(title)
    info.axis("off")
    if card["first_ts"] is None and not card["verdicts"]:
        info.text(0, 0.9, "not seen in this data", transform=info.transAxes, color="#868e96")
    else:
        role = ", ".join(card["roles"]) or "none known"
        lines = [
            ("role", f"{role} ({card['role_source'] or 'no source'})"),
            ("evidence", str(card["role_evidence"] or "–")),
            ("vendor", f"{card['vendor'] or '–'}" + (f"  {card['mac']}" if card["mac"] else "")),
            ("network", "local" if card["local"] else "outside the local networks"),
            ("systems", ", ".join(card["systems"]) or "–"),
        ]
        if card["first_ts"]:
            lines.append(("seen", f"{card['first_ts']} to {card['last_ts']}"))
        y = 0.95
        for label, text in lines:
            info.text(0, y, label, transform=info.transAxes, color="#868e96", fontsize=8, va="top")
            info.text(0.22, y, text[:60], transform=info.transAxes, fontsize=8, va="top", wrap=True)
            y -= 0.12
        info.text(0, y, "verdicts", transform=info.transAxes, color="#868e96", fontsize=8, va="top")
        x = 0.22
        for verdict, n in card["verdicts"].items():
            colour = VERDICT_COLORS[verdict]
            badge = {"boxstyle": "round,pad=0.25", "linewidth": 0, "facecolor": colour}
            info.text(x, y, f"{verdict} {n}", transform=info.transAxes, fontsize=8, va="top",
                      color=text_color(colour), bbox=badge)  # fmt: skip
            y -= 0.1
    for ax, key, what in ((served_ax, "served", "Serves"), (used_ax, "used", "Uses")):
        ports = dict(list(card[key].items())[:HOST_CARD_PORTS])
        if not ports:
            _empty(ax, what, "no connections")
            continue
        _barh(ax, list(ports), [float(v) for v in ports.values()], ["#495057"] * len(ports),
              [str(v) for v in ports.values()])  # fmt: skip
        ax.set_title(what)
        ax.set_xlabel("connections")
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    return fig


__all__ = [
    "SEVERITY_COLORS",
    "SYSTEM_COLORS",
    "VERDICT_COLORS",
    "communication_matrix",
    "coverage_table",
    "findings_over_time",
    "host_card",
    "host_card_data",
    "matrix_data",
    "never_seen",
    "signature_coverage",
    "talkers_table",
    "top_talkers",
    "traffic_over_time",
    "unexplained_ports",
    "unexplained_table",
]
