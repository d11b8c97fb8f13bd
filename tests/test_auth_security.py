"""Signing in, sessions and tokens as an attacker would try them, over HTTP."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from metacrm.config import Settings
from metacrm.engine.access import login_throttle
from metacrm.engine.systables import sys_api_token, sys_session

from conftest import ApiClient, Browser, csrf_of, signed_in

PASSWORD = "demo-password"
TOKEN = "/api/v1/auth/token"
SAFE = "/o/customer?page=2"


def rows_of(engine, table, user_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)
                            .where(table.c.user_id == user_id)).scalar_one()


def token_for(app, username: str, password: str = PASSWORD):
    return app.test_client().post(TOKEN, json={"username": username, "password": password})


def api_as(app, username: str, password: str = PASSWORD) -> ApiClient:
    client = app.test_client()
    response = client.post(TOKEN, json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return ApiClient(client, response.get_json()["token"])


def signs_in_to_a_page(browser: Browser) -> bool:
    response = browser.client.get("/o/customer")
    return response.status_code == 200


@pytest.fixture
def make_app(engine, database_url, tmp_path):
    from metacrm.ui.app import create_app

    def make(**settings):
        return create_app(Settings(database_url=database_url, secret_key="test-secret",
                                   metadata_poll_seconds=0, instance_dir=tmp_path / "i",
                                   testing=True, **settings), engine=engine)

    return make


# -- failed attempts ------------------------------------------------------------------
def test_the_token_endpoint_refuses_even_the_right_password_after_repeated_failures(
        app, engine, people):
    answers = [token_for(app, "zhang", "wrong-password") for _ in range(6)]
    assert [a.status_code for a in answers[:login_throttle.FREE_ATTEMPTS]] == [401] * 3
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert answers[-1].get_json()["error"]["code"] == "too_many_attempts"
    right = token_for(app, "zhang")
    assert right.status_code == 429 and "token" not in right.get_json()
    assert rows_of(engine, sys_api_token, people["zhang"].user_id) == 0


def test_failed_sign_ins_on_the_page_slow_down_the_token_endpoint(app, engine, people):
    browser = Browser(app.test_client())
    for _ in range(login_throttle.FREE_ATTEMPTS):
        assert browser.post("/login", {"username": "zhang",
                                       "password": "wrong"}).status_code == 401
    assert token_for(app, "zhang").status_code == 429
    assert rows_of(engine, sys_api_token, people["zhang"].user_id) == 0


def test_failed_token_requests_slow_down_the_sign_in_page(app, engine, people):
    for _ in range(login_throttle.FREE_ATTEMPTS):
        assert token_for(app, "ZHANG ", "wrong").status_code == 401
    browser = Browser(app.test_client())
    response = browser.post("/login", {"username": "zhang", "password": PASSWORD})
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert rows_of(engine, sys_session, people["zhang"].user_id) == 0


# -- where the browser goes next ------------------------------------------------------
OFF_SITE = ["/%09/evil.example/phish", "//evil.example/", "/\\evil.example/", "/%5Cevil.example",
            "https://evil.example/", "/%0d%0a/evil.example", "/%0A/evil.example",
            "%20//evil.example", "/%E2%80%8B/evil.example", "javascript:alert(1)"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_never_redirects_to_another_site(app, people, target):
    browser = Browser(app.test_client())
    browser.get("/login")
    response = browser.client.post(f"/login?next={target}", data={
        "csrf_token": browser.token, "username": "zhang", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sign_in_returns_to_the_page_on_this_site_it_was_asked_for(app, people):
    browser = Browser(app.test_client())
    browser.get("/login")
    response = browser.client.post("/login?next=/o/customer%3Fpage%3D2", data={
        "csrf_token": browser.token, "username": "zhang", "password": PASSWORD})
    assert response.headers["Location"] == SAFE


@pytest.mark.parametrize("target", ["/\t/evil.example/phish", "//evil.example",
                                    "/\\evil.example", "https://evil.example"])
def test_a_bulk_delete_never_sends_the_browser_to_another_site(app, people, target):
    zhang = signed_in(app, "zhang", PASSWORD)
    zhang.get("/o/customer")
    response = zhang.post("/o/customer/bulk-delete", {"back": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/o/customer"


def test_a_bulk_delete_returns_to_the_list_page_it_came_from(app, people):
    zhang = signed_in(app, "zhang", PASSWORD)
    zhang.get("/o/customer")
    assert zhang.post("/o/customer/bulk-delete", {"back": SAFE}).headers["Location"] == SAFE


# -- sessions ---------------------------------------------------------------------------
def copy_of(app, browser: Browser) -> Browser:
    """Another browser holding a copy of ``browser``'s session cookie."""
    thief = Browser(app.test_client())
    thief.client.set_cookie("session", browser.client.get_cookie("session").value)
    return thief


