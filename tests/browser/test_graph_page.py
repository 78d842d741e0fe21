"""The graph page in a real browser: two people discuss a graph live, through the deployed stack.

Each test opens its users in separate browser contexts (separate cookies and network), so that what one sees
can only have come through the server: REST, Daphne, Redis and the WebSocket.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Locator, Page, WebSocket, expect

from conftest import BASE_URL, Graphs, unique


def canvas(page: Page) -> Locator:
    return page.get_by_test_id("graph-canvas")


def click_element(page: Page, element_id: str, shift: bool = False) -> None:
    """Click a node or edge where Cytoscape drew it (a real mouse click on the canvas)."""
    point = page.evaluate(
        """(id) => {
            const element = document.querySelector('[data-testid="graph-canvas"]').cy.getElementById(id);
            const p = element.isNode() ? element.renderedPosition() : element.renderedMidpoint();
            return {x: p.x, y: p.y};
        }""",
        element_id,
    )
    canvas(page).click(position=point, modifiers=["Shift"] if shift else None)


def cy_has_class(page: Page, element_id: str, name: str) -> bool:
    return page.evaluate(
        """([id, name]) => document.querySelector('[data-testid="graph-canvas"]').cy.getElementById(id).hasClass(name)""",
        [element_id, name],
    )


def exactly(text: str) -> re.Pattern[str]:
    return re.compile(f"^{re.escape(text)}$")


def bodies(page: Page, text: str) -> Locator:
    """Every comment body on the page that reads exactly `text`."""
    return page.get_by_test_id("comment-body").filter(has_text=exactly(text))


def thread_of(page: Page, text: str) -> Locator:
    """The thread whose first comment reads `text`, once it is on the page; the locator holds on to the thread's
    id, so it still finds the thread while its text changes (editing)."""
    found = page.get_by_test_id("thread").filter(has=page.get_by_test_id("comment").filter(has=bodies(page, text)))
    expect(found).to_have_count(1)
    return page.locator(f'[data-testid="thread"][data-thread-id="{found.get_attribute("data-thread-id")}"]')


def post_comment(page: Page, text: str) -> None:
    page.get_by_test_id("composer-body").fill(text)
    page.get_by_test_id("composer-submit").click()
    expect(bodies(page, text)).to_have_count(1)


def mark_loaded(page: Page) -> None:
    """Tag the document: a reload would lose the tag, so it proves that updates arrived without one."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def test_two_people_discuss_a_selection_live(login, graphs: Graphs, screenshots: Path) -> None:
    alice, bob = login("alice"), login("bob")
    alice.open_graph(graphs.shared)
    bob.open_graph(graphs.shared)
    mark_loaded(bob.page)
    mark_loaded(alice.page)

    # Each sees the other among the viewers.
    expect(alice.page.get_by_test_id("presence-bob")).to_be_visible()
    expect(bob.page.get_by_test_id("presence-alice")).to_be_visible()

    # Alice selects two nodes on the drawing: a click, then a shift-click.
    click_element(alice.page, "TP53")
    click_element(alice.page, "MDM2", shift=True)
    root = alice.page.get_by_test_id("graph-page")
    expect(root).to_have_attribute("data-selection", "TP53 MDM2")
    expect(alice.page.get_by_test_id("composer-target")).to_have_text("Comment on 2 nodes: TP53, MDM2")

    text = unique("MDM2 ubiquitinates TP53 and keeps it low, @bob")
    post_comment(alice.page, text)
    alice.page.screenshot(path=screenshots / "01-alice-commented-on-selection.png")

    # Bob sees it without reloading, anchored on the two nodes, which now carry a badge.
    expect(bodies(bob.page, text)).to_have_count(1)
    thread = thread_of(bob.page, text)
    expect(thread.get_by_test_id("comment-anchor")).to_have_text(re.compile("2 nodes: TP53, MDM2"))
    expect(bob.page.get_by_test_id("graph-page")).to_have_attribute("data-badged", re.compile(r"\bMDM2\b.*\bTP53\b"))
    assert cy_has_class(bob.page, "TP53", "has-comments")
    assert cy_has_class(bob.page, "MDM2", "has-comments")
    assert not cy_has_class(bob.page, "BAX", "has-comments")
    assert_not_reloaded(bob.page)

    # Clicking the comment's anchor highlights those nodes in Bob's drawing.
    thread.get_by_test_id("comment-anchor").click()
    expect(bob.page.get_by_test_id("graph-page")).to_have_attribute("data-highlighted", "TP53 MDM2")
    assert cy_has_class(bob.page, "TP53", "highlighted")
    assert cy_has_class(bob.page, "BAX", "faded")
    bob.page.screenshot(path=screenshots / "02-bob-sees-comment-and-badges.png")

    # Bob replies; Alice sees the reply in the same thread, without reloading.
    reply = unique("Agreed; MDM4 too")
    thread.get_by_test_id("reply-button").click()
    thread.get_by_test_id("reply-body").fill(reply)
    thread.get_by_test_id("reply-submit").click()
    alice_thread = thread_of(alice.page, text)
    expect(alice_thread.get_by_test_id("reply").get_by_test_id("comment-body")).to_have_text(reply)
    assert_not_reloaded(alice.page)
    alice.page.screenshot(path=screenshots / "03-alice-sees-reply.png")


