"""Draw docs/report/report.png: the default protocol's report, as headless chromium shows it.

    python docs/report/make_screenshot.py

Records protocols/digits.yaml into a temporary folder, writes its report with
``neurorecord.report.write_report``, opens it in Debian's chromium (driven as in
tests/report/test_browser.py) with the first analysis section open, and saves the screenshot.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository, for tests.report.chromium

import neurorecord  # noqa: E402
from neurorecord.report import write_report  # noqa: E402
from tests.report.chromium import Browser, find_chromium  # noqa: E402

OPEN = "document.getElementById('analyses-fc2').open = true; document.getElementById('analyses-fc2-csi').open = true; 0"
SCROLL = "document.getElementById('analyses-fc2-csi').scrollIntoView(); window.scrollY"


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "digits"
        neurorecord.run(neurorecord.default_protocol_path(), store, quiet=True)
        index = write_report(store)
        with Browser(chromium, width=1200, height=1400) as browser:
            browser.load(index.as_uri())
            browser.screenshot(HERE / "report-top.png", full_page=False)
            browser.evaluate(OPEN)
            browser.evaluate(SCROLL)
            browser.screenshot(HERE / "report-section.png", full_page=False)
    print(f"wrote {HERE / 'report-top.png'} and {HERE / 'report-section.png'}")


if __name__ == "__main__":
    main()
