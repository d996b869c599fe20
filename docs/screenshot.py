"""Write docs/report.png: the first screen of the demo sample's report, as `make demo`
plus `--report` writes it, in Debian's headless Chromium (the browser test's flags).

    .venv/bin/python docs/screenshot.py            # -> docs/report.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_pcaps"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREEN = {"width": 1366, "height": 960}  # the tiles, the summary and the top findings


def main(out: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "analyzer.cli", str(SAMPLES / "mixed_site.pcapng"),
             "--site", str(SAMPLES / "mixed_site.site.toml"), "-o", "demo", "--report"],
            cwd=tmp, check=False, capture_output=True,
        )  # fmt: skip  # exit 1: the demo has critical findings
        report = Path(tmp) / "demo" / "report.html"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport=SCREEN)
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                       else r.abort())  # fmt: skip
            page.goto(report.as_uri(), wait_until="load")
            page.screenshot(path=str(out))
            browser.close()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "report.png"))
