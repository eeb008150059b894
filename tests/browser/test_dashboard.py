"""The dashboard in a real headless Chromium, driven by Playwright, against a real farm.

Chromium is Debian's (``/usr/bin/chromium``, or ``TRANSCODER_TEST_CHROMIUM``); Playwright
only drives it (no browser is downloaded).  Without them the tests skip, unless
``TRANSCODER_TEST_REQUIRE_BROWSER=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.farm import Farm, wait_for

REQUIRED = os.environ.get("TRANSCODER_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("TRANSCODER_TEST_CHROMIUM") or shutil.which("chromium")

try:
    from playwright import sync_api as playwright
except ImportError:
    if REQUIRED:
        raise
    pytest.skip("Playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

#: A slow target (AV1 at its slowest preset): long enough to watch its progress.
CUSTOMER = {
    "name": "ACME",
    "profiles": {
        "news": {
            "targets": {
                "v": {
                    "type": "video",
                    "video": {"codec": "av1", "height": 360, "upscale": True, "preset": "veryslow"},
                }
            },
        },
    },
}

#: Every progress bar's value, as the page shows it.
PROGRESS = """() => [...document.querySelectorAll('#tasks [role=progressbar]')]
    .map(bar => Number(bar.getAttribute('aria-valuenow') || 0))"""


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium, closed after the module."""
    if not CHROMIUM or not os.path.exists(CHROMIUM):
        if REQUIRED:
            pytest.fail("Chromium is required (apt-get install chromium) but was not found")
        pytest.skip("no Chromium here (apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def farm(tmp_path):
    """A started farm with tokens: ``farm.tokens`` holds an admin and a read token."""
    farm = Farm(str(tmp_path), {"acme": CUSTOMER}, max_jobs=1)
    path = str(tmp_path / "etc" / "tokens.yaml")
    farm.configure("api", tokens_file=path)
    farm.tokens = {}
    for name, role in (("nightshift", "admin"), ("wallboard", "read")):
        added = farm.command("token", "add", name, "--role", role, "--tokens-file", path)
        farm.tokens[role] = added.stdout.strip().splitlines()[-1]
    farm.start()
    yield farm
    farm.stop()


def open_dashboard(chromium, farm, token: str, **viewport: int):
    """A new page on the dashboard, logged in with ``token``; its errors are collected."""
    page = chromium.new_page(viewport=viewport or {"width": 1280, "height": 900})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.goto(f"http://127.0.0.1:{farm.port}/ui/")
    expect = playwright.expect
    expect(page.locator("#login")).to_be_visible()  # the page holds nothing without a token
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    expect(page.locator("#farm")).to_be_visible()
    page.errors.clear()  # the browser logs the first request's 401, which asked for the token
    return page


def test_a_dropped_file_shows_its_progress_then_its_done_row_without_a_reload(
    chromium, farm, clips, tmp_path
):
    """Logged in with an admin token: the worker and its slot; a dropped file's progress
    bar moves, then the file appears among the latest done, the page never reloaded; a
    broken upload appears among the failed with its reason and diagnosis; pause and
    resume work from the page."""
    expect = playwright.expect
    page = open_dashboard(chromium, farm, farm.tokens["admin"])
    expect(page.locator("#who")).to_have_text("nightshift (admin)")
    expect(page.locator("#workers tbody")).to_contain_text("test-local-1")
    expect(page.locator("#slots")).to_have_text("(1 of 1 slots free)")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    farm.drop("acme", "news", "evening/news.ts", clips["long"])
    expect(page.locator("#tasks")).to_contain_text("ACME / news / evening/news.ts", timeout=30_000)
    page.wait_for_function(f"() => ({PROGRESS})().some(v => v > 0)", timeout=120_000)
    page.screenshot(path=str(tmp_path / "dashboard-running.png"), full_page=True)
    expect(page.locator("#tasks")).to_contain_text("ETA")

    done = page.locator("#done tbody")
    expect(done).to_contain_text("ACME / news / evening/news.ts", timeout=300_000)
    expect(page.locator("#tasks")).to_contain_text("nothing is transcoding")
    assert page.evaluate("window.sameDocument") is True
    assert page.evaluate("() => document.querySelectorAll('#chart .done').length") == 60

    farm.drop("acme", "news", "not-a-video.ts", clips["text"])
    failed = page.locator("#failed tbody")
    expect(failed).to_contain_text("not-a-video.ts", timeout=60_000)
    row = failed.locator("tr", has_text="not-a-video.ts")
    row.locator("summary").click()
    expect(row.locator("details pre")).to_contain_text("failure: source", timeout=10_000)
    expect(row.get_by_role("button", name="Retry")).to_be_visible()

    page.click("#pause")
    expect(page.locator("#state")).to_have_text("paused", timeout=10_000)
    page.click("#resume")
    expect(page.locator("#state")).to_have_text("started", timeout=10_000)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert page.errors == []
    page.close()


def test_a_read_token_sees_the_farm_without_its_buttons_and_a_phone_screen_fits(
    chromium, farm, clips
):
    """A read token: no pause, no retry; on a phone-sized screen nothing is wider than
    the screen; a wrong token is refused with the login form again."""
    expect = playwright.expect
    farm.drop("acme", "news", "broken.ts", clips["text"])
    wait_for(lambda: farm.finished("acme", "news") == 1, 60, "the broken file to fail")
    page = open_dashboard(chromium, farm, farm.tokens["read"], width=390, height=844)
    expect(page.locator("#who")).to_have_text("wallboard (read)")
    expect(page.locator("#failed tbody")).to_contain_text("broken.ts", timeout=10_000)
    expect(page.locator("#pause")).to_be_hidden()
    assert page.locator("#failed button").count() == 0
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"

    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", "not-a-token")
    page.click("#login button[type=submit]")
    expect(page.locator("#message")).to_contain_text("The token was refused")
    expect(page.locator("#farm")).to_be_hidden()
    assert [e for e in page.errors if "status of 401" not in e] == []
    page.close()


def test_a_cancel_click_that_spans_refreshes_still_cancels_the_job(chromium, farm, clips):
    """The running job's Cancel button stays the same element while the page refreshes
    every second: a press held across two refreshes is still a click, the page asks,
    and the file ends in failed, cancelled by the token's name."""
    expect = playwright.expect
    page = open_dashboard(chromium, farm, farm.tokens["admin"])
    farm.drop("acme", "news", "held.ts", clips["long"])
    button = page.locator("#tasks li", has_text="held.ts").get_by_role("button", name="Cancel")
    expect(button).to_be_visible(timeout=30_000)
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    box = button.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    before = page.evaluate("() => document.getElementById('updated').textContent")
    page.wait_for_timeout(2_500)  # two refreshes or more
    assert page.evaluate("() => document.getElementById('updated').textContent") != before
    page.mouse.up()
    assert asked == ["Cancel ACME / news / held.ts? Its source goes to failed."]
    expect(page.locator("#failed tbody")).to_contain_text("held.ts", timeout=60_000)
    expect(page.locator("#failed tbody")).to_contain_text("cancelled by nightshift")
    expect(page.locator("#tasks")).to_contain_text("nothing is transcoding")
    assert page.errors == []
    page.close()


def test_an_idle_page_reads_the_database_seldom(chromium, farm, clips):
    """Every second the page asks for the farm's state; the latest done and failed
    files and the failing notifications (database reads) only when files finished, and
    every 10 s otherwise. A file that fails meanwhile still shows within seconds."""
    expect = playwright.expect
    page = open_dashboard(chromium, farm, farm.tokens["read"])
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.split("/api/v1/", 1)[-1]))
    page.wait_for_timeout(5_500)
    status = [a for a in asked if a == "status"]
    database = [a for a in asked if a.startswith(("reports?", "notifications?"))]
    assert len(status) >= 4, asked
    assert len(database) <= 3, asked  # one round of three at most in 5.5 s

    farm.drop("acme", "news", "late.ts", clips["text"])
    expect(page.locator("#failed tbody")).to_contain_text("late.ts", timeout=8_000)
    assert page.errors == []
    page.close()


def test_a_file_name_made_of_markup_is_shown_as_text(chromium, farm, clips):
    """An upload named like HTML (a folder and a file whose names are tags with event
    handlers) is listed among the failed as the characters it is made of: no element of
    it reaches the page, no handler of it runs, in the row or in its diagnosis."""
    expect = playwright.expect
    folder, name = "<svg onload=window.pwned=1>", "<img src=x onerror=window.pwned=2>.ts"
    page = open_dashboard(chromium, farm, farm.tokens["admin"])
    farm.drop("acme", "news", f"{folder}/{name}", clips["text"])
    row = page.locator("#failed tbody tr", has_text=name)
    expect(row).to_contain_text(f"ACME / news / {folder}/{name}", timeout=60_000)
    row.locator("summary").click()
    expect(row.locator("details pre")).to_contain_text(name, timeout=10_000)
    injected = "() => document.querySelectorAll('img[src=x], svg[onload], [onerror]').length"
    assert page.evaluate(injected) == 0
    assert page.evaluate("() => window.pwned") is None
    assert page.errors == []
    page.close()
