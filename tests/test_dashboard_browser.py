"""The dashboard in a real browser: Debian's headless Chromium, driven by selenium, against
the agent's API served on a loopback port over a store filled through its own API.

Chromium and its driver come from ``scripts/bootstrap.sh``; without them these tests fail
(they do not skip), so a CI machine that lost them says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from agent.fingerprint import open_library
from agent.store.calls import CallStore
from tests.dashboard_site import Site, add_call, announcement, fill

NOW = datetime.now(UTC)
EVIL = '"><script>window.pwned=1</script>@10.9.9.9'
TOKEN = "browser-token-0123456789"
PAGES = ("/dashboard", "/dashboard/honesty", f"/dashboard/calls/{quote(EVIL, safe='')}",
         "/dashboard/review")


def _binary(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing: scripts/bootstrap.sh installs chromium " \
                             "and chromium-driver from Debian"
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(_binary("chromedriver")), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    store = CallStore(root / "calls.sqlite")
    ids = fill(store, now=NOW, calls=60, span=timedelta(hours=20))
    add_call(store, EVIL, carrier="globex", route="in-mob", started=NOW - timedelta(minutes=1),
             outcome="vacant", sent=480, rng=np.random.default_rng(5))
    library = root / "library.sqlite"
    with open_library(library) as lib:
        for i in range(3):
            lib.record_unknown(announcement(1), call_id=ids[i], carrier="globex")
        lib.record_unknown(announcement(2), call_id=EVIL, carrier="initech")
    with Site(store, library=library, token=TOKEN) as served:
        yield served
    store.close()


def _open(browser: webdriver.Chrome, site: Site, path: str, *, width: int = 1280) -> None:
    browser.set_window_size(width, 900)
    sep = "&" if "?" in path else "?"
    browser.get(f"{site.base}{path}{sep}access_token={TOKEN}")


def _follow(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or a form's button and wait until the next page has replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(page))


def _overflow(browser: webdriver.Chrome) -> int:
    """How many px the page is wider than the window (0 when it fits)."""
    return browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_the_window_without_sideways_scrolling(browser, site, width) -> None:
    for path in PAGES:
        _open(browser, site, path, width=width)
        assert browser.find_element(By.TAG_NAME, "h1").text
        assert browser.execute_script("return window.innerWidth") == width
        assert _overflow(browser) <= 0, f"{path} is wider than {width} px"


def test_the_dashboard_shows_calls_charts_and_opens_a_call_page(browser, site) -> None:
    _open(browser, site, "/dashboard?since=24h")
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure svg")) == 3
    carriers = [td.text for td in browser.find_elements(
        By.XPATH, "//h2[.='ASR per carrier']/following::table[1]//tr/td[1]")]
    assert set(carriers) == {"acme", "globex", "initech"}
    _follow(browser, browser.find_element(By.LINK_TEXT, EVIL))  # the Call-ID as text
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Call {EVIL}"
    assert browser.execute_script("return window.pwned") is None
    assert "sent 480, really 404" in browser.page_source
    assert browser.find_elements(By.CSS_SELECTOR, "figure svg rect")
    browser.find_element(By.TAG_NAME, "summary").click()  # the per-second table opens
    assert browser.find_element(By.XPATH, "//th[.='p(announcement)']").is_displayed()


def test_the_time_picker_narrows_the_window(browser, site) -> None:
    _open(browser, site, "/dashboard/honesty")
    _follow(browser, browser.find_element(By.LINK_TEXT, "last 1h"))
    assert "since=1h" in browser.current_url and f"access_token={TOKEN}" in browser.current_url
    assert browser.find_element(By.CSS_SELECTOR, "form.picker a.on").text == "last 1h"


def test_an_unknown_announcement_plays_and_is_labelled_through_the_form(browser, site) -> None:
    _open(browser, site, "/dashboard")
    _follow(browser, browser.find_element(By.LINK_TEXT, "Review queue"))
    row = browser.find_element(By.ID, "entry-1")
    assert row.find_elements(By.TAG_NAME, "td")[1].text == "3×"
    duration = browser.execute_async_script(
        "const a = arguments[0], done = arguments[1];"
        "a.addEventListener('error', () => done(-1));"
        "a.play().then(() => done(a.duration), () => done(-2));",
        row.find_element(By.TAG_NAME, "audio"))
    assert duration == pytest.approx(announcement(1).size / 8000, abs=0.01)
    form = row.find_element(By.CSS_SELECTOR, "form.label")
    form.find_element(By.NAME, "code").send_keys("404")
    form.find_element(By.NAME, "reason").send_keys("number not in service")
    form.find_element(By.NAME, "q850").send_keys("1")
    _follow(browser, form.find_element(By.CSS_SELECTOR, "button"))
    assert "Entry 1 is now known" in browser.find_element(By.CLASS_NAME, "done").text
    labelled = browser.find_element(By.XPATH, "//h2[.='Labelled from calls']/following::table[1]")
    assert "number not in service" in labelled.text
    with open_library(site.library_path) as lib:
        found = lib.match(announcement(1)[8000:24000])
        assert found is not None and (found.entry_id, found.sip_code, found.reason) == (
            1, 404, "number not in service")
    _follow(browser, browser.find_element(By.CSS_SELECTOR, ".done button"))  # undo
    assert "back in the review queue" in browser.find_element(By.CLASS_NAME, "done").text
    with open_library(site.library_path) as lib:
        assert lib.store.get(1).kind == "unknown"


def test_a_page_without_the_token_is_refused(browser, site) -> None:
    browser.get(f"{site.base}/dashboard/review")
    assert "missing or wrong bearer token" in browser.page_source


def test_the_site_runs_this_checkout(site) -> None:
    import agent

    assert Path(agent.__file__).resolve().parent == Path(__file__).resolve().parent.parent / "agent"
