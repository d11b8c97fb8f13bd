"""The generated UI in a real headless Chromium (Debian's), driven by Playwright.

A real HTTP server runs the app on a free port. Screenshots of each main page are
kept in test-artifacts/screenshots/. Under CI=true a browser that cannot start fails
the run; elsewhere these tests skip.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from werkzeug.serving import WSGIRequestHandler, make_server

from metacrm.config import Settings
from metacrm.engine import demo, instance
from metacrm.engine.access import users
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.ui.app import create_app

from conftest import ON_CI, ROOT, SAMPLE, fresh_database

CHROMIUM = os.environ.get("METACRM_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "browser-password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        """Requests are not logged: the test output stays readable."""


@contextmanager
def serve(folder: Path, fill: Callable[[Session], None], templates: tuple[Path, ...] = (SAMPLE,),
          backend: str = "sqlite") -> Iterator[tuple[str, Engine]]:
    """The sample template (or ``templates``) in a fresh database of the backend (a SQLite
    file by default), filled by ``fill``, served over real HTTP."""
    with fresh_database(backend, folder) as url:
        yield from _serve(url, folder, fill, templates)


def _serve(url: str, folder: Path, fill: Callable[[Session], None],
           templates: tuple[Path, ...]) -> Iterator[tuple[str, Engine]]:
    engine = make_engine(url)
    instance.install(engine, list(templates))
    with Session(engine) as session, session.begin():
        fill(session)
    settings = Settings(database_url=url, secret_key="browser-secret", instance_dir=folder,
                        metadata_poll_seconds=0)
    http = make_server("127.0.0.1", 0, create_app(settings, engine=engine), threaded=True,
                       request_handler=QuietHandler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", engine
    finally:
        http.shutdown()
        engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    def fill(session: Session) -> None:
        user_id = users.create_user(session, "admin", PASSWORD, is_admin=True,
                                    display_name="管理员")
        demo.populate(session, metastore.load_registry(session),
                      users.load_actor(session, user_id), per_object=30)

    with serve(tmp_path_factory.mktemp("browser"), fill) as (url, _engine):
        yield url


@pytest.fixture(scope="module")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - any failure to start means no browser
        message = f"no headless Chromium at {CHROMIUM}: {str(exc).splitlines()[0]}"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(chromium, server):
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.dialogs = dialogs
    page.base = server
    sign_in(page)
    yield page
    context.close()


def sign_in(page) -> None:
    page.goto(page.base + "/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/.*"))


def demo_company(session: Session) -> dict[str, int]:
    """``metacrm demo``'s people (wang, zhang, li, zhao, qian): username -> user id."""
    return dict(zip(("wang", "zhang", "li", "zhao", "qian"), demo.populate_org(session),
                    strict=True))


def open_as(chromium, base: str, username: str, *, password: str = demo.DEMO_PASSWORD,
            width: int = 1280, height: int = 900, accept_dialogs: bool = False):
    """A new browser context signed in as ``username``: (context, page)."""
    context = chromium.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    if accept_dialogs:
        page.on("dialog", lambda d: d.accept())
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/.*"))
    return context, page


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_sign_in_lands_on_a_list(chromium, server):
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.goto(server + "/login")
    shot(page, "login")
    page.fill("#username", "admin")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator("#login-error").inner_text() == "用户名或密码错误。"
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/\w+$"))
    assert page.locator("table.record-list tbody tr").count() > 0
    context.close()


def test_create_a_record_through_the_generated_form(page):
    page.goto(page.base + "/o/contact/new")
    page.fill("#f-name", "张三")
    page.fill("#f-customer", "0")  # type-ahead over the customer's search fields
    page.locator(".lookup-choice").first.click()
    page.fill("#f-mobile", "13800138000")
    page.select_option("#f-gender", "male")
    shot(page, "form")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/contact/\d+$"))
    assert page.locator("#record-title").inner_text() == "张三"
    shot(page, "detail")


def test_a_bad_value_shows_its_error_and_keeps_the_other_values(page):
    page.goto(page.base + "/o/customer/new?business_type=standard")
    page.fill("#f-name", "保留的名称")
    page.fill("#f-email", "not-an-email")
    page.fill("#f-address", "上海市浦东新区")
    page.click("#save")
    error = page.locator("[data-field=email] .field-error")
    assert error.inner_text() == "不是有效的邮箱地址"
    assert page.input_value("#f-name") == "保留的名称"
    assert page.input_value("#f-address") == "上海市浦东新区"
    shot(page, "form-error")


