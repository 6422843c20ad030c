"""The dashboard in a real headless Chromium (Debian's ``chromium``), against a real ``sitewise-edge demo`` process.

One demo and one browser for the module. Every page must load with no console error and without a request
beyond 127.0.0.1 (everything is vendored). With ``SITEWISE_EDGE_SCREENSHOTS=DIR`` the tests also save the
screenshots the README shows (``docs/screenshots``).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, ended, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("SITEWISE_EDGE_SCREENSHOTS")
MACHINES = ("Press1", "Press2", "Oven1", "Line 1")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data = tmp_path_factory.mktemp("demo")
    proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "demo", "--port", str(port), "--data-dir",
                             str(data)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the demo prints the dashboard's address once it serves
            if line.startswith("Dashboard:"):
                break
        else:
            raise AssertionError("the demo ended before it served the dashboard")
        # read on, so that the demo's log never fills the pipe and blocks it
        threading.Thread(target=proc.stdout.read, name="demo-log", daemon=True).start()
        yield base
    finally:
        proc.terminate()
        assert ended(proc, 20) is not None, "the demo did not stop on SIGTERM"


class Browser:
    """One Chromium for the module, driven by playwright's sync API in a thread of its own (its event loop must
    not meet pytest-asyncio's): ``browser.run(steps)`` runs ``steps(page)`` there on a fresh page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ThreadPoolExecutor-browser")
        self.thread.submit(self._launch).result()

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)  # a fresh profile each launch

    def run(self, steps: Callable[[Page], None], path: str = "/", tab: str | None = None) -> None:
        """``steps(page)`` on a fresh page showing ``path`` (with the dashboard's ``tab`` chosen)."""
        def body() -> None:
            page = Page(self.browser, self.base)
            try:
                page.page.goto(self.base + path)
                if tab:
                    page.page.click(f"#tabs >> text={tab}")
                steps(page)
            finally:
                page.close()
        self.thread.submit(body).result()

    def close(self) -> None:
        def stop() -> None:
            self.browser.close()
            self.pw.stop()
        self.thread.submit(stop).result()
        self.thread.shutdown()


@pytest.fixture(scope="module")
def browser(demo: str) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `apt-get install chromium` (Debian), or `make test`, which does")
    b = Browser(demo)
    try:
        yield b
    finally:
        b.close()


class Page:
    """A page that records console errors, page errors and every request that leaves 127.0.0.1."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.route("**/*", self._route)
        self.base = base

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))

    def close(self) -> None:
        self.context.close()
        assert not self.outside, f"requests beyond 127.0.0.1: {self.outside}"
        assert not self.errors, f"console errors: {self.errors}"


def test_overview_and_the_live_asset_tree(browser: Browser) -> None:
    browser.run(_overview_and_tree, tab="Overview")


def _overview_and_tree(page: Page) -> None:
    p = page.page
    p.wait_for_selector("#sources-table td:has-text('line1-opcua')")
    assert p.inner_text("#verdict") in ("ok", "degraded")
    p.wait_for_function("document.querySelector('#sources-table').innerText.includes('connected')")
    page.shot("overview")
    p.click("#tabs >> text=Assets")
    for name in MACHINES:
        p.wait_for_selector(f"#tree summary:has-text('{name}')")
    cell = "#tree tr[data-stream='/plant1/line1/press1/pressure'] .v"
    p.wait_for_function(f"document.querySelector(\"{cell}\").textContent !== '—'")
    first = p.inner_text(cell)
    # the pressure changes every sample: a new text arrives over the live feed without reloading
    p.wait_for_function(f"document.querySelector(\"{cell}\").textContent !== {json.dumps(first)}", timeout=30_000)
    page.shot("assets")


def test_a_trend_draws_and_follows_the_present(browser: Browser) -> None:
    browser.run(_trend, tab="Trends")


def _trend(page: Page) -> None:
    p = page.page
    p.select_option("#range", "900")
    for stream in ("/plant1/line1/press1/temperature", "/plant1/line1/press1/pressure"):
        p.check(f"#picker input[value='{stream}']")
    p.wait_for_selector("#chart canvas")
    p.wait_for_function("document.querySelector('.u-legend').innerText.includes('Press1 / Pressure')")
    drawn = int(p.get_attribute("#chart", "data-drawn") or 0)
    p.wait_for_function(f"Number(document.querySelector('#chart').dataset.drawn) > {drawn}", timeout=30_000)
    assert "raw" in p.inner_text("#trend-info")
    page.shot("trends")
    p.select_option("#range", "2592000")  # 30 days: bucket averages
    p.wait_for_function("document.querySelector('#trend-info').innerText.includes('averages')")
    with p.expect_download() as download:
        p.click("#csv")
    text = Path(download.value.path()).read_text()
    assert text.startswith("stream,label,time,value,min,max\n") and "/plant1/line1/press1/pressure" in text


def test_dead_letters_and_configuration_pages(browser: Browser) -> None:
    browser.run(_dead_letters_and_config, tab="Dead letters")


def _dead_letters_and_config(page: Page) -> None:
    p = page.page
    p.wait_for_selector("#dl-table tr")
    assert "records" in p.inner_text("#dl-result")
    p.click("#tabs >> text=Configuration")
    p.wait_for_selector("#checks td:has-text('loaded and valid')")
    config = p.inner_text("#config")
    assert '"line1-opcua"' in config or "line1-opcua" in config
    page.shot("configuration")


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_api_docs_render_offline(browser: Browser, path: str, ready: str) -> None:
    def steps(page: Page) -> None:
        page.page.wait_for_selector(ready)
        assert "sitewise-edge" in page.page.inner_text(ready)
        # the operations are listed (a summary of api/ops.py)
        page.page.wait_for_function("document.body.innerText.includes('Values a destination refused')")
    browser.run(steps, path)


def test_the_demo_api_answers_what_the_page_shows(demo: str) -> None:
    tree = _get(demo + "/dashboard/api/assets")
    names = set()
    stack = list(tree["assets"])
    while stack:
        a = stack.pop()
        names.add(a["name"])
        stack += a["children"]
    assert set(MACHINES) <= names
