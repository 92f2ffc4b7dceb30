"""The report in a real browser: Debian's headless chromium, driven over the DevTools Protocol.

How: ``tests/report/chromium.py`` starts ``chromium --headless=new --remote-debugging-port``
and talks to its page over one websocket (``websocket-client``, in the test extra): it reads the
console and uncaught exceptions, failed loads and every request, evaluates each ``<img>``'s
``naturalWidth`` after the load event, and captures screenshots. (``--dump-dom`` and
``--screenshot`` alone report neither the console nor the requests.)

The screenshots are kept in ``tests/report/artifacts/`` (ignored by git); the test prints the
folder. ``.ci/run`` installs chromium when it is missing; where it cannot (no apt-get, no root),
the test is skipped and says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neurorecord.report import write_report
from tests.report.chromium import IMAGES, OPEN_ALL, Browser, find_chromium

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed and could not be installed here (.ci/run installs Debian's "
    "chromium package with apt-get when it can; install it with `apt-get install chromium`)")


@needs_chromium
@pytest.mark.parametrize("which", ["digits", "study"])
def test_report_in_headless_chromium(which, digits_store, study_store, tmp_path):
    store = {"digits": digits_store, "study": study_store}[which]
    index = write_report(store, tmp_path / f"{which}.report")
    ARTIFACTS.mkdir(exist_ok=True)
    with Browser(CHROMIUM) as browser:
        browser.load(index.as_uri())
        images = browser.evaluate(IMAGES)
        assert len(images) == len(list((index.parent / "figures").iterdir())) >= 1
        broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
        assert not broken, f"images that did not decode: {broken}"
        browser.screenshot(ARTIFACTS / f"{which}-top.png", full_page=False)
        assert browser.evaluate(OPEN_ALL) >= 5
        browser.screenshot(ARTIFACTS / f"{which}-open.png")
        assert browser.errors() == []
        assert {url.split(":", 1)[0] for url in browser.requested()} == {"file"}  # nothing from the network
    print(f"screenshots of the {which} report: {ARTIFACTS}")
