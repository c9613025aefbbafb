#!/usr/bin/env python3
"""Regenerate the dashboard screenshots of the README (``docs/screenshots/*.png``).

Fills a temporary call store and library with a day of synthetic traffic
(``tests/dashboard_site.py``), serves the agent's API on a loopback port and photographs
each page with headless Chromium (Debian's ``chromium`` and ``chromium-driver``, installed
by ``scripts/bootstrap.sh``). Run from the checkout: ``python3 scripts/screenshots.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.fingerprint import open_library  # noqa: E402
from agent.store.calls import CallStore  # noqa: E402
from tests.dashboard_site import Site, add_call, announcement, fill  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
STORY = "a84f7c2e-7731@10.20.0.9"


def populate(store: CallStore, library_path: Path, *, now: datetime) -> str:
    """A day of calls, one told in detail, and unknown announcements; returns its Call-ID."""
    import numpy as np

    ids = fill(store, now=now, calls=900, span=timedelta(hours=24))
    add_call(store, STORY, carrier="globex", route="in-mob", started=now - timedelta(minutes=3),
             outcome="vacant", sent=480, rng=np.random.default_rng(3),
             correlation_id="job-20931", entry_id=12)
    with open_library(library_path) as lib:
        for seed, hearings in ((1, 9), (2, 4), (3, 2)):
            audio = announcement(seed)
            for i in range(hearings):
                call = store.get(ids[(seed * 37 + i * 11) % len(ids)])
                lib.record_unknown(audio, call_id=call.call_id, carrier=call.carrier)
        learnt = lib.record_unknown(announcement(4), call_id=ids[5], carrier="initech")
        lib.label_unknown(learnt, sip_code=404, reason="number not in service", q850_cause=1)
    return STORY


def driver(width: int, height: int):  # noqa: ANN201 - selenium's type
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--hide-scrollbars", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _viewport(browser, width: int, height: int) -> None:  # noqa: ANN001
    """Set the page's viewport exactly (a window size includes the browser's own frame)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def shoot(browser, url: str, path: Path, *, width: int, max_height: int) -> None:  # noqa: ANN001
    """Load ``url`` and save the page, as tall as its content (up to ``max_height``)."""
    _viewport(browser, width, 800)
    browser.get(url)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    _viewport(browser, width, min(int(height), max_height))
    browser.save_screenshot(str(path))
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="directory of the PNG files (default: docs/screenshots)")
    parser.add_argument("--width", type=int, default=1280, help="desktop width in px")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = CallStore(Path(tmp) / "calls.sqlite")
        library = Path(tmp) / "library.sqlite"
        story = populate(store, library, now=now)
        with Site(store, library=library) as site:
            browser = driver(args.width, 800)
            try:
                # (name, path, width, the most of the page's height to keep)
                pages = [
                    ("overview", "/dashboard?since=24h", args.width, 1500),
                    ("honesty", "/dashboard/honesty?since=24h", args.width, 1400),
                    ("call", f"/dashboard/calls/{quote(story, safe='')}", args.width, 1700),
                    ("review", "/dashboard/review", args.width, 1200),
                    ("overview-phone", "/dashboard?since=24h", 390, 1400),
                ]
                for name, path, width, max_height in pages:
                    shoot(browser, site.base + path, args.out / f"{name}.png", width=width,
                          max_height=max_height)
            finally:
                browser.quit()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
