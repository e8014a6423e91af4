"""A real browser for page tests: Debian's headless Chromium driven by Selenium through
Debian's chromedriver (nothing is downloaded), plus axe-core (npm, installed by
scripts/test-env.sh outside the repo) for accessibility checks, and screenshots saved as
test artifacts in $OPSMON_ARTIFACTS_DIR (default: test-artifacts/ in the repo)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.environment import missing

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NPM_DIR = Path(os.environ.get("OPSMON_NPM_DIR", "/var/cache/opsmon-npm"))
AXE = NPM_DIR / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(
    os.environ.get("OPSMON_ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "test-artifacts")
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
DESKTOP = (1280, 900)
PHONE = (390, 844)  # a common phone's CSS pixels

_AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  (r) => done(r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
  }))),
  (e) => done([{id: 'axe-error', impact: 'critical', help: String(e), targets: []}]),
);
"""


class Browser:
    """One Chromium session."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def open(self, url: str) -> None:
        """Load `url` and wait for it (Selenium waits for the load event)."""
        self.driver.get(url)

    def resize(self, size: tuple[int, int]) -> None:
        """Make the viewport `size` CSS pixels wide and high."""
        width, height = size
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def screenshot(self, name: str, size: tuple[int, int], full_page: bool = True) -> Path:
        """A PNG of the page at `size` (the whole page's height when `full_page`), saved as
        a test artifact; returns its path."""
        self.resize(size)
        width, height = size
        if full_page:
            height = max(
                height,
                int(self.driver.execute_script("return document.documentElement.scrollHeight")),
            )
            self.resize((width, height))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.resize(size)
        return path

    def text(self, css: str = "body") -> str:
        """The visible text of the first element matching `css`."""
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def count(self, css: str) -> int:
        """How many elements match `css`."""
        from selenium.webdriver.common.by import By

        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

    def script(self, source: str, *args: Any) -> Any:
        """Run JavaScript in the page (tests only: the page itself has none)."""
        return self.driver.execute_script(source, *args)

    def page_width_overflows(self) -> bool:
        """Whether the page is wider than the viewport (sideways scrolling on a phone)."""
        return bool(
            self.script("return document.documentElement.scrollWidth > window.innerWidth + 1")
        )

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the current page."""
        if not AXE.exists():
            missing(f"axe-core ({AXE})")
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result: list[dict[str, Any]] = self.driver.execute_async_script(_AXE_RUN)
        return result


@contextmanager
def chromium() -> Iterator[Browser]:
    """A fresh headless Chromium (its own profile folder), closed afterwards."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium (pip install -e '.[test]')")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(binary):
            missing(f"{binary} (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="opsmon-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    try:
        yield Browser(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
