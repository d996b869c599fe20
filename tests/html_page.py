"""A small reader of the report's HTML for the tests, on the standard library's parser:
elements with their attributes, the text under each id, table rows, and any tag or
attribute that would make the page run code or reach the network."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    children: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # text directly and in descendants

    def text(self) -> str:
        """The text as a browser's textContent, whitespace runs as one space (a `<br>`
        counts as whitespace)."""
        return " ".join("".join(self.texts).split())

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        out = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()
            ):
                out.append(child)
            out.extend(child.find_all(tag, **attrs))
        return out


class Page(HTMLParser):
    """Parse a whole page: `root`, `ids` (id -> Element), every tag name seen."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.ids: dict[str, Element] = {}
        self.duplicate_ids: list[str] = []
        self.tags: list[str] = []
        self._open = self.root
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs}, self._open)
        self._open.children.append(el)
        self.tags.append(tag)
        if "id" in el.attrs:
            if el.attrs["id"] in self.ids:
                self.duplicate_ids.append(el.attrs["id"])
            self.ids[el.attrs["id"]] = el
        if tag not in VOID:
            self._open = el
        elif tag == "br":
            self.handle_data(" ")

    def handle_endtag(self, tag: str) -> None:
        el: Element | None = self._open
        while el is not None and el.tag != tag:
            el = el.parent
        if el is not None and el.parent is not None:
            self._open = el.parent

    def handle_data(self, data: str) -> None:
        el: Element | None = self._open
        while el is not None:
            el.texts.append(data)
            el = el.parent

    def text(self) -> str:
        return self.root.text()

    def rows(self, table_id: str) -> list[list[str]]:
        """The body rows of a table, as cell texts."""
        table = self.ids[table_id]
        bodies = table.find_all("tbody")
        return [[td.text() for td in tr.find_all("td")] for tr in bodies[0].find_all("tr")]

    def active_content(self) -> list[str]:
        """Everything that could run code or fetch from the network."""
        bad = [f"<{t}>" for t in self.tags if t in {"script", "iframe", "object", "embed",
                                                    "link", "base", "frame"}]  # fmt: skip
        for el in self.root.find_all():
            for name, value in el.attrs.items():
                if name.startswith("on"):
                    bad.append(f"{el.tag} {name}")
                if name in ("src", "href", "action", "poster", "data") and value and not (
                    value.startswith("#") or value.startswith("data:image/png;base64,")
                ):
                    bad.append(f"{el.tag} {name}={value[:60]}")
        return bad