def test_a_reader_offline_catches_up_once(login, graphs: Graphs, screenshots: Path) -> None:
    alice, bob = login("alice"), login("bob")
    # Cutting the network makes the browser log failed requests and socket attempts; that is the point here.
    bob.expected_errors += ["ERR_INTERNET_DISCONNECTED", "WebSocket connection to"]
    alice.open_graph(graphs.shared)
    opened: list[str] = []

    def watch(socket: WebSocket) -> None:
        if "/ws/graphs/" in socket.url:
            opened.append(socket.url)

    bob.page.on("websocket", watch)
    bob.open_graph(graphs.shared)
    mark_loaded(bob.page)
    root = bob.page.get_by_test_id("graph-page")
    expect(root).to_have_attribute("data-last-seq", re.compile(r"^\d+$"))

    bob.context.set_offline(True)
    expect(bob.page.get_by_test_id("live-status")).to_have_attribute("data-state", "offline")
    seen_before = int(root.get_attribute("data-last-seq"))

    first, second = unique("First while Bob is away"), unique("Second while Bob is away")
    post_comment(alice.page, first)
    post_comment(alice.page, second)
    # Nothing can reach Bob now.
    expect(bodies(bob.page, first)).to_have_count(0)
    bob.page.screenshot(path=screenshots / "04-bob-offline.png")

    bob.context.set_offline(False)
    expect(bob.page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    expect(bodies(bob.page, first)).to_have_count(1)
    expect(bodies(bob.page, second)).to_have_count(1)
    assert_not_reloaded(bob.page)

    # The page asked for exactly what it missed: each (re)connect resumes in its URL after the last seq it had seen.
    resumes = [int(parse_qs(urlsplit(url).query)["after_seq"][0]) for url in opened]
    assert len(resumes) >= 2, opened
    assert resumes[-1] == seen_before
    # Both events arrived, in order, and are counted once: the last seq moved by exactly two.
    expect(root).to_have_attribute("data-last-seq", str(seen_before + 2))
    expect(bodies(bob.page, first)).to_have_count(1)
    bob.page.screenshot(path=screenshots / "05-bob-back-online.png")


def test_markup_in_a_body_stays_text(login, graphs: Graphs, screenshots: Path) -> None:
    alice, bob = login("alice"), login("bob")
    alice.open_graph(graphs.shared)
    bob.open_graph(graphs.shared)
    text = unique('<img src=x onerror=alert(1)> <script>alert(2)</script> "><svg onload=alert(3)>')
    post_comment(alice.page, text)

    for user in (alice, bob):
        body = bodies(user.page, text)
        expect(body).to_have_count(1)
        # The characters are there, as text; no element was made from them.
        expect(body).to_have_text(text)
        assert body.locator("img, script, svg").count() == 0
        assert user.page.locator("[data-testid=threads] img").count() == 0
        assert "&lt;img" in body.inner_html()
        assert user.dialogs == [], user.dialogs
    bob.page.screenshot(path=screenshots / "06-markup-shown-as-text.png")


def test_an_outsider_cannot_see_a_private_graph(login, graphs: Graphs, screenshots: Path) -> None:
    carol = login("carol")
    carol.expected_errors.append("status of 404")

    response = carol.page.goto(f"{BASE_URL}/graphs/{graphs.private}/")
    assert response is not None
    assert response.status == 404
    expect(carol.page.get_by_test_id("not-found")).to_be_visible()
    expect(carol.page.get_by_test_id("graph-canvas")).to_have_count(0)
    assert "Alice's private graph" not in carol.page.content()
    carol.page.screenshot(path=screenshots / "07-outsider-gets-404.png")

    # The API does not reveal it either: the same 404 as a graph that does not exist.
    for path in (f"/api/v1/graphs/{graphs.private}/", f"/api/v1/graphs/{graphs.private}/comments/"):
        status, _ = carol.api("GET", path)
        assert status == 404, path
    status, listing = carol.api("GET", "/api/v1/graphs/")
    assert status == 200
    assert graphs.private not in [graph["id"] for graph in listing["results"]]

    # Nor does the WebSocket: it refuses with a close code, never a hello.
    carol.page.goto(f"{BASE_URL}/")
    code = carol.page.evaluate(
        """(id) => new Promise((resolve) => {
            const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/graphs/${id}/`);
            socket.onmessage = (event) => resolve("message: " + event.data);
            socket.onclose = (event) => resolve(event.code);
        })""",
        graphs.private,
    )
    assert code == 4404, code  # the same code as for a graph that does not exist


def test_the_page_runs_under_a_strict_policy(login, graphs: Graphs) -> None:
    """No inline script or style in what the server sends, and a policy that would refuse them anyway; the page
    still works (the login fixture fails a test whose pages logged a CSP refusal)."""
    alice = login("alice")
    response = alice.page.goto(f"{BASE_URL}/graphs/{graphs.shared}/")
    assert response is not None
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split(";")
        if directive.strip()
    }
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    html = response.text()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "an inline script"
    assert re.search(r"<style|\sstyle=", html) is None, "an inline style"
    expect(alice.page.get_by_test_id("graph-page")).to_have_attribute("data-state", "ready")
    expect(alice.page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    # Cytoscape.js came from our own server, not from a CDN.
    assert alice.page.evaluate(
        "performance.getEntriesByType('resource').filter((r) => r.name.includes('cytoscape')).map((r) => new URL(r.name).origin)"
    ) == [BASE_URL]


def test_threads_can_be_worked_on(login, graphs: Graphs, screenshots: Path) -> None:
    """Reactions, resolve, edit and filters, each seen by the other person live."""
    alice, bob = login("alice"), login("bob")
    alice.open_graph(graphs.shared)
    bob.open_graph(graphs.shared)

    # A comment on one edge, chosen from the keyboard-usable element list.
    alice.page.get_by_text("Nodes and edges (select by keyboard)").click()
    alice.page.get_by_test_id("element-e5").check()
    expect(alice.page.get_by_test_id("composer-target")).to_have_text("Comment on Edge TP53 → BAX")
    text = unique("Is BAX induction direct?")
    post_comment(alice.page, text)
    expect(alice.page.get_by_test_id("badge-e5")).to_be_visible()

    bob_thread = thread_of(bob.page, text)
    assert cy_has_class(bob.page, "e5", "has-comments")

    # Bob reacts; Alice sees the count.
    bob_thread.get_by_test_id("comment").get_by_test_id("reaction-add").click()
    bob_thread.get_by_test_id("react-rocket").click()
    alice_thread = thread_of(alice.page, text)
    expect(alice_thread.get_by_test_id("reaction-rocket")).to_have_text("🚀 1")

    # Alice edits her comment; Bob sees the new text.
    edited = unique("Is BAX induction direct? (ChIP says yes)")
    alice_thread.get_by_test_id("comment").get_by_test_id("edit-button").click()
    alice_thread.get_by_test_id("edit-body").fill(edited)
    alice_thread.get_by_test_id("save-edit").click()
    expect(bodies(bob.page, edited)).to_have_count(1)
    expect(bodies(bob.page, text)).to_have_count(0)

    # Alice resolves it; in Bob's page the "open" filter hides it and "resolved" shows it.
    alice_thread.get_by_test_id("resolve-button").click()
    bob_thread = thread_of(bob.page, edited)
    expect(bob_thread.get_by_test_id("resolved-mark")).to_have_text("Resolved by alice")
    bob.page.get_by_test_id("filter-open").check()
    expect(bob_thread).to_be_hidden()
    bob.page.get_by_test_id("filter-resolved").check()
    expect(bob_thread).to_be_visible()
    bob.page.screenshot(path=screenshots / "08-resolved-filter.png")


def test_mentions_complete_and_notify(login, graphs: Graphs, screenshots: Path) -> None:
    alice, bob = login("alice"), login("bob")
    alice.open_graph(graphs.shared)
    bob.page.goto(f"{BASE_URL}/")
    expect(bob.page.get_by_test_id("notifications-button")).to_have_attribute("data-loaded", "true")
    status, unread = bob.api("GET", "/api/v1/notifications/?unread=true")
    assert status == 200
    unread_before = unread["count"]

    # "@b" offers bob (who may see the graph); Enter takes him.
    box = alice.page.get_by_test_id("composer-body")
    box.fill("")
    box.press_sequentially("Look at this, @b")
    option = alice.page.get_by_test_id("mention-option").filter(has_text=exactly("@bob"))
    expect(option).to_be_visible()
    alice.page.screenshot(path=screenshots / "09-mention-completion.png")
    box.press("Enter")
    expect(box).to_have_value("Look at this, @bob ")
    marker = unique("please")
    box.press_sequentially(marker)
    alice.page.get_by_test_id("composer-submit").click()
    expect(bodies(alice.page, f"Look at this, @bob {marker}")).to_have_count(1)

    # Bob, on another page, gets the notification live.
    expect(bob.page.get_by_test_id("notifications-count")).to_have_text(str(unread_before + 1))
    bob.page.get_by_test_id("notifications-button").click()
    item = bob.page.get_by_test_id("notification").filter(has_text=marker).first
    expect(item).to_contain_text("alice mentioned you")
    bob.page.screenshot(path=screenshots / "10-notification.png")
    item.get_by_role("link").click()
    bob.page.wait_for_url(re.compile(rf"/graphs/{graphs.shared}/#comment-\d+$"))
    expect(bob.page.get_by_test_id("graph-page")).to_have_attribute("data-state", "ready")
    expect(bob.page.locator(".thread.current")).to_contain_text(marker)


def test_the_store_applies_each_event_once_and_in_order(login, graphs: Graphs) -> None:
    """The page's event bookkeeping, run in the browser on the served module: duplicates are dropped, an event
    after a gap waits for the missing one, and an older version of a comment never replaces a newer one."""
    alice = login("alice")
    alice.open_graph(graphs.shared)
    result = alice.page.evaluate(
        """async () => {
            const { CommentStore } = await import("/static/web/js/comment-store.js");
            const store = new CommentStore();
            store.lastSeq = 10;
            const comment = (id, seq, body) => ({ id, seq, body, parent: null, anchor: { kind: "graph" } });
            const event = (seq, id, body) => ({ seq, event: "comment.created", comment: comment(id, seq, body) });
            const results = [
                store.applyEvent(event(10, 1, "old")),   // already seen
                store.applyEvent(event(12, 2, "two")),   // ahead of a gap
                store.applyEvent(event(11, 1, "one")),   // fills it; 12 follows
                store.applyEvent(event(12, 2, "two")),   // a repeat
            ];
            store.upsert(comment(2, 5, "stale"));       // an older version, e.g. a slow REST answer
            return { results, lastSeq: store.lastSeq, bodies: [...store.comments.values()].map((c) => c.body) };
        }"""
    )
    assert result == {"results": ["duplicate", "gap", "applied", "duplicate"], "lastSeq": 12, "bodies": ["one", "two"]}
