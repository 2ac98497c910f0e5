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
        page.wait_for_selector("#search-section:not([hidden])")
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


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_the_page_signs_in_with_the_authorization_code_flow_and_pkce(server, resolved_lake):
    """As deployed, the page signs in on Cognito's managed login. Here an authorization
    server on the page's own origin (routed by the browser) plays Cognito's part: it
    issues a code only for a well-formed request and a token only for the verifier that
    matches the challenge."""
    import base64
    import hashlib
    import json
    from urllib.parse import parse_qs, urlencode, urlsplit

    lake, _ = resolved_lake
    authority = f"{server.url}/managed-login"
    config = {"sign_in": "cognito", "authority": authority, "client_id": "page-client", "redirect_uri": f"{server.url}/"}
    issued: dict[str, str] = {}

    def authorize(route):
        query = {k: v[0] for k, v in parse_qs(urlsplit(route.request.url).query).items()}
        assert query["response_type"] == "code" and query["client_id"] == "page-client" and query["scope"] == "openid"
        assert query["code_challenge_method"] == "S256" and query["redirect_uri"] == config["redirect_uri"]
        issued["challenge"] = query["code_challenge"]
        route.fulfill(status=302, headers={"Location": f"{query['redirect_uri']}?{urlencode({'code': 'c0de', 'state': query['state']})}"})

    def token(route):
        form = {k: v[0] for k, v in parse_qs(route.request.post_data).items()}
        digest = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=").decode()
        if form["code"] != "c0de" or digest != issued["challenge"] or form["grant_type"] != "authorization_code":
            route.fulfill(status=400, body='{"error": "invalid_grant"}')
            return
        issued["verified"] = "yes"
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({"access_token": LocalSigner(lake).mint("pc-77", ["officer"]), "token_type": "Bearer"}))

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport=PHONE)
        page.route(f"{server.url}/config.json", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                             body=json.dumps(config)))
        page.route(f"{authority}/oauth2/authorize*", authorize)
        page.route(f"{authority}/oauth2/token", token)
        page.goto(f"{server.url}/")
        page.wait_for_selector("#cognito-sign-in:not([hidden])")
        assert page.locator("#token-form").is_hidden()
        page.click("#cognito-sign-in")
        page.wait_for_selector("#search-section:not([hidden])")
        assert issued.get("verified") == "yes" and "code=" not in page.url
        page.fill("input[name=last_name]", "Lee")
        page.fill("input[name=first_name]", "Ann")
        page.fill("input[name=purpose]", "INC/1")
        page.click("#search-button")
        page.locator("#message", has_text="No one found").or_(page.locator("#results li.result").first).wait_for()
        assert page.locator("#search-section").is_visible()  # the token was accepted: no return to sign-in
        browser.close()
