"""Playwright helpers for the browser journeys: Debian's Chromium, one fresh
context per journey with axe-core injected, an accessibility check, screenshots
at a phone's and a laptop's width, and a collector of CSP violations.

conftest.py loads this module as a plugin (for the session-scoped `browser`
fixture); a test module imports `journey` from it."""

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import SECRETS_SEEN
from harness import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 15_000
SECRET_COOKIES = ("__Host-otp_session", "__Host-otp_admin")
WIDTHS = (390, 1280)  # a phone, a laptop
SHOT_HEIGHT = 800  # the viewport's height; the shots are full page

expect.set_options(timeout=TIMEOUT_MS)


def chromium_path():
    """Debian's Chromium (apt package `chromium`), or the one `CHROMIUM` names."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        pytest.fail("the browser tests need Chromium: install the apt package `chromium` "
                    "(apt-get install chromium) or set CHROMIUM to a Chromium binary", pytrace=False)
    return path


def screenshot_dir():
    return Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "tests" / "e2e" / "screenshots")


def announce(config, line):
    """Prints past pytest's capture, once."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(line)
    else:
        print(line, file=sys.__stderr__)


@pytest.fixture(scope="session")
def browser(pytestconfig):
    """One headless Chromium for the whole session; each journey opens its
    own context in it, so no cookie crosses from one journey to another."""
    executable = chromium_path()
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci` (it is a devDependency)", pytrace=False)
    folder = screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    announce(pytestconfig, f"screenshots of the pages: {folder}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


class Journey:
    """A fresh browser context (its own cookies) and its first page. Every
    console message about the Content Security Policy, and every uncaught
    script error, is kept for the check at the journey's end."""

    def __init__(self, browser, javascript=True):
        self.javascript = javascript
        self.context = browser.new_context(java_script_enabled=javascript,
                                           viewport={"width": WIDTHS[-1], "height": SHOT_HEIGHT})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.set_default_navigation_timeout(TIMEOUT_MS)
        # Through CDP, so the pages' CSP (script-src 'self') does not block it.
        self.context.add_init_script(path=str(AXE))
        self.csp_violations = []
        self.script_errors = []
        self.context.on("console", self._console)
        self.context.on("weberror", lambda e: self.script_errors.append(str(e.error)))
        self.page = self.context.new_page()

    def _console(self, message):
        if "Content Security Policy" in message.text:
            self.csp_violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def look(self, name, page=None):
        """The checks every visited page gets: axe (where scripts run) and
        the screenshots."""
        page = page or self.page
        if self.javascript:
            check_axe(page)
        shoot(page, name, measure=self.javascript)
        self.remember_secrets()

    def remember_secrets(self):
        """The session and admin cookies the browser holds, for the log scan."""
        for cookie in self.context.cookies():
            if cookie["name"] in SECRET_COOKIES and cookie["value"] not in SECRETS_SEEN:
                SECRETS_SEEN.append(cookie["value"])

    def check_csp(self):
        assert not self.csp_violations, "CSP violations:\n" + "\n".join(self.csp_violations)
        assert not self.script_errors, "script errors:\n" + "\n".join(self.script_errors)


@contextmanager
def journey(browser, *, javascript=True):
    """A fresh context for one journey; at its end, no CSP violation."""
    j = Journey(browser, javascript)
    try:
        yield j
        j.remember_secrets()
        j.check_csp()
    finally:
        j.context.close()


def check_axe(page):
    """No serious or critical axe-core violation on the page as it is now."""
    page.wait_for_load_state()
    violations = page.evaluate("async () => (await axe.run()).violations")
    bad = [v for v in violations if v.get("impact") in ("serious", "critical")]
    if bad:
        report = []
        for v in bad:
            report.append(f"{v['id']} ({v['impact']}): {v.get('help', '')}")
            for node in v.get("nodes", []):
                report.append(f"    {node.get('target')}: {node.get('html', '')[:200]}")
                if node.get("failureSummary"):
                    report.append("        " + node["failureSummary"].replace("\n", "\n        "))
        text = "\n".join(report)
        print(f"axe violations on {page.url}:\n{text}")
        raise AssertionError(f"axe found serious/critical violations on {page.url}:\n{text}")


def shoot(page, name, measure=True):
    """Full-page screenshots at 390 px and 1280 px wide: `<name>-390.png`,
    `<name>-1280.png`. At each width the page must fit it: nothing may make
    a phone scroll sideways (WCAG's reflow), wide tables scroll in their box."""
    folder = screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state()
    before = page.viewport_size
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": SHOT_HEIGHT})
            page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
            if measure:  # (it takes a script, which a journey without JavaScript cannot run)
                overflow = page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= width, f"{name} is {overflow} px wide at a {width} px viewport"
    finally:
        if before:
            page.set_viewport_size(before)
