"""The search page end to end: ``veracity serve`` on a resolved lake, driven by
Playwright in headless Chromium at a phone's screen size."""

from __future__ import annotations

import shutil
import threading

import pytest

from veracity.search.auth import LocalSigner
from veracity.search.server import SearchServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(resolved_lake):
    lake, _ = resolved_lake
    server = SearchServer(lake, port=0)
    server.service()  # load the index before the browser starts
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_an_officer_finds_a_person_and_opens_their_page_on_a_phone(server, resolved_lake, tmp_path):
    lake, _ = resolved_lake
    record = next(r for r in server.service().index.records.to_pylist()
                  if r["date_of_birth"] and r["source_system"] != "intelligence")
    token = LocalSigner(lake).mint("pc-1234", ["officer"])
    requested = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{server.url}/#token={token}")
        assert "token=" not in page.url  # the token leaves the address bar
        page.fill("input[name=first_name]", record["first_name"].title())
        page.fill("input[name=last_name]", record["last_name"].lower())
        page.fill("input[name=date_of_birth]", record["date_of_birth"].isoformat())
        page.click("#search-button")
        assert page.inner_text("#message") == "Give the purpose: the incident or investigation reference."
        page.fill("input[name=purpose]", "INC/2026/0042")
        page.click("#search-button")
        page.wait_for_selector("#results li.result")
        first = page.locator("#results li.result").first
        assert first.locator("a").get_attribute("data-person-id") == record["person_id"]
        assert "date of birth: exact date" in first.inner_text()
        page.screenshot(path=str(tmp_path / "search-results.png"), full_page=True)
        first.locator("a").click()
        page.wait_for_selector("#person:not([hidden])")
        assert record["person_id"] in page.inner_text("#person-id")
        assert page.locator("#records tbody tr").count() >= 1
        assert "Withheld (not cleared)" in page.inner_text("#withheld")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(tmp_path / "person.png"), full_page=True)
        # A page injected into a name stays text.
        page.click("#back")
        page.fill("input[name=last_name]", "<img src=x onerror=alert(1)>")
        page.click("#search-button")
        page.locator("#message", has_text="last_name: expected letters").wait_for()
        assert page.locator("#results img").count() == 0
        browser.close()
    assert (tmp_path / "search-results.png").stat().st_size > 10_000
    assert (tmp_path / "person.png").stat().st_size > 10_000
    assert requested and all(url.startswith(server.url) for url in requested)  # nothing loaded from elsewhere
