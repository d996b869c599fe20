"""The HTML report in a real browser: Debian's headless Chromium (/usr/bin/chromium,
never a downloaded one) driven by Playwright. The page of the demo capture and of the
two-night dataset must load with no console message of level error, no page error and
no request but the file itself (every other request is answered with a failure and
recorded); the first screen shows the three headline tiles; every section is there
and visible; a host link of the findings table lands on its card; every plot decodes.
The full-page screenshots are kept in tests/artifacts/ (gitignored), paths printed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} absent (Debian package chromium)", allow_module_level=True)

from playwright.sync_api import (  # noqa: E402
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Route,
    sync_playwright,  # noqa: E402
)

from analyzer.report import write_report  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# The flags that work in a container without a GPU or a user namespace; no network
# service of the browser itself (updates, sync, QUIC probes) starts.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREEN = {"width": 1366, "height": 768}  # a common office laptop
SECTIONS = ["headline", "verdicts", "findings", "plots", "health", "coverage", "hosts"]
DATASET_SECTIONS = [*SECTIONS, "new-pairs", "sites"]


@dataclass
class Visit:
    """One page load and everything the browser reported while it lasted."""

    url: str
    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every request but the file itself
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def visit(browser: Browser, html: Path) -> Visit:
    page = browser.new_page(viewport=SCREEN)
    url = html.resolve().as_uri()
    v = Visit(url, page)

    def route(r: Route) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            v.blocked.append(r.request.url)
            r.abort("blockedbyclient")

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            v.console_errors.append(msg.text)

    def on_request(req: Request) -> None:
        if req.url != url:
            v.requests.append(req.url[:80])

    page.on("console", on_console)
    page.on("pageerror", lambda e: v.page_errors.append(str(e)))
    page.on("request", on_request)
    page.route("**/*", route)
    page.goto(url, wait_until="load")
    return v


def keep_screenshot(v: Visit, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    v.page.screenshot(path=str(path), full_page=True)
    v.page.screenshot(path=str(ARTIFACTS / f"{name}-first-screen.png"))
    print(f"screenshot: {path}")
    return path


def check_clean_load(v: Visit) -> None:
    assert v.console_errors == []
    assert v.page_errors == []
    assert v.blocked == []
    assert v.requests == []


def check_sections(v: Visit, ids: list[str]) -> None:
    present = v.page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
    assert sorted(present) == sorted(ids)
    for ident in ids:
        assert v.page.locator(f"section#{ident}").is_visible(), ident
        assert v.page.locator(f"section#{ident}").bounding_box()["height"] > 40, ident


def check_first_screen(v: Visit) -> None:
    """The three headline tiles are on the first screen, fully, side by side."""
    v.page.evaluate("window.scrollTo(0, 0)")
    boxes = [v.page.locator(f"#headline-{t}").bounding_box() for t in ("cmi", "worst", "new")]
    for box in boxes:
        assert box is not None and box["y"] >= 0
        assert box["y"] + box["height"] <= SCREEN["height"]
    assert len({round(b["y"]) for b in boxes}) == 1  # one row


def check_plots_decode(v: Visit) -> None:
    images = v.page.locator("#plots img")
    assert images.count() >= 6
    sizes = images.evaluate_all(
        "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
    )
    assert all(done and w > 200 and h > 100 for done, w, h in sizes), sizes


def check_host_link_lands(v: Visit) -> None:
    link = v.page.locator("#findings-table a.host").first
    anchor = link.get_attribute("href")
    assert anchor and anchor.startswith("#host-")
    ip = link.inner_text()
    link.click()
    v.page.wait_for_function(f"location.hash === {anchor!r}")
    card = v.page.locator(f"article{anchor}")
    assert card.count() == 1
    assert v.page.evaluate("document.querySelector(':target').id") == anchor[1:]
    assert card.locator("h3").inner_text().startswith(ip)
    box = card.bounding_box()
    assert box is not None and -1 < box["y"] < SCREEN["height"]  # scrolled into view


@pytest.fixture(scope="module")
def demo_report(demo_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(demo_out, tmp_path_factory.mktemp("demo-report") / "report.html")


@pytest.fixture(scope="module")
def nights_report(nights_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(nights_dataset, tmp_path_factory.mktemp("nights-report") / "nightly.html")


def test_capture_report_in_chromium(browser: Browser, demo_report: Path) -> None:
    v = visit(browser, demo_report)
    try:
        keep_screenshot(v, "report-capture")
        check_clean_load(v)
        check_sections(v, SECTIONS)
        check_first_screen(v)
        # sample_pcaps/README.md: the scanner and an office PC reach into the C.M.I.
        cmi = v.page.locator("#headline-cmi").inner_text()
        assert "3 connections" in cmi and "203.0.113.66" in cmi
        assert v.page.locator("#findings-table tbody tr").count() == 7
        assert v.page.locator("#coverage-table tbody tr").count() >= 3
        check_plots_decode(v)
        check_host_link_lands(v)
        check_clean_load(v)
    finally:
        v.page.close()


def test_dataset_report_in_chromium(browser: Browser, nights_report: Path) -> None:
    v = visit(browser, nights_report)
    try:
        keep_screenshot(v, "report-dataset")
        check_clean_load(v)
        check_sections(v, DATASET_SECTIONS)
        check_first_screen(v)
        assert "new pair" in v.page.locator("#headline-new").inner_text()
        assert v.page.locator("#new-pairs-table tbody tr").count() >= 1
        assert v.page.locator("#sites-table tbody tr").count() == 3
        check_plots_decode(v)
        check_host_link_lands(v)
        check_clean_load(v)
    finally:
        v.page.close()


def test_the_page_fetches_nothing_even_when_copied_alone(
    browser: Browser, demo_report: Path, tmp_path: Path
) -> None:
    """An e-mail attachment: the file alone in an empty folder reads the same."""
    alone = tmp_path / "attachment.html"
    shutil.copy(demo_report, alone)
    v = visit(browser, alone)
    try:
        check_clean_load(v)
        check_plots_decode(v)
    finally:
        v.page.close()
