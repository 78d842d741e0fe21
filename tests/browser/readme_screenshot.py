"""Make the README's picture (docs/screenshot.png): bob's view of the demo TP53 network while alice and he discuss.

Not a test (pytest does not collect it): it writes two comments into the demo graph of the stack it is pointed at.

    COMMENTS_BASE_URL=https://127.0.0.1:8443 COMMENTS_DEMO_PASSWORD=... python tests/browser/readme_screenshot.py docs/screenshot.png
"""

from __future__ import annotations

import sys

from playwright.sync_api import Page, expect, sync_playwright

from conftest import BASE_URL, CHROMIUM, VIEWPORT, chromium_args, log_in


def open_demo_graph(page: Page) -> None:
    row = page.get_by_test_id("graph-row").filter(has_text="TP53 network").first
    page.goto(f"{BASE_URL}/graphs/{row.get_attribute('data-graph-id')}/")
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")


def click_node(page: Page, node_id: str, shift: bool = False) -> None:
    point = page.evaluate(
        """(id) => { const p = document.querySelector('[data-testid="graph-canvas"]').cy.getElementById(id)
                       .renderedPosition(); return {x: p.x, y: p.y}; }""",
        node_id,
    )
    page.get_by_test_id("graph-canvas").click(position=point, modifiers=["Shift"] if shift else None)


def main(out: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args())
        alice, bob = log_in(browser, "alice"), log_in(browser, "bob")
        for user in (alice, bob):
            user.page.set_viewport_size(VIEWPORT)
            open_demo_graph(user.page)
        click_node(alice.page, "MDM2")
        click_node(alice.page, "MDM4", shift=True)
        alice.page.get_by_test_id("composer-body").fill(
            "MDM4 has no E3 activity of its own but stabilises MDM2 as a heterodimer. @bob does the USP7 loop need both?"
        )
        alice.page.get_by_test_id("composer-submit").click()
        # The thread alice just posted (the page marks it current), found by id in bob's page.
        thread_id = alice.page.locator(".thread.current").get_attribute("data-thread-id")
        thread = bob.page.locator(f'[data-testid="thread"][data-thread-id="{thread_id}"]')
        expect(thread).to_be_visible()
        thread.get_by_test_id("comment").get_by_test_id("reaction-add").click()
        thread.get_by_test_id("react-eyes").click()
        thread.get_by_test_id("reply-button").click()
        thread.get_by_test_id("reply-body").fill(
            "Only MDM2: USP7 deubiquitinates MDM2 directly. I'd add an edge USP7 → MDM4 though."
        )
        thread.get_by_test_id("reply-submit").click()
        expect(thread.get_by_test_id("reply")).to_have_count(1)
        thread.get_by_test_id("comment-anchor").click()
        bob.page.mouse.move(5, 5)  # no hover effects in the picture
        bob.page.wait_for_timeout(500)  # the highlight's short animation
        bob.page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
