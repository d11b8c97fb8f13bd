"""The generated pages through the Flask test client, CSRF on, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest

from metacrm.engine.access import users
from metacrm.engine.actor import SYSTEM
from metacrm.engine.writing import records

from conftest import Browser

XSS_TEXT = '<script>alert("x")</script>'
XSS_ATTR = '"><img src=x onerror=alert(1)>'


def test_pages_need_a_signed_in_user(app):
    response = app.test_client().get("/o/customer")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_failed_login_does_not_say_which_part_was_wrong(app, admin):
    browser = Browser(app.test_client())
    for body in ({"username": "admin", "password": "nope-nope"},
                 {"username": "ghost", "password": "admin-password"}):
        response = browser.post("/login", body)
        assert response.status_code == 401
        assert "用户名或密码错误。" in response.get_data(as_text=True)


def test_repeated_failed_logins_are_slowed_down(app, admin):
    browser = Browser(app.test_client())
    for _ in range(4):
        browser.post("/login", {"username": "admin", "password": "wrong-password"})
    response = browser.post("/login", {"username": "admin", "password": "admin-password"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert "登录失败次数过多" in response.get_data(as_text=True)


def test_forms_without_a_csrf_token_are_refused(app, admin):
    client = app.test_client()
    response = client.post("/login", data={"username": "admin", "password": "admin-password"})
    assert response.status_code == 400


def test_login_never_redirects_to_another_site(app, admin):
    browser = Browser(app.test_client())
    browser.get("/login")
    response = browser.post("/login?next=//evil.example/x", {"username": "admin",
                                                             "password": "admin-password"})
    assert response.headers["Location"] == "/"


def test_navigation_is_grouped_and_chinese_by_default(web):
    html = web.text("/o/customer")
    assert "售中" in html and "客户" in html and "商机" in html and "新建" in html


def test_switching_language_shows_english_labels(english):
    html = english.text("/o/customer")
    assert "Customer" in html and "New" in html and "Sales" in html


def test_creating_through_the_form(web, session, registry):
    response = web.post("/o/customer/new?business_type=standard",
                        {"name": "Form Co", "level": "A", "employees": "12",
                         "annual_revenue": "1234.5", "locked": "false",
                         "next_contact_at": "2026-12-01T10:30"})
    assert response.status_code == 302
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    row = records.get(session, registry, "customer", record_id, actor=SYSTEM)
    assert (row["name"], row["level"], row["employees"]) == ("Form Co", "A", 12)
    assert str(row["annual_revenue"]) == "1234.50"


def test_objects_with_several_business_types_ask_for_one_first(web):
    html = web.text("/o/customer/new")
    assert "选择业务类型" in html and "business_type=key_account" in html


def test_business_type_limits_the_form_and_its_options(web):
    html = web.text("/o/customer/new?business_type=key_account")
    assert 'name="locked"' not in html  # not among the key account's fields
    assert 'value="C"' not in html and 'value="A"' in html


def test_number_inputs_carry_the_fields_range(web):
    html = web.text("/o/quote/new")
    assert 'name="tax_rate" value="13" step="0.01" min="0" max="100"' in html


def test_a_number_below_the_minimum_is_refused_on_the_form(web):
    response = web.post("/o/customer/new?business_type=standard",
                        data={"name": "杭州云启信息技术有限公司", "employees": "-10"})
    assert response.status_code == 422 and "不能小于 0" in response.get_data(as_text=True)


def test_a_bad_value_shows_an_error_by_the_field_and_keeps_the_others(web):
    response = web.post("/o/customer/new?business_type=standard",
                        {"name": "Kept Co", "employees": "many", "phone": "010-88886666"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "必须是整数" in html  # the engine's message, in the user's language
    assert 'value="Kept Co"' in html and 'value="010-88886666"' in html
    assert 'value="many"' in html


def test_required_fields_are_marked(web):
    html = web.text("/o/contact/new")
    assert re.search(r'for="f-name">姓名 <span class="text-danger"', html)


def test_new_from_a_related_list_is_prefilled(web, make_record):
    customer = make_record("customer", name="Parent Co")
    html = web.text(f"/o/contact/new?customer={customer['id']}")
    assert f'name="customer" value="{customer["id"]}"' in html and 'value="Parent Co"' in html


def test_lookup_type_ahead_searches_the_target(web, make_record):
    make_record("customer", name="Alpha Trading")
    make_record("customer", name="Beta Works")
    found = web.get("/api/v1/objects/customer/lookup?q=alpha").get_json()
    assert [c["title"] for c in found] == ["Alpha Trading"]


def test_editing_saves_and_detects_a_stale_version(web, make_record, session, registry, admin):
    row = make_record("customer", name="Edit Co")
    web.get(f"/o/customer/{row['id']}/edit")
    records.update_record(session, registry, "customer", row["id"], {"level": "C"}, actor=admin,
                          version=1)
    session.commit()
    response = web.post(f"/o/customer/{row['id']}/edit", {"name": "Edit Co 2", "version": "1",
                                                          "level": "A"})
    assert response.status_code == 409 and "其他人修改了这条记录" in response.get_data(as_text=True)
    response = web.post(f"/o/customer/{row['id']}/edit", {"name": "Edit Co 2", "version": "2",
                                                          "level": "A"})
    assert response.status_code == 302


def test_list_search_filter_sort_and_totals(web, make_record):
    for name, amount in (("Small", 100), ("Large", 900), ("Medium", 500)):
        customer = make_record("customer", name=f"{name} Co")
        make_record("opportunity", name=name, amount=amount, customer=customer["id"])
    html = web.text("/o/opportunity?q=Lar")
    assert "Large" in html and "Small" not in html
    filtered = web.text("/o/opportunity?" + "filter=" + json.dumps([["amount", "gte", 500]]))
    assert "Large" in filtered and "Medium" in filtered and "Small" not in filtered
    assert "¥1,400.00" in filtered  # the totals row sums every matching record
    ordered = web.text("/o/opportunity?sort=amount")
    assert ordered.index("Small") < ordered.index("Medium") < ordered.index("Large")


def filter_operators(html: str) -> dict:
    return json.loads(re.search(r'id="filter-operators">(.*?)</script>', html).group(1))


def test_the_filter_builder_reads_the_operator_catalogue_in_chinese(web):
    operators = filter_operators(web.text("/o/opportunity"))
    assert operators["last_n_days"] == {"label": "最近 N 天", "value": "days"}
    assert operators["today"]["value"] == "none" and operators["in"]["value"] == "many"


def test_the_filter_builder_reads_the_operator_catalogue_in_english(english):
    operators = filter_operators(english.text("/o/opportunity"))
    assert operators["eq"] == {"label": "equals", "value": "one"}
    assert operators["this_quarter"]["label"] == "this quarter"


def test_a_bad_filter_in_the_url_is_reported_not_an_error(web):
    response = web.get("/o/opportunity?filter=" + json.dumps([["nope", "eq", 1]]))
    assert response.status_code == 200
    assert "筛选条件无效" in response.get_data(as_text=True)


def test_chosen_columns_are_shown_in_order(web, make_record):
    make_record("customer", name="Col Co", phone="12345678")
    html = web.text("/o/customer?columns=phone,name")
    header = html[html.index("<thead"):html.index("</thead>")]
    assert header.index("电话") < header.index("客户名称") and "客户级别" not in header


def test_saving_a_view_and_arranging_views(web, make_record, admin):
    make_record("customer", name="Key Co", level="A")
    make_record("customer", name="Plain Co", level="C")
    response = web.post("/o/customer/views", {"name": "A 级客户",
                                              "filter": json.dumps([["level", "eq", "A"]]),
                                              "columns": "name,level", "sort": "name"})
    key = response.headers["Location"].split("view=")[1]
    html = web.text(f"/o/customer?view={key}")
    assert "A 级客户" in html and "Key Co" in html and "Plain Co" not in html
    web.post(f"/o/customer/views/{key}/default")
    assert "Plain Co" not in web.text("/o/customer")  # the default view opens first
    web.post(f"/o/customer/views/{key}/left")
    web.post("/o/customer/views/mine/hide")
    tabs = web.text("/o/customer")
    tab_bar = tabs[tabs.index('id="views"'):tabs.index('id="view-menu"')]
    assert 'data-view="mine"' not in tab_bar
    assert tab_bar.index(f'data-view="{key}"') < tab_bar.index('data-view="recent"')
    web.post(f"/o/customer/views/{key}/delete")
    assert "A 级客户" not in web.text("/o/customer")


def test_detail_shows_fields_related_lists_and_history(web, make_record, session, registry,
                                                       admin):
    customer = make_record("customer", name="Detail Co", level="B")
    make_record("contact", name="王伟", customer=customer["id"])
    records.update_record(session, registry, "customer", customer["id"], {"level": "A"},
                          actor=admin, version=1)
    session.commit()
    html = web.text(f"/o/customer/{customer['id']}")
    assert "Detail Co" in html and "王伟" in html and f"customer={customer['id']}" in html
    assert "修改了" in html and "B（普通客户）" in html and "A（重点客户）" in html


def test_detail_links_to_the_previous_and_next_record_of_the_list(web, make_record):
    ids = [make_record("customer", name=f"N{i}")["id"] for i in range(3)]
    html = web.text(f"/o/customer/{ids[1]}?view=all&sort=name")
    assert f"/o/customer/{ids[0]}?" in html and f"/o/customer/{ids[2]}?" in html


def test_delete_bulk_delete_and_restore_from_the_recycle_bin(web, make_record):
    rows = [make_record("customer", name=f"Bin {i}") for i in range(3)]
    web.get("/o/customer")
    assert web.post(f"/o/customer/{rows[0]['id']}/delete").status_code == 302
    web.post("/o/customer/bulk-delete", {"ids": [str(rows[1]["id"]), str(rows[2]["id"])]})
    assert "Bin 1" not in web.text("/o/customer")
    assert "Bin 0" in web.text("/o/customer/recycle-bin")
    web.post(f"/o/customer/{rows[0]['id']}/restore")
    assert "Bin 0" in web.text("/o/customer")


def test_unknown_objects_and_records_are_404_pages(web):
    assert web.get("/o/spaceship").status_code == 404
    response = web.get("/o/customer/987654")
    assert response.status_code == 404 and "<html" in response.get_data(as_text=True)


def test_pages_send_security_headers(web):
    headers = web.get("/o/customer").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("payload", [XSS_TEXT, XSS_ATTR])
def test_markup_in_values_is_shown_as_text_everywhere(web, make_record, payload):
    customer = make_record("customer", name=payload, address=payload, remark=payload)
    make_record("contact", name=payload, customer=customer["id"])
    web.post("/o/customer/views", {"name": payload, "filter": "", "columns": "", "sort": ""})
    pages = [f"/o/customer/{customer['id']}", "/o/customer", "/o/contact",
             f"/o/customer/{customer['id']}/edit", f"/o/contact/new?customer={customer['id']}"]
    for url in pages:
        html = web.text(url)
        assert payload not in html, url
        assert "&lt;" in html or "&#34;&gt;" in html, url


def test_every_ui_string_has_a_chinese_translation():
    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import read_mo

    from conftest import ROOT

    with open(ROOT / "metacrm/ui/translations/zh/LC_MESSAGES/messages.mo", "rb") as handle:
        catalog = read_mo(handle)
    translated = {m.id for m in catalog if m.id and m.string}
    method_map = [("metacrm/ui/**.py", "python"), ("metacrm/engine/**.py", "python"),
                  ("metacrm/metadata/**.py", "python"), ("metacrm/ui/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "Message": None, "InvalidValue": None}
    used = {msg[2] if isinstance(msg[2], str) else msg[2][0]
            for msg in extract_from_dir(str(ROOT), method_map, keywords=keywords)}
    assert sorted(used - translated) == []


def test_user_display_names_replace_ids(web, session, make_record):
    owner = users.create_user(session, "lilei", "password-1", display_name="李雷")
    session.commit()
    make_record("customer", name="Owned Co", owner=owner)
    assert "李雷" in web.text("/o/customer")


def test_the_api_accepts_the_web_session_with_its_csrf_token(web):
    assert web.client.get("/api/v1/objects/customer/records").status_code == 200
    refused = web.client.post("/api/v1/objects/customer/records", json={"name": "No token"})
    assert refused.status_code == 401
    created = web.client.post("/api/v1/objects/customer/records", json={"name": "With token"},
                              headers={"X-CSRFToken": web.token})
    assert created.status_code == 201


def test_engine_messages_follow_the_users_language(english):
    response = english.post("/o/customer/new?business_type=standard",
                            {"name": "Msg Co", "employees": "many"})
    assert "must be a whole number" in response.get_data(as_text=True)
