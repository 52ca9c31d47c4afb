"""Browser tests: Debian's Chromium driven by Playwright against a live `portal serve`.

The server runs as a subprocess on its own database, exactly as a user starts it (only the
database URL and port differ). Every page a journey visits is checked with axe-core and for
console errors, which is where Chromium reports Content-Security-Policy violations.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.conftest import PostgresServer, fresh_database
from tests.serving import free_port, portal_serve

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
ARTIFACTS = Path(__file__).with_name("artifacts")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class LiveServer:
    base: str
    database_url: str


@pytest.fixture(scope="session")
def live_server(postgres: PostgresServer) -> Iterator[LiveServer]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed at {CHROMIUM} (apt-get install chromium)")
    url = fresh_database(postgres, f"portal_browser_{os.getpid()}")
    port = free_port()
    env = {
        "DATABASE_URL": url,
        "PORTAL_MAIL_BACKEND": "mailbox",
        "PORTAL_PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = ARTIFACTS / "server.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with log.open("w") as output:
        try:
            with portal_serve(port, env=env, output=output) as base:
                yield LiveServer(base, url)
        except RuntimeError as problem:
            pytest.fail(f"{problem}:\n{log.read_text()}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        await chromium.close()


@dataclass
class Visitor:
    """One browser context: a person with their own cookies, checked on every page."""

    context: BrowserContext
    page: Page
    base: str
    name: str
    problems: list[str] = field(default_factory=list)
    shots: int = 0
    # Without JavaScript axe-core cannot run; such pages are checked with it elsewhere.
    javascript: bool = True

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base + path)

    async def check(self, label: str) -> None:
        """axe-core finds no violation; the page is screenshotted for a person to look at."""
        await self.page.wait_for_load_state("load")
        result: dict[str, Any] = {"violations": []}
        if self.javascript:
            result = await self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        violations = [
            f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
            for v in result["violations"]
        ]
        assert violations == [], f"{label}: accessibility violations {violations}"
        self.shots += 1
        await self.page.screenshot(
            path=str(ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"), full_page=True
        )
        assert self.problems == [], f"{label}: console errors {self.problems}"

    async def nothing_clipped(self) -> None:
        """No table or page to scroll sideways: every column is in view (on a phone, too)."""
        wide = await self.page.evaluate(
            """() => [...document.querySelectorAll(".table-wrap")]
                .filter(wrap => wrap.scrollWidth > wrap.clientWidth + 1)
                .map(wrap => wrap.getAttribute("aria-label"))"""
        )
        assert wide == [], f"clipped: {wide}"
        page = await self.page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not page, "the page scrolls sideways"

    async def mail_link(self, recipient: str, contains: str) -> str:
        """Open the newest mail to `recipient` in /dev/mailbox and return the link in it."""
        await self.goto("/dev/mailbox")
        await (
            self.page.get_by_role("row")
            .filter(has_text=recipient)
            .first.get_by_role("link")
            .click()
        )
        await self.page.get_by_role("link", name="HTML").click()
        link = self.page.locator(f"a[href*='{contains}']").first
        href = await link.get_attribute("href")
        assert href, f"no link with {contains} in the mail"
        return href


@pytest.fixture
async def visitor_factory(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    contexts: list[BrowserContext] = []

    async def make(
        name: str = "", viewport: dict[str, int] | None = None, javascript: bool = True
    ) -> Visitor:
        context = await browser.new_context(
            viewport=viewport or DESKTOP, java_script_enabled=javascript, locale="nl-BE"
        )
        contexts.append(context)
        # An init script is not subject to the page's CSP, which refuses injected tags.
        await context.add_init_script(path=str(AXE))
        page = await context.new_page()
        label = name or re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name[5:])[:60]
        visitor = Visitor(
            context, page, live_server.base, f"{label}-{len(contexts)}", javascript=javascript
        )

        def console(message: Any) -> None:
            # Chromium logs every 4xx/5xx as "Failed to load resource", the error pages'
            # own documents too; failed subresources are caught by `response` below.
            if message.type == "error" and "Failed to load resource" not in message.text:
                visitor.problems.append(message.text)

        def response(answer: Any) -> None:
            kind = answer.request.resource_type
            form_answer = kind in {"xhr", "fetch"} and answer.status in {422, 429}
            if answer.status >= 400 and kind != "document" and not form_answer:
                visitor.problems.append(f"{answer.status} for {answer.url}")

        page.on("console", console)
        page.on("response", response)
        page.on("pageerror", lambda error: visitor.problems.append(str(error)))
        return visitor

    yield make
    for context in contexts:
        await context.close()


async def settle() -> None:
    await asyncio.sleep(0.05)