def test_find_a_record_by_search_and_by_filter(page):
    page.goto(page.base + "/o/customer/new?business_type=standard")
    page.fill("#f-name", "寻找我科技")
    page.fill("#f-employees", "4321")
    page.click("#save")
    page.goto(page.base + "/o/customer")
    page.fill("#search", "寻找我")
    page.click("#search-button")
    assert page.locator("table.record-list tbody tr").count() == 1
    assert "寻找我科技" in page.locator("table.record-list tbody").inner_text()
    page.goto(page.base + "/o/customer")
    page.click("#toggle-filter")
    page.click("#add-condition")
    row = page.locator(".filter-row").last
    row.locator("[data-role=field]").select_option("employees")
    row.locator("[data-role=op]").select_option("eq")
    row.locator("[data-role=value]").fill("4321")
    page.click("#apply-filter")
    page.wait_for_url(re.compile(r".*filter=.*"))
    assert "寻找我科技" in page.locator("table.record-list tbody").inner_text()
    assert page.locator("table.record-list tbody tr").count() == 1
    shot(page, "list-filtered")


def test_the_filter_builder_asks_each_operator_for_the_value_it_takes(page):
    page.goto(page.base + "/o/customer")
    page.click("#toggle-filter")
    page.click("#add-condition")
    row = page.locator(".filter-row").last
    row.locator("[data-role=field]").select_option("created_at")
    assert row.locator("[data-role=op] option[value=today]").inner_text() == "今天"
    row.locator("[data-role=op]").select_option("today")
    assert row.locator("[data-role=value]").count() == 0  # a period needs no value
    row.locator("[data-role=op]").select_option("last_n_days")
    assert row.locator("[data-role=value]").get_attribute("type") == "number"
    row.locator("[data-role=value]").fill("30")
    page.click("#apply-filter")
    page.wait_for_url(re.compile(r".*filter=.*"))
    assert "last_n_days" in page.url and "30" in page.url
    assert page.locator("table.record-list tbody tr").count() >= 1


def test_save_a_view_and_reopen_it(page):
    page.goto(page.base + "/o/opportunity?filter=" + '[["stage","eq","qualify"]]')
    page.click("#toggle-save")
    page.fill("#view-name", "验证中商机")
    page.click("#save-view")
    page.wait_for_url(re.compile(r".*view=\d+.*"))
    page.goto(page.base + "/o/opportunity?view=all")
    page.locator("#views a", has_text="验证中商机").click()
    page.wait_for_url(re.compile(r".*view=\d+.*"))
    stages = page.locator("table.record-list tbody .option-badge").all_inner_texts()
    assert stages and set(stages) == {"验证客户"}
    shot(page, "list-saved-view")


def test_switch_language(page):
    page.goto(page.base + "/o/customer")
    assert page.locator("h1").inner_text() == "客户"
    page.click("#switch-language")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Customer"
    assert page.locator("#new-record").inner_text().strip() == "New"
    shot(page, "list-english")
    page.click("#switch-language")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "客户"


def test_detail_page_and_its_history(page):
    page.goto(page.base + "/o/customer?view=all&sort=name")
    page.locator("a.record-link").nth(1).click()
    page.wait_for_url(re.compile(r".*/o/customer/\d+.*"))
    assert page.locator("#previous-record").count() == 1
    page.click("#edit-record")
    page.fill("#f-address", "北京市海淀区")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/customer/\d+$"))
    page.click("#history-tab")
    page.locator("#tab-history.show").wait_for()
    history = page.locator(".history").inner_text()
    assert "修改了" in history and "北京市海淀区" in history
    shot(page, "detail-history")
    page.click("#related-tab")
    page.locator("#tab-related.show").wait_for()
    assert page.locator(".related-list").count() == 4  # contacts, opportunities, quotes, contracts
    shot(page, "detail-related")


def test_markup_in_values_never_runs(page):
    page.goto(page.base + "/o/customer/new?business_type=standard")
    page.fill("#f-name", '<script>alert("x")</script>')
    page.fill("#f-address", '"><img src=x onerror=alert(1)>')
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/customer/\d+$"))
    assert page.locator("#record-title").inner_text() == '<script>alert("x")</script>'
    page.goto(page.base + "/o/customer?q=script")
    assert '<script>alert("x")</script>' in page.locator("table.record-list").inner_text()
    assert page.dialogs == []


def test_pages_fit_a_phone_screen(chromium, server):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.base = server
    sign_in(page)
    for name, url in (("phone-list", "/o/opportunity"), ("phone-detail", "/o/customer/1"),
                      ("phone-form", "/o/contact/new")):
        page.goto(server + url)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{url} is {overflow}px wider than the screen"
        shot(page, name)
    context.close()



def test_delete_and_restore_from_the_recycle_bin(page):
    page.goto(page.base + "/o/customer/new?business_type=standard")
    page.fill("#f-name", "回收站测试客户")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/customer/\d+$"))
    page.locator("button[data-confirm]", has_text="删除").click()
    page.wait_for_url(re.compile(r".*/o/customer$"))
    assert page.dialogs == ["确定将这条记录移入回收站吗？"]
    page.goto(page.base + "/o/customer/recycle-bin")
    assert "回收站测试客户" in page.locator("#recycle-bin").inner_text()
    shot(page, "recycle-bin")
    page.locator("#recycle-bin tr", has_text="回收站测试客户").locator("button").click()
    page.wait_for_url(re.compile(r".*/o/customer/\d+$"))
    assert page.locator("#record-title").inner_text() == "回收站测试客户"
