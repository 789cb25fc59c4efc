"""Headless Chromium driven with Selenium, for the browser page's tests and screenshots.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when missing);
without them, or without selenium, the tests skip, saying why. Every Selenium call is
blocking, while the tests' servers run on the test's event loop: ``Page`` runs each call
in a thread, so the server goes on serving while the browser waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DESKTOP = (1280, 800)
PHONE = (390, 844)


def _binary(name: str, debian_path: str) -> str | None:
    return shutil.which(name) or (debian_path if Path(debian_path).exists() else None)


def chromium_paths() -> tuple[str, str]:
    """The browser's and its driver's paths; skips the test, saying why, when either is
    missing (or selenium is not installed)."""
    reason = None
    try:
        import selenium  # noqa: F401
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[test]')"
    browser = _binary("chromium", "/usr/bin/chromium")
    driver = _binary("chromedriver", "/usr/bin/chromedriver")
    if reason is None and browser is None:
        reason = "chromium is not installed (apt-get install chromium)"
    if reason is None and driver is None:
        reason = "chromedriver is not installed (apt-get install chromium-driver)"
    if reason is not None:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    assert browser is not None and driver is not None
    return browser, driver


@contextlib.contextmanager
def chromium(size: tuple[int, int] = DESKTOP) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, its viewport ``size``; quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    profile = tempfile.mkdtemp(prefix="streambind-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        set_viewport(driver, size)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver: Any, size: tuple[int, int]) -> None:
    """The page's viewport exactly ``size`` CSS pixels (a window's would include its frame)."""
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


# What a card shows, read in one round trip; ``null`` fields are parts that are hidden.
_CARD = """
const card = document.querySelectorAll(".card")[arguments[0]];
if (!card) return null;
const text = (selector) => {
  const node = card.querySelector(selector);
  return node.hidden ? null : node.textContent;
};
const bar = card.querySelector("progress");
const log = card.querySelector(".card-log");
return {
  title: text(".card-title"),
  origin: text(".card-origin"),
  status: text(".card-status"),
  classes: card.className,
  cancel: text(".card-cancel"),
  hint: text(".card-hint"),
  steps: text(".card-steps"),
  step: text(".card-step"),
  bar: bar.hasAttribute("value") ? bar.value : null,
  stats: text(".card-stats"),
  chunk: text(".card-chunk"),
  log: log.hidden ? [] : log.textContent.split("\\n"),
  text: text(".card-text"),
  outcome: text(".card-outcome"),
};
"""


class Page:
    """The streambind page in the browser, driven as a person would."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def script(self, code: str, *args: Any) -> Any:
        return await self.call(self.driver.execute_script, code, *args)

    async def until(self, condition: Callable[[Any], Any], what: str, timeout: float = 30) -> Any:
        """Wait until ``condition(driver)`` is truthy; its value (a timeout fails the test)."""
        from selenium.webdriver.support.wait import WebDriverWait

        wait = WebDriverWait(self.driver, timeout, poll_frequency=0.05)
        return await self.call(wait.until, condition, f"timed out waiting until {what}")

    async def open(self, url: str) -> None:
        """Load the page and wait for its endpoint list and first form."""
        await self.call(self.driver.get, url)
        await self.until(lambda d: self._find("#run"), "the page shows a form with Run")

    def _find(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, selector)
        return found[0] if found else None

    async def element(self, selector: str) -> Any:
        return await self.until(lambda d: self._find(selector), f"{selector} is on the page")

    async def click(self, selector: str) -> None:
        await self.call((await self.element(selector)).click)

    async def choose(self, name: str, /, **values: str | bool) -> None:
        """Pick an endpoint, then fill its form: text typed into fields, booleans ticked."""
        await self.click(f'#endpoint-list [data-name="{name}"]')
        chosen = "return document.querySelector('#endpoint-list [aria-current]')?.dataset.name"
        await self.until(lambda d: d.execute_script(chosen) == name, f"the {name} form")
        for field, value in values.items():
            await self.fill(f"#param-{field}", value)

    async def fill(self, selector: str, value: str | bool) -> None:
        field = await self.element(selector)
        if isinstance(value, bool):
            if await self.call(field.is_selected) != value:
                await self.call(field.click)
            return
        await self.call(field.clear)
        await self.call(field.send_keys, value)

    async def cards(self) -> int:
        return int(await self.script("return document.querySelectorAll('.card').length"))

    async def run(self) -> None:
        """Press Run, and wait for the new run's card (the first of the list)."""
        before = await self.cards()
        await self.click("#run")
        await self.until(
            lambda d: d.execute_script("return document.querySelectorAll('.card').length") > before,
            "a new card",
        )

    async def card(self, index: int = 0) -> dict[str, Any]:
        return await self.script(_CARD, index)

    async def card_until(
        self,
        condition: Callable[[dict[str, Any]], Any],
        what: str,
        index: int = 0,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Wait until the card satisfies ``condition``; what the card shows then."""

        def check(driver: Any) -> Any:
            shown = driver.execute_script(_CARD, index)
            return shown if shown and condition(shown) else False

        return await self.until(check, what, timeout)

    async def console_errors(self) -> list[str]:
        entries = await self.call(self.driver.get_log, "browser")
        return [e["message"] for e in entries if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def chromium_driver() -> Iterator[Any]:
    """One browser for a module's tests (each test starts on a blank page)."""
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(chromium_driver: Any) -> Iterator[Page]:
    """The browser at 1280×800 on a blank page; errors in its console fail the test (not
    the network's notes on answers such as a 429, which the page is meant to handle)."""
    set_viewport(chromium_driver, DESKTOP)
    chromium_driver.get("about:blank")
    chromium_driver.get_log("browser")  # what earlier tests left
    yield Page(chromium_driver)
    errors = [
        e["message"]
        for e in chromium_driver.get_log("browser")
        if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
    chromium_driver.get("about:blank")  # closes the page's streams before its server stops
    assert not errors, errors