def test_a_copied_session_cookie_stops_working_after_signing_out(app, engine, people):
    zhang = signed_in(app, "zhang", PASSWORD)
    stolen = copy_of(app, zhang)
    assert signs_in_to_a_page(stolen)
    assert zhang.post("/logout").status_code == 302
    assert not signs_in_to_a_page(stolen)
    assert stolen.client.get("/o/customer").headers["Location"].startswith("/login")
    assert rows_of(engine, sys_session, people["zhang"].user_id) == 0


def test_signing_out_in_one_browser_leaves_the_others_signed_in(app, people):
    office, home = signed_in(app, "zhang", PASSWORD), signed_in(app, "zhang", PASSWORD)
    office.post("/logout")
    assert not signs_in_to_a_page(office)
    assert signs_in_to_a_page(home)


def test_a_password_reset_ends_every_session_and_token_of_the_user(app, engine, people, api):
    zhang, other = signed_in(app, "zhang", PASSWORD), signed_in(app, "li", PASSWORD)
    zhang_api = api_as(app, "zhang")
    response = api.post(f"/api/v1/admin/users/{people['zhang'].user_id}/password",
                        json={"password": "a-new-password-1"})
    assert response.status_code == 204, response.get_json()
    assert not signs_in_to_a_page(zhang)
    assert zhang_api.get("/api/v1/me").status_code == 401
    assert rows_of(engine, sys_session, people["zhang"].user_id) == 0
    assert rows_of(engine, sys_api_token, people["zhang"].user_id) == 0
    assert signs_in_to_a_page(other)
    assert token_for(app, "zhang", "a-new-password-1").status_code == 200


def test_disabling_a_user_ends_their_sessions_for_good(app, engine, people, api):
    zhang, zhang_api = signed_in(app, "zhang", PASSWORD), api_as(app, "zhang")
    url = f"/api/v1/admin/users/{people['zhang'].user_id}"
    assert api.patch(url, json={"active": False}).status_code == 200
    assert api.patch(url, json={"active": True}).status_code == 200
    assert not signs_in_to_a_page(zhang)
    assert zhang_api.get("/api/v1/me").status_code == 401


# -- tokens -----------------------------------------------------------------------------
def test_a_revoked_token_no_longer_works(app, engine, people):
    first, second = api_as(app, "zhang"), api_as(app, "zhang")
    assert first.delete(TOKEN).status_code == 204
    assert first.get("/api/v1/me").status_code == 401
    assert second.get("/api/v1/me").status_code == 200
    assert rows_of(engine, sys_api_token, people["zhang"].user_id) == 1


def test_signing_out_everywhere_ends_every_token_and_session_of_the_caller(
        app, engine, people):
    browser, first, second = signed_in(app, "zhang", PASSWORD), api_as(app, "zhang"), \
        api_as(app, "zhang")
    li = api_as(app, "li")
    response = first.delete("/api/v1/auth/tokens")
    assert response.status_code == 200 and response.get_json() == {"ended": 3}
    assert second.get("/api/v1/me").status_code == 401
    assert not signs_in_to_a_page(browser)
    assert li.get("/api/v1/me").status_code == 200


def test_an_administrator_signs_a_user_out_everywhere(app, engine, people, api):
    browser, token = signed_in(app, "zhang", PASSWORD), api_as(app, "zhang")
    user_id = people["zhang"].user_id
    assert api_as(app, "li").post(f"/api/v1/admin/users/{user_id}/sign-out") \
        .status_code == 403
    assert signs_in_to_a_page(browser)
    response = api.post(f"/api/v1/admin/users/{user_id}/sign-out")
    assert response.status_code == 200 and response.get_json() == {"ended": 2}
    assert not signs_in_to_a_page(browser)
    assert token.get("/api/v1/me").status_code == 401


