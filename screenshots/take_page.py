"""Take the browser page's screenshots: a real server, real runs, headless Chromium.

    .venv/bin/python screenshots/take_page.py

Writes PNG files next to this script, at 1280×800 and at a phone's 390×844, with the
browser helpers the tests use (tests/browser.py).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import DESKTOP, PHONE, chromium  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from streambind.app.embedded import EmbeddedServer  # noqa: E402
from streambind.server import ServerConfig  # noqa: E402


def until(driver: Any, condition: Callable[[Any], Any], timeout: float = 60) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def run(driver: Any, endpoint: str, **values: str) -> None:
    """Pick ``endpoint``, fill its form, press Run, and wait for the new card."""
    cards = driver.execute_script("return document.querySelectorAll('.card').length")
    driver.find_element("css selector", f'[data-name="{endpoint}"]').click()
    until(driver, lambda d: d.find_elements("css selector", f"#param-{next(iter(values))}"))
    for name, value in values.items():
        field = driver.find_element("id", f"param-{name}")
        field.clear()
        field.send_keys(value)
    driver.find_element("id", "run").click()
    until(
        driver,
        lambda d: d.execute_script("return document.querySelectorAll('.card').length") > cards,
    )


def first_card(driver: Any, script: str) -> Any:
    return driver.execute_script(f"const card = document.querySelector('.card'); {script}")


def shoot(driver: Any, name: str) -> None:
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    driver.save_screenshot(str(HERE / f"{name}.png"))
    print(f"screenshots/{name}.png")


def desktop(url: str) -> None:
    with chromium(DESKTOP) as driver:
        driver.get(url + "/")
        until(driver, lambda d: d.find_elements("id", "run"))
        run(driver, "import", rows="500", batch_size="50", delay_ms="0")
        until(driver, lambda d: first_card(d, "return card.classList.contains('-succeeded')"))
        run(driver, "flaky", steps="10", fail_at="6", delay_ms="40")
        until(driver, lambda d: first_card(d, "return card.classList.contains('-failed')"))
        run(driver, "pipeline", rows="6000", batch_size="100", delay_ms="60")
        until(driver, lambda d: first_card(d, "return /import [4-9][0-9]%/.test(card.textContent)"))
        shoot(driver, "page-desktop")
        driver.find_element("id", "tab-runs").click()
        until(driver, lambda d: len(d.find_elements("css selector", "#runs-table tbody tr")) >= 3)
        until(driver, lambda d: first_card(d, "return card.classList.contains('-succeeded')"))
        # The next poll of the table says so too.
        until(
            driver,
            lambda d: (
                d.execute_script("return document.querySelector('#runs-table tbody tr')?.className")
                == "-succeeded"
            ),
        )
        shoot(driver, "page-runs")


def phone(url: str) -> None:
    with chromium(PHONE) as driver:
        driver.get(url + "/")
        until(driver, lambda d: d.find_elements("id", "run"))
        run(driver, "import", rows="3000", batch_size="50", delay_ms="40")
        until(driver, lambda d: first_card(d, "return card.querySelector('progress').value > 0.4"))
        # Scrolled as Run leaves it: the new card in view below the form.
        driver.save_screenshot(str(HERE / "page-phone.png"))
        print("screenshots/page-phone.png")
        first_card(driver, "card.querySelector('.card-cancel').click()")


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedServer(ServerConfig(data_dir=Path(data_dir)))
        url = server.start()
        try:
            desktop(url)
            phone(url)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
