"""Content -> one HTML page: the Jinja2 templates (package data, autoescaped), figures
embedded as base64 PNG. Nothing is fetched and nothing runs in the page: no script,
no external style sheet, font or image, so the file reads the same offline and as an
e-mail attachment."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2

from .. import __version__

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .content import Content

PNG_DPI = 110  # sharp on a laptop screen, about 60 KiB per plot
TEMPLATE = "report.html.j2"


def environment() -> jinja2.Environment:
    """The templates' environment: autoescape on for every template (also the CSS and
    the macros), undefined names are errors, not empty text."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("analyzer.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def png_data_uri(fig: Figure, *, dpi: int = PNG_DPI) -> str:
    """The figure as a `data:image/png;base64,...` URI (analyzer.plots draws on the Agg
    canvas without pyplot, so nothing is left to close)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render(content: Content, *, context: Mapping[str, Any]) -> str:
    """The page's HTML text. `context`: what the template needs besides the content
    (plots, colours, coverage columns, ...), see report.write_report."""
    template = environment().get_template(TEMPLATE)
    return template.render(c=content, version=__version__, **context)