def test_a_token_lives_seven_days_and_says_when_it_expires(app, engine, people):
    before = dt.datetime.now(dt.UTC)
    answer = token_for(app, "zhang").get_json()
    expires = dt.datetime.fromisoformat(answer["expires_at"])
    assert dt.timedelta(days=7) <= expires - before < dt.timedelta(days=7, minutes=1)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sys_api_token.c.expires_at)).scalar_one()
    assert abs(stored - expires) < dt.timedelta(seconds=1)


def test_the_token_lifetime_is_configurable(make_app, people):
    app = make_app(token_days=1)
    expires = dt.datetime.fromisoformat(token_for(app, "zhang").get_json()["expires_at"])
    assert expires - dt.datetime.now(dt.UTC) < dt.timedelta(days=1)


# -- cookies ----------------------------------------------------------------------------
def session_cookie(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))


def sign_in_over(app, base_url: str, **headers):
    client = app.test_client()
    browser = Browser(client)
    page = client.get("/login", base_url=base_url, headers=headers)
    browser.token = csrf_of(page.get_data(as_text=True))
    return client.post("/login", base_url=base_url, headers=headers, data={
        "csrf_token": browser.token, "username": "zhang", "password": PASSWORD})


def test_the_session_cookie_is_secure_over_https(app, people):
    cookie = session_cookie(sign_in_over(app, "https://crm.example"))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_session_cookie_is_http_only_and_same_site_over_http(app, people):
    cookie = session_cookie(sign_in_over(app, "http://localhost"))
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_behind_a_configured_proxy_a_forwarded_https_makes_the_cookie_secure(make_app, people):
    app = make_app(behind_proxy=True)
    cookie = session_cookie(sign_in_over(app, "http://localhost",
                                         **{"X-Forwarded-Proto": "https"}))
    assert "Secure" in cookie


def test_without_a_configured_proxy_forwarded_headers_are_ignored(make_app, people):
    app = make_app()
    response = sign_in_over(app, "http://localhost", **{"X-Forwarded-Proto": "https",
                                                         "X-Forwarded-Host": "evil.example"})
    assert "Secure" not in session_cookie(response)
    assert "evil.example" not in response.headers["Location"]


# -- signing out from the web UI --------------------------------------------------------
def test_signing_out_everywhere_on_the_page_ends_every_session_and_token(app, engine, people):
    zhang, other_browser = signed_in(app, "zhang", PASSWORD), signed_in(app, "zhang", PASSWORD)
    token, li = api_as(app, "zhang"), signed_in(app, "li", PASSWORD)
    stolen = copy_of(app, zhang)
    response = zhang.post("/sign-out-everywhere")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not signs_in_to_a_page(zhang) and not signs_in_to_a_page(stolen)
    assert not signs_in_to_a_page(other_browser)
    assert token.get("/api/v1/me").status_code == 401
    assert rows_of(engine, sys_session, people["zhang"].user_id) == 0
    assert rows_of(engine, sys_api_token, people["zhang"].user_id) == 0
    assert signs_in_to_a_page(li)


def test_an_administrator_forces_a_user_off_from_the_users_page(app, engine, people, web):
    zhang, token = signed_in(app, "zhang", PASSWORD), api_as(app, "zhang")
    web.get("/admin/users")
    response = web.post(f"/admin/users/{people['zhang'].user_id}/sign-out",
                        {"back": "/admin/users?q=zhang"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users?q=zhang"
    assert not signs_in_to_a_page(zhang) and token.get("/api/v1/me").status_code == 401
    assert rows_of(engine, sys_session, people["zhang"].user_id) == 0
    assert rows_of(engine, sys_api_token, people["zhang"].user_id) == 0
    assert web.get("/admin/users").status_code == 200  # the administrator is still in


def test_only_a_super_administrator_may_force_a_user_off(app, engine, people):
    zhang, li = signed_in(app, "zhang", PASSWORD), signed_in(app, "li", PASSWORD)
    assert li.post(f"/admin/users/{people['zhang'].user_id}/sign-out").status_code == 403
    assert signs_in_to_a_page(zhang)
    assert rows_of(engine, sys_session, people["zhang"].user_id) == 1
