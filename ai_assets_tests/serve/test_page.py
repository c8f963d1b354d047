"""The ask page at / in a real headless Chromium (Debian's, through playwright, as test_ui.py):
ask, read the answer with numbered citations linking to the document's page, and judge it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_assets.core.feedback import FileFeedbackStore
from ai_assets.settings import Settings
from ai_assets_tests.serve.conftest import ADMIN_TOKEN
from ai_assets_tests.test_ui import CHROMIUM_ARGS, chromium_executable


def test_the_page_asks_cites_and_records_feedback(client_server: str, served_data: Path) -> None:
    executable = chromium_executable()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(client_server)
        page.fill("#question", "who is paged after the third failure")
        page.click("button[type=submit]")
        # Without the token the server refuses, and the page says how to fix it.
        expect(page.locator("#status")).to_contain_text("Authorization: Bearer")
        page.fill("#token", ADMIN_TOKEN)
        page.click("button[type=submit]")
        expect(page.locator("#answer")).to_contain_text("on-call engineer is paged")
        citation = page.locator("#answer a.citation").first
        expect(citation).to_have_text("[1]")
        expect(citation).to_have_attribute("href", "/v1/files/handbook/ops.pdf#page=2")
        expect(page.locator("#passages li").first).to_contain_text("Operations · Escalation · p. 2")
        expect(page.locator("#status")).to_contain_text("chunks__minilm v")
        page.click("#judge button[data-verdict=good]")
        expect(page.locator("#judged")).to_have_text("Thanks: recorded as good.")
        browser.close()
    store = FileFeedbackStore(Settings(data_dir=served_data).feedback_location)
    from_page = [j for j in store.judgements() if j.client == "page"]
    assert [j.verdict for j in from_page] == ["good"]
    assert store.answer(from_page[0].answer_id).client == "page"
