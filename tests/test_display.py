"""What users see on the generated pages: values as the field catalogue shows them (titles,
names and labels, never raw ids and codes), no internals, no expressions, the right words.

On SQLite and PostgreSQL: titles, names and deletion times are read from the database.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from metacrm.engine.access import org
from metacrm.engine.actor import SYSTEM
from metacrm.engine.writing import records

from conftest import signed_in


@pytest.fixture
def rep(app, people):
    """zhang, a sales rep in 华东销售组, signed in."""
    return signed_in(app, "zhang", "demo-password")


def history_rows(html: str) -> list[tuple[str, str, str]]:
    """(label, before, after) of each change in the detail page's history tab."""
    tab = html[html.index('id="tab-history"'):]
    rows = re.findall(r'<tr><td class="text-muted">(.*?)</td><td class="text-break">(.*?)</td>'
                      r'<td>→</td><td class="text-break">(.*?)</td></tr>', tab)
    return [tuple(html_lib.unescape(c) for c in r) for r in rows]


def test_the_recycle_bin_shows_when_a_record_was_deleted(web, make_record, engine, registry,
                                                         admin):
    row = make_record("customer", name="Deleted Co")
    with Session(engine) as session, session.begin():
        records.delete(session, registry, "customer", row["id"], actor=admin)
        table = registry.table("customer")
        session.execute(update(table).where(table.c.id == row["id"]).values(
            updated_at=dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC),
            deleted_at=dt.datetime(2025, 3, 4, 12, tzinfo=dt.UTC)))
    page = web.text("/o/customer/recycle-bin")
    bin_row = page[page.index("Deleted Co"):]
    bin_row = bin_row[:bin_row.index("</tr>")]
    assert "2025-03-04" in bin_row and "2020-01-01" not in bin_row
    assert "删除时间" in page and "删除人" in page


def test_history_shows_titles_names_and_labels_instead_of_ids_and_codes(rep, people,
                                                                        make_record, engine):
    zhang = people["zhang"]
    customer = make_record("customer", actor=zhang, name="历史客户", business_type="standard",
                           level="B")
    contact = make_record("contact", actor=zhang, name="历史联系人", customer=customer["id"])
    with Session(engine) as session:
        department = next(d.name for d in org.departments(session)
                          if d.id == zhang.department_id)
    shown = history_rows(rep.text(f"/o/customer/{customer['id']}"))
    assert ("业务类型", "—", "标准客户") in shown
    assert ("所属部门", "—", department) in shown
    assert ("客户级别", "—", "B（普通客户）") in shown
    assert ("负责人", "—", "张伟") in shown
    contact_rows = history_rows(rep.text(f"/o/contact/{contact['id']}"))
    assert any(after == "历史客户" for _label, _before, after in contact_rows)
    assert not any(after == str(customer["id"]) for _l, _b, after in contact_rows)


def test_history_does_not_name_a_record_the_reader_may_not_see(app, people, make_record,
                                                               session, registry):
    theirs = make_record("customer", actor=people["li"], name="李娜的客户")
    mine = make_record("customer", actor=people["zhang"], name="张伟的客户")
    contact = make_record("contact", actor=people["zhang"], name="换过客户的联系人",
                          customer=mine["id"])
    records.update_record(session, registry, "contact", contact["id"],
                          {"customer": theirs["id"]}, actor=people["admin"], version=1)
    session.commit()
    html = signed_in(app, "zhang", "demo-password").text(f"/o/contact/{contact['id']}")
    assert ("客户名称", "张伟的客户", f"（记录 {theirs['id']}）") in history_rows(html)


def test_a_formula_copying_a_select_shows_the_option_label(web, make_record):
    customer = make_record("customer", name="Level Co", level="B")
    quote = make_record("quote", name="Level quote", customer=customer["id"])
    html = web.text(f"/o/quote/{quote['id']}")
    cell = re.search(r'data-field="customer_level">(.*?)</dd>', html).group(1)
    assert cell == "B（普通客户）"
    listed = web.text("/o/quote?columns=name,customer_level")
    assert "B（普通客户）" in listed and ">B<" not in listed


def test_a_list_shows_business_types_by_their_labels(web, make_record):
    make_record("customer", name="Typed Co", business_type="key_account", industry="it",
                phone="021-12345678")
    html = web.text("/o/customer?columns=name,business_type&q=Typed")
    assert "大客户" in html and ">key_account<" not in html


