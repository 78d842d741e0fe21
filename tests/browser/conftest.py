"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against a running deployment.

The stack under test is whatever COMMENTS_BASE_URL points at (default: the all-in-one Molecule scenario's Apache,
https://127.0.0.1:8443, self-signed, hence ignore_https_errors). The demo users alice, bob and carol come from
`manage.py load_demo` with the password in COMMENTS_DEMO_PASSWORD (load_demo reads DEMO_PASSWORD; the deployment
sets both from one variable).

Each run makes its own small graph through the REST API, shares it with bob through a new group, and deletes
both at the end, so that runs neither depend on nor disturb the demo data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, expect, sync_playwright

BASE_URL = os.environ.get("COMMENTS_BASE_URL", "https://127.0.0.1:8443").rstrip("/")
PASSWORD = os.environ.get("COMMENTS_DEMO_PASSWORD", "demo-password")
CHROMIUM = os.environ.get("COMMENTS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(
    os.environ.get("COMMENTS_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "build" / "screenshots")
)
# A laptop screen.
VIEWPORT = {"width": 1440, "height": 900}
# Playwright's default per action; a live update through Apache, Daphne and Redis takes well under a second.
TIMEOUT_MS = 15_000

# A small piece of the p53 network: enough to select, badge and highlight, small enough to read in a screenshot.
TP53_ELEMENTS = {
    "nodes": [
        {"data": {"id": node, "label": node}}
        for node in ["TP53", "MDM2", "MDM4", "CDKN1A", "BAX", "BBC3", "ATM", "CHEK2", "GADD45A", "SIRT1"]
    ],
    "edges": [
        {"data": {"id": f"e{index}", "source": source, "target": target}}
        for index, (source, target) in enumerate(
            [
                ("MDM2", "TP53"),
                ("TP53", "MDM2"),
                ("MDM4", "TP53"),
                ("TP53", "CDKN1A"),
                ("TP53", "BAX"),
                ("TP53", "BBC3"),
                ("ATM", "TP53"),
                ("CHEK2", "TP53"),
                ("ATM", "CHEK2"),
                ("TP53", "GADD45A"),
                ("SIRT1", "TP53"),
            ],
            start=1,
        )
    ],
}


expect.set_options(timeout=TIMEOUT_MS)


def chromium_args() -> list[str]:
    return ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Debian's Chromium: no browser can be downloaded here, and the system one is what operators would use.
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args())
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@dataclass
class User:
    """One person in their own browser context (cookies, network), with what their page reported."""

    username: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    # Console errors a test causes on purpose (a 404 page, a cut network), as substrings.
    expected_errors: list[str] = field(default_factory=list)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(expected in e for expected in self.expected_errors)]

    def api(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict | None]:
        """Call the REST API with this user's session, as the page does (CSRF token from the cookie)."""
        token = next((c["value"] for c in self.context.cookies(BASE_URL) if c["name"] == "csrftoken"), "")
        response = self.context.request.fetch(
            BASE_URL + path,
            method=method,
            data=data,
            # Django checks the Referer of HTTPS writes against the host (CSRF protection).
            headers={"X-CSRFToken": token, "Referer": BASE_URL + "/", "Accept": "application/json"},
            fail_on_status_code=False,
        )
        body = response.json() if response.body() else None
        return response.status, body

    def open_graph(self, graph_id: int) -> Page:
        """Open the graph page and wait until it is drawn and live."""
        self.page.goto(f"{BASE_URL}/graphs/{graph_id}/")
        expect(self.page.get_by_test_id("graph-page")).to_have_attribute("data-state", "ready")
        expect(self.page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        return self.page


def log_in(browser: Browser, username: str) -> User:
    context = browser.new_context(ignore_https_errors=True, viewport=VIEWPORT, base_url=BASE_URL)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    user = User(username, context, page)

    def on_console(message: ConsoleMessage) -> None:
        # Every error counts, CSP refusals above all: the page must work under its own strict policy.
        if message.type == "error":
            user.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: user.errors.append(f"uncaught: {error}"))

    def on_dialog(dialog) -> None:
        user.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{BASE_URL}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{BASE_URL}/")
    return user


@pytest.fixture(scope="session")
def stack_reachable(browser: Browser) -> None:
    """Fail at once, with the URL, when nothing answers: every test would time out otherwise."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        response = context.request.get(f"{BASE_URL}/healthz", fail_on_status_code=False, timeout=10_000)
        problem = None if response.status == 200 else f"/healthz answered {response.status}: {response.text()[:300]}"
    except Exception as error:  # noqa: BLE001 - any failure means the same thing here
        problem = f"no answer ({error})"
    finally:
        context.close()
    if problem:
        pytest.fail(f"The stack at {BASE_URL} is not usable: {problem}. Set COMMENTS_BASE_URL or deploy it first.")


@pytest.fixture
def login(browser: Browser, stack_reachable: None) -> Iterator[Callable[[str], User]]:
    """log_in("alice") -> a User in a fresh context; the contexts close after the test, and a test whose pages
    logged a JavaScript error or a CSP refusal fails."""
    users: list[User] = []

    def make(username: str) -> User:
        user = log_in(browser, username)
        users.append(user)
        return user

    yield make
    errors = {user.username: user.unexpected_errors() for user in users if user.unexpected_errors()}
    for user in users:
        user.context.close()
    assert not errors, f"the page reported errors: {errors}"


@dataclass
class Graphs:
    shared: int  # alice's, shared with bob through a group
    private: int  # alice's, shared with nobody


@pytest.fixture(scope="session")
def graphs(browser: Browser, stack_reachable: None) -> Iterator[Graphs]:
    """Make the run's graphs as alice through the REST API, and remove them (and the group) afterwards."""
    alice = log_in(browser, "alice")
    suffix = uuid.uuid4().hex[:8]
    status, shared = alice.api(
        "POST", "/api/v1/graphs/", {"name": f"TP53 browser test {suffix}", "elements": TP53_ELEMENTS}
    )
    assert status == 201, shared
    status, private = alice.api(
        "POST", "/api/v1/graphs/", {"name": f"Alice's private graph {suffix}", "elements": TP53_ELEMENTS}
    )
    assert status == 201, private
    status, group = alice.api("POST", "/api/v1/groups/", {"name": f"browser-test-{suffix}"})
    assert status == 201, group
    status, body = alice.api("POST", f"/api/v1/groups/{group['id']}/members/", {"username": "bob"})
    assert status in (200, 201), body
    status, body = alice.api("POST", f"/api/v1/graphs/{shared['id']}/share/", {"group": group["id"]})
    assert status == 200, body
    try:
        yield Graphs(shared=shared["id"], private=private["id"])
    finally:
        alice.api("DELETE", f"/api/v1/graphs/{shared['id']}/")
        alice.api("DELETE", f"/api/v1/graphs/{private['id']}/")
        alice.api("DELETE", f"/api/v1/groups/{group['id']}/")
        alice.context.close()


def unique(text: str) -> str:
    """A body no other test (or earlier run) wrote, so that counting it on the page means something."""
    return f"{text} [{uuid.uuid4().hex[:6]}]"