def test_forms_do_not_show_expressions(web):
    html = web.text("/o/quote/new")
    assert "today()" not in html and "product.price" not in html and "add_days" not in html
    assert "留空则保存时自动填写" in html


def test_the_list_pager_speaks_of_pages_and_the_detail_of_records(web, make_record):
    ids = [make_record("customer", name=f"Pager {i}")["id"] for i in range(3)]
    listed = web.text("/o/customer?page_size=1")
    assert "上一页" in listed and "下一页" in listed and "上一条" not in listed
    detail = web.text(f"/o/customer/{ids[1]}?view=all&sort=name")
    assert "上一条" in detail and "下一条" in detail


def test_a_date_that_does_not_exist_is_refused_as_such(web):
    response = web.post("/o/customer/new?business_type=standard",
                        {"name": "Leap Co", "next_contact_at": "2026-02-30T10:00"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "2026-02-30 这一天不存在" in page and "ISO 8601" not in page


def test_a_lines_object_has_no_pages_of_its_own(web, make_record, session, registry):
    product = make_record("product", name="Line product", price="10")
    customer = make_record("customer", name="Lines Co")
    quote = make_record("quote", name="Lines quote", customer=customer["id"],
                        lines=[{"product": product["id"], "quantity": "2"}])
    table = registry.table("quote_line")
    line_id = session.execute(select(table.c.id).where(
        table.c.quote == quote["id"])).scalar_one()
    assert web.get("/o/quote_line").status_code == 404
    assert web.get("/o/quote_line/new").status_code == 404
    assert web.get("/o/quote_line/recycle-bin").status_code == 404
    assert web.get("/o/quote_line/export?format=csv").status_code == 404
    response = web.get(f"/o/quote_line/{line_id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/o/quote/{quote['id']}")
    assert 'href="/o/quote_line"' not in web.text("/o/quote")


def test_filters_and_columns_lead_with_the_list_and_never_offer_the_version(web, registry,
                                                                           make_record):
    obj = registry.object("customer")
    html = web.text("/o/customer")
    fields = json.loads(html_lib.unescape(re.search(
        r'<script type="application/json" id="filter-fields">(.*?)</script>', html,
        re.S).group(1)))
    names = [f["name"] for f in fields]
    assert names[:len(obj.list_columns)] == list(obj.list_columns)
    assert "version" not in names
    system = [n for n in names if obj.queryable[n].system and n not in obj.list_columns]
    assert names[-len(system):] == system
    assert 'data-column="version"' not in html
    assert "版本" not in web.text("/o/customer?columns=name,version")
    row = make_record("customer", name="No Version Co")
    assert "版本" not in web.text(f"/o/customer/{row['id']}")


def test_history_names_a_change_the_system_made_as_automatic(web, make_record, session,
                                                             registry):
    row = make_record("customer", name="System Changed Co")
    records.update_record(session, registry, "customer", row["id"], {"remark": "auto"},
                          actor=SYSTEM, version=1)
    session.commit()
    html = web.text(f"/o/customer/{row['id']}")
    tab = html[html.index('id="tab-history"'):]
    assert "<strong>系统自动</strong> · 修改了" in tab
    assert "<strong>系统信息</strong>" not in tab


def test_a_lookup_to_a_record_the_reader_may_not_see_is_not_a_dead_link(app, people,
                                                                        make_record, session,
                                                                        registry):
    theirs = make_record("customer", actor=people["li"], name="李娜的保密客户")
    mine = make_record("customer", actor=people["zhang"], name="张伟的公开客户")
    contact = make_record("contact", actor=people["zhang"], name="挂在别人客户下的联系人",
                          customer=mine["id"])
    records.update_record(session, registry, "contact", contact["id"],
                          {"customer": theirs["id"]}, actor=people["admin"], version=1)
    session.commit()
    rep = signed_in(app, "zhang", "demo-password")
    for html in (rep.text(f"/o/contact?q={contact['name']}"),
                 rep.text(f"/o/contact/{contact['id']}")):
        assert f"（记录 {theirs['id']}）" in html
        assert f'href="/o/customer/{theirs["id"]}"' not in html
        assert "李娜的保密客户" not in html
    assert rep.get(f"/o/customer/{theirs['id']}").status_code == 404


def test_the_header_names_the_signed_in_user_by_name_not_login(rep):
    html = rep.text("/todo")
    toggle = html[html.index('id="user-menu-toggle"'):]
    assert "张伟" in toggle[:toggle.index("</button>")]
